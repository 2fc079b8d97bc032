"""soc's own worker processes: a child started as ``python -m MODULE`` that takes tasks on its standard input and
answers on its standard output, one at a time, until its input ends (the parent closed it, or died).

Used by the EVTX engine (``soc.parse.engines.evtx_worker``: pieces of large files) and by the local multi-process
hunt (``soc.distributed.local``). A plain process rather than ``multiprocessing``: that imports the parent's
``__main__`` again in every worker, which re-runs a user's script that has no ``if __name__ == "__main__"``
guard. Each message is a length-prefixed pickle (protocol 5) whose NumPy and Arrow buffers follow it out of band
(no copy); a reply is ``("ok", value)`` or ``("error", text)``. Pickles come only from soc's own processes over
these pipes, never from data.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
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
    """The next object; EOFError at the end of the stream (or a stream cut short)."""
    blob = _exactly(inp, _size(inp))
    count = _size(inp)
    buffers = [_exactly(inp, _size(inp)) for _ in range(count)]
    return pickle.loads(blob, buffers=buffers)  # noqa: S301 - the pipe to our own parent or child process


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


class WorkerProcess:
    """The parent's handle on one worker (``python -m module``, with ``env`` added to this process's
    environment), given one task at a time, from whichever thread asks."""

    def __init__(self, module: str, env: dict[str, str] | None = None):
        import soc

        full = {**os.environ, **(env or {})}
        root = os.path.dirname(os.path.dirname(os.path.abspath(soc.__file__)))
        full["PYTHONPATH"] = os.pathsep.join(p for p in (root, full.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", module],  # noqa: S603 - our own module
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=full)
        self.lock = threading.Lock()  # one message at a time on the pipe
        with contextlib.suppress(ImportError, AttributeError, OSError):  # Linux: fewer hand-overs per reply
            import fcntl

            fcntl.fcntl(self.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)

    def tell(self, message) -> bool:
        """Send without waiting for a reply; False if the worker is gone."""
        try:
            with self.lock:
                send(self.proc.stdin, message)
        except (OSError, ValueError, pickle.PickleError):
            return False
        return True

    def call(self, task, failed: Callable[[str], None] | None = None):
        """The reply's value, or None if the worker failed (it is then stopped; ``failed`` gets the error text
        the worker sent, if it sent one)."""
        with self.lock:
            try:
                send(self.proc.stdin, task)
                reply = receive(self.proc.stdout)
            except (OSError, ValueError, EOFError, pickle.PickleError):
                reply = None
        if reply is None or reply[0] != "ok":
            if reply is not None and failed is not None:
                failed(reply[1])
            self.stop()
            return None
        return reply[1]

    def release(self) -> None:
        """No more tasks: the worker exits at the end of its input, without being waited for here."""
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def serve(handle: Callable[[tuple], object], quiet: Callable[[tuple], bool] = lambda message: False) -> None:
    """The worker's side: each message from standard input answered on standard output with ``("ok",
    handle(message))`` or ``("error", text)``, until standard input ends; a message ``quiet`` says so is
    handled without a reply (its failure shows again in the next task)."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    while True:
        try:
            message = receive(inp)
        except EOFError:  # the parent closed the pipe (or died)
            return
        if quiet(message):
            with contextlib.suppress(Exception):
                handle(message)
            continue
        try:
            reply = ("ok", True) if message[0] == "ready" else ("ok", handle(message))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which does the task itself
            reply = ("error", f"{type(exc).__name__}: {exc}")
        send(out, reply)
