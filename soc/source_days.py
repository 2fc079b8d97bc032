"""Records per log source per day, kept with each hunt: the report's log-source health needs what was read
each day (a source gone silent), which neither the alert store nor a job's per-run totals say.

Every hunt (a job's run too: it goes through ``soc.hunt.run_hunt``) appends one line to
``DATA_DIR/runs/hunts.ndjson``: when it ran, and per input its path, format, counts and its records per
``event.dataset`` per day in Asia/Ho_Chi_Minh (``pipeline.SourceStats.days``; "" for records without a time).
One ``write`` of one line to a file opened for appending: a reader never sees half a record, and a line it
cannot parse (a disk filled mid-write) is skipped. Paths are data (JSON strings), nothing else is kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from soc.private import make_dir

RECORDS = Path("runs") / "hunts.ndjson"


def record(data_dir: str | Path, stats: list, seconds: float) -> None:
    """Append the line of a hunt that read ``stats`` (``pipeline.SourceStats``) in the last ``seconds`` (see the
    module's docstring); inputs not read (skipped) are left out."""
    end = datetime.now(UTC)
    start = end - timedelta(seconds=seconds)
    sources = [{"path": st.path, "format": st.format, "read": st.read, "parsed": st.parsed, "dead": st.dead,
                "error": bool(st.error), "days": st.days} for st in stats if not st.skipped]
    if not sources:
        return
    line = json.dumps({"start": start.isoformat(), "end": end.isoformat(), "sources": sources},
                      ensure_ascii=False, separators=(",", ":")) + "\n"
    path = Path(data_dir) / RECORDS
    make_dir(path.parent)  # private, as every folder of the data folder (``soc.private``)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def files(data_dir: str | Path) -> list[Path]:
    """The hunts' records in a data folder: its own hunts' and its jobs' runs'."""
    data_dir = Path(data_dir)
    found = [data_dir / RECORDS] if (data_dir / RECORDS).is_file() else []
    return found + sorted(data_dir.glob(f"jobs/*/out/*/{RECORDS.as_posix()}"))


def read(data_dir: str | Path) -> Iterator[dict]:
    """Every hunt's record (see ``files``)."""
    for path in files(data_dir):
        yield from read_file(path)


def read_file(path: Path) -> Iterator[dict]:
    """The hunts' records of one file, lines that do not parse skipped."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("sources"), list):
                yield rec
