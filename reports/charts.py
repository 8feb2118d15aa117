"""The report's charts as small self-contained SVG strings, ready to inline in HTML.

matplotlib (Agg backend) is imported lazily. Text stays text (``svg.fonttype: none``,
no embedded glyphs, no external font or URL); matplotlib escapes it for XML, and ``$``
is escaped so user names never start mathtext. Ids are prefixed per chart so several
charts can share one page, the XML header is stripped and the fixed size replaced by a
``viewBox`` that scales to the page. Missing figures (None) leave gaps or are skipped;
a chart with nothing to draw is None.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from html import escape
from typing import Any

from . import i18n

COLOURS = ("#1f5fa8", "#c2571a", "#2e8540", "#8a3ea8", "#a8323e", "#5a6b7a")
CONTROL = "#6b6b6b"
_ID = re.compile(r'\bid="([^"]+)"')


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _style() -> dict[str, Any]:
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": "loyalty-pilot",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "text.usetex": False,
    }


def plain(value: Any) -> str:
    """User text safe for matplotlib: ``$`` escaped so it is never parsed as mathtext."""
    return str(value).replace("\\", "\\\\").replace("$", r"\$")


def to_svg(fig: Any, prefix: str, title: str) -> str:
    """The figure as an inline ``<svg>``: no XML header, ids prefixed, scalable."""
    plt = _plt()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    ids = set(_ID.findall(svg))
    if ids:
        alternatives = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        svg = re.sub(rf'\bid="({alternatives})"', rf'id="{prefix}-\1"', svg)
        svg = re.sub(rf"url\(#({alternatives})\)", rf"url(#{prefix}-\1)", svg)
        svg = re.sub(rf'href="#({alternatives})"', rf'href="#{prefix}-\1"', svg)
    svg = re.sub(r'<svg([^>]*?)\swidth="[^"]*"\sheight="[^"]*"', r"<svg\1", svg, count=1)
    svg = svg.replace("<svg", f'<svg class="chart" role="img" aria-label="{escape(title)}"', 1)
    return svg.strip()


def _day(value: str) -> date | None:
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError:
        return None


def _values(values: Sequence[Any]) -> list[float]:
    return [
        float(v) if isinstance(v, int | float) and math.isfinite(v) else math.nan for v in values
    ]


def weekly_svg(
    weeks: Sequence[str],
    series: dict[str, Sequence[Any]],
    test_start: str,
    test_end: str,
    control: str | None,
    lang: str,
    title: str,
) -> str | None:
    """Weekly mean per arm, the test period shaded; None when there is nothing to draw."""
    days = [_day(w) for w in weeks]
    if not weeks or any(d is None for d in days):
        return None
    drawn = {arm: _values(v) for arm, v in series.items() if len(v) == len(weeks)}
    drawn = {arm: v for arm, v in drawn.items() if any(not math.isnan(x) for x in v)}
    if not drawn:
        return None
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        start, end = _day(test_start), _day(test_end)
        if start and end:
            ax.axvspan(start, end, color="#f2c94c", alpha=0.25, lw=0, zorder=0)
            ax.text(
                start,
                1.0,
                " " + i18n.text("chart.pilot", lang),
                va="top",
                transform=ax.get_xaxis_transform(),
                fontsize=8,
                color="#7a5c00",
            )
        for i, (arm, values) in enumerate(drawn.items()):
            is_control = arm == control
            ax.plot(
                days,
                values,
                label=plain(arm),
                color=CONTROL if is_control else COLOURS[i % len(COLOURS)],
                ls="--" if is_control else "-",
                lw=1.6,
                marker="." if len(days) < 30 else None,
            )
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: i18n.compact(v, lang)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _month_label(v, lang)))
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        fig.tight_layout()
        return to_svg(fig, "weekly", title)


def _month_label(value: float, lang: str) -> str:
    from matplotlib.dates import num2date

    day = num2date(value).date()
    return i18n.fmt_date(day, lang, short=True)


def forest_svg(
    rows: Sequence[dict[str, Any]],
    threshold: float | None,
    lang: str,
    title: str,
) -> str | None:
    """Point and interval per row (label, relative, low, high, exploratory), a dashed
    threshold line and a zero line; rows without an estimate are marked n/a."""
    if not rows or all(r.get("relative") is None for r in rows):
        return None
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    with plt.rc_context(_style()):
        height = 0.9 + 0.32 * len(rows)
        fig, ax = plt.subplots(figsize=(7.5, height))
        ys = list(range(len(rows)))[::-1]
        for y, row in zip(ys, rows, strict=True):
            colour = "#8a8a8a" if row.get("exploratory") else COLOURS[0]
            rel, low, high = (_values([row.get(k)])[0] for k in ("relative", "low", "high"))
            if not math.isnan(low) and not math.isnan(high):
                ax.hlines(y, low, high, color=colour, lw=2)
            if not math.isnan(rel):
                ax.plot(
                    [rel],
                    [y],
                    "o",
                    color=colour,
                    ms=5,
                    mfc="white" if row.get("exploratory") else colour,
                )
            else:
                ax.text(0, y, " " + i18n.na(lang), va="center", fontsize=8, color="#555")
        ax.axvline(0, color="#555", lw=1)
        if threshold is not None and math.isfinite(threshold):
            ax.axvline(
                threshold,
                color="#a8323e",
                lw=1.2,
                ls="--",
                label=f"{i18n.text('chart.threshold', lang)} {i18n.pct(threshold, lang)}",
            )
            ax.legend(loc="lower right", frameon=False, fontsize=8)
        ax.set_yticks(ys, [plain(r["label"]) for r in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: i18n.pct(v, lang, 0)))
        ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return to_svg(fig, "forest", title)


def cost_svg(
    panels: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    lang: str,
    currency: str,
    labels: dict[str, str],
    title: str,
) -> str | None:
    """Monthly points issued, redeemed, expired (left) and liability (right), one panel
    per variant; series that are all None are skipped, None when nothing is left."""
    keys = ("points_issued", "points_redeemed", "points_expired")
    usable = [(arm, list(m)) for arm, m in panels if m and _has(m, (*keys, "liability"))]
    if not usable:
        return None
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    short: Callable[[float, Any], str] = lambda v, _p: i18n.compact(v, lang)  # noqa: E731
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(len(usable), 1, figsize=(7.5, 2.6 * len(usable)), squeeze=False)
        for ax, (arm, months) in zip(axes[:, 0], usable, strict=True):
            x = list(range(len(months)))
            for i, key in enumerate(keys):
                if _has(months, (key,)):
                    ax.plot(
                        x,
                        _values([m.get(key) for m in months]),
                        color=COLOURS[i],
                        lw=1.5,
                        label=labels[key],
                    )
            ax.yaxis.set_major_formatter(FuncFormatter(short))
            ax.set_title(plain(arm), loc="left", fontsize=9)
            if _has(months, ("liability",)):
                right = ax.twinx()
                right.plot(
                    x,
                    _values([m.get("liability") for m in months]),
                    color="#333",
                    ls="--",
                    lw=1.2,
                    label=labels["liability"],
                )
                right.yaxis.set_major_formatter(
                    FuncFormatter(
                        lambda v, _p: (
                            i18n.money(v, currency, lang)
                            if abs(v) < 1000
                            else i18n.compact(v, lang)
                        )
                    )
                )
                right.grid(False)
                right.legend(loc="lower right", frameon=False, fontsize=8)
            step = max(1, len(months) // 6)
            ax.set_xticks(
                x[::step], [i18n.fmt_month(str(m.get("month", "")), lang) for m in months][::step]
            )
            ax.legend(loc="upper left", frameon=False, fontsize=8)
        fig.tight_layout()
        return to_svg(fig, "cost", title)


def _has(months: Sequence[dict[str, Any]], keys: Sequence[str]) -> bool:
    return any(
        isinstance(m.get(k), int | float) and math.isfinite(m[k]) for m in months for k in keys
    )
