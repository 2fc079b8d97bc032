"""A run's start-up imports what the run needs, not every engine soc has (the fixed cost of a small hunt)."""

from __future__ import annotations

import contextlib
import json
import os
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
    assert "words" in imported  # its engine; a record engine's only for inputs of its format (read-ahead)
    assert not imported & {"cef", "kv", "syslog", "zeek", "w3c", "json", "windows_json", "evtx"}


def test_a_run_reads_ahead_with_the_record_engines_of_its_inputs_only(tmp_path, monkeypatch):
    """The EVTX engine's read-ahead (and its import) only for a run with an input that starts as an EVTX
    file does; the paths it gets are the run's plain files, as before."""
    from soc import pipeline
    from soc.parse.engines.evtx import EvtxEngine

    seen: list[list[str]] = []
    monkeypatch.setattr(EvtxEngine, "reading_ahead", classmethod(lambda cls, paths: seen.append(paths)
                                                                 or contextlib.nullcontext()))
    text, evtx = tmp_path / "a.log", tmp_path / "b.evtx"
    text.write_bytes(b"hello\n")
    evtx.write_bytes(b"ElfFile\x00" + bytes(100))
    specs = pipeline.load_specs()
    sources = [pipeline.Source(str(p), p.stat().st_size, None) for p in (text, evtx)]
    with pipeline._reading_ahead(sources[:1], specs, pipeline.Options()):
        pass
    assert seen == []
    with pipeline._reading_ahead(sources, specs, pipeline.Options()):
        pass
    assert seen == [[str(text), str(evtx)]]


def test_yaml_content_is_read_from_its_json_copy_while_the_file_is_the_same(tmp_path, monkeypatch):
    import stat

    from soc import content, safe_yaml

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(content, "_docs", {})
    monkeypatch.setattr(content, "_changed", set())
    shipped = [p for folder in ("parsers", "detectors", "rules/pipeline")
               for p in sorted((ROOT / folder).glob("*.yml"))]
    for path in shipped:
        assert content.read_yaml(path) == safe_yaml.load(path.read_text(encoding="utf-8"))
    content._save_yaml_docs()
    (saved,) = (tmp_path / "cache").glob("yaml-docs-*.json")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    monkeypatch.setattr(content, "_docs", {})  # another run: reads the copies, not the YAML
    calls = []
    real = safe_yaml.load
    monkeypatch.setattr(safe_yaml, "load", lambda text: calls.append(1) or real(text))
    first = content.read_yaml(shipped[0])
    first["name"] = "changed by its caller"
    assert content.read_yaml(shipped[0])["name"] != "changed by its caller" and calls == []
    mine = tmp_path / "spec.yml"
    mine.write_text("a: 1\nb: [x, y]\n")
    assert content.read_yaml(mine) == {"a": 1, "b": ["x", "y"]} and len(calls) == 1
    mine.write_text("a: 2\nb: [x, y]\n")  # edited within the same second, same size: another document
    assert content.read_yaml(mine) == {"a": 2, "b": ["x", "y"]} and len(calls) == 2
    assert content.read_yaml(mine) == {"a": 2, "b": ["x", "y"]} and len(calls) == 2
    keys = tmp_path / "keys.yml"
    keys.write_text("4624: logon\nwhen: 2024-01-01\n")  # JSON would not give these back: read as YAML each time
    for _ in range(2):
        assert content.read_yaml(keys) == safe_yaml.load(keys.read_text())
    assert len(calls) == 2 + 2 * 2


def test_a_yaml_copy_others_could_write_is_not_read(tmp_path, monkeypatch):
    import os

    from soc import content

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(content, "_docs", {})
    monkeypatch.setattr(content, "_changed", set())
    spec = tmp_path / "d.yml"
    spec.write_text("threshold: 5\n")
    content.read_yaml(spec)
    content._save_yaml_docs()
    (saved,) = (tmp_path / "cache").glob("yaml-docs-*.json")
    saved.write_text(saved.read_text().replace("5", "500"))
    os.chmod(saved, 0o666)
    monkeypatch.setattr(content, "_docs", {})
    assert content.read_yaml(spec) == {"threshold": 5}


def test_yaml_copies_go_back_to_the_cache_folder_they_were_looked_up_in(tmp_path, monkeypatch):
    from soc import content

    monkeypatch.setattr(content, "_docs", {})
    monkeypatch.setattr(content, "_changed", set())
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "a"))
    spec = tmp_path / "d.yml"
    spec.write_text("threshold: 5\n")
    content.read_yaml(spec)
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "b"))  # e.g. a test's own folder, then the user's
    content._save_yaml_docs()
    assert [p.name for p in (tmp_path / "a").glob("yaml-docs-*.json")] == ["yaml-docs-1.json"]
    assert not (tmp_path / "b").exists()


def test_the_cli_starts_numpy_with_one_blas_thread_unless_told_otherwise():
    """OpenBLAS's threads (one per core, started when numpy is imported) cost every run CPU for nothing: soc
    multiplies no float matrices. A count in the environment is left as it is."""
    code = ("import os, sys\nfrom soc.cli import main\nsys.argv = ['soc', 'formats']\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nimport numpy\nprint(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert got.stdout.splitlines()[-1] == "1"
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**env, "OPENBLAS_NUM_THREADS": "3"})
    assert got.stdout.splitlines()[-1] == "3"
    late = "import numpy\nfrom soc.runtime import one_blas_thread\nprint(one_blas_thread())"
    got = subprocess.run([sys.executable, "-c", late], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert got.stdout.strip() == "False"


def test_a_hunt_starts_its_workers_before_polars_numpy_or_pyarrow_load():
    """The CLI builds the hunt's options and finds its inputs with nothing heavy imported, so the worker processes
    (``soc.distributed.local.start``) import beside the driver instead of after it (~0.3 s of a corpus hunt)."""
    code = ("import sys\nfrom soc.cli import _options\nfrom soc.hunt import discover_inputs\n"
            "from soc.distributed import local\n"
            "opts = _options(None, 'Asia/Ho_Chi_Minh', None, 16)\n"
            f"sources = discover_inputs([{str(ROOT / 'sample_logs')!r}])\nlocal.wanted(sources, 2, opts.chunk_size)\n"
            "heavy = sorted(m for m in ('polars', 'numpy', 'pyarrow') if m in sys.modules)\n"
            "print(len(sources), opts.chunk_size, *heavy)")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    count, chunk, *heavy = got.stdout.split()
    assert int(count) > 5 and int(chunk) == 16 << 20
    assert heavy == []


def _soc(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soc", *args], capture_output=True, text=True, cwd=ROOT, **kw)


def test_the_command_ends_without_teardown_but_with_its_status_output_and_exit_handlers(tmp_path):
    """``soc`` ends through ``soc.runtime.exit_now``: the status, a usage error's message and the whole of a piped
    output are as ``sys.exit`` gives them, and the exit handlers still run (the hunt's workers are waited for)."""
    data = tmp_path / "d"
    got = _soc("hunt", str(ROOT / "sample_logs"), "--data-dir", str(data), "--no-es", "--json", "--workers", "2")
    assert got.returncode == 0, got.stderr
    report = json.loads(got.stdout)  # the whole JSON arrived through the pipe (block-buffered)
    assert sum(f["read"] for f in report["files"]) > 100
    assert (data / "alerts").is_dir()
    bad = _soc("hunt", "--workers", "0", str(ROOT / "sample_logs"))
    assert bad.returncode == 2 and "--workers" in bad.stderr
    assert _soc("no-such-command").returncode == 2
    prof = tmp_path / "soc.prof"  # under a profiler, the usual exit: it writes its data then
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "soc", "formats"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and prof.stat().st_size > 1000
    code = ("import atexit, sys\nfrom soc.runtime import exit_now\n"
            "atexit.register(lambda: print('handler ran'))\nprint('out', end='')\nexit_now(sys.argv[1])")
    for arg, status in (("3", 1), ("why", 1)):  # a text (even digits) is a message: status 1, as sys.exit does
        done = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, cwd=ROOT)
        assert (done.returncode, done.stdout, done.stderr.strip()) == (status, "outhandler ran\n", arg)
    code = code.replace("exit_now(sys.argv[1])", "exit_now(int(sys.argv[1]))")
    for arg in ("0", "3"):
        done = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, cwd=ROOT)
        assert (done.returncode, done.stdout, done.stderr) == (int(arg), "outhandler ran\n", "")
