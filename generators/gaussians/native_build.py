"""Build and load the C++ kernels (``csrc/composite.cpp``: compositing and projection) once per machine, through ctypes.

Why ctypes and a plain C ABI rather than a torch extension: the kernel needs no Python or torch
headers, so it compiles in about a second with the system C++ compiler, instead of ~40 s for
``torch.utils.cpp_extension``. The library is cached under ``$FACEBENCH_CACHE`` (default
``~/.cache/facebench``) by a hash of the source, flags and compiler, written to a temporary name and
renamed, so concurrent workers never load a half-written file. No compiler, or a failed build, means
``None``: callers fall back to the pure-torch compositor. ``FACEBENCH_NATIVE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from facebench.files import atomic_path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "composite.cpp"
ABI_VERSION = 2
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-fopenmp-simd")
_loaded: list[ctypes.CDLL | None] = []
_reason: list[str] = []


def cache_dir() -> Path:
    root = os.environ.get("FACEBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "facebench"
    )
    return Path(root) / "native"


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build(cxx: str) -> Path:
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + cxx.encode() + version.encode())
    target = cache_dir() / key.hexdigest()[:16] / "libfbcomposite.so"
    if target.exists():
        return target
    with atomic_path(target, mode=0o777) as tmp:  # a shared library's usual mode: 0o755 under umask 022
        res = subprocess.run([cxx, *FLAGS, str(SOURCE), "-o", str(tmp)], capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            raise RuntimeError(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "compiler failed")
    log.info("built the C++ compositor: %s", target)
    return target


def load() -> ctypes.CDLL | None:
    """The compiled library (built on first use), or None with the reason in ``unavailable_reason()``."""
    if _loaded:
        return _loaded[0]
    lib = None
    try:
        if os.environ.get("FACEBENCH_NATIVE", "1") == "0":
            raise RuntimeError("disabled by FACEBENCH_NATIVE=0")
        cxx = _compiler()
        if cxx is None:
            raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
        lib = ctypes.CDLL(str(_build(cxx)))
        if lib.fb_composite_version() != ABI_VERSION:
            raise RuntimeError("stale library: ABI version mismatch")
        _declare(lib)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _reason.append(str(exc))
        log.info("C++ compositor unavailable (%s): using the torch compositor", exc)
        lib = None
    _loaded.append(lib)
    return lib


def require() -> ctypes.CDLL:
    """The library, or one clear ``BackendUnavailable`` saying why not (for callers that forced "cpp")."""
    lib = load()
    if lib is None:
        from facebench.errors import BackendUnavailable

        raise BackendUnavailable(f"the C++ compositor is unavailable: {unavailable_reason()}",
                                 hint="use renderer='torch' (pure torch, no compiler needed)")
    return lib


def ptr(x) -> int:
    """The address ctypes passes for a contiguous CPU tensor."""
    return x.data_ptr()


def unavailable_reason() -> str:
    return _reason[0] if _reason else ""


def _declare(lib: ctypes.CDLL) -> None:
    p, i64, i32, f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
    scene = [i32, p, p, p, p, i64, i64, i32, i32, f64]
    lib.fb_composite_forward.argtypes = [*scene, p, p, i32]
    lib.fb_composite_forward.restype = None
    lib.fb_composite_backward.argtypes = [*scene, p, p, p, p, p, p, i32]
    lib.fb_composite_backward.restype = None
    proj = [i32, p, p, p, i64, p, p, i32, i32, f64, f64, f64]
    lib.fb_project_forward.argtypes = [*proj, p, p, p, p, p]
    lib.fb_project_forward.restype = None
    lib.fb_project_backward.argtypes = [*proj, p, p, p, p, p, p]
    lib.fb_project_backward.restype = None
