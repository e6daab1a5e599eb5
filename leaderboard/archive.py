"""Reading a zip of masks without trusting it.

Every entry is checked from the central directory *before* any byte is decompressed: names
(no traversal, no folders, only expected ``{id}.png``), no symbolic links, no encryption, the
entry count, declared sizes and compression ratios (zip bombs). Entries are then read into
memory with a hard cap, so a header that lies about its size is caught too. Nothing is ever
written to disk from an archive.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from leaderboard.errors import InvalidSubmission, PickleRefused, UnsafeArchive
from leaderboard.limits import Limits

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin", ".joblib", ".npy", ".npz", ".dill"})
PICKLE_MAGIC = tuple(b"\x80" + bytes([p]) for p in range(2, 6))


def looks_pickled(name: str, head: bytes = b"") -> bool:
    """By suffix, or by the pickle protocol 2–5 opcode that starts every such stream."""
    return PurePosixPath(name).suffix.lower() in PICKLE_SUFFIXES or head[:2] in PICKLE_MAGIC


def _check_name(info: zipfile.ZipInfo, where: Path) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or "\\" in name or ".." in parts or (parts and ":" in parts[0]):
        raise UnsafeArchive(f"entry {name!r} escapes the archive (path traversal)", where,
                            hint="entries must be plain {id}.png names")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchive(f"entry {name!r} is a symbolic link; links are refused", where)
    if info.is_dir() or "/" in name:
        raise UnsafeArchive(f"entry {name!r} is in a folder; put {{id}}.png files at the archive root", where,
                            hint="e.g. cd preds && zip ../preds.zip *.png")
    if info.flag_bits & 0x1:
        raise UnsafeArchive(f"entry {name!r} is encrypted", where)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise UnsafeArchive(f"entry {name!r} uses compression method {info.compress_type}; "
                            "only stored or deflated entries are accepted", where)
    if looks_pickled(name):
        raise PickleRefused(f"entry {name!r} is a pickle; pickles are never opened", where)


def read_zip(path: Path, expected: set[str], max_entry_bytes: Callable[[str], int], limits: Limits) -> dict[str, bytes]:
    """Entries of a zip of ``{id}.png`` as bytes, keyed by id; every entry is checked before any is read.

    ``expected``: the ids that may appear. ``max_entry_bytes(id)``: the largest acceptable entry.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidSubmission(f"not a readable zip ({e})", path) from None
    with zf:
        infos = zf.infolist()
        allowed = len(expected) + limits.max_extra_entries
        if len(infos) > allowed:
            raise UnsafeArchive(f"archive has {len(infos)} entries, at most {allowed} allowed "
                                f"(one {{id}}.png per hidden image)", path)
        seen: dict[str, zipfile.ZipInfo] = {}
        total = compressed = 0
        for info in infos:
            _check_name(info, path)
            stem, suffix = info.filename.rsplit(".", 1) if "." in info.filename else (info.filename, "")
            if suffix.lower() != "png":
                raise InvalidSubmission(f"entry {info.filename!r} is not a .png mask", path)
            if stem not in expected:
                raise InvalidSubmission(f"entry {info.filename!r} names an id that is not in the hidden split", path)
            if stem in seen:
                raise UnsafeArchive(f"entry {info.filename!r} appears twice", path)
            seen[stem] = info
            cap = max_entry_bytes(stem)
            if info.file_size > cap:
                raise UnsafeArchive(f"entry {info.filename!r} declares {info.file_size} bytes, over the "
                                    f"{cap}-byte limit for its mask", path)
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_entry_ratio:
                raise UnsafeArchive(f"entry {info.filename!r} expands {ratio:.0f}× (limit "
                                    f"{limits.max_entry_ratio:.0f}×): looks like a zip bomb", path)
            total += info.file_size
            compressed += info.compress_size
        if total > limits.ratio_floor_bytes and total / max(compressed, 1) > limits.max_total_ratio:
            raise UnsafeArchive(f"archive expands {total / max(compressed, 1):.0f}× overall (limit "
                                f"{limits.max_total_ratio:.0f}×): looks like a zip bomb", path)
        out: dict[str, bytes] = {}
        for stem, info in seen.items():
            try:
                with zf.open(info) as f:
                    data = f.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise InvalidSubmission(f"entry {info.filename!r} is corrupt ({e})", path) from None
            if len(data) != info.file_size:
                raise UnsafeArchive(f"entry {info.filename!r} holds more or less data than its header declares",
                                    path)
            out[stem] = data
        return out
