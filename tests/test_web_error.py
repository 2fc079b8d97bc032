"""Apache httpd and nginx error logs (issue 16 item 6): no parser before, a public Apache error log was
rejected whole. Lines of our own making in the layouts of Apache 2.2, 2.4 and nginx."""

from __future__ import annotations

from datetime import UTC, datetime

from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

A22 = "[Mon Nov 23 09:15:13 2026] [error] [client 198.51.100.23] File does not exist: /var/www/html/wp-login.php\n"
A24 = ("[Mon Nov 23 09:15:13.402117 2026] [authz_core:error] [pid 2211:tid 139871] [client 198.51.100.23:50412] "
       "AH01630: client denied by server configuration: /srv/portal/.git/config, referer: http://example.gov.vn/\n")
NGX = ('2026/11/23 09:15:13 [error] 1234#1234: *5 open() "/usr/share/nginx/html/.env" failed (2: No such file or '
       'directory), client: 198.51.100.23, server: portal.example.gov.vn, request: "GET /.env?x=1 HTTP/1.1", '
       'host: "portal.example.gov.vn"\n')


def rows(spec: str, text: str) -> list[dict]:
    res = parse_text(spec, text)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    (frame,) = res.frames.values()
    return frame.rows(named=True)


def test_apache_22():
    (row,) = rows("apache_error", A22)
    assert row["@timestamp"] == datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC)  # local time, Asia/Ho_Chi_Minh
    assert row["log.level"] == "error" and row["source.ip"] == "198.51.100.23" and row["source.port"] is None
    assert row["message"] == "File does not exist: /var/www/html/wp-login.php"
    assert row["event.dataset"] == "apache.error" and row["event.category"] == "web"


def test_apache_24_full_prefix():
    (row,) = rows("apache_error", A24)
    assert row["@timestamp"] == datetime(2026, 11, 23, 2, 15, 13, 402117, tzinfo=UTC)
    assert row["log.level"] == "error" and row["apache.error.module"] == "authz_core"
    assert row["process.pid"] == 2211 and row["process.thread.id"] == 139871
    assert row["source.ip"] == "198.51.100.23" and row["source.port"] == 50412
    assert row["error.code"] == "AH01630"
    assert row["message"].startswith("client denied by server configuration: /srv/portal/.git/config")
    assert row["http.request.referrer"] == "http://example.gov.vn/"


def test_apache_24_variants():
    text = (
        "[Mon Nov 23 09:15:14.000001 2026] [mpm_event:notice] [pid 900] AH00489: Apache/2.4.62 configured\n"
        "[Mon Nov 23 09:15:15.5 2026] [:error] [pid 901] [client 2001:db8::9:40000] PHP Warning:  oops\n"
        "[Mon Nov 23 09:15:16.1 2026] [rewrite:trace3] [pid 902:tid 7] mod_rewrite.c(483): [client 10.0.0.8:1234] "
        "10.0.0.8 - - [portal/sid#1][rid#2/initial] applying pattern '^/x' to uri '/'\n"
        "[2026-11-23 09:15:17.250000 +0000] [core:notice] [pid 1:tid 2] AH00094: Command line: 'httpd -D FOREGROUND'\n"
        "[Mon Nov 23 09:15:18 2026] [error] [client crawler.example.net] Invalid URI in request\n"
    )
    got = rows("apache_error", text)
    assert [r["log.level"] for r in got] == ["notice", "error", "trace3", "notice", "error"]
    assert got[0]["source.ip"] is None and got[0]["error.code"] == "AH00489"
    assert got[1]["apache.error.module"] is None and got[1]["source.ip"] == "2001:db8::9"
    assert got[1]["source.port"] == 40000
    assert got[2]["log.origin.file.name"] == "mod_rewrite.c" and got[2]["log.origin.file.line"] == 483
    assert got[2]["source.ip"] == "10.0.0.8"
    assert got[3]["@timestamp"] == datetime(2026, 11, 23, 9, 15, 17, 250000, tzinfo=UTC)
    assert got[4]["source.ip"] is None and got[4]["source.domain"] == "crawler.example.net"
    assert got[4]["source.address"] == "crawler.example.net"


def test_apache_line_without_time_is_dead_lettered_with_reason():
    res = parse_text("apache_error", A22 + "AH00558: httpd: Could not reliably determine the server's name\n")
    assert res.parsed == 1 and res.dead.height == 1
    assert "without the [time] prefix" in res.dead["error.message"][0]


def test_nginx():
    (row,) = rows("nginx_error", NGX)
    assert row["@timestamp"] == datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC)
    assert row["log.level"] == "error" and row["process.pid"] == 1234 and row["nginx.error.connection_id"] == 5
    assert row["source.ip"] == "198.51.100.23" and row["url.domain"] == "portal.example.gov.vn"
    assert row["http.request.method"] == "GET" and row["nginx.error.request"] == "GET /.env?x=1 HTTP/1.1"
    assert row["http.version"] == "1.1"
    assert row["url.original"] is None  # the access log holds the request: webserver rules alert once
    assert row["error.code"] == "2" and row["message"].startswith('open() "/usr/share/nginx/html/.env" failed')
    assert row["event.dataset"] == "nginx.error"


def test_nginx_context_is_read_from_the_end():
    """A forged context inside the message (a path a client chose) is not taken for nginx's own."""
    line = ('2026/11/23 09:15:13 [error] 7#7: *9 open() "/srv/a, client: 6.6.6.6, server: x" failed (2: No such '
            'file or directory), client: 203.0.113.4, server: portal, request: "GET /a HTTP/1.1", host: "portal"\n')
    (row,) = rows("nginx_error", line)
    assert row["source.ip"] == "203.0.113.4" and row["url.domain"] == "portal"


def test_nginx_variants():
    text = (
        "2026/11/23 09:15:13 [notice] 1#1: signal process started\n"
        "2026/11/23 09:15:14 [warn] 15#15: *30 an upstream response is buffered to a temporary file "
        "/var/cache/nginx/proxy_temp/1/00/0000000001 while reading upstream, client: 2001:db8::4, server: api, "
        'request: "POST /upload HTTP/2.0", upstream: "http://10.0.0.5:8080/upload", host: "api.example.gov.vn", '
        'referrer: "https://api.example.gov.vn/form"\n'
        '2026/11/23 09:15:15 [error] 15#15: *31 FastCGI sent in stderr: "PHP message: PHP Warning: x" while reading '
        'response header from upstream, client: unix:, server: , request: "GET / HTTP/1.1", host: "localhost"\n'
    )
    got = rows("nginx_error", text)
    assert got[0]["log.level"] == "notice" and got[0]["source.address"] is None
    assert got[0]["message"] == "signal process started" and got[0]["nginx.error.connection_id"] is None
    assert got[1]["source.ip"] == "2001:db8::4" and got[1]["nginx.error.upstream"] == "http://10.0.0.5:8080/upload"
    assert got[1]["http.request.referrer"] == "https://api.example.gov.vn/form" and got[1]["http.version"] == "2.0"
    assert got[1]["url.domain"] == "api.example.gov.vn"
    assert got[2]["source.ip"] is None and got[2]["source.address"] == "unix:"


def test_nginx_continuation_line_is_dead_lettered():
    res = parse_text("nginx_error", NGX + "PHP message: PHP Warning:  Undefined variable $x in /srv/a.php on line 3\n")
    assert res.parsed == 1 and res.dead["error.message"][0].startswith("not an nginx error log line")


def test_sniffed():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff(A22.encode(), sigs) == "apache_error"
    assert sniff(A24.encode(), sigs) == "apache_error"
    assert sniff(NGX.encode(), sigs) == "nginx_error"


MODSEC = ('ModSecurity: Access denied with code 403 (phase 2). Matched "Operator `Rx\' with parameter `x\' against '
          'variable `ARGS:q\' (Value: `1 [id "1"] union select\' ) [file "/etc/modsecurity/crs/REQUEST-942.conf"] '
          '[line "46"] [id "942100"] [rev ""] [msg "SQL Injection Attack Detected via libinjection"] '
          '[data "Matched Data: s&1UE found"] [severity "2"] [hostname "portal.example.gov.vn"] [uri "/tim-kiem"]')


def test_modsecurity_rule_in_either_error_log():
    apache = ("[Mon Nov 23 09:15:13.1 2026] [security2:error] [pid 3:tid 4] [client 203.0.113.7:5100] "
              f"[client 203.0.113.7] {MODSEC}\n")
    nginx = (f"2026/11/23 09:15:13 [error] 15#15: *40 [client 203.0.113.7] {MODSEC}, client: 203.0.113.7, "
             'server: portal, request: "GET /tim-kiem?q=1 HTTP/1.1", host: "portal"\n')
    for spec, text in (("apache_error", apache), ("nginx_error", nginx)):
        (row,) = rows(spec, text)
        assert row["rule.id"] == "942100", spec  # not the [id "1"] the client wrote into the matched value
        assert row["rule.name"] == "SQL Injection Attack Detected via libinjection", spec
        assert row["source.ip"] == "203.0.113.7", spec


def test_apache_24_apr_status_before_the_client():
    """2.4's default ErrorLogFormat writes the APR/OS error (%E) before [client ...]."""
    line = ("[Mon Nov 23 09:15:13.5 2026] [proxy_fcgi:error] [pid 41:tid 42] (70007)The timeout specified has "
            "expired: [client 198.51.100.30:61000] AH01075: Error dispatching request to : (polling)\n")
    (row,) = rows("apache_error", line)
    assert row["source.ip"] == "198.51.100.30" and row["error.code"] == "AH01075"
    assert row["apache.error.apr_status"] == 70007
    assert row["apache.error.apr_message"] == "The timeout specified has expired"
    assert row["message"] == "Error dispatching request to : (polling)"
    line = ("[Mon Nov 23 09:15:13.5 2026] [proxy:error] [pid 41:tid 43] (111)Connection refused: AH00957: "
            "http: attempt to connect to 127.0.0.1:8080 (127.0.0.1:8080) failed\n")
    (row,) = rows("apache_error", line)
    assert row["apache.error.apr_status"] == 111 and row["error.code"] == "AH00957" and row["source.ip"] is None
