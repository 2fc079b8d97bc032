"""What soc keeps on disk (the data folder, ``soc parse`` output) holds raw log lines, alerts and user names:
folders are made 0700 and files 0600 whatever the umask, as the rule cache already is.

Files are written under a temporary name in the hidden folder ``.tmp/`` of the root they belong to
(``ROOT/.tmp/<name>.<host>.<pid>-<random>.tmp``) and renamed into place when complete: a crash or kill -9 never leaves
half a file where readers look, even one that reads a whole dataset folder (``pl.read_parquet(folder)``
reads every file under it). ``prepare`` removes the temporary files of this host's processes that are gone
(a folder shared over the network may hold another host's, which only that host can tell about).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
TEMP_DIR = ".tmp"
_TMP = re.compile(r"^.+\.([A-Za-z0-9_-]+)\.(\d+)-[0-9a-f]{8}\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "_", socket.gethostname())[:40] or "_"


def make_dir(path: str | Path) -> Path:
    """``path`` and its missing parents, each created 0700 (an existing folder is left as it is)."""
    target = path = Path(path)
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=DIR_MODE)
            os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask
    return target


def opener(path: str, flags: int) -> int:
    """``open(..., opener=opener)``: a file created 0600 (and an older one of ours made 0600 too)."""
    fd = os.open(path, flags, FILE_MODE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, FILE_MODE)
    return fd


def new_temp(final: str | Path, root: str | Path) -> Path:
    """Create (empty, 0600, in private folders) the temporary file under ``root`` that becomes ``final`` on
    ``publish``. Writers that open it by path (pyarrow, Polars) truncate it and keep its mode."""
    final = Path(final)
    make_dir(final.parent)
    tmp = make_dir(Path(root) / TEMP_DIR) / f"{final.name}.{_host()}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    os.close(opener(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    return tmp


def publish(tmp: Path, final: Path) -> None:
    """Rename a complete temporary file into place (atomic: readers see all of it or nothing)."""
    os.replace(tmp, final)


@contextlib.contextmanager
def writing(final: str | Path, root: str | Path) -> Iterator[Path]:
    """``with writing(final, root) as tmp: <write tmp>``: renamed into place on success, removed on failure."""
    tmp = new_temp(final, root)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    publish(tmp, Path(final))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


def remove_stale(root: str | Path) -> int:
    """Remove the temporary files left under ``root`` by processes of this host that no longer run; how many."""
    removed, host = 0, _host()
    for path in (Path(root) / TEMP_DIR).glob("*.tmp"):
        found = _TMP.match(path.name)
        if found and found.group(1) == host and not _alive(int(found.group(2))):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def prepare(root: str | Path) -> str | None:
    """Before a run writes under ``root``: clean up after crashed runs; a warning if ``root`` already exists
    and is open to other users (it is theirs to change: it may be shared on purpose), else None."""
    root = Path(root)
    try:
        mode = stat.S_IMODE(root.stat().st_mode)
    except OSError:
        return None
    remove_stale(root)
    if mode & 0o055:  # group or others may list or read it
        return (f"{root} is readable by others (mode {mode:04o}) and holds log content and alerts: "
                f"chmod -R go-rwx {root}")
    return None
