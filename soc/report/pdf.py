"""``soc report --pdf``: the HTML printed to PDF by headless Chromium (Debian's ``chromium``), which lays out
the page and its inline SVG exactly as a reader's browser does; offline, from a file:// URL."""

from __future__ import annotations

import shutil
import subprocess  # noqa: S404  (Chromium, with a fixed argument list)
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(RuntimeError):
    """No browser, or it did not print the page."""


def find_browser() -> str | None:
    """A Chromium on PATH (``SOC_CHROMIUM`` first, if set)."""
    import os

    for name in (os.environ.get("SOC_CHROMIUM"), *BROWSERS):
        if name and (path := shutil.which(name)):
            return path
    return None


def browser_flags(profile: str) -> list[str]:
    """Flags for a headless, offline, throw-away Chromium; ``--no-sandbox`` only as root (Chromium refuses to
    start as root with its sandbox, e.g. in a container)."""
    import os

    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    return ["--headless", *sandbox, "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-sync", "--disable-component-update", "--mute-audio", f"--user-data-dir={profile}"]


def print_pdf(html_path: str | Path, pdf_path: str | Path, timeout: float = 120) -> None:
    """Print ``html_path`` to ``pdf_path`` (A4 by the page's print CSS; no header or footer)."""
    browser = find_browser()
    if browser is None:
        raise PdfError("no Chromium found (install the Debian package chromium, or set SOC_CHROMIUM)")
    html, pdf = Path(html_path).resolve(), Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory(prefix="soc-chromium-") as profile:
        cmd = [browser, *browser_flags(profile), "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not print within {timeout:g} s") from None
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = done.stderr.decode("utf-8", "replace")[-500:]
        raise PdfError(f"Chromium could not print the PDF (exit {done.returncode}): {tail}")
    pdf.chmod(0o600)  # like the HTML and the alert store: the SOC's data, not the world's
