"""Numba kernel for syslog headers: RFC 3164, RFC 5424 and rsyslog's ISO 8601 variant, in one pass.

Optional ``<PRI>``; ``Mmm dd hh:mm:ss HOST TAG[PID]: MSG`` with or without the host, pid and colon (Cisco
ASA's ``Mmm dd yyyy hh:mm:ss[:]`` stamp and ``HOST : TAG: MSG`` too; old Linux-PAM's ``sshd(pam_unix)[PID]:``
tag is program ``sshd``, the module name dropped; a relay's ``facility.level`` word after the host skipped);
``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG``; rsyslog's ISO 8601 stamp in place of ``Mmm dd hh:mm:ss``.
The timestamp is converted here too (year-less ones by the rule of ``time.yearless``), and rsyslog's
``message repeated N times: [ MSG]`` is unwrapped: MSG is the message and N its ``repeat`` field.
"""

from __future__ import annotations

import numpy as np

from soc.jit import njit, prange
from soc.parse.kernels import same_bytes

SP, TAB, LT, GT, LB, RB, COLON, QUOTE, BSLASH, DASH, PLUS, DOT, COMMA, LP, RP = (
    32, 9, 60, 62, 91, 93, 58, 34, 92, 45, 43, 46, 44, 40, 41)
DAY = 86_400_000_000

# rows of the header span arrays, and the raw fields they become
PRI, TIME, HOST, APP, PID, MSGID, SD, MSG, REPEAT, MSGID_CODE, MSGID_LEVEL = range(11)
HEADER = ("priority", "time", "host", "program", "pid", "msgid", "structured_data", "message", "repeat",
          "msgid_code", "msgid_level")  # the last two: a device tag's id and severity digit (``syslog_tag``)
TIMESTAMP = "timestamp"

# kinds of timestamp: none, wall-clock time of the source's zone, UTC
T_NONE, T_WALL, T_UTC = 0, 1, 2

OK, E_EMPTY, E_PRI, E_TIME, E_DATE, E_NIL_TIME, E_HOST, E_5424, E_SD = range(9)
ERRORS = {
    E_EMPTY: "empty line",
    E_PRI: "malformed <PRI>",
    E_TIME: "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)",
    E_DATE: "timestamp out of range",
    E_NIL_TIME: "RFC 5424 timestamp is nil",
    E_HOST: "no host or tag after the timestamp",
    E_5424: "truncated RFC 5424 header",
    E_SD: "malformed RFC 5424 structured data",
}

_MONTHS = np.frombuffer(b"janfebmaraprmayjunjulaugsepoctnovdec", np.uint8)
_REPEATED = np.frombuffer(b"message repeated ", np.uint8)
_TIMES = np.frombuffer(b" times: [", np.uint8)
_LEVELS = np.frombuffer(b"emerg,alert,crit,err,error,warn,warning,notice,info,debug,panic,", np.uint8)


@njit(cache=True)
def _digit(c):
    return 48 <= c <= 57


@njit(cache=True)
def _num(buf, i, k, e):
    """Value of the ``k`` digits at ``i``, or -1 if they are not all there."""
    if i + k > e:
        return -1
    v = 0
    for j in range(i, i + k):
        if not _digit(buf[j]):
            return -1
        v = v * 10 + (buf[j] - 48)
    return v


@njit(cache=True)
def _days(y, m, d):
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's ``days_from_civil``)."""
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


@njit(cache=True)
def _month_days(y, m):
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


@njit(cache=True)
def _clock(buf, i, e):
    """``hh:mm:ss[.f]`` at ``i``: (end, microseconds of the day); end -1 if malformed, -2 if out of range."""
    hh = _num(buf, i, 2, e)
    mm = _num(buf, i + 3, 2, e)
    ss = _num(buf, i + 6, 2, e)
    if hh < 0 or mm < 0 or ss < 0 or buf[i + 2] != COLON or buf[i + 5] != COLON:
        return -1, 0
    if hh > 23 or mm > 59 or ss > 60:
        return -2, 0
    us = ((hh * 60 + mm) * 60 + ss) * 1_000_000
    j = i + 8
    if j < e and (buf[j] == DOT or buf[j] == COMMA):
        j += 1
        k = 0
        frac = 0
        while j < e and _digit(buf[j]):
            if k < 6:
                frac = frac * 10 + (buf[j] - 48)
                k += 1
            j += 1
        if k == 0:
            return -1, 0
        for _ in range(k, 6):
            frac *= 10
        us += frac
    return j, us


@njit(cache=True)
def _iso(buf, i, e):
    """``YYYY-MM-DDThh:mm:ss[.f][Z|+hh:mm|+hhmm]`` at ``i``: (end, microseconds, kind), end < 0 as ``_clock``.

    With an offset the time is UTC; without one it is wall-clock time of the source's zone.
    """
    if i + 19 > e:
        return -1, 0, T_NONE
    y = _num(buf, i, 4, e)
    mo = _num(buf, i + 5, 2, e)
    d = _num(buf, i + 8, 2, e)
    if y < 0 or mo < 0 or d < 0 or buf[i + 4] != DASH or buf[i + 7] != DASH or (buf[i + 10] | 32) != 116:
        return -1, 0, T_NONE
    j, us = _clock(buf, i + 11, e)
    if j < 0:
        return j, 0, T_NONE
    if mo < 1 or mo > 12 or d < 1 or d > _month_days(y, mo):
        return -2, 0, T_NONE
    t = _days(y, mo, d) * DAY + us
    if j < e and (buf[j] | 32) == 122:  # Z
        return j + 1, t, T_UTC
    if j < e and (buf[j] == PLUS or buf[j] == DASH):
        sign = 1 if buf[j] == PLUS else -1
        oh = _num(buf, j + 1, 2, e)
        k = j + 3
        om = 0
        if k < e and buf[k] == COLON:
            om = _num(buf, k + 1, 2, e)
            k += 3
        elif k < e and _digit(buf[k]):
            om = _num(buf, k, 2, e)
            k += 2
        if oh < 0 or om < 0:
            return -1, 0, T_NONE
        if oh > 23 or om > 59:
            return -2, 0, T_NONE
        return k, t - sign * (oh * 60 + om) * 60_000_000, T_UTC
    return j, t, T_WALL


@njit(cache=True)
def _month(buf, i):
    """1-12 for a three-letter English month name at ``i`` (any case), else 0."""
    a = buf[i] | 32
    b = buf[i + 1] | 32
    c = buf[i + 2] | 32
    for m in range(12):
        if _MONTHS[3 * m] == a and _MONTHS[3 * m + 1] == b and _MONTHS[3 * m + 2] == c:
            return m + 1
    return 0


@njit(cache=True)
def _bsd(buf, i, e, year, limit):
    """``Mmm dd hh:mm:ss[.f]`` at ``i`` (day space-padded or not): (end, wall-clock microseconds).

    The year is ``year`` unless that puts the stamp after ``limit``, or the date does not exist in it
    (Feb 29): then the latest earlier year where it exists, as ``time.yearless`` rules.
    """
    if i + 14 > e:
        return -1, 0
    mo = _month(buf, i)
    if mo == 0 or buf[i + 3] != SP:
        return -1, 0
    j = i + 4
    if buf[j] == SP:
        j += 1
    if not _digit(buf[j]):
        return -1, 0
    d = buf[j] - 48
    j += 1
    if j < e and _digit(buf[j]):
        d = d * 10 + (buf[j] - 48)
        j += 1
    if j >= e or buf[j] != SP:
        return -1, 0
    given = _num(buf, j + 1, 4, e)  # Cisco ASA's "Mmm dd yyyy hh:mm:ss" (logging timestamp): no guess
    if given > 0 and j + 5 < e and buf[j + 5] == SP:
        j, us = _clock(buf, j + 6, e)
        if j < 0:
            return j, 0
        if d < 1 or d > _month_days(given, mo):
            return -2, 0
        return j, _days(given, mo, d) * DAY + us
    j, us = _clock(buf, j + 1, e)
    if j < 0:
        return j, 0
    for k in range(5):
        y = year - k
        if 1 <= d <= _month_days(y, mo):
            t = _days(y, mo, d) * DAY + us
            if k > 0 or t <= limit:
                return j, t
    return -2, 0


@njit(cache=True)
def _message(buf, i, e, r, fs, fe):
    """The message span, blanks trimmed; ``message repeated N times: [ MSG]`` becomes MSG and repeat N."""
    while i < e and (buf[i] == SP or buf[i] == TAB):
        i += 1
    if i >= e:
        return
    n = _REPEATED.size
    if e - i > n + 10 and same_bytes(buf, i, _REPEATED, 0, n):
        j = i + n
        k = j
        while k < e and _digit(buf[k]):
            k += 1
        if k > j and k + _TIMES.size <= e and same_bytes(buf, k, _TIMES, 0, _TIMES.size):
            fs[REPEAT, r] = j
            fe[REPEAT, r] = k
            i = k + _TIMES.size
            if buf[e - 1] == RB:
                e -= 1
            while i < e and buf[i] == SP:
                i += 1
            while e > i and buf[e - 1] == SP:
                e -= 1
            if i >= e:
                return
    fs[MSG, r] = i
    fe[MSG, r] = e


@njit(cache=True)
def _level_end(buf, i, e):
    """End of a ``facility.level`` word at ``i`` followed by a blank (``user.info``, ``local7.warning``), or -1."""
    j = i
    while j < e and (97 <= buf[j] <= 122 or _digit(buf[j])):
        j += 1
    if j - i < 2 or j - i > 8 or j >= e or buf[j] != DOT:
        return -1
    k = j + 1
    while k < e and 97 <= buf[k] <= 122:
        k += 1
    if k >= e or buf[k] != SP:
        return -1
    a = 0
    for b in range(_LEVELS.size):
        if _LEVELS[b] == COMMA:
            if b - a == k - j - 1 and same_bytes(buf, j + 1, _LEVELS, a, b - a):
                return k
            a = b + 1
    return -1


@njit(cache=True)
def _bsd_tail(buf, i, e, r, fs, fe):
    """``HOST TAG[PID]: MSG`` after the timestamp; the host, pid and colon may each be missing."""
    while i < e and buf[i] == SP:
        i += 1
    if i >= e:
        return E_HOST
    a = i
    bracket = False
    while i < e and buf[i] != SP:
        bracket = bracket or buf[i] == LB
        i += 1
    if not (buf[i - 1] == COLON or (buf[i - 1] == RB and bracket)):  # not a tag: the host
        fs[HOST, r] = a
        fe[HOST, r] = i
        while i < e and buf[i] == SP:
            i += 1
        if i >= e:
            return E_HOST
        if buf[i] == COLON and i + 1 < e and buf[i + 1] == SP:  # "HOST : TAG: MSG" (ASA logging device-id)
            i += 1
            while i < e and buf[i] == SP:
                i += 1
        j = _level_end(buf, i, e)
        if j > 0:  # "HOST user.info TAG: MSG": the facility.level some relays (EdgeOS, busybox) write
            i = j
            while i < e and buf[i] == SP:
                i += 1
        a = i
    i = a
    p = -1
    while i < e and buf[i] != SP and buf[i] != LB and buf[i] != COLON:
        if buf[i] == LP and p < 0:
            p = i
        i += 1
    if i > a:
        fs[APP, r] = a
        fe[APP, r] = i
        # "sshd(pam_unix)[PID]:" (Linux-PAM before 0.78, RHEL 4, appliances): the program is before the "("
        if p > a and buf[i - 1] == RP and i < e and (buf[i] == LB or buf[i] == COLON):
            fe[APP, r] = p
    if i < e and buf[i] == LB:
        j = i + 1
        while j < e and buf[j] != RB and buf[j] != SP:
            j += 1
        if j < e and buf[j] == RB:
            if j > i + 1:
                fs[PID, r] = i + 1
                fe[PID, r] = j
            i = j + 1
    if i < e and buf[i] == COLON:
        i += 1
    _message(buf, i, e, r, fs, fe)
    return OK


@njit(cache=True)
def _rfc5424(buf, i, e, r, fs, fe, ts, kind):
    """``TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`` after ``<PRI>VERSION``."""
    if i >= e:
        return E_5424
    if buf[i] == DASH and (i + 1 == e or buf[i + 1] == SP):
        return E_NIL_TIME
    j, t, k = _iso(buf, i, e)
    if j == -2:
        return E_DATE
    if j < 0 or (j < e and buf[j] != SP):
        return E_TIME
    fs[TIME, r] = i
    fe[TIME, r] = j
    ts[r] = t
    kind[r] = k
    i = j
    for f in range(HOST, MSGID + 1):
        if i >= e or buf[i] != SP:
            return E_5424
        i += 1
        a = i
        while i < e and buf[i] != SP:
            i += 1
        if i == a:
            return E_5424
        fs[f, r] = a
        fe[f, r] = i
    if i + 1 >= e:
        return E_5424
    i += 1
    a = i
    if buf[i] == DASH:
        i += 1
    elif buf[i] == LB:
        while i < e and buf[i] == LB:
            i += 1
            quoted = False
            while i < e:
                c = buf[i]
                if quoted:
                    if c == BSLASH:
                        i += 2
                        continue
                    if c == QUOTE:
                        quoted = False
                elif c == QUOTE:
                    quoted = True
                elif c == RB:
                    break
                i += 1
            if i >= e:
                return E_SD
            i += 1
        fs[SD, r] = a
        fe[SD, r] = i
    else:
        return E_SD
    if i < e:
        if buf[i] != SP:
            return E_SD
        i += 1
        if i + 3 <= e and buf[i] == 0xEF and buf[i + 1] == 0xBB and buf[i + 2] == 0xBF:
            i += 3  # the BOM that marks a UTF-8 MSG
        _message(buf, i, e, r, fs, fe)
    return OK


@njit(cache=True)
def _header(buf, s, e, r, fs, fe, ts, kind, year, limit):
    while e > s and (buf[e - 1] == SP or buf[e - 1] == TAB):
        e -= 1
    i = s
    if i >= e:
        return E_EMPTY
    if buf[i] == LT:
        j = i + 1
        while j < e and j - i <= 3 and _digit(buf[j]):
            j += 1
        if j == i + 1 or j >= e or buf[j] != GT or _num(buf, i + 1, j - i - 1, e) > 191:
            return E_PRI
        fs[PRI, r] = i + 1
        fe[PRI, r] = j
        i = j + 1
        if i >= e:
            return E_TIME
    if _digit(buf[i]):
        j = i
        while j < e and _digit(buf[j]):
            j += 1
        if j - i <= 2 and j < e and buf[j] == SP and buf[i] != 48:  # RFC 5424 VERSION
            return _rfc5424(buf, j + 1, e, r, fs, fe, ts, kind)
        if j - i != 4 or j >= e or buf[j] != DASH:
            return E_TIME
        j, t, k = _iso(buf, i, e)  # rsyslog's high-precision stamp, then as RFC 3164
    else:
        j, t = _bsd(buf, i, e, year, limit)
        k = T_WALL
        if j > 0 and j + 1 < e and buf[j] == COLON and buf[j + 1] == SP:  # the ASA's "hh:mm:ss: %ASA-..."
            j += 1
    if j == -2:
        return E_DATE
    if j < 0 or (j < e and buf[j] != SP):
        return E_TIME
    fs[TIME, r] = i
    fe[TIME, r] = j
    ts[r] = t
    kind[r] = k
    return _bsd_tail(buf, j, e, r, fs, fe)


@njit(cache=True, nogil=True, parallel=True)
def parse_headers(buf, starts, ends, year, limit):
    """Header field spans (field-major, -1 absent), timestamps (microseconds, see ``kind``), error codes.

    ``year`` and ``limit`` (wall-clock microseconds) place year-less stamps (``time.yearless_reference``).
    """
    n = starts.size
    fs = np.full((len(HEADER), n), -1, np.int64)
    fe = np.full((len(HEADER), n), -1, np.int64)
    ts = np.zeros(n, np.int64)
    kind = np.zeros(n, np.int8)
    err = np.zeros(n, np.int8)
    for r in prange(n):
        code = _header(buf, starts[r], ends[r], r, fs, fe, ts, kind, year, limit)
        if code != OK:
            err[r] = code
            kind[r] = T_NONE
            fs[MSG, r] = -1
            fe[MSG, r] = -1
    return fs, fe, ts, kind, err
