"""The ``loyalty-pilot`` command line.

Only click and the standard library are imported at module level, so ``--help`` answers
at once; each command imports what it needs. A user's mistake raises ``UserError``,
shown as one ``Error:`` line with exit code 2.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from loyalty_pilot import __version__
from loyalty_pilot.pilots.errors import UserError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class UserFacingError(click.ClickException):
    """One ``Error:`` line and exit code 2."""

    exit_code = 2


class Group(click.Group):
    """A click group that turns ``UserError`` into a one-line error with exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise UserFacingError(str(exc)) from None


def workspace_option(default: str = "workspace", help_text: str | None = None) -> Callable:
    return click.option(
        "--workspace",
        "workspace",
        default=default,
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=help_text or "Workspace folder (holds the DuckDB database).",
    )


def json_option(func: Callable) -> Callable:
    return click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write the figures as JSON to this file.",
    )(func)


def version_option(func: Callable) -> Callable:
    """``--version N``: read that frozen version of the pilot (default: the one whose
    design hash is the YAML's design's)."""
    return click.option(
        "--version",
        "version",
        type=click.IntRange(1),
        default=None,
        help="Frozen version to read (default: the latest whose design matches the YAML).",
    )(func)


def check_json_path(path: Path | None) -> None:
    """Fail at once (before any long computation) when --json cannot be written."""
    if path is not None and path.parent and not path.parent.exists():
        raise UserError(f"--json {path}: folder {path.parent} does not exist")


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (a temporary file, then a rename)."""
    if path is None:
        return
    if path.parent and not path.parent.exists():
        raise UserError(f"--json {path}: folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value!r}: not an ISO date (YYYY-MM-DD)") from None


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="loyalty-pilot")
def main() -> None:
    """Simulate, pilot and evaluate a retail loyalty programme before rolling it out.

    \b
    Workflow:
      ingest    load the chain's baskets and stores into a workspace
      generate  or create a synthetic chain with known ground truth
      check     validate programme YAML files, replay them, SMART check
      simulate  project variants: cost, break-even uplift, profit and ROI (Monte Carlo)
      schema    the JSON Schema of a programme (or, --pilot, a pilot) file
      design    size a pilot by power on the chain's history, propose its assignment
      assign    freeze the pilot's assignment (immutable, versioned), export it
      evaluate  a frozen pilot's uplift per arm (PILOT.yaml), or a panel file's
      rollout   the staged rollout plan and where the pilot stands
      panel     store x week / region x week panels for the pilot's statistics
      rfm       customers' recency, frequency, monetary scores and segments
      demo      the whole story on a synthetic chain

    \b
    Example:
      loyalty-pilot demo
      loyalty-pilot ingest --stores stores.csv --baskets baskets.parquet --workspace ws
    """


@main.command(context_settings=CONTEXT)
@click.option("--baskets", type=click.Path(path_type=Path), help="Baskets file (CSV or Parquet).")
@click.option("--stores", type=click.Path(path_type=Path), help="Stores file (CSV or Parquet).")
@workspace_option()
@click.option(
    "--rejects-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where rejects files go (default: WORKSPACE/rejects).",
)
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="Text encoding of CSV files (utf-8, utf-16 or latin-1).",
)
@json_option
def ingest(
    baskets: Path | None,
    stores: Path | None,
    workspace: Path,
    rejects_dir: Path | None,
    encoding: str,
    json_path: Path | None,
) -> None:
    """Load baskets and/or stores into the workspace, validating every row.

    Baskets need the columns basket_id, customer_id (empty = anonymous), store_id, date,
    amount (negative = a return); margin and items are optional. Stores need store_id and
    region; format, size_m2 and opened are optional. Each row is loaded or written to a
    rejects CSV with its line and reason. One call is one transaction; a file loaded
    before (same bytes) loads nothing. Exits 2 when nothing could be loaded or a required
    column is missing.

    \b
    Example:
      loyalty-pilot ingest --stores stores.csv --baskets baskets.csv --workspace ws
      loyalty-pilot ingest --baskets 2026-03.parquet --workspace ws --json ingest.json
    """
    from loyalty_pilot.pilots.ingest import ingest as run_ingest
    from loyalty_pilot.pilots.workspace import open_workspace

    results = run_ingest(
        open_workspace(workspace),
        baskets=baskets,
        stores=stores,
        rejects_dir=rejects_dir,
        encoding=encoding,
    )
    for result in results:
        if result.already_loaded:
            click.echo(
                f"{result.path}: already loaded (same content, sha256 {result.fingerprint[:12]}): "
                "nothing new loaded"
            )
            continue
        line = (
            f"{result.path}: {result.kind} loaded {result.loaded:,} / rejected {result.rejected:,}"
        )
        if result.kind == "baskets":
            line += f" / anonymous {result.anonymous:,} / returns {result.returns:,}"
        click.echo(line)
        if result.rejects_file:
            click.echo(f"  rejected rows, with line and reason: {result.rejects_file}")
        if result.ignored_columns:
            click.echo(f"  columns not used: {', '.join(result.ignored_columns)}")
    main_result = results[-1]
    payload = main_result.to_dict()
    payload["files"] = [r.to_dict() for r in results]
    write_json(json_path, payload)


def _size_options(func: Callable, *, with_start: bool = True) -> Callable:
    """The synthetic chain's size options, shared by ``generate`` and ``demo``."""

    def sized(name: str, default: int, text: str, *dest: str) -> Callable:
        return click.option(name, *dest, default=default, show_default=True,
                            type=click.IntRange(1), help=text)  # fmt: skip

    options = [
        sized("--stores", 48, "Number of stores.", "n_stores"),
        sized("--regions", 5, "Number of regions."),
        sized("--customers", 30_000, "Number of customers."),
        sized("--weeks", 104, "Weeks of history."),
    ]
    if with_start:
        options.append(
            click.option(
                "--start", default="2024-01-01", show_default=True, help="First day (a Monday)."
            )
        )
    options.append(click.option("--seed", default=0, show_default=True, type=int,
                                help="Random seed."))  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _chain_options(func: Callable) -> Callable:
    return _size_options(func, with_start=True)


@main.command(context_settings=CONTEXT)
@_chain_options
@click.option(
    "--effect-stores",
    default=None,
    help="Comma-separated store ids that receive an injected programme effect.",
)
@click.option("--effect-start", default=None, help="First day of the injected effect (ISO date).")
@click.option(
    "--visit-uplift",
    default=0.0,
    show_default=True,
    type=float,
    help="Injected relative visit uplift in the effect stores.",
)
@click.option(
    "--basket-uplift",
    default=0.0,
    show_default=True,
    type=float,
    help="Injected relative basket-size uplift in the effect stores.",
)
@click.option(
    "--churn-reduction",
    default=0.0,
    show_default=True,
    type=float,
    help="Injected relative reduction of the dropout hazard.",
)
@workspace_option()
@json_option
def generate(
    n_stores: int,
    regions: int,
    customers: int,
    weeks: int,
    start: str,
    seed: int,
    effect_stores: str | None,
    effect_start: str | None,
    visit_uplift: float,
    basket_uplift: float,
    churn_reduction: float,
    workspace: Path,
    json_path: Path | None,
) -> None:
    """Create a synthetic chain with known ground truth and ingest it into a workspace.

    Stores in regions with formats, sizes, levels and trends; customers with
    heterogeneous visit rates, basket sizes and dropout; seasonality and holiday peaks.
    An effect can be injected into chosen stores from a chosen date: the ground truth
    that the pilot's estimators are checked against. The generated files and the truth
    (truth.json, customers.parquet) are kept in WORKSPACE/generated.

    \b
    Example:
      loyalty-pilot generate --stores 40 --regions 4 --seed 7 --workspace ws
      loyalty-pilot generate --workspace ws2 --effect-stores S001,S002 \\
          --effect-start 2025-09-01 --visit-uplift 0.05
    """
    from loyalty_pilot.pilots.chain import build_chain
    from loyalty_pilot.pilots.workspace import open_workspace

    first = parse_day(start, "--start")
    effect = None
    if effect_stores:
        effect = {
            "stores": tuple(s.strip() for s in effect_stores.split(",") if s.strip()),
            "start": parse_day(effect_start, "--effect-start") or first,
            "visit_uplift": visit_uplift,
            "basket_uplift": basket_uplift,
            "churn_reduction": churn_reduction,
        }
    elif effect_start or visit_uplift or basket_uplift or churn_reduction:
        raise UserError("--effect-stores is required with an injected effect")
    summary = build_chain(
        open_workspace(workspace),
        stores=n_stores,
        regions=regions,
        customers=customers,
        weeks=weeks,
        seed=seed,
        start=first,
        effect=effect,
    )
    click.echo(f"synthetic chain written to {workspace} in {summary['seconds']:.1f} s")
    _print_summary(summary["chain"])
    write_json(json_path, summary)


@main.command(context_settings=CONTEXT)
@functools.partial(_size_options, with_start=False)
@workspace_option("demo-workspace", "Demo workspace folder (replaced at each run).")
@json_option
def demo(
    n_stores: int,
    regions: int,
    customers: int,
    weeks: int,
    seed: int,
    workspace: Path,
    json_path: Path | None,
) -> None:
    """Run the whole story on a synthetic chain, in a fresh demo workspace.

    Generates a chain (48 stores in 5 regions, 30,000 customers, two years by default),
    ingests it through the validated ingest, and prints the chain's summary: stores,
    regions, customers, baskets, sales by region and RFM segment shares.

    \b
    Example:
      loyalty-pilot demo
      loyalty-pilot demo --customers 5000 --weeks 52 --workspace /tmp/demo --json demo.json
    """
    from loyalty_pilot.pilots.chain import build_chain, reset_demo_workspace
    from loyalty_pilot.pilots.demo_story import test_start
    from loyalty_pilot.pilots.programmes import comparison_table, evaluate, example_programmes
    from loyalty_pilot.pilots.workspace import open_workspace

    ws = reset_demo_workspace(open_workspace(workspace))
    chain_start = date(2024, 1, 1)
    start = test_start(chain_start, weeks, n_stores)
    summary = build_chain(
        ws,
        stores=n_stores,
        regions=regions,
        customers=customers,
        weeks=weeks,
        seed=seed,
        start=chain_start,
        until=start,
    )
    click.echo(f"loyalty-pilot demo: synthetic chain in {workspace} ({summary['seconds']:.1f} s)")
    if start is not None:
        click.echo(f"(history up to {start}; the pilot's {weeks - (start - chain_start).days // 7}"
                   " test weeks are synthesized after the design is frozen)")  # fmt: skip
    _print_summary(summary["chain"])

    reports = evaluate(example_programmes(), _baskets(ws), seed=seed)
    click.echo("")
    click.echo("Example programmes replayed on the chain's baskets (exact, no behaviour change):")
    click.echo(comparison_table(reports))
    summary["variants"] = [r.to_dict() for r in reports]

    from loyalty_pilot.pilots.simulate import comparison_table as projection_table
    from loyalty_pilot.pilots.simulate import simulate as run_simulate

    head_to_head = [p for p in example_programmes() if p.stem in ("cash-voucher", "gift-catalogue")]
    con = ws.connect(read_only=True)
    try:
        projected = run_simulate(head_to_head, con, horizon_months=12, draws=2000, seed=seed)
    finally:
        con.close()
    summary["projection"] = [v.to_dict() for v in projected]
    click.echo("")
    click.echo(
        "Cash vs gift, projected over 12 months with each file's behavioural assumptions "
        "(2,000 draws; P10 / P50 / P90):"
    )
    click.echo(projection_table(summary["projection"]))

    if start is None:
        click.echo("\nchain too small for the demo pilot (needs 6 stores and 42 weeks)")
    else:
        break_even = {
            {"cash-voucher": "cash", "gift-catalogue": "gift"}[Path(v.report.path).stem]: (
                v.projection.break_even_uplift
            )
            for v in projected
        }
        from loyalty_pilot.pilots.cli_evaluate import _demo_pilot

        summary["pilot"] = _demo_pilot(ws, summary, chain_start, start, seed, break_even)
    write_json(json_path, summary)


@main.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the enrolment draw.")
@workspace_option(
    help_text="Workspace whose baskets the programmes are replayed on "
    "(without one, only Simple and Measurable are checked)."
)
@json_option
def check(files: tuple[Path, ...], seed: int, workspace: Path, json_path: Path | None) -> None:
    """Validate programme files and print their SMART check side by side.

    Every mistake of every file is reported at once as FILE:LINE:COLUMN: key: reason
    (exit code 2). With a workspace, each programme is replayed exactly on its baskets:
    Attainable (share of members reaching a first advantage within 12 months), Realistic
    (cost against the budget) and Time-bound (days to a first advantage for a
    median-frequency member) come from that replay.

    \b
    Example:
      loyalty-pilot check examples/programmes/*.yaml --workspace ws
      loyalty-pilot check my-programme.yaml --json smart.json
    """
    from loyalty_pilot.pilots.programmes import comparison_table, evaluate
    from loyalty_pilot.pilots.workspace import open_workspace

    ws = open_workspace(workspace)
    baskets = _baskets(ws) if ws.exists() else None
    reports = evaluate(list(files), baskets, seed=seed)
    for report in reports:
        click.echo(f"{report.path}: valid programme {report.programme.programme!r}")
    if baskets is None:
        click.echo(
            f"no workspace at {workspace}: Attainable, Realistic and Time-bound need "
            "the chain's baskets (--workspace DIR)"
        )
    click.echo(comparison_table(reports))
    if baskets is not None:
        from loyalty_pilot.pilots.simulate import smart_lines

        checks = [(r.programme.programme, r.smart.to_dict()) for r in reports]
        for line in smart_lines(checks):
            click.echo(line)
    write_json(json_path, {"variants": [r.to_dict() for r in reports]})


@main.command(context_settings=CONTEXT)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file instead of printing it.",
)
@click.option("--pilot", "pilot", is_flag=True, help="The schema of a pilot file instead.")
def schema(out: Path | None, pilot: bool) -> None:
    """Print the JSON Schema of a programme file, for editor completion and checks.

    \b
    Example:
      loyalty-pilot schema --out programme.schema.json
      loyalty-pilot schema --pilot --out pilot.schema.json
      # VS Code (YAML extension): # yaml-language-server: $schema=programme.schema.json
    """
    if pilot:
        from loyalty_pilot.pilots.pilotspec import pilot_json_schema as make_schema
    else:
        from loyalty_pilot.pilots.specfile import programme_json_schema as make_schema

    text = json.dumps(make_schema(), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    if out.parent and not out.parent.exists():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    out.write_text(text, encoding="utf-8")
    click.echo(f"JSON Schema written to {out}")


def _baskets(ws: Any) -> Any:
    """The workspace's baskets as a DataFrame (read-only connection)."""
    from loyalty_pilot.pilots.programmes import workspace_baskets

    con = ws.connect(read_only=True)
    try:
        return workspace_baskets(con)
    finally:
        con.close()


@main.command(context_settings=CONTEXT)
@click.option(
    "--level",
    type=click.Choice(["store", "region"]),
    default="store",
    show_default=True,
    help="Unit of the panel.",
)
@click.option("--start", default=None, help="First week (ISO date; default: first basket).")
@click.option("--end", default=None, help="Last week (ISO date; default: last basket).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file (.csv or .parquet).",
)
@workspace_option()
def panel(level: str, start: str | None, end: str | None, out: Path, workspace: Path) -> None:
    """Write the store x week or region x week panel (sales, baskets, customers).

    Balanced: every unit and week appears, with zeros where nothing was sold.

    \b
    Example:
      loyalty-pilot panel --level region --out region_week.csv --workspace ws
    """
    from loyalty_pilot.pilots.panels import region_week_panel, store_week_panel
    from loyalty_pilot.pilots.workspace import open_workspace

    con = open_workspace(workspace).connect(create=False)
    build = store_week_panel if level == "store" else region_week_panel
    frame = build(con, start=parse_day(start, "--start"), end=parse_day(end, "--end"))
    con.close()
    _write_frame(frame, out)
    click.echo(f"{level} x week panel: {len(frame):,} rows written to {out}")


@main.command(context_settings=CONTEXT)
@click.option("--as-of", default=None, help="Reference date (default: day after the last basket).")
@click.option(
    "--window-days",
    default=365,
    show_default=True,
    type=click.IntRange(1),
    help="History window in days.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the customer table here (.csv or .parquet).",
)
@workspace_option()
@json_option
def rfm(
    as_of: str | None, window_days: int, out: Path | None, workspace: Path, json_path: Path | None
) -> None:
    """Score customers on recency, frequency and monetary value (1-5) and segment them.

    Prints the share of customers per segment (champions, loyal, at risk, lost, ...).

    \b
    Example:
      loyalty-pilot rfm --workspace ws --out rfm.csv
      loyalty-pilot rfm --as-of 2026-01-01 --window-days 180 --json segments.json
    """
    from loyalty_pilot.pilots.panels import customer_rfm
    from loyalty_pilot.pilots.workspace import open_workspace

    con = open_workspace(workspace).connect(create=False)
    table = customer_rfm(con, as_of=parse_day(as_of, "--as-of"), window_days=window_days)
    con.close()
    if out is not None:
        _write_frame(table, out)
    counts = table["segment"].value_counts()
    rows = [
        {"segment": str(seg), "customers": int(n), "share": float(n) / max(len(table), 1)}
        for seg, n in counts.items()
    ]
    click.echo(f"{len(table):,} customers scored")
    for row in rows:
        click.echo(f"  {row['segment']:<20} {row['customers']:>8,}  {row['share']:6.1%}")
    write_json(json_path, {"customers": len(table), "segments": rows})


@main.command(context_settings=CONTEXT)
@click.argument(
    "pilot_file",
    metavar="[PILOT.yaml]",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option(
    "--data",
    "data",
    type=click.Path(path_type=Path),
    help="Panel file (CSV or Parquet): one row per unit and period (file mode).",
)
@click.option("--unit", help="Column of the unit (store, region, ...).")
@click.option("--arm", "arm", help="Column of the arm: names, or 0/1.")
@click.option("--outcome", help="Column of the outcome (a number).")
@click.option("--period", help="Column of the period (week, date, ...).")
@click.option("--start", help="First period of the test (a period value or between two).")
@click.option(
    "--control",
    default=None,
    help="Arm value of the control arm [default: 'control'; with 0/1 arms, 0].",
)
@click.option(
    "--method",
    type=click.Choice(
        [
            *("did", "ancova", "ri", "synthetic_control", "event_study", "staggered"),
            *("welch", "ratio", "cuped", "proportion"),
        ]
    ),
    default=None,
    help="Estimator (ri: randomization inference; did: CR2 intervals) [default: did; "
    "with PILOT.yaml, its evaluation.method].",
)
@click.option(
    "--design",
    type=click.Choice(["complete", "stratified", "paired"]),
    default="complete",
    show_default=True,
    help="How the arms were randomized (--method ri).",
)
@click.option("--strata", default=None, help="Column of the strata (--design stratified).")
@click.option(
    "--covariate", default=None, help="Column of the pre-period covariate (--method cuped)."
)
@click.option(
    "--denominator",
    default=None,
    help="Column of the ratio's denominator, e.g. baskets for basket size (--method ratio).",
)
@click.option(
    "--control-group",
    type=click.Choice(["never_treated", "not_yet_treated"]),
    default="never_treated",
    show_default=True,
    help="Controls of --method staggered.",
)
@click.option("--pairs", default=None, help="Column of the pairs (--design paired).")
@click.option(
    "--alpha",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Level of the two-sided intervals.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of the randomization draws."
)
@click.option(
    "--scale",
    type=click.Choice(["auto", "level", "log"]),
    default=None,
    help="log: estimate a multiplicative effect on log(outcome), the scale on which the "
    "intervals keep their coverage for sales of stores of different sizes (see "
    "BENCHMARKS.md); relative = exp(effect) - 1. auto: log when every value is positive "
    "[default: auto; with PILOT.yaml, its evaluation.scale].",
)
@version_option
@workspace_option()
@json_option
def evaluate(
    pilot_file: Path | None,
    data: Path | None,
    unit: str | None,
    arm: str | None,
    outcome: str | None,
    period: str | None,
    start: str | None,
    control: str | None,
    method: str | None,
    design: str,
    strata: str | None,
    covariate: str | None,
    denominator: str | None,
    control_group: str,
    pairs: str | None,
    alpha: float,
    seed: int,
    scale: str | None,
    version: int | None,
    workspace: Path,
    json_path: Path | None,
) -> None:
    """Compare every arm of a pilot with the control arm on a unit x period panel.

    Pilot mode (PILOT.yaml): the frozen assignment of `assign`, evaluated on the
    workspace's store x week panel with the pilot's own method, its control and alpha;
    randomization inference re-draws the frozen design's own mechanism. The frozen
    version read is the latest whose design matches the YAML (--version N: that one).

    File mode (--data): the panel of a file, with the columns named by the options.
    --method staggered: the arm column holds each unit's first treated period (0 = never;
    Callaway-Sant'Anna group-time ATTs, by wave, by event time and overall; no --start).
    --method welch | ratio | cuped | proportion: customer-level tests on one row per
    customer (no period, no --start): every variant against the control and against each
    other, Holm-adjusted, and the sample-ratio-mismatch p-value (srm_p_value).

    One line per arm: the effect per unit and period with its interval, the relative
    uplift, the p-value, the units compared and a status (ok, or why a figure is missing,
    e.g. one_unit_per_arm, no_pre_period). Periods on or after --start are the test. Arms
    are names, or 0/1 (0 = control). Exits 2 naming the column, line or value on bad input.

    \b
    Example:
      loyalty-pilot evaluate examples/pilots/cash-vs-gift.yaml --json evaluation.json
      loyalty-pilot evaluate pilot.yaml --version 1
      loyalty-pilot evaluate --data store_week.csv --unit store_id --arm arm \\
          --outcome sales --period week --start 2026-03-30
      loyalty-pilot evaluate --data panel.parquet --unit store_id --arm arm --outcome sales \\
          --period week --start 2026-03-30 --method ri --design stratified --strata region \\
          --json evaluation.json
    """
    from loyalty_pilot.pilots.evaluate_file import evaluate_file, summary_lines

    if pilot_file is not None:
        given = {
            "--unit": unit, "--arm": arm, "--outcome": outcome, "--period": period,
            "--start": start, "--control": control, "--strata": strata, "--pairs": pairs,
            "--covariate": covariate, "--denominator": denominator,
        }  # fmt: skip
        used = [name for name, value in given.items() if value is not None]
        if design != "complete":
            used.append("--design")
        if used:
            raise UserError(
                f"evaluate {pilot_file}: {', '.join(used)} belong to the file mode; the pilot "
                "YAML names its arms, control, metric and design"
            )
        from loyalty_pilot.pilots.cli_evaluate import _evaluate_pilot

        _evaluate_pilot(pilot_file, data, method, scale, seed, workspace, json_path, version)
        return
    if version is not None:
        raise UserError("evaluate: --version reads a frozen pilot; give PILOT.yaml, not --data")
    if data is None:
        raise UserError(
            "evaluate needs PILOT.yaml (a frozen pilot) or --data FILE with --unit, --arm, "
            "--outcome, --period and --start (see `loyalty-pilot evaluate --help`)"
        )
    if method in ("welch", "ratio", "cuped", "proportion"):
        from loyalty_pilot.pilots.cli_evaluate import _evaluate_customers

        _evaluate_customers(data, unit, arm, outcome, method, control, covariate, denominator,
                            alpha, json_path)  # fmt: skip
        return
    if method == "staggered":
        from loyalty_pilot.pilots.cli_evaluate import _evaluate_staggered

        _evaluate_staggered(data, unit, arm, outcome, period, control_group, alpha, json_path)
        return
    given = {"--unit": unit, "--arm": arm, "--outcome": outcome, "--period": period}
    missing = [name for name, value in {**given, "--start": start}.items() if not value]
    if missing:
        raise UserError(f"evaluate --data {data}: missing {', '.join(missing)}")
    result = evaluate_file(
        data,
        unit=unit,
        arm=arm,
        outcome=outcome,
        period=period,
        start=start,
        control=control,
        method=method or "did",
        design=design,
        strata=strata,
        pairs=pairs,
        alpha=alpha,
        seed=seed,
        scale=scale or "auto",
    )
    for line in summary_lines(result):
        click.echo(line)
    write_json(json_path, result.to_dict())


@main.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--horizon-months",
    default=12,
    show_default=True,
    type=click.IntRange(1, 120),
    help="Months projected, from the start of the baskets (or the programme's start).",
)
@click.option(
    "--draws",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Monte Carlo draws of the behavioural assumptions.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of enrolment and draws.")
@workspace_option(help_text="Workspace whose baskets the programmes are projected on.")
@json_option
def simulate(
    files: tuple[Path, ...],
    horizon_months: int,
    draws: int,
    seed: int,
    workspace: Path,
    json_path: Path | None,
) -> None:
    """Project programme variants: cost, break-even uplift, profit and ROI with intervals.

    Each variant is replayed exactly on the workspace's baskets over the horizon (the
    programme starting with empty balances), then its response assumptions (visit and
    basket uplift, churn reduction: mean and sd) are drawn DRAWS times. One column per
    variant: cost and its share of revenue, rewards at cost and as perceived, breakage,
    liability, attainability, the break-even uplift (store sales uplift that pays for the
    programme), projected profit and ROI (P10 / P50 / P90), the payback month (P10 / P50 /
    P90 over all draws, "beyond H" when not within the horizon) beside the share of draws
    that pay back, and the SMART verdict (with a year of baskets or less, Attainable and
    Time-bound are annualized from the members' tenure, said under the table).
    A line above the table says which retention baseline a churn reduction is projected
    on and why: the Pareto/NBD or the BG/NBD (higher log-likelihood), or, when neither
    dropout part is identifiable, empirical retention curves by RFM segment.

    \b
    Example:
      loyalty-pilot simulate examples/programmes/cash-voucher.yaml \\
          examples/programmes/gift-catalogue.yaml --workspace ws
      loyalty-pilot simulate a.yaml b.yaml --horizon-months 24 --draws 5000 --json sim.json
    """
    from loyalty_pilot.pilots.simulate import (
        comparison_table,
        payback_legend,
        retention_line,
        smart_lines,
    )
    from loyalty_pilot.pilots.simulate import simulate as run_simulate
    from loyalty_pilot.pilots.workspace import open_workspace

    con = open_workspace(workspace).connect(create=False, read_only=True)
    stream = sys.stderr
    try:
        with click.progressbar(
            length=draws * len(files), label="Monte Carlo draws", file=stream
        ) as bar:
            seen = [0]

            def progress(done: int, total: int) -> None:
                bar.update(done - seen[0])
                seen[0] = done

            variants = run_simulate(
                list(files),
                con,
                horizon_months=horizon_months,
                draws=draws,
                seed=seed,
                progress=progress,
            )
    finally:
        con.close()
    payload = {"variants": [v.to_dict() for v in variants]}
    click.echo(
        f"{draws:,} draws, seed {seed}; figures over the horizon, programme starting with "
        "empty balances; profit = incremental gross margin - programme cost"
    )
    if payload["variants"]:  # one baseline, fitted once for every variant
        click.echo(retention_line(payload["variants"][0]["retention"]))
    click.echo(comparison_table(payload["variants"]))
    click.echo(payback_legend(payload["variants"]))
    for line in smart_lines([(v["programme"], v["smart"]) for v in payload["variants"]]):
        click.echo(line)
    write_json(json_path, payload)


def progress(message: str) -> None:
    """A step of a long command, on stderr (so --json output and pipes stay clean)."""
    click.echo(f"  ... {message}", err=True)


def _write_frame(frame: Any, out: Path) -> None:
    if out.parent and not out.parent.exists():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: use a .csv or .parquet file name")
    tmp = out.with_name(out.name + ".part")
    if suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(out)


def _print_summary(chain: dict[str, Any]) -> None:
    click.echo(
        f"stores {chain['stores']:,} in {chain['regions']:,} regions; customers "
        f"{chain['customers']:,}; baskets {chain['baskets']:,} "
        f"(anonymous {chain['anonymous_baskets']:,}, returns {chain['returns']:,}); "
        f"{chain['first_date']} to {chain['last_date']}"
    )
    click.echo(f"sales {chain['sales']:,.0f}")
    click.echo("sales by region:")
    for row in chain["sales_by_region"]:
        click.echo(
            f"  {row['region']:<12} {row['stores']:>4} stores  {row['sales']:>14,.0f}"
            f"  {row['share']:6.1%}"
        )
    click.echo("RFM segments (customers active in the last 365 days):")
    for row in chain["segment_shares"]:
        click.echo(f"  {row['segment']:<20} {row['customers']:>8,}  {row['share']:6.1%}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# the pilot commands (design, assign, rollout) register themselves on `main`
from loyalty_pilot.pilots import cli_pilot as _cli_pilot  # noqa: E402, F401
