"""Numba on demand: a kernel is compiled (or loaded from Numba's cache) at its first call, not at import.

Numba costs every process that uses it ~0.3 s of CPU and ~100 MB whatever the input: ``import numba``
~0.13 s and +55 MB, the first cached kernel ~0.16 s and +50 MB (its target set up; each further kernel a
few ms). A hunt of a folder of small files spends less than that in the kernels themselves, so
``soc.jit.njit`` decorates without importing Numba, and a kernel marked ``plain=True`` runs as the plain
Python function it is while the process has not loaded Numba and its plain work stays within ``BUDGET_US``
of CPU (the fixed cost it saves; plain work is charged an estimate before it runs and what it cost after,
so a process spends at most about twice the cheaper way's time). Code with a plain path of its own for small
batches (the EVTX and Windows JSON walkers, line finding in small chunks) asks ``plain`` too. Once any kernel
is compiled, every kernel is.
``SOC_JIT=numba`` or ``plain`` forces one way (tests compare both).

Numba resolves a kernel's globals when it compiles it: ``Kernel.make`` first replaces the lazy kernels
(and ``prange``, ``intrinsic``) that the function's code names by Numba's own objects.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Numba's fixed cost in a hunt, CPU us: import ~0.13 s, then ~35 ms per cached kernel loaded (10 in the
# EVTX-folder hunt with rules/windows: 0.5 s in all against SOC_JIT=plain; 0.35 s let the walk spend the
# budget and the detectors' kernels load Numba after it: both costs paid)
BUDGET_US = 600_000
ROW_US = 2  # what a plain kernel call is charged per element of its largest array argument

_LOCK = threading.RLock()
_STATE = {"spent": 0, "jitted": False, "force": os.environ.get("SOC_JIT", "")}
_INSIDE = threading.local()  # a plain kernel running: the kernels it calls run plain too, uncharged


def plain(cost_us: int) -> bool:
    """Whether work of ``cost_us`` (estimated plain-Python microseconds) may run without Numba; if so it is
    charged to the process's budget (``charge`` then corrects the estimate by what it cost)."""
    with _LOCK:
        force = _STATE["force"]
        if force:
            return force == "plain"
        if _STATE["jitted"] or _STATE["spent"] + cost_us > BUDGET_US:
            return False
        _STATE["spent"] += cost_us
        return True


def charge(cost_us: int) -> None:
    """Add ``cost_us`` (CPU microseconds, negative to give back) to what plain work has cost so far."""
    with _LOCK:
        _STATE["spent"] += cost_us


def cpu_us() -> int:
    """CPU time of this thread, in microseconds (what ``charge`` counts)."""
    return int(time.thread_time() * 1e6)


@contextmanager
def forced(way: str) -> Iterator[None]:
    """Every decision ``plain`` or ``numba`` inside (tests); kernels already compiled stay compiled."""
    before = _STATE["force"]
    _STATE["force"] = way
    try:
        yield
    finally:
        _STATE["force"] = before


def num_threads() -> int:
    """Numba's thread count, without importing Numba for it (its default: the CPUs this process may use)."""
    if "numba" in sys.modules:
        return sys.modules["numba"].get_num_threads()
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env:
        return int(env)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class _Lazy:
    """Something Numba makes when asked (``make``), once."""

    def __init__(self, fn: Callable):
        self.py_func = fn
        self._made = None
        functools.update_wrapper(self, fn)

    def made(self) -> Any:
        if self._made is None:
            with _LOCK:
                if self._made is None:
                    self._made = self.make()
        return self._made

    def make(self) -> Any:
        raise NotImplementedError


class Kernel(_Lazy):
    """A function to compile with ``numba.njit(**options)`` at its first call that is not plain."""

    def __init__(self, fn: Callable, options: dict):
        super().__init__(fn)
        self.plain = bool(options.pop("plain", False))
        self.options = options

    def __call__(self, *args, **kwargs):
        jitted = self._made
        if jitted is not None:
            return jitted(*args, **kwargs)
        if getattr(_INSIDE, "on", False):
            return self.py_func(*args, **kwargs)
        if self.plain:
            guess = ROW_US * max((getattr(a, "size", 0) for a in (*args, *kwargs.values())), default=0)
            if plain(guess):
                _INSIDE.on = True
                began = cpu_us()
                try:
                    return self.py_func(*args, **kwargs)
                finally:
                    _INSIDE.on = False
                    charge(cpu_us() - began - guess)
        return self.made()(*args, **kwargs)

    def make(self) -> Any:
        import numba

        _STATE["jitted"] = True
        _bind(self.py_func)
        return numba.njit(**self.options)(self.py_func)

    def __getattr__(self, name: str) -> Any:  # the dispatcher's public attributes (signatures, ...)
        if name.startswith("_") or name in ("py_func", "options", "plain"):  # probes (pytest's) compile nothing
            raise AttributeError(name)
        return getattr(self.made(), name)


class _Intrinsic(_Lazy):
    def make(self) -> Any:
        from numba.extending import intrinsic as numba_intrinsic

        return numba_intrinsic(self.py_func)


def njit(fn: Callable | None = None, **options) -> Any:
    """``numba.njit`` without importing Numba: ``@njit`` or ``@njit(cache=True, ...)``; ``plain=True`` lets
    small calls run as plain Python (see the module)."""
    if fn is not None:
        return Kernel(fn, dict(options))
    return lambda f: Kernel(f, dict(options))


plain_njit = functools.partial(njit, plain=True)  # ``njit(plain=True, ...)``: kernels whose Python is theirs too


def intrinsic(fn: Callable) -> _Intrinsic:
    """``numba.extending.intrinsic``, made when a kernel that calls it is compiled."""
    return _Intrinsic(fn)


def prange(*args) -> range:
    """``numba.prange`` in compiled kernels (``_bind`` puts it there), ``range`` in plain ones."""
    return range(*args)


def _names(code) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            yield from _names(const)


def _bind(fn: Callable) -> None:
    """The globals ``fn`` names made Numba's before Numba compiles it (it reads them then)."""
    import numba

    glb = fn.__globals__
    names = set(_names(fn.__code__))
    for name in names:
        value = glb.get(name)
        if value is prange:
            glb[name] = numba.prange
        elif isinstance(value, _Lazy):
            glb[name] = value.made()
        elif isinstance(value, types.ModuleType):  # ``module.kernel`` in the code
            for attr in names:
                if isinstance(getattr(value, attr, None), _Lazy):
                    setattr(value, attr, getattr(value, attr).made())
