"""Postfix mail log: smtpd, cleanup, qmgr and smtp lines as Postfix writes them, to the email family."""

from __future__ import annotations

from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

H = "Nov 23 09:15:13 mx1 "
CONNECT = H + "postfix/smtpd[2101]: connect from unknown[198.51.100.7]"
REJECT = H + ("postfix/smtpd[2101]: NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <a@example.org>: "
              "Relay access denied; from=<spam@example.net> to=<a@example.org> proto=ESMTP helo=<bad.example>")
RBL = H + ("postfix/smtpd[2101]: NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 Service unavailable; "
           "Client host [198.51.100.7] blocked using zen.spamhaus.org; from=<x@example.net> to=<a@example.org> "
           "proto=SMTP helo=<x>")
SASL = H + "postfix/smtpd[2101]: warning: unknown[198.51.100.7]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
SASL_USER = H + ("postfix/submission/smtpd[2101]: warning: host.example.net[198.51.100.8]: SASL PLAIN authentication "
                 "failed: (reason unavailable), sasl_username=admin@example.org")
DISCONNECT = H + "postfix/smtpd[2101]: disconnect from unknown[198.51.100.7] ehlo=1 auth=0/1 commands=1/2"
CLIENT = H + "postfix/smtpd[2102]: 4BTKQ61fGZz9sWd: client=mail.example.org[192.0.2.10]"
MSGID = H + "postfix/cleanup[2103]: 4BTKQ61fGZz9sWd: message-id=<20261123.abc@example.org>"
QUEUED = H + "postfix/qmgr[880]: 4BTKQ61fGZz9sWd: from=<a@example.org>, size=1234, nrcpt=1 (queue active)"
SENT = H + ("postfix/smtp[2200]: 4BTKQ61fGZz9sWd: to=<b@example.com>, relay=mx.example.com[203.0.113.25]:25, "
            "delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK)")
DEFERRED = H + ("postfix/smtp[2201]: 5CXYZ: to=<c@example.net>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, "
                "status=deferred (connect to example.net[203.0.113.26]:25: Connection timed out)")
REMOVED = H + "postfix/qmgr[880]: 4BTKQ61fGZz9sWd: removed"
OTHER = H + "postfix/smtpd[2101]: lost connection after AUTH from unknown[198.51.100.7]"
ALL = [CONNECT, REJECT, RBL, SASL, SASL_USER, DISCONNECT, CLIENT, MSGID, QUEUED, SENT, DEFERRED, REMOVED, OTHER]


def frames(*lines: str):
    res = parse_text("postfix", "\n".join(lines) + "\n")
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    return res.frames


def email(line: str) -> dict:
    (row,) = frames(line)[("email", "postfix")].to_dicts()
    return {k: v for k, v in row.items() if v is not None and k not in ("log.file.path", "log.offset", "message")}


def test_smtpd_connect_and_reject():
    row = email(CONNECT)
    assert (row["event.action"], row["source.ip"], row.get("source.domain")) == ("connect", "198.51.100.7", None)
    row = email(REJECT)
    assert {k: row.get(k) for k in ("email.local_id", "event.action", "event.outcome", "source.ip", "event.reason",
                                    "email.from.address", "email.to.address", "network.protocol", "postfix.helo",
                                    "postfix.smtp_stage")} == {
        "email.local_id": "NOQUEUE", "event.action": "reject", "event.outcome": "failure", "source.ip": "198.51.100.7",
        "event.reason": "554 5.7.1 <a@example.org>: Relay access denied", "email.from.address": "spam@example.net",
        "email.to.address": "a@example.org", "network.protocol": "ESMTP", "postfix.helo": "bad.example",
        "postfix.smtp_stage": "RCPT"}
    rbl = email(RBL)  # the reason holds '; ' itself
    assert rbl["event.reason"] == ("554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using "
                                   "zen.spamhaus.org")
    assert rbl["email.from.address"] == "x@example.net"


def test_sasl_failures_are_authentication_events():
    auth = frames(SASL, SASL_USER)[("authentication", "postfix")].to_dicts()
    assert [(r["event.action"], r["event.outcome"], r["source.ip"], r["source.domain"], r["user.name"],
             r["postfix.sasl_method"], r["event.reason"], r["process.name"]) for r in auth] == [
        ("sasl_login", "failure", "198.51.100.7", None, None, "LOGIN", "UGFzc3dvcmQ6", "postfix/smtpd"),
        ("sasl_login", "failure", "198.51.100.8", "host.example.net", "admin@example.org", "PLAIN",
         "(reason unavailable)", "postfix/submission/smtpd"),
    ]


def test_a_message_through_the_queue():
    rows = frames(CLIENT, MSGID, QUEUED, SENT, DEFERRED, REMOVED)[("email", "postfix")].to_dicts()
    assert {r["email.local_id"] for r in rows[:4]} | {rows[5]["email.local_id"]} == {"4BTKQ61fGZz9sWd"}
    assert [r["event.action"] for r in rows] == ["accept", "message-id", "queued", "delivery", "delivery", "removed"]
    assert (rows[0]["source.domain"], rows[0]["source.ip"]) == ("mail.example.org", "192.0.2.10")
    assert rows[1]["email.message_id"] == "20261123.abc@example.org"
    assert (rows[2]["email.from.address"], rows[2]["email.size"], rows[2]["email.nrcpt"]) == ("a@example.org", 1234, 1)
    sent, deferred = rows[3], rows[4]
    assert {k: sent[k] for k in ("email.to.address", "destination.domain", "destination.ip", "destination.port",
                                 "postfix.dsn", "postfix.status", "event.outcome", "event.reason")} == {
        "email.to.address": "b@example.com", "destination.domain": "mx.example.com",
        "destination.ip": "203.0.113.25", "destination.port": 25, "postfix.dsn": "2.0.0", "postfix.status": "sent",
        "event.outcome": "success", "event.reason": "250 2.0.0 OK"}
    assert (deferred["destination.domain"], deferred["postfix.status"], deferred["event.outcome"]) == (
        None, "deferred", "unknown")


def test_other_lines_malformed_lines_and_counts():
    bad = QUEUED.replace("size=1234", "size=12x4")
    res = parse_text("postfix", "\n".join([*ALL, bad, CONNECT[:10]]) + "\n")
    assert res.lines == len(ALL) + 2 and res.parsed + res.dead.height == res.lines
    assert sum(f.height for f in res.frames.values()) == res.parsed == len(ALL)
    assert res.dead["error.message"].to_list() == [
        "email.size: 12x4 is not a valid int64", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"]
    assert {k: f.height for k, f in res.frames.items()} == {
        ("email", "postfix"): 10, ("authentication", "postfix"): 2, ("syslog", "postfix"): 1}


def test_sniffed_as_postfix():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\n".join(ALL).encode(), sigs) == "postfix"


def test_sample_log_holds_the_planted_password_guessing():
    from tests.conftest import ROOT

    res = parse_text("postfix", (ROOT / "sample_logs/mail/mail.log").read_bytes())
    assert res.dead.height == 0
    auth = res.frames[("authentication", "postfix")]
    assert auth.height == 40 and set(auth["source.ip"]) == {"203.0.113.99"}
    assert set(auth["event.outcome"]) == {"failure"}
    sent = res.frames[("email", "postfix")].filter(res.frames[("email", "postfix")]["postfix.status"] == "sent")
    assert sent.height == 40
