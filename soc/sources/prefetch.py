"""Reading ahead in a thread: the next items (chunks of a file, batches of EVTX records) are produced while
the caller works on the current one; parsers and Polars release the GIL, so the two overlap."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterator[T], depth: int = 2, name: str = "prefetch") -> Iterator[T]:
    """``items``, produced by a thread at most ``depth`` ahead (memory stays ``depth + 1`` items). An error
    of the producer is raised in the caller; a caller that stops early stops the producer too."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            put(exc)
        put(_DONE)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
