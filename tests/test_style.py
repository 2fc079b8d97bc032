"""The code base stays ruff-clean (the linter is part of the test suite, so CI enforces it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import IN_CI, ROOT


def test_ruff_clean():
    if importlib.util.find_spec("ruff") is None:
        if IN_CI:
            pytest.fail("ruff is not installed (it is in the [test] extra)")
        pytest.skip("ruff not installed")
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "soc", "tests", "bench"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
