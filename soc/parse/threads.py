"""Whether Numba's parallel kernels may be called from two Python threads at once.

Numba runs ``parallel=True`` kernels on a threading layer picked at the first launch: TBB or OpenMP when
the machine has them, else its own "workqueue", which aborts the whole process when two threads launch
kernels at the same time (a minimal container image has no libgomp). Engines that type in threads ask
``kernels_thread_safe`` first and stay on one thread otherwise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from soc.jit import njit, prange


@njit(cache=True, parallel=True)
def _launch(a):
    for i in prange(a.size):
        a[i] = i


@lru_cache(maxsize=1)
def kernels_thread_safe() -> bool:
    import numba

    _launch(np.zeros(2, np.int64))  # the layer is chosen at the first parallel launch
    return numba.threading_layer() != "workqueue"
