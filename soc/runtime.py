"""Settings of a whole process that runs soc (the CLI's; the benchmarks take them too, to measure what the
CLI does). A library caller keeps its own process as it is unless it calls these."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # the largest glibc takes on 64-bit machines
TRIM_THRESHOLD = 1 << 30


def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MiB for the next allocations instead of giving them
    back to the kernel. Every chunk allocates its arrays anew (spans, extracted fields, typed columns, a few
    to tens of MB each); given back and taken again, their pages were faulted in and zeroed every time, ~1 s
    of system time per GB of NDJSON here (bench/RESULTS.md). Memory already at its peak stays at it
    between chunks instead of going down and up. Also ``fewer_arenas``. Returns whether the allocator took
    the settings (False elsewhere than on glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    fewer_arenas(mallopt)
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


ARENA_MAX = 2  # glibc's arenas (its default: 8 per core, one per thread that allocates, up to that)
JEMALLOC_CONF = "_RJEM_MALLOC_CONF"  # read once, when polars is imported (added to Polars' own settings)
JEMALLOC_ARENAS = "narenas:1"  # Polars' jemalloc (its default: 4 per core, threads spread over them)


def fewer_arenas(mallopt=None) -> bool:
    """One jemalloc arena for Polars and at most ``ARENA_MAX`` glibc arenas, rather than one per thread: what
    one thread frees (Polars' pool, the read-ahead thread, Numba's workers, the main thread) is taken again
    by the others instead of waiting in an arena of its own. Peak RSS of ``soc hunt`` of the 483-file EVTX
    corpus with all SigmaHQ rules 483-513 -> 466-467 MB, of 100 k NXLog lines 695-710 -> 654-661 MB, CPU the
    same within noise (bench/RESULTS.md). Polars reads its setting when it is imported: returns False if it
    already was or the environment names an arena count already (left as it is)."""
    if mallopt is not None:
        mallopt(M_ARENA_MAX, ARENA_MAX)
    conf = os.environ.get(JEMALLOC_CONF, "")
    if "polars" in sys.modules or "narenas" in conf:
        return False
    os.environ[JEMALLOC_CONF] = f"{conf},{JEMALLOC_ARENAS}" if conf else JEMALLOC_ARENAS
    return True


BLAS_THREADS = "OPENBLAS_NUM_THREADS"  # read by NumPy's OpenBLAS when numpy is imported


def one_blas_thread() -> bool:
    """NumPy's OpenBLAS with one thread: soc multiplies no float matrices, and the thread per core OpenBLAS
    starts when numpy is imported spun for a while in every run (numpy's import alone: 0.10-0.13 -> 0.06-0.07 s
    CPU, 0.16-0.29 -> 0.07-0.09 s wall on the loaded 2-core machine). Worker processes inherit it. Returns
    False if numpy was imported already or the environment names a count (left as it is)."""
    if "numpy" in sys.modules or BLAS_THREADS in os.environ:
        return False
    os.environ[BLAS_THREADS] = "1"
    return True


GC_YOUNG = 10_000  # allocations between two passes over the youngest generation (Python's default: 700)
GC_MIDDLE = 100  # passes over the youngest between two over the middle one (Python's default: 10)


def collect_less_often() -> None:
    """Have the cyclic garbage collector look at new objects every ``GC_YOUNG`` allocations instead of 700,
    and at the middle generation every ``GC_MIDDLE`` of those passes instead of 10. A run starts by making
    objects that live as long as it does (imported modules, rules, parser specs, compiled plans) and almost
    no cyclic garbage; at Python's defaults the collector walked them again and again: in a one-line
    ``soc hunt`` with all SigmaHQ rules, ~500 young, 45 middle and 3 full passes, 150-200 ms of 1.3-1.5 s
    CPU; ~50 young passes and 2 short middle ones, ~40 ms, with these. Garbage with cycles waits a little
    longer to be freed; everything else is freed as soon as it is dropped, as before."""
    gc.set_threshold(GC_YOUNG, GC_MIDDLE)


@contextmanager
def setup_kept() -> Iterator[None]:
    """While the data flows, keep the objects alive at its start (modules, parser specs, compiled Sigma
    rules, detectors) out of the cyclic garbage collector's full passes (``gc.freeze``): they live for the
    whole run, and each full pass walked them all again, ~45 ms a pass in ``soc hunt sample_logs/``
    (bench/RESULTS.md). They go back to the collector afterwards (a caller may run again), unless the caller
    had frozen objects of its own before."""
    mine = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        yield
    finally:
        if mine:
            gc.unfreeze()


def exit_now(code: object = 0) -> NoReturn:
    """End the process as ``sys.exit(code)`` would (exit handlers run, standard streams flushed, the same status and
    message), without the interpreter's teardown: freeing every module and object of Polars, NumPy and the rules
    one by one took 0.08-0.12 s of a hunt's wall time, memory the kernel frees at once anyway. Only for a process
    that ends here (the ``soc`` command, a worker): everything it writes must be closed by then, as it is. Under a
    profiler or a tracer (``python -m cProfile -m soc``, coverage), the usual exit, so that they write their data."""
    if sys.getprofile() is not None or sys.gettrace() is not None:  # cProfile, coverage: they write at the exit
        sys.exit(code)
    status = 0 if code is None else code if isinstance(code, int) else 1
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()  # what the interpreter runs at its exit (CPython's; our workers' stop among them)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader gone (``soc hunt ... | head``) is no failure of ours
            stream.flush()
    os._exit(status & 0xFF)
