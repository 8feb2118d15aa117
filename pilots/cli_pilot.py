"""The pilot commands: ``design``, ``assign`` and ``rollout`` (``evaluate PILOT.yaml`` is
the pilot mode of ``evaluate``, in :mod:`loyalty_pilot.pilots.cli`).

Registered on the main group when :mod:`loyalty_pilot.pilots.cli` is imported. Like the
rest of the command line, nothing heavy is imported before a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from loyalty_pilot.pilots.cli import (
    CONTEXT,
    check_json_path,
    json_option,
    main,
    progress,
    version_option,
    workspace_option,
    write_json,
)

PILOT_ARG = click.argument(
    "pilot_file", metavar="PILOT.yaml", type=click.Path(dir_okay=False, path_type=Path)
)


@main.command(context_settings=CONTEXT)
@PILOT_ARG
@workspace_option()
@click.option("--no-power", is_flag=True, help="Skip the power analysis (placebo pilots).")
@json_option
def design(pilot_file: Path, workspace: Path, no_power: bool, json_path: Path | None) -> None:
    """Size and propose a pilot: eligibility, power, recommended design, assignment, balance.

    Reads the pilot YAML and the workspace's history. Prints who is eligible (and why the
    others are not), the uplift the pilot must detect (the programme arms' break-even
    uplift, or decision.min_uplift), the power table (MDE at the target power for every
    size x duration of the grid, by placebo pilots on the chain's own pre-period, with
    the analytic cross-check and the false-positive rate at zero effect), the recommended
    design, the proposed assignment and its balance. Nothing is frozen: see `assign`.

    \b
    Example:
      loyalty-pilot design examples/pilots/cash-vs-gift.yaml --workspace demo-workspace
      loyalty-pilot design pilot.yaml --json design.json
    """
    from loyalty_pilot.pilots.pilot_design import run_design
    from loyalty_pilot.pilots.pilot_report import design_lines
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.workspace import open_workspace

    check_json_path(json_path)
    pf = load_pilot(pilot_file)
    con = open_workspace(workspace).connect(create=False, read_only=True)
    try:
        result = run_design(con, pf, with_power=not no_power, progress=progress)
    finally:
        con.close()
    for line in design_lines(result):
        click.echo(line)
    write_json(json_path, result.to_dict())


@main.command(context_settings=CONTEXT)
@PILOT_ARG
@workspace_option()
@click.option(
    "--new-version", is_flag=True, help="Freeze a new version when the inputs have changed."
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also export the frozen assignment as CSV for store operations.",
)
@json_option
def assign(
    pilot_file: Path,
    workspace: Path,
    new_version: bool,
    csv_path: Path | None,
    json_path: Path | None,
) -> None:
    """Freeze the pilot's assignment in the workspace (immutable, versioned).

    Draws the assignment exactly as `design` proposes it and records it with the pilot's
    name, version, design hash, data fingerprint, seed and creation time. Re-running with
    the same inputs confirms the frozen assignment; with different inputs (design, arms,
    data) it refuses with exit code 2 unless --new-version is given. Every version stays
    in the history.

    \b
    Example:
      loyalty-pilot assign examples/pilots/cash-vs-gift.yaml --csv stores.csv
      loyalty-pilot assign pilot.yaml --new-version
    """
    from loyalty_pilot.pilots.pilot_freeze import freeze_pilot
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.registry import export_csv
    from loyalty_pilot.pilots.workspace import open_workspace

    check_json_path(json_path)
    pf = load_pilot(pilot_file)
    if csv_path is not None and not csv_path.parent.exists():
        from loyalty_pilot.pilots.errors import UserError

        raise UserError(f"--csv {csv_path}: folder {csv_path.parent} does not exist")
    con = open_workspace(workspace).connect(create=False)
    try:
        outcome = freeze_pilot(con, pf, new_version=new_version, progress=progress)
    finally:
        con.close()
    frozen = outcome.frozen
    words = {
        "created": "frozen",
        "confirmed": "confirmed: the same assignment is already frozen",
        "new_version": "frozen as a new version",
    }[outcome.status]
    click.echo(
        f"pilot {frozen.pilot} version {frozen.version}: {words} "
        f"({frozen.created_at:%Y-%m-%d %H:%M:%S})"
    )
    click.echo(f"  design hash {frozen.design_hash[:12]}, data {frozen.data_fingerprint[:12]}")
    counts = frozen.units.groupby("arm").size()
    click.echo("  " + ", ".join(f"{arm}: {n}" for arm, n in counts.items()))
    if csv_path is not None:
        export_csv(frozen, csv_path)
        click.echo(f"  exported to {csv_path}")
    payload: dict[str, Any] = {"status": outcome.status, **frozen.to_dict()}
    write_json(json_path, payload)


@main.command(context_settings=CONTEXT)
@PILOT_ARG
@workspace_option()
@version_option
@json_option
def rollout(pilot_file: Path, workspace: Path, version: int | None, json_path: Path | None) -> None:
    """Show the staged rollout plan and where the pilot stands.

    Wave 0 is the frozen pilot; the later waves come from the pilot YAML (by region or by
    share of stores), each gated on a GO for the one before. A holdout of stores stays
    untreated as controls for evaluating later waves (staggered adoption). The frozen
    version is the latest whose design matches the YAML (--version N: that one).

    \b
    Example:
      loyalty-pilot rollout examples/pilots/cash-vs-gift.yaml
      loyalty-pilot rollout pilot.yaml --version 1
    """
    from loyalty_pilot.pilots.pilot_freeze import rollout_plan
    from loyalty_pilot.pilots.pilot_report import rollout_lines
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.workspace import open_workspace

    pf = load_pilot(pilot_file)
    con = open_workspace(workspace).connect(create=False, read_only=True)
    try:
        plan, stage, frozen = rollout_plan(con, pf, version=version, say=progress)
    finally:
        con.close()
    for line in rollout_lines(pf, plan, stage, frozen):
        click.echo(line)
    write_json(
        json_path,
        {
            "pilot": pf.spec.pilot,
            "stage": stage,
            "frozen_version": None if frozen is None else frozen.version,
            **plan.to_dict(),
        },
    )


@main.command(context_settings=CONTEXT)
@PILOT_ARG
@workspace_option()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write each recalibrated programme as YAML into this folder.",
)
@click.option("--horizon-months", default=12, show_default=True, type=click.IntRange(1, 120))
@click.option("--draws", default=1000, show_default=True, type=click.IntRange(100, 100_000))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the draws.")
@version_option
@json_option
def recalibrate(
    pilot_file: Path,
    workspace: Path,
    out_dir: Path | None,
    horizon_months: int,
    draws: int,
    seed: int,
    version: int | None,
    json_path: Path | None,
) -> None:
    """Update the programmes' behavioural assumptions with the pilot's evidence.

    Each programme arm's uplift against the control (with its standard error) updates
    the programme file's response assumptions, precision-weighted; the result is saved as
    a new, versioned assumption set in the workspace (and, with --out, as programme YAML),
    and the full-chain rollout is projected before and after (profit P10 / P50 / P90).
    The frozen version read is the latest whose design matches the YAML (--version N:
    that one). Only this command saves assumption sets; decide and report do not.

    \b
    Example:
      loyalty-pilot recalibrate examples/pilots/cash-vs-gift.yaml --out recalibrated/
      loyalty-pilot recalibrate pilot.yaml --version 2
    """
    from loyalty_pilot.pilots.pilot_freeze import require_frozen
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.recalibrate import recalibrate_pilot, recalibration_lines
    from loyalty_pilot.pilots.workspace import open_workspace

    check_json_path(json_path)
    pf = load_pilot(pilot_file)
    con = open_workspace(workspace).connect(create=False)
    try:
        frozen = require_frozen(con, pf, workspace, version=version, say=progress)
        results = recalibrate_pilot(
            con, pf, frozen, out=out_dir, horizon_months=horizon_months, draws=draws,
            seed=seed,
        )  # fmt: skip
    finally:
        con.close()
    for line in recalibration_lines(results):
        click.echo(line)
    write_json(json_path, {"pilot": pf.spec.pilot, "arms": [r.to_dict() for r in results]})


def _document(
    pilot_file: Path, workspace: Path, seed: int, draws: int, version: int | None
) -> tuple[Any, Any]:
    """Build the decision document of the frozen version the YAML describes (or
    ``version``); the workspace's assumption sets are left as they are."""
    from loyalty_pilot.pilots.pilot_freeze import require_frozen
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.report_build import build_document
    from loyalty_pilot.pilots.workspace import open_workspace

    pf = load_pilot(pilot_file)
    con = open_workspace(workspace).connect(create=False)
    try:
        frozen = require_frozen(con, pf, workspace, version=version, say=progress)
        document, _raw = build_document(con, pf, frozen, seed=seed, draws=draws,
                                        progress=progress)  # fmt: skip
    finally:
        con.close()
    return pf, document


@main.command(context_settings=CONTEXT)
@PILOT_ARG
@workspace_option()
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True)
@click.option("--draws", default=1000, show_default=True, type=click.IntRange(100, 100_000))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the draws.")
@version_option
@json_option
def decide(
    pilot_file: Path,
    workspace: Path,
    lang: str,
    draws: int,
    seed: int,
    version: int | None,
    json_path: Path | None,
) -> None:
    """GO / NO-GO / EXTEND for the frozen pilot, with every reason.

    Applies the decision rules pre-registered in the pilot YAML (decision: alpha,
    min_uplift, min_roi): the primary uplift's interval against the threshold (the
    break-even uplift by default), the guardrails, the recalibrated full-rollout ROI and
    the quality checks (sample ratio, balance, pre-trend, planned weeks or a sequential
    boundary). EXTEND says how many more weeks would settle it. With several variants,
    it says which to roll out and how sure we are. The frozen version read is the latest
    whose design matches the YAML (--version N: that one); nothing is saved.

    \b
    Example:
      loyalty-pilot decide examples/pilots/cash-vs-gift.yaml --json decision.json
      loyalty-pilot decide pilot.yaml --version 1
    """
    from loyalty_pilot.reports.summary import decision_lines

    check_json_path(json_path)
    _pf, document = _document(pilot_file, workspace, seed, draws, version)
    for line in decision_lines(document, lang):
        click.echo(line)
    write_json(json_path, document.to_dict())


@main.command(context_settings=CONTEXT)
@PILOT_ARG
@workspace_option()
@click.option(
    "--out",
    "out_dir",
    default="report",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the report files.",
)
@click.option(
    "--format",
    "formats",
    default="html,md,json",
    show_default=True,
    help="Comma-separated: html, md, json, pdf (pdf needs the pdf extra).",
)
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True)
@click.option("--draws", default=1000, show_default=True, type=click.IntRange(100, 100_000))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the draws.")
@version_option
def report(
    pilot_file: Path, workspace: Path, out_dir: Path, formats: str, lang: str, draws: int,
    seed: int, version: int | None,
) -> None:  # fmt: skip
    """Write the management report of the frozen pilot: the decision and its evidence.

    One self-contained HTML page (opens offline on a phone or a projector), the same
    content in Markdown for e-mail, the decision document as JSON (validated against its
    schema) and, with the pdf extra, a PDF. Page one: the decision, why, the uplift of
    each arm in plain words, the full-rollout cost and profit (P10 / P50 / P90) and the
    three biggest risks; then the charts, the SMART scorecards, the design, the
    assumptions, the rollout plan and a reproducibility footer. The frozen version read
    is the latest whose design matches the YAML (--version N: that one); the workspace's
    assumption sets are not changed (see `recalibrate`).

    \b
    Example:
      loyalty-pilot report examples/pilots/cash-vs-gift.yaml --out report --lang fr
      loyalty-pilot report pilot.yaml --format html,pdf
    """
    from loyalty_pilot.pilots.errors import UserError
    from loyalty_pilot.reports.render import FORMATS, write_report
    from loyalty_pilot.reports.summary import decision_lines

    wanted = [f.strip().lower() for f in formats.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise UserError(f"--format {formats!r}: choose among {', '.join(FORMATS)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: is a file, not a folder")
    _pf, document = _document(pilot_file, workspace, seed, draws, version)
    try:
        written = write_report(document, out_dir, formats=tuple(wanted), lang=lang)
    except RuntimeError as exc:  # e.g. the pdf extra is not installed
        raise UserError(str(exc)) from None
    for line in decision_lines(document, lang):
        click.echo(line)
    for kind, path in written.items():
        click.echo(f"{kind}: {path}")
