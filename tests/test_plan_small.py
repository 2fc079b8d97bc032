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


def test_small_files_are_cut_in_batches_of_equal_cost_not_of_equal_records():
    """``many_batches``: as few batches as hold ``most`` records each, cut where their costs (records, and
    ``FILE_RECORDS`` a file) are about equal, never a last batch of a file or two left over."""
    from soc.parse.engines.evtx import FILE_RECORDS, many_batches

    many = [(f"a{i}", 10) for i in range(100)]  # 100 files of 10 records: costly for their records
    few = [(f"b{i}", 100) for i in range(10)]  # 10 files of 100: the same records in fewer files
    cut = many_batches(many + few, 1500)
    assert len(cut) == 2
    cost = [sum(n + FILE_RECORDS for p, n in many + few if p in set(batch)) for batch in cut]
    assert abs(cost[0] - cost[1]) <= 100 + FILE_RECORDS  # within a file
    assert len(cut[0]) < 100  # by records alone the first would take the 100 small files (1,000 records)
    assert [p for batch in cut for p in batch] == [p for p, _ in many + few]  # in order, each once
    assert all(sum(n for p, n in many + few if p in set(batch)) <= 1500 for batch in cut)


def test_the_evtx_corpus_makes_two_batches_of_equal_cost(corpora):
    """The 483 files of the shared corpus (the two tasks of a 2-process hunt): two batches, not a third of the last
    file (the first batch ends past its share), of about equal costs."""
    from soc.parse.engines.evtx import FILE_RECORDS, MANY_RECORDS, many_batches
    from tests.evtx_corpus import evtx_files

    sources = [Source(str(p), None, None) for p in evtx_files(corpora)]
    (_, group), = pipeline._plan(sources, load_specs(), pipeline.Options())
    files = [(s.path, n) for s, n in group]
    cut = many_batches(files, MANY_RECORDS)
    assert len(files) == 483 and len(cut) == 2
    records = dict(files)
    cost = [sum(records[p] + FILE_RECORDS for p in batch) for batch in cut]
    assert abs(cost[0] - cost[1]) <= 0.02 * sum(cost)  # 23 of 13,151 (cut by records alone: 401)
