"""Sigma correlation rules (pySigma YAML) on hand-made match frames: every type, the window edges, grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from sigma.collection import SigmaCollection

from soc.sigma.correlation import CorrelationError, correlate, keep_base_alerts, required_rules

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
FAILED_ID = "5638f7c0-ac70-491d-8465-2a65075e0d86"
SUCCESS_ID = "7a1b2c3d-0000-4000-8000-000000000001"

BASE = f"""
title: Failed logon
id: {FAILED_ID}
name: failed_logon
logsource: {{product: windows, service: security}}
detection:
  selection: {{EventID: 4625}}
  condition: selection
---
title: Successful logon
id: {SUCCESS_ID}
name: successful_logon
logsource: {{product: windows, service: security}}
detection:
  selection: {{EventID: 4624}}
  condition: selection
---
title: Outbound connection
name: outbound
logsource: {{category: firewall}}
detection:
  selection: {{action: allow}}
  condition: selection
"""


def correlation(body: str):
    """The correlation rule of BASE + ``body`` (pySigma resolves its references)."""
    rules = SigmaCollection.from_yaml(BASE + "---\n" + body).rules
    return rules[-1]


def events(rows: list[dict], path: str = "sec.log") -> pl.DataFrame:
    """A match frame: ``t`` in seconds after T0 (or a timedelta), other keys become columns."""
    out = []
    for i, row in enumerate(rows):
        row = dict(row)
        t = row.pop("t")
        out.append({"@timestamp": T0 + (t if isinstance(t, timedelta) else timedelta(seconds=t)),
                     "log.file.path": path, "log.line": i + 1, "log.offset": i * 100, "event.dataset": "test",
                     **row})
    frame = pl.DataFrame(out) if out else pl.DataFrame(schema={"@timestamp": pl.Datetime("us", "UTC")})
    return frame.with_columns(pl.col("@timestamp").cast(pl.Datetime("us", "UTC")))


def matches(**frames: pl.DataFrame) -> dict[str, pl.DataFrame]:
    ids = {"failed_logon": FAILED_ID, "successful_logon": SUCCESS_ID}
    out = dict(frames)
    out.update({ids[name]: frame for name, frame in frames.items() if name in ids})
    return out


def count_rule(condition: str, timespan: str = "5m", group_by: str = "[IpAddress]") -> str:
    return f"""
title: Many failed logons
id: 0e95725d-7320-415d-80f7-004da920fc11
level: high
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: {group_by}
  timespan: {timespan}
  condition: {condition}
"""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# event_count -------------------------------------------------------------------------------------------------

def test_event_count_threshold_exactly_met_and_one_short():
    rule = correlation(count_rule("{gte: 3}"))
    three = events([{"t": s, "IpAddress": "10.0.0.1"} for s in (0, 60, 120)])
    out = correlate(rule, matches(failed_logon=three))
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["@timestamp"] == at(120) and row["window.start"] == at(0) and row["window.end"] == at(120)
    assert row["event.count"] == 3 and row["correlation.value"] == 3 and row["IpAddress"] == "10.0.0.1"
    assert row["rule.id"] == "0e95725d-7320-415d-80f7-004da920fc11" and row["rule.level"] == "high"
    assert row["rule.name"] == "Many failed logons" and row["correlation.type"] == "event_count"
    assert [e["log.line"] for e in row["evidence"]] == [1, 2, 3]
    assert {e["rule.id"] for e in row["evidence"]} == {FAILED_ID}
    assert correlate(rule, matches(failed_logon=three.head(2))).height == 0
    assert correlate(correlation(count_rule("{gt: 3}")), matches(failed_logon=three)).height == 0


@pytest.mark.parametrize(("gap", "alerts"), [(timedelta(minutes=5), 1),
                                             (timedelta(minutes=5) - timedelta(microseconds=1), 1),
                                             (timedelta(minutes=5) + timedelta(microseconds=1), 0)])
def test_window_boundary_is_inclusive_to_the_microsecond(gap, alerts):
    rule = correlation(count_rule("{gte: 2}"))
    pair = events([{"t": 0, "IpAddress": "a"}, {"t": gap, "IpAddress": "a"}])
    assert correlate(rule, matches(failed_logon=pair)).height == alerts


def test_out_of_order_input_gives_the_same_alerts():
    rule = correlation(count_rule("{gte: 3}"))
    rows = [{"t": s, "IpAddress": ip} for s, ip in [(0, "a"), (10, "b"), (20, "a"), (30, "b"), (40, "a"),
                                                    (50, "b"), (1000, "a")]]
    in_order = correlate(rule, matches(failed_logon=events(rows)))
    shuffled = events(rows).sample(fraction=1.0, shuffle=True, seed=7)
    out = correlate(rule, matches(failed_logon=shuffled))
    assert out.drop("evidence").sort("IpAddress").equals(in_order.drop("evidence").sort("IpAddress"))
    assert out.sort("IpAddress")["@timestamp"].to_list() == [at(40), at(50)]


def test_interleaved_groups_are_counted_apart():
    rule = correlation(count_rule("{gte: 3}"))
    rows = [{"t": i, "IpAddress": ("a", "b", "c")[i % 3]} for i in range(8)]  # a: 3 events, b: 3, c: 2
    out = correlate(rule, matches(failed_logon=events(rows))).sort("IpAddress")
    assert out["IpAddress"].to_list() == ["a", "b"]
    assert out["event.count"].to_list() == [3, 3]


def test_one_alert_per_episode_and_a_new_one_after_the_window_slides_past():
    rule = correlation(count_rule("{gte: 3}", timespan="1m"))
    burst = [{"t": s, "IpAddress": "a"} for s in range(0, 300, 10)]  # 30 events over 5 minutes: one episode
    later = [{"t": s, "IpAddress": "a"} for s in (600, 601, 602)]  # after a quiet 5 minutes: a new one
    out = correlate(rule, matches(failed_logon=events(burst + later)))
    assert out["@timestamp"].to_list() == [at(20), at(602)]
    assert out["window.end"].to_list() == [at(290), at(602)]
    assert out["event.count"].to_list() == [30, 3]


def test_a_flickering_condition_stays_one_alert():
    rule = correlation(count_rule("{gte: 3}", timespan="1m"))
    times = [0, 20, 40, 85, 100, 145, 160, 205, 220]  # 1-minute windows hold 1, 2, 3, 2, 3, 3, 3, 3, 3 events
    out = correlate(rule, matches(failed_logon=events([{"t": s, "IpAddress": "a"} for s in times])))
    assert out["@timestamp"].to_list() == [at(40)] and out["window.end"].to_list() == [at(220)]
    assert out["event.count"].to_list() == [9]


def test_lt_fires_on_sparse_activity_only():
    rule = correlation(count_rule("{lt: 3}", timespan="1m"))
    rows = [{"t": s, "IpAddress": "a"} for s in (0, 10, 20, 30)]  # counts 1, 2, 3, 4: holds at 0 and 10
    rows += [{"t": 500, "IpAddress": "a"}]  # alone again: a new episode
    out = correlate(rule, matches(failed_logon=events(rows)))
    assert out["@timestamp"].to_list() == [at(0), at(500)]
    assert out["correlation.value"].to_list() == [1, 1]


@pytest.mark.parametrize(("condition", "count"), [("{eq: 2}", 1), ("{neq: 2}", 1), ("{lte: 2}", 1),
                                                  ("{eq: 4}", 0)])
def test_other_operators(condition, count):
    rule = correlation(count_rule(condition, timespan="1m"))
    out = correlate(rule, matches(failed_logon=events([{"t": s, "IpAddress": "a"} for s in (0, 10, 20)])))
    assert out.height == count


def test_no_group_by_counts_everything_together():
    rule = correlation(count_rule("{gte: 3}", group_by="[]"))
    rows = [{"t": s, "IpAddress": ip} for s, ip in [(0, "a"), (1, "b"), (2, "c")]]
    out = correlate(rule, matches(failed_logon=events(rows)))
    assert out.height == 1 and "IpAddress" not in out.columns


def test_null_group_values_are_skipped_or_grouped():
    rule = correlation(count_rule("{gte: 2}"))
    rows = events([{"t": 0, "IpAddress": None}, {"t": 1, "IpAddress": None}, {"t": 2, "IpAddress": "a"}])
    assert correlate(rule, matches(failed_logon=rows)).height == 0
    out = correlate(rule, matches(failed_logon=rows), null_groups="group")
    assert out["IpAddress"].to_list() == [None]


def test_empty_input_and_one_group_only():
    rule = correlation(count_rule("{gte: 2}"))
    empty = correlate(rule, matches(failed_logon=events([])))
    assert empty.height == 0 and "IpAddress" in empty.columns and empty.schema["event.count"] == pl.Int64
    one = correlate(rule, matches(failed_logon=events([{"t": 0, "IpAddress": "a"}, {"t": 1, "IpAddress": "a"}])))
    assert one["IpAddress"].to_list() == ["a"]


def test_column_of_maps_sigma_fields_to_ecs_columns():
    rule = correlation(count_rule("{gte: 2}"))
    frame = events([{"t": 0, "source.ip": "a"}, {"t": 1, "source.ip": "a"}])
    mapping = {"IpAddress": "source.ip"}
    out = correlate(rule, matches(failed_logon=frame), column_of=lambda key, field: mapping.get(field))
    assert out["IpAddress"].to_list() == ["a"]


def test_an_event_matched_by_two_referenced_rules_counts_once():
    rule = correlation(count_rule("{gte: 3}").replace("[failed_logon]", "[failed_logon, successful_logon]"))
    frame = events([{"t": s, "IpAddress": "a"} for s in (0, 1)])
    assert correlate(rule, matches(failed_logon=frame, successful_logon=frame)).height == 0
    other = events([{"t": 2, "IpAddress": "a"}], path="other.log")
    out = correlate(rule, matches(failed_logon=frame, successful_logon=other))
    assert out["event.count"].to_list() == [3]


def test_evidence_is_capped_and_the_total_kept(monkeypatch):
    from soc.sigma import correlation as module

    monkeypatch.setattr(module, "MAX_EVIDENCE", 4)
    rule = correlation(count_rule("{gte: 2}"))
    out = correlate(rule, matches(failed_logon=events([{"t": s, "IpAddress": "a"} for s in range(10)])))
    assert out["event.count"].to_list() == [10] and len(out["evidence"][0]) == 4


# value_count, value_sum, value_avg ---------------------------------------------------------------------------

VALUE_COUNT = """
title: Password spraying
correlation:
  type: value_count
  rules: [failed_logon]
  group-by: [IpAddress]
  timespan: 10m
  condition: {gte: 3, field: TargetUserName}
"""


def test_value_count_counts_distinct_values():
    rule = correlation(VALUE_COUNT)
    same_user = [{"t": s, "IpAddress": "a", "TargetUserName": "admin"} for s in range(5)]
    assert correlate(rule, matches(failed_logon=events(same_user))).height == 0
    spray = [{"t": i, "IpAddress": "b", "TargetUserName": u} for i, u in enumerate(["x", "y", "x", None, "z"])]
    out = correlate(rule, matches(failed_logon=events(same_user + spray)))
    assert out["IpAddress"].to_list() == ["b"] and out["correlation.value"].to_list() == [3]
    assert out["@timestamp"].to_list() == [at(4)]


def test_value_count_forgets_values_that_left_the_window():
    rule = correlation(VALUE_COUNT)
    rows = [{"t": 0, "IpAddress": "a", "TargetUserName": "x"}, {"t": 1, "IpAddress": "a", "TargetUserName": "y"},
            {"t": 601, "IpAddress": "a", "TargetUserName": "z"}]  # x left the 10 minute window 1 s before
    assert correlate(rule, matches(failed_logon=events(rows))).height == 0
    rows[2]["t"] = 600
    assert correlate(rule, matches(failed_logon=events(rows))).height == 1


def value_rule(kind: str, condition: str) -> str:
    return f"""
title: Data exfiltration
correlation:
  type: {kind}
  rules: [outbound]
  group-by: [src]
  timespan: 1h
  condition: {{{condition}, field: bytes}}
"""


def test_value_sum_at_the_threshold():
    rows = [{"t": 0, "src": "a", "bytes": 600}, {"t": 10, "src": "a", "bytes": 400}, {"t": 20, "src": "a",
                                                                                     "bytes": None}]
    out = correlate(correlation(value_rule("value_sum", "gte: 1000")), {"outbound": events(rows)})
    assert out["correlation.value"].to_list() == [1000.0] and out["@timestamp"].to_list() == [at(10)]
    assert correlate(correlation(value_rule("value_sum", "gt: 1000")), {"outbound": events(rows)}).height == 0


def test_value_avg():
    rows = [{"t": 0, "src": "a", "bytes": 100}, {"t": 10, "src": "a", "bytes": 300}]
    out = correlate(correlation(value_rule("value_avg", "gte: 200")), {"outbound": events(rows)})
    assert out["correlation.value"].to_list() == [200.0] and out["@timestamp"].to_list() == [at(10)]
    assert correlate(correlation(value_rule("value_avg", "gt: 200")), {"outbound": events(rows)}).height == 0


def test_value_sum_of_text_numbers_ignores_text_that_is_not_a_number():
    rows = [{"t": 0, "src": "a", "bytes": "700"}, {"t": 1, "src": "a", "bytes": "-"},
            {"t": 2, "src": "a", "bytes": "300"}]
    out = correlate(correlation(value_rule("value_sum", "gte: 1000")), {"outbound": events(rows)})
    assert out["correlation.value"].to_list() == [1000.0]


# temporal, temporal_ordered ----------------------------------------------------------------------------------

def temporal_rule(kind: str, rules: str = "[failed_logon, successful_logon]", timespan: str = "5m") -> str:
    return f"""
title: Failed then successful logon
correlation:
  type: {kind}
  rules: {rules}
  group-by: [TargetUserName]
  timespan: {timespan}
"""


def test_temporal_needs_every_rule_in_one_window():
    rule = correlation(temporal_rule("temporal"))
    failed = events([{"t": 0, "TargetUserName": "u"}, {"t": 0, "TargetUserName": "v"}])
    success = events([{"t": 300, "TargetUserName": "u"}, {"t": 301, "TargetUserName": "v"}], path="b.log")
    out = correlate(rule, matches(failed_logon=failed, successful_logon=success))
    assert out["TargetUserName"].to_list() == ["u"] and out["correlation.value"].to_list() == [2]
    assert {e["rule.id"] for e in out["evidence"][0]} == {FAILED_ID, SUCCESS_ID}
    assert correlate(rule, matches(failed_logon=failed, successful_logon=events([]))).height == 0


def test_temporal_in_any_order_and_temporal_ordered_in_the_listed_order():
    success_first = matches(failed_logon=events([{"t": 60, "TargetUserName": "u"}]),
                            successful_logon=events([{"t": 0, "TargetUserName": "u"}], path="b.log"))
    assert correlate(correlation(temporal_rule("temporal")), success_first).height == 1
    assert correlate(correlation(temporal_rule("temporal_ordered")), success_first).height == 0
    in_order = matches(failed_logon=events([{"t": 0, "TargetUserName": "u"}]),
                       successful_logon=events([{"t": 60, "TargetUserName": "u"}], path="b.log"))
    out = correlate(correlation(temporal_rule("temporal_ordered")), in_order)
    assert out["@timestamp"].to_list() == [at(60)] and out["window.start"].to_list() == [at(0)]


def test_temporal_ordered_three_steps_and_the_window():
    rule = correlation(temporal_rule("temporal_ordered", "[failed_logon, successful_logon, outbound]"))
    failed = events([{"t": 0, "TargetUserName": "u"}])
    success = events([{"t": 100, "TargetUserName": "u"}], path="b.log")
    late = {"outbound": events([{"t": 301, "TargetUserName": "u"}], path="c.log")}
    assert correlate(rule, {**matches(failed_logon=failed, successful_logon=success), **late}).height == 0
    in_time = {"outbound": events([{"t": 300, "TargetUserName": "u"}], path="c.log")}
    assert correlate(rule, {**matches(failed_logon=failed, successful_logon=success), **in_time}).height == 1
    # a second failure later restarts the chain closer to the end: 250 -> 260 -> 301 fits
    failed2 = events([{"t": 0, "TargetUserName": "u"}, {"t": 250, "TargetUserName": "u"}])
    success2 = events([{"t": 100, "TargetUserName": "u"}, {"t": 260, "TargetUserName": "u"}], path="b.log")
    out = correlate(rule, {**matches(failed_logon=failed2, successful_logon=success2), **late})
    assert out["@timestamp"].to_list() == [at(301)]


ALIASES = """
title: Internal error then connection back
correlation:
  type: temporal
  rules: [failed_logon, outbound]
  group-by: [internal_ip]
  timespan: 10s
  aliases:
    internal_ip:
      failed_logon: WorkstationIp
      outbound: src
"""


def test_aliases_map_a_different_field_per_rule():
    rule = correlation(ALIASES)
    failed = events([{"t": 0, "WorkstationIp": "10.1.1.1", "src": "nope"}])
    outbound = events([{"t": 5, "src": "10.1.1.1"}, {"t": 5, "src": "10.9.9.9"}], path="fw.log")
    out = correlate(rule, matches(failed_logon=failed, outbound=outbound))
    assert out["internal_ip"].to_list() == ["10.1.1.1"]


def test_aliases_over_columns_of_different_types():
    rule = correlation(ALIASES)
    failed = events([{"t": 0, "WorkstationIp": "7"}])
    outbound = events([{"t": 1, "src": 7}], path="fw.log")
    assert correlate(rule, matches(failed_logon=failed, outbound=outbound))["internal_ip"].to_list() == ["7"]


# the rule itself ---------------------------------------------------------------------------------------------

def test_required_rules_and_generate():
    rule = correlation(temporal_rule("temporal", f"[{FAILED_ID}, successful_logon]"))
    assert required_rules(rule) == [FAILED_ID, "successful_logon"]
    assert keep_base_alerts(rule) is False
    assert keep_base_alerts(correlation(temporal_rule("temporal") + "  generate: true\n")) is True


def test_matches_found_by_id_or_name():
    rule = correlation(count_rule("{gte: 2}"))
    frame = events([{"t": 0, "IpAddress": "a"}, {"t": 1, "IpAddress": "a"}])
    assert correlate(rule, {FAILED_ID: frame}).height == 1
    with pytest.raises(CorrelationError, match="no matches given"):
        correlate(rule, {"other": frame})


def test_unsupported_rules_are_refused_clearly():
    median = value_rule("value_median", "gte: 10")
    with pytest.raises(CorrelationError, match="not supported"):
        correlate(correlation(median), {"outbound": events([])})
    partial = temporal_rule("temporal_ordered") + "  condition: {gte: 1}\n"
    with pytest.raises(CorrelationError, match="default condition"):
        correlate(correlation(partial), matches(failed_logon=events([]), successful_logon=events([])))
    with pytest.raises(CorrelationError, match="null_groups"):
        correlate(correlation(count_rule("{gte: 2}")), {}, null_groups="drop")


def test_a_frame_without_datetime_timestamps_is_an_error():
    rule = correlation(count_rule("{gte: 2}"))
    bad = pl.DataFrame({"@timestamp": ["2026-11-23"], "IpAddress": ["a"]})
    with pytest.raises(CorrelationError, match="not a Datetime"):
        correlate(rule, {"failed_logon": bad})


def test_value_count_of_a_field_missing_from_the_frame_never_fires():
    rule = correlation(VALUE_COUNT.replace("gte: 3", "gte: 1"))
    frame = events([{"t": s, "IpAddress": "a"} for s in range(3)])  # no TargetUserName column at all
    assert correlate(rule, matches(failed_logon=frame)).height == 0


CHAIN = """
title: Many failed logons
name: many_failed
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 10m
  condition: {gte: 3}
---
title: Failed logons followed by a successful one
correlation:
  type: temporal_ordered
  rules: [many_failed, successful_logon]
  group-by: [TargetUserName]
  timespan: 1h
"""


def test_a_correlation_of_a_correlation_uses_the_inner_alerts_as_matches():
    rules = SigmaCollection.from_yaml(BASE + "---\n" + CHAIN).rules
    inner, outer = rules[-2], rules[-1]
    assert required_rules(outer) == ["many_failed", "successful_logon"]
    failed = events([{"t": s, "TargetUserName": "u"} for s in (0, 10, 20)])
    inner_alerts = correlate(inner, matches(failed_logon=failed))
    success = events([{"t": 1800, "TargetUserName": "u"}], path="b.log")
    out = correlate(outer, {"many_failed": inner_alerts, **matches(successful_logon=success)})
    assert out["TargetUserName"].to_list() == ["u"] and out["@timestamp"].to_list() == [at(1800)]
    assert out["window.start"].to_list() == [at(20)]  # the inner alert fired at the third failure


# the loader's and the hunter's hooks -------------------------------------------------------------------------

def test_compile_correlations_and_evaluate_over_hunt_matches(tmp_path):
    from types import SimpleNamespace

    from soc.sigma.correlation import compile_correlations, evaluate
    from soc.sigma.mapping import Target

    good = tmp_path / "brute.yml"
    good.write_text(BASE + "---\n" + count_rule("{gte: 3}", group_by="[TargetUserName]"), encoding="utf-8")
    bad = tmp_path / "bad.yml"
    bad.write_text(value_rule("value_median", "gte: 1").replace("[outbound]", f"[{FAILED_ID}]") + "---\n"
                   + count_rule("{gte: 3}").replace("[failed_logon]", "[not_loaded]"), encoding="utf-8")
    # the compiled base rules as the loader gives them: an id and targets that map Sigma fields to columns
    compiled = [SimpleNamespace(id=FAILED_ID, targets=[Target("authentication",
                                                              fields={"TargetUserName": "user.name"})])]
    correlations, errors = compile_correlations([good, bad], compiled)
    assert [c.rule.title for c in correlations] == ["Many failed logons"]
    reasons = sorted(e.reason for e in errors)
    assert "value_median" in reasons[0] and "not_loaded" in reasons[1] and len(errors) == 2

    hunt = events([{"t": s, "rule.id": FAILED_ID, "user.name": "u"} for s in (0, 1, 2)]
                  + [{"t": 3, "rule.id": "another-rule", "user.name": "v"}])
    out = evaluate(correlations, hunt)
    assert out["TargetUserName"].to_list() == ["u"] and out["event.kind"].to_list() == ["alert"]
    assert out["rule.level"].to_list() == ["high"] and out["event.severity"].to_list() == [4]
    assert evaluate(correlations, hunt.filter(pl.col("user.name") == "v")).height == 0


def test_a_warm_load_keeps_correlations_as_plain_data_and_runs_them_the_same(tmp_path, monkeypatch):
    """The load cache keeps each correlation as plain data (``Summary``): a warm load does not parse it with
    pySigma, the hunter reads the same fields and rule ids, and it runs to the same alerts when its base rules
    matched (parsed again then); without such matches it gives the empty frame without parsing."""
    import subprocess
    import sys

    from soc.sigma.correlation import Summary, evaluate
    from soc.sigma.hunt import correlated_rule_ids, correlation_fields
    from soc.sigma.loader import load

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = tmp_path / "rules.yml"
    rules.write_text(BASE + "---\n" + count_rule("{gte: 3}", group_by="[TargetUserName]"), encoding="utf-8")
    cold, warm = load([rules]), load([rules])
    assert [type(c.rule) for c in warm.correlations] == [Summary]
    assert not any(isinstance(c.rule, Summary) for c in cold.correlations)
    assert correlation_fields(warm) == correlation_fields(cold) == {"TargetUserName"}
    assert correlated_rule_ids(warm) == correlated_rule_ids(cold) == [FAILED_ID]
    assert [e.reason for e in warm.errors] == [e.reason for e in cold.errors]

    hunt = events([{"t": s, "rule.id": FAILED_ID, "TargetUserName": "u"} for s in (0, 1, 2)]
                  + [{"t": 3, "rule.id": "another-rule", "TargetUserName": "v"}])
    out = evaluate(warm.correlations, hunt)
    assert out.height == 1 and out.equals(evaluate(cold.correlations, hunt))
    nothing = evaluate(warm.correlations, hunt.filter(pl.col("rule.id") != FAILED_ID))
    assert nothing.height == 0 and nothing.schema == evaluate(cold.correlations, hunt.head(0)).schema

    code = (f"import sys, polars as pl\nfrom soc.sigma.loader import load\nfrom soc.sigma.correlation import evaluate\n"
            f"rs = load([{str(rules)!r}])\nevaluate(rs.correlations, pl.DataFrame({{'rule.id': ['x']}}))\n"
            "print('sigma' in sys.modules)")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "False"
