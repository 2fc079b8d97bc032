"""The DNS detectors (soc-dga-domains, soc-dns-tunnel: ``soc.detect.domains``) and our Sigma rule for long
encoded labels: real DGA and tunnel shapes are found, real CDN/cloud names and Vietnamese government names
are not, resolvers forwarding their clients' queries are not taken for the clients, and on the shared Zeek
capture (21 minutes of a real network) nothing fires.

The DGA names are published outputs of the malware's algorithms (Johannes Bader's re-implementations and
analyses, johannesbader.ch); the tunnel names are built as the tools build them (iodine: a user-id hex
character, base32 with iodine's alphabet ``a-z0-5``, a dot every 57 characters; dnscat2: hex).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from soc.content import content_dir
from soc.detect.domains import NameRule, label_bits, random_label, read_allowlist, split_name
from soc.detect.runner import DetectorRunner
from soc.detect.specs import apply_settings, default_specs
from tests.conftest import parse_text

TS = pl.Datetime("us", "UTC")
START = datetime(2026, 12, 7, 8, tzinfo=UTC)

DGA = {  # family: labels of its published example domains (8 characters or more)
    "ramnit": ["knpqxlxcwtlvgrdyhd.com", "nvlyffua.com", "hgyudheedieibxy.com", "anrylixwcbnjopdd.com",
               "vrndmdrdrjoff.com", "jhghrlufoh.com", "tqjhvylf.com", "hufqifjq.com", "itktxexjghvvxa.com"],
    "necurs": ["nccojqvabqvkiwhj.mx", "hoedwwwywnmmbi.ac", "mfffpmgtplxbyagbtegh.com", "thlxuwnadtdtsm.biz",
               "edkomqpeufjyafccj.in", "mxomklaqau.pw"],
    "chinad": ["8f6bacmw30xxv6sc.cn", "486txu3yjly0xcmz.ru", "xmi6x8zg9rkanmyo.info", "kz89iy97c7n7vbur.biz"],
    "corebot": ["lkhylm0mhyfuhg.ddns.net", "s63234wluv5v365bwp5.ddns.net", "afe6mfy23xcxgfa.ddns.net"],
    "dircrypt": ["mluztamhnngwgh.com", "mycojenxktsmozzthdv.com", "inbxvqkegoyapgv.com", "zrkdvzjhse.com"],
    "qakbot": ["bqkrtxgkmriwsiwcngtivpx.info", "jdtmfupdyueqeldvhsjzdvzob.net", "guhmpoxzivhba.com"],
    "newgoz": ["xzz3ug32bale1uo60y7xj6rge.com", "1hyzmw3l2phycet88hzr2do34.net", "2ppq821cfem5m1mdua46pxg7bj.biz"],
    "sharkbot": ["64f30398ecda3bbf.xyz", "f008fc473fddedc4.live", "cfbadaf0cd7b0ac3.com"],
    "tinba": ["nvfowikhevmy.com", "sjhuqlwrqhqx.com"],
    "zloader": ["gdurfdsywubjaaqcqhrh.com", "vudktykcecigekhtwwqn.com", "jcaofaekffeojktmpdax.com"],
}
ORDINARY = [  # registrable labels that must not look random
    "superantispyware", "webflowmetrics", "githubusercontent", "windowsupdate", "stackoverflow", "spiceworks",
    "dichvucong", "thanhhoa", "quangninh", "chinhphu", "baochinhphu", "vietnamnet", "vietcombank", "thanhnien",
    "hochiminhcity", "nhandan", "mobifone", "vnexpress", "microsoft", "facebook",
]
PROVINCES = [  # provincial portals (<label>.gov.vn), 8 letters or more
    "hochiminhcity", "thuathienhue", "bariavungtau", "quangtri", "ninhthuan", "haiphong", "quangnam",
    "binhduong", "dongthap", "tiengiang", "angiang", "kiengiang", "travinh", "vinhlong", "binhphuoc", "lamdong",
    "quangngai", "binhdinh", "khanhhoa", "binhthuan", "quangbinh", "thanhhoa", "ninhbinh", "namdinh",
    "thaibinh", "haiduong", "bacgiang", "quangninh", "tuyenquang", "dienbien", "thainguyen", "vinhphuc",
]
CDN_NAMES = [  # real CDN / cloud host names (as the shared Zeek capture has them): never suspicious
    "community-cdn-digitalocean-com.global.ssl.fastly.net",
    "a21ed24aedde648804e7-228765c84088fef4ff5e70f2710398e9.r17.cf1.rackcdn.com",
    "d1z2jf7jlzjs58.cloudfront.net", "avatars2.githubusercontent.com",
    "s0100-vpc-399279292.us-east-1.elb.amazonaws.com", "1.0.0.10.in-addr.arpa",
]
IODINE32 = "abcdefghijklmnopqrstuvwxyz012345"


def _specs() -> dict:
    return {s.id: s for s in default_specs()}


def _iodine(rng, domain: str = "t.tunnel-example.net") -> str:
    """An iodine upstream data query: user id (hex), then base32 (iodine's alphabet), a dot every 57."""
    text = "0" + "".join(IODINE32[i] for i in rng.integers(0, 32, 150))
    return ".".join(text[i:i + 57] for i in range(0, len(text), 57)) + "." + domain


def _iodine64(rng, domain: str = "t.tunnel-example.net") -> str:
    """iodine with its base64 codec (upper and lower case letters, digits, - and +)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789+"
    text = "0" + "".join(alphabet[i] for i in rng.integers(0, 64, 150))
    return ".".join(text[i:i + 57] for i in range(0, len(text), 57)) + "." + domain


def _dnscat2(rng, domain: str = "c2.example-corp.org") -> str:
    raw = rng.integers(0, 256, 60).astype(np.uint8).tobytes().hex()
    return ".".join(raw[i:i + 60] for i in range(0, len(raw), 60)) + "." + domain


def test_published_dga_labels_look_random():
    rule = NameRule.of(_specs()["soc-dga-domains"])
    for family, names in DGA.items():
        found = [n for n in names if rule.suspicious(n)]
        assert found == names, (family, sorted(set(names) - set(found)))


def test_ordinary_and_vietnamese_names_do_not():
    rule = NameRule.of(_specs()["soc-dga-domains"])
    for label in ORDINARY + PROVINCES:
        assert not random_label(label, rule.min_length, rule.max_bits, rule.min_switches), (label, label_bits(label))
    assert label_bits("thanhhoa") < 4.0 and label_bits("knpqxlxcwtlvgrdyhd") > 6.0


def test_vietnamese_idn_names_are_read_not_taken_for_random():
    """Punycode looks random (xn--dchvcng-x0a0689dsha); the label is decoded and folded (dichvucong) first."""
    rule = NameRule.of(_specs()["soc-dga-domains"])
    for text in ("dịchvụcông", "thanhhóa", "báođiệntử", "côngthôngtin", "đàlạt", "thànhphốhồchíminh"):
        name = text.encode("idna").decode("ascii") + ".vn"
        assert name.startswith("xn--") and rule.suspicious(name) is None, name


def test_registrable_domain_from_the_public_suffix_list():
    assert split_name("dichvucong.gov.vn") == ("dichvucong.gov.vn", "dichvucong", "")
    assert split_name("sotttt.thanhhoa.gov.vn.") == ("thanhhoa.gov.vn", "thanhhoa", "sotttt")
    assert split_name("www.bbc.co.uk") == ("bbc.co.uk", "bbc", "www")
    assert split_name("lkhylm0mhyfuhg.ddns.net")[1] == "lkhylm0mhyfuhg"  # a dynamic-DNS customer's label
    assert split_name("gov.vn") == ("", "", "")


def test_tunnel_shapes_are_suspicious_and_cdn_names_are_not():
    rng = np.random.default_rng(3)
    rule = NameRule.of(_specs()["soc-dns-tunnel"])
    assert rule.suspicious(_iodine(rng)) == "tunnel-example.net"
    assert rule.suspicious(_dnscat2(rng)) == "example-corp.org"
    assert rule.suspicious(_iodine64(rng)) == "tunnel-example.net"
    for name in CDN_NAMES:
        assert rule.suspicious(name) is None, name
    assert rule.suspicious("_ldap._tcp.default-first-site-name._sites.dc._msdcs.tinh.gov.vn") is None
    # an allowlisted suffix deeper than the registrable domain (update.microsoft.com under microsoft.com)
    assert rule.suspicious("3f9a1c7e5b2d4f6a8c0e1b3d.fe2.update.microsoft.com") is None
    assert rule.suspicious("3f9a1c7e5b2d4f6a8c0e1b3d.fe2.notupdate.microsoft.com") == "microsoft.com"
    dga = NameRule.of(_specs()["soc-dga-domains"])
    assert [n for n in CDN_NAMES if dga.suspicious(n)] == []


def _frame(names, client, t0=0.0, step=5.0, server=None, answered=True) -> pl.DataFrame:
    n = len(names)
    us = ((t0 + step * np.arange(n)) * 1e6).astype(np.int64) + int(START.timestamp() * 1e6)
    out = {"@timestamp": pl.Series(us).cast(TS), "source.ip": [client] * n, "dns.question.name": names,
           "event.action": ["query"] * n, "log.file.path": ["dns.log"] * n, "log.line": list(range(1, n + 1))}
    if server is not None:
        out["destination.ip"] = [server] * n
        out["dns.response_code"] = ["NOERROR" if answered else None] * n
    return pl.DataFrame(out)


def _hits(frames, settings=()) -> pl.DataFrame:
    specs = [s for s in apply_settings(default_specs(), list(settings))
             if s.id in ("soc-dga-domains", "soc-dns-tunnel")]
    runner = DetectorRunner(specs)
    for frame in frames:
        runner.feed(("dns", "zeek.dns"), frame)
    hits = runner.hits()
    assert not runner.failures, runner.failures
    return hits


def _dga_names():
    return [n for names in DGA.values() for n in names]


def test_dga_client_is_found_with_its_domains_as_evidence():
    names = _dga_names()[:25]
    hits = _hits([_frame(names, "10.20.5.9")])
    dga = hits.filter(pl.col("rule.id") == "soc-dga-domains")
    assert dga.get_column("source.ip").to_list() == ["10.20.5.9"]
    assert dga["detector.value"][0] >= 10 and dga["evidence.field"][0] == "dns.question.registered_domain"
    values = dga["evidence.values"][0].to_list()
    assert values and set(values) <= {split_name(n)[0] for n in names}
    assert dga["rule.level"][0] == "medium"
    more = _hits([_frame(_dga_names()[:40], "10.20.5.9", step=2.0)])  # 30+ distinct domains: high
    assert more.filter(pl.col("rule.id") == "soc-dga-domains")["rule.level"][0] == "high"


def test_ordinary_browsing_raises_nothing():
    names = [f"{w}.{tld}" for w in ORDINARY for tld in ("com", "vn", "gov.vn")] + CDN_NAMES * 3
    assert _hits([_frame(names, "10.20.5.10", step=1.0)]).height == 0


def test_resolver_forwarding_its_clients_queries_is_not_the_client():
    """10.20.0.53 answers queries of three clients and forwards an infected client's DGA queries upstream: the
    resolver is learned and left out; without learning it would be taken for the infected host."""
    clients = [_frame(["www.google.com", "dichvucong.gov.vn"], f"10.20.1.{i}", server="10.20.0.53")
               for i in range(3)]
    forwarded = _frame(_dga_names()[:15], "10.20.0.53", server="203.0.113.53")  # under resolver_threshold
    assert _hits([*clients, forwarded]).height == 0
    off = _hits([*clients, forwarded], ["soc-dga-domains.resolver_clients=0"])
    assert off.filter(pl.col("rule.id") == "soc-dga-domains")["source.ip"].to_list() == ["10.20.0.53"]
    named = _hits([forwarded], ["soc-dga-domains.resolvers=[10.20.0.0/24]"])  # named by the analyst
    assert named.filter(pl.col("rule.id") == "soc-dga-domains").height == 0


def test_a_scanned_host_is_not_learned_as_a_resolver():
    """Unanswered queries from scanners do not make a host a resolver (nor hide its own DGA queries)."""
    scans = [_frame(["version.bind"], f"198.51.100.{i}", server="10.20.7.7", answered=False) for i in range(5)]
    infected = _frame(_dga_names()[:25], "10.20.7.7", server="10.20.0.53")
    found = _hits([*scans, infected]).filter(pl.col("rule.id") == "soc-dga-domains")
    assert found["source.ip"].to_list() == ["10.20.7.7"]


@pytest.mark.parametrize(("n", "level"), [(25, "medium"), (150, "high"), (600, "critical")])
def test_tunnel_is_found_and_its_level_follows_the_queries(n, level):
    rng = np.random.default_rng(n)
    names = [_iodine(rng) for _ in range(n)]
    hits = _hits([_frame(names, "10.20.3.77", step=0.5)])
    tun = hits.filter(pl.col("rule.id") == "soc-dns-tunnel")
    assert tun["source.ip"].to_list() == ["10.20.3.77"]
    assert tun["rule.level"][0] == level
    assert tun["evidence.values"][0].to_list() == ["tunnel-example.net"]


def test_dnscat2_tunnel_is_found():
    rng = np.random.default_rng(5)
    hits = _hits([_frame([_dnscat2(rng) for _ in range(30)], "10.20.3.78", step=1.0)])
    assert hits.filter(pl.col("rule.id") == "soc-dns-tunnel")["source.ip"].to_list() == ["10.20.3.78"]


def test_sigma_rule_filters_the_allowlisted_suffixes():
    """rules/dns_tunnel_long_label.yml filters exactly the suffixes of detectors/dns_allowlist.txt."""
    import yaml

    rule = yaml.safe_load((content_dir("rules") / "dns_tunnel_long_label.yml").read_text(encoding="utf-8"))
    listed = rule["detection"]["filter_cdn_cloud_update"]["dns.question.name|endswith"]
    allow = read_allowlist(content_dir("detectors") / "dns_allowlist.txt")
    assert sorted(x.lstrip(".") for x in listed) == sorted(allow)
    assert all(x.startswith(".") for x in listed)


def test_sigma_rule_skips_cdn_hashes_and_keeps_tunnels():
    from tests.test_own_rules import hunt

    dns = ("11/20/2026 10:10:0{i} AM 0B4C PACKET  000000BCE0A3D8DA UDP Rcv 10.20.3.77      055b   Q "
           "[0001   D   NOERROR] A      {name}\n")

    def wire(name: str) -> str:
        return "".join(f"({len(x)}){x}" for x in name.split(".")) + "(0)"

    rng = np.random.default_rng(9)
    names = [CDN_NAMES[1], _iodine(rng), _dnscat2(rng)]
    text = "".join(dns.format(i=i, name=wire(n)) for i, n in enumerate(names))
    found, _ = hunt("dns_tunnel_long_label.yml", "windows_dns_debug", text)
    assert sorted(found["dns.question.name"].to_list()) == sorted(names[1:])


def test_no_dns_alert_on_the_shared_zeek_capture(corpora):
    """21 minutes of a real network's DNS (53 k queries, the site's resolvers forwarding for their clients,
    CDN names): no DGA or tunnel hit. Before the trigram model, allowlist and resolvers: 7 + 2."""
    res = parse_text("zeek", gzip.decompress((corpora / "zeek" / "dns.log.gz").read_bytes()), path="dns.log")
    frames = [f for (family, _), f in res.frames.items() if family == "dns"]
    assert sum(f.height for f in frames) > 50_000
    assert _hits(frames).height == 0


def test_a_misspelt_level_is_reported_not_used():
    specs = [s for s in apply_settings(default_specs(), ["soc-dns-tunnel.levels={hihg: 10}"])
             if s.id == "soc-dns-tunnel"]
    runner = DetectorRunner(specs)
    rng = np.random.default_rng(1)
    runner.feed(("dns", "zeek.dns"), _frame([_iodine(rng) for _ in range(30)], "10.20.3.77", step=1.0))
    assert runner.hits().height == 0
    assert [f.detector for f in runner.failures] == ["soc-dns-tunnel"] and "hihg" in runner.failures[0].reason


def test_suricata_answers_are_not_charged_to_the_server():
    """Suricata logs a query (client -> server) and its answer (server -> client) as two dns events: only the
    query counts, so the client is found and the resolver is not."""
    import json

    lines = []
    for i, name in enumerate(_dga_names()[:25]):
        ts = f"2026-12-07T08:{i // 60:02d}:{i % 60:02d}.000000+0700"
        lines.append(json.dumps({"timestamp": ts, "event_type": "dns", "src_ip": "10.1.1.5", "src_port": 5353,
                                 "dest_ip": "10.1.1.53", "dest_port": 53, "proto": "UDP",
                                 "dns": {"type": "query", "id": i, "rrname": name, "rrtype": "A", "tx_id": 0}}))
        lines.append(json.dumps({"timestamp": ts, "event_type": "dns", "src_ip": "10.1.1.53", "src_port": 53,
                                 "dest_ip": "10.1.1.5", "dest_port": 5353, "proto": "UDP",
                                 "dns": {"version": 2, "type": "answer", "id": i, "flags": "8183", "qr": True,
                                         "rrname": name, "rrtype": "A", "rcode": "NXDOMAIN"}}))
    res = parse_text("suricata_eve", "\n".join(lines) + "\n")
    hits = _hits([f for (family, _), f in res.frames.items() if family == "dns"])
    assert hits.filter(pl.col("rule.id") == "soc-dga-domains")["source.ip"].to_list() == ["10.1.1.5"]


@pytest.mark.parametrize(("n", "found"), [(15, []), (25, ["10.20.0.53"])])
def test_a_resolver_forwarding_very_many_random_names_is_named(n, found):
    """Behind a resolver the sensor cannot see the infected client: past resolver_threshold (20) distinct
    random domains in a window the hit names the resolver; below it the resolver is left out."""
    clients = [_frame(["www.google.com"], f"10.20.1.{i}", server="10.20.0.53") for i in range(3)]
    forwarded = _frame(_dga_names()[:n], "10.20.0.53", step=2.0, server="203.0.113.53")
    hits = _hits([*clients, forwarded])
    assert (hits.filter(pl.col("rule.id") == "soc-dga-domains")["source.ip"].to_list() if hits.height else []) == found


def test_dnscat2_idle_polls_count_and_scattered_hashes_do_not():
    """dnscat2 polls with its 9-byte header alone (18 hex characters) under its domain: counted. The same
    shape spread one name per domain (hashed host names of many sites) stays under min_per_domain."""
    rng = np.random.default_rng(11)
    polls = [rng.integers(0, 256, 9).astype(np.uint8).tobytes().hex() + ".c2.example-corp.org" for _ in range(30)]
    found = _hits([_frame(polls, "10.20.3.79", step=2.0)])
    assert found.filter(pl.col("rule.id") == "soc-dns-tunnel")["source.ip"].to_list() == ["10.20.3.79"]
    scattered = [rng.integers(0, 256, 9).astype(np.uint8).tobytes().hex() + f".site{i}.com" for i in range(30)]
    assert _hits([_frame(scattered, "10.20.3.80", step=2.0)]).height == 0


def test_a_spec_copied_alone_still_finds_the_shipped_allowlist(tmp_path):
    from soc.detect.specs import load_specs

    src = content_dir("detectors") / "dns_tunnel.yml"
    (tmp_path / "dns_tunnel.yml").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    spec = load_specs([tmp_path])[0]
    assert NameRule.of(spec).suspicious(CDN_NAMES[1]) is None  # rackcdn.com: allowlisted
    (tmp_path / "dns_allowlist.txt").write_text("# nothing allowed here\n", encoding="utf-8")
    assert NameRule.of(spec).suspicious(CDN_NAMES[1]) == "rackcdn.com"  # the file beside the spec wins
