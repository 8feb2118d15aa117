"""Evaluate a pilot: every arm against the control arm, by one estimator.

:func:`evaluate` takes the long unit x period panel and the assignment (unit -> arm) and
returns an :class:`Evaluation` with one :class:`~loyalty_pilot.experiments.results.Comparison`
per non-control arm. Each comparison sees only the units of its two arms: the panel is
subset to them and pivoted with :func:`~loyalty_pilot.experiments.panel.wide_panel`, so a
comparison equals the estimator called directly on that two-arm panel.

Mistakes in the input (an unknown control arm, no arm to compare, a unit without an arm,
a non-numeric outcome) raise :class:`~loyalty_pilot.experiments.panel.PanelError` or
``ValueError`` naming the column or value. Degenerate data (an arm with one unit, no
pre-period, ...) is not an error: the comparison carries a status (see
:data:`~loyalty_pilot.experiments.results.STATUSES`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .panel import PanelData, PanelError, wide_panel
from .results import Comparison

METHODS = ("did", "ancova", "ri", "synthetic_control", "event_study", "ratio")
SCALES = ("auto", "level", "log")
ZERO_ONE_NAMES = ("control", "treatment")
"""Arm names given to a 0/1 assignment: the control value, then the other one."""


@dataclass(frozen=True)
class Evaluation:
    """The comparisons of one evaluation, in the order of ``arms`` (control excluded).

    ``method`` is the method asked for (``"ri"`` for randomization inference, whose
    comparisons carry the estimator's own name ``"randomization"``); ``arms`` the arm
    names, control first; ``n_units`` the units of the panel; ``control`` the
    control arm's name.
    """

    comparisons: tuple[Comparison, ...]
    method: str
    metric: str
    n_units: int
    arms: tuple[str, ...]
    control: str = "control"
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``method, metric, alpha, arms, control, n_units, comparisons``.

        Each comparison is :meth:`Comparison.to_dict` (NaN as None, the estimator's extras
        such as ``weights``, ``event_study`` or ``pre_trend_p_value`` at its top level).
        """
        return {
            "method": self.method,
            "metric": self.metric,
            "alpha": self.alpha,
            "arms": list(self.arms),
            "control": self.control,
            "n_units": int(self.n_units),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def evaluate(
    panel: pd.DataFrame,
    assignment: Mapping[Any, Any] | pd.Series,
    *,
    unit: str,
    period: str,
    outcome: str,
    start: Any,
    method: str = "did",
    control: Any = "control",
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = None,
    strata: Mapping[Any, Any] | pd.Series | str | None = None,
    pairs: Mapping[Any, Any] | pd.Series | str | None = None,
    design: str = "complete",
    predictors: pd.DataFrame | None = None,
    n_draws: int = 10_000,
    scale: str = "auto",
    ri_draws: Callable[[str, np.ndarray], np.ndarray] | None = None,
    pre_test_periods: int | None = None,
    adjust: str = "none",
) -> Evaluation:
    """Compare every arm of ``assignment`` with the ``control`` arm on ``outcome``.

    Args:
        panel: long table, one row per (unit, period), balanced within each comparison.
        assignment: unit -> arm name (a mapping or a Series indexed by unit). Units of the
            assignment absent from the panel are ignored; a unit of the panel absent
            from it is an error. Arms given as 0/1 (or booleans) are named ``"control"``
            (the value 0) and ``"treatment"`` (1), unless ``control`` is 1.
        unit, period, outcome: column names in ``panel``.
        start: first period of the test (periods ``>= start`` are post). With a datetime
            period column a string or date is converted to a timestamp.
        method: ``"did"`` (two-way fixed effects, CR2 with Bell-McCaffrey df),
            ``"ancova"``, ``"ri"`` (randomization inference of ``design``),
            ``"synthetic_control"``, ``"event_study"`` or ``"ratio"``
            (:func:`~loyalty_pilot.experiments.ratio.ratio_did`: the uplift of the treated
            units' total sales, on the level data whatever ``scale`` says; its extras
            say ``scale="total"``).
        control: name of the control arm (0/1 assignments: ``"control"``, 0 or 1).
        alpha: level of the two-sided intervals.
        rng: seed or Generator for ``"ri"``. A seed is passed as is to every comparison,
            so each one equals a direct call with that seed.
        strata, pairs: for ``"ri"`` with ``design="stratified"`` / ``"paired"``: unit ->
            label (mapping or Series), or the name of a panel column constant per unit.
        design: ``"complete"``, ``"stratified"`` or ``"paired"`` (``"ri"`` only).
        predictors: for ``"synthetic_control"``: one row per unit, one column per
            predictor.
        n_draws: random assignments drawn by ``"ri"`` when it cannot enumerate them.
        scale: ``"auto"`` (the default: ``"log"`` when every outcome value is positive,
            else ``"level"``), ``"level"`` (the outcome as it is) or ``"log"``: the
            estimator works on
            ``log(outcome)`` (a multiplicative effect, the natural scale for sales of
            stores of very different sizes); ``relative`` is then ``exp(effect) - 1``
            with its interval mapped the same way, and ``estimate`` the absolute effect
            this implies on the treated units' test-period mean (see :func:`from_log`).
        pre_test_periods: for ``"event_study"``: the joint pre-trend test on the last
            this many pre-periods only (with weekly data and few units, all of them are
            more effects than clusters and the test cannot be made).
        adjust: for ``"ratio"``: ``"none"`` or ``"regression"`` (the stores' pre-period
            momentum as a covariate, see :mod:`~loyalty_pilot.experiments.ratio`).
        ri_draws: for ``"ri"`` with a design none of ``"complete"``, ``"stratified"``,
            ``"paired"`` covers (rerandomization): ``ri_draws(arm, units)`` returns the
            design's own re-draws for the comparison of ``arm`` with the control, a 0/1
            array (draws x units, in the order of ``units``, 1 = ``arm``).

    Raises:
        PanelError: a column is missing, the outcome is not numeric, a unit has no arm or
            two labels, the control arm is unknown or is the only arm.
        ValueError: a parameter is invalid (the message names it).
    """
    if method not in METHODS:
        raise ValueError(f"method == {method!r}, must be one of {list(METHODS)}.")
    if scale not in SCALES:
        raise ValueError(f"scale == {scale!r}, must be one of {list(SCALES)}.")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha!r}, must be in (0, 1).")
    if method != "ri" and (
        design != "complete" or strata is not None or pairs is not None or ri_draws is not None
    ):
        raise ValueError(
            f"design, strata, pairs and ri_draws are used by method='ri' only, not {method!r}."
        )
    if method != "ratio" and adjust != "none":
        raise ValueError(f"adjust is used by method='ratio' only, not {method!r}.")
    if method == "ratio":
        from .ratio import _check_adjust

        _check_adjust(adjust)
    if method != "synthetic_control" and predictors is not None:
        raise ValueError(f"predictors are used by method='synthetic_control' only, not {method!r}.")
    _check_columns(panel, unit, period, outcome)
    _check_outcome(panel, unit, period, outcome)

    arms_of, control_name = _arm_names(assignment, control)
    panel_units = pd.unique(panel[unit])
    absent = [u for u in panel_units if u not in arms_of.index]
    if absent:
        raise PanelError(f"unit {_plain(absent[0])!r} of column {unit!r} has no arm")
    arms = [control_name] + [a for a in pd.unique(arms_of) if a != control_name]
    if len(arms) < 2:
        raise PanelError(f"only the control arm {control_name!r}: no other arm to compare")
    if method == "ratio":
        scale = "total"
    elif scale == "auto":
        values = pd.to_numeric(panel[outcome], errors="coerce")
        scale = "log" if bool((values > 0).all()) else "level"
    start = _coerce_start(panel[period], start, period)
    strata = _unit_labels(panel, unit, strata, "strata")
    pairs = _unit_labels(panel, unit, pairs, "pairs")

    comparisons = []
    for arm in arms[1:]:
        members = arms_of.index[arms_of.isin([control_name, arm])]
        subset = panel.loc[panel[unit].isin(members)]
        treated = (arms_of.loc[members] == arm).to_dict()
        data = wide_panel(
            subset, unit=unit, period=period, outcome=outcome, treated=treated, start=start
        )
        level_data = data
        if scale == "log":
            if (data.y <= 0).any():
                i, t = np.argwhere(data.y <= 0)[0]
                raise PanelError(
                    f"scale='log' needs a positive {outcome!r}: unit {_plain(data.units[i])!r}, "
                    f"{period} {_plain(data.periods[t])!r} has {data.y[i, t]:g}"
                )
            data = PanelData(np.log(data.y), data.units, data.periods, data.treated, data.post)
        comparison = _estimate(
            data,
            method,
            arm=arm,
            baseline=control_name,
            metric=outcome,
            alpha=alpha,
            rng=rng,
            strata=strata,
            pairs=pairs,
            design=design,
            predictors=predictors,
            n_draws=n_draws,
            assignments=None if ri_draws is None else ri_draws(arm, data.units),
            pre_test_periods=pre_test_periods,
            adjust=adjust,
        )
        if scale == "log":
            comparison = from_log(comparison, level_data.treated_post_mean())
        elif scale == "level":
            comparison = dataclasses.replace(
                comparison, extras={**comparison.extras, "scale": "level"}
            )
        comparisons.append(comparison)
    return Evaluation(
        comparisons=tuple(comparisons),
        method=method,
        metric=outcome,
        n_units=len(panel_units),
        arms=tuple(arms),
        control=control_name,
        alpha=float(alpha),
    )


def from_log(comparison: Comparison, treated_post_mean: float) -> Comparison:
    """A comparison estimated on ``log(outcome)`` expressed on the outcome's own scale.

    With ``tau`` the effect on the log scale: ``relative = exp(tau) - 1`` and the absolute
    effect on the treated units' test-period mean ``m`` is ``m * (1 - exp(-tau))``. Both
    maps are increasing, so the interval bounds map to intervals with the same coverage.
    The log-scale figures stay in the extras (``log_estimate``, ``log_ci_low``,
    ``log_ci_high``).
    """

    def relative(x: float) -> float:
        return float(np.expm1(x))

    def absolute(x: float) -> float:
        return float(treated_post_mean * -np.expm1(-x))

    tau, low, high = comparison.estimate, comparison.ci_low, comparison.ci_high
    extras = dict(comparison.extras)
    extras.update(scale="log", log_estimate=tau, log_ci_low=low, log_ci_high=high)
    return dataclasses.replace(
        comparison,
        estimate=absolute(tau),
        ci_low=absolute(low),
        ci_high=absolute(high),
        relative=relative(tau),
        rel_ci_low=relative(low),
        rel_ci_high=relative(high),
        extras=extras,
    )


def _estimate(data: PanelData, method: str, **kw: Any) -> Comparison:
    """One comparison by ``method``: the estimators' own functions, nothing added."""
    labels = {key: kw[key] for key in ("arm", "baseline", "metric", "alpha")}
    if method == "did":
        from .did import did

        return did(data, inference="cr2", **labels)
    if method == "ancova":
        from .did import ancova

        return ancova(data, **labels)
    if method == "ratio":
        from .ratio import ratio_did

        return ratio_did(data, adjust=kw["adjust"], **labels)
    if method == "event_study":
        from .did import event_study

        return event_study(data, pre_test_periods=kw["pre_test_periods"], **labels)
    if method == "ri":
        from .randomization import randomization_inference

        return randomization_inference(
            data,
            design=kw["design"],
            strata=_restrict(kw["strata"], data.units),
            pairs=_restrict(kw["pairs"], data.units),
            n_draws=kw["n_draws"],
            rng=kw["rng"],
            assignments=kw["assignments"],
            **labels,
        )
    from .synthetic_control import synthetic_control

    return synthetic_control(data, predictors=kw["predictors"], **labels)


def _check_columns(panel: pd.DataFrame, unit: str, period: str, outcome: str) -> None:
    if not isinstance(panel, pd.DataFrame):
        raise ValueError(f"panel is a {type(panel).__name__}, must be a pandas DataFrame.")
    for column in (unit, period, outcome):
        if column not in panel.columns:
            raise PanelError(
                f"column {column!r} not in the panel (columns: {list(map(str, panel.columns))})"
            )
    for column in (unit, period):
        empty = panel[column].isna()
        if empty.any():
            raise PanelError(f"column {column!r} is empty in row {_position(panel, empty)}")


def _check_outcome(panel: pd.DataFrame, unit: str, period: str, outcome: str) -> None:
    """The outcome must be numbers (strings of numbers too) and finite."""
    raw = panel[outcome]
    if pd.api.types.is_bool_dtype(raw):
        raise PanelError(f"column {outcome!r} holds booleans, must hold numbers")
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = panel.loc[bad].iloc[0]
        raise PanelError(
            f"column {outcome!r}: value {_plain(row[outcome])!r} for unit {_plain(row[unit])!r}, "
            f"{period} {_plain(row[period])!r} is not a finite number"
        )


def is_zero_one(values: pd.Series) -> bool:
    """True when every value is 0 or 1 as a number or a boolean (not as a string)."""
    values = values.dropna()
    if values.empty:
        return False
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return bool(values.isin([0, 1]).all())
    return all(
        isinstance(v, bool | int | float | np.bool_ | np.number) and v in (0, 1) for v in values
    )


def _arm_names(assignment: Mapping[Any, Any] | pd.Series, control: Any) -> tuple[pd.Series, str]:
    """(unit -> arm name as str, control name); 0/1 arms renamed (see :func:`evaluate`)."""
    if isinstance(assignment, pd.Series):
        series = assignment
    elif isinstance(assignment, Mapping):
        series = pd.Series(dict(assignment), dtype=object)
    else:
        raise ValueError(
            f"assignment is a {type(assignment).__name__}, must be a mapping unit -> arm "
            "or a Series indexed by unit."
        )
    if series.index.has_duplicates:
        dup = series.index[series.index.duplicated()][0]
        raise PanelError(f"unit {_plain(dup)!r} appears twice in the assignment")
    missing = series.isna()
    if missing.any():
        raise PanelError(f"unit {_plain(series.index[missing][0])!r} has no arm")
    if is_zero_one(series):
        if _same(control, "control") or _same(control, 0):
            control_value = 0
        elif _same(control, 1):
            control_value = 1
        else:
            raise PanelError(
                f"control arm {_plain(control)!r} is not an arm: the arms are 0 and 1 "
                "(the control is 0 unless control is 1)"
            )
        names = series.map(lambda v: ZERO_ONE_NAMES[0] if v == control_value else ZERO_ONE_NAMES[1])
        control_name = ZERO_ONE_NAMES[0]
        if not (names == control_name).any():
            raise PanelError(f"control arm {control_value!r} has no unit")
        return names.astype(object), control_name
    names = series.map(arm_name).astype(object)
    control_name = arm_name(control)
    if not (names == control_name).any():
        arms = sorted(set(names))
        raise PanelError(f"control arm {control_name!r} is not one of the arms {arms}")
    return names, control_name


def _same(value: Any, target: Any) -> bool:
    """``value`` equals ``target`` as given or as its text (``"1"`` is 1, ``True`` is 1)."""
    value = _plain(value)
    if isinstance(target, str):
        return isinstance(value, str) and value == target
    if isinstance(value, str):
        return value.strip() == str(target)
    return isinstance(value, bool | int | float) and value == target


def arm_name(value: Any) -> str:
    """An arm label as text: numpy scalars as Python values, integral floats as integers."""
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _coerce_start(periods: pd.Series, start: Any, period: str) -> Any:
    """A string/date ``start`` against a datetime period column becomes a Timestamp."""
    if pd.api.types.is_datetime64_any_dtype(periods) and not isinstance(start, pd.Timestamp):
        try:
            return pd.Timestamp(start)
        except (TypeError, ValueError) as exc:
            raise PanelError(f"start {start!r} is not a date, as {period!r} needs") from exc
    return start


def _unit_labels(
    panel: pd.DataFrame, unit: str, labels: Mapping[Any, Any] | pd.Series | str | None, name: str
) -> Mapping[Any, Any] | None:
    """Strata/pairs as a mapping unit -> label; a column name is read from the panel."""
    if labels is None:
        return None
    if isinstance(labels, str):
        if labels not in panel.columns:
            raise PanelError(f"{name}: column {labels!r} not in the panel")
        per_unit = panel.groupby(unit, sort=False)[labels].nunique(dropna=False)
        if (per_unit > 1).any():
            bad = per_unit.index[per_unit > 1][0]
            raise PanelError(f"{name}: unit {_plain(bad)!r} has two values in column {labels!r}")
        return panel.groupby(unit, sort=False)[labels].first().to_dict()
    if isinstance(labels, pd.Series):
        return labels.to_dict()
    if isinstance(labels, Mapping):
        return dict(labels)
    raise ValueError(f"{name} must be a mapping unit -> label, a Series or a column name.")


def _restrict(labels: Mapping[Any, Any] | None, units: np.ndarray) -> Mapping[Any, Any] | None:
    """The labels of ``units`` only (the estimator checks that every one has one)."""
    if labels is None:
        return None
    return {u: labels[u] for u in units if u in labels}


def _position(panel: pd.DataFrame, mask: pd.Series) -> Any:
    return _plain(panel.index[mask.to_numpy()][0])


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value
