"""Issue 17 item 10: a hunt's memory must not grow with its matches.

The hunter hands its matches over (to a Parquet file) every ``hold_rows`` rows instead of keeping them, and
alerts are built from batches of matches read back, aggregated per (rule, entity, window) batch by batch:
the alerts must be exactly those built from all the matches at once.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from soc.alerts import build_alerts, load_policy
from soc.alerts.inventory import build_inventory
from soc.sigma.hunt import Hunter
from soc.sigma.loader import RuleSet
from tests.test_sigma_routing import compiled

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)

EVERY_GET = """title: Every GET (test)
id: 0a0a0a0a-0000-4000-8000-0000000000e1
author: t
level: low
tags: [attack.t1190]
logsource: {category: webserver}
detection:
  selection: {cs-method: GET}
  condition: selection
"""


def many_hits(n: int, seed: int = 7) -> pl.DataFrame:
    """Hits of several rules and entities over a few hours, in no order, with ties on the first hit's time
    (the record decides), null entities, empty strings, detector-style windows and counts."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        rule = rng.choice(["r-a", "r-b", "r-c"])
        detector = rule == "r-c"
        start = T0 + timedelta(minutes=rng.randrange(0, 240))
        rows.append({
            "@timestamp": start + timedelta(seconds=rng.choice([0, 0, 1])),
            "rule.id": rule, "rule.name": f"name {rule}", "rule.level": rng.choice(["low", "High"]),
            "rule.author": rng.choice(["x", None]),
            "threat.technique.id": rng.choice([["T1110"], None, []]),
            "source.ip": rng.choice(["203.0.113.45", "198.51.100.7", "web01", "", None]),
            "destination.ip": rng.choice(["10.0.0.1", None]),
            "user.name": rng.choice(["alice", None, " "]),
            "host.hostname": rng.choice(["portal01", None]),
            "event.dataset": rng.choice(["nginx.access", "system.auth"]),
            "log.file.path": rng.choice(["/var/log/a.log", "/var/log/b.log", None]),
            "log.line": rng.choice([None, rng.randrange(1, 50)]),
            "log.offset": rng.choice([None, rng.randrange(0, 5000)]),
            "event.count": rng.randrange(1, 9) if detector else None,
            "window.start": start - timedelta(minutes=5) if detector else None,
            "window.end": start + timedelta(minutes=rng.randrange(0, 30)) if detector else None,
            "labels.layer": rng.choice([1, None]) if detector else None,
        })
    return pl.DataFrame(rows, schema_overrides={"@timestamp": pl.Datetime("us", "UTC"),
                                                "window.start": pl.Datetime("us", "UTC"),
                                                "window.end": pl.Datetime("us", "UTC"),
                                                "threat.technique.id": pl.List(pl.String)})


def batches_of(frame: pl.DataFrame, seed: int = 3):
    rng = random.Random(seed)
    start = 0
    while start < frame.height:
        size = rng.choice([0, 1, 7, 50, 333])
        yield frame.slice(start, size)
        start += size


@pytest.mark.parametrize("merge_rows", [1, 100, 1_000_000])
def test_alerts_built_batch_by_batch_are_the_alerts_built_at_once(monkeypatch, merge_rows):
    monkeypatch.setattr("soc.alerts.build.MERGE_ROWS", merge_rows)  # merge the partial aggregates often
    hits = many_hits(5000)
    inventory = build_inventory([("t", {"match": "portal01", "agency": "Sở X", "security_level": 3}),
                                 ("u", {"match": "10.0.0.0/8", "agency": "Y", "security_level": 5})])
    policy = load_policy()
    once = build_alerts(hits, policy, inventory)
    assert 100 < once.height < 4000 and once["event.count"].max() > 1
    streamed = build_alerts(batches_of(hits), policy, inventory)
    assert_frame_equal(streamed, once)
    assert_frame_equal(build_alerts(batches_of(hits), window="15m"), build_alerts(hits, window="15m"))


def test_alerts_of_batches_take_the_first_hits_record_across_batches():
    later = many_hits(1).with_columns(pl.lit(T0 + timedelta(minutes=30)).alias("@timestamp"),
                                      pl.lit(9).alias("log.line"), pl.lit("r-a").alias("rule.id"))
    first = later.with_columns(pl.lit(T0 + timedelta(minutes=10)).alias("@timestamp"), pl.lit(2).alias("log.line"))
    alert = build_alerts(iter([later, later.clear(), first])).row(0, named=True)
    assert alert["event.count"] == 2 and alert["log.line"] == 2 and alert["@timestamp"] == T0 + timedelta(minutes=10)
    assert build_alerts(iter([])).height == 0
    with pytest.raises(ValueError, match="lacks"):
        build_alerts(iter([later, pl.DataFrame({"@timestamp": [T0]})]))


def web_frame(n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame({
        "@timestamp": [T0 + timedelta(seconds=i) for i in range(start, start + n)],
        "source.ip": [f"10.0.{i % 7}.{i % 5}" for i in range(start, start + n)],
        "http.request.method": ["GET" if i % 10 else "POST" for i in range(start, start + n)],
        "url.original": ["/x"] * n,
        "event.dataset": ["nginx.access"] * n,
        "log.file.path": ["access.log"] * n,
        "log.offset": list(range(start, start + n)),
    }, schema_overrides={"@timestamp": pl.Datetime("us", "UTC")})


def test_the_hunter_hands_its_matches_over_every_hold_rows_and_keeps_none():
    handed: list[pl.DataFrame] = []
    hunter = Hunter(RuleSet([compiled(EVERY_GET)], []), out=handed.append, hold_rows=1000, batch_rows=300)
    held = []
    for k in range(40):
        hunter.feed(("web", "nginx.access"), web_frame(250, k * 250))
        held.append(hunter.held_rows())
    hunter.finish()
    assert max(held) < 1000 + 2 * 300  # what waits to be evaluated plus what waits to be written
    assert hunter.held_rows() == 0 and hunter.matched == 9000
    assert len(handed) >= 6 and all(f.height < 1000 + 2 * 300 for f in handed)
    rows = pl.concat(handed)
    assert rows.height == 9000 and rows["log.offset"].n_unique() == 9000
    assert all(f.columns == handed[0].columns for f in handed)  # one schema: one Parquet file
    assert rows["rule.id"].unique().to_list() == ["0a0a0a0a-0000-4000-8000-0000000000e1"]


def test_a_hunt_writes_one_matches_file_and_its_alerts_are_those_of_the_matches(tmp_path):
    log = tmp_path / "access.log"
    line = ('10.1.{a}.{b} - - [01/Nov/2026:10:{m:02d}:{s:02d} +0700] "GET /p/{i} HTTP/1.1" 200 12 "-" "curl/8"\n')
    log.write_text("".join(line.format(a=i % 3, b=i % 11, m=(i // 60) % 60, s=i % 60, i=i) for i in range(20_000)))
    rules = tmp_path / "every.yml"
    rules.write_text(EVERY_GET)
    data = tmp_path / "data"
    res = subprocess.run([sys.executable, "-m", "soc", "hunt", str(log), "--format", "web_access", "--rules",
                          str(rules), "--no-detectors", "--data-dir", str(data), "--json"], capture_output=True,
                         text=True, check=False, env={**os.environ, "SOC_CACHE_DIR": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    (matches,) = sorted((data / "sigma_matches").rglob("*.parquet"))
    frame = pl.read_parquet(matches)
    assert frame.height == 20_000
    stored = pl.read_parquet(data / "alerts" / "*.parquet").sort("event.id")
    assert_frame_equal(stored, build_alerts(frame).sort("event.id"))
    assert stored.height == 33 and stored["event.count"].sum() == 20_000


def test_a_match_file_takes_the_correlation_alerts_and_stays_one_file(tmp_path):
    from soc.sinks.matches import MatchFile

    out = MatchFile(tmp_path)
    for k in range(3):
        out.write(web_frame(10, k * 10).with_columns(pl.lit("r").alias("rule.id")))
    extra = pl.DataFrame({"rule.id": ["corr"], "correlation.value": [12], "@timestamp": [T0]})
    out.close(extra)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [out.path] and out.height == 31
    back = pl.concat(list(out.batches(7)))
    assert back.height == 31 and back["correlation.value"].to_list() == [None] * 30 + [12]
    assert back["log.offset"].to_list()[:30] == list(range(30))
    assert out.counts("rule.id").sort("rule.id").rows() == [("corr", 1), ("r", 30)]
    empty = MatchFile(tmp_path / "none")
    empty.close(None)
    assert empty.path is None and list(empty.batches()) == [] and empty.counts("rule.id").height == 0


def test_the_alert_store_still_keeps_one_copy_of_an_id_given_twice_in_one_append(tmp_path):
    from soc.sinks.alert_store import AlertStore

    alerts = build_alerts(many_hits(200))
    twice = pl.concat([alerts, alerts.with_columns(pl.lit(99, pl.Int64).alias("event.count"))])
    assert AlertStore(tmp_path).append(twice) == alerts.height
    stored = AlertStore(tmp_path).scan().collect()
    assert stored.height == alerts.height and stored["event.count"].max() < 99  # the first copy kept


@pytest.mark.parametrize("shares", [2, 3, 7])
def test_alerts_built_one_share_at_a_time_are_the_alerts_built_at_once(shares):
    from soc.alerts.build import alert_shares

    hits = many_hits(5000)
    inventory = build_inventory([("t", {"match": "portal01", "agency": "Sở X", "security_level": 3})])
    once = build_alerts(hits, load_policy(), inventory)
    parts = list(alert_shares(lambda: batches_of(hits), shares, load_policy(), inventory))
    assert len(parts) == shares and all(p.height < once.height for p in parts)
    assert_frame_equal(pl.concat(parts).sort("event.id"), once.sort("event.id"))
    assert_frame_equal(pl.concat(alert_shares(lambda: batches_of(hits), 1, load_policy(), inventory)), once)


def test_deliver_stores_a_share_at_a_time_the_alerts_of_one_share(tmp_path, monkeypatch):
    from soc.config import Config
    from soc.sinks.alert_store import AlertStore
    from soc.sinks.delivery import deliver
    from soc.sinks.matches import MatchFile

    hits = many_hits(3000)
    matches = MatchFile(tmp_path / "m")
    for batch in batches_of(hits):
        matches.write(batch)
    matches.close()
    one = deliver(hits, Config(data_dir=str(tmp_path / "one")), to_es=False)
    monkeypatch.setattr("soc.alerts.build.SHARE_HITS", 700)  # 3000 hits: 5 shares, the file read 5 times
    monkeypatch.setattr(AlertStore, "ids", lambda self: pytest.fail("a set of every stored id"))
    many = deliver(matches.batches, Config(data_dir=str(tmp_path / "many")), to_es=False, rows=matches.height)
    assert many.alerts is None and many.count == many.stored == one.alerts.height == one.stored
    assert len(AlertStore(tmp_path / "many").files()) == 5
    stored = AlertStore(tmp_path / "many").scan().collect().sort("event.id")
    assert_frame_equal(stored, one.alerts.sort("event.id"))
    again = deliver(matches.batches, Config(data_dir=str(tmp_path / "many")), to_es=False, rows=matches.height)
    assert again.count == one.alerts.height and again.stored == 0


def test_held_matches_keep_their_own_strings_not_the_buffers_of_the_frames_they_came_from():
    """A gathered Polars string column shares the buffers of the whole column it came from: held matches
    kept every chunk's texts alive until handed over (peak RSS grew with the input)."""
    hunter = Hunter(RuleSet([compiled(EVERY_GET)], []), out=lambda f: None, hold_rows=1_000_000)
    for k in range(3):
        frame = web_frame(5000, k * 5000).with_columns(
            pl.when(pl.col("log.offset") % 1000 == 0).then(pl.lit("GET")).otherwise(pl.lit("PUT"))
            .alias("http.request.method"),
            pl.format("{}{}", pl.lit("x" * 200), pl.col("log.offset")).alias("url.original"))
        hunter.feed(("web", "nginx.access"), frame)
    assert hunter.matched == 15 and hunter.held_rows() == 15
    held = 0
    for found in hunter._found:
        for column in found.columns:
            array = found.get_column(column).to_arrow(compat_level=pl.CompatLevel.newest())
            chunks = array.chunks if hasattr(array, "chunks") else [array]
            held += sum(b.size for c in chunks for b in c.buffers() if b is not None)
    assert held < 100_000  # 15 rows; each frame's url.original alone is ~1 MB

