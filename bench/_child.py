"""One measurement in a fresh process, so its peak RSS is its own. Prints one JSON line.

``python -m bench._child soc FILE FORMAT`` runs the real pipeline (read, sniff-free forced format, parse,
dead letters counted); ``python -m bench._child baseline FILE MODULE LIMIT`` runs a pure-Python baseline.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would include the parent's peak from before exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_soc(path: str, fmt: str, warmup: str | None) -> dict:
    from soc import pipeline
    from soc.runtime import collect_less_often, reuse_freed_memory, setup_kept
    from soc.sources import discover

    reuse_freed_memory()  # as the CLI does
    collect_less_often()

    options = pipeline.Options(format=fmt, year=2026)
    if warmup:  # JIT compile (or load the Numba cache) outside the timed run
        pipeline.run(discover([warmup]), options=options)
    start = time.perf_counter()
    with setup_kept():  # as the CLI does
        (st,) = pipeline.run(discover([path]), options=options)
    seconds = time.perf_counter() - start
    return {"lines": st.read, "parsed": st.parsed, "dead": st.dead, "bytes": st.bytes, "seconds": seconds,
            "error": st.error}


def run_baseline(path: str, module: str, limit: int) -> dict:
    import importlib

    parse = importlib.import_module(module).baseline_parse
    lines = nbytes = parsed = 0
    start = time.perf_counter()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            nbytes += len(line)
            lines += 1
            if parse(line.rstrip("\n")) is not None:
                parsed += 1
            if lines >= limit:
                break
    seconds = time.perf_counter() - start
    return {"lines": lines, "parsed": parsed, "dead": lines - parsed, "bytes": nbytes, "seconds": seconds}


def main() -> None:
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "soc":
        out = run_soc(path, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        out = run_baseline(path, sys.argv[3], int(sys.argv[4]))
    out["peak_rss_mb"] = peak_rss_mb()
    out["pid"] = os.getpid()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
