"""``pipeline._plan``: which inputs a record engine reads together, told by their magic bytes (``_small``)."""

from __future__ import annotations

from soc import pipeline
from soc.parse.spec import load_specs
from soc.sources.discover import Source


def test_small_evtx_files_are_planned_together_and_other_inputs_alone(corpora, tmp_path):
    evtx = sorted(corpora.rglob("*.evtx"))[:2]
    text, empty, folder = tmp_path / "a.log", tmp_path / "empty.evtx", tmp_path / "dir.evtx"
    text.write_bytes(b"ElfFile")  # shorter than the magic: not EVTX
    empty.write_bytes(b"")
    folder.mkdir()
    paths = [str(evtx[0]), str(evtx[1]), str(text), str(empty), str(folder), str(tmp_path / "missing.evtx")]
    sources = [Source(p, None, None) for p in paths]
    specs = load_specs()
    plan = pipeline._plan(sources, specs, pipeline.Options())
    spec, group = plan[0]
    assert spec.engine == "evtx" and [s.path for s, _ in group] == paths[:2]
    assert all(n > 0 for _, n in group)
    assert [s.path for s in plan[1:]] == paths[2:]
    forced = pipeline._plan(sources[:2], specs, pipeline.Options(format="syslog"))
    assert [s.path for s in forced] == paths[:2]
