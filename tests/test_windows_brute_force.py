"""Windows password guessing, from the records to the hit: Kerberos (4768, 4771) and NTLM (4776) events mapped to
ECS (the client address out of IpAddress's '::ffff:a.b.c.d'), the same columns from an EVTX file and from JSON
lines (NXLog, Winlogbeat), and the detectors that read them: Kerberos password guessing, Kerberos user
enumeration, 4625 failures without an address. Lines of our own, in the shapes the real recordings have
(evtx-to-mitre-attack's T1110 folder: a DC rootdc1.offsec.lan, the attacker 10.23.123.11)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from soc.detect.runner import DetectorRunner
from soc.detect.specs import default_specs
from tests.conftest import Keep, parse_text

T0 = datetime(2021, 12, 2, 14, 54, 21, tzinfo=UTC)
NX = {"Hostname": "rootdc1.offsec.lan", "SourceName": "Microsoft-Windows-Security-Auditing", "Channel": "Security",
      "EventType": "AUDIT_FAILURE", "Keywords": -9218868437227405312, "SourceModuleName": "eventlog",
      "SourceModuleType": "im_msvistalog"}
BRUTE = "Kerberos brutforce with valid user.evtx"


def _nxlog(rows: list[dict], t0: datetime = T0, step: float = 0.3) -> str:
    """NXLog im_msvistalog JSON lines; EventTime is the host's wall clock (read here as UTC)."""
    out = []
    for i, row in enumerate(rows):
        stamp = (t0 + timedelta(seconds=i * step)).strftime("%Y-%m-%d %H:%M:%S")
        out.append(json.dumps({"EventTime": stamp, **NX, "RecordNumber": i + 1, **row}))
    return "\n".join(out) + "\n"


def _winlogbeat(rows: list[tuple[str, dict]], t0: datetime = T0, step: float = 0.05) -> str:
    out = []
    for i, (event_id, data) in enumerate(rows):
        stamp = (t0 + timedelta(seconds=i * step)).isoformat().replace("+00:00", "Z")
        out.append(json.dumps({"@timestamp": stamp, "agent": {"type": "winlogbeat"}, "winlog": {
            "channel": "Security", "event_id": event_id, "provider_name": "Microsoft-Windows-Security-Auditing",
            "record_id": i + 1, "computer_name": "rootdc1.offsec.lan", "event_data": data}}))
    return "\n".join(out) + "\n"


def _kerberos_4771(user: str, ip: str = "::ffff:10.23.123.11", status: str = "0x18") -> dict:
    return {"EventID": 4771, "TargetUserName": user, "TargetSid": "S-1-5-21-1-2-3-1104", "ServiceName":
            "krbtgt/OFFSEC.LAN", "TicketOptions": "0x40800010", "Status": status, "PreAuthType": "2",
            "IpAddress": ip, "IpPort": "47404", "CertIssuerName": "", "CertSerialNumber": "", "CertThumbprint": ""}


def _4768(user: str, status: str, ip: str = "::ffff:10.23.123.11") -> dict:
    return {"TargetUserName": user, "TargetDomainName": "OFFSEC.LAN", "TargetSid": "S-1-0-0",
            "ServiceName": "krbtgt/OFFSEC.LAN", "ServiceSid": "S-1-0-0", "TicketOptions": "0x40800010",
            "Status": status, "TicketEncryptionType": "0xffffffff", "PreAuthType": "-", "IpAddress": ip,
            "IpPort": "47388", "CertIssuerName": "", "CertSerialNumber": "", "CertThumbprint": ""}


def _4625(user: str, logon_type: str = "2", host: str = "WIN") -> dict:
    return {"EventID": 4625, "Hostname": host, "SubjectUserSid": "S-1-5-21-9-1001", "SubjectUserName": "Admin",
            "SubjectDomainName": host, "SubjectLogonId": "0x4a8f2", "TargetUserSid": "S-1-0-0",
            "TargetUserName": user, "TargetDomainName": host, "Status": "0xc000006d", "FailureReason": "%%2313",
            "SubStatus": "0xc000006a", "LogonType": logon_type, "LogonProcessName": "Advapi  ",
            "AuthenticationPackageName": "Negotiate", "WorkstationName": host, "TransmittedServices": "-",
            "LmPackageName": "-", "KeyLength": "0", "ProcessId": "0x1c2c",
            "ProcessName": "C:\\Users\\Admin\\Desktop\\AccountRestore.exe", "IpAddress": "-", "IpPort": "-"}


def _frames(spec: str, text: str) -> dict:
    res = parse_text(spec, text, zone="UTC")
    assert res.dead.height == 0, res.dead.get_column("error.message").to_list()
    return res.frames


def _hits(*frame_sets: dict) -> pl.DataFrame:
    runner = DetectorRunner(default_specs())
    for frames in frame_sets:
        for key, frame in frames.items():
            runner.feed(key, frame)
    hits = runner.hits()
    assert not runner.failures, runner.failures
    return hits


def test_kerberos_and_ntlm_events_are_mapped_with_the_client_address():
    frames = _frames("nxlog_windows", _nxlog([
        _kerberos_4771("admin-hacker"),
        {"EventID": 4768, **_4768("xvtrz", "0x6")},
        {"EventID": 4768, **_4768("admmig", "0x0", ip="::1")},
        {"EventID": 4776, "PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "NOUSER",
         "Workstation": "FS01", "Status": "0xc0000064"},
        {"EventID": 4776, "PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "bob",
         "Workstation": "WS7", "Status": "0x0"},
    ]))
    cols = ["user.name", "source.ip", "source.address", "source.port", "source.domain", "event.outcome",
            "event.category", "IpAddress"]
    k = frames[("windows", "windows.security.4771")].select(cols).to_dicts()
    assert k == [{"user.name": "admin-hacker", "source.ip": "10.23.123.11", "source.address": "10.23.123.11",
                  "source.port": 47404, "source.domain": None, "event.outcome": "failure",
                  "event.category": "authentication", "IpAddress": "::ffff:10.23.123.11"}]  # the raw field as logged
    tgt = frames[("windows", "windows.security.4768")].select("user.name", "source.ip", "event.outcome").to_dicts()
    assert tgt == [{"user.name": "xvtrz", "source.ip": "10.23.123.11", "event.outcome": "failure"},
                   {"user.name": "admmig", "source.ip": "::1", "event.outcome": "success"}]  # IPv6 stays as it is
    ntlm = frames[("windows", "windows.security.4776")].select("user.name", "source.domain", "source.ip",
                                                               "event.outcome").to_dicts()
    assert ntlm == [{"user.name": "NOUSER", "source.domain": "FS01", "source.ip": None, "event.outcome": "failure"},
                    {"user.name": "bob", "source.domain": "WS7", "source.ip": None, "event.outcome": "success"}]


def test_an_evtx_record_and_its_json_line_give_the_same_columns(corpora):
    """The address split is one step of the Windows mapping: the EVTX engine's frames have the ``*.address``
    and ``*.domain`` the JSON engine's have."""
    from soc import pipeline
    from soc.sources import discover

    path = next((corpora / "evtx" / "evtx-to-mitre-attack").rglob(f"*{BRUTE}"))
    keep = Keep()
    pipeline.run(discover([str(path)]), keep)
    evtx = pl.concat(keep.frames[("windows", "windows.security.4771")], how="diagonal_relaxed").row(0, named=True)
    json_row = _frames("nxlog_windows", _nxlog([{**_kerberos_4771("admin-hacker"), "IpPort": evtx["IpPort"]}]))[
        ("windows", "windows.security.4771")].row(0, named=True)
    cols = ["user.name", "source.ip", "source.address", "source.domain", "source.port", "event.outcome",
            "event.action", "Status", "IpAddress"]
    assert {c: evtx[c] for c in cols} == {c: json_row[c] for c in cols}
    assert evtx["source.ip"] == "10.23.123.11" and evtx["Status"] == "0x18"


def test_kerberos_password_guessing_is_found_per_client_with_the_account_tried():
    guesses = _nxlog([_kerberos_4771("admin-hacker") for _ in range(54)])  # the recording: 54 in 16 s
    mistakes = _nxlog([_kerberos_4771(u, ip=f"::ffff:10.23.42.{i}") for i, u in enumerate(["ann", "bob"] * 6)],
                      t0=T0 + timedelta(minutes=1), step=20)  # twelve users' typos, one address each ...
    typos = _nxlog([_kerberos_4771("carol", ip="::ffff:10.23.42.99") for _ in range(5)],
                   t0=T0 + timedelta(minutes=2), step=8)  # ... and one user's five before the lockout
    hits = _hits(_frames("nxlog_windows", guesses), _frames("nxlog_windows", mistakes),
                 _frames("nxlog_windows", typos))
    mine = hits.filter(pl.col("rule.id") == "soc-kerberos-brute-force")
    assert mine.select("source.ip", "event.count", "evidence.values").to_dicts() == [
        {"source.ip": "10.23.123.11", "event.count": 54, "evidence.values": ["admin-hacker"]}]
    assert hits.filter(pl.col("rule.id") == "soc-password-spraying").height == 0  # one account


def test_a_kerberos_spray_is_guessing_and_spraying():
    accounts = [f"svc-{i:02d}" for i in range(22)]  # the Kerbrute recording: 22 accounts in 9 s
    hits = _hits(_frames("nxlog_windows", _nxlog([_kerberos_4771(a) for a in accounts], step=0.4)))
    assert sorted(hits.get_column("rule.id").to_list()) == ["soc-kerberos-brute-force", "soc-password-spraying"]
    spray = hits.filter(pl.col("rule.id") == "soc-password-spraying").row(0, named=True)
    assert spray["source.ip"] == "10.23.123.11" and spray["detector.value"] == 22
    assert spray["evidence.values"] == accounts[:5]


def test_kerberos_user_enumeration_counts_distinct_unknown_names_from_winlogbeat():
    names = ["test1", "test2", "admtest", "sgfg", "g", "dyfgdhbn", "xvtrz", "ar", "tary", "bsfin", "mgdi", "vdr"]
    rows = [("4768", _4768(n, "0x6")) for n in names] + [("4768", _4768("admmig", "0x0"))]
    # an application with a deleted account asks again and again: one name, however often
    rows += [("4768", _4768("old_svc", "0x6", ip="::ffff:10.23.42.20")) for _ in range(40)]
    hits = _hits(_frames("winlogbeat", _winlogbeat(rows)))
    assert hits.select("rule.id", "source.ip", "detector.value").to_dicts() == [
        {"rule.id": "soc-kerberos-user-enumeration", "source.ip": "10.23.123.11", "detector.value": 12.0}]
    assert hits.row(0, named=True)["evidence.values"] == names[:5]


def test_logon_failures_without_an_address_are_counted_per_host():
    tool = _nxlog([_4625("Administrator" if i % 2 else "Admin") for i in range(16)], step=0.001)
    service = _nxlog([_4625("svc_backup", logon_type="5", host="SRV2") for _ in range(30)], step=5)
    console = _nxlog([_4625("alice", host="WS3") for _ in range(4)], step=10)  # a user mistyping, then locked out
    hits = _hits(_frames("nxlog_windows", tool), _frames("nxlog_windows", service),
                 _frames("nxlog_windows", console))
    assert hits.select("rule.id", "host.hostname", "event.count").to_dicts() == [
        {"rule.id": "soc-windows-4625-no-address", "host.hostname": "WIN", "event.count": 16}]
    assert sorted(hits.row(0, named=True)["evidence.values"]) == ["Admin", "Administrator"]


def test_a_4625_with_an_address_is_not_counted_as_one_without():
    rows = [{**_4625("bob"), "IpAddress": "::ffff:198.51.100.9", "IpPort": "50100", "LogonType": "3"}
            for _ in range(12)]
    hits = _hits(_frames("nxlog_windows", _nxlog(rows, step=1)))
    assert hits.select("rule.id", "source.ip").to_dicts() == [
        {"rule.id": "soc-windows-4625-brute-force", "source.ip": "198.51.100.9"}]


def _sql_audit(user: str, ip: str, action: str = "LGIF", succeeded: str = "false") -> str:
    """The Data of a 33205 record (SQL Server Audit to the Application log), as the recordings have it."""
    statement = f"Login failed for user '{user}'. Reason: Password did not match that for the login provided."
    return "\n".join([
        "audit_schema_version:1", "event_time:2020-07-15 19:51:18.2740994", "sequence_number:1",
        f"action_id:{action}", f"succeeded:{succeeded}", "is_column_permission:false", "session_id:0",
        "server_principal_id:0", "class_type:LX", "session_server_principal_name:", f"server_principal_name:{user}",
        "server_principal_sid:", "server_instance_name:MSSQL01\\RADAR", "database_name:", f"statement:{statement} "
        f"[CLIENT: {ip}]", "additional_information:<action_info xmlns=\"http://schemas.microsoft.com/sqlserver/2008/"
        f"sqlaudit_data\"><pooled_connection>0</pooled_connection><error>0x00004818</error><state>8</state>"
        f"<address>{ip}</address></action_info>", "user_defined_information:", ""])


def test_sql_server_failed_logins_are_counted_per_client():
    """Winlogbeat writes SQL Server's unnamed <Data> as param1..param3 (18456: the account, the reason, the
    client); 33205 is one <Data> of name:value lines."""
    def line(event_id, data, i):
        return json.dumps({"@timestamp": f"2020-07-15T19:51:{i % 60:02d}.{i:03d}Z", "winlog": {
            "channel": "Application", "event_id": event_id, "provider_name": "MSSQL$RADAR", "record_id": i,
            "computer_name": "mssql01.offsec.lan", "event_data": data}}) + "\n"

    reason = "Reason: Password did not match that for the login provided."
    text = "".join(line("18456", {"param1": "sa", "param2": reason, "param3": " [CLIENT: 10.23.23.9]"}, i)
                   for i in range(27))  # the recording: 27 on sa in 10 s
    text += "".join(line("33205", {"param1": _sql_audit(f"user{i}", "10.23.123.11")}, 100 + i) for i in range(24))
    text += line("33205", {"param1": _sql_audit("app", "10.23.42.5", "LGIS", "true")}, 200)  # a login
    text += line("18456", {"param1": "", "param2": reason, "param3": " [CLIENT: 10.23.42.6]"}, 201)  # no name
    text += "".join(line("18456", {"param1": "app_reader", "param2": reason, "param3": " [CLIENT: 10.23.42.7]"},
                         300 + i) for i in range(3))  # a person retrying
    frames = _frames("winlogbeat", text)
    audit = frames[("windows", "windows.application.33205")]
    assert audit.select("user.name", "source.ip", "event.action", "event.outcome").row(-1) == (
        "app", "10.23.42.5", "logged-in", "success")
    nameless = frames[("windows", "windows.application.18456")].filter(pl.col("source.ip") == "10.23.42.6")
    assert nameless.get_column("user.name").to_list() == [None]
    hits = _hits(frames).sort("source.ip")
    assert hits.select("rule.id", "source.ip", "event.count").rows() == [
        ("soc-sql-server-brute-force", "10.23.123.11", 24), ("soc-sql-server-brute-force", "10.23.23.9", 27)]
    assert hits.get_column("evidence.values").to_list()[1] == ["sa"]


def test_openssh_for_windows_failures_feed_the_ssh_brute_force_detector():
    """OpenSSH/Operational event 4 holds sshd's own messages (``payload``): the same accounts, clients and results
    as its syslog lines; an account name that holds ' from <ip> port <n>' does not change the client."""
    def line(payload, i):
        return json.dumps({"@timestamp": f"2021-05-20T12:49:{i:02d}.300Z", "winlog": {
            "channel": "OpenSSH/Operational", "event_id": 4, "provider_name": "OpenSSH", "record_id": i,
            "computer_name": "fs01.offsec.lan", "event_data": {"process": "sshd", "payload": payload}}}) + "\n"

    payloads = ["Invalid user hacker from 10.23.23.9 port 60096"]
    payloads += [f"Failed password for invalid user hacker from 10.23.23.9 port {60096 + i // 5} ssh2"
                 for i in range(11)]  # a tool reconnecting after sshd's MaxAuthTries
    payloads += ["Disconnecting invalid user hacker 10.23.23.9 port 60096: Too many authentication failures [preauth]",
                 "Failed password for x from 6.6.6.6 port 22 from 10.23.23.7 port 50000 ssh2",
                 "Accepted password for admmig from 10.23.42.16 port 51000 ssh2", "Server listening on :: port 22."]
    frames = _frames("winlogbeat", "".join(line(p, i) for i, p in enumerate(payloads)))
    rows = frames[("windows", "windows.openssh_operational.4")].select(
        "user.name", "source.ip", "source.port", "event.action", "event.outcome").rows()
    assert rows[0] == ("hacker", "10.23.23.9", 60096, "invalid_user", "failure")
    assert rows[1] == ("hacker", "10.23.23.9", 60096, "ssh_login", "failure")
    assert rows[12:] == [(None, None, None, None, None), ("x from 6.6.6.6 port 22", "10.23.23.7", 50000, "ssh_login",
                                                         "failure"),
                         ("admmig", "10.23.42.16", 51000, "ssh_login", "success"), (None, None, None, None, None)]
    hits = _hits(frames)
    assert hits.select("rule.id", "source.ip", "event.count", "evidence.values").rows() == [
        ("soc-ssh-brute-force", "10.23.23.9", 12, ["hacker"])]


def test_ntlm_validation_failures_are_counted_per_client_workstation():
    def v(user, workstation, status):
        return {"EventID": 4776, "PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": user,
                "Workstation": workstation, "Status": status}

    spray = [v(f"user{i:02d}", "KALI", "0xc000006a") for i in range(25)]  # one password, 25 accounts
    typos = [v("bob", "WS7", "0xc000006a") for _ in range(6)] + [v("bob", "WS7", "0x0")]
    unknown = [v("NOUSER", "FS01", "0xc0000064") for _ in range(5)]  # the corpus's OpenSSH attempt, as the host logs it
    hits = _hits(_frames("nxlog_windows", _nxlog(spray + typos + unknown, step=1)))
    assert hits.select("rule.id", "source.domain", "event.count").rows() == [("soc-ntlm-brute-force", "KALI", 25)]
    assert hits.row(0, named=True)["evidence.values"] == [f"user{i:02d}" for i in range(5)]
