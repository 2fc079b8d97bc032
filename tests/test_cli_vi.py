"""The command line in Vietnamese (``soc --lang vi``, ``SOC_LANG``, a ``vi*`` locale) and, by default, in the
English it has always printed: the same run, the same numbers, only the human text and the number convention
change (exit codes, JSON and option names do not)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LOCALE_VARS = ("SOC_LANG", "LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE")
SIGMA_EN = re.compile(r"Sigma: ([\d,]+) matches of ([\d,]+) rules \(([\d,]+) loaded\) in ([\d,]+) events")
SIGMA_VI = re.compile(r"Sigma: ([\d.]+) kết quả khớp của ([\d.]+) quy tắc \(đã nạp ([\d.]+)\) trong ([\d.]+) sự kiện")


def soc(*args: str, cwd, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in LOCALE_VARS and k != "SOC_CONFIG"}
    return subprocess.run([sys.executable, "-m", "soc", *args], capture_output=True, text=True, cwd=cwd,
                          env={**base, "COLUMNS": "200", **env}, timeout=300, check=False)


def hunt(tmp_path, name: str, *args: str, after: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """``soc hunt sample_logs/`` in a folder of its own (the same relative data folder: the same output)."""
    cwd = tmp_path / name
    cwd.mkdir()
    res = soc(*args, "hunt", str(ROOT / "sample_logs"), "--data-dir", "soc-data", *after, cwd=cwd, **env)
    assert res.returncode == 0, res.stderr
    return res


def steady(text: str) -> str:
    """``text`` without the speeds of the summary table (records/s and MB/s: the last two cells of its rows)."""
    lines, table = [], True
    for line in text.splitlines():
        if table and line.startswith("│"):
            line = re.sub(r"│[^│]*│[^│]*│$", "│", line)
        if line.startswith("read, parsed") or line.startswith("đã đọc, đã phân tích"):
            table = False
        lines.append(line)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vi")
    return {
        "default": hunt(tmp, "default"),
        "en": hunt(tmp, "en", "--lang", "en", LANG="vi_VN.UTF-8"),
        "soc_lang_en": hunt(tmp, "soc_lang_en", SOC_LANG="en", LANG="vi_VN.UTF-8"),
        "vi": hunt(tmp, "vi", "--lang", "vi"),
        "locale_vi": hunt(tmp, "locale_vi", LANG="vi_VN.UTF-8"),
    }


def test_english_is_what_it_was(runs):
    default = runs["default"].stdout
    for name in ("en", "soc_lang_en"):  # --lang en and SOC_LANG=en win over a Vietnamese locale
        assert steady(runs[name].stdout) == steady(default), name
    assert "┃ input " in default and "dead-lettered" in default and "\n┃ level " in default
    assert "read, parsed, dead-lettered: records (a line of a text log" in default
    assert SIGMA_EN.search(default) and re.search(r"\n[\d,]+ alerts \([\d,]+ new\) in soc-data/alerts/\n", default)
    assert "đ" not in default and "ả" not in default


def test_vietnamese_headings_messages_and_numbers(runs):
    vi, en = runs["vi"].stdout, runs["default"].stdout
    assert steady(runs["locale_vi"].stdout) == steady(vi)  # LANG=vi_VN.UTF-8 alone: Vietnamese too
    for text in ("┃ đầu vào ", "┃ định dạng ", "┃ đã đọc ┃", "┃ không phân tích được ┃", "┃ khoảng thời gian ",
                 "│ tổng ", "đã đọc, đã phân tích, không phân tích được: số bản ghi",
                 "┃ mức độ ", "┃ quy tắc ", "┃ bộ phát hiện ", "┃ đối tượng ", "┃ bằng chứng ",
                 "kết quả khớp lưu tại soc-data/sigma_matches/",
                 "kết quả của bộ phát hiện lưu tại soc-data/detector_hits/"):
        assert text in vi, text
    for text in ("┃ input ", "dead-lettered", "matches kept in", "alerts (", "Detectors:"):
        assert text not in vi, text
    # the same counts, written 2,794 in English and 2.794 in Vietnamese
    counts_en, counts_vi = SIGMA_EN.search(en).groups(), SIGMA_VI.search(vi).groups()
    assert [c.replace(",", ".") for c in counts_en] == list(counts_vi)
    assert int(counts_en[3].replace(",", "")) >= 1000 and "." in counts_vi[3]  # a grouped number, grouped with "."
    total_en = re.search(r"│ total +│ +│ +([\d,]+) │", en).group(1)
    assert re.search(rf"│ tổng +│ +│ +{re.escape(total_en.replace(',', '.'))} │", vi)
    alerts = re.search(r"\n([\d,]+) alerts \(([\d,]+) new\) in soc-data/alerts/\n", en).groups()
    assert f"\n{alerts[0]} cảnh báo ({alerts[1]} mới) tại soc-data/alerts/\n" in vi
    # the machine's words are not translated: levels, rule names, ids
    assert "│ high " in vi and "SSH Brute Force From One Source" in vi


def test_json_is_the_same_in_both_languages(tmp_path):
    runs = [hunt(tmp_path, lang, "--lang", lang, after=("--no-detectors", "--json")) for lang in ("en", "vi")]
    en, vi = (json.loads(r.stdout) for r in runs)
    for report in (en, vi):
        for st in report["files"]:
            st.pop("seconds", None)
    assert en["files"] == vi["files"] and en["sigma"] == vi["sigma"]
    assert en["alerts"]["alerts"] == vi["alerts"]["alerts"] > 0


def test_usage_errors_in_vietnamese(tmp_path):
    res = soc("--lang", "vi", "hunt", cwd=tmp_path)
    assert res.returncode == 2
    assert "Cách dùng: python -m soc hunt [OPTIONS] INPUTS..." in res.stderr
    assert "Lỗi: Thiếu đối số 'INPUTS...'." in res.stderr
    res = soc("hunt", "x", "--workers", "0", cwd=tmp_path, LANG="vi_VN.UTF-8")
    assert res.returncode == 2
    assert "Lỗi: Giá trị không hợp lệ cho '--workers': số tiến trình (từ 1 trở lên) hoặc auto" in res.stderr
    res = soc("--lang", "vi", "export", "stix", "--taxii", "http://127.0.0.1:9/", cwd=tmp_path)
    assert res.returncode == 2 and "Lỗi: --taxii và --collection phải dùng cùng nhau" in res.stderr
    res = soc("jobs", "list", cwd=tmp_path, SOC_LANG="vi")
    assert res.returncode == 2 and "không có [[jobs]] trong cấu hình (không tìm thấy soc.toml)" in res.stderr
    # the same errors in English, as before
    res = soc("export", "stix", "--taxii", "http://127.0.0.1:9/", cwd=tmp_path, LANG="vi_VN.UTF-8", SOC_LANG="en")
    assert res.returncode == 2 and "Error: --taxii and --collection go together" in res.stderr
    assert "Usage: python -m soc export stix [OPTIONS]" in res.stderr
    res = soc("hunt", cwd=tmp_path, SOC_LANG="fr")
    assert res.returncode == 2 and "unknown language 'fr'" in res.stderr


def test_vietnamese_numbers():
    from soc import i18n

    try:
        i18n.use("vi")
        assert (i18n.number(1234567), i18n.number(1234.56, 1), i18n.number(1234.56, 1, group=False)) == (
            "1.234.567", "1.234,6", "1234,6")
        assert i18n._("total") == "tổng" and i18n._("no such message id") == "no such message id"
        i18n.use("en")
        assert (i18n.number(1234567), i18n.number(1234.56, 1), i18n.number(1234.56, 1, group=False)) == (
            "1,234,567", "1,234.6", "1234.6")
        assert i18n._("total") == "total"
    finally:
        i18n.use("en")


def test_the_cli_messages_are_in_the_catalog_check():
    """tests/test_report.py's completeness test covers the command line: its ids are extracted (click's own
    words included), every one has a Vietnamese translation, with the same {name} fields as the id."""
    from babel.messages.pofile import read_po

    from soc.i18n import extract, po_path

    ids = extract()
    cli = {m for m, (where, _line) in ids.items()
           if where.startswith("cli") or where.replace(os.sep, "/") == "sinks/terminal.py"}
    assert {"rule level", "total", "Usage:", "Error: {message}", "%(n)s alerts in %(path)s",
            "--taxii and --collection go together", "never ran"} <= cli
    assert len(cli) > 80
    with open(po_path("vi"), "rb") as fh:
        catalog = read_po(fh, locale="vi")
    for msgid in cli:
        message = catalog.get(msgid)
        assert message is not None and message.string, msgid
        assert sorted(re.findall(r"\{[^}]*\}", message.string)) == sorted(re.findall(r"\{[^}]*\}", msgid)), msgid


# -- the library's messages an analyst meets in a hunt: Vietnamese with --lang vi, the old English otherwise ----

TRIED = ("apache_error, bind_query, bind_query_file, cef, cisco_asa, fortigate, iis_w3c, iptables, nginx_error, "
         "nxlog_windows, postfix, squid, suricata_eve, syslog, web_access, windows_dns_debug, windows_evtx, "
         "winlogbeat, zeek, zeek_json")


def _bad_hunt(tmp_path, name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``soc hunt`` of a folder holding a README only (a format soc does not know), in a folder of its own."""
    cwd = tmp_path / name
    (cwd / "logs").mkdir(parents=True)
    (cwd / "logs" / "README.txt").write_text("these are the logs of the mail server\n")
    return soc(*args, "--data-dir", "soc-data", cwd=cwd, **env)


def test_skipped_inputs_in_vietnamese(tmp_path):
    vi = _bad_hunt(tmp_path, "vi", "--lang", "vi", "hunt", "logs", "--no-detectors")
    assert vi.returncode == 2
    assert ("chú ý: logs/README.txt: bỏ qua: không nhận ra định dạng (đã thử: " + TRIED
            + "); hãy chỉ định bằng --format\n") in vi.stderr
    assert ("lỗi: không đầu vào nào có định dạng soc biết: không đọc được gì (hãy chỉ định định dạng bằng "
            "--format)\n") in vi.stderr
    assert "skipped" not in vi.stderr and "nothing was read" not in vi.stderr
    # the summary table's row for the skipped input: its reason in Vietnamese too
    assert "bỏ qua" in vi.stdout and "không nhận ra định dạng" in vi.stdout and "not recognised" not in vi.stdout
    strict = _bad_hunt(tmp_path, "strict", "--lang", "vi", "hunt", "logs", "--strict", "--no-detectors")
    assert strict.returncode == 2 and "lỗi: logs/README.txt: không nhận ra định dạng (đã thử: " in strict.stderr
    default = _bad_hunt(tmp_path, "default", "hunt", "logs", "--no-detectors")
    assert default.returncode == 2
    assert default.stderr == (
        "warning: logs/README.txt: skipped: format not recognised (tried: " + TRIED + "); name it with --format\n"
        "error: no input is in a format soc knows: nothing was read (name one with --format)\n")
    en = _bad_hunt(tmp_path, "en", "--lang", "en", "hunt", "logs", "--no-detectors", LANG="vi_VN.UTF-8")
    assert (en.returncode, en.stderr) == (2, default.stderr)
    assert "format not recognised" in default.stdout and "(tried:" not in default.stdout
    # the JSON keeps the reason in English (data, the same in both languages)
    js = _bad_hunt(tmp_path, "json", "--lang", "vi", "hunt", "logs", "--json", "--no-detectors")
    assert json.loads(js.stdout)["files"][0]["skipped"].startswith("format not recognised (tried: apache_error")


@pytest.mark.parametrize("args, vi_text, en_text", [
    (("hunt", "nonexistent"), "Lỗi: không có tệp, thư mục hay mẫu glob nào khớp: nonexistent\n",
     "Error: no such file, directory or glob match: nonexistent\n"),
    (("hunt", "logs", "--set", "nosuch.param=1"),
     "Lỗi: thiết lập 'nosuch.param=1': không có bộ phát hiện 'nosuch' (các bộ phát hiện có: soc-c2-beaconing, ",
     "Error: setting 'nosuch.param=1': no detector 'nosuch' (known: soc-c2-beaconing, "),
    (("hunt", "logs", "--set", "nosuch"), "Lỗi: thiết lập 'nosuch' không hợp lệ (cần dạng detector.param=value)\n",
     "Error: bad setting 'nosuch' (expected detector.param=value)\n"),
    (("hunt", "logs", "--format", "nosuch"),
     "Lỗi: không biết định dạng 'nosuch' (các định dạng có: " + TRIED + ")\n",
     "Error: unknown format 'nosuch' (known: " + TRIED + ")\n"),
    (("hunt", "logs", "--rules", "no-rules-here"), "Lỗi: không có quy tắc Sigma nào tại no-rules-here\n",
     "Error: no Sigma rules at no-rules-here\n"),
])
def test_usage_errors_of_a_hunt_in_vietnamese(tmp_path, args, vi_text, en_text):
    vi = _bad_hunt(tmp_path, "vi", "--lang", "vi", *args)
    assert vi.returncode == 2 and vi_text in vi.stderr and "Cách dùng: python -m soc hunt" in vi.stderr, vi.stderr
    default = _bad_hunt(tmp_path, "default", *args)
    assert default.returncode == 2 and en_text in default.stderr, default.stderr
    en = _bad_hunt(tmp_path, "en", "--lang", "en", *args, LANG="vi_VN.UTF-8")
    assert (en.returncode, en.stderr) == (2, default.stderr)


def test_configuration_errors_and_rules_summaries_in_vietnamese(tmp_path):
    (tmp_path / "bad.toml").write_text("foo = 1\n")
    vi = soc("--lang", "vi", "jobs", "list", "--config", "bad.toml", cwd=tmp_path)
    assert vi.returncode == 2 and ("Lỗi: bad.toml: không biết thiết lập 'foo' (các thiết lập có: data_dir, [alerts], "
                                   "[elasticsearch], [[jobs]])\n") in vi.stderr, vi.stderr
    default = soc("jobs", "list", "--config", "bad.toml", cwd=tmp_path)
    assert default.returncode == 2 and default.stderr.endswith(
        "Error: bad.toml: unknown setting 'foo' (known: data_dir, [alerts], [elasticsearch], [[jobs]])\n")
    vi = soc("--lang", "vi", "rules", "check", cwd=tmp_path)  # soc's own rules: all load
    en = soc("rules", "check", cwd=tmp_path)
    assert vi.returncode == en.returncode == 0, en.stdout + en.stderr
    n, files = re.fullmatch(r"([\d,]+) rules loaded from ([\d,]+) files; 0 did not load \(0 for known reasons\)\n",
                            en.stdout).groups()
    assert vi.stdout == f"đã nạp {n} quy tắc từ {files} tệp; 0 quy tắc không nạp được (0 vì lý do đã biết)\n"
