"""``soc.runtime.fewer_arenas``: the CLI's process gives Polars' jemalloc one arena (less memory kept per
thread), only when it can still take it, and never over a setting of the caller's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from soc.runtime import JEMALLOC_ARENAS, JEMALLOC_CONF

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the settings are glibc/Linux ones")


def _conf(code: str, env: dict[str, str] | None = None) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != JEMALLOC_CONF} | (env or {})
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env=environ, text=True)
    return res.stdout.split()


def test_a_cli_command_gives_polars_one_jemalloc_arena():
    """Set before polars is imported (``soc.cli.main`` calls ``reuse_freed_memory`` first): Polars adds it to
    its own settings."""
    code = ("import atexit, os, sys; atexit.register(lambda: print(os.environ.get('_RJEM_MALLOC_CONF')));"
            "from soc.cli import main; sys.argv = ['soc', 'formats']; main()")
    conf = _conf(code)[-1].split(",")
    assert JEMALLOC_ARENAS in conf


def test_too_late_or_already_chosen_leaves_the_setting_alone():
    """After polars is imported, jemalloc has read its settings: nothing is changed (False); an arena count
    in the environment is the caller's choice."""
    late = ("import polars, os; from soc.runtime import fewer_arenas;"
            "print(fewer_arenas(), os.environ['_RJEM_MALLOC_CONF'])")
    took, conf = _conf(late)
    assert took == "False" and JEMALLOC_ARENAS not in conf.split(",")
    mine = "import os; from soc.runtime import fewer_arenas; print(fewer_arenas(), os.environ['_RJEM_MALLOC_CONF'])"
    assert _conf(mine, {JEMALLOC_CONF: "narenas:4"}) == ["False", "narenas:4"]
    assert _conf(mine, {JEMALLOC_CONF: "background_thread:false"}) == ["True", "background_thread:false,narenas:1"]
