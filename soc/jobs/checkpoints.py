"""Incremental reading for scheduled jobs: which bytes of which files a run reads, as Filebeat's registry.

A file is known by its identity: device + inode, and a fingerprint (SHA-256 of its first ``FP_BYTES``,
decompressed for ``.gz``/``.zst``; fewer while the file is shorter, widened as it grows). Per file the
registry keeps the offset after the last complete line read and the number of lines before it, so a run
that resumes there numbers lines (``log.line``, ``log.offset``) as a whole-file read does.

``Checkpoints.load(path).plan(inputs)`` says what a run reads: every file of ``inputs`` (paths, folders,
globs) from its checkpoint to its last complete line at planning time (a last line without its newline
waits for the next run). After the run's alerts are stored, ``advance(plan, stats)`` then ``save()`` move
the checkpoints (a file whose read failed keeps its old one). The cases:

- appended: read from the offset;
- renamed (rotation by rename): the file is found by its identity under its new name, among the inputs or
  in the folder of its old name, and read from its offset to its end; the new file at the old name is new;
- truncated (copytruncate): a file shorter than its offset, or whose fingerprint changed, starts again from
  0; a new file whose fingerprint is that of a file read before (the copy, or a file renamed and replaced
  between two runs) goes on from that file's offset;
- compressed copies: a ``.gz``/``.zst`` whose decompressed first bytes fingerprint as a file read before is
  read from that file's offset, and not at all when its decompressed size (the gzip trailer) is that offset;
  a compressed file once read is not read again while its identity, size and mtime hold;
- EVTX (records, not lines): an unchanged file (identity, size and mtime) is skipped; a changed one is read
  from its record ids. Its records live in 64 KiB chunks that the writer fills and, once the log is full,
  overwrites in a ring, so no byte offset says where the new records start, but their ids (``EventRecordID``)
  only grow: the entry keeps the highest id read (``record``), and a run reads the records after it up to the
  newest id its chunk headers hold at planning time (``Source.records``: the engine reads only the chunks
  holding such ids, and counts no other record), so no record is hunted twice (a counting detector or a
  correlation would count it twice). A file whose newest id is below the one read was cleared (ids start
  again at 1) or replaced: read whole; one changed without a newer id is not read.
- new files matching a glob are read from 0; files gone are forgotten (pruned from the registry).

The plan lists the files read before first (the older lines: a renamed file's tail before the new file).
Planning reads each file's first KiB and, of a file that grew, the new bytes once to count their lines (and
find header lines): ~0.5 s CPU a GB from the page cache, nothing for the bytes read before; of a changed
EVTX file, its chunk headers (40 bytes a 64 KiB chunk).

Limits, as Filebeat's: a file truncated then rewritten past its old offset with the same first bytes before
the next run passes for appended (an EVTX log cleared and written past the highest id read, for grown); a tiny
file (under ``FP_MATCH_MIN`` bytes at its last read) is not recognised by content under another identity.
Records of an EVTX chunk whose header does not count them yet wait until it does. Header lines (Zeek
``#fields``, W3C ``#Fields:``) of a file that starts with ``#`` are kept (the last ``DIRECTIVES``) and replayed
before a resumed read. A JSON-array file (one ``[...]`` over many lines) cannot be resumed inside the array.

The registry is JSON, written atomically (temporary file, fsync, rename); a corrupted one is an error
(``RegistryError``), never a silent re-read of everything.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from soc.private import new_temp, publish
from soc.sources import InputError, Source, discover
from soc.sources.discover import SKIP_SUFFIXES

VERSION = 1
FP_BYTES = 1024
FP_MATCH_MIN = 256  # fingerprints shorter than this never match a file of another identity
DIRECTIVES = 32  # header lines kept per file
EVTX_MAGIC = b"ElfFile\x00"
BLOCK = 1 << 20
_DIRECTIVE = re.compile(rb"(?m)^#[^\n]*\n")


class RegistryError(Exception):
    """The checkpoint registry cannot be read: the job stops rather than read every input again."""


@dataclass
class Entry:
    """One file's checkpoint. ``offset``: bytes (decompressed) before the next line to read; ``line``: the
    lines before ``offset``. ``done``: read whole (compressed, EVTX), nothing more while unchanged. ``record``:
    an EVTX file's highest record id read (``records``: an EVTX file)."""

    path: str
    dev: int
    ino: int
    fp: str
    fp_len: int
    offset: int = 0
    line: int = 0
    size: int = 0
    mtime: float = 0.0
    compressed: bool = False
    records: bool = False
    done: bool = False
    format: str | None = None
    directives: list[str] = field(default_factory=list)  # latin-1, each with its newline
    record: int = 0

    @property
    def identity(self) -> tuple[int, int]:
        return self.dev, self.ino


@dataclass
class Plan:
    """What one run reads (``sources``, oldest data first) and the registry after it (``entries``).

    ``reasons``: why each source is read (new, appended, renamed from ..., truncated ...); ``forgotten``:
    files gone since the last run; ``missing``: inputs matching nothing now; ``errors``: files that could not
    be read (they keep their checkpoints); ``rollback``: the old entries a source replaces, kept instead if its
    read fails."""

    sources: list[Source]
    entries: list[Entry]
    reasons: dict[str, str] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    rollback: dict[str, list[Entry]] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        """Bytes the run reads (compressed files: their size on disk)."""
        return sum(s.size or 0 for s in self.sources)


@dataclass
class _File:
    """A file found now: its stat, and its first bytes (decompressed) once ``read_head`` was called."""

    path: str
    st: os.stat_result
    compressed: bool
    head: bytes = b""

    @property
    def identity(self) -> tuple[int, int]:
        return self.st.st_dev, self.st.st_ino

    def read_head(self) -> bytes:
        """The first ``FP_BYTES`` (b"" if they cannot be read: the pipeline reports why)."""
        stream = raw = None
        try:
            stream, raw = Source(self.path, None, None).open()
            self.head = stream.read(FP_BYTES)
        except Exception:  # noqa: BLE001 - unreadable, corrupt gzip/zstd data: read as new, reported by the run
            self.head = b""
        finally:
            for fh in (stream, raw):
                with contextlib.suppress(Exception):
                    fh.close()
        return self.head


class Checkpoints:
    """The registry of one job: load, plan a run, advance after it, save."""

    def __init__(self, path: str | Path, entries: list[Entry] | None = None):
        self.path = Path(path)
        self.entries = entries or []

    @classmethod
    def load(cls, path: str | Path) -> Checkpoints:
        """The registry at ``path``; empty if there is none yet (a first run). ``RegistryError`` if corrupted."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"cannot read checkpoint registry {path}: {exc}") from None
        try:
            return cls(path, _entries(json.loads(text)))
        except (ValueError, TypeError, KeyError) as exc:
            raise RegistryError(
                f"checkpoint registry {path} is corrupted ({exc}); restore it, or move it away to read every "
                "input again from its start") from None

    def save(self) -> None:
        """Write the registry atomically: a temporary file, fsync, rename, fsync of the folder."""
        data = {"version": VERSION, "files": [vars(e) for e in self.entries]}  # asdict: 10x slower
        tmp = new_temp(self.path, self.path.parent)
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))  # json.dump: no C encoder
                fh.flush()
                os.fsync(fh.fileno())
            publish(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with contextlib.suppress(OSError):
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def plan(self, inputs: list[str]) -> Plan:
        """The sources a run over ``inputs`` reads and the registry after it (see the module's docstring)."""
        return _Planner(self.entries).plan(inputs)

    def advance(self, plan: Plan, stats: list | None = None) -> None:
        """Take ``plan``'s registry, after its sources were read and their alerts stored. ``stats`` (the
        pipeline's ``SourceStats``) gives each file's format, remembered for its next reads, and its errors:
        a file whose read failed keeps its old checkpoint (read again by the next run)."""
        failed = {s.path for s in stats or () if s.error}
        formats = {s.path: s.format for s in stats or () if s.format}
        entries: list[Entry] = []
        for e in plan.entries:
            if e.path in failed:
                entries += plan.rollback.get(e.path, [])
            else:
                known = formats.get(e.path, e.format)
                entries.append(e if known == e.format else replace(e, format=known))
        unique: dict[tuple[int, int], Entry] = {}
        for e in entries:
            unique.setdefault(e.identity, e)
        self.entries = list(unique.values())


def _entries(data) -> list[Entry]:
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), list):
        raise ValueError(f"not a version {VERSION} registry")
    names = {f.name for f in fields(Entry)}
    out = []
    for item in data["files"]:
        if not isinstance(item, dict) or set(item) - names:
            raise ValueError(f"bad entry {str(item)[:200]}")
        e = Entry(**item)
        if not (isinstance(e.path, str) and all(isinstance(v, int) and v >= 0 for v in
                                                (e.dev, e.ino, e.fp_len, e.offset, e.line, e.size, e.record))
                and isinstance(e.fp, str) and len(e.fp) == 64 and isinstance(e.mtime, int | float)
                and all(isinstance(v, bool) for v in (e.compressed, e.records, e.done))
                and (e.format is None or isinstance(e.format, str))
                and isinstance(e.directives, list) and all(isinstance(d, str) for d in e.directives)):
            raise ValueError(f"bad entry for {e.path!r}")
        out.append(e)
    return out


class _Planner:
    def __init__(self, entries: list[Entry]):
        self.old = entries
        self.by_id = {e.identity: e for e in entries}
        self.used: set[int] = set()  # id() of old entries carried on by a file
        self.reads: list[tuple[int, Source]] = []  # (0: continues a known file, 1: new), source
        self.plan_ = Plan([], [])

    def plan(self, inputs: list[str]) -> Plan:
        files, seen, ids = [], set(), set()
        for name in inputs:
            try:
                found = _expand(name)
            except InputError:
                self.plan_.missing.append(name)
                continue
            for f in found:
                if f.path in seen:
                    continue
                seen.add(f.path)
                if f.identity not in ids:  # one file under two names (links) read once
                    ids.add(f.identity)
                    files.append(f)
        new: list[_File] = []
        for f in files:
            e = self.by_id.get(f.identity)
            if e is not None and _unchanged(e, f):
                self.used.add(id(e))
                self._keep(replace(e, path=f.path))
                continue
            f.read_head()
            if e is not None and (_same(e, f.head) or e.records and f.head.startswith(EVTX_MAGIC)):
                self._known(e, f, None)
            else:
                new.append(f)
        folders: dict[str, dict[tuple[int, int], str]] = {}
        for e in self.old:  # renamed away from the inputs: same identity in its old folder
            if id(e) in self.used or e.identity in ids:
                continue
            path = _renamed(e, folders)
            f = _look(path) if path else None
            if f is None or f.identity != e.identity:
                continue
            if _unchanged(e, f):
                self.used.add(id(e))
                self._keep(replace(e, path=f.path))
            elif _same(e, f.read_head()) or e.records and f.head.startswith(EVTX_MAGIC):
                self._known(e, f, f"renamed from {e.path}")
        new.sort(key=lambda f: f.compressed)  # a compressed copy may go on from a plain file planned here
        for f in new:
            self._new(f)
        self.plan_.forgotten = [e.path for e in self.old if id(e) not in self.used]
        self.plan_.sources = [s for _, s in sorted(self.reads, key=lambda r: r[0])]
        return self.plan_

    # -- a file read before (same identity and fingerprint) ----------------------------------------------------
    def _known(self, e: Entry, f: _File, why: str | None) -> None:
        if e.records and not f.compressed:
            self.used.add(id(e))
            self._evtx(f, e, why)
            return
        if f.compressed or e.records:
            self.used.add(id(e))
            self._whole(f, 0, [e], why or "changed since it was read: read whole again")
            return
        if f.st.st_size < e.offset:  # copytruncate: the old content may live on in a copy (``_new``)
            self._lines(f, Entry(f.path, *f.identity, "", 0, format=e.format), 1, [],
                        "truncated: read from its start")
            return
        self.used.add(id(e))
        self._lines(f, e, 0, [e], why or "appended")

    # -- a file of a new identity ------------------------------------------------------------------------------
    def _new(self, f: _File) -> None:
        base = self._match(f)
        if f.compressed:
            if base is None:
                self._whole(f, 1, [], "new")
            elif base.done or _gzip_size(f) == base.offset % (1 << 32):
                self._keep(_entry(f, base.offset, base.line, done=True, base=base))
            else:
                self._whole(f, 0, [base], f"compressed copy of {base.path}: read from its offset", base)
            return
        if f.head.startswith(EVTX_MAGIC):
            self._evtx(f, None, None)
        elif base is not None and base.done:  # decompressed copy of a compressed file read: at its end, unread
            end = _last_line_end(f.path, 0, f.st.st_size)
            lines, found = _scan(f.path, 0, end, f.head.startswith(b"#"))
            e = _entry(f, end, lines, base=base)
            e.directives = found[-DIRECTIVES:]
            self._keep(e)
        elif base is not None and f.st.st_size >= base.offset:
            self._lines(f, replace(base, path=f.path), 0, [base], f"copy of {base.path}: read from its offset")
        else:
            self._lines(f, Entry(f.path, *f.identity, "", 0), 1, [], "new")

    def _match(self, f: _File) -> Entry | None:
        """An entry of a file read before whose fingerprint ``f`` has: the old ones no file carried on, then
        those planned here (a compressed copy of a file read in this run)."""
        pool = [e for e in self.old if id(e) not in self.used and not e.records]
        digests: dict[int, str] = {}  # of f's first n bytes, per n the entries were fingerprinted by
        for e in [*pool, *self.plan_.entries]:
            if e.fp_len < min(FP_MATCH_MIN, FP_BYTES) or e.fp_len > len(f.head) or e.identity == f.identity:
                continue
            if e.fp_len not in digests:
                digests[e.fp_len] = hashlib.sha256(f.head[: e.fp_len]).hexdigest()
            if digests[e.fp_len] == e.fp:
                if any(e is p for p in pool):
                    self.used.add(id(e))
                return e
        return None

    # -- the plan's entries and sources ------------------------------------------------------------------------
    def _keep(self, e: Entry) -> None:
        self.plan_.entries.append(e)

    def _whole(self, f: _File, order: int, old: list[Entry], why: str, base: Entry | None = None) -> None:
        """Read whole (EVTX, compressed files), or a compressed copy from ``base``'s offset."""
        start, line = (base.offset, base.line) if base is not None else (0, 0)
        e = _entry(f, start, line, done=True, base=base)
        e.records = not f.compressed and f.head.startswith(EVTX_MAGIC)
        self._read(Source(f.path, f.st.st_size, f.st.st_mtime, start=start, first_line=line + 1,
                          prelude=_prelude(base) if start else b"", format=base.format if base else None),
                   e, order, old, why)

    def _evtx(self, f: _File, e: Entry | None, why: str | None) -> None:
        """An EVTX file: its records after the highest id read (``e.record``; all of a new file) up to the
        newest its chunk headers hold now (those written later wait for the next run); a file whose newest
        id is below the one read was cleared (ids start again at 1) or replaced: read whole. No chunk
        header (a file just created, or not one the engine reads): read whole as it is. The source's size
        is that of the chunks read (those holding newer ids)."""
        chunks = _chunk_ids(f.path)
        newest = max((last for _, _, last in chunks), default=None)
        old, after, why = ([e], e.record, why) if e is not None else ([], 0, "new")
        if newest is not None and e is not None and newest < e.record:
            after, why = 0, why or f"cleared or replaced (newest record id {newest} < {e.record} read): read whole"
        elif newest is not None and e is not None and newest == e.record:
            self._keep(replace(_entry(f, 0, 0, done=True, base=e), records=True, record=newest))
            return
        why = why or f"grown: records after id {after}"
        new = replace(_entry(f, 0, 0, done=True, base=e), records=True, record=newest or 0)
        size = f.st.st_size
        if after:
            from soc.parse.engines.evtx import CHUNK_SIZE, HEADER_SIZE

            size = min(size, HEADER_SIZE + CHUNK_SIZE * sum(last > after for _, _, last in chunks))
        self._read(Source(f.path, size, f.st.st_mtime, format=e.format if e else None,
                          records=(after, newest) if newest is not None else None),
                   new, 0 if e is not None else 1, old, why)

    def _lines(self, f: _File, e: Entry, order: int, old: list[Entry], why: str) -> None:
        """A plain file from ``e``'s offset to its last complete line; one that cannot be read keeps its old
        checkpoint (``old``), the reason in ``Plan.errors``."""
        new = _entry(f, e.offset, e.line, base=e)
        try:
            end = _last_line_end(f.path, e.offset, f.st.st_size)
            lines, found = _scan(f.path, e.offset, end, f.head.startswith(b"#")) if end > e.offset else (0, [])
        except OSError as exc:
            self.plan_.errors[f.path] = f"cannot read: {exc}"
            self.plan_.entries += old
            return
        if end > e.offset:
            new.offset, new.line = end, e.line + lines
            new.directives = (e.directives + found)[-DIRECTIVES:]
            self._read(Source(f.path, end - e.offset, f.st.st_mtime, start=e.offset, first_line=e.line + 1,
                              end=end, prelude=_prelude(e) if e.offset else b"", format=e.format),
                       new, order, old, why)
        else:
            self._keep(new)

    def _read(self, source: Source, e: Entry, order: int, old: list[Entry], why: str) -> None:
        self.plan_.entries.append(e)
        self.plan_.rollback[source.path] = old
        self.plan_.reasons[source.path] = why
        self.reads.append((order, source))


def _expand(name: str, tries: int = 3) -> list[_File]:
    """The files of one input, as ``discover`` finds them. A glob's matches are stat'ed once here (discover
    stats them twice, and this once more: a third of the planning time over 5,000 files), a file gone
    meanwhile (a rotation) left out; a folder or path is listed again if a file went before its stat."""
    if name != "-" and not os.path.exists(name):
        found = []
        for path in sorted(glob.glob(name, recursive=True)):
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if stat.S_ISREG(st.st_mode) and Path(path).suffix not in SKIP_SUFFIXES:
                    found.append(_File(path, st, Source(path, None, None).compression is not None))
        if not found:
            raise InputError(f"no such file, directory or glob match: {name}")
        return found
    for _ in range(tries - 1):
        with contextlib.suppress(FileNotFoundError):
            return [f for s in discover([name]) if s.path != "-" and (f := _look(s.path)) is not None]
    return [f for s in discover([name]) if s.path != "-" and (f := _look(s.path)) is not None]


def _entry(f: _File, offset: int, line: int, done: bool = False, base: Entry | None = None) -> Entry:
    """The entry of ``f`` now: its identity, fingerprint, size and mtime, at ``offset``/``line``."""
    fp_len = min(len(f.head), FP_BYTES)
    return Entry(f.path, *f.identity, hashlib.sha256(f.head[:fp_len]).hexdigest(), fp_len, offset, line,
                 f.st.st_size, f.st.st_mtime, f.compressed, False, done,
                 base.format if base else None, list(base.directives) if base else [])


def _same(e: Entry, head: bytes) -> bool:
    """``head`` starts with the bytes ``e`` was fingerprinted by."""
    return len(head) >= e.fp_len and hashlib.sha256(head[: e.fp_len]).hexdigest() == e.fp


def _look(path: str) -> _File | None:
    """The file at ``path`` now; None if it went meanwhile."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _File(path, st, Source(path, None, None).compression is not None)


def _unchanged(e: Entry, f: _File) -> bool:
    """A file read whole (compressed, EVTX) with the same size and mtime: not opened again."""
    return e.done and f.st.st_size == e.size and f.st.st_mtime == e.mtime


def _renamed(e: Entry, folders: dict[str, dict[tuple[int, int], str]]) -> str | None:
    """The file of identity ``e.identity`` in the folder of ``e.path`` (under another name), if any."""
    folder = os.path.dirname(e.path) or "."
    if folder not in folders:
        found: dict[tuple[int, int], str] = {}
        with contextlib.suppress(OSError), os.scandir(folder) as it:
            for d in it:
                with contextlib.suppress(OSError):
                    if d.is_file(follow_symlinks=False):
                        st = d.stat(follow_symlinks=False)
                        found[(st.st_dev, st.st_ino)] = d.path
        folders[folder] = found
    return folders[folder].get(e.identity)


def _last_line_end(path: str, start: int, size: int) -> int:
    """The offset just after the last ``\\n`` in bytes ``start`` to ``size`` of ``path`` (``start`` if none)."""
    if size <= start:
        return start
    with open(path, "rb") as fh:
        pos = size
        while pos > start:
            lo = max(start, pos - (64 << 10))
            fh.seek(lo)
            block = fh.read(pos - lo)
            nl = block.rfind(b"\n")
            if nl >= 0:
                return lo + nl + 1
            pos = lo
    return start


def _scan(path: str, start: int, end: int, directives: bool) -> tuple[int, list[str]]:
    """The lines in bytes ``start`` to ``end`` (``end`` after a ``\\n``) and, if asked, its ``#`` lines."""
    lines, found, carry = 0, [], b""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(BLOCK, left))
            if not block:
                break
            left -= len(block)
            lines += block.count(b"\n")
            if directives:
                cut = block.rfind(b"\n") + 1
                text, carry = carry + block[:cut], block[cut:] if cut else carry + block
                if cut:
                    found += [m.decode("latin-1") for m in _DIRECTIVE.findall(text)][-DIRECTIVES:]
                    found = found[-DIRECTIVES:]
    return lines, found


def _prelude(e: Entry | None) -> bytes:
    return "".join(e.directives).encode("latin-1") if e is not None else b""


def _chunk_ids(path: str) -> list[tuple[int, int, int]]:
    """(offset, first, last record id) of the chunks of the EVTX file at ``path``: its ids only grow, also when
    the chunks are overwritten in a ring; [] if it cannot be read (its read says why)."""
    from soc.parse.engines.evtx import chunk_ranges

    try:
        return chunk_ranges(path)
    except OSError:
        return []


def _gzip_size(f: _File) -> int | None:
    """A single-member gzip file's decompressed size, from its trailer (mod 2**32); None otherwise."""
    if not f.path.endswith(".gz") or f.st.st_size < 18:
        return None
    try:
        with open(f.path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little")
    except OSError:
        return None
