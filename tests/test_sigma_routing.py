"""Logsource routing: a rule sees only the frames its logsource (and pinned event ids) name, with the
field names of each (Security 4688 for process_creation, Defender's spaced names)."""

from __future__ import annotations

import polars as pl

from soc.sigma.hunt import Hunter
from soc.sigma.loader import RuleSet, compile_rule, route
from soc.sigma.mapping import default_pipeline
from soc.sigma.modifiers import register


def compiled(text: str):
    from sigma.rule import SigmaRule

    register()
    rule = compile_rule(SigmaRule.from_yaml(text), "test.yml")
    route([rule], default_pipeline())
    return rule


PROCESS = """title: Whoami
id: 0a0a0a0a-0000-4000-8000-0000000000d1
author: t
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\whoami.exe', ParentImage|endswith: '\\\\cmd.exe'}
  condition: selection
"""
LOGON = """title: Network logon
id: 0a0a0a0a-0000-4000-8000-0000000000d2
author: t
logsource: {product: windows, service: security}
detection:
  selection: {EventID: 4624, LogonType: 3}
  condition: selection
"""
DEFENDER = """title: EICAR
id: 0a0a0a0a-0000-4000-8000-0000000000d3
author: t
logsource: {product: windows, service: windefend}
detection:
  selection: {EventID: 1116, ThreatName|contains: 'EICAR'}
  condition: selection
"""


def frame(**columns) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    return pl.DataFrame({"@timestamp": pl.Series([None] * n, dtype=pl.Datetime("us", "UTC")),
                         "log.file.path": ["x.evtx"] * n, "log.offset": list(range(n)), **columns})


def test_process_creation_runs_on_sysmon_1_and_security_4688_with_their_field_names():
    rule = compiled(PROCESS)
    assert {t.dataset for t in rule.targets} == {"windows.sysmon.1", "windows.security.4688"}
    hunter = Hunter(RuleSet([rule], []))
    sysmon = frame(Image=["C:\\Windows\\System32\\whoami.exe", "C:\\x\\whoami.exe"],
                   ParentImage=["C:\\Windows\\System32\\cmd.exe", "C:\\x\\explorer.exe"])
    security = frame(NewProcessName=["C:\\Windows\\System32\\WHOAMI.EXE"],
                     ParentProcessName=["C:\\Windows\\System32\\cmd.exe"])
    assert hunter.evaluate(("windows", "windows.sysmon.1"), sysmon)["log.offset"].to_list() == [0]
    assert hunter.evaluate(("windows", "windows.security.4688"), security).height == 1
    assert hunter.evaluate(("windows", "windows.sysmon.3"), sysmon).height == 0  # not its logsource
    assert hunter.evaluate(("web", "nginx.access"), sysmon).height == 0


def test_a_pinned_event_id_narrows_a_service_to_that_frame():
    rule = compiled(LOGON)
    assert [t.dataset for t in rule.targets] == ["windows.security.4624"]
    hunter = Hunter(RuleSet([rule], []))
    logons = frame(LogonType=["3", "2"], **{"winlog.event_id": pl.Series([4624, 4624], dtype=pl.UInt32)})
    assert hunter.evaluate(("windows", "windows.security.4624"), logons)["log.offset"].to_list() == [0]
    assert hunter.evaluate(("windows", "windows.security.4625"), logons).height == 0


def test_defender_fields_written_with_spaces_match_sigma_names():
    rule = compiled(DEFENDER)
    hunter = Hunter(RuleSet([rule], []))
    detected = frame(**{"Threat Name": ["Virus:DOS/EICAR_Test_File", "Trojan:X"],
                        "winlog.event_id": pl.Series([1116, 1116], dtype=pl.UInt32)})
    assert hunter.evaluate(("windows", "windows.defender.1116"), detected)["log.offset"].to_list() == [0]
