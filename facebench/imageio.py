"""Deterministic, lossless PNG encoding and decoding for images and label maps."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from facebench.errors import InvalidConfig, InvalidMask, require_exists

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(array: np.ndarray) -> bytes:
    """uint8 H×W (label map) or H×W×3 (RGB) -> PNG bytes; same array, same bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {array.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def decode_png(data: bytes, what: str = "image", path: str | Path | None = None) -> np.ndarray:
    """PNG bytes -> uint8 array (RGB for images, single channel for masks)."""
    img = Image.open(io.BytesIO(data))
    if what == "mask":
        if not data.startswith(PNG_SIGNATURE):
            raise InvalidMask("mask is not a lossless PNG", path)
        if img.mode not in ("L", "P"):
            raise InvalidMask(f"mask must be single-channel, got mode {img.mode}", path)
        return np.array(img, dtype=np.uint8)
    return np.array(img.convert("RGB"))


def read_mask(path: str | Path) -> np.ndarray:
    """Read an H×W uint8 label PNG, with a one-line error if it is anything else."""
    path = require_exists(path, "mask")
    return decode_png(path.read_bytes(), "mask", path)


def read_image(path: str | Path) -> np.ndarray:
    path = require_exists(path, "image")
    return np.asarray(Image.open(path).convert("RGB"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary sibling then rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_png(path: str | Path, array: np.ndarray) -> Path:
    return atomic_write_bytes(path, encode_png(array))


def replace_dir(tmp: str | Path, out: str | Path) -> Path:
    """Move a finished temporary folder into place; an existing ``out`` is swapped out, then removed.

    Readers see either the old folder or the new one, never a mix (one rename each way).
    """
    import shutil

    tmp, out = Path(tmp), Path(out)
    if out.exists():
        trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        out.rename(trash / out.name)
        tmp.rename(out)
        shutil.rmtree(trash)
    else:
        tmp.rename(out)
    return out


def ensure_writable_folder(path: str | Path) -> Path:
    """Create ``path`` (a folder) if needed and prove we can write in it, or raise one clear line.

    Long jobs call this first, so a read-only or mistyped --out fails before any work, not after it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise InvalidConfig(f"cannot write the output folder ({e.strerror or e})", p,
                            hint="choose another --out") from None
    return p
