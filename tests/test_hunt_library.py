"""``soc.hunt``: the whole hunt as one library call, without the CLI. Its report is what ``soc hunt --json``
prints, everything is written and delivered before it returns, usage errors are ``HuntError``, and the seams
(ready sources, own hunter and runner, an executor, an observer) are used as they say."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest

from soc.config import Config
from soc.hunt import HuntError, HuntReport, HuntRequest, Observer, run_hunt
from tests.conftest import ROOT
from tests.test_detectors_cli import PLANTED

SAMPLES = ROOT / "sample_logs"


def _request(tmp_path, inputs=None, **kw) -> HuntRequest:
    """A hunt that reads no configuration of the machine's (no soc.toml, no Elasticsearch)."""
    return HuntRequest([str(SAMPLES)] if inputs is None else inputs, data_dir=str(tmp_path / "data"),
                       config=Config(), to_es=False, **kw)


def _comparable(doc: dict) -> dict:
    for f in doc["files"]:
        f["seconds"] = None  # the only values that differ between two runs, with the data folder's name
    doc["alerts"].pop("data_dir", None)
    return json.loads(json.dumps(doc, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


class Seen(Observer):
    def __init__(self):
        self.stages: list[str] = []
        self.messages: list[tuple[str, str]] = []

    def message(self, level, text):
        self.messages.append((level, text))

    def stage(self, name, report):
        assert isinstance(report, HuntReport)
        self.stages.append(name)


@pytest.fixture(scope="module")
def sample_hunt(tmp_path_factory) -> tuple[HuntReport, Seen, object]:
    import gc

    tmp = tmp_path_factory.mktemp("hunt")
    seen = Seen()
    gc.unfreeze()  # what earlier tests froze
    report = run_hunt(_request(tmp, observer=seen))
    assert gc.get_freeze_count() == 0  # the hunt's frozen objects handed back to the collector (a caller may rerun)
    return report, seen, tmp


def test_the_library_reports_what_the_cli_prints_as_json(sample_hunt, tmp_path):
    report, _, _ = sample_hunt
    env = {**os.environ, "SOC_CONFIG": "", "SOC_ES_URL": ""}
    res = subprocess.run([sys.executable, "-m", "soc", "hunt", str(SAMPLES), "--data-dir", str(tmp_path / "cli"),
                          "--no-es", "--json"], capture_output=True, cwd=tmp_path, env=env, timeout=600)
    assert res.returncode == 0, res.stderr.decode()
    cli = json.loads(res.stdout)
    assert _comparable(report.as_dict()) == _comparable(cli)
    assert cli["sigma"]["matches"] == report.sigma.count > 0
    assert cli["detectors"]["hits"] == report.detectors.hits.height == len(PLANTED)
    assert cli["alerts"]["alerts"] == report.delivery.alerts > 0


def test_the_report_holds_every_stage(sample_hunt):
    report, seen, tmp = sample_hunt
    assert report.exit_code == 0 and report.errors == [] and report.warnings == []
    assert seen.stages == ["read", "sigma", "detectors", "alerts"] and seen.messages == []
    assert {"read", "sigma", "detectors", "alerts"} <= set(report.seconds)
    assert len(report.stats) == 7 and all(st.read == st.parsed + st.dead and st.read > 0 for st in report.stats)
    sigma = report.sigma
    assert sigma.rules + sigma.correlations == 16 and sigma.failures == []
    assert sigma.events == sum(sum(st.events.values()) for st in report.stats)
    frame = sigma.frame()  # the matches file read back: the same rows the counts say
    assert frame.height == sigma.count == sum(r["matches"] for r in sigma.by_rule())
    assert frame.group_by("rule.id").len().sort("rule.id").equals(
        sigma.counts("rule.id").sort("rule.id").cast({"len": frame.group_by("rule.id").len()["len"].dtype}))
    hits = report.detectors.hits
    assert set(zip(hits["rule.id"], hits["source.ip"], strict=True)) == PLANTED
    assert report.detectors.specs == len(report.runner.specs) and report.detectors.failures == []
    assert report.hunter.events == sigma.events and report.runner.events == sigma.events
    # delivered before returning: the store holds the alerts, the matches and hits are kept as Parquet
    stored = pl.concat([pl.read_parquet(f) for f in (tmp / "data" / "alerts").rglob("*.parquet")])
    assert report.delivery.stored_new == report.delivery.alerts == stored.height
    assert report.delivery.error is None and report.delivery.elasticsearch is None
    assert sum(pl.read_parquet(f).height for f in (tmp / "data" / "sigma_matches").rglob("*.parquet")) == sigma.count
    assert sum(pl.read_parquet(f).height for f in (tmp / "data" / "detector_hits").rglob("*.parquet")) == hits.height


def test_ready_sources_own_runner_and_hunter_and_an_executor(tmp_path):
    """What jobs and a distributed run plug in: Source objects (a checkpoint's), their own detector runner and
    Sigma hunter, their own way of reading the inputs into the wired stages."""
    from soc import pipeline
    from soc.detect.runner import DetectorRunner
    from soc.sigma.hunt import hunter_for
    from soc.sources import discover

    made: dict[str, object] = {}

    def runner(specs):
        made["runner"] = DetectorRunner(specs)
        return made["runner"]

    def hunter(ruleset, out):
        made["hunter"] = hunter_for(ruleset, out=out)
        return made["hunter"]

    def executor(sources, stages, on_bytes):
        made["sources"] = [s.path for s in sources]
        assert stages.hunter is made["hunter"] and stages.runner is made["runner"]
        return pipeline.run(sources, stages.sink, stages.options, on_bytes)

    (source,) = discover([str(SAMPLES / "linux" / "auth.log")])
    report = run_hunt(_request(tmp_path, [source, str(SAMPLES / "mail")], make_runner=runner, make_hunter=hunter,
                               executor=executor))
    assert report.runner is made["runner"] and report.hunter is made["hunter"]
    assert made["sources"] == [source.path, str(SAMPLES / "mail" / "mail.log")]
    assert [st.read for st in report.stats] == [320, 330]
    assert {"soc-ssh-brute-force", "soc-smtp-auth-brute-force"} == set(report.detectors.hits["rule.id"])
    assert report.exit_code == 0 and report.delivery.alerts > 0


def test_no_detectors_and_nothing_to_deliver(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    report = run_hunt(_request(tmp_path, SAMPLES / "linux", no_detectors=True, rules=str(rules)))  # one each
    assert [st.read for st in report.stats] == [320]
    assert report.detectors is None and report.runner is None
    assert report.sigma.rules == 0 and report.sigma.count == 0 and report.delivery is None
    assert report.as_dict()["alerts"] == {"alerts": 0, "stored_new": 0} and report.exit_code == 0


def test_usage_errors_are_hunt_errors(tmp_path):
    with pytest.raises(HuntError, match="no such file, directory or glob match"):
        run_hunt(_request(tmp_path, [str(tmp_path / "nothing-here.log")]))
    with pytest.raises(HuntError, match="no detector"):
        run_hunt(_request(tmp_path, settings=["soc-nope.threshold=1"]))
    with pytest.raises(HuntError, match="unknown format"):
        from soc.pipeline import Options

        run_hunt(_request(tmp_path, [str(SAMPLES / "linux")], options=Options(format="no-such-format")))
    bad = tmp_path / "soc.toml"
    bad.write_text("[alerts\n")
    with pytest.raises(HuntError, match="configuration"):
        run_hunt(HuntRequest([str(SAMPLES / "linux")], data_dir=str(tmp_path / "d"), config=str(bad)))


def test_inputs_it_cannot_read_are_errors_in_the_report_not_exceptions(tmp_path):
    readme = tmp_path / "README.txt"
    readme.write_bytes(b"\x00\x01 not a log\n")
    seen = Seen()
    report = run_hunt(_request(tmp_path, [str(readme)], no_detectors=True, observer=seen))
    assert report.exit_code == 2 and report.stats[0].skipped
    assert report.warnings[0].startswith(f"{readme}: skipped: ")
    assert report.errors == ["no input is in a format soc knows: nothing was read (name one with --format)"]
    assert seen.messages == [("warning", report.warnings[0]), ("error", report.errors[0])]


def test_the_library_imports_without_click_and_nothing_heavy_at_import(tmp_path):
    log = str(SAMPLES / "linux" / "auth.log")
    code = ("import sys\nsys.modules['click'] = None\nimport soc.hunt\n"
            "print(sorted(m for m in ('polars', 'numpy', 'sigma', 'numba') if m in sys.modules))\n"
            "from soc.config import Config\n"
            f"r = soc.hunt.run_hunt(soc.hunt.HuntRequest([{log!r}], data_dir={str(tmp_path)!r}, config=Config(),"
            " to_es=False))\n"
            "print(r.exit_code, r.stats[0].read, r.detectors.hits.height > 0, r.delivery.alerts > 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["[]", "0 320 True True"]
