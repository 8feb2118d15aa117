"""Printed lines of ``design``, ``rollout`` and ``evaluate PILOT.yaml`` (plain text)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loyalty_pilot.pilots.pilot_design import PilotDesign
    from loyalty_pilot.pilots.pilot_eval import PilotEvaluation
    from loyalty_pilot.pilots.pilotspec import PilotFile
    from loyalty_pilot.pilots.registry import FrozenAssignment
    from loyalty_pilot.pilots.rollout import RolloutPlan

MAX_LISTED = 12


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}%}"


def _share(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.1%}"


def _listed(items: list[str]) -> str:
    head = ", ".join(items[:MAX_LISTED])
    return head + (f", ... ({len(items)} in all)" if len(items) > MAX_LISTED else "")


def design_lines(result: PilotDesign) -> list[str]:
    """What ``design`` prints: eligibility, threshold, power table, choice, assignment."""
    data = result.data
    eligibility = data.eligibility.to_dict()
    lines = [
        f"Pilot {result.pilot}: {', '.join(result.arms)} ({result.arms[0]} is the control), "
        f"design {result.method}",
        "",
        f"Eligibility: {eligibility['n_eligible']} of {eligibility['n_candidates']} "
        f"candidates (pre-period of {data.wide.shape[1]} weeks, data "
        f"{data.data_start} to {data.data_end})",
    ]
    for reason in eligibility["counts"]:
        if reason != "eligible":
            units = [r["unit"] for r in eligibility["excluded"] if r["reason"] == reason]
            lines.append(f"  excluded, {reason}: {_listed(units)}")
    if data.kind == "region":
        lines.append(f"  analysed by region: {len(data.wide)} regions")

    lines.append("")
    if result.break_even:
        parts = [f"{arm} {_pct(value)}" for arm, value in result.break_even.items()]
        lines.append("Break-even uplift of sales (simulator): " + ", ".join(parts))
    lines.append(
        f"Uplift the pilot must detect: {_pct(result.threshold)} ({result.threshold_source})"
    )

    table = result.power
    if table is not None:
        lines += ["", *_power_header(table)]
        lines += _power_rows(table, result.threshold)
    if result.recommended is not None:
        cell = result.recommended
        lines.append(
            f"Recommended: {cell.per_arm} units per arm for {cell.weeks} weeks "
            f"(MDE {_pct(cell.mde)} <= {_pct(result.threshold)})"
        )
    elif table is not None and result.threshold is not None:
        lines.append(
            f"No design of the grid can detect {_pct(result.threshold)} at "
            f"{table.target_power:.0%} power."
        )
    if result.sizing is not None:
        from loyalty_pilot.pilots.design_value import sizing_lines

        currency = "EUR"
        lines += sizing_lines(result.sizing, currency, result.money)
    lines += ["", f"Proposed assignment ({result.per_arm} per arm, seed {result.assignment.seed}):"]
    arm = result.assignment.arm
    for name in result.arms:
        units = sorted(arm.index[arm == name].astype(str))
        lines.append(f"  {name:<10} {len(units):>4}: {_listed(units)}")
    details = result.assignment.details or {}
    ranking = details.get("ranking") or []
    if ranking:
        lines.append("  candidate regions by synthetic-control fit of the pre-period (best first):")
        for row in ranking[:5]:
            regions = ", ".join(map(str, row["regions"]))
            lines.append(f"    {regions:<24} relative RMSPE {row['rmspe']:.2%}")
    for key in ("threshold", "acceptance_rate", "draws_tried", "mahalanobis"):
        if key in details and details[key] is not None:
            value = details[key]
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"  {key.replace('_', ' ')}: {shown}")
    if len(result.balance):
        lines += ["", "Balance on the pre-period (standardized differences vs the control):"]
        for row in result.balance.to_dict(orient="records"):
            std = row.get("std_diff")
            shown = "n/a" if std is None or not math.isfinite(std) else f"{std:+.3f}"
            lines.append(f"  {row['arm']:<10} {row['covariate']:<12} {shown}")
    for note in result.notes:
        lines.append(f"Note: {note}")
    return lines


def _power_header(table: Any) -> list[str]:
    return [
        f"Power by placebo pilots ({table.estimator.upper()} on {table.scale} scale, alpha "
        f"{table.alpha:g}, {table.target_power:.0%} power, placebo pre-window "
        f"{table.pre_weeks} weeks):",
        f"  {'per arm':>7} {'weeks':>5} {'MDE':>8} {'analytic':>9} {'false +':>8} "
        f"{'power at threshold':>19}",
    ]


def _power_rows(table: Any, threshold: float | None) -> list[str]:
    rows = []
    for cell in table.cells:
        mark = ""
        if threshold is not None and cell.mde is not None and math.isfinite(cell.mde):
            mark = "  <= threshold" if cell.mde <= threshold else ""
        power = cell.power_at_threshold
        rows.append(
            f"  {cell.per_arm:>7} {cell.weeks:>5} {_pct(cell.mde):>8} "
            f"{_pct(cell.analytic_mde):>9} {_share(cell.false_positive_rate):>8} "
            f"{_share(power):>19}{mark}"
        )
    return rows


def rollout_lines(
    pf: PilotFile, plan: RolloutPlan, stage: str, frozen: FrozenAssignment | None
) -> list[str]:
    """What ``rollout`` prints: the stage, then one block per wave."""
    version = "" if frozen is None else f" (frozen version {frozen.version})"
    lines = [f"Pilot {pf.spec.pilot}{version}: {stage}", ""]
    for wave in plan.waves:
        regions = ", ".join(wave.regions) or "-"
        lines.append(
            f"  {wave.name:<12} {len(wave.stores):>4} stores  from {wave.start} for "
            f"{wave.weeks} weeks  gate: {wave.gate}  regions: {regions}  "
            f"treated after: {wave.cumulative_share:.0%}"
        )
    lines.append(
        f"  {'holdout':<12} {len(plan.holdout):>4} stores  kept untreated as controls for "
        "the waves (staggered adoption)"
    )
    for note in plan.notes:
        lines.append(f"Note: {note}")
    return lines


def evaluation_lines(result: PilotEvaluation) -> list[str]:
    """What ``evaluate PILOT.yaml`` prints above the per-arm lines."""
    head = (
        f"Frozen version {result.frozen_version}: test {result.test_start} to {result.test_end}, "
        f"{min(result.weeks_observed, result.weeks_planned)} of {result.weeks_planned} weeks "
        f"in the data; analysed by {result.analysis_unit}"
    )
    lines = [head]
    if result.weeks_observed < result.weeks_planned:
        lines.append("Note: the test period is not over; this is an interim look.")
    return lines


def analysis_lines(analysis: Any, *, heterogeneity: bool = True) -> list[str]:
    """What ``evaluate PILOT.yaml`` prints after the family of primary comparisons
    (``heterogeneity=False``: without the exploratory subgroup tables)."""
    lines: list[str] = []
    for metric, evaluation in analysis.secondary.items():
        lines.append(f"Secondary metric {metric}:")
        for c in evaluation.comparisons:
            lines.append(
                f"  {c.arm} vs {c.baseline}: {_pct(c.relative)} "
                f"[{_pct(c.rel_ci_low)}, {_pct(c.rel_ci_high)}], p {_p(c.p_value)}"
            )
    if any(analysis.guardrails.values()):
        lines.append("Guardrails (non-inferiority, one-sided):")
        for arm, results in analysis.guardrails.items():
            for g in results:
                verdict = {True: "pass", False: "FAIL", None: "n/a"}[g.passed]
                lines.append(f"  {arm} {g.metric}: {verdict} - {g.reason}")
    if analysis.sequential:
        lines.append("Weekly looks (O'Brien-Fleming-type group-sequential boundaries):")
        for arm, look in analysis.sequential.items():
            crossed = "boundary crossed" if look.crossed else "no boundary crossed"
            lines.append(
                f"  {arm}: look {look.look}, statistic {look.statistic:+.2f} against "
                f"+-{look.boundary:.2f}: {crossed}"
            )
    for arm, table in analysis.heterogeneity.items() if heterogeneity else ():
        lines.append(f"By {table.by}, {arm} (exploratory): {table.caveat}")
        for row in table.records():
            lines.append(
                f"  {row[table.by]:<18} {_pct(row.get('relative'))} "
                f"[{_pct(row.get('rel_ci_low'))}, {_pct(row.get('rel_ci_high'))}], "
                f"p Holm {_p(row.get('p_value_holm'))}"
            )
    for note in analysis.notes:
        lines.append(f"Note: {note}")
    return lines


def _p(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3g}"
