"""``soc.jit``: kernels compiled on demand, plain Python for small work within a budget, the same answers."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from soc import jit
from soc.jit import njit, prange
from tests.conftest import ROOT


@njit(cache=False, inline="always")
def _twice(x):
    return 2 * x


@njit(cache=False, parallel=True, plain=True)
def _doubled(a):
    out = np.empty_like(a)
    for i in prange(a.size):
        out[i] = _twice(a[i])
    return out


def test_a_kernel_runs_plain_or_compiled_with_the_same_answer():
    """Plain: the Python function (no Numba); then compiled, with its lazy callee and prange made Numba's."""
    a = np.arange(10, dtype=np.int64)
    with jit.forced("plain"):
        plain = _doubled(a)
        assert _doubled(a=a).tolist() == plain.tolist()
    assert _doubled._made is None
    with jit.forced("numba"):
        compiled = _doubled(a)
    assert _doubled._made is not None and _doubled.signatures  # the dispatcher's own attributes
    assert plain.tolist() == compiled.tolist() == (2 * a).tolist()
    assert _doubled(a=a).tolist() == plain.tolist()  # by keyword too


def test_the_budget_stops_plain_work(monkeypatch):
    """Plain while the charged CPU stays within the budget; never once a kernel is compiled."""
    monkeypatch.setitem(jit._STATE, "force", "")
    monkeypatch.setitem(jit._STATE, "jitted", False)
    monkeypatch.setitem(jit._STATE, "spent", 0)
    assert jit.plain(jit.BUDGET_US - 10)
    assert not jit.plain(20)
    jit.charge(-100)
    assert jit.plain(20)
    assert jit._STATE["spent"] == jit.BUDGET_US - 90
    monkeypatch.setitem(jit._STATE, "spent", 0)
    monkeypatch.setitem(jit._STATE, "jitted", True)
    assert not jit.plain(1)


def test_importing_soc_imports_no_numba():
    code = ("import sys, soc.pipeline, soc.parse.engines.evtx, soc.detect.runner, soc.detect.kernels, "
            "soc.parse.engines.json, soc.parse.engines.windows_json; print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("tests", ["tests/test_detect_kernels.py", "tests/test_detect_windows.py"])
def test_detector_kernels_give_their_references_answers_as_plain_python(tests):
    """The detector kernels (``plain=True``) as Python pass the tests that hold them to brute-force references."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", tests],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "SOC_JIT": "plain"})
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout
