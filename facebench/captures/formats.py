"""The capture formats facebench reads, by name: one registry, format detection, and the two entry points
everything else uses (``read_capture``, ``find_captures``).

A format is a reader module (``read_X(folder, **options) -> Capture`` and ``detect(folder) -> bool``, from the
files present) plus one line in ``READERS``. A folder must match exactly one format; ``format=`` overrides
detection when several match.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import facebench.captures.colmap as colmap
import facebench.captures.facescape as facescape
import facebench.captures.multiface as multiface
import facebench.captures.nerfstudio as nerfstudio
import facebench.captures.nersemble as nersemble
from facebench.captures.capture import Capture
from facebench.errors import InputNotFound, InvalidCapture, InvalidConfig


@dataclass(frozen=True)
class CaptureReader:
    """A format: ``read(folder, **options)`` → Capture (unchecked), ``detect(folder)`` from the files present,
    and ``marks``, what detection looks for (for messages)."""

    read: Callable[..., Capture]
    detect: Callable[[Path], bool]
    marks: str

    def __call__(self, folder: str | Path, **options: Any) -> Capture:
        return self.read(folder, **options)

    @property
    def options(self) -> tuple[str, ...]:
        """The keyword options the reader takes (e.g. ``frame``), beyond the folder."""
        return tuple(list(inspect.signature(self.read).parameters)[1:])


READERS: dict[str, CaptureReader] = {
    "nerfstudio": CaptureReader(nerfstudio.read_transforms, nerfstudio.detect, "transforms.json"),
    "colmap": CaptureReader(colmap.read_colmap, colmap.detect, "cameras + images .bin/.txt (here, sparse/, sparse/N/)"),
    "facescape": CaptureReader(facescape.read_facescape, facescape.detect, "params.json"),
    "nersemble": CaptureReader(nersemble.read_nersemble, nersemble.detect, "camera_params.json (here or calibration/)"),
    "multiface": CaptureReader(multiface.read_multiface, multiface.detect, "KRT + images/"),
}  # fmt: skip


def formats_of(folder: Path) -> list[str]:
    """Every format whose files ``folder`` holds (usually none or one)."""
    return [name for name, r in READERS.items() if folder.is_dir() and r.detect(folder)]


def _known() -> str:
    return "; ".join(f"{n}: {r.marks}" for n, r in READERS.items())


def reader(format: str) -> CaptureReader:
    if format not in READERS:
        raise InvalidConfig(f"unknown capture format {format!r}", hint="use " + ", ".join(READERS))
    return READERS[format]


def detect_format(folder: str | Path) -> str:
    """The one format ``folder``'s files say it is, or one line naming the folder (none, or several)."""
    folder = Path(folder)
    if not folder.exists():
        raise InputNotFound("capture does not exist", folder)
    found = formats_of(folder)
    if not found:
        raise InvalidCapture("not a capture: no format's files here", folder, hint=f"looked for {_known()}")
    if len(found) > 1:
        raise InvalidCapture(f"files of several capture formats here ({', '.join(found)})", folder,
                             hint="keep one format per folder, or name the one to read (format=…)")
    return found[0]


def read_capture(path: str | Path, format: str | None = None, **options: Any) -> Capture:
    """Read a capture folder (detected, or of the named ``format``) and check it once (``Capture.check``):
    what the refinement reads. ``options`` go to the format's reader (e.g. ``frame=`` for NeRSemble and
    Multiface); a file path reads a nerfstudio ``transforms.json``-like file."""
    path = Path(path)
    if not path.exists():
        raise InputNotFound("capture does not exist", path)
    folder = path.parent if path.is_file() else path
    name = format if format is not None else detect_format(folder)
    r = reader(name)
    unknown = sorted(set(options) - set(r.options))
    if unknown:
        raise InvalidConfig(f"the {name} format takes no option {unknown[0]!r}",
                            hint=f"it takes: {', '.join(r.options) or 'none'}")
    target = path if path.is_file() and name == "nerfstudio" else folder
    return r(target, **options).check()


def find_captures(paths: Sequence[str | Path], format: str | None = None) -> list[Path]:
    """Each path is a capture folder (of any known format, or of ``format``) or a folder of such folders, in
    name order."""
    if format is not None:
        reader(format)

    def is_capture(d: Path) -> bool:
        return (READERS[format].detect(d) if d.is_dir() else False) if format else bool(formats_of(d))

    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputNotFound("capture does not exist", p)
        if is_capture(p):
            out.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if is_capture(d)) if p.is_dir() else []
        if not subs:
            looked = f"{format}: {READERS[format].marks}" if format else _known()
            raise InvalidCapture("no capture here or in its subfolders", p, hint=f"looked for {looked}")
        out.extend(subs)
    return out
