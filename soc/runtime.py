"""Settings of a whole process that runs soc (the CLI's; the benchmarks take them too, to measure what the
CLI does). A library caller keeps its own process as it is unless it calls these."""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # the largest glibc takes on 64-bit machines
TRIM_THRESHOLD = 1 << 30


def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MiB for the next allocations instead of giving them
    back to the kernel. Every chunk allocates its arrays anew (spans, extracted fields, typed columns, a few
    to tens of MB each); given back and taken again, their pages were faulted in and zeroed every time, ~1 s
    of system time per GB of NDJSON here (bench/RESULTS.md). Memory already at its peak stays at it
    between chunks instead of going down and up. Returns whether the allocator took the settings (False
    elsewhere than on glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
