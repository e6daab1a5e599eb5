"""Keep glibc from handing big freed blocks back to the kernel between rasterizations.

Why: every pass of the CPU rasterizer allocates fresh multi-megabyte tensors. By default glibc serves
those with mmap and returns them with munmap on free, so each step page-faults its whole working set
again; in the VMs this project runs on that was ~40% of a forward+backward. Raising the mmap and trim
thresholds keeps the memory in the heap for reuse. Peak memory does not grow (it is the same blocks,
kept). Set ``FACEBENCH_MALLOC_TUNING=0`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_done = False


def tune_malloc() -> bool:
    """Apply the settings once per process (glibc on Linux only); True if they are in force."""
    global _done
    if _done:
        return True
    _done = True
    if not sys.platform.startswith("linux") or os.environ.get("FACEBENCH_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = all(
            libc.mallopt(k, v) == 1
            for k, v in (
                (_M_MMAP_THRESHOLD, 512 * 2**20),
                (_M_TRIM_THRESHOLD, 1024 * 2**20),
                (_M_TOP_PAD, 64 * 2**20),
            )
        )
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    log.debug("malloc tuning %s", "applied" if ok else "refused")
    return ok
