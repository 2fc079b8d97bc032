"""ECS alerts as NDJSON, one alert a line, for centres that take them raw (the same lines as
``soc alerts --json``: timestamps as RFC 3339 UTC strings with microseconds)."""

from __future__ import annotations

import polars as pl


def to_ndjson(frame: pl.DataFrame) -> str:
    stamps = [pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ") for c, t in frame.schema.items()
              if isinstance(t, pl.Datetime)]
    return frame.with_columns(stamps).write_ndjson() if frame.height else ""
