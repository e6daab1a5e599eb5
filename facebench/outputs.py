"""Output folders: checked before any work, filled so that a failure leaves nothing behind.

Why: a command that reads for minutes and then finds its ``--out`` is a file (``NotADirectoryError``), a folder
it may not write (``PermissionError``) or under a file (``FileNotFoundError``) has wasted the minutes and printed
a traceback. ``check_output_folder`` answers in one line, first, and creates nothing: a command that then fails
on its input leaves no empty folder behind. ``staged_folder`` is for commands that write many files into a folder
that may already hold others (predict's masks): they go to a hidden sibling first and are moved in only once all
of them are written, so a damaged input met halfway leaves ``--out`` as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facebench.errors import InvalidConfig
from facebench.files import temp_dir


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` if it is a folder we can write in, or one that can be created; else one line naming ``option``
    and the path. Nothing is created (the probe file is removed at once)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidConfig(f"{option} is a file, not a folder", path, hint=f"choose another {option}")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InvalidConfig(f"{option} cannot be created: {probe} is a file, not a folder", path,
                            hint=f"choose another {option}")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".facebench-write-test-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        where = "in it" if probe == path else f"in {probe}"
        raise InvalidConfig(f"{option} is not writable: cannot create files {where} ({e.strerror or e})", path,
                            hint=f"choose another {option}") from None
    return path


@contextmanager
def staged_folder(out: str | Path, option: str = "--out") -> Iterator[Path]:
    """Yield an empty hidden sibling of ``out`` to write into; on success its files are moved into ``out``
    (created if needed, files of the same name replaced, others kept), on any exception it is removed."""
    out = check_output_folder(out, option)
    missing = [p for p in out.parents if not p.exists()]  # made for the staging folder; removed on failure
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in missing:  # innermost first; only folders that are still empty
            try:
                p.rmdir()
            except OSError:
                break
        raise
    if not out.exists():
        tmp.rename(out)
        return
    for src in sorted(tmp.rglob("*")):
        if src.is_file():
            dst = out / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(tmp)


# What a report folder holds (``facebench.report``); anything else in ``--out`` is someone else's.
REPORT_ENTRIES = ("metrics.json", "per_region.csv", "per_pose_bin.csv", "evaluation.npz", "figures", "report.md",
                  "report.html")


def check_report_folder(out: str | Path, keep: tuple[str, ...] = ()) -> Path:
    """``out`` if a report may replace it whole: absent, empty, or an earlier report (plus ``keep``); else one
    line. A report folder is swapped in whole, so a folder with other files in it would lose them."""
    out = Path(out)
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir()
                         if p.name not in (*REPORT_ENTRIES, *keep) and not p.name.startswith("."))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
            raise InvalidConfig(f"--out holds files that are not a facebench report ({shown})", out,
                                hint="choose a new or empty folder; the report replaces the folder whole")
    return out
