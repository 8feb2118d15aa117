"""``loyalty-pilot simulate``: project programme variants on the workspace's baskets.

The economics live in :mod:`loyalty_pilot.simulator.projection`; this module loads the
files (:mod:`loyalty_pilot.pilots.programmes`), reads the workspace (baskets, RFM
segments: for the empirical retention curves by segment when neither dropout model is
identifiable, and for the responses' per-segment assumptions), and lays the variants
side by side for the command line and its JSON, with one line saying which retention
baseline was used and why (:func:`retention_line`).

The SMART check (and so the attainability) comes from the replay over the whole history,
like ``loyalty-pilot check``: attainability needs members observed for 12 months, which a
12-month horizon cannot give. Every other figure is over the projection's horizon.
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


def _month(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}"


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
    ("payback month P50", lambda d: _month(d["payback_month"]["p50"])),
    ("SMART verdict", lambda d: d["smart"]["verdict"]),
)


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
