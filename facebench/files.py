"""Writing files and folders other people can read: the one place that does atomic writes.

Why one module: every output (datasets, PNGs, reports, checkpoints) is written to a temporary
sibling and renamed into place, so a reader sees the old file or the new one, never half of one.
``tempfile.mkstemp`` makes its file 0600 and ``mkdtemp`` its folder 0700 whatever the umask, so a
rename alone publishes a file only its owner can read. Here every temporary file is chmodded to
``0o666 & ~umask`` and every temporary folder to ``0o777 & ~umask`` before it is renamed: the
result has the mode ``open()``/``mkdir`` would have given it, and a shared dataset is shared.

The umask is read once per call from ``/proc/self/status`` (Linux >= 4.7), which changes nothing.
Elsewhere it falls back to ``os.umask``, which can only be read by setting it: it is set to 0o077
(not 0) for the instant before it is restored, so a file another thread creates in that instant is
private rather than world-writable.

Folders: ``replace_dir`` swaps a finished temporary folder with the old one in one step where Linux can
(``renameat2(RENAME_EXCHANGE)``), so the folder exists, old or new, at every instant, even across
``kill -9``. Elsewhere it takes two renames, and ``recover_dir`` puts the old folder back after a kill
between them. ``fsync_tree``/``fsync_path`` make a folder durable before it is swapped in (a kill needs no
fsync, a power cut does).

JSON: ``json_dumps_strict`` writes NaN/±inf as ``null`` (strict parsers reject bare ``NaN``).
In metrics files a ``null`` score means a class in neither truth nor prediction (NaN by convention).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facebench.errors import InvalidConfig


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (see the module docstring)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path, mode: int = 0o666) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` for a writer that wants a file name (np.savez,
    pq.write_table, safetensors ``save_file``, a compiler's ``-o``); on success it gets
    ``mode & ~umask`` and replaces ``path``, on any exception it is removed and ``path`` is untouched.

    The temporary name keeps ``path``'s suffix (``.x.npz.abc.tmp.npz``), so suffix-minded writers
    (np.savez appends ``.npz`` otherwise) write exactly where they are told.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (str is UTF-8) to ``path`` through a temporary sibling; returns ``path``.

    Creates the parent folder. Readers never see half a file; a failure leaves the old file intact.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


def temp_dir(parent: str | Path, prefix: str = ".tmp-") -> Path:
    """A new empty folder in ``parent`` (created if needed) with mode ``0o777 & ~umask``, to fill and
    then move into place with ``replace_dir``. The caller removes it on failure."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def exchange(a: str | Path, b: str | Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``).

    Returns False, having changed nothing, where the OS, libc or filesystem cannot (then use two renames)."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def replace_dir(tmp: str | Path, out: str | Path) -> Path:
    """Move a finished temporary folder into place; an existing ``out`` is swapped out, then removed.

    Readers see either the old folder or the new one, never a mix. Where ``exchange`` works the swap is one
    step and ``out`` never disappears; elsewhere ``out`` is missing between two renames, and ``recover_dir``
    undoes a kill there. A kill after the swap leaves the old folder under a hidden temporary name, which
    ``recover_dir`` removes."""
    tmp, out = Path(tmp), Path(out)
    if out.exists() and exchange(tmp, out):
        shutil.rmtree(tmp)  # now the old folder
    elif out.exists():
        trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        out.rename(trash / out.name)
        tmp.rename(out)
        shutil.rmtree(trash)
    else:
        tmp.rename(out)
    return out


def recover_dir(out: str | Path, prefix: str | None = None) -> list[Path]:
    """Clean up after a writer of ``out`` that was killed; call it before writing ``out`` again.

    If ``out`` is missing but ``replace_dir`` had swapped it out (two-rename path, killed between the
    renames), the old folder is put back. Then every hidden sibling a killed writer left is removed:
    temporaries (``prefix``, default ``.{name}.tmp-``, the one ``temp_dir`` callers use) and swapped-out
    folders (``.{name}.old-``). Returns the removed paths. Not for a folder another process is writing now."""
    out = Path(out)
    prefix = prefix or f".{out.name}.tmp-"
    if not out.parent.is_dir():
        return []
    olds = sorted(p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.old-"))
    if not out.exists() and not out.is_symlink():
        for old in olds:
            if (old / out.name).exists():
                (old / out.name).rename(out)
                break
    removed = []
    for p in sorted(out.parent.iterdir()):
        if p.name.startswith((prefix, f".{out.name}.old-")) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
            removed.append(p)
    return removed


def fsync_path(path: str | Path) -> None:
    """fsync one file or folder (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file and folder under ``root`` (files first, then folders bottom-up, ``root`` last)."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(os.path.join(folder, name))
        fsync_path(folder)


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


def nan_to_none(obj: Any) -> Any:
    """``obj`` with every NaN/±inf float (numpy's included) replaced by None, through dicts, lists, tuples."""
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nan_to_none(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if getattr(obj, "ndim", None) == 0 and getattr(getattr(obj, "dtype", None), "kind", "") == "f":
        return float(obj) if math.isfinite(obj) else None  # numpy float scalars that are not float subclasses
    return obj


def json_dumps_strict(obj: Any, default: Callable[[Any], Any] | None = None, **kwargs: Any) -> str:
    """``json.dumps`` that any strict parser reads: NaN/±inf become ``null`` (``allow_nan=False``).

    ``default`` (as in json.dumps) has its result cleaned the same way; other keywords pass through."""
    wrapped = None if default is None else (lambda o: nan_to_none(default(o)))
    return json.dumps(nan_to_none(obj), allow_nan=False, default=wrapped, **kwargs)


__all__ = [
    "atomic_path", "atomic_write", "current_umask", "ensure_writable_folder", "exchange", "fsync_path", "fsync_tree",
    "json_dumps_strict", "nan_to_none", "recover_dir", "replace_dir", "temp_dir",
]  # fmt: skip
