"""A device's own tag wherever a relay put it (Cisco ASA/FTD ``%ASA-6-302013:``), for the syslog engine.

Devices that write a message id of their own (``%ASA-6-302013: Built ...``) reach us through relays that
each frame it their way: ``fw01 %ASA-...``, ``fw01 : %ASA-...`` (``logging device-id``), ``dev01: %ASA-...``
(host glued to a colon), ``fw01 CiscoASA[999]: %ASA-...`` (a relay's program tag), ``<PRI>1 TS fw01 - - - -
%ASA-...`` (RFC 5424), ``2024-06-26T01:35:42Z: %ASA-...`` or no header at all. A header reader takes the
first word after the time for a host or a program, so the same event lands with different hosts and
programs. This pass, after ``parse_headers``, finds the tag (a spec's literal prefix, then letters, digits
and ``-`` up to a ``:`` that ends the word) and re-splits the line: the tag becomes the ``msgid`` field, the
text after it the message; a word glued to its colon with no host before it (``dev01:``) is the host; a
relay's ``program[pid]:`` right before the tag stays the program (``UTC:``/``GMT:`` right after the time is
the stamp's zone); anything else the header reader took for a program goes. The tag's trailing digits
become ``msgid_code`` and the digit between dashes before them ``msgid_level`` (spans: no regex per row).
Lines whose header did not read (no timestamp the header reader knows) are kept when they hold the tag:
the time before it is read if it is one (ISO 8601 or ``Mmm dd [yyyy] hh:mm:ss``, a colon after it
allowed), else the line has no time of its own: it takes ``now`` (UTC microseconds: the caller's
reference, the file's modification time) and no ``time`` span, so a spec can say where its time came from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from soc.jit import njit, prange
from soc.parse import syslog_header as H
from soc.parse.columns import SpecError
from soc.parse.kernels import same_bytes
from soc.parse.syslog_header import APP, HOST, MSG, MSGID, MSGID_CODE, MSGID_LEVEL, PID, TIME


@njit(cache=True)
def _word(c):
    """Letters, digits, ``-`` and ``_``: what a tag is made of after its prefix."""
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 45 or c == 95


@njit(cache=True)
def _utc(buf, a, b):
    """Whether ``buf[a:b]`` is ``UTC`` or ``GMT`` (the ASA's ``logging timestamp`` may end with a zone)."""
    if b - a != 3:
        return False
    x, y, z = buf[a], buf[a + 1], buf[a + 2]
    return (x == 85 and y == 84 and z == 67) or (x == 71 and y == 77 and z == 84)


@njit(cache=True)
def _find(buf, a, e, lits, lit_at):
    """(start, colon) of the first tag in ``buf[a:e]``: a prefix, word bytes, ``:`` then a blank or the end.

    Linear when the prefixes start with a byte that is not a word byte (``%``): word scans never overlap.
    """
    for p in range(a, e):
        for k in range(lit_at.size - 1):
            x = lit_at[k]
            n = lit_at[k + 1] - x
            if buf[p] != lits[x] or p + n > e or not same_bytes(buf, p, lits, x, n):
                continue
            q = p + n
            while q < e and _word(buf[q]):
                q += 1
            if q > p + n and q < e and buf[q] == H.COLON and (q + 1 == e or buf[q + 1] == H.SP or buf[q + 1] == H.TAB):
                return p, q
    return -1, -1


@njit(cache=True, nogil=True, parallel=True)
def retag(buf, starts, ends, fs, fe, ts, kind, err, lits, lit_at, year, limit, now):
    """Move the tag of each line that has one to ``msgid`` and set host, program and message around it.

    Arrays as ``parse_headers`` returns them, changed in place; ``lits``/``lit_at`` are the prefixes.
    """
    for r in prange(starts.size):
        s = starts[r]
        e = ends[r]
        while e > s and (buf[e - 1] == H.SP or buf[e - 1] == H.TAB):
            e -= 1
        if err[r] == H.OK:
            a = fe[TIME, r]
        elif err[r] == H.E_TIME:
            a = s
        else:
            continue
        p, q = _find(buf, a, e, lits, lit_at)
        if p < 0:
            continue
        if err[r] == H.E_TIME:  # a header the reader does not know: <PRI>, a time if there is one, a host
            i = s
            if buf[i] == H.LT:
                while i < p and buf[i] != H.GT:
                    i += 1
                i += 1
            j = -1
            t = now
            k = H.T_UTC
            if i < p and 48 <= buf[i] <= 57:
                j, t, k = H._iso(buf, i, p)
            elif i < p:
                j, t = H._bsd(buf, i, p, year, limit)
                k = H.T_WALL
            if j == -2:
                err[r] = H.E_DATE
                continue
            if j > 0:
                fs[TIME, r] = i
                fe[TIME, r] = j
                i = j
            else:
                t = now
                k = H.T_UTC
            ts[r] = t
            kind[r] = k
            while i < p and (buf[i] == H.SP or buf[i] == H.COLON):
                i += 1
            h = i
            while h < p and buf[h] != H.SP and buf[h] != H.COLON:
                h += 1
            g = h
            while g < p and (buf[g] == H.SP or buf[g] == H.COLON):
                g += 1
            if h > i and g == p:  # one word between the time and the tag: the host
                fs[HOST, r] = i
                fe[HOST, r] = h
            err[r] = H.OK
        elif fs[APP, r] >= 0 and fs[APP, r] < p:
            glued = fs[HOST, r] < 0 and fs[PID, r] < 0 and fe[APP, r] < e and buf[fe[APP, r]] == H.COLON
            if fs[MSG, r] == p and glued and fs[APP, r] == fe[TIME, r] + 1 and _utc(buf, fs[APP, r], fe[APP, r]):
                if kind[r] == H.T_WALL:  # "hh:mm:ss UTC: %ASA-...": the stamp's own zone, not a host
                    kind[r] = H.T_UTC
            elif fs[MSG, r] == p and glued:  # "dev01: %ASA-...": a host, not a program
                fs[HOST, r] = fs[APP, r]
                fe[HOST, r] = fe[APP, r]
            if fs[MSG, r] != p or glued:  # not a relay's "program[pid]:" right before the tag
                fs[APP, r] = -1
                fe[APP, r] = -1
                fs[PID, r] = -1
                fe[PID, r] = -1
        elif fs[APP, r] == p:  # the header reader took the tag for the program
            fs[APP, r] = -1
            fe[APP, r] = -1
        end = fe[MSG, r] if fs[MSG, r] <= p < fe[MSG, r] else e
        fs[MSGID, r] = p
        fe[MSGID, r] = q
        c = q  # the tag's trailing digits (302013) and the severity digit before them (-6-): spans, no regex
        while c > p and 48 <= buf[c - 1] <= 57:
            c -= 1
        if c < q:
            fs[MSGID_CODE, r] = c
            fe[MSGID_CODE, r] = q
            if c - 3 >= p and buf[c - 1] == H.DASH and 48 <= buf[c - 2] <= 57 and buf[c - 3] == H.DASH:
                fs[MSGID_LEVEL, r] = c - 2
                fe[MSGID_LEVEL, r] = c - 1
        m = q + 1
        while m < end and (buf[m] == H.SP or buf[m] == H.TAB):
            m += 1
        fs[MSG, r] = m if m < end else -1
        fe[MSG, r] = end if m < end else -1


def micros(moment: datetime) -> int:
    """UTC microseconds since 1970 of an aware ``moment`` (the reference a time-less line takes)."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def prefixes(values: str | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The flat bytes and offsets of a spec's tag prefixes (``inner_tag: ['%ASA-', '%FTD-']``, or one)."""
    items = [values] if isinstance(values, str) else list(values)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise SpecError(f"syslog inner_tag: give a prefix or a list of non-empty prefixes, not {values!r}")
    raw = [v.encode() for v in items]
    lits = np.frombuffer(b"".join(raw), np.uint8).copy()
    return lits, np.cumsum([0, *(len(v) for v in raw)]).astype(np.int64)
