"""``loyalty-pilot simulate``: project programme variants on the workspace's baskets.

The economics live in :mod:`loyalty_pilot.simulator.projection`; this module loads the
files (:mod:`loyalty_pilot.pilots.programmes`), reads the workspace (baskets, RFM
segments: for the empirical retention curves by segment when neither dropout model is
identifiable, and for the responses' per-segment assumptions), and lays the variants
side by side for the command line and its JSON, with one line saying which retention
baseline was used and why (:func:`retention_line`).

The SMART check (and so the attainability) comes from the replay over the whole history,
like ``loyalty-pilot check``: attainability needs members observed for 12 months, which a
12-month horizon cannot give (with a year of baskets or less it is annualized from the
members' tenure, see :mod:`loyalty_pilot.simulator.smart`; :func:`smart_lines` says so).
Every other figure is over the projection's horizon.

The payback month (the month from which the cumulative profit stays >= 0) is read over
all draws: a draw that does not pay back within the horizon counts as later than any
month, so a percentile is "beyond the horizon" (None in the JSON) when fewer draws than
its level pay back; no P50 is given unless at least half the draws pay back. The share
of draws that pay back is printed beside it (:func:`payback_summary`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyalty_pilot.pilots.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

    from loyalty_pilot.pilots.programmes import VariantReport
    from loyalty_pilot.simulator.projection import Projection


@dataclass(frozen=True, eq=False)
class VariantProjection:
    """One programme file: its projection and its SMART check (whole-history replay)."""

    report: VariantReport
    projection: Projection

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "programme": self.report.programme.programme,
            "file": self.report.path,
            "description": self.report.programme.description,
            "currency": self.report.programme.currency,
        }
        out.update(self.projection.to_dict())
        out["payback_month"] = payback_summary(out["payback_month"], out["horizon_months"])
        out["attainable"] = _clean(self.report.smart.letters[2].figure)
        out["smart"] = self.report.smart.to_dict()
        return out


def simulate(
    paths: list[Path],
    con: duckdb.DuckDBPyConnection,
    *,
    horizon_months: int = 12,
    draws: int = 2000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[VariantProjection]:
    """Load, replay, SMART-check and project every programme file on the workspace.

    ``progress(done, total)`` counts draws over all variants.
    """
    from loyalty_pilot.pilots.programmes import evaluate, workspace_baskets
    from loyalty_pilot.simulator.projection import fit_retention, project

    baskets = workspace_baskets(con)
    if baskets.empty:
        raise UserError("the workspace holds no baskets: ingest or generate a chain first")
    reports = evaluate(paths, baskets, seed=seed)
    from loyalty_pilot.pilots.panels import customer_rfm

    table = customer_rfm(con)
    rfm = dict(zip(table["customer_id"].astype(str), table["segment"].astype(str), strict=True))
    # the response's segments only when it has per-segment assumptions; the retention's always
    segments = rfm if any(r.programme.response.segments for r in reports) else None
    retention = fit_retention(baskets, horizon_months=horizon_months, segments=rfm)
    total = draws * len(reports)
    out = []
    for index, report in enumerate(reports):
        offset = index * draws

        def step(done: int, _total: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, total)

        try:
            projection = project(
                baskets,
                report.programme,
                horizon_months=horizon_months,
                draws=draws,
                seed=seed,
                segments=segments,
                retention=retention,
                progress=step,
            )
        except ValueError as exc:
            raise UserError(f"{report.path}: {exc}") from None
        out.append(VariantProjection(report, projection))
    return out


#: retention sources as printed
_SOURCES = {
    "bgnbd": "BG/NBD",
    "pareto_nbd": "Pareto/NBD",
    "empirical": "empirical curve over all customers",
    "empirical_segments": "empirical curves by RFM segment",
    "none": "none, no churn effect",
}


def retention_line(retention: dict[str, Any]) -> str:
    """One line: which retention baseline (the JSON ``retention`` object) and why."""
    source = retention["source"]
    name = _SOURCES.get(source, source)
    note = retention.get("note", "")
    if source in ("bgnbd", "pareto_nbd"):
        return f"retention: {name} ({note})" if note else f"retention: {name}"
    line = f"retention: dropout not identifiable ({note}): {name}"
    if source == "empirical_segments":
        sizes = ", ".join(
            f"{segment} {curve['customers']:,}" for segment, curve in retention["segments"].items()
        )
        line += f" ({sizes} customers)"
    return line


def _money(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "-"


def _share(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "never" if value == math.inf else "-"
    return f"{value:.{digits}%}"


def _band(q: dict[str, float | None], fmt: Callable[[float], str]) -> str:
    return " / ".join("-" if q[k] is None else fmt(q[k]) for k in ("p10", "p50", "p90"))


def _ratio(value: float) -> str:
    return f"{value:.2f}"


def payback_summary(payback: dict[str, Any], horizon_months: int) -> dict[str, Any]:
    """The projection's payback percentiles (over all draws, None = not within the
    horizon) and share paid back, with ``share_not_paid_back``, ``horizon_months``,
    ``over`` (what the percentiles are taken over) and ``text``, the printed cell."""
    share = float(payback["share_paid_back"])
    out = {
        **payback,
        "share_not_paid_back": 1.0 - share,
        "horizon_months": int(horizon_months),
        "over": "all draws; None: not within the horizon",
    }
    bands = " / ".join(_month(payback[k], horizon_months) for k in ("p10", "p50", "p90"))
    out["text"] = f"{bands} ({share:.0%} of draws pay back within {horizon_months} months)"
    return out


def _month(value: float | None, horizon_months: int) -> str:
    return f"beyond {horizon_months}" if value is None else f"{value:.0f}"


#: (label, function of a variant's JSON dict -> cell)
ROWS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("horizon", lambda d: f"{d['start']} to {d['end']}"),
    ("members", lambda d: f"{d['members']:,}"),
    ("revenue (baseline)", lambda d: _money(d["revenue"])),
    ("cost (replay)", lambda d: _money(d["cost_replay"])),
    ("cost / revenue", lambda d: _share(d["cost_share"], 3)),
    ("rewards issued", lambda d: f"{d['rewards_issued']:,}"),
    ("rewards at cost", lambda d: _money(d["rewards_value"])),
    ("rewards perceived", lambda d: _money(d["rewards_perceived"])),
    ("breakage", lambda d: _money(d["breakage"])),
    ("liability at end", lambda d: _money(d["liability_end"])),
    ("attainable", lambda d: _share(d["attainable"], 1)),
    ("break-even uplift", lambda d: _share(d["break_even_uplift"], 3)),
    ("cost (projected, mean)", lambda d: _money(d["cost"])),
    ("profit P10/P50/P90", lambda d: _band(d["profit"], _money)),
    ("ROI P10/P50/P90", lambda d: _band(d["roi"], _ratio)),
    (
        "payback month P10/P50/P90",
        lambda d: " / ".join(
            _month(d["payback_month"][k], d["horizon_months"]) for k in ("p10", "p50", "p90")
        ),
    ),
    ("draws paying back", lambda d: _share(d["payback_month"]["share_paid_back"], 0)),
    ("SMART verdict", lambda d: d["smart"]["verdict"]),
)


def payback_legend(variants: list[dict[str, Any]]) -> str:
    """The line under the table that says how the payback month is read."""
    months = sorted({int(v["horizon_months"]) for v in variants})
    horizon = " / ".join(map(str, months)) if months else "?"
    return (
        "payback month: the month from which the cumulative profit stays >= 0, percentiles "
        f"over all draws (beyond {horizon}: not within the horizon, so no P50 unless half "
        "the draws pay back); draws paying back: their share within the horizon"
    )


def smart_lines(checks: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One line per programme whose Attainable and Time-bound letters were annualized
    (a year of baskets or less) or not evaluated, with the reason. ``checks``: (name,
    ``SmartCheck.to_dict()``)."""
    lines = []
    for name, smart in checks:
        note = smart["A"]["note"]
        if note.startswith("annualized") or "not evaluated" in note:
            lines.append(f"SMART {name}: attainable and time-bound {note}")
    return lines


def comparison_table(variants: list[dict[str, Any]]) -> str:
    """One column per variant (the JSON dicts of :class:`VariantProjection`)."""
    headers = ["", *[v["programme"] for v in variants]]
    rows = [[label, *[cell(v) for v in variants]] for label, cell in ROWS]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
