"""A worker process for the pieces of large EVTX files (``soc.parse.engines.evtx``).

Started by the engine as ``python -m soc.parse.engines.evtx_worker``, it reads tasks from stdin and writes
replies to stdout, each one length-prefixed pickle whose NumPy arrays follow it out of band (no copy): a
task is ``("read_piece", path, piece, batch)`` (or ``("ready",)``: answered once the imports are done), a
reply ``("ok", what read_piece returned)`` or ``("error", text)``. It exits at the
end of stdin (the parent closed it, or died). A plain process rather than ``multiprocessing``: those
import the parent's ``__main__`` again in every worker, which re-runs a user's script that has no
``if __name__ == "__main__"`` guard.
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import BinaryIO

HEAD = struct.Struct("<Q")


def send(out: BinaryIO, obj) -> None:
    buffers: list[pickle.PickleBuffer] = []
    blob = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    out.write(HEAD.pack(len(blob)))
    out.write(blob)
    out.write(HEAD.pack(len(buffers)))
    for b in buffers:
        raw = b.raw()
        out.write(HEAD.pack(raw.nbytes))
        out.write(raw)
    out.flush()


def receive(inp: BinaryIO):
    """The next object, or None at the end of the stream (or a stream cut short)."""
    blob = _exactly(inp, _size(inp))
    count = _size(inp)
    buffers = [_exactly(inp, _size(inp)) for _ in range(count)]
    return pickle.loads(blob, buffers=buffers)  # noqa: S301 - the pipe to our own parent process


def _size(inp: BinaryIO) -> int:
    return HEAD.unpack(bytes(_exactly(inp, HEAD.size)))[0]


def _exactly(inp: BinaryIO, size: int) -> bytearray:
    """``size`` bytes read into one buffer (the reading releases the GIL); EOFError if the stream ends."""
    out = bytearray(size)
    view = memoryview(out)
    got = 0
    while got < size:
        n = inp.readinto(view[got:])
        if not n:
            raise EOFError("stream cut short")
        got += n
    return out


def main() -> None:
    from soc.parse.engines.evtx import read_piece
    from soc.runtime import reuse_freed_memory

    reuse_freed_memory()  # as the CLI does: a piece's arrays (tens of MB) reuse the last one's pages (less system time)

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    while True:
        try:
            task = receive(inp)
        except EOFError:  # the parent closed the pipe (or died)
            return
        try:
            if task[0] == "ready":
                reply = ("ok", True)
            elif task[0] == "read_piece":
                reply = ("ok", read_piece(*task[1:]))
            else:
                raise ValueError(f"unknown task {task[0]!r}")
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which parses the piece itself
            reply = ("error", f"{type(exc).__name__}: {exc}")
        send(out, reply)


if __name__ == "__main__":
    main()
