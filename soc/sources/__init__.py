"""Sources: find inputs, open them (decompressing), and read them in line-aligned chunks.

``Chunk`` and ``read_chunks`` load on first use (NumPy): finding inputs (``discover``, ``Source``) imports nothing
heavy, so a hunt starts its workers first (``soc.options``)."""

from soc.options import DEFAULT_CHUNK
from soc.sources.discover import InputError, Source, discover

__all__ = ["DEFAULT_CHUNK", "Chunk", "InputError", "Source", "discover", "read_chunks"]


def __getattr__(name: str):
    if name in ("Chunk", "read_chunks"):
        from soc.sources import chunks

        return getattr(chunks, name)
    raise AttributeError(f"module 'soc.sources' has no attribute {name!r}")
