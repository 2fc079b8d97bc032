"""A batch's ``windows.events`` groups typed together (``WindowsMapping.groups``) give each group the frame, dead
letters and reasons it gets typed alone (``WindowsMapping.group``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import yaml
from polars.testing import assert_frame_equal, assert_series_equal

from soc.parse.columns import Context
from soc.parse.spec import load_spec
from soc.parse.windows import WindowsMapping

ROOT = Path(__file__).resolve().parents[1]
PID = {"from": "P.decimal", "type": "int64"}
PORT = {"from": "Port", "type": "uint16"}
EVENTS = [  # 1 and 2 agree (one set); 3 types process.pid, a rule that can reject a record, another way (another
    # set); 4's user.name, typed another way but never rejecting, gets a column of its own in 1's set
    {"channel": "Security", "ids": [1], "derive": {"P.decimal": {"hex": "P"}},
     "columns": {"process.pid": PID, "source.port": PORT, "source.ip": "Ip"},
     "constants": {"event.action": "one", "source.domain": "corp"}},  # a constant address kept by the split
    {"channel": "Security", "ids": [2], "derive": {"P.decimal": {"hex": "P"}},
     "columns": {"user.name": "Who", "process.pid": PID, "source.port": PORT, "source.ip": "Ip"},
     "constants": {"event.action": "two", "event.outcome": "success"}},
    {"channel": "Security", "ids": [3], "columns": {"process.pid": {"from": "P", "type": "int64"}}},
    {"channel": "Security", "ids": [4], "columns": {"user.name": {"from": "Who", "lower": True}}},
]


def mapping(tmp_path: Path) -> WindowsMapping:
    raw = yaml.safe_load((ROOT / "parsers" / "windows_evtx.yml").read_text())
    raw["evtx"]["events"] = EVENTS
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(raw))
    return WindowsMapping(load_spec(path))


def test_groups_typed_together_as_alone(tmp_path):
    m = mapping(tmp_path)
    sets, slots_of = m._sets
    set_of = {e.ids[0]: slots_of[id(e)][0] for e in m.events.values()}
    assert set_of[1] == set_of[2] == set_of[4] != set_of[3] and len(sets) == 2
    assert slots_of[id(m.events[("Security", 4)])][2] == {"user.name": "user.name@@1"}
    groups = [  # (event id, fields): a frame or Series by name, as the engines hand them
        ("1", pl.DataFrame({"P": ["0x10", "abc", None], "Port": ["80", "99999", "x"]})),
        ("2", {"Who": pl.Series(["bob", "-"]), "P": pl.Series(["0x1F", "7"]), "Port": pl.Series(["1", None]),
               "Ip": pl.Series(["10.0.0.1", "host"])}),
        ("2", {"Who": pl.Series(["eve"])}),  # no P, no Port: null
        ("1", {"P.decimal": pl.Series(["12"]), "Port": pl.Series(["5"])}),  # nothing to derive from: read as it is
        ("3", {"P": pl.Series(["9", "nine"])}),
        ("4", {"Who": pl.Series(["ALICE"])}),
        ("5", {"Other": pl.Series(["z"])}),  # no entry
    ]
    heights = [len(f) if isinstance(f, pl.DataFrame) else len(next(iter(f.values()))) for _, f in groups]
    rows = sum(heights)
    system = pl.DataFrame({
        "System.Channel": ["Security"] * rows, "System.TimeCreated": ["2024-03-01T10:00:00Z"] * rows,
        "System.EventID": [e for (e, _), h in zip(groups, heights, strict=True) for _ in range(h)],
    })
    origin = {"log.file.path": pl.Series(["x.evtx"] * rows, dtype=pl.Categorical),
              "log.line": pl.Series(range(rows))}
    ctx = Context("x.evtx")
    base, reason = m.base(system, ctx, origin)
    bad = np.zeros(rows, np.bool_)
    items, at = [], 0
    for (event_id, fields), size in zip(groups, heights, strict=True):
        data = list(fields.columns if isinstance(fields, pl.DataFrame) else fields)
        items.append((at, size, fields, data, "Security", event_id,
                      lambda rows, why: pl.DataFrame({"row": np.flatnonzero(rows).tolist(), "reason": why})))
        at += size
    together = m.groups(base, reason, bad, items, ctx)
    # groups 0, 1, 2 and 5 in one query; 3 (P.decimal as it is) and 4 (alone in its set) in their own
    assert sorted(m._typed(items, ctx)) == [0, 1, 2, 5]
    for item, got in zip(items, together, strict=True):
        alone = m.group(base, reason, bad, *item[:6], ctx, item[6])
        assert got.frames.keys() == alone.frames.keys()
        for key in got.frames:
            assert_frame_equal(got.frames[key], alone.frames[key])
        assert_frame_equal(got.dead, alone.dead)
    first = next(iter(together[0].frames.values()))
    assert first["process.pid"].to_list() == [16] and first["event.action"].to_list() == ["one"]
    assert first["source.domain"].to_list() == ["corp"]
    assert together[0].dead["reason"].to_list() == ["process.pid: abc is not a valid int64",
                                                    "source.port: x is not a valid uint16"]
    second = next(iter(together[1].frames.values()))
    assert second["process.pid"].to_list() == [31, 7] and second["user.name"].to_list() == ["bob", None]
    assert second["source.ip"].to_list() == ["10.0.0.1", None] and second["source.domain"].to_list() == [None, "host"]
    assert next(iter(together[3].frames.values()))["process.pid"].to_list() == [12]
    assert next(iter(together[5].frames.values()))["user.name"].to_list() == ["alice"]
    assert_series_equal(next(iter(together[2].frames.values()))["process.pid"], pl.Series("process.pid", [None],
                                                                                          pl.Int64))
