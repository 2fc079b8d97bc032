"""A run's start-up imports what the run needs, not every engine soc has (the fixed cost of a small hunt)."""

from __future__ import annotations

import subprocess
import sys

from soc.parse.engines import ENGINES, RECORD_ENGINES, engine_class
from soc.parse.engines.records import RecordEngine
from tests.conftest import ROOT


def test_the_record_engines_are_named_without_importing_them():
    assert {name for name in ENGINES if issubclass(engine_class(name), RecordEngine)} == RECORD_ENGINES


def test_a_run_imports_the_engine_of_its_input_only():
    log = next((ROOT / "sample_logs" / "web" / "nginx").iterdir())
    code = ("import sys; from soc import pipeline; from soc.sources import discover; "
            f"stats = pipeline.run(discover([{str(log)!r}])); "
            "print(stats[0].format, *sorted(m for m in sys.modules if m.startswith('soc.parse.engines.')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=ROOT)
    fmt, *engines = res.stdout.decode().split()
    assert fmt == "web_access"
    imported = {name.rsplit(".", 1)[1] for name in engines}
    assert {"words", "evtx"} <= imported  # its engine, and the record engines (their read-ahead)
    assert not imported & {"cef", "kv", "syslog", "zeek", "w3c", "json", "windows_json"}
