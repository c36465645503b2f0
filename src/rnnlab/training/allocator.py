"""Keep glibc from returning medium-sized arrays to the OS after every step.

glibc serves each allocation over 128 KiB (a (T, B, H) float32 array of the seed run is 160 KiB)
with a fresh ``mmap`` and unmaps it on free, so every training step page-faults its temporaries
in again: about 100,000 minor faults and a quarter of the wall time of the seed run on a 2-core VM.
Raising the mmap and trim thresholds once (as the MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
environment variables would) lets freed blocks be reused. Linux/glibc only; elsewhere, or with
RNNLAB_NO_MALLOPT=1 set, nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done = False


def tune_allocator(mmap_threshold: int = 32 << 20, trim_threshold: int = 128 << 20) -> bool:
    """Apply once per process; returns True if the thresholds were set."""
    global _done
    if _done or not sys.platform.startswith("linux") or os.environ.get("RNNLAB_NO_MALLOPT"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):      # not glibc (musl has no mallopt)
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok
    _done = ok
    return ok
