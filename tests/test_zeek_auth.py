"""Zeek's authentication logs (kerberos.log, ntlm.log, ssh.log) as authentication frames: ECS user and
outcome columns from what Zeek means by its fields, the same in TSV and JSON, read by the brute-force and
spraying detectors. Lines of our own in the shapes of the shared capture's logs (Zeek 2.x fields)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from soc.detect.runner import DetectorRunner
from soc.detect.specs import default_specs
from tests.conftest import parse_text

T = "\t"
ID = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
ID_T = ["time", "string", "addr", "port", "addr", "port"]
KRB_F = ID + ["request_type", "client", "service", "success", "error_msg", "from", "till", "cipher", "forwardable",
              "renewable", "client_cert_subject", "client_cert_fuid", "server_cert_subject", "server_cert_fuid"]
KRB_T = ID_T + ["string", "string", "string", "bool", "string", "time", "time", "string", "bool", "bool", "string",
                "string", "string", "string"]
NTLM_F = ID + ["username", "hostname", "domainname", "server_nb_computer_name", "server_dns_computer_name",
               "server_tree_name", "success"]
NTLM_T = ID_T + ["string"] * 6 + ["bool"]
SSH_F = ID + ["version", "auth_success", "auth_attempts", "direction", "client", "server", "cipher_alg", "mac_alg",
              "compression_alg", "kex_alg", "host_key_alg", "host_key"]
SSH_T = ID_T + ["count", "bool", "count", "enum"] + ["string"] * 8


def tsv(path: str, fields, types, rows) -> str:
    head = (f"#separator \\x09\n#set_separator{T},\n#empty_field{T}(empty)\n#unset_field{T}-\n#path{T}{path}\n"
            f"#open{T}2018-03-24-17-15-00\n#fields{T}{T.join(fields)}\n#types{T}{T.join(types)}\n")
    return head + "".join(T.join(map(str, r)) + "\n" for r in rows) + f"#close{T}2018-03-24-17-40-00\n"


def as_json(fields, types, rows, path: str | None) -> str:
    """The same records as Zeek's JSON writer has them (unset fields left out, bools and numbers typed)."""
    out = []
    for r in rows:
        rec = {} if path is None else {"_path": path}
        for f, k, v in zip(fields, types, map(str, r), strict=True):
            if v == "-":
                continue
            rec[f] = (v == "T" if k == "bool" else int(v) if k in ("count", "port") else
                      float(v) if k in ("time", "double") else v)
        out.append(json.dumps(rec))
    return "\n".join(out) + "\n"


def krb(ts, src, user, success, error, kind="AS", service="krbtgt/SO-TC.LOCAL"):
    return [f"{ts:.6f}", f"Ck{int(ts * 1000) % 10**9}", src, 52144, "10.10.1.10", 88, kind, user, service, success,
            error, "-", "2136422885.000000", "-", "T", "T", "-", "-", "-", "-"]


KRB_ROWS = [krb(1763601000.1, "10.10.7.66", "nguyenvana/SO-TC.LOCAL", "F", "KDC_ERR_PREAUTH_FAILED"),
            krb(1763601000.2, "10.10.7.66", "khongtontai/SO-TC.LOCAL", "F", "KDC_ERR_C_PRINCIPAL_UNKNOWN"),
            krb(1763601000.3, "10.10.4.31", "tranvanb/SO-TC.LOCAL", "F", "KDC_ERR_PREAUTH_REQUIRED"),
            krb(1763601000.4, "10.10.4.31", "tranvanb/SO-TC.LOCAL", "F", "KRB_ERR_RESPONSE_TOO_BIG"),
            krb(1763601000.5, "10.10.4.31", "tranvanb/SO-TC.LOCAL", "T", "-", "TGS", "cifs/fs01.so-tc.local"),
            krb(1763601000.6, "10.128.0.241", "/NM", "-", "-", service="krbtgt/NM")]  # the capture's nmap probe
NTLM_ROWS = [[1763601100.5, "CntA1a", "10.10.9.20", 41234, "10.10.2.25", 445, "ketoan01", "WORKSTATION", "SO-TC",
              "FS02", "fs02.so-tc.local", "so-tc.local", "-"],
             [1763601100.9, "CntA1b", "10.10.9.20", 41236, "10.10.2.25", 445, "vanthu", "PC-VT", "SO-TC", "FS02",
              "fs02.so-tc.local", "so-tc.local", "T"],
             [1763601101.2, "CntA1c", "10.10.9.21", 41240, "10.10.2.80", 80, "ketoan02", "PC-KT02", "SO-TC", "-", "-",
              "-", "F"]]
SSH_ROWS = [[1763601200.25, "CshA1a", "10.10.9.33", 59849, "10.10.2.50", 22, 2, "F", 3, "-", "SSH-2.0-OpenSSH_7.6",
             "SSH-2.0-OpenSSH_7.4p1", "chacha20-poly1305@openssh.com", "umac-64-etm@openssh.com", "none",
             "curve25519-sha256", "ecdsa-sha2-nistp256", "2d:37:6b:11"],
            [1763601201.5, "CshA1b", "10.10.9.33", 59850, "10.10.2.50", 22, 2, "T", 1, "-", "SSH-2.0-OpenSSH_7.6",
             "SSH-2.0-OpenSSH_7.4p1", "chacha20-poly1305@openssh.com", "umac-64-etm@openssh.com", "none",
             "curve25519-sha256", "ecdsa-sha2-nistp256", "2d:37:6b:11"],
            [1763601202.5, "CshA1c", "10.10.9.19", 40010, "10.10.2.55", 22, 2, "-", 0, "-",
             "SSH-2.0-Nmap-SSH2-Hostkey", "SSH-2.0-OpenSSH_6.6.1p1", "-", "-", "-", "-", "-", "-"]]
STREAMS = {"kerberos": (KRB_F, KRB_T, KRB_ROWS), "ntlm": (NTLM_F, NTLM_T, NTLM_ROWS), "ssh": (SSH_F, SSH_T, SSH_ROWS)}
COLS = ["source.ip", "destination.port", "user.name", "user.domain", "event.category", "event.action",
        "event.outcome", "event.reason"]


def _frames(stream: str) -> list[pl.DataFrame]:
    """The stream's frame from TSV, from JSON with _path, and from JSON without it (its fields name it: not
    an ssh banner grab, which has none of ssh's own fields)."""
    fields, types, rows = STREAMS[stream]
    out = []
    texts = [("zeek", tsv(stream, fields, types, rows)), ("zeek_json", as_json(fields, types, rows, stream))]
    if stream != "ssh":
        texts.append(("zeek_json", as_json(fields, types, rows, None)))
    for spec, text in texts:
        res = parse_text(spec, text, path="x.log")
        assert res.dead.height == 0 and res.lines == len(rows)
        assert list(res.frames) == [("authentication", f"zeek.{stream}")], (spec, list(res.frames))
        out.append(res.frames[("authentication", f"zeek.{stream}")])
    return out


def _rows(frame: pl.DataFrame) -> list[tuple]:
    return [tuple(r) for r in frame.select([pl.col(c).cast(pl.String) if c in frame.columns else pl.lit(None)
                                            for c in COLS]).rows()]


@pytest.mark.parametrize("stream", ["kerberos", "ntlm", "ssh"])
def test_same_ecs_columns_in_tsv_and_json(stream):
    frames = _frames(stream)
    drop = ["log.file.path", "log.offset", "log.line"]
    assert all(f.drop(drop).equals(frames[0].drop(drop)) for f in frames[1:])


def test_kerberos_failure_only_for_refused_credentials_or_accounts():
    frame = _frames("kerberos")[0]
    A, R = "authentication", "kerberos_as_request"
    assert _rows(frame) == [
        ("10.10.7.66", "88", "nguyenvana", "SO-TC.LOCAL", A, R, "failure", "KDC_ERR_PREAUTH_FAILED"),
        ("10.10.7.66", "88", "khongtontai", "SO-TC.LOCAL", A, R, "failure", "KDC_ERR_C_PRINCIPAL_UNKNOWN"),
        ("10.10.4.31", "88", "tranvanb", "SO-TC.LOCAL", A, R, "unknown", "KDC_ERR_PREAUTH_REQUIRED"),  # 1st step
        ("10.10.4.31", "88", "tranvanb", "SO-TC.LOCAL", A, R, "unknown", "KRB_ERR_RESPONSE_TOO_BIG"),  # TCP retry
        ("10.10.4.31", "88", "tranvanb", "SO-TC.LOCAL", A, "kerberos_tgs_request", "success", None),
        ("10.128.0.241", "88", None, "NM", A, R, None, None)]  # no user, no reply
    row = frame.row(0, named=True)  # Sigma's Zeek names still read their columns
    assert (row["zeek.kerberos.client"], row["zeek.kerberos.success"], row["zeek.kerberos.error_msg"],
            row["zeek.kerberos.request_type"]) == ("nguyenvana/SO-TC.LOCAL", False, "KDC_ERR_PREAUTH_FAILED", "AS")


def test_ntlm_and_ssh_outcomes_as_zeek_means_them():
    A = "authentication"
    assert _rows(_frames("ntlm")[0]) == [
        ("10.10.9.20", "445", "ketoan01", "SO-TC", A, "ntlm_authenticate", None, None),  # no GSSAPI answer seen
        ("10.10.9.20", "445", "vanthu", "SO-TC", A, "ntlm_authenticate", "success", None),
        ("10.10.9.21", "80", "ketoan02", "SO-TC", A, "ntlm_authenticate", "failure", None)]
    ssh = _frames("ssh")[0]
    assert _rows(ssh) == [("10.10.9.33", "22", None, None, A, "ssh_login", "failure", None),
                          ("10.10.9.33", "22", None, None, A, "ssh_login", "success", None),
                          ("10.10.9.19", "22", None, None, A, None, None, None)]  # a banner grab: no login
    assert ssh["zeek.ssh.auth_success"].to_list() == [False, True, None]
    assert ssh["zeek.ssh.auth_attempts"].to_list() == [3, 1, 0]


def _hits(stream: str, rows: list) -> list[tuple]:
    fields, types, _ = STREAMS[stream]
    res = parse_text("zeek", tsv(stream, fields, types, rows), path=f"{stream}.log")
    runner = DetectorRunner(default_specs())
    for key, frame in res.frames.items():
        runner.feed(key, frame)
    hits = runner.hits()
    assert not runner.failures, runner.failures
    if not hits.height:
        return []
    return hits.select("rule.id", "source.ip", "event.count", "detector.value").sort("rule.id").rows()


def test_ssh_brute_force_counts_failed_sessions_not_attempts():
    rows = [[1763601200.0 + 20 * i, f"Cs{i}", "10.128.0.83", 40000 + i, "10.10.2.50", 22, 2, "F", 6, "-",
             "SSH-2.0-libssh_0.7.0", "SSH-2.0-OpenSSH_7.4p1", "aes128-ctr", "hmac-sha1", "none",
             "diffie-hellman-group14-sha1", "ssh-rsa", "5b:3e"] for i in range(10)]
    got = _hits("ssh", rows)
    assert got == [("soc-ssh-brute-force", "10.128.0.83", 10, 10.0)]  # 10 sessions of 6 attempts
    assert _hits("ssh", rows[:9]) == []  # 54 attempts in 9 sessions: under the threshold
    judged_ok = [r[:7] + ["T"] + r[8:] for r in rows]
    assert _hits("ssh", judged_ok) == []


def test_kerberos_guessing_and_enumeration_from_zeek():
    spray = [krb(1763601000.0 + 5 * i, "10.128.0.81", f"user{i}/SO-TC.LOCAL", "F", error)
             for i in range(20) for error in ("KDC_ERR_PREAUTH_REQUIRED", "KDC_ERR_PREAUTH_FAILED")]
    assert _hits("kerberos", spray) == [("soc-kerberos-brute-force", "10.128.0.81", 20, 20.0),
                                                ("soc-password-spraying", "10.128.0.81", 20, 20.0)]
    enum = [krb(1763601000.0 + 0.2 * i, "10.128.0.82", f"name{i}/SO-TC.LOCAL", "F", "KDC_ERR_C_PRINCIPAL_UNKNOWN")
            for i in range(16)]  # unknown names are enumeration, not a password spray (as 4768 0x6 on Windows)
    assert _hits("kerberos", enum) == [("soc-kerberos-user-enumeration", "10.128.0.82", 16, 16.0)]
    logons = [krb(1763601000.0 + 5 * i, "10.10.4.31", f"user{i % 30}/SO-TC.LOCAL", "F", "KDC_ERR_PREAUTH_REQUIRED")
              for i in range(60)]  # a terminal server's users logging on: every AS exchange starts so
    assert _hits("kerberos", logons) == []


def test_ntlm_spray_and_guessing_count_logons_not_accepted():
    rows = [[1763601100.0 + 3 * i, f"Cn{i}", "10.150.0.20", 41000 + i, f"10.10.2.{25 + i % 3}", 445, f"user{i}",
             "WORKSTATION", "WORKSTATION", "FS02", "fs02.so-tc.local", "so-tc.local", "-" if i % 4 else "F"]
            for i in range(10)]
    assert _hits("ntlm", rows) == [("soc-zeek-ntlm-spraying", "10.150.0.20", 10, 10.0)]
    guessing = [r[:6] + ["administrator"] + r[7:] for r in rows * 2]  # one account, 20 refusals in 30 s
    for i, r in enumerate(guessing):
        r[0] = 1763601100.0 + 1.5 * i
    assert _hits("ntlm", guessing) == [("soc-zeek-ntlm-brute-force", "10.150.0.20", 20, 20.0)]
    assert _hits("ntlm", guessing[:19]) == []
    rejected = [[1763601100.0 + 3 * i, f"Cr{i}", "10.150.0.20", 42000 + i, "10.10.2.25", 445, f"user{i}",
                 "WORKSTATION", "WORKSTATION", "FS02", "fs02.so-tc.local", "so-tc.local", "F"] for i in range(16)]
    assert _hits("ntlm", rejected) == [("soc-zeek-ntlm-spraying", "10.150.0.20", 16, 16.0)]  # one alert, not two
    accepted = [r[:12] + ["T"] for r in rows]  # a Samba server mapping unknown users to guest accepts them
    assert _hits("ntlm", accepted) == []
    anonymous = [r[:6] + ["-"] + r[7:] for r in rows]  # no user name: null sessions, not logons of accounts
    assert _hits("ntlm", anonymous) == []


def test_sigmahq_zeek_kerberos_rule_routes_to_the_authentication_frame_and_matches(corpora):
    """SigmaHQ's zeek_susp_kerberos_rc4 (product zeek, service kerberos: request_type, cipher, service) keeps
    its routing and its Zeek field names now that kerberos.log is an authentication frame."""
    from sigma.rule import SigmaRule

    from soc.sigma.hunt import Hunter
    from soc.sigma.loader import RuleSet, compile_rule, route
    from soc.sigma.mapping import default_pipeline
    from soc.sigma.modifiers import register

    path = corpora / "sigma" / "rules" / "network" / "zeek" / "zeek_susp_kerberos_rc4.yml"
    register()
    rule = compile_rule(SigmaRule.from_yaml(path.read_text(encoding="utf-8")), str(path))
    route([rule], default_pipeline())
    assert [(t.family, t.dataset) for t in rule.targets] == [("authentication", "zeek.kerberos")]
    rows = [krb(1763601000.5, "10.10.4.31", "tranvanb/SO-TC.LOCAL", "T", "-", "TGS", "MSSQLSvc/db01.so-tc.local"),
            krb(1763601000.6, "10.10.4.32", "WS01$/SO-TC.LOCAL", "T", "-", "TGS", "$WS02")]  # a computer account's
    for row in rows:
        row[13] = "rc4-hmac"
    frame = parse_text("zeek", tsv("kerberos", KRB_F, KRB_T, rows)).frames[("authentication", "zeek.kerberos")]
    hits = Hunter(RuleSet([rule], [])).evaluate(("authentication", "zeek.kerberos"), frame)
    assert hits["source.ip"].to_list() == ["10.10.4.31"]


def test_domain_logons_seen_by_zeek_are_not_new_login_sources():
    """Kerberos tickets of a user from a new workstation address (DHCP) are no 'new login source'; an SSH-like
    login of the same shape in another dataset is (the detector still works on what it is meant for)."""
    def day(d: int, ip: str) -> list:
        return krb(1763601000.0 + d * 86400, ip, "nguyenvana/SO-TC.LOCAL", "T", "-", "TGS", "cifs/fs01.so-tc.local")

    rows = [day(d, "10.10.4.31") for d in range(8)] + [day(9, "10.10.4.77")]
    res = parse_text("zeek", tsv("kerberos", KRB_F, KRB_T, rows), path="kerberos.log")
    frame = res.frames[("authentication", "zeek.kerberos")]
    spec = [s for s in default_specs() if s.id == "soc-first-seen-login-source"]
    runner = DetectorRunner(spec)
    runner.feed(("authentication", "zeek.kerberos"), frame)
    assert runner.hits().height == 0
    runner = DetectorRunner(spec)  # the same logons as another service's: found
    runner.feed(("authentication", "system.auth"), frame.with_columns(
        pl.lit("system.auth").cast(pl.Categorical).alias("event.dataset")))
    hits = runner.hits()
    assert (hits["user.name"].to_list(), hits["evidence.values"].to_list()) == (["nguyenvana"], [["10.10.4.77"]])
