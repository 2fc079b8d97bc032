"""Syslog headers (RFC 3164, RFC 5424, rsyslog ISO 8601) and sshd/sudo/su/login/pam_unix events.

Lines follow the RFCs' own examples and the formats OpenSSH (auth.c, auth2.c, sshd.c, auth-pam.c), sudo
(sudoers logging), util-linux/shadow su and login, and Linux-PAM pam_unix write.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from soc.parse.columns import SpecError
from tests.conftest import parse_text

AUTH = ("authentication", "system.auth")
SYSLOG = ("syslog", "system.syslog")
UTC = timezone.utc
HEAD = "Oct 11 22:14:15 web01 "  # 2026-10-11 15:14:15 UTC in Asia/Ho_Chi_Minh
AT = datetime(2026, 10, 11, 15, 14, 15, tzinfo=UTC)


def parse(text: str | bytes, **kw):
    res = parse_text("syslog", text, **kw)
    assert res.parsed + res.dead.height == res.lines
    assert sum(f.height for f in res.frames.values()) == res.parsed
    return res


def rows(res, key: tuple[str, str]) -> list[dict]:
    frame = res.frames.get(key)
    return [] if frame is None else frame.rows(named=True)


def auth(line: str, **kw) -> dict:
    """The one authentication event of ``line``."""
    res = parse(line + "\n", **kw)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    assert rows(res, SYSLOG) == []
    (row,) = rows(res, AUTH)
    assert row["event.category"] == "authentication" and row["event.kind"] == "event"
    assert row["event.dataset"] == "system.auth"
    return row


def plain(line: str, **kw) -> dict:
    """The one syslog-frame row of ``line``."""
    res = parse(line + "\n", **kw)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    assert rows(res, AUTH) == []
    (row,) = rows(res, SYSLOG)
    assert row["event.dataset"] == "system.syslog" and row["event.kind"] == "event"
    return row


def dead(line: str | bytes) -> str:
    """The reason ``line`` is dead-lettered."""
    res = parse(line + ("\n" if isinstance(line, str) else b"\n"))
    assert res.parsed == 0 and res.lines == 1
    (row,) = res.dead.rows(named=True)
    assert row["log.line"] == 1 and row["log.offset"] == 0
    assert row["event.original"] == (line.encode() if isinstance(line, str) else line)
    return row["error.message"]


def pick(row: dict, *names: str) -> dict:
    return {n: row[n] for n in names}


# ---------------------------------------------------------------------------------------------- headers


def test_rfc3164_with_pri_and_no_tag_colon():
    """RFC 3164 section 5.4 example 2 (a relay with no TAG: the first word becomes the tag)."""
    row = plain("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!")
    assert row["@timestamp"] == datetime(2026, 2, 5, 10, 32, 18, tzinfo=UTC)
    assert pick(row, "log.syslog.priority", "host.hostname", "process.name", "process.pid", "message") == {
        "log.syslog.priority": 13, "host.hostname": "10.0.0.99", "process.name": "Use", "process.pid": None,
        "message": "the BFG!"}
    assert row["event.count"] == 1 and row["log.syslog.msgid"] is None


def test_rfc3164_example_is_an_su_failure():
    """RFC 3164 section 5.4 example 1."""
    row = auth("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
    assert row["@timestamp"] == AT
    assert pick(row, "host.hostname", "process.name", "process.pid", "event.action", "event.outcome", "user.name",
                "user.effective.name", "message") == {
        "host.hostname": "mymachine", "process.name": "su", "process.pid": None, "event.action": "su",
        "event.outcome": "failure", "user.name": "lonvick", "user.effective.name": "root",
        "message": "'su root' failed for lonvick on /dev/pts/8"}


@pytest.mark.parametrize("stamp", ["Oct  1 08:00:01", "Oct 1 08:00:01", "Oct 01 08:00:01", "oct  1 08:00:01"])
def test_rfc3164_day_padded_or_not(stamp):
    row = plain(f"{stamp} web01 cron[99]: hello  world ")
    assert row["@timestamp"] == datetime(2026, 10, 1, 1, 0, 1, tzinfo=UTC)
    assert pick(row, "host.hostname", "process.name", "process.pid", "message", "log.syslog.priority") == {
        "host.hostname": "web01", "process.name": "cron", "process.pid": 99, "message": "hello  world",
        "log.syslog.priority": None}


def test_rfc3164_fraction_of_second():
    row = plain("Oct 11 22:14:15.250 web01 app: x")
    assert row["@timestamp"] == AT + timedelta(milliseconds=250)


@pytest.mark.parametrize(("rest", "host", "name", "pid", "message"), [
    ("web01 sshd[812]: msg x", "web01", "sshd", 812, "msg x"),
    ("web01 sshd: msg x", "web01", "sshd", None, "msg x"),
    ("web01 sshd[812] msg x", "web01", "sshd", 812, "msg x"),
    ("web01 kernel msg x", "web01", "kernel", None, "msg x"),
    ("web01 sshd[812]:msg x", "web01", "sshd", 812, "msg x"),
    ("sshd[812]: msg x", None, "sshd", 812, "msg x"),
    ("ntpd: msg x", None, "ntpd", None, "msg x"),
    ("web01 postfix/smtpd[77]: connect from unknown[192.0.2.4]", "web01", "postfix/smtpd", 77,
     "connect from unknown[192.0.2.4]"),
    ("web01 app[]: empty pid", "web01", "app", None, "empty pid"),
    ("web01 app:", "web01", "app", None, None),
    ("gw-1 user.info kernel: msg x", "gw-1", "kernel", None, "msg x"),  # a relay's facility.level
    ("gw-1 local7.warning sshd[9]: msg x", "gw-1", "sshd", 9, "msg x"),
    ("gw-1 user.infox kernel: msg x", "gw-1", "user.infox", None, "kernel: msg x"),  # not a level
])
def test_rfc3164_tag_with_or_without_pid_and_colon(rest, host, name, pid, message):
    row = plain("Oct 11 22:14:15 " + rest)
    assert row["@timestamp"] == AT
    assert pick(row, "host.hostname", "process.name", "process.pid", "message") == {
        "host.hostname": host, "process.name": name, "process.pid": pid, "message": message}


def test_rfc5424_with_structured_data_and_bom():
    """RFC 5424 section 6.5 example 3."""
    sd = '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
    row = plain(f"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 {sd} "
                "\ufeffAn application event log entry...")
    assert row["@timestamp"] == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert pick(row, "log.syslog.priority", "host.hostname", "process.name", "process.pid", "log.syslog.msgid",
                "log.syslog.structured_data", "message") == {
        "log.syslog.priority": 165, "host.hostname": "mymachine.example.com", "process.name": "evntslog",
        "process.pid": None, "log.syslog.msgid": "ID47", "log.syslog.structured_data": sd,
        "message": "An application event log entry..."}


def test_rfc5424_nil_structured_data_and_offset():
    """RFC 5424 section 6.5 example 2."""
    row = plain("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
    assert row["@timestamp"] == datetime(2003, 8, 24, 12, 14, 15, 3, tzinfo=UTC)
    assert pick(row, "host.hostname", "process.name", "process.pid", "log.syslog.msgid",
                "log.syslog.structured_data", "message") == {
        "host.hostname": "192.0.2.1", "process.name": "myproc", "process.pid": 8710, "log.syslog.msgid": None,
        "log.syslog.structured_data": None, "message": "%% It's time to make the do-nuts."}


def test_rfc5424_two_sd_elements_and_no_message():
    """RFC 5424 section 6.5 example 4."""
    sd = '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]'
    row = plain(f"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 {sd}")
    assert row["log.syslog.structured_data"] == sd and row["message"] is None


def test_rfc5424_escapes_inside_param_values():
    """``\\"``, ``\\\\`` and ``\\]`` inside a PARAM-VALUE do not end it (RFC 5424 section 6.3.3)."""
    sd = r'[x@1 a="q\"uote ] b" b="br\]acket" c="back\\"][y@2 d="]"]'
    row = plain(f"<14>1 2026-03-01T10:00:00+07:00 h app 1 - {sd} after sd")
    assert row["log.syslog.structured_data"] == sd and row["message"] == "after sd"


def test_rfc5424_nil_header_fields_and_odd_procid():
    row = plain("<14>1 2026-03-01T10:00:00Z - - - - - only message")
    assert row["@timestamp"] == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert pick(row, "host.hostname", "process.name", "process.pid", "log.syslog.msgid", "message") == {
        "host.hostname": None, "process.name": None, "process.pid": None, "log.syslog.msgid": None,
        "message": "only message"}
    row = plain("<14>1 2026-03-01T10:00:00Z h app worker-7 - - x")  # PROCID need not be a number
    assert row["process.pid"] is None and row["process.name"] == "app"


def test_rfc5424_sshd_event():
    row = auth("<38>1 2026-03-01T10:00:00+07:00 web01 sshd 4242 - - Failed password for root from 10.0.0.9 port "
               "2222 ssh2")
    assert row["@timestamp"] == datetime(2026, 3, 1, 3, tzinfo=UTC)
    assert pick(row, "host.hostname", "process.name", "process.pid", "user.name", "source.ip", "source.port",
                "event.action", "event.outcome") == {
        "host.hostname": "web01", "process.name": "sshd", "process.pid": 4242, "user.name": "root",
        "source.ip": "10.0.0.9", "source.port": 2222, "event.action": "ssh_login", "event.outcome": "failure"}


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2025-10-11T22:14:15.123456+07:00", datetime(2025, 10, 11, 15, 14, 15, 123456, tzinfo=UTC)),
    ("2025-10-11T22:14:15Z", datetime(2025, 10, 11, 22, 14, 15, tzinfo=UTC)),
    ("2025-10-11T22:14:15.5-0500", datetime(2025, 10, 12, 3, 14, 15, 500000, tzinfo=UTC)),
    ("2025-10-11T22:14:15.1234567891+00:00", datetime(2025, 10, 11, 22, 14, 15, 123456, tzinfo=UTC)),
    ("2025-10-11T22:14:15", datetime(2025, 10, 11, 15, 14, 15, tzinfo=UTC)),  # no offset: the source's zone
])
def test_rsyslog_iso_header(stamp, expected):
    row = auth(f"{stamp} web01 sudo:     bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash")
    assert row["@timestamp"] == expected
    assert pick(row, "host.hostname", "process.name", "user.name", "user.effective.name",
                "process.command_line") == {
        "host.hostname": "web01", "process.name": "sudo", "user.name": "bob", "user.effective.name": "root",
        "process.command_line": "/bin/bash"}


def test_pri_before_iso_header():
    row = plain("<86>2026-03-01T10:00:00.000+07:00 web01 systemd-logind[700]: New session 5 of user bob.")
    assert row["log.syslog.priority"] == 86 and row["process.pid"] == 700
    assert row["@timestamp"] == datetime(2026, 3, 1, 3, tzinfo=UTC)


# --------------------------------------------------------------------------------------------- time


def test_year_is_injected():
    assert plain("Mar  3 04:05:06 h a: x", year=2019)["@timestamp"] == datetime(2019, 3, 2, 21, 5, 6, tzinfo=UTC)


def test_december_line_read_in_january_is_last_year():
    ref = datetime(2027, 1, 5, tzinfo=UTC)  # e.g. the file's mtime
    text = ("Dec 31 23:59:59 h a: x\n"  # 2026-12-31 16:59:59 UTC
            "Jan  2 10:00:00 h a: x\n"
            "Jan  6 06:59:59 h a: x\n"  # up to a day after the reference (07:00 local) is this year
            "Jan  6 07:00:01 h a: x\n")
    res = parse(text, reference=ref)
    assert res.frames[SYSLOG]["@timestamp"].to_list() == [
        datetime(2026, 12, 31, 16, 59, 59, tzinfo=UTC), datetime(2027, 1, 2, 3, tzinfo=UTC),
        datetime(2027, 1, 5, 23, 59, 59, tzinfo=UTC), datetime(2026, 1, 6, 0, 0, 1, tzinfo=UTC)]


def test_feb_29_goes_to_the_last_leap_year():
    assert plain("Feb 29 12:00:00 h a: x", year=2026)["@timestamp"] == datetime(2024, 2, 29, 5, tzinfo=UTC)
    assert plain("Feb 29 12:00:00 h a: x", year=2028)["@timestamp"] == datetime(2028, 2, 29, 5, tzinfo=UTC)


def test_yearless_kernel_agrees_with_time_yearless():
    """The kernel applies ``soc.schema.time.yearless``'s rule; both read the same stamps the same way.

    (Except a wall-clock time in a DST gap, which ``yearless`` moves to an earlier year where it exists and
    the engine dead-letters: see the next test.)
    """
    from soc.schema import time as T

    stamps = ["Jan  1 00:00:00", "Jan  6 06:59:59", "Jan  6 07:00:01", "Feb 28 23:59:59", "Feb 29 12:00:00",
              "Jun 15 12:30:00", "Dec 31 23:59:59", "Mar 28 12:00:00", "Oct 25 02:30:00"]
    for ref in (datetime(2027, 1, 5, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
                datetime(2028, 3, 1, tzinfo=UTC), datetime(2024, 2, 28, 20, tzinfo=UTC)):
        for zone in ("Asia/Ho_Chi_Minh", "UTC", "Europe/Berlin"):
            text = "".join(f"{s} h a: x\n" for s in stamps)
            res = parse(text, reference=ref, zone=zone)
            got = dict(zip(res.frames[SYSLOG]["log.line"], res.frames[SYSLOG]["@timestamp"], strict=True))
            want = pl.select(T.yearless(pl.lit(pl.Series(stamps)), ref, zone)).to_series().to_list()
            assert [got.get(i + 1) for i in range(len(stamps))] == want, (ref, zone)


def test_zone_of_yearless_and_offsetless_stamps():
    assert plain(HEAD + "a: x", zone="UTC")["@timestamp"] == datetime(2026, 10, 11, 22, 14, 15, tzinfo=UTC)
    berlin = "Europe/Berlin"
    assert plain("Jul  1 12:00:00 h a: x", zone=berlin)["@timestamp"] == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert plain("Jan 15 12:00:00 h a: x", zone=berlin)["@timestamp"] == datetime(2026, 1, 15, 11, tzinfo=UTC)
    # 2026-10-25 02:30 happens twice in Berlin: the earlier (CEST) is taken
    assert plain("Oct 25 02:30:00 h a: x", zone=berlin)["@timestamp"] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert plain("2026-03-01T10:00:00 h a: x", zone="UTC")["@timestamp"] == datetime(2026, 3, 1, 10, tzinfo=UTC)
    # an explicit offset wins over the zone
    assert plain("2026-03-01T10:00:00+07:00 h a: x", zone=berlin)["@timestamp"] == datetime(2026, 3, 1, 3,
                                                                                              tzinfo=UTC)


def test_time_that_does_not_exist_in_the_zone_is_dead_lettered():
    res = parse("Mar 29 02:30:00 h a: x\n", zone="Europe/Berlin")  # the DST gap of 2026-03-29
    assert res.parsed == 0 and res.dead["error.message"].to_list() == ["@timestamp: missing"]


def test_localize_micros_matches_localize():
    from soc.schema import time as T

    base = datetime(2026, 3, 28)
    naive = np.array([int((base + timedelta(minutes=17 * k) - datetime(1970, 1, 1)).total_seconds() * 1e6)
                      for k in range(1000)], np.int64)  # 11 days across both 2026 changes? only March's
    naive = np.concatenate([naive, naive + int(211 * 86_400e6)])  # ... and October's
    for zone in ("Europe/Berlin", "America/Santiago", "Asia/Ho_Chi_Minh", "UTC"):
        utc, ok = T.localize_micros(naive, zone)
        want = pl.select(T.localize(pl.lit(pl.Series(naive)).cast(pl.Datetime("us")), zone)).to_series()
        assert ok.tolist() == want.is_not_null().to_list()
        assert utc[ok].tolist() == want.drop_nulls().cast(pl.Int64).to_list()


# ------------------------------------------------------------------------------------------------ sshd

SSHD = [
    ("Accepted password for bob from 10.0.0.5 port 50522 ssh2",
     dict(action="ssh_login", outcome="success", user="bob", ip="10.0.0.5", port=50522, method="password")),
    ("Accepted publickey for bob from 10.0.0.5 port 50522 ssh2: RSA SHA256:uZb8pG2vDqk0Ywqy",
     dict(action="ssh_login", outcome="success", user="bob", ip="10.0.0.5", port=50522, method="publickey",
          signature="RSA SHA256:uZb8pG2vDqk0Ywqy")),
    ("Accepted keyboard-interactive/pam for alice from 192.168.1.20 port 40000 ssh2",
     dict(action="ssh_login", outcome="success", user="alice", ip="192.168.1.20", port=40000,
          method="keyboard-interactive/pam")),
    ("Failed password for root from 203.0.113.9 port 51234 ssh2",
     dict(action="ssh_login", outcome="failure", user="root", ip="203.0.113.9", port=51234, method="password")),
    ("Failed password for invalid user admin from 203.0.113.9 port 51234 ssh2",
     dict(action="ssh_login", outcome="failure", user="admin", ip="203.0.113.9", port=51234, method="password",
          reason="invalid user")),
    ("Failed none for invalid user test from 203.0.113.9 port 51234 ssh2",
     dict(action="ssh_login", outcome="failure", user="test", ip="203.0.113.9", port=51234, method="none",
          reason="invalid user")),
    ("Failed publickey for git from 198.51.100.2 port 7 ssh2: ED25519 SHA256:abc",
     dict(action="ssh_login", outcome="failure", user="git", ip="198.51.100.2", port=7, method="publickey")),
    ("Invalid user oracle from 198.51.100.7 port 40022",
     dict(action="invalid_user", outcome="failure", user="oracle", ip="198.51.100.7", port=40022,
          reason="invalid user")),
    ("Invalid user  from 198.51.100.7 port 40022",  # an empty user name
     dict(action="invalid_user", outcome="failure", user=None, ip="198.51.100.7", port=40022,
          reason="invalid user")),
    ("Invalid user test from 198.51.100.7",  # OpenSSH before 7.5: no port
     dict(action="invalid_user", outcome="failure", user="test", ip="198.51.100.7", reason="invalid user")),
    ("Connection closed by authenticating user root 203.0.113.9 port 51234 [preauth]",
     dict(action="ssh_preauth_disconnect", outcome="failure", user="root", ip="203.0.113.9", port=51234)),
    ("Disconnected from authenticating user root 203.0.113.9 port 51234 [preauth]",
     dict(action="ssh_preauth_disconnect", outcome="failure", user="root", ip="203.0.113.9", port=51234)),
    ("Connection closed by invalid user ftp 203.0.113.9 port 51234 [preauth]",
     dict(action="ssh_preauth_disconnect", outcome="failure", user="ftp", ip="203.0.113.9", port=51234,
          reason="invalid user")),
    ("Disconnected from invalid user ftp 203.0.113.9 port 51234 [preauth]",
     dict(action="ssh_preauth_disconnect", outcome="failure", user="ftp", ip="203.0.113.9", port=51234,
          reason="invalid user")),
    ("Disconnected from user bob 10.0.0.5 port 50522",
     dict(action="ssh_logout", outcome="success", user="bob", ip="10.0.0.5", port=50522)),
    ("error: maximum authentication attempts exceeded for root from 203.0.113.9 port 51234 ssh2 [preauth]",
     dict(action="ssh_max_auth_exceeded", outcome="failure", user="root", ip="203.0.113.9", port=51234)),
    ("error: maximum authentication attempts exceeded for invalid user pi from 203.0.113.9 port 51234 ssh2 "
     "[preauth]",
     dict(action="ssh_max_auth_exceeded", outcome="failure", user="pi", ip="203.0.113.9", port=51234,
          reason="invalid user")),
    ("PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
     dict(action="pam_auth_failure", outcome="failure", user="root", ip="203.0.113.9")),
    ("PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9",
     dict(action="pam_auth_failure", outcome="failure", ip="203.0.113.9")),
    ("Did not receive identification string from 203.0.113.9 port 60000",
     dict(action="ssh_no_identification", outcome="failure", ip="203.0.113.9", port=60000)),
    ("Did not receive identification string from 203.0.113.9",
     dict(action="ssh_no_identification", outcome="failure", ip="203.0.113.9")),
    ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  "
     "user=root",
     dict(action="pam_auth_failure", outcome="failure", user="root", ip="203.0.113.9")),
    ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9",
     dict(action="pam_auth_failure", outcome="failure", ip="203.0.113.9")),
    ("pam_unix(sshd:session): session opened for user bob(uid=1000) by (uid=0)",
     dict(action="pam_session_opened", outcome="success", user="bob")),
    ("pam_unix(sshd:session): session opened for user bob by (uid=0)",
     dict(action="pam_session_opened", outcome="success", user="bob")),
    ("pam_unix(sshd:session): session closed for user bob",
     dict(action="pam_session_closed", outcome="success", user="bob")),
]


def event(row: dict) -> dict:
    names = {"action": "event.action", "outcome": "event.outcome", "user": "user.name",
             "target": "user.effective.name", "ip": "source.ip", "port": "source.port", "reason": "event.reason",
             "method": "system.auth.ssh.method", "signature": "system.auth.ssh.signature",
             "command": "process.command_line"}
    return {short: row[name] for short, name in names.items()}


def expect(**given) -> dict:
    out = dict.fromkeys(("action", "outcome", "user", "target", "ip", "port", "reason", "method", "signature",
                         "command"))
    out.update(given)
    return out


@pytest.mark.parametrize(("message", "want"), SSHD, ids=[m[:40] for m, _ in SSHD])
@pytest.mark.parametrize("program", ["sshd", "sshd-session"])
def test_sshd(message, want, program):
    row = auth(f"{HEAD}{program}[812]: {message}")
    assert event(row) == expect(**want)
    assert pick(row, "@timestamp", "host.hostname", "process.name", "process.pid", "message", "event.count") == {
        "@timestamp": AT, "host.hostname": "web01", "process.name": program, "process.pid": 812,
        "message": message, "event.count": int(message.split()[1]) if message.startswith("PAM ") else 1}


def test_ipv6_sources():
    row = auth(HEAD + "sshd[1]: Failed password for invalid user admin from 2001:db8::7 port 22 ssh2")
    assert row["source.ip"] == "2001:db8::7" and row["source.port"] == 22 and row["user.name"] == "admin"
    row = auth(HEAD + "sshd[1]: Accepted publickey for bob from ::ffff:192.0.2.1 port 2200 ssh2: ED25519 SHA256:x")
    assert row["source.ip"] == "::ffff:192.0.2.1" and row["source.port"] == 2200
    row = auth(HEAD + "sshd[1]: Connection closed by authenticating user root fe80::1 port 22 [preauth]")
    assert row["source.ip"] == "fe80::1" and row["user.name"] == "root"


# ---------------------------------------------------------------------------------------- sudo su login

OTHERS = [
    ("sudo", "    bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
     dict(action="sudo", outcome="success", user="bob", target="root", command="/bin/bash")),
    ("sudo", "bob : TTY=pts/0 ; PWD=/home/bob ; USER=postgres ; ENV=LANG=C ; COMMAND=/usr/bin/psql -c select 1",
     dict(action="sudo", outcome="success", user="bob", target="postgres", command="/usr/bin/psql -c select 1")),
    ("sudo", "  alice : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/cat "
     "/etc/shadow",
     dict(action="sudo", outcome="failure", user="alice", target="root", command="/bin/cat /etc/shadow",
          reason="3 incorrect password attempts")),
    ("sudo", "mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/home/mallory ; USER=root ; COMMAND=/bin/sh",
     dict(action="sudo", outcome="failure", user="mallory", target="root", command="/bin/sh",
          reason="user NOT in sudoers")),
    ("sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by bob(uid=1000)",
     dict(action="pam_session_opened", outcome="success", user="bob", target="root")),
    ("sudo", "pam_unix(sudo:session): session opened for user root by bob(uid=1000)",
     dict(action="pam_session_opened", outcome="success", user="bob", target="root")),
    ("sudo", "pam_unix(sudo:session): session closed for user root",
     dict(action="pam_session_closed", outcome="success", target="root")),
    ("sudo", "pam_unix(sudo:auth): authentication failure; logname=bob uid=1000 euid=0 tty=/dev/pts/0 ruser=bob "
     "rhost=  user=bob",
     dict(action="pam_auth_failure", outcome="failure", user="bob")),
    ("su", "(to root) bob on pts/0", dict(action="su", outcome="success", user="bob", target="root")),
    ("su", "FAILED SU (to root) bob on pts/0", dict(action="su", outcome="failure", user="bob", target="root")),
    ("su", "FAILED su for root by bob", dict(action="su", outcome="failure", user="bob", target="root")),
    ("su", "Successful su for oracle by bob", dict(action="su", outcome="success", user="bob", target="oracle")),
    ("su", "pam_unix(su:session): session opened for user root by bob(uid=1000)",
     dict(action="pam_session_opened", outcome="success", user="bob", target="root")),
    ("su", "pam_unix(su-l:session): session opened for user root(uid=0) by bob(uid=1000)",
     dict(action="pam_session_opened", outcome="success", user="bob", target="root")),
    ("su", "pam_unix(su:session): session closed for user root",
     dict(action="pam_session_closed", outcome="success", target="root")),
    ("su", "pam_unix(su:auth): authentication failure; logname=bob uid=1000 euid=0 tty=pts/0 ruser=bob rhost=  "
     "user=root",
     dict(action="pam_auth_failure", outcome="failure", user="bob", target="root")),
    ("login", "FAILED LOGIN (1) on '/dev/tty1' FOR 'root', Authentication failure",
     dict(action="login", outcome="failure", user="root", reason="Authentication failure")),
    ("login", "FAILED LOGIN (2) on '/dev/pts/3' FROM '192.0.2.44' FOR 'admin', User not known to the underlying "
     "authentication module",
     dict(action="login", outcome="failure", user="admin", ip="192.0.2.44",
          reason="User not known to the underlying authentication module")),
    ("login", "pam_unix(login:session): session opened for user bob(uid=1000) by LOGIN(uid=0)",
     dict(action="pam_session_opened", outcome="success", user="bob")),
]


@pytest.mark.parametrize(("program", "message", "want"), OTHERS, ids=[f"{p}:{m[:30]}" for p, m, _ in OTHERS])
def test_sudo_su_login(program, message, want):
    row = auth(f"{HEAD}{program}[4321]: {message}")
    assert event(row) == expect(**want)
    assert row["process.name"] == program and row["process.pid"] == 4321 and row["@timestamp"] == AT
    assert row["message"] == message.strip()


# --------------------------------------------------------------------------------------- repeats, routing


def test_message_repeated_counts():
    res = parse(HEAD + "sshd[812]: message repeated 4 times: [ Failed password for root from 203.0.113.9 port 51234 "
                "ssh2]\n")
    (row,) = rows(res, AUTH)
    assert rows(res, SYSLOG) == [] and res.dead.height == 0
    assert row["event.count"] == 4
    assert row["message"] == "Failed password for root from 203.0.113.9 port 51234 ssh2"
    assert event(row) == expect(action="ssh_login", outcome="failure", user="root", ip="203.0.113.9", port=51234,
                                method="password")


def test_message_repeated_other_forms():
    row = auth(HEAD + "sshd[1]: message repeated 12 times: [ Invalid user test from 198.51.100.7 port 4 ]")
    assert row["event.count"] == 12 and row["user.name"] == "test" and row["source.port"] == 4
    row = plain(HEAD + "kernel: message repeated 3 times: [ eth0: link down]")
    assert row["event.count"] == 3 and row["message"] == "eth0: link down"
    row = plain(HEAD + "app: message repeated many times: [ x]")  # not rsyslog's form: left as it is
    assert row["event.count"] == 1 and row["message"] == "message repeated many times: [ x]"


def test_unmatched_lines_go_to_the_syslog_frame():
    text = (HEAD + "sshd[812]: Received disconnect from 203.0.113.9 port 51234:11: Bye Bye [preauth]\n"
            + HEAD + "sshd[812]: Connection closed by 203.0.113.9 port 51234 [preauth]\n"
            + HEAD + "CRON[9]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n"
            + HEAD + "myapp[9]: Failed password for root from 203.0.113.9 port 51234 ssh2\n"  # not sshd
            + HEAD + "sshd[812]: Accepted password for bob from 10.0.0.5 port 50522 ssh2\n")
    res = parse(text)
    assert [r["log.line"] for r in rows(res, AUTH)] == [5]
    got = [(r["log.line"], r["process.name"], r["process.pid"], r["message"]) for r in rows(res, SYSLOG)]
    assert got == [
        (1, "sshd", 812, "Received disconnect from 203.0.113.9 port 51234:11: Bye Bye [preauth]"),
        (2, "sshd", 812, "Connection closed by 203.0.113.9 port 51234 [preauth]"),
        (3, "CRON", 9, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
        (4, "myapp", 9, "Failed password for root from 203.0.113.9 port 51234 ssh2"),
    ]


def test_frame_schema_does_not_depend_on_the_lines():
    """Chunks with different patterns (slots built or not, constants only) give frames that concatenate."""
    lines = [HEAD + "sshd[1]: Invalid user x from 10.0.0.1 port 1", HEAD + "sudo[2]: bob : user NOT in sudoers ; "
             "TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh", HEAD + "login[3]: FAILED LOGIN (1) on '/dev/tty1' "
             "FOR 'root', Authentication failure", "<14>1 2026-03-01T10:00:00Z h app 1 - - x", HEAD + "cron: y"]
    schemas: dict[tuple[str, str], set] = {}
    for line in lines:
        for key, frame in parse(line + "\n").frames.items():
            schemas.setdefault(key, set()).add(tuple(frame.schema.items()))
    assert all(len(found) == 1 for found in schemas.values()) and AUTH in schemas and SYSLOG in schemas
    auth_schema = dict(next(iter(schemas[AUTH])))
    assert auth_schema["event.action"] == pl.Categorical and auth_schema["event.reason"] == pl.String
    assert auth_schema["system.auth.ssh.method"] == pl.Categorical and auth_schema["source.port"] == pl.UInt16


def test_pattern_must_match_the_whole_message():
    row = plain(HEAD + "sshd[1]: Accepted password for bob from 10.0.0.5 port 50522 ssh2 and more")
    assert row["process.name"] == "sshd"
    row = plain(HEAD + "sudo[1]: bob : TTY=pts/0 ; PWD=/ ; no user field")
    assert row["process.name"] == "sudo"


# ----------------------------------------------------------------------------------------- dead letters


@pytest.mark.parametrize(("line", "reason"), [
    ("garbage", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"),
    ("Foo 11 22:14:15 h x: y", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"),
    ("Oct 11 22:14 h x: y", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"),
    ("Oct 11 22:14:15h x: y", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"),
    ("<999>Oct 11 22:14:15 h x: y", "malformed <PRI>"),
    ("<34Oct 11 22:14:15 h x: y", "malformed <PRI>"),
    ("<>Oct 11 22:14:15 h x: y", "malformed <PRI>"),
    ("<34>", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"),
    ("Oct 32 22:14:15 h x: y", "timestamp out of range"),
    ("Feb 30 22:14:15 h x: y", "timestamp out of range"),
    ("Oct 11 24:14:15 h x: y", "timestamp out of range"),
    ("2026-13-01T10:00:00Z h x: y", "timestamp out of range"),
    ("2026-01-01T10:00:00+25:00 h x: y", "timestamp out of range"),
    ("2026-01-01 10:00:00 h x: y", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"),
    ("Oct 11 22:14:15", "no host or tag after the timestamp"),
    ("Oct 11 22:14:15 web01", "no host or tag after the timestamp"),
    ("<34>1 - host app - - - message", "RFC 5424 timestamp is nil"),
    ("<34>1 2026-03-01T10:00:00Z host app", "truncated RFC 5424 header"),
    ("<34>1 2026-03-01T10:00:00Z host app 1 ID47", "truncated RFC 5424 header"),
    ('<34>1 2026-03-01T10:00:00Z host app 1 ID47 [x@1 a="unterminated] msg', "malformed RFC 5424 structured data"),
    ("<34>1 2026-03-01T10:00:00Z host app 1 ID47 nosd msg", "malformed RFC 5424 structured data"),
    ('<34>1 2026-03-01T10:00:00Z host app 1 ID47 [x@1 a="1"]msg', "malformed RFC 5424 structured data"),
    ("", "empty line"),
    ("   ", "empty line"),
])
def test_malformed_headers_are_dead_lettered(line, reason):
    assert dead(line) == reason


def test_dead_letters_keep_position_among_good_lines():
    text = HEAD + "a: one\nnot syslog at all\n" + HEAD + "sshd[1]: Invalid user x from 10.0.0.1 port 1\n\n"
    res = parse(text)
    assert res.lines == 4 and res.parsed == 2
    assert res.dead["log.line"].to_list() == [2, 4]
    assert res.dead["log.offset"].to_list() == [len(HEAD) + 7, len(text) - 1]
    assert res.dead["event.original"].to_list() == [b"not syslog at all", b""]


def test_invalid_utf8_and_nul_bytes():
    text = (HEAD.encode() + b"sshd[1]: Failed password for invalid user \xff\xfeadmin from 10.0.0.1 port 22 ssh2\n"
            + HEAD.encode() + b"app[2]: a\x00b\xc3\xa9\n"
            + b"\x00\x00\xff\xfe junk\n"
            + b"Oct 11 22:14:15 \xe2\x82 app: truncated sequence in the host\n")
    res = parse(text)
    (a,) = rows(res, AUTH)
    assert a["user.name"] == "??admin" and a["source.ip"] == "10.0.0.1"
    s = rows(res, SYSLOG)
    assert [r["message"] for r in s] == ["a\x00bé", "truncated sequence in the host"]
    assert s[1]["host.hostname"] == "??"
    assert res.dead["event.original"].to_list() == [b"\x00\x00\xff\xfe junk"]  # the original bytes


def test_lines_split_across_chunks():
    lines = [HEAD + "sshd[812]: " + m for m, _ in SSHD] + [HEAD + p + "[9]: " + m for p, m, _ in OTHERS]
    lines += ["junk line", "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", "<14>1 2026-03-01T10:00:00Z - - - - - x"]
    text = "\r\n".join(lines)  # CRLF, and no newline at the end
    whole = parse(text)
    for size in (180, 257, 1000):
        split = parse(text, chunk_size=size)
        assert split.lines == whole.lines == len(lines)
        for key in (AUTH, SYSLOG):
            assert split.frames[key].equals(whole.frames[key]), (size, key)
        assert split.dead.equals(whole.dead)
    assert whole.frames[AUTH].height == len(SSHD) + len(OTHERS)
    assert whole.frames[SYSLOG]["log.line"].to_list() == [len(lines) - 1, len(lines)]
    assert whole.dead["log.line"].to_list() == [len(lines) - 2]


def test_generated_corpus_agrees_with_the_python_baseline(tmp_path):
    """Counts add up over a varied generated file, and every line is read as the naive ``re`` parser reads it."""
    from bench.gen_syslog import baseline_parse, generate

    path = tmp_path / "auth.log"
    generate(str(path), 20_000, seed=3)
    text = path.read_text()
    res = parse(text, chunk_size=1 << 16)
    assert res.lines == 20_000 and res.dead.height == 0
    assert res.frames[AUTH].height + res.frames[SYSLOG].height == 20_000
    assert res.frames[AUTH].height > 12_000 and res.frames[SYSLOG].height > 3_000
    assert res.frames[AUTH]["event.count"].sum() > res.frames[AUTH].height  # repeats are counted
    keep = ["log.line", "@timestamp", "event.dataset", "event.action", "event.outcome", "user.name",
            "user.effective.name", "source.ip", "source.port", "event.count", "process.pid"]
    ours = pl.concat([f.select([c for c in keep if c in f.columns]).with_columns(pl.col(pl.Categorical).cast(pl.String))
                      for f in res.frames.values()], how="diagonal").sort("log.line")
    base = [baseline_parse(line) for line in text.splitlines()]
    for row, want in zip(ours.iter_rows(named=True), base, strict=True):
        for key in ("@timestamp", "event.dataset", "event.count", "process.pid"):
            assert row[key] == want[key], (row, want)
        if want["event.dataset"] == "system.auth":
            for key in ("event.action", "event.outcome", "user.name", "user.effective.name", "source.ip",
                        "source.port"):
                assert row[key] == want[key], (key, row, want)


# ----------------------------------------------------------------------------------------- spec, engine


def test_sniff_picks_syslog_and_leaves_fortigate_to_its_parser():
    from soc.parse.spec import load_specs
    from soc.sources.sniff import sniff

    specs = load_specs()
    sigs = [s.signature for s in specs.values()]
    for line in ("<34>Oct 11 22:14:15 mymachine su: 'su root' failed", "Oct  1 08:00:01 web01 cron[9]: x",
                 "<165>1 2003-10-11T22:14:15.003Z host app - ID47 - x", "2025-10-11T22:14:15.123+07:00 web01 a: x"):
        assert sniff((line + "\n").encode(), sigs) == "syslog", line
    if "fortigate" in specs:
        fgt = ('<189>Oct 11 22:14:15 fw01 date=2026-10-11 time=22:14:15 devname="FGT60F" devid="FGT60F" '
               'logid="0000000013" type="traffic" subtype="forward" srcip=10.0.0.1\n')
        assert sniff(fgt.encode(), sigs) == "fortigate"


def test_spec_declares_patterns_as_data(tmp_path):
    """A route and its patterns come from the YAML alone: skip slots, constants, implicit column rules."""
    from soc.parse.batch import LineBatch
    from soc.parse.columns import Context
    from soc.parse.engines.syslog import SyslogEngine
    from soc.parse.spec import load_spec
    from soc.sources import read_chunks

    spec = tmp_path / "mini.yml"
    spec.write_text("""
name: mini
engine: syslog
family: syslog
dataset: mini.syslog
sniff: {pattern: '^x'}
columns:
  '@timestamp': {from: timestamp, type: datetime, required: true}
  message: message
syslog:
  events:
    - family: authentication
      dataset: mini.auth
      columns:
        '@timestamp': {from: timestamp, type: datetime}
        source.port: {from: port, type: uint16}
      patterns:
        - match: 'login %{user.name} from %{source.ip}:%{port} %{?ignored} ok'
          programs: [vpnd]
          constants: {event.outcome: success, event.action: vpn_login, vpn.tunnel: ssl}
        - match: 'login %{user.name} %{}'
          programs: [vpnd]
          constants: {event.outcome: failure, event.action: vpn_login}
        - match: 'user %{user.name} locked out'
          constants: {event.outcome: failure, event.action: lockout}
""")
    engine = SyslogEngine(load_spec(spec), Context("t", "UTC"))
    data = (b"2026-01-01T00:00:00Z h vpnd: login bob from 10.1.1.1:443 x ok\n"
            b"2026-01-01T00:00:00Z h other: login eve from 10.1.1.2:443 x ok\n"
            b"2026-01-01T00:00:00Z h vpnd: login eve from 10.1.1.2:99999 x ok\n"
            b"2026-01-01T00:00:00Z h vpnd: login mallory bad password\n"
            b"2026-01-01T00:00:00Z h anyd: user zed locked out\n")
    (chunk,) = read_chunks(__import__("io").BytesIO(data))
    res = engine.parse(LineBatch(chunk, "t"))
    auth_rows = res.frames[("authentication", "mini.auth")].rows(named=True)
    assert [(r["log.line"], r["user.name"], r["source.ip"], r["source.port"], r["event.outcome"], r["vpn.tunnel"])
            for r in auth_rows] == [(1, "bob", "10.1.1.1", 443, "success", "ssl"),
                                    (4, "mallory", None, None, "failure", None),
                                    (5, "zed", None, None, "failure", None)]
    assert [r["event.action"] for r in auth_rows] == ["vpn_login", "vpn_login", "lockout"]
    schema = res.frames[("authentication", "mini.auth")].schema
    assert schema["vpn.tunnel"] == pl.String and "port" not in schema  # implicit rules: unread names only
    assert res.frames[("syslog", "mini.syslog")]["message"].to_list() == ["login eve from 10.1.1.2:443 x ok"]
    assert res.dead.rows(named=True)[0]["error.message"] == "source.port: 99999 is not a valid uint16"
    assert res.dead["log.line"].to_list() == [3]
    assert res.parsed + res.dead.height == res.lines == 5


@pytest.mark.parametrize(("patterns", "message"), [
    ("[{match: 'a %{x}%{y} b'}]", "two slots with no literal between them"),
    ("[{pattern: 'a %{x}'}]", "needs 'match'"),
    ("[{match: 'port %{source.port}'}]", "give it a column rule with a type"),
])
def test_bad_patterns_are_spec_errors(tmp_path, patterns, message):
    from soc.parse.columns import Context
    from soc.parse.engines.syslog import SyslogEngine
    from soc.parse.spec import load_spec

    spec = tmp_path / "bad.yml"
    spec.write_text(f"""
name: bad
engine: syslog
family: syslog
dataset: bad
sniff: {{pattern: '^x'}}
syslog:
  events:
    - {{family: authentication, dataset: bad.auth, patterns: {patterns}}}
""")
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        SyslogEngine(load_spec(spec), Context("t"))


def test_unknown_raw_field_is_a_spec_error(tmp_path):
    from soc.parse.columns import Context
    from soc.parse.engines.syslog import SyslogEngine
    from soc.parse.spec import load_spec

    spec = tmp_path / "bad.yml"
    spec.write_text("name: bad\nengine: syslog\nfamily: syslog\ndataset: bad\nsniff: {pattern: '^x'}\n"
                    "columns: {message: msg}\n")
    with pytest.raises(SpecError, match=r"unknown fields \['msg'\]"):
        SyslogEngine(load_spec(spec), Context("t"))


def test_route_whose_fields_are_all_absent_keeps_its_rows(tmp_path):
    """RFC 3164 lines have no MSGID: the column is null, not built, and the frame keeps a row per line."""
    from soc.parse.batch import LineBatch
    from soc.parse.columns import Context
    from soc.parse.engines.syslog import SyslogEngine
    from soc.parse.spec import load_spec
    from soc.sources import read_chunks

    spec = tmp_path / "bare.yml"
    spec.write_text("name: bare\nengine: syslog\nfamily: syslog\ndataset: bare\nsniff: {pattern: '^x'}\n"
                    "columns: {log.syslog.msgid: msgid}\n")
    engine = SyslogEngine(load_spec(spec), Context("t"))
    (chunk,) = read_chunks(__import__("io").BytesIO(b"Oct 11 22:14:15 h a: x\nOct 11 22:14:16 h b: y\n"))
    res = engine.parse(LineBatch(chunk, "t"))
    frame = res.frames[("syslog", "bare")]
    assert frame["log.line"].to_list() == [1, 2] and frame["log.syslog.msgid"].to_list() == [None, None]


# ------------------------------------------------------------- issue 16: legacy PAM tags, rhost, IAM events

LEGACY = [  # RHEL 4-era and appliance "prog(pam_unix)[pid]:" tags: the program is what is before "("
    ("sshd(pam_unix)[2301]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=203.0.113.5  "
     "user=root", "sshd", 2301,
     dict(action="ssh_login", outcome="failure", user="root", ip="203.0.113.5")),
    ("sshd(pam_unix)[2301]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=203.0.113.5",
     "sshd", 2301, dict(action="ssh_login", outcome="failure", ip="203.0.113.5")),
    ("sshd(pam_unix)[2302]: 3 more authentication failures; logname= uid=0 euid=0 tty=NODEVssh ruser= "
     "rhost=203.0.113.5  user=root", "sshd", 2302,
     dict(action="ssh_login", outcome="failure", user="root", ip="203.0.113.5")),
    ("sshd(pam_unix)[2303]: check pass; user unknown", "sshd", 2303,
     dict(action="invalid_user", outcome="failure", reason="user unknown")),
    ("sshd(pam_unix)[2304]: session opened for user bob by (uid=0)", "sshd", 2304,
     dict(action="pam_session_opened", outcome="success", user="bob")),
    ("sshd(pam_unix)[2304]: session closed for user bob", "sshd", 2304,
     dict(action="pam_session_closed", outcome="success", user="bob")),
    ("su(pam_unix)[977]: session opened for user root by bob(uid=500)", "su", 977,
     dict(action="pam_session_opened", outcome="success", user="bob", target="root")),
    ("su(pam_unix)[977]: authentication failure; logname=bob uid=500 euid=0 tty= ruser=bob rhost=  user=root",
     "su", 977, dict(action="pam_auth_failure", outcome="failure", user="bob", target="root")),
    ("login(pam_unix)[501]: authentication failure; logname= uid=0 euid=0 tty=tty1 ruser= rhost=  user=admin",
     "login", 501, dict(action="pam_auth_failure", outcome="failure", user="admin")),
]


@pytest.mark.parametrize(("rest", "program", "pid", "want"), LEGACY, ids=[r[:30] for r, *_ in LEGACY])
def test_legacy_pam_tags_are_auth_events(rest, program, pid, want):
    row = auth(HEAD + rest)
    assert event(row) == expect(**want)
    assert (row["process.name"], row["process.pid"]) == (program, pid)
    assert row["message"] == rest.split(": ", 1)[1]


def test_legacy_more_failures_carry_their_count():
    row = auth(HEAD + LEGACY[2][0])
    assert row["event.count"] == 3


@pytest.mark.parametrize("program", ["sshd", "sshd-session"])
def test_pam_more_failures_carry_their_count(program):
    row = auth(f"{HEAD}{program}[12]: PAM 4 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= "
               "rhost=203.0.113.5  user=root")
    assert row["event.count"] == 4 and row["source.ip"] == "203.0.113.5" and row["user.name"] == "root"
    row = auth(f"{HEAD}{program}[12]: message repeated 2 times: [ Failed password for root from 203.0.113.5 port 22 "
               "ssh2]")
    assert row["event.count"] == 2  # the repeat count still applies where there is no PAM count


@pytest.mark.parametrize(("program", "user", "target"), [("sudo", "bob", None), ("login", "bob", None),
                                                        ("su", "alice", "bob")])
def test_pam_more_failures_of_other_services(program, user, target):
    row = auth(f"{HEAD}{program}[12]: PAM 2 more authentication failures; logname=alice uid=1001 euid=0 "
               "tty=/dev/pts/1 ruser=alice rhost=  user=bob")
    assert (row["event.action"], row["event.count"], row["source.ip"]) == ("pam_auth_failure", 2, None)
    assert (row["user.name"], row["user.effective.name"]) == (user, target)


@pytest.mark.parametrize("gap", ["  ", " "])  # Linux-PAM writes two spaces; relays that squeeze blanks one
def test_empty_rhost_is_null_whatever_the_spacing(gap):
    row = auth(f"{HEAD}sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1000 euid=0 "
               f"tty=/dev/pts/0 ruser=bob rhost={gap}user=root")
    assert row["source.ip"] is None and row["user.name"] == "root"
    row = auth(f"{HEAD}sshd[9]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
               f"ruser= rhost=203.0.113.5{gap}user=root")
    assert row["source.ip"] == "203.0.113.5" and row["user.name"] == "root"


@pytest.mark.parametrize(("message", "want"), [
    ("pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.8 user=bob",
     dict(action="pam_auth_failure", outcome="failure", user="bob", ip="203.0.113.8")),
    ("pam_ldap(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.8",
     dict(action="pam_auth_failure", outcome="failure", ip="203.0.113.8")),
    ("User root from 203.0.113.8 not allowed because not listed in AllowUsers",
     dict(action="ssh_user_not_allowed", outcome="failure", user="root", ip="203.0.113.8",
          reason="not listed in AllowUsers")),
])
def test_directory_pam_modules_and_allow_users(message, want):
    assert event(auth(f"{HEAD}sshd[77]: {message}")) == expect(**want)


def test_host_name_in_rhost_goes_to_source_address_and_domain():
    row = auth(HEAD + "sshd[9]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
               "rhost=scanner.example.net  user=root")
    assert (row["source.ip"], row["source.address"], row["source.domain"]) == (
        None, "scanner.example.net", "scanner.example.net")
    row = auth(HEAD + "sshd[9]: Failed password for root from 2001:db8::7 port 22 ssh2")
    assert (row["source.ip"], row["source.address"], row["source.domain"]) == ("2001:db8::7", "2001:db8::7", None)


IAM = [  # shadow-utils (useradd.c, groupadd.c, usermod.c, userdel.c, gpasswd.c, chage.c) and pam_unix chauthtok
    ("useradd", "new user: name=backup, UID=1001, GID=1001, home=/home/backup, shell=/bin/bash, from=/dev/pts/0",
     dict(action="user_created", type=["user", "creation"], target="backup", target_id="1001", group_id="1001")),
    ("useradd", "new user: name=svc, UID=998, GID=998, home=/nonexistent, shell=/usr/sbin/nologin",
     dict(action="user_created", type=["user", "creation"], target="svc", target_id="998", group_id="998")),
    ("useradd", "new group: name=backup, GID=1001",
     dict(action="group_created", type=["group", "creation"], group="backup", group_id="1001")),
    ("groupadd", "new group: name=ops, GID=1005, from=/dev/pts/1",
     dict(action="group_created", type=["group", "creation"], group="ops", group_id="1005")),
    ("useradd", "add 'bob' to group 'sudo'",
     dict(action="group_member_added", type=["group", "change"], target="bob", group="sudo")),
    ("usermod", "add 'bob' to group 'wheel'",
     dict(action="group_member_added", type=["group", "change"], target="bob", group="wheel")),
    ("gpasswd", "user carol added by root to group docker",
     dict(action="group_member_added", type=["group", "change"], user="root", target="carol", group="docker")),
    ("gpasswd", "user carol removed by root from group docker",
     dict(action="group_member_removed", type=["group", "change"], user="root", target="carol", group="docker")),
    ("userdel", "delete 'olduser' from group 'adm'",
     dict(action="group_member_removed", type=["group", "change"], target="olduser", group="adm")),
    ("userdel", "delete user 'olduser'", dict(action="user_deleted", type=["user", "deletion"], target="olduser")),
    ("userdel", "removed group 'olduser' owned by 'olduser'",
     dict(action="group_deleted", type=["group", "deletion"], group="olduser")),
    ("groupdel", "group 'ops' removed from /etc/group", dict(action="group_deleted", type=["group", "deletion"],
                                                            group="ops")),
    ("passwd", "pam_unix(passwd:chauthtok): password changed for bob",
     dict(action="password_changed", type=["user", "change"], target="bob")),
    ("chpasswd", "pam_unix(chpasswd:chauthtok): password changed for svc",
     dict(action="password_changed", type=["user", "change"], target="svc")),
    ("usermod", "change user 'bob' password", dict(action="password_changed", type=["user", "change"], target="bob")),
    ("usermod", "change user 'bob' UID from '1002' to '0'",
     dict(action="user_changed", type=["user", "change"], target="bob")),
    ("usermod", "change user 'bob' shell from '/bin/sh' to '/bin/bash'",
     dict(action="user_changed", type=["user", "change"], target="bob")),
    ("usermod", "lock user 'bob' password", dict(action="user_locked", type=["user", "change"], target="bob")),
    ("usermod", "unlock user 'bob' password", dict(action="user_unlocked", type=["user", "change"], target="bob")),
    ("chage", "changed password expiry for bob", dict(action="password_expiry_changed", type=["user", "change"],
                                                      target="bob")),
    ("passwd", "password for 'bob' changed by 'root'",
     dict(action="password_changed", type=["user", "change"], user="root", target="bob")),
    ("sshd", "pam_faillock(sshd:auth): Consecutive login failures for user root account temporarily locked",
     dict(action="account_locked", type=["user", "change"], target="root")),
]


@pytest.mark.parametrize(("program", "message", "want"), IAM, ids=[f"{p}:{m[:30]}" for p, m, _ in IAM])
def test_account_and_group_changes_are_iam_events(program, message, want):
    res = parse(f"{HEAD}{program}[1234]: {message}\n")
    assert res.dead.height == 0 and rows(res, SYSLOG) == []
    (row,) = rows(res, AUTH)
    names = {"action": "event.action", "type": "event.type", "user": "user.name", "target": "user.target.name",
             "target_id": "user.target.id", "group": "group.name", "group_id": "group.id"}
    got = {short: row[name] for short, name in names.items()}
    assert got == {**dict.fromkeys(names), **want}
    assert (row["event.category"], row["event.outcome"], row["event.dataset"]) == ("iam", "success", "system.auth")
    assert (row["process.name"], row["process.pid"], row["message"]) == (program, 1234, message)


def test_legacy_brute_force_is_seen_by_the_detector_and_the_sigma_rule():
    """A brute force logged only as sshd(pam_unix) lines (RHEL 4 /var/log/messages) raises both alerts."""
    from soc.content import content_dir
    from soc.detect.runner import DetectorRunner
    from soc.detect.specs import default_specs
    from soc.sigma.hunt import hunter_for
    from soc.sigma.loader import load

    lines = [f"Oct 11 22:14:{i:02d} web01 sshd(pam_unix)[{3000 + i}]: authentication failure; logname= uid=0 "
             f"euid=0 tty=NODEVssh ruser= rhost=203.0.113.5  user=root" for i in range(12)]
    res = parse("\n".join(lines) + "\n")
    frame = res.frames[AUTH]
    runner = DetectorRunner([d for d in default_specs() if d.id == "soc-ssh-brute-force"])
    runner.feed(AUTH, frame)
    hits = runner.hits()
    assert hits.height == 1 and hits["source.ip"].to_list() == ["203.0.113.5"]
    hunter = hunter_for(load([content_dir("rules") / "linux_sshd_brute_force.yml"]))
    hunter.feed(AUTH, frame)
    assert hunter.matches().height == 12
    assert hunter.correlate()["source.ip"].to_list() == ["203.0.113.5"]


def test_sigma_rule_sees_openssh_9_8_sshd_session():
    """OpenSSH 9.8+ logs failed logins as sshd-session: the brute-force rule counts them too."""
    from soc.content import content_dir
    from soc.sigma.hunt import hunter_for
    from soc.sigma.loader import load

    lines = [f"Oct 11 22:14:{i:02d} web01 sshd-session[{3000 + i}]: Failed password for root from 203.0.113.6 "
             f"port {40000 + i} ssh2" for i in range(10)]
    hunter = hunter_for(load([content_dir("rules") / "linux_sshd_brute_force.yml"]))
    hunter.feed(AUTH, parse("\n".join(lines) + "\n").frames[AUTH])
    assert hunter.matches().height == 10
    assert hunter.correlate()["source.ip"].to_list() == ["203.0.113.6"]


@pytest.mark.parametrize("family", ["authentication", "web", "network", "security", "email", "dns", "windows",
                                    "device"])
def test_every_family_keeps_host_names_out_of_ip_columns(family):
    """The generic ECS rule of ``conform``: ``*.address`` as logged, ``*.ip`` only addresses, ``*.domain`` names."""
    from soc.schema import columns, conform

    values = ["192.0.2.1", "scanner.example.net", None, "fe80::1%3", "::ffff:192.0.2.9", "localhost"]
    given = {"source.ip": values}
    if "destination.ip" in columns(family):
        given["destination.ip"] = list(reversed(values))
    out = conform(pl.DataFrame(given), family)
    assert out["source.address"].to_list() == values
    assert out["source.ip"].to_list() == ["192.0.2.1", None, None, "fe80::1%3", "::ffff:192.0.2.9", None]
    assert out["source.domain"].to_list() == [None, "scanner.example.net", None, None, None, "localhost"]
    if "destination.ip" in given:
        assert out["destination.domain"].to_list() == ["localhost", None, None, None, "scanner.example.net", None]
    kept = conform(pl.DataFrame({"source.ip": ["192.0.2.1"], "source.domain": ["mx.example.org"]}), family)
    assert kept["source.domain"].to_list() == ["mx.example.org"]  # what a spec gave stays
