"""The command line's longer helpers: the evaluate modes (customer-level, staggered,
pilot) and the demo's pilot story. Imported by the commands of
:mod:`loyalty_pilot.pilots.cli` when they run.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from loyalty_pilot.pilots.cli import check_json_path, progress, write_json
from loyalty_pilot.pilots.errors import UserError


def _evaluate_customers(
    data: Path,
    unit: str | None,
    arm: str | None,
    outcome: str | None,
    method: str,
    control: str | None,
    covariate: str | None,
    denominator: str | None,
    alpha: float,
    json_path: Path | None,
) -> None:
    """``evaluate --method welch|ratio|cuped|proportion``: one row per customer."""
    from loyalty_pilot.pilots.evaluate_file import evaluate_customers_file, summary_lines

    missing = [name for name, value in {"--arm": arm, "--outcome": outcome}.items() if not value]
    if missing:
        raise UserError(f"evaluate --data {data} --method {method}: missing {', '.join(missing)}")
    if method == "cuped" and covariate is None:
        raise UserError("--method cuped needs --covariate COL (the pre-period value)")
    if method == "ratio" and denominator is None:
        raise UserError("--method ratio needs --denominator COL")
    result, srm = evaluate_customers_file(
        data, arm=arm, outcome=outcome, method=method, unit=unit, control=control,
        covariate=covariate, denominator=denominator, alpha=alpha,
    )  # fmt: skip
    for line in summary_lines(result):
        click.echo(line)
    click.echo(f"sample ratio mismatch: p {srm:.4g} (chi-square over all arms, equal shares)")
    write_json(json_path, {**result.to_dict(), "srm_p_value": srm})


def _evaluate_staggered(
    data: Path,
    unit: str | None,
    arm: str | None,
    outcome: str | None,
    period: str | None,
    control_group: str,
    alpha: float,
    json_path: Path | None,
) -> None:
    """``evaluate --method staggered``: Callaway-Sant'Anna on waves of adoption."""
    from loyalty_pilot.pilots.evaluate_file import evaluate_staggered_file, summary_lines

    given = {"--unit": unit, "--arm": arm, "--outcome": outcome, "--period": period}
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise UserError(f"evaluate --data {data} --method staggered: missing {', '.join(missing)}")
    result, details = evaluate_staggered_file(
        data, unit=unit, arm=arm, outcome=outcome, period=period,
        control_group=control_group, alpha=alpha,
    )  # fmt: skip
    for line in summary_lines(result):
        click.echo(line)
    payload = result.to_dict()
    payload.update({k: v for k, v in details.items() if k not in payload or k == "method"})
    write_json(json_path, payload)


def _evaluate_pilot(
    pilot_file: Path,
    data: Path | None,
    method: str | None,
    scale: str | None,
    seed: int,
    workspace: Path,
    json_path: Path | None,
    version: int | None = None,
) -> None:
    """``evaluate PILOT.yaml``: the frozen version the YAML describes (or ``version``)."""
    from loyalty_pilot.pilots.customer_analysis import analyse_customer_pilot
    from loyalty_pilot.pilots.evaluate_file import summary_lines
    from loyalty_pilot.pilots.pilot_analysis import analyse_pilot
    from loyalty_pilot.pilots.pilot_freeze import require_frozen
    from loyalty_pilot.pilots.pilot_report import analysis_lines, evaluation_lines
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.workspace import open_workspace

    if data is not None:
        raise UserError("evaluate: give PILOT.yaml or --data, not both")
    check_json_path(json_path)
    pf = load_pilot(pilot_file)
    con = open_workspace(workspace).connect(create=False, read_only=True)
    try:
        frozen = require_frozen(con, pf, workspace, version=version, say=progress)
        if frozen.unit_kind == "customer":
            analysis: Any = analyse_customer_pilot(con, pf, frozen)
        else:
            analysis = analyse_pilot(con, pf, frozen, method=method, scale=scale, seed=seed)
    finally:
        con.close()
    if frozen.unit_kind == "customer":
        lines = [
            f"Frozen version {analysis.frozen_version}: test {analysis.test_start} to "
            f"{analysis.test_end}, {analysis.weeks_observed} of {analysis.weeks_planned} weeks "
            "in the data; analysed by customer",
            *summary_lines(analysis.primary),
            f"sample ratio mismatch: p {analysis.srm_p_value:.4g} (against the frozen shares)",
        ]
    else:
        lines = evaluation_lines(analysis.primary) + summary_lines(analysis.primary.evaluation)
    for line in lines + analysis_lines(analysis):
        click.echo(line)
    write_json(json_path, analysis.to_dict())


def _demo_pilot(
    ws: Any,
    summary: dict[str, Any],
    chain_start: date,
    start: date,
    seed: int,
    break_even: dict[str, float],
) -> dict[str, Any]:
    """The demo's pilot: design (sized by power), freeze, synthesize the weeks, evaluate."""
    import math

    from loyalty_pilot.pilots.chain import add_pilot_weeks
    from loyalty_pilot.pilots.demo_story import (
        TEST_WEEKS,
        effects_of,
        truth,
        truth_lines,
        with_truth,
        write_pilot_yaml,
    )
    from loyalty_pilot.pilots.pilot_design import run_design
    from loyalty_pilot.pilots.pilot_freeze import freeze_pilot
    from loyalty_pilot.pilots.pilot_report import analysis_lines, design_lines
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.recalibrate import recalibration_lines, save_recalibrations
    from loyalty_pilot.pilots.report_build import build_document
    from loyalty_pilot.reports.render import write_report
    from loyalty_pilot.reports.summary import decision_lines

    regions = [str(r["region"]) for r in summary["chain"].get("sales_by_region", [])]
    path = write_pilot_yaml(ws.path, chain_start, start, regions, seed)
    pf = load_pilot(path)
    known = {k: (v if math.isfinite(v) else None) for k, v in break_even.items()}
    click.echo("")
    click.echo(f"Pilot design ({path}): sized by placebo pilots on the chain's history")
    con = ws.connect()
    try:
        design = run_design(con, pf, break_even=known, progress=progress)
        for line in design_lines(design):
            click.echo("  " + line if line else "")
        outcome = freeze_pilot(con, pf, design=design)
    finally:
        con.close()
    frozen = outcome.frozen
    click.echo(
        f"Frozen: pilot {frozen.pilot} version {frozen.version} "
        f"(design hash {frozen.design_hash[:12]}, data {frozen.data_fingerprint[:12]})"
    )
    end = start + timedelta(weeks=TEST_WEEKS, days=-1)
    added = add_pilot_weeks(
        ws, summary["parameters"], start=start, end=end,
        effects=effects_of(frozen.arm_of(), start),
    )  # fmt: skip
    loaded = sum(r["loaded"] for r in added["ingest"])
    click.echo(
        f"Pilot weeks {start} to {end} synthesized with a known effect and ingested "
        f"({loaded:,} baskets)"
    )
    con = ws.connect()
    try:
        document, pieces = build_document(con, pf, frozen, seed=seed, progress=progress)
        # the demo runs `recalibrate` too: the same recalibration, saved and written
        recalibrated = save_recalibrations(
            con, pf, frozen, pieces["recalibrated"], out=ws.path / "recalibrated"
        )
    finally:
        con.close()
    analysis = pieces["analysis"]
    primary = analysis.primary.evaluation.to_dict()["comparisons"]
    rows = with_truth(primary)
    click.echo(
        "Evaluation of the frozen pilot: difference in differences on log weekly store "
        "sales, CR2 small-sample intervals (95 %), cash vs gift head to head, p-values "
        "Holm-adjusted across the three comparisons:"
    )
    for line in truth_lines(rows):
        click.echo(line)
    for line in analysis_lines(analysis, heterogeneity=False):
        click.echo("  " + line)
    click.echo("Recalibrated assumptions (precision-weighted) and the full-chain rollout:")
    for line in recalibration_lines(recalibrated):
        click.echo("  " + line)
    written = write_report(document, ws.path / "report", formats=("html", "md", "json"))
    click.echo("")
    for line in decision_lines(document):
        click.echo(line)
    click.echo(f"Report: {written['html']} (also {written['md'].name}, {written['json'].name})")
    return {
        "file": str(path),
        "design": design.to_dict(),
        "frozen": frozen.to_dict(),
        "truth": truth(),
        "evaluation": analysis.to_dict(),
        "comparisons": rows,
        "recalibration": [r.to_dict() for r in recalibrated],
        "decision": document.to_dict()["decision"],
        "report": {k: str(v) for k, v in written.items()},
    }
