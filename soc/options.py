"""How inputs are read (``Options``), in a module that imports nothing heavy: the CLI builds them, and a hunt
starts its worker processes, before Polars, NumPy and PyArrow load (~0.3 s of a 2-core corpus hunt's wall time,
during which a worker started later could not be importing them beside the driver)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"  # zone of timestamps that carry none (the province's)
DEFAULT_CHUNK = 16 * 1024 * 1024  # bytes read at a time; also the longest line kept whole


@dataclass
class Options:
    """How to read inputs: forced format, zone of zone-less stamps, year of year-less ones, chunk size."""

    format: str | None = None
    zone: str = DEFAULT_ZONE
    year: int | None = None
    chunk_size: int = DEFAULT_CHUNK
