"""The report's charts: matplotlib figures written as SVG and inlined in the page (no file, no network).

Text stays text (``svg.fonttype = none``): the browser draws it with the page's fonts, so Vietnamese diacritics
render as in the rest of the page. Only numbers and soc's own translated labels go into a chart, never an
attacker's text (that stays in the autoescaped tables). ``svg.hashsalt`` fixes the ids: the same data gives
the same bytes.
"""

from __future__ import annotations

import io
import re

_HEAD = re.compile(r"^.*?(?=<svg)", re.S)


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return _HEAD.sub("", buf.getvalue(), count=1)  # the XML declaration and DOCTYPE do not belong inline


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "soc-report",
                                "font.family": ["DejaVu Sans", "sans-serif"], "font.size": 9})
    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def compare_bars(labels: list[str], now: list[int], before: list[int], now_label: str, before_label: str,
                 flags: list[str | None]) -> str:
    """Counts now against the previous period, side by side; a flagged rise or drop is marked with an arrow."""
    fig, ax = _figure(6.5, 2.6)
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], before, width=0.4, color="#b0b7c3", label=before_label)
    bars = ax.bar([x + 0.2 for x in xs], now, width=0.4, color="#c0392b", label=now_label)
    for bar, fl in zip(bars, flags, strict=True):
        if fl:
            ax.annotate("▲" if fl == "rise" else "▼", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", color="#8e1b10" if fl == "rise" else "#1f5fa8")
    ax.set_xticks(list(xs), labels)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False)
    return _svg(fig)


def series(ticks: list[str], counts: list[int], flags: list[str | None], ylabel: str, spike_label: str,
           drop_label: str) -> str:
    """Alerts per bucket; spikes and drops marked."""
    fig, ax = _figure(7.5, 2.6)
    xs = list(range(len(counts)))
    ax.plot(xs, counts, color="#34495e", marker=".", linewidth=1.2)
    for kind, colour, label in (("spike", "#c0392b", spike_label), ("drop", "#1f5fa8", drop_label)):
        pts = [(x, c) for x, c, f in zip(xs, counts, flags, strict=True) if f == kind]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=60, color=colour, zorder=3, label=label,
                       marker="^" if kind == "spike" else "v")
    step = max(1, len(ticks) // 12)
    ax.set_xticks(xs[::step], ticks[::step], rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if any(flags):
        ax.legend(frameon=False)
    return _svg(fig)
