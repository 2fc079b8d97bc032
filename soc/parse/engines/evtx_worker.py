"""A worker process for the pieces of large EVTX files (``soc.parse.engines.evtx``).

Started by the engine as ``python -m soc.parse.engines.evtx_worker`` (``soc.worker_process``: tasks on stdin,
replies on stdout, until stdin ends): a task is ``("read_piece", path, piece, batch)`` (or ``("ready",)``:
answered once the imports are done), a reply ``("ok", what read_piece returned)`` or ``("error", text)``.
"""

from __future__ import annotations


def main() -> None:
    from soc.parse.engines.evtx import read_piece
    from soc.runtime import exit_now, reuse_freed_memory
    from soc.worker_process import serve

    reuse_freed_memory()  # as the CLI does: a piece's arrays (tens of MB) reuse the last one's pages (less system time)

    def handle(task: tuple):
        if task[0] != "read_piece":
            raise ValueError(f"unknown task {task[0]!r}")
        return read_piece(*task[1:])

    serve(handle)
    exit_now(0)  # the parent closed the pipe: nothing is left to write


if __name__ == "__main__":
    main()
