"""Advisory locks (``fcntl.flock``) that the kernel releases when their process dies, kill -9 included: a job
never runs twice at once, and one scheduler at most works on a data folder. The holder's pid is written into
the lock file so that a refusal can say who holds it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from soc.private import make_dir, opener


class LockHeld(RuntimeError):
    """The lock is held by another process (or another open of it in this one)."""


class Lock:
    """``with Lock(path, what):`` an exclusive, non-blocking lock; ``LockHeld`` with a clear message if taken."""

    def __init__(self, path: str | Path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> Lock:
        make_dir(self.path.parent)
        fd = opener(str(self.path), os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise LockHeld(f"{self.what} is held by {who} (lock file {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return os.pread(fd, 32, 0).decode("ascii").strip()
    return ""
