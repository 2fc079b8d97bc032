"""Apache/nginx combined and common access logs (format per Apache mod_log_config documentation)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from tests.conftest import parse_text

COMBINED = (
    '192.0.2.10 - alice [10/Oct/2025:13:55:36 -0700] "GET /apache_pb.gif?x=1&y=2 HTTP/1.0" 200 2326 '
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n'
)


def one(text: str, path: str = "access.log") -> dict:
    res = parse_text("web_access", text, path=path)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    (frame,) = res.frames.values()
    assert frame.height == 1
    return frame.row(0, named=True)


def test_combined_fields():
    row = one(COMBINED)
    assert row["@timestamp"] == datetime(2025, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert row["source.ip"] == "192.0.2.10"
    assert row["user.name"] == "alice"
    assert row["http.request.method"] == "GET"
    assert row["url.original"] == "/apache_pb.gif?x=1&y=2"
    assert row["url.path"] == "/apache_pb.gif"
    assert row["url.query"] == "x=1&y=2"
    assert row["http.version"] == "1.0"
    assert row["http.response.status_code"] == 200
    assert row["http.response.body.bytes"] == 2326
    assert row["http.request.referrer"] == "http://www.example.com/start.html"
    assert row["user_agent.original"] == "Mozilla/4.08 [en] (Win98; I ;Nav)"
    assert row["event.dataset"] == "web.access"
    assert row["log.line"] == 1 and row["log.offset"] == 0


def test_common_format_has_no_referrer_or_agent():
    row = one('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326\n')
    assert row["user_agent.original"] is None and row["http.request.referrer"] is None
    assert row["user.name"] == "frank"


def test_dash_values_are_null():
    row = one('10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 304 - "-" "-"\n')
    assert row["user.name"] is None
    assert row["http.response.body.bytes"] is None
    assert row["http.request.referrer"] is None and row["user_agent.original"] is None


def test_escaped_quotes_stay_inside_the_field():
    line = (
        '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a\\"b HTTP/1.1" 200 5 '
        '"http://x/\\"ref\\"" "curl \\"quoted\\" agent \\\\"\n'
    )
    row = one(line)
    assert row["url.original"] == '/a\\"b'
    assert row["http.request.referrer"] == 'http://x/\\"ref\\"'
    assert row["user_agent.original"] == 'curl \\"quoted\\" agent \\\\'


def test_ipv6_client():
    row = one('2001:db8::1 - - [10/Oct/2000:13:55:36 +0700] "POST /login HTTP/2.0" 401 12 "-" "x"\n')
    assert row["source.ip"] == "2001:db8::1"
    assert row["@timestamp"] == datetime(2000, 10, 10, 6, 55, 36, tzinfo=UTC)
    assert row["http.version"] == "2.0"


def test_request_target_with_spaces_and_garbage_request():
    row = one('10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a b c HTTP/1.1" 400 0 "-" "-"\n')
    assert row["url.original"] == "/a b c" and row["http.version"] == "1.1"
    row = one('10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"\n')
    assert row["http.request.method"] is None and row["url.original"] == "\\x16\\x03\\x01"


def test_dataset_from_path():
    assert one(COMBINED, path="/var/log/nginx/access.log")["event.dataset"] == "nginx.access"
    assert one(COMBINED, path="/var/log/httpd/access_log")["event.dataset"] == "apache.access"


def test_bad_lines_are_dead_lettered_with_reason():
    text = COMBINED + (
        '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1 200 5\n'  # unterminated quote
        '10.0.0.1 - - [99/Foo/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5\n'  # bad time
        '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" abc 5\n'  # bad status
        '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000\n'  # unterminated bracket
        'garbage\n'
        '\n'
    )
    res = parse_text("web_access", text)
    assert res.lines == 7 and res.parsed == 1
    reasons = dict(zip(res.dead["log.line"].to_list(), res.dead["error.message"].to_list(), strict=True))
    assert reasons[2] == "unterminated quoted field"
    assert reasons[3].startswith("@timestamp: ") and "not a valid timestamp" in reasons[3]
    assert reasons[4].startswith("http.response.status_code: abc")
    assert reasons[5] == "unterminated [bracketed] field"
    assert reasons[6] == "fewer than 7 fields"
    assert reasons[7] == "fewer than 7 fields"
    assert res.dead.filter(pl.col("log.line") == 6)["event.original"][0] == b"garbage"


def test_apache_corpus(corpora):
    """The elastic/examples Apache log: 10,000 lines, all parsed; line 8899's user agent is cut by the end of
    the line (no closing quote): the record is kept with the agent as far as it goes."""
    path = corpora / "logs" / "apache_combined_elastic_examples.log"
    res = parse_text("web_access", path.read_bytes(), path=str(path))
    assert res.lines == 10_000
    assert res.parsed == 10_000 and res.dead.height == 0
    (frame,) = res.frames.values()
    cut = frame.filter(pl.col("log.line") == 8899).row(0, named=True)
    assert cut["source.ip"] == "46.118.127.106" and cut["http.response.status_code"] == 200
    assert cut["user_agent.original"].startswith("Mozilla/5.0 (compatible; Googlebot/2.1;")
    assert frame["event.outcome"].null_count() == 0
    assert frame["@timestamp"].null_count() == 0
    assert frame["http.response.status_code"].null_count() == 0
    assert frame["source.ip"].n_unique() > 1000


# --- issue 16 item 6: real-world variants of the combined format -------------------------------------------

CORE = '[23/Nov/2026:09:15:13 +0700] "GET /portal/login?next=%2F HTTP/1.1" 403 187 "-" "Mozilla/5.0 (X11)"'


def test_third_quoted_field_is_x_forwarded_for():
    """nginx's stock ``main`` format ends with "$http_x_forwarded_for"."""
    row = one(f'10.20.0.4 - - {CORE} "203.0.113.50, 10.20.0.1"\n')
    assert row["source.ip"] == "10.20.0.4"  # the peer that connected stays the source
    assert row["http.request.x_forwarded_for"] == "203.0.113.50, 10.20.0.1"
    assert row["network.forwarded_ip"] == "203.0.113.50"
    assert row["user_agent.original"] == "Mozilla/5.0 (X11)"
    assert row["http.response.status_code"] == 403
    assert one(f'10.20.0.4 - - {CORE} "-"\n')["http.request.x_forwarded_for"] is None


def test_key_value_tail_and_request_time():
    row = one(f'10.20.0.4 - - {CORE} X-Forwarded-For="198.51.100.7" rt=0.250 uct="0.000"\n')
    assert row["http.request.x_forwarded_for"] == "198.51.100.7"
    assert row["network.forwarded_ip"] == "198.51.100.7"
    assert row["event.duration"] == 250_000_000  # nginx $request_time: seconds, millisecond resolution
    assert row["web_access.tail"] == 'X-Forwarded-For="198.51.100.7" rt=0.250 uct="0.000"'
    row = one(f'10.20.0.4 - - {CORE} 0.004\n')
    assert row["event.duration"] == 4_000_000
    row = one(f'10.20.0.4 - - {CORE} 3413\n')  # an integer: seconds (%T) or microseconds (%D)? not said
    assert row["event.duration"] is None and row["web_access.tail"] == "3413"


def test_virtual_host_prefix():
    """Apache's vhost_combined: ``%v:%p %h %l %u %t ...``."""
    row = one(f'www.example.gov.vn:443 113.160.5.9 - - {CORE}\n')
    assert row["url.domain"] == "www.example.gov.vn" and row["destination.port"] == 443
    assert row["source.ip"] == "113.160.5.9" and row["url.path"] == "/portal/login"
    row = one(f'portal.example.gov.vn 113.160.5.9 - - {CORE}\n')
    assert row["url.domain"] == "portal.example.gov.vn" and row["destination.port"] is None
    row = one('portal.example.gov.vn:80 113.160.5.9 - - [23/Nov/2026:09:15:13 +0700] "GET / HTTP/1.1" 200 5\n')
    assert row["url.domain"] == "portal.example.gov.vn" and row["http.response.status_code"] == 200


def test_client_with_port_and_address_lists():
    row = one(f'127.0.0.1:8080 - - {CORE}\n')
    assert row["source.ip"] == "127.0.0.1" and row["source.port"] == 8080
    row = one(f'[2001:db8::7]:51000 - - {CORE}\n')
    assert row["source.ip"] == "2001:db8::7" and row["source.port"] == 51000
    row = one(f'example.gov.vn 203.0.113.50, 10.20.0.1, 10.20.0.4 - - {CORE}\n')  # $proxy_add_x_forwarded_for
    assert row["source.ip"] == "10.20.0.4" and row["network.forwarded_ip"] == "203.0.113.50"
    assert row["url.domain"] == "example.gov.vn"


def test_host_name_client_is_not_an_ip():
    """Apache with HostnameLookups On writes the client's name."""
    row = one(f'crawler-7.example.net - - {CORE}\n')
    assert row["source.ip"] is None
    assert row["source.address"] == "crawler-7.example.net" and row["source.domain"] == "crawler-7.example.net"
    row = one(f'192.0.2.10 - - {CORE}\n')
    assert row["source.address"] == "192.0.2.10" and row["source.domain"] is None


def test_event_outcome_from_status():
    assert one(f'192.0.2.10 - - {CORE}\n')["event.outcome"] == "failure"
    assert one(COMBINED)["event.outcome"] == "success"
    assert one(COMBINED.replace(" 200 ", " 304 "))["event.outcome"] == "success"
    assert one(COMBINED.replace(" 200 ", " 502 "))["event.outcome"] == "failure"


def test_last_quoted_field_cut_by_the_end_of_the_line_is_kept():
    row = one('192.0.2.10 - - [23/Nov/2026:09:15:13 +0700] "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0 (compat\n')
    assert row["user_agent.original"] == "Mozilla/5.0 (compat" and row["http.response.status_code"] == 200


def test_request_time_first_of_the_numbers_after_the_agent():
    """nginx formats often end "$request_time $upstream_response_time": the first is the request's."""
    row = one(f'10.20.0.4 - - {CORE} "-" 0.120 0.118 .\n')
    assert row["event.duration"] == 120_000_000 and row["http.request.x_forwarded_for"] is None


def test_mod_ssl_request_log():
    """mod_ssl's default ssl_request_log: %t %h %{SSL_PROTOCOL}x %{SSL_CIPHER}x "%r" %b (no status)."""
    line = '[23/Nov/2026:09:15:13 +0700] 113.160.5.9 TLSv1.3 TLS_AES_256_GCM_SHA384 "GET /dang-nhap HTTP/1.1" 5120\n'
    row = one(line, path="/var/log/httpd/ssl_request_log")
    assert row["source.ip"] == "113.160.5.9" and row["url.path"] == "/dang-nhap"
    assert row["http.response.body.bytes"] == 5120 and row["http.response.status_code"] is None
    assert row["tls.version"] == "1.3" and row["tls.version_protocol"] == "tls"
    assert row["tls.cipher"] == "TLS_AES_256_GCM_SHA384" and row["event.outcome"] is None
    assert row["event.dataset"] == "apache.access"


def test_third_quoted_field_that_is_not_an_address_list_stays_in_the_tail():
    row = one(f'10.20.0.4 - - {CORE} "PHPSESSID=ab12; lang=vi"\n')
    assert row["http.request.x_forwarded_for"] is None and row["network.forwarded_ip"] is None
    assert row["web_access.tail"] == '"PHPSESSID=ab12; lang=vi"'
    row = one(f'10.20.0.4 - - {CORE} "unknown, 198.51.100.7"\n')
    assert row["http.request.x_forwarded_for"] == "unknown, 198.51.100.7" and row["network.forwarded_ip"] is None


def test_client_written_as_dash_is_still_a_request():
    """A LogFormat that starts with %{X-Forwarded-For}i writes '-' where the header was absent."""
    row = one(f'- - - {CORE}\n')
    assert row["source.address"] is None and row["source.ip"] is None
    assert row["http.response.status_code"] == 403 and row["url.path"] == "/portal/login"


def test_forwarded_list_then_a_separate_client():
    """``$host $http_x_forwarded_for $remote_addr - $remote_user``: the list, unquoted, then the peer."""
    row = one(f'portal.example.gov.vn 198.51.100.77, 10.20.0.9 10.20.0.4 - - {CORE}\n')
    assert row["source.ip"] == "10.20.0.4" and row["url.domain"] == "portal.example.gov.vn"
    assert row["http.request.x_forwarded_for"] == "198.51.100.77, 10.20.0.9"
    assert row["network.forwarded_ip"] == "198.51.100.77"
