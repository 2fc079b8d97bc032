"""soc report: the vi/en catalogs, the periods, the rise/drop flags, and the page itself opened in a real headless
Chromium (Debian's ``chromium``) driven over the DevTools protocol (``--remote-debugging-pipe``): no console
error, no network request, not blank, Vietnamese headings; a screenshot kept in test-artifacts/; the PDF has
pages (``pdftoppm``). Without Chromium or pdftoppm the browser tests skip, and fail under CI=true.

Why the browser check is sound: the driver records every ``Network.requestWillBeSent`` other than the page
itself, every console error, uncaught exception and browser log error (a request the page's CSP refuses is
one); ``test_driver_sees_requests_and_errors`` shows it catches a planted image request, a console error and a
CSP refusal. The report's store also holds an alert whose rule name and addresses are HTML with an ``<img>``
and a script: unescaped, they would make a request or an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import IN_CI, ROOT

ARTIFACTS = ROOT / "test-artifacts"
DAY = date(2026, 11, 20)  # the sample logs' day
EVIL = '<img src="http://127.0.0.1:9/pwn.png" onerror="console.error(\'xss\')"><script>console.error("xss")</script>'
INVENTORY = """match,agency,agency_id,system,security_level,owner
portal-web01;10.20.0.0/24,Sở Khoa học và Công nghệ,skhcn,Cổng thông tin điện tử,3,Phòng CNTT
10.20.3.0/24;10.20.1.0/24,Văn phòng UBND tỉnh,vpubnd,Hệ thống quản lý văn bản và điều hành,4,Trung tâm Tin học
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found (Debian: apt-get install -y chromium poppler-utils)"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: prerequisites must be present)")
    pytest.skip(message)


# --- the catalogs -------------------------------------------------------------------------------------------


def test_every_message_has_a_vietnamese_translation():
    from babel.messages.pofile import read_po

    from soc.i18n import extract, po_path

    ids = extract()
    assert len(ids) > 80 and "Alerts by severity" in ids and "report written to %(path)s" in ids
    with open(po_path("vi"), "rb") as fh:
        catalog = read_po(fh, locale="vi")
    missing = [f"{msgid!r} ({where}:{line})" for msgid, (where, line) in ids.items()
               if not (catalog.get(msgid) and catalog.get(msgid).string)]
    assert not missing, "no Vietnamese translation (run `python -m soc.i18n`, then translate):\n" + "\n".join(missing)
    for msgid in ids:  # the same %(name)s placeholders, or formatting breaks in one language only
        assert sorted(_placeholders(catalog.get(msgid).string)) == sorted(_placeholders(msgid)), msgid


def _placeholders(text: str) -> list[str]:
    return re.findall(r"%\((\w+)\)s", text) + re.findall(r"\{(\w+)[!:]?\w*\}", text)  # also click's {name!r}


def test_language_choice():
    from soc.i18n import gettext_for, resolve_lang

    assert resolve_lang("en", {"SOC_LANG": "vi"}) == "en"
    assert resolve_lang(None, {"SOC_LANG": "vi", "LANG": "en_US.UTF-8"}) == "vi"
    assert resolve_lang(None, {"LANG": "vi_VN.UTF-8"}) == "vi"
    assert resolve_lang(None, {"LC_ALL": "C.UTF-8", "LANG": "vi_VN.UTF-8"}) == "en"  # LC_ALL first, as in libc
    assert resolve_lang(None, {}) == "en"
    with pytest.raises(ValueError, match="unknown language"):
        resolve_lang("fr", {})
    assert gettext_for("vi")("Alerts by severity") == "Cảnh báo theo mức độ nghiêm trọng"
    assert gettext_for("en")("Alerts by severity") == "Alerts by severity"


def test_numbers_and_dates_in_the_readers_convention():
    from soc.report.render import environment

    moment = datetime(2026, 11, 20, 3, 4, tzinfo=UTC)  # 10:04 in Vietnam
    vi, en = environment("vi").filters, environment("en").filters
    assert vi["num"](1234.5) == "1.234,5" and en["num"](1234.5) == "1,234.5"
    assert vi["date"](moment) == "20/11/2026" and vi["time"](moment) == "10:04 20/11/2026"
    assert en["date"](moment) == "2026-11-20"
    assert vi["pct"](0.125) == "12,5%" and vi["sev"]("high") == "cao" and vi["sev"]("<b>") == "<b>"


# --- periods and flags --------------------------------------------------------------------------------------


def test_calendar_periods_in_vietnam_time():
    from soc.report.period import ZONE, calendar_period, custom_period

    day = calendar_period("day", DAY)
    assert day.start == datetime(2026, 11, 20, tzinfo=ZONE) and day.start.astimezone(UTC).hour == 17
    assert day.previous().start == datetime(2026, 11, 19, tzinfo=ZONE) and day.hourly
    week = calendar_period("week", DAY)  # a Friday: its ISO week starts on Monday the 16th
    assert (week.start.day, week.end.day, week.hourly) == (16, 23, False)
    month = calendar_period("month", date(2026, 3, 31))
    assert (month.start.date(), month.end.date()) == (date(2026, 3, 1), date(2026, 4, 1))
    assert (month.previous().start.date(), month.previous().end.date()) == (date(2026, 2, 1), date(2026, 3, 1))
    dec = calendar_period("month", date(2026, 12, 5))
    assert dec.end.date() == date(2027, 1, 1)
    with pytest.raises(ValueError):
        custom_period(datetime(2026, 1, 2), datetime(2026, 1, 1))


def test_rises_drops_and_spikes():
    from soc.report.data import flag, series
    from soc.report.period import ZONE, calendar_period

    assert flag(10, 4) == "rise" and flag(10, 5) == "rise" and flag(9, 5) is None
    assert flag(4, 0) is None and flag(5, 0) == "rise" and flag(3, 6) == "drop" and flag(4, 6) is None
    day = calendar_period("day", DAY)
    stamps = [datetime(2026, 11, 20, h, 30, tzinfo=ZONE).astimezone(UTC) for h in range(24) for _ in range(6)]
    stamps += [datetime(2026, 11, 20, 14, 10, tzinfo=ZONE).astimezone(UTC)] * 30  # hour 14: 36
    stamps = [s for s in stamps if s.astimezone(ZONE).hour != 3]  # hour 3: 0
    rows = series(pl.DataFrame({"@timestamp": stamps}, schema={"@timestamp": pl.Datetime("us", "UTC")}), day)
    assert len(rows) == 24 and sum(r["count"] for r in rows) == len(stamps)
    assert {r["start"].hour: r["flag"] for r in rows if r["flag"]} == {14: "spike", 3: "drop"}


# --- the report of sample_logs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """``soc hunt sample_logs/`` with an inventory, plus one alert whose text is an attacker's HTML."""
    from soc.alerts.schema import conform
    from soc.config import load_config
    from soc.hunt import HuntRequest, run_hunt
    from soc.sinks.alert_store import AlertStore

    root = tmp_path_factory.mktemp("report")
    (root / "assets.csv").write_text(INVENTORY, encoding="utf-8")
    cfg = load_config(env={"SOC_INVENTORY": str(root / "assets.csv")})
    report = run_hunt(HuntRequest(inputs=[str(ROOT / "sample_logs")], data_dir=str(root / "data"), config=cfg))
    assert report.exit_code == 0 and report.delivery.stored_new > 20
    evil = {"@timestamp": datetime(2026, 11, 20, 6, 0, tzinfo=UTC), "event.id": "evil", "event.kind": "alert",
            "event.severity": 4, "labels.severity": "high", "labels.layer": "2", "rule.id": "evil-rule",
            "rule.name": EVIL, "source.address": EVIL, "organization.name": EVIL, "log.file.path": EVIL,
            "log.line": 7, "event.count": 1, "threat.technique.id": [EVIL], "evidence.values": [EVIL]}
    assert AlertStore(root / "data").append(conform(pl.DataFrame([evil]))) == 1
    return root / "data"


@pytest.fixture(scope="module")
def reports(data_dir, tmp_path_factory) -> dict:
    """The day report of the sample in vi and en, through the CLI, with the PDF of the Vietnamese one."""
    from click.testing import CliRunner

    from soc.cli import main

    out = tmp_path_factory.mktemp("pages")
    have_chromium = shutil.which("chromium") is not None
    pages = {}
    for lang in ("vi", "en"):
        args = ["report", "--data-dir", str(data_dir), "--period", "day", "--date", DAY.isoformat(), "--lang", lang,
                "-o", str(out / f"report-{lang}.html")]
        if lang == "vi" and have_chromium:
            args += ["--pdf", str(out / "report-vi.pdf")]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        pages[lang] = out / f"report-{lang}.html"
        pages[lang + "_output"] = result.output
    return pages


def test_report_content(reports, data_dir):
    from soc.sinks.alert_store import AlertStore

    vi = reports["vi"].read_text(encoding="utf-8")
    en = reports["en"].read_text(encoding="utf-8")
    stored = AlertStore(data_dir).scan().collect()
    in_day = stored.filter((pl.col("@timestamp") >= datetime(2026, 11, 19, 17, tzinfo=UTC))
                           & (pl.col("@timestamp") < datetime(2026, 11, 20, 17, tzinfo=UTC))).height
    assert in_day == stored.height  # the sample is one day: all of it in the report
    assert reports["vi_output"].startswith(f"{in_day} cảnh báo (kỳ trước: 0)")
    assert reports["en_output"].startswith(f"{in_day} alerts (previous period: 0)")
    for heading in ("Cảnh báo theo mức độ nghiêm trọng", "Tổng hợp cho lãnh đạo", "Cấp độ hệ thống",
                    "Lớp 1: Nội dung lực lượng tại chỗ", "Lớp 3: Phạm vi phát hiện phục vụ kiểm tra, đánh giá độc lập",
                    "Lớp 4: Thông tin chia sẻ với hệ thống giám sát quốc gia", "Tình trạng nguồn nhật ký"):
        assert heading in vi, heading
    assert "Alerts by severity" in en and "Cảnh báo theo mức độ" not in en
    assert "Sở Khoa học và Công nghệ" in vi and "Cổng thông tin điện tử" in vi  # agencies from the inventory
    assert "20/11/2026" in vi and "2026-11-20" in en
    assert "sample_logs/linux/auth.log:" in vi  # layer 1: evidence references (file:line)
    assert "Tăng đột biến" in vi  # everything rose from an empty previous day
    # self-contained: no external reference of any kind, charts inline, attacker text escaped
    for page in (vi, en):
        assert "<script" not in page.replace("&lt;script", "")
        assert page.count("&lt;img src=&#34;http://127.0.0.1:9/pwn.png&#34;") >= 3
        assert "<img" not in page and "<link" not in page and "@import" not in page
        # in-page references only (the charts' #ids)
        assert not re.search(r"url\((?!#)|<[^>]*\s(?:src|xlink:href|href)=(?!\"#)", page)
        assert page.count("<svg") == 2 and "default-src 'none'" in page


# --- the page in a real browser -----------------------------------------------------------------------------


class Chrome:
    """A headless Chromium driven over the DevTools protocol on a pipe (fd 3: commands in, fd 4: out)."""

    def __init__(self, browser: str):
        from soc.report.pdf import browser_flags

        self.profile = tempfile.mkdtemp(prefix="soc-test-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, out_w)]  # clear of 3 and 4
        for fd in (cmd_r, out_w):
            os.close(fd)

        def pipe_fds():  # in the child: Chromium reads commands on fd 3 and writes on fd 4
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = [*browser_flags(self.profile), "--remote-debugging-pipe", "--hide-scrollbars", "about:blank"]
        self.proc = subprocess.Popen([browser, *args], preexec_fn=pipe_fds, close_fds=False,  # noqa: S603, PLW1509
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in high:
            os.close(fd)
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while chunk := os.read(self._out_r, 1 << 16):
            buf += chunk
            *done, buf = buf.split(b"\0")
            for raw in done:
                self.messages.put(json.loads(raw))

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60):
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if got.get("id") == self._next:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return got["result"]
            self.events.append(got)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev.get("method") == method:
                    return ev
            self.events.append(self.messages.get(timeout=max(0.1, deadline - time.monotonic())))

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self.events.append(self.messages.get(timeout=left))
            except queue.Empty:
                break

    def close(self) -> None:
        with contextlib.suppress(Exception):  # gone already
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        shutil.rmtree(self.profile, ignore_errors=True)


def open_page(chrome: Chrome, url: str, width: int = 1200, height: int = 1500, scale: float = 1.0) -> dict:
    """Load ``url`` in a fresh tab; what the page did: requests, errors, its text and headings, a screenshot."""
    target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Network", "Runtime", "Log"):
        chrome.send(f"{domain}.enable", session=session)
    chrome.send("Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
    chrome.events.clear()
    chrome.send("Page.navigate", {"url": url}, session=session)
    chrome.wait_for("Page.loadEventFired")
    chrome.drain(1.0)  # late requests and errors
    mine = [e for e in chrome.events if e.get("sessionId") == session]
    requests = [e["params"]["request"]["url"] for e in mine if e["method"] == "Network.requestWillBeSent"
                and e["params"]["request"]["url"] != url]
    errors = [json.dumps(e["params"])[:300] for e in mine
              if (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
              or e["method"] == "Network.loadingFailed"]
    probe = ("JSON.stringify({text: document.body.innerText.length, svg: document.querySelectorAll('svg').length,"
             " headings: [...document.querySelectorAll('h1,h2,h3')].map(e => e.textContent),"
             " height: document.documentElement.scrollHeight})")
    state = json.loads(chrome.send("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                                   session=session)["result"]["value"])
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": scale}
    shot = chrome.send("Page.captureScreenshot", {"format": "png", "clip": clip}, session=session)["data"]
    chrome.send("Target.closeTarget", {"targetId": target})
    return {"requests": requests, "errors": errors, "shot": shot, **state}


@pytest.fixture(scope="module")
def chrome():
    browser = Chrome(_tool("chromium"))
    yield browser
    browser.close()


def test_driver_sees_requests_and_errors(chrome, tmp_path):
    """The checks below can fail: a planted request, console error and CSP refusal are all seen."""
    plain = tmp_path / "plain.html"
    plain.write_text('<html><body><p>x</p><img src="http://127.0.0.1:9/a.png">'
                     '<script>console.error("planted")</script></body></html>', encoding="utf-8")
    seen = open_page(chrome, plain.as_uri())
    assert any("127.0.0.1:9/a.png" in u for u in seen["requests"])
    assert any("planted" in e for e in seen["errors"])
    strict = tmp_path / "csp.html"
    strict.write_text("<html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
                      '</head><body><p>x</p><img src="http://127.0.0.1:9/b.png"></body></html>', encoding="utf-8")
    refused = open_page(chrome, strict.as_uri())
    assert refused["errors"] and "Content Security Policy" in " ".join(refused["errors"])


def test_report_in_a_real_browser(chrome, reports):
    import base64

    ARTIFACTS.mkdir(exist_ok=True)
    for lang in ("vi", "en"):
        page = open_page(chrome, reports[lang].as_uri())
        assert page["requests"] == [], f"{lang}: the page made requests: {page['requests']}"
        assert page["errors"] == [], f"{lang}: console or browser errors: {page['errors']}"
        assert page["text"] > 3000 and page["svg"] == 2 and page["height"] > 3000, page
        (ARTIFACTS / f"report-{lang}.png").write_bytes(base64.b64decode(page["shot"]))
        headings = page["headings"]
        if lang == "vi":
            for h in ("Báo cáo giám sát an toàn thông tin", "Tổng hợp cho lãnh đạo",
                      "Cảnh báo theo mức độ nghiêm trọng", "Diễn biến cảnh báo theo thời gian",
                      "Tình trạng nguồn nhật ký"):
                assert h in headings, (h, headings)
        else:
            assert "Security monitoring report" in headings and "Summary for leadership" in headings
    assert (ARTIFACTS / "report-vi.png").stat().st_size > 20_000


def test_pdf_has_pages(reports, tmp_path):
    pdftoppm = _tool("pdftoppm")
    _tool("chromium")
    pdf = reports["vi"].with_name("report-vi.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2 and all(p.stat().st_size > 1000 for p in pages)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pages[0], ARTIFACTS / "report-vi-pdf-page1.png")


@pytest.mark.skipif(os.environ.get("SOC_UPDATE_DOCS") != "1", reason="SOC_UPDATE_DOCS=1 rewrites docs/report-vi.png")
def test_docs_screenshot(chrome, tmp_path):
    """The README's screenshot: the Vietnamese day report of ``soc hunt sample_logs/`` (with the test's
    inventory), the top of the page at 60 %."""
    import base64

    from soc.config import load_config
    from soc.hunt import HuntRequest, run_hunt
    from soc.report import calendar_period, make_report

    (tmp_path / "assets.csv").write_text(INVENTORY, encoding="utf-8")
    cfg = load_config(env={"SOC_INVENTORY": str(tmp_path / "assets.csv")})
    run_hunt(HuntRequest(inputs=[str(ROOT / "sample_logs")], data_dir=str(tmp_path / "data"), config=cfg))
    make_report(tmp_path / "data", calendar_period("day", DAY), "vi", tmp_path / "report.html")
    page = open_page(chrome, (tmp_path / "report.html").as_uri(), width=1100, height=1400, scale=0.6)
    assert page["requests"] == [] and page["errors"] == []
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "report-vi.png").write_bytes(base64.b64decode(page["shot"]))


def _alert(i: int, when: datetime, agency: str, severity: int = 3, layer: str = "2", **more) -> dict:
    names = {1: "informational", 2: "low", 3: "medium", 4: "high", 5: "critical"}
    return {"@timestamp": when, "event.start": when, "event.end": when, "event.id": f"a{i}", "event.kind": "alert",
            "event.severity": severity,
            "labels.severity": names[severity], "labels.layer": layer, "rule.id": f"r{i % 3}",
            "rule.name": f"Rule {i % 3}", "organization.name": agency, "event.dataset": "system.auth",
            "source.ip": f"203.0.113.{i % 4}", "event.count": 1, **more}


def test_build_compares_with_the_previous_period(tmp_path):
    """Two Vietnam days of made-up alerts: counts per severity, agency and source against the day before, the
    flags, the jobs' run records and the dead letters, layer 4 = what ``soc export`` would share."""
    from soc.alerts.schema import conform
    from soc.export import Filters, load_sharing, shared_alerts
    from soc.report.data import build
    from soc.report.period import ZONE, calendar_period
    from soc.sinks.alert_store import AlertStore

    before = datetime(2026, 11, 19, 9, tzinfo=ZONE).astimezone(UTC)
    now = datetime(2026, 11, 20, 0, 30, tzinfo=ZONE).astimezone(UTC)  # 17:30 UTC the day before: Vietnam's 20th
    rows = [_alert(i, before, "Sở Y tế") for i in range(10)]
    rows += [_alert(10 + i, now, "Sở Y tế") for i in range(3)]                      # 10 -> 3: a drop
    rows += [_alert(20 + i, now, "Sở Tài chính", severity=4, layer="4") for i in range(7)]  # 0 -> 7: a rise
    rows += [_alert(40, datetime(2026, 11, 20, 17, tzinfo=UTC), "Sở Tài chính")]   # the 21st in Vietnam: out
    AlertStore(tmp_path).append(conform(pl.DataFrame(rows)))
    run = {"job": "auth", "start": datetime(2026, 11, 20, 8, tzinfo=ZONE).isoformat(), "status": "ok",
           "records": 200, "dead": 5, "newest_event": now.isoformat()}
    (tmp_path / "jobs" / "auth").mkdir(parents=True)
    (tmp_path / "jobs" / "auth" / "runs.ndjson").write_text(json.dumps(run) + "\n", encoding="utf-8")
    (tmp_path / "jobs" / "quiet").mkdir()
    (tmp_path / "dead_letters").mkdir()
    pl.DataFrame({"log.file.path": ["/var/log/auth.log"] * 2, "log.line": [3, 9],
                  "error.message": ["no timestamp", "too long"]}).write_parquet(tmp_path / "dead_letters" / "a.parquet")

    day = calendar_period("day", DAY)
    d = build(tmp_path, day)
    assert (d.total, d.total_before) == (10, 10)
    sev = {r["name"]: (r["now"], r["before"], r["flag"]) for r in d.severity}
    assert sev["medium"] == (3, 10, "drop") and sev["high"] == (7, 0, "rise") and sev["critical"] == (0, 0, None)
    agencies = {r["agency"]: (r["now"], r["before"], r["flag"]) for r in d.agencies}
    assert agencies == {"Sở Y tế": (3, 10, "drop"), "Sở Tài chính": (7, 0, "rise")}
    assert {r["layer"]: r["now"] for r in d.layers} == {"2": 3, "4": 7}
    assert sum(r["count"] for r in d.series) == 10 and d.series[0]["count"] == 10  # all in hour 00 (Vietnam)
    assert [(a["agency"], a["total"]) for a in d.layer1] == [("Sở Tài chính", 7), ("Sở Y tế", 3)]
    jobs = {j["job"]: j for j in d.health["jobs"]}
    assert jobs["auth"]["rate"] == 0.025 and not jobs["auth"]["silent"] and jobs["quiet"]["silent"]
    assert d.health["dead_letters"] == [{"file": "/var/log/auth.log", "dead": 2, "reason": "no timestamp"}]
    span = Filters(since=day.start.astimezone(UTC), until=day.end.astimezone(UTC))
    shared = shared_alerts(tmp_path, load_sharing(), span)
    assert d.layer4["total"] == 7 == shared.filter(pl.col("@timestamp") >= day.start.astimezone(UTC)).height
    assert {r["tlp"] for r in d.layer4["alerts"]} == {"AMBER"}
    assert d.coverage["rules"] > 5 and sum(t["fired"] for t in d.coverage["tactics"]) == 0  # made-up rule ids
    only = build(tmp_path, day, agency="y tế")
    assert (only.total, only.total_before, only.layer4["total"]) == (3, 10, 0)


def test_the_groups_language_is_the_reports(data_dir, tmp_path):
    """``soc --lang vi report`` writes Vietnamese; the command's own ``--lang`` wins over it."""
    from click.testing import CliRunner

    from soc.cli import main

    base = ["report", "--data-dir", str(data_dir), "--period", "day", "--date", DAY.isoformat()]
    vi = CliRunner().invoke(main, ["--lang", "vi", *base, "-o", str(tmp_path / "vi.html")], catch_exceptions=False)
    assert vi.exit_code == 0 and "cảnh báo (kỳ trước: 0)" in vi.output
    assert "Báo cáo giám sát an toàn thông tin" in (tmp_path / "vi.html").read_text(encoding="utf-8")
    en = CliRunner().invoke(main, ["--lang", "vi", *base, "--lang", "en", "-o", str(tmp_path / "en.html")],
                            catch_exceptions=False)
    assert en.exit_code == 0 and "alerts (previous period: 0)" in en.output
    bad = CliRunner().invoke(main, [*base, "--since", "2026-11-20"])
    assert bad.exit_code == 2


# --- records per log source per day (soc.source_days) ---------------------------------------------------------


def _lines(day: int, n: int, host: str = "113.182.65.118") -> str:
    return "".join(f'{host} - - [{day}/Nov/2026:08:{i // 60:02d}:{i % 60:02d} +0700] "GET /p{i} HTTP/1.1" 200 7 '
                   '"-" "curl"\n' for i in range(n))


def test_records_per_source_per_day_are_the_hunts_counts(tmp_path):
    """``soc hunt sample_logs/``: each file's records per day (kept in runs/hunts.ndjson) are the records it
    parsed, as its stats say; the report's source table holds them, in the day's HTML too."""
    from soc.config import load_config
    from soc.hunt import HuntRequest, run_hunt
    from soc.report.data import source_days
    from soc.report.period import calendar_period
    from soc.source_days import read

    report = run_hunt(HuntRequest(inputs=[str(ROOT / "sample_logs")], data_dir=str(tmp_path), to_es=False,
                                  config=load_config(env={})))
    (rec,) = list(read(tmp_path))
    by_path = {s["path"]: s for s in rec["sources"]}
    assert len(by_path) == len(report.stats) == 7
    for st in report.stats:
        days = by_path[st.path]["days"]
        assert days == st.days and set().union(*days.values()) == {"2026-11-20"}, st.path
        records = sum(sum(d.values()) for d in days.values())
        assert records == sum(st.events.values()) and by_path[st.path]["parsed"] == st.parsed
        if not st.path.endswith("dns.log"):  # the DNS debug log's header lines parse to no record
            assert records == st.parsed, st.path
    assert by_path[str(ROOT / "sample_logs/linux/auth.log")]["days"] == {
        "system.auth": {"2026-11-20": 281}, "system.syslog": {"2026-11-20": 39}}
    rows = {(r["path"], r["dataset"]): r for r in source_days(tmp_path, calendar_period("day", DAY))}
    nginx = rows[(str(ROOT / "sample_logs/web/nginx/access.log"), "nginx.access")]
    assert nginx["total"] == 781 and nginx["flag"] is None and [c["count"] for c in nginx["days"]] == [781]


def test_the_reports_records_per_day(reports):
    vi = reports["vi"].read_text(encoding="utf-8")
    en = reports["en"].read_text(encoding="utf-8")
    assert "Số bản ghi theo nguồn nhật ký theo ngày" in vi and "Records per log source per day" in en
    assert re.search(r"sample_logs/web/nginx/access\.log</code></td><td>nginx\.access</td><td class=\"n\">781<", en)
    assert "20/11/2026: 781" in vi and "2026-11-20: 781" in en


def test_a_source_silent_on_its_second_day_is_flagged_and_its_path_escaped(tmp_path):
    """Two hunts on two days: an access log that keeps writing, and one (with an attacker's file name) that
    stopped after the first day: it is flagged silent on the second; the name is escaped in the page."""
    from click.testing import CliRunner

    from soc.cli import main
    from soc.config import load_config
    from soc.hunt import HuntRequest, run_hunt
    from soc.report.data import source_days
    from soc.report.period import ZONE, Period

    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    evil = logs / '<img src=x onerror="console.error(1)">.log'
    busy = logs / "access.log"
    evil.write_text(_lines(20, 40, "10.0.0.9"), encoding="utf-8")
    busy.write_text(_lines(20, 30), encoding="utf-8")
    cfg = load_config(env={})
    for _day in (20, 21):
        if _day == 21:
            with open(busy, "a", encoding="utf-8") as fh:
                fh.write(_lines(21, 12))
        report = run_hunt(HuntRequest(inputs=[str(logs)], data_dir=str(data), to_es=False, config=cfg))
        assert report.exit_code == 0 and sum(st.parsed for st in report.stats) == (70 if _day == 20 else 82)
    period = Period(datetime(2026, 11, 20, tzinfo=ZONE), datetime(2026, 11, 22, tzinfo=ZONE), "custom")
    rows = {Path(r["path"]).name: r for r in source_days(data, period)}
    assert [(c["count"], c["flag"]) for c in rows[evil.name]["days"]] == [(40, None), (0, "silent")]
    assert rows[evil.name]["flag"] == "silent" and rows[evil.name]["last"].day == 20
    assert [(c["count"], c["flag"]) for c in rows["access.log"]["days"]] == [(30, None), (12, None)]  # re-read once
    assert rows["access.log"]["flag"] is None and list(rows) == [evil.name, "access.log"]  # silent first
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", "--data-dir", str(data), "--since", "2026-11-20", "--until",
                                       "2026-11-22", "--lang", "en", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert evil.name not in page and "&lt;img src=x onerror=&#34;console.error(1)&#34;&gt;.log" in page
    assert "21/11/2026" not in page and re.search(r"2026-11-21: 0</span>", page)


def test_a_source_that_drops_sharply_is_flagged(tmp_path):
    """Records per day from a job's runs are summed (each read what was appended): 100, 100, then 10."""
    from soc.report.data import source_days
    from soc.report.period import ZONE, Period

    folder = tmp_path / "jobs" / "web" / "out"
    for n, (day, count) in enumerate([("2026-11-18", 60), ("2026-11-18", 40), ("2026-11-19", 100),
                                      ("2026-11-20", 10)]):
        rec = {"start": "x", "end": "x",
               "sources": [{"path": "/var/log/a.log", "days": {"nginx.access": {day: count}}}]}
        (folder / f"{n:08d}" / "runs").mkdir(parents=True)
        (folder / f"{n:08d}" / "runs" / "hunts.ndjson").write_text(json.dumps(rec) + "\nnot json\n", encoding="utf-8")
    period = Period(datetime(2026, 11, 19, tzinfo=ZONE), datetime(2026, 11, 21, tzinfo=ZONE), "custom")
    (row,) = source_days(tmp_path, period)
    assert [(c["count"], c["flag"]) for c in row["days"]] == [(100, None), (10, "drop")] and row["flag"] == "drop"


def test_worker_processes_bring_their_days(tmp_path, monkeypatch):
    """An access log cut in byte ranges hunted in two processes: the same records per day as in one (the
    driver adds up the ranges' counts)."""
    from soc.distributed import local, task
    from soc.hunt import HuntRequest, run_hunt
    from soc.pipeline import Options
    from soc.sources import discover

    monkeypatch.setattr(local, "MIN_BYTES", 0)
    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)
    monkeypatch.setattr(task, "SPLIT_ENGINES", {"words"})
    monkeypatch.setenv("SOC_CONFIG", "")
    log = tmp_path / "access.log"
    log.write_text(_lines(20, 3000) + _lines(21, 2000), encoding="utf-8")
    assert len(task.partitions(discover([str(log)]), Options(chunk_size=16 << 10))) >= 3
    days = []
    for workers in (1, 2):
        report = run_hunt(HuntRequest(inputs=[str(log)], data_dir=str(tmp_path / str(workers)), to_es=False,
                                      workers=workers, options=Options(chunk_size=16 << 10)))
        days.append(report.stats[0].days)
    assert days[0] == days[1] == {"web.access": {"2026-11-20": 3000, "2026-11-21": 2000}}
