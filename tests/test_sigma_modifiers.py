"""Every Sigma modifier and condition form, through pySigma and our backend, on small frames."""

from __future__ import annotations

import base64
import textwrap

import numpy as np
import polars as pl
import pytest

from soc.sigma import ir
from soc.sigma.backend import Builder, Lowered, ipv6_key, ipv6_text_key, run
from soc.sigma.loader import compile_rule
from soc.sigma.modifiers import register as register_modifiers

FRAME = pl.DataFrame({
    "CommandLine": ["powershell.exe -enc AAAA", "CMD.EXE /c whoami", "notepad.exe a*b.txt", "net user admin /add",
                    "x", None],
    "Image": [r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", r"C:\Windows\System32\cmd.exe",
              r"C:\Windows\notepad.exe", r"C:\Windows\System32\net.exe", "abc", None],
    "ParentImage": [r"C:\Windows\explorer.exe", r"C:\Windows\System32\cmd.exe", None, "", "ABC", None],
    "Port": ["445", "80", "3389", "8080", "", None],
    "Bytes": pl.Series([10, 200, 3000, 40000, 0, None], dtype=pl.Int64),
})


def rule(detection: str, placeholders: dict | None = None, logsource: str = "product: windows"):
    from sigma.rule import SigmaRule

    register_modifiers()
    text = f"title: t\nid: 11111111-2222-3333-4444-555555555555\nlogsource:\n  {logsource}\ndetection:\n" + \
        textwrap.indent(textwrap.dedent(detection).strip(), "  ") + "\n"
    return compile_rule(SigmaRule.from_yaml(text), "test.yml", placeholders)


def hits(detection: str, frame: pl.DataFrame = FRAME, placeholders: dict | None = None) -> list[int]:
    """Indices of the rows of ``frame`` the rule matches (Sigma field names are the column names)."""
    compiled = rule(detection, placeholders)
    lowered = Lowered()
    expr = Builder(frame.schema, lambda f: f if f in frame.columns else None, lowered).build(compiled.tree)
    work = frame.with_columns(lowered.columns(frame.schema)).with_row_index("__i")
    result = work.select(expr.alias("m"))["m"]
    assert result.null_count() == 0  # every test is true or false, never null
    got = work.filter(result)["__i"].to_list()
    assert by_program(compiled.tree, work) == got  # what the hunter runs: its leaves, then the program
    return got


def by_program(tree: list, work: pl.DataFrame) -> list[int]:
    """The rows ``Builder.program`` and ``run`` match (``work`` has the lowered copies)."""
    program, leaves = Builder(work.schema, lambda f: f if f in work.columns else None).program(tree)
    values = [work.select(t.alias("t")).to_series().to_numpy() for _, t in leaves]
    assert all(v.dtype == np.bool_ and len(v) == work.height for v in values)  # never null
    got = run(program, values)
    return np.flatnonzero(np.full(work.height, got) if isinstance(got, bool) else got).tolist()


LEAVES = [["str", "CommandLine", "contains", ["exe"], False], ["str", "Image", "suffix", ["\\cmd.exe"], False],
          ["null", "ParentImage"], ["exists", "Missing", True], ["exists", "Missing", False], ["num", "Bytes", [200]],
          ["cmp", "Bytes", "gt", 100], ["str", "Missing", "exact", ["x"], False], ["const", True], ["const", False],
          ["re", "CommandLine", "whoami|user", ""], ["str", "Port", "exact", ["445", "80"], False],
          ["str", None, "contains", ["admin"], False], ["ref", "Image", "ParentImage", "exact"],
          ["ref", "Image", "Missing", "exact"], ["str", "ParentImage", "prefix", ["c:\\", "abc"], False]]


@pytest.mark.parametrize("seed", range(40))
def test_program_gives_what_the_expression_gives(seed):
    """Random and/or/not trees over tests that are null on some rows (missing values, missing fields, constants):
    the leaves' outcomes combined by ``run`` are the rows the one expression (Kleene's logic, filled) matches."""
    import random

    pick = random.Random(seed)

    def tree(depth: int) -> list:
        if depth == 0 or pick.random() < 0.3:
            return pick.choice(LEAVES)
        op = pick.choice(["and", "or", "not"])
        return ["not", tree(depth - 1)] if op == "not" else [op, [tree(depth - 1) for _ in range(pick.randint(1, 3))]]

    for _ in range(10):
        node = tree(4)
        lowered = Lowered()
        expr = Builder(FRAME.schema, lambda f: f if f in FRAME.columns else None, lowered).build(node)
        work = FRAME.with_columns(lowered.columns(FRAME.schema))
        got = work.select(expr.alias("m"))["m"].to_numpy()
        want = np.flatnonzero(np.repeat(got, work.height) if len(got) == 1 else got).tolist()  # a constant: 1 row
        assert by_program(node, work) == want, node


def test_plain_value_is_exact_and_case_insensitive():
    assert hits("sel: {CommandLine: 'cmd.exe /C WHOAMI'}\ncondition: sel") == [1]
    assert hits("sel: {CommandLine: 'cmd.exe'}\ncondition: sel") == []


def test_contains_startswith_endswith():
    assert hits("sel: {CommandLine|contains: 'WHOAMI'}\ncondition: sel") == [1]
    assert hits("sel: {Image|startswith: 'c:\\windows\\system32\\'}\ncondition: sel") == [0, 1, 3]
    assert hits("sel: {Image|endswith: ['\\cmd.exe', '\\net.exe']}\ncondition: sel") == [1, 3]
    assert hits("sel: {Image|endswith: '\\calc.exe'}\ncondition: sel") == []


def test_cased_is_case_sensitive():
    assert hits("sel: {CommandLine|cased|contains: 'CMD.EXE'}\ncondition: sel") == [1]
    assert hits("sel: {CommandLine|cased|contains: 'cmd.exe'}\ncondition: sel") == []


def test_all_needs_every_value():
    assert hits("sel: {CommandLine|contains|all: ['net', 'user', '/add']}\ncondition: sel") == [3]
    assert hits("sel: {CommandLine|contains|all: ['net', 'user', '/delete']}\ncondition: sel") == []


def test_wildcards_and_escapes():
    assert hits("sel: {Image: 'c:\\windows\\\\*.exe'}\ncondition: sel") == [0, 1, 2, 3]  # \\* = \ then *
    assert hits("sel: {Image: 'a?c'}\ncondition: sel") == [4]
    assert hits("sel: {Image: 'a?'}\ncondition: sel") == []
    assert hits("sel: {CommandLine: '*a\\*b*'}\ncondition: sel") == [2]  # escaped star is a star
    assert hits("sel: {CommandLine: '*a\\*c*'}\ncondition: sel") == []
    assert hits("sel: {CommandLine: 'x?'}\ncondition: sel") == []
    frame = pl.DataFrame({"F": ["what?", "whatx", "a.b", "axb"]})
    assert hits("sel: {F: 'what\\?'}\ncondition: sel", frame) == [0]  # escaped question mark
    assert hits("sel: {F: 'a.b'}\ncondition: sel", frame) == [2]  # regex characters are literal


def test_regex_and_flags():
    assert hits("sel: {CommandLine|re: '^cmd\\.exe'}\ncondition: sel") == []  # case-sensitive by default
    assert hits("sel: {CommandLine|re|i: '^cmd\\.exe'}\ncondition: sel") == [1]
    frame = pl.DataFrame({"F": ["first\nsecond", "firstsecond"]})
    assert hits("sel: {F|re: '^second'}\ncondition: sel", frame) == []
    assert hits("sel: {F|re|m: '^second'}\ncondition: sel", frame) == [0]
    assert hits("sel: {F|re: 'first.second'}\ncondition: sel", frame) == []
    assert hits("sel: {F|re|s: 'first.second'}\ncondition: sel", frame) == [0]


def test_regex_the_linear_engine_cannot_run_is_reported():
    with pytest.raises(ir.Unsupported, match="look-around"):
        rule("sel: {CommandLine|re: 'a(?=b)'}\ncondition: sel")


def test_windash_matches_every_dash_variant():
    frame = pl.DataFrame({"CommandLine": ["x -enc y", "x /enc y", "x \u2013enc y", "x \u2014enc y",
                                          "x \u2015enc y", "x enc y"]})
    assert hits("sel: {CommandLine|windash|contains: ' -enc '}\ncondition: sel", frame) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("value,yes,no", [
    ("10.0.0.0/8", ["10.1.2.3", "10.255.255.255"], ["11.0.0.1", "110.0.0.1", "fe80::1"]),
    ("172.16.0.0/12", ["172.16.0.1", "172.31.255.255"], ["172.32.0.0", "172.15.255.255", "172.16.0"]),
    ("192.168.1.128/25", ["192.168.1.128", "192.168.1.255"], ["192.168.1.127", "192.168.2.200"]),
    ("fe80::/10", ["fe80::1", "FEBF:0:0::1", "fe80::1%eth0"], ["fec0::1", "::1", "10.0.0.1"]),
    ("::1/128", ["::1", "0:0:0:0:0:0:0:1"], ["::2", "1::"]),
    ("2001:db8::/32", ["2001:DB8:0:0:8:800:200C:417A", "2001:db8::"], ["2001:db9::1", "2001::db8"]),
    ("::ffff:0:0/96", ["::ffff:10.0.0.1"], ["::fffe:10.0.0.1"]),
])
def test_cidr_ipv4_and_ipv6(value, yes, no):
    frame = pl.DataFrame({"DestinationIp": yes + no})
    assert hits(f"sel: {{DestinationIp|cidr: '{value}'}}\ncondition: sel", frame) == list(range(len(yes)))



IPV6_FORMS = ["::1", "fe80::1%eth0", "FE80::ABCD", "::ffff:1.2.3.4", "::ffff:01.002.3.4", "::ffff:256.1.1.1", "::",
              "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "12345::1",
              "fe80::1%a\nb", "a:b:c:d:e:f:1.2.3.4", "1:2:3:4:5:6:7::", "::1%", "%x", "", "::\u0661.2.3.4", "g::1"]


def test_ipv6_text_key_is_the_expression_key():
    """The per-address Python key gives what the Polars expression gives (tests/ fuzzing compared 32 k texts)."""
    want = pl.DataFrame({"v": IPV6_FORMS}).select(ipv6_key(pl.col("v"))).to_series().to_list()
    assert [ipv6_text_key(v) for v in IPV6_FORMS] == want
    assert want[0] == "0" * 31 + "1" and want[3] == "0" * 20 + "ffff01020304"


def test_cidr_over_more_than_eight_groups():
    """A text of more than 8 groups around ``::`` is no address (the expression's unsigned group count wrapped
    and asked for billions of zeros: the process aborted)."""
    frame = pl.DataFrame({"DestinationIp": ["1:2:3:4:5:6:7:8:9::1", "fe80::1"]})
    assert hits("sel: {DestinationIp|cidr: 'fe80::/10'}\ncondition: sel", frame) == [1]
    assert hits("sel: {DestinationIp|cidr: '::/0'}\ncondition: sel", frame) == [1]

def test_base64_and_base64offset_at_every_offset():
    secret = "http://evil.example/x"
    frame = pl.DataFrame({"CommandLine": [
        base64.b64encode(secret.encode()).decode(),
        "powershell -enc " + base64.b64encode(b"a" + secret.encode()).decode(),
        "powershell -enc " + base64.b64encode(b"ab" + secret.encode()).decode(),
        "powershell -enc " + base64.b64encode(b"abc" + secret.encode()).decode(),
        "powershell -enc " + base64.b64encode(b"nothing here").decode(),
    ]})
    assert hits(f"sel: {{CommandLine|base64: '{secret}'}}\ncondition: sel", frame) == [0]
    assert hits(f"sel: {{CommandLine|base64offset|contains: '{secret}'}}\ncondition: sel", frame) == [0, 1, 2, 3]


@pytest.mark.parametrize("modifier,encoding", [("wide", "utf-16-le"), ("utf16le", "utf-16-le"),
                                               ("utf16be", "utf-16-be"), ("utf16", "utf-16")])
def test_utf16_variants_with_base64offset(modifier, encoding):
    word = "Invoke-Mimikatz"
    payloads = [base64.b64encode(pad + word.encode(encoding)).decode() for pad in (b"", b"\x00", b"\x00\x00")]
    other = base64.b64encode("Invoke-Other".encode(encoding)).decode()
    frame = pl.DataFrame({"CommandLine": [f"powershell -e {p}" for p in payloads] + [f"powershell -e {other}"]})
    found = hits(f"sel: {{CommandLine|{modifier}|base64offset|contains: '{word}'}}\ncondition: sel", frame)
    assert found == [0, 1, 2]


def test_fieldref():
    assert hits("sel: {ParentImage|fieldref: Image}\ncondition: sel") == [1, 4]  # abc == ABC: case-insensitive
    assert hits("sel: {ParentImage|fieldref: NoSuchField}\ncondition: sel") == []
    frame = pl.DataFrame({"A": ["c:\\x\\y.exe", "c:\\z"], "B": ["c:\\x", "c:\\q"]})
    assert hits("sel: {A|fieldref|startswith: B}\ncondition: sel", frame) == [0]


def test_exists_true_and_false():
    assert hits("sel: {ParentImage|exists: true}\ncondition: sel") == [0, 1, 3, 4]
    assert hits("sel: {ParentImage|exists: false}\ncondition: sel") == [2, 5]
    assert hits("sel: {NoSuchField|exists: true}\ncondition: sel") == []
    assert hits("sel: {NoSuchField|exists: false}\ncondition: sel") == [0, 1, 2, 3, 4, 5]


def test_null_and_empty_values():
    assert hits("sel: {ParentImage: null}\ncondition: sel") == [2, 5]
    assert hits("sel: {ParentImage: ''}\ncondition: sel") == [3]
    assert hits("sel: {NoSuchField: null}\ncondition: sel") == [0, 1, 2, 3, 4, 5]
    assert hits("sel: {Image: '*'}\ncondition: sel") == [0, 1, 2, 3, 4]  # any value, not null


def test_missing_field_matches_nothing_and_its_negation_everything():
    assert hits("sel: {NoSuchField|contains: 'x'}\ncondition: sel") == []
    assert hits("sel: {NoSuchField|contains: 'x'}\ncondition: not sel") == [0, 1, 2, 3, 4, 5]


def test_compare_on_text_and_numeric_columns():
    assert hits("sel: {Port|gt: 1000}\ncondition: sel") == [2, 3]
    assert hits("sel: {Port|lte: 445}\ncondition: sel") == [0, 1]
    assert hits("sel: {Bytes|gte: 3000}\ncondition: sel") == [2, 3]
    assert hits("sel: {Bytes|lt: 10}\ncondition: sel") == [4]


def test_numbers_compare_with_text_and_numbers():
    assert hits("sel: {Port: 445}\ncondition: sel") == [0]
    assert hits("sel: {Bytes: [200, 40000]}\ncondition: sel") == [1, 3]


def test_keywords_search_every_text_column():
    assert hits("keywords: ['whoami', 'NOTEPAD']\ncondition: keywords") == [1, 2]
    assert hits("keywords: ['explorer.exe']\ncondition: keywords") == [0]  # in ParentImage
    assert hits("keywords: ['no such thing']\ncondition: keywords") == []
    frame = pl.DataFrame({"message": ["Accepted password for root", "Failed password for bob"]})
    assert hits("keywords: ['Failed password for *']\ncondition: keywords", frame) == [1]
    assert hits("keywords: {'|all': ['failed', 'bob']}\ncondition: keywords", frame) == [1]


def test_conditions_of_selections():
    detection = """
        sel_a: {Image|endswith: '\\cmd.exe'}
        sel_b: {Image|endswith: '\\net.exe'}
        filter: {CommandLine|contains: 'admin'}
        condition: 1 of sel_* and not filter
    """
    assert hits(detection) == [1]
    assert hits("sel_1: {Image|contains: 'windows'}\nsel_2: {CommandLine|contains: 'exe'}\ncondition: all of them"
                ) == [0, 1, 2]
    assert hits("a: {Port: '80'}\nb: {Port: '445'}\ncondition: (a or b) and not 1 of c*\nc1: {Bytes: 10}") == [1]


def test_list_of_maps_is_or():
    assert hits("sel:\n  - {Port: '80'}\n  - {Port: '3389'}\ncondition: sel") == [1, 2]


def test_expand_placeholders_from_the_config():
    detection = "sel: {ParentImage|expand: '%admin_tools%'}\ncondition: sel"
    assert hits(detection, placeholders={"admin_tools": ["c:\\windows\\explorer.exe", "abc"]}) == [0, 4]
    with pytest.raises(ir.Unsupported, match="placeholder %admin_tools% has no value"):
        rule(detection)


def test_event_ids_pinned_by_the_detection():
    tree = rule("sel: {EventID: [4624, 4625], LogonType: 3}\ncondition: sel").tree
    assert ir.pinned(tree, "EventID") == {4624, 4625}
    tree = rule("a: {EventID: 4624}\nb: {LogonType: 3}\ncondition: a or b").tree
    assert ir.pinned(tree, "EventID") is None  # b matches any event id
    tree = rule("a: {EventID: 4624}\nb: {EventID: 4625}\ncondition: a and not b").tree
    assert ir.pinned(tree, "EventID") == {4624}
