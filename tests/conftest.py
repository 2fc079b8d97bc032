"""Shared test helpers: the corpora folder (skipped when absent, a failure in CI) and a one-call parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(path: Path, what: str) -> Path:
    """``path`` if it exists; else skip (on a user's machine) or fail (in CI, where it must be there)."""
    if path.exists():
        return path
    message = f"{what} not found at {path}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: prerequisites must be present)")
    pytest.skip(message)


def xdist_group(nodeid: str) -> str:
    """The worker group of a test under .ci/run's two pytest-xdist workers (``--dist loadgroup``): its module,
    whose module fixtures and first-call Numba compiles are then paid once (and the two workers rarely compile
    the same kernel at the same time); all the modules of the session's Elasticsearch server (test_es.py and
    those importing from it: one server, started and stopped once), and all those that start a Ray cluster
    (themselves or through bench/bench_ray.py: one at a time on the machine's 2 CPUs), each in one worker."""
    module = nodeid.split("::")[0]
    text = _module_text(module)
    if module == "tests/test_es.py" or "tests.test_es import" in text:
        return "elasticsearch"
    if "ray.init(" in text or "cluster_utils" in text or "import bench_ray" in text:  # bench_ray starts one too
        return "ray"
    return module


@cache
def _module_text(module: str) -> str:
    path = ROOT / module
    return path.read_text(encoding="utf-8") if path.suffix == ".py" and path.is_file() else ""


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pytest-xdist (the [test] extra) not installed: one process
    LoadScopeScheduling = None

if LoadScopeScheduling is not None:
    class GroupScheduling(LoadScopeScheduling):
        """xdist's scope scheduling by ``xdist_group``: whole groups to a worker, the most tests first. (xdist's
        own ``loadgroup`` reads ``xdist_group`` marks through a node id that pytest 9 no longer lets it
        change.)"""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadScopeScheduling | None:
        return GroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.fixture
def corpora() -> Path:
    return need(CORPORA, "shared corpora (../shared/corpora beside the repository)")


class Keep:
    """A pipeline sink (``soc.pipeline.Sink``) that keeps every frame, by (family, dataset), and the dead
    letters (non-empty ones)."""

    def __init__(self):
        self.frames: dict[tuple[str, str], list] = {}
        self.dead: list = []

    def write(self, source_path, family, dataset, frame):
        self.frames.setdefault((family, dataset), []).append(frame)

    def write_dead(self, source_path, dead):
        if dead.height:
            self.dead.append(dead)

    def close_source(self, source_path): ...
    def close(self): ...


@cache
def _specs() -> dict:
    """The shipped parser specs, loaded once for the session (property tests parse thousands of inputs)."""
    from soc.parse.spec import load_specs

    return load_specs()


def parse_text(spec_name: str, text: str | bytes, path: str = "test.log", zone: str = "Asia/Ho_Chi_Minh",
               year: int | None = 2026, chunk_size: int | None = None, reference: datetime | None = None):
    """Parse ``text`` with one spec through the real engine; return a ``ParseResult`` merged over chunks.

    Year-less stamps are read against ``reference`` if given (e.g. a file's mtime), else ``year``'s end.
    """
    import io

    import polars as pl

    from soc.parse.batch import LineBatch, ParseResult, empty_dead
    from soc.parse.columns import Context
    from soc.parse.engines import engine_class
    from soc.sources import read_chunks

    spec = _specs()[spec_name]
    ref = reference or (datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC) if year else datetime.now(UTC))
    engine = engine_class(spec.engine)(spec, Context(path, zone, ref))
    data = text.encode() if isinstance(text, str) else text
    frames: dict = {}
    dead = [empty_dead()]
    lines = 0
    for chunk in read_chunks(io.BytesIO(data), chunk_size or 1 << 20):
        batch = LineBatch(chunk, path)
        res = batch.oversize() if chunk.oversize else engine.parse(batch)
        lines += res.lines
        dead.append(res.dead)
        for key, frame in res.frames.items():
            frames.setdefault(key, []).append(frame)
    tail = engine.finish()  # a record cut by the end of the input
    if tail is not None:
        lines += tail.lines
        dead.append(tail.dead)
    merged = {k: pl.concat(v) for k, v in frames.items()}
    return ParseResult(merged, pl.concat(dead), lines)


_HUNT = ("import sys\nfrom soc.cli import main\nsys.argv = ['soc', 'hunt', *sys.argv[1:]]\n"
         "try:\n    main()\n"  # click's command (``python -m soc`` would end the process: ``soc.cli.run``)
         "except SystemExit:\n    pass\n"
         "print('NUMBA', 'numba' in sys.modules)")


def hunt_both_ways(inputs: list[str], rules: str, data: Path) -> dict[str, tuple[bool, dict]]:
    """``soc hunt INPUTS --rules RULES --json`` in a fresh process, the default way ("") and with
    SOC_JIT=numba: per way, whether Numba was imported and the JSON report (data folder and timings left out),
    for tests that a small hunt needs no Numba and gives the same report without it."""
    out = {}
    for way in ("", "numba"):
        folder = data / (way or "auto")
        args = [*inputs, "--rules", rules, "--data-dir", str(folder), "--no-es", "--json"]
        done = subprocess.run([sys.executable, "-c", _HUNT, *args], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "SOC_CONFIG": "", "SOC_JIT": way})
        assert done.returncode == 0, done.stderr[-2000:]
        lines = done.stdout.strip().splitlines()
        report = json.loads("\n".join(lines[:-1]).replace(str(folder), "DATA"))
        for f in report["files"]:
            f.pop("seconds")
        out[way] = (lines[-1] == "NUMBA True", report)
    return out
