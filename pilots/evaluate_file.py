"""``loyalty-pilot evaluate``: a pilot's unit x period panel file -> one comparison per arm.

The user's file (CSV or Parquet, small: one row per unit and period) is read whole with
pandas, checked, and handed to :func:`loyalty_pilot.experiments.evaluate.evaluate`. Every
mistake is a :class:`UserError` naming the file, the line (CSV: the header is line 1;
Parquet: the row, from 1), the column and the value:

* the unit, arm, outcome, period (and strata / pairs) columns exist;
* unit, arm and period cells are not empty; the outcome is a finite number;
* every unit has one arm (and one stratum / pair) across its rows, one row per period;
* the arm column holds arm names, or 0/1 (0 is ``control`` and 1 ``treatment``, unless
  ``--control 1``); ``--control`` is one of its values;
* ``--start`` is read like the period column: a number for numeric periods, a date when
  the column parses as dates, else text; it must be one of the periods or between them.

Degenerate data (an arm with one unit, a start on the first period) is not an error: the
comparison's ``status`` says what is missing.

``--method synthetic_control`` with several treated units in an arm averages them into one
treated unit; its placebos are then averages of as many units drawn from the arm and its
control (``placebo: reassignment`` in the JSON, seeded), never single stores, whose
noisier paths made the average look significant in every A/A draw (see
:mod:`loyalty_pilot.experiments.synthetic_control`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_pilot.experiments.evaluate import Evaluation, arm_name, evaluate, is_zero_one
from loyalty_pilot.experiments.panel import PanelError
from loyalty_pilot.experiments.results import OK, STATUSES, Comparison
from loyalty_pilot.pilots.errors import UserError

CSV_SUFFIXES = (".csv", ".txt", ".csv.gz", ".txt.gz")
TSV_SUFFIXES = (".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def evaluate_file(
    path: Path | str,
    *,
    unit: str,
    arm: str,
    outcome: str,
    period: str,
    start: str,
    control: str | None = None,
    method: str = "did",
    design: str = "complete",
    strata: str | None = None,
    pairs: str | None = None,
    alpha: float = 0.05,
    seed: int | None = 0,
    scale: str = "auto",
) -> Evaluation:
    """Read, check and evaluate the panel in ``path`` (see the module doc).

    ``unit, arm, outcome, period, strata, pairs`` are column names; ``start`` and
    ``control`` are text as typed on the command line; ``seed`` seeds the randomization
    draws of ``method="ri"``.
    """
    path = Path(path)
    _check_design(method, design, strata, pairs)
    frame, parquet = read_panel(path)
    where = _Where(path, parquet)
    columns = [unit, arm, outcome, period] + [c for c in (strata, pairs) if c is not None]
    for column in columns:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise UserError(f"{path}: no column {column!r} (columns: {found})")
        if not parquet and f"{column}.1" in frame.columns:  # pandas renames a repeated name
            raise UserError(f"{path}: column {column!r} appears twice in the header")
    if frame.empty:
        raise UserError(f"{path}: no rows")
    for column in (unit, arm, period):
        empty = frame[column].isna().to_numpy()
        if empty.any():
            raise UserError(f"{where(_first(empty))}: column {column!r} is empty")
    values = _numeric_outcome(frame, outcome, where)
    _one_value_per_unit(frame, unit, arm, where, "is in two arms")
    for column in (strata, pairs):
        if column is not None:
            _one_value_per_unit(frame, unit, column, where, f"has two values in column {column!r}")
    control_value = _control(frame[arm], arm, control)
    periods, start_value = _periods(frame[period], period, start)
    _one_row_per_period(frame, unit, period, where)

    panel = frame.assign(**{outcome: values, period: periods})
    assignment = frame.groupby(unit, sort=False)[arm].first()
    try:
        return evaluate(
            panel,
            assignment,
            unit=unit,
            period=period,
            outcome=outcome,
            start=start_value,
            method=method,
            control=control_value,
            alpha=alpha,
            rng=seed,
            strata=strata,
            pairs=pairs,
            design=design,
            scale=scale,
        )
    except (PanelError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None


def read_panel(path: Path) -> tuple[pd.DataFrame, bool]:
    """The file as a DataFrame (CSV columns as pandas reads them) and whether it is Parquet."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a file")
    name = path.name.lower()
    parquet = name.endswith(PARQUET_SUFFIXES)
    if not parquet and not name.endswith(CSV_SUFFIXES + TSV_SUFFIXES):
        raise UserError(
            f"{path}: unknown file type; expected CSV ({', '.join(CSV_SUFFIXES)}, "
            f"{', '.join(TSV_SUFFIXES)}) or Parquet ({', '.join(PARQUET_SUFFIXES)})"
        )
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    try:
        if parquet:
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if name.endswith(TSV_SUFFIXES) else ","
            frame = pd.read_csv(path, sep=sep)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas' parser errors too
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "Parquet" if parquet else "CSV"
        raise UserError(f"{path}: cannot be read as {kind}: {first}") from None
    return frame.reset_index(drop=True), parquet


class _Where:
    """``FILE:LINE`` of a row position (CSV, header = line 1) or ``FILE: row N`` (Parquet)."""

    def __init__(self, path: Path, parquet: bool):
        self.path, self.parquet = path, parquet

    def __call__(self, position: int) -> str:
        if self.parquet:
            return f"{self.path}: row {position + 1}"
        return f"{self.path}:{position + 2}"

    def line(self, position: int) -> str:
        return f"row {position + 1}" if self.parquet else f"line {position + 2}"


def _check_design(method: str, design: str, strata: str | None, pairs: str | None) -> None:
    if method != "ri" and (design != "complete" or strata is not None or pairs is not None):
        raise UserError(f"--design, --strata and --pairs apply to --method ri, not {method}")
    if design == "stratified" and strata is None:
        raise UserError("--design stratified needs --strata COLUMN")
    if design == "paired" and pairs is None:
        raise UserError("--design paired needs --pairs COLUMN")
    if strata is not None and design != "stratified":
        raise UserError("--strata needs --design stratified")
    if pairs is not None and design != "paired":
        raise UserError("--pairs needs --design paired")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _numeric_outcome(frame: pd.DataFrame, outcome: str, where: _Where) -> pd.Series:
    """The outcome as floats; the first empty, non-numeric or infinite cell is an error."""
    raw = frame[outcome]
    if pd.api.types.is_bool_dtype(raw):
        raise UserError(f"{where(0)}: column {outcome!r}: {_plain(raw.iloc[0])!r} is not a number")
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        i = _first(bad)
        value = raw.iloc[i]
        if pd.isna(value):
            raise UserError(f"{where(i)}: column {outcome!r} is empty")
        raise UserError(f"{where(i)}: column {outcome!r}: {_plain(value)!r} is not a number")
    return values


def _one_value_per_unit(
    frame: pd.DataFrame, unit: str, column: str, where: _Where, what: str
) -> None:
    """Every unit has one value of ``column`` across its rows (else: name both lines)."""
    first = frame.groupby(unit, sort=False)[column].transform("first")
    differs = (frame[column] != first).to_numpy() & frame[column].notna().to_numpy()
    if differs.any():
        i = _first(differs)
        u = frame[unit].iloc[i]
        j = _first((frame[unit] == u).to_numpy())
        raise UserError(
            f"{where(i)}: unit {_plain(u)!r} {what}: {_plain(frame[column].iloc[j])!r} "
            f"({where.line(j)}) and {_plain(frame[column].iloc[i])!r} ({where.line(i)})"
        )


def _one_row_per_period(frame: pd.DataFrame, unit: str, period: str, where: _Where) -> None:
    duplicated = frame.duplicated([unit, period]).to_numpy()
    if duplicated.any():
        i = _first(duplicated)
        u, p = frame[unit].iloc[i], frame[period].iloc[i]
        j = _first(((frame[unit] == u) & (frame[period] == p)).to_numpy())
        raise UserError(
            f"{where(i)}: unit {_plain(u)!r} has a second row for {period} {_plain(p)!r} "
            f"(first at {where.line(j)})"
        )


def _control(arms: pd.Series, column: str, control: str | None) -> str:
    """The control arm as :func:`evaluate` takes it; ``--control`` must be an arm value."""
    if is_zero_one(arms):
        if control is None or control.strip() in ("0", "1"):
            return "control" if control is None else control.strip()
        raise UserError(
            f"--control {control!r}: column {column!r} holds 0/1 arms; "
            "use --control 0 (the default) or --control 1"
        )
    names = list(dict.fromkeys(arm_name(v) for v in arms))
    listed = ", ".join(repr(n) for n in names)
    if control is None:
        if "control" not in names:
            raise UserError(
                f"column {column!r} has no arm 'control': name the control arm with --control "
                f"(arms: {listed})"
            )
        return "control"
    if control not in names:
        raise UserError(
            f"--control {control!r} is not an arm of column {column!r} (arms: {listed})"
        )
    return control


def _periods(raw: pd.Series, column: str, start: str) -> tuple[pd.Series, Any]:
    """(periods to compare, start parsed like them); ``start`` must be within the periods.

    Numeric periods -> a number; a column that parses as dates -> dates (``datetime.date``
    when every period is a midnight, else timestamps); anything else -> text.
    """
    if pd.api.types.is_bool_dtype(raw):
        raise UserError(f"column {column!r} holds booleans, not periods")
    if pd.api.types.is_numeric_dtype(raw):
        periods = raw
        try:
            number = float(start)
        except ValueError:
            raise UserError(f"--start {start!r}: column {column!r} holds numbers") from None
        if not math.isfinite(number):
            raise UserError(f"--start {start!r}: not a finite number")
        value: Any = int(number) if number.is_integer() else number
        shown = _show
    else:
        dates = _as_dates(raw)
        if dates is not None:
            try:
                stamp = pd.Timestamp(start.strip())
            except (ValueError, TypeError):
                raise UserError(f"--start {start!r}: column {column!r} holds dates") from None
            if pd.isna(stamp):
                raise UserError(f"--start {start!r}: column {column!r} holds dates")
            if dates.dt.tz is not None and stamp.tz is None:
                stamp = stamp.tz_localize(dates.dt.tz)
            midnight = bool((dates == dates.dt.normalize()).all()) and stamp == stamp.normalize()
            if midnight:
                periods = pd.Series([d.date() for d in dates], index=raw.index, dtype=object)
                value = stamp.date()
            else:
                periods, value = dates, stamp
            shown = _show_date
        else:
            periods = raw.astype(str)
            value = start
            shown = _show
    first, last = periods.min(), periods.max()
    if not first <= value <= last:
        raise UserError(
            f"--start {start!r} is not within the periods of column {column!r} "
            f"({shown(first)} to {shown(last)})"
        )
    return periods, value


def _as_dates(raw: pd.Series) -> pd.Series | None:
    """The column as timestamps when every value parses as a date, else None."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dates = pd.to_datetime(raw)
    except (ValueError, TypeError, OverflowError):
        return None
    if dates.isna().any():
        return None
    return dates


def _show(value: Any) -> str:
    return str(_plain(value))


def _show_date(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def summary_lines(evaluation: Evaluation) -> list[str]:
    """A header, then one line per comparison (see :func:`comparison_line`)."""
    head = (
        f"{evaluation.method} on {evaluation.metric}: {evaluation.n_units} units, "
        f"arms {evaluation.control} (control), {', '.join(evaluation.arms[1:])}, "
        f"alpha {evaluation.alpha:g}"
    )
    return [head] + [comparison_line(c) for c in evaluation.comparisons]


def comparison_line(c: Comparison) -> str:
    """``arm vs baseline: estimate E [lo, hi], relative R% [lo%, hi%], p P, n_units N, status``."""
    line = (
        f"{c.arm} vs {c.baseline}: estimate {_number(c.estimate)} "
        f"[{_number(c.ci_low)}, {_number(c.ci_high)}], relative {_percent(c.relative)} "
        f"[{_percent(c.rel_ci_low)}, {_percent(c.rel_ci_high)}], p {_number(c.p_value)}, "
    )
    adjusted = c.extras.get("p_value_adjusted")
    if adjusted is not None:
        line += f"p Holm {_number(adjusted)}, "
    line += f"n_units {c.n_units}, status {c.status}"
    if c.status != OK:
        line += f" ({STATUSES.get(c.status, c.status)})"
    return line


def _number(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def _percent(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{100 * value:.2f}%"


def evaluate_staggered_file(
    path: Path | str,
    *,
    unit: str,
    arm: str,
    outcome: str,
    period: str,
    control_group: str = "never_treated",
    alpha: float = 0.05,
) -> tuple[Evaluation, dict[str, Any]]:
    """Callaway-Sant'Anna on the panel in ``path``: ``arm`` holds each unit's first treated
    period (0 = never treated), in the units of ``period`` (numbers, or dates like the
    period column's). Returns the evaluation (one comparison per wave and the overall
    ATT) and the JSON-ready ``att_gt`` and aggregates (:meth:`StaggeredResult.to_dict`).
    """
    from loyalty_pilot.experiments.staggered import callaway_santanna

    path = Path(path)
    frame, parquet = read_panel(path)
    where = _Where(path, parquet)
    for column in (unit, arm, outcome, period):
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise UserError(f"{path}: no column {column!r} (columns: {found})")
    if frame.empty:
        raise UserError(f"{path}: no rows")
    for column in (unit, arm, period):
        empty = frame[column].isna().to_numpy()
        if empty.any():
            raise UserError(f"{where(_first(empty))}: column {column!r} is empty")
    values = _numeric_outcome(frame, outcome, where)
    _one_value_per_unit(frame, unit, arm, where, "has two first treated periods")
    _one_row_per_period(frame, unit, period, where)
    periods, first = _numeric_periods(frame[period], frame[arm], period, arm, where)
    panel = pd.DataFrame(
        {"unit": frame[unit].to_numpy(), "period": periods, "y": values, "g": first}
    )
    try:
        result = callaway_santanna(
            panel, unit="unit", period="period", outcome="y", first_treated="g",
            control_group=control_group, alpha=alpha,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    evaluation = result.to_evaluation(outcome)
    return evaluation, result.to_dict()


def _numeric_periods(
    raw: pd.Series, first: pd.Series, period: str, arm: str, where: _Where
) -> tuple[np.ndarray, np.ndarray]:
    """Periods and first treated periods as numbers: numbers as they are; dates as the
    position of each date among the sorted periods (1, 2, ...), 0 staying 'never'."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        numbers = pd.to_numeric(first, errors="coerce")
        bad = numbers.isna().to_numpy()
        if bad.any():
            raise UserError(
                f"{where(_first(bad))}: column {arm!r}: {first.iloc[_first(bad)]!r} is not a "
                f"period of column {period!r} (or 0 for never treated)"
            )
        return raw.to_numpy(dtype=float), numbers.to_numpy(dtype=float)
    dates = _as_dates(raw)
    if dates is None:
        raise UserError(f"column {period!r}: --method staggered needs numeric or date periods")
    order = np.sort(dates.unique())
    position = {pd.Timestamp(d): k + 1 for k, d in enumerate(order)}
    periods = (np.searchsorted(order, dates.to_numpy()) + 1).astype(float)
    text = first.astype(str).str.strip()
    codes: dict[str, float] = {}
    for value in text.unique():  # distinct first treated periods: a few waves
        if value in ("0", "0.0"):
            codes[value] = 0.0
            continue
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            stamp = None
        if stamp is None or stamp not in position:
            row = int(np.flatnonzero((text == value).to_numpy())[0])
            raise UserError(
                f"{where(row)}: column {arm!r}: {value!r} is not a period of column {period!r} "
                "(or 0 for never treated)"
            )
        codes[value] = float(position[stamp])
    out = text.map(codes).to_numpy(dtype=float)
    return periods, out


CUSTOMER_METHODS = ("welch", "ratio", "cuped", "proportion")


def evaluate_customers_file(
    path: Path | str,
    *,
    arm: str,
    outcome: str,
    method: str,
    unit: str | None = None,
    control: str | None = None,
    covariate: str | None = None,
    denominator: str | None = None,
    alpha: float = 0.05,
) -> tuple[Evaluation, float]:
    """Customer-level tests on a table with one row per customer (no period): every
    variant against the control and every variant against every other, Holm-adjusted
    across that family; and the sample-ratio-mismatch p-value over all arms (planned
    shares equal)."""
    from loyalty_pilot.experiments.customer import evaluate_customers

    path = Path(path)
    frame, parquet = read_panel(path)
    where = _Where(path, parquet)
    needed = [arm, outcome] + [c for c in (unit, covariate, denominator) if c is not None]
    for column in needed:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise UserError(f"{path}: no column {column!r} (columns: {found})")
    if frame.empty:
        raise UserError(f"{path}: no rows")
    empty = frame[arm].isna().to_numpy()
    if empty.any():
        raise UserError(f"{where(_first(empty))}: column {arm!r} is empty")
    for column in [outcome] + [c for c in (covariate, denominator) if c is not None]:
        if method != "proportion" or column != outcome:
            _numeric_outcome(frame, column, where)
    if unit is not None:
        repeated = frame[unit].duplicated().to_numpy()
        if repeated.any():
            raise UserError(
                f"{where(_first(repeated))}: {unit} {_plain(frame[unit].iloc[_first(repeated)])!r}"
                " appears twice: one row per customer"
            )
    control_value = _control(frame[arm], arm, control)
    try:
        return evaluate_customers(
            frame, arm=arm, outcome=outcome, method=method, control=control_value,
            covariate=covariate, denominator=denominator, alpha=alpha,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
