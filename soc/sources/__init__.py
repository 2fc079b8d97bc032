"""Sources: find inputs, open them (decompressing), and read them in line-aligned chunks."""

from soc.sources.chunks import DEFAULT_CHUNK, Chunk, read_chunks
from soc.sources.discover import InputError, Source, discover

__all__ = ["DEFAULT_CHUNK", "Chunk", "InputError", "Source", "discover", "read_chunks"]
