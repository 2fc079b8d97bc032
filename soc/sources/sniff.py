"""Guess a stream's format from its first lines, against the signatures of the parser specs."""

from __future__ import annotations

from dataclasses import dataclass

SNIFF_LINES = 20
SNIFF_LINE_BYTES = 4096


@dataclass(frozen=True)
class Signature:
    """A format's name, a regex its lines match (Rust regex syntax: linear time), and a tie-break priority."""

    name: str
    pattern: str
    priority: int = 0
    magic: bytes = b""  # binary formats: the bytes the input starts with (EVTX: ``ElfFile\0``)


class UnknownFormat(Exception):
    """No signature matched; the message lists the formats tried."""


NOT_RECOGNISED = "format not recognised (tried: {tried}); name it with --format"


def reason_text(reason: str) -> str:
    """A skip reason (``SourceStats.skipped``, kept in English: it is data, in ``--json`` too) in the reader's
    language, for the warning that shows it."""
    from soc.i18n import _, current

    if current() == "en":
        return reason
    head, sep, tail = reason.partition(" (tried: ")
    if sep and head == "format not recognised" and tail.endswith("); name it with --format"):
        return _("format not recognised (tried: {tried}); name it with --format").format(
            tried=tail[: -len("); name it with --format")])
    if reason == "empty input":
        return _("empty input")
    return reason


def first_lines(data: bytes | bytearray) -> list[str]:
    """Up to ``SNIFF_LINES`` non-empty lines, each cut to ``SNIFF_LINE_BYTES``, decoded leniently."""
    out = []
    for raw in bytes(data[: SNIFF_LINES * SNIFF_LINE_BYTES * 4]).split(b"\n"):
        raw = raw.rstrip(b"\r")
        if raw.strip():
            out.append(raw[:SNIFF_LINE_BYTES].decode("utf-8", "replace"))
        if len(out) == SNIFF_LINES:
            break
    return out


def sniff_magic(head: bytes, signatures: list[Signature]) -> str | None:
    """The format whose magic bytes ``head`` starts with (binary formats are told by those, not by lines)."""
    for sig in signatures:
        if sig.magic and head.startswith(sig.magic):
            return sig.name
    return None


def sniff(data: bytes | bytearray, signatures: list[Signature]) -> str:
    """The name of the signature matching most of the first lines (ties: highest priority)."""
    import polars as pl

    lines = pl.Series(first_lines(data), dtype=pl.String)
    if lines.is_empty():
        raise UnknownFormat("empty input")
    best: tuple[float, int, str] | None = None
    for sig in signatures:
        score = float(lines.str.contains(sig.pattern).mean() or 0.0)
        if score > 0 and (best is None or (score, sig.priority) > best[:2]):
            best = (score, sig.priority, sig.name)
    if best is None:
        tried = ", ".join(s.name for s in signatures)
        raise UnknownFormat(NOT_RECOGNISED.format(tried=tried))
    return best[2]
