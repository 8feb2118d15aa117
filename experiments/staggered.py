"""Staggered rollout waves: Callaway & Sant'Anna (2021) group-time average treatment effects.

:func:`callaway_santanna` takes a balanced long unit x period panel in which each unit
carries the first period it is treated in (its *wave* ``g``; 0 = never treated) and
estimates one ATT(g, t) per wave and period by the unconditional 2x2 difference in
differences of the wave's units against a control group:

* ``"never_treated"``: the units with first period 0;
* ``"not_yet_treated"``: those plus the units of the other waves not yet treated by the
  later of ``t`` and the base period (``g' > max(t, base) + anticipation``).

The base period is the one before the wave starts (``g - 1 - anticipation``) for the
post-treatment cells; for the pre-treatment (placebo) cells it is the previous period
(``base_period="varying"``, R's default) or the same ``g - 1 - anticipation``
(``"universal"``, where the cell at the base period is 0 by construction).

Inference follows R's ``did`` package with analytic standard errors (``bstrap=FALSE``):
each ATT(g, t) carries its influence function over the units; the aggregates of
``did::aggte`` are weighted sums of those, plus the term for estimating the weights
(the wave shares) where the weights are estimated:

* ``simple``: post-treatment cells weighted by wave size (with the weights' term);
* ``by_group``: per wave the mean of its post-treatment cells; overall the wave-size
  weighted mean of those (with the weights' term);
* ``dynamic``: per event time ``e = t - g`` the wave-size weighted mean of the cells
  (with the weights' term); overall the plain mean over ``e >= 0``.

``inference="normal"`` is R's: standard errors ``sqrt(mean(IF^2) / n)`` over the ``n``
units and pointwise normal intervals. On the published minimum-wage example (``mpdta``)
this reproduces R's ATT(g, t) and the simple aggregate -0.039951 (SE 0.012034).

``inference="t"`` (the default) is the small-sample version. Every estimate here is a
linear combination of group means of the units' changes (a group: the units of one wave,
or the never-treated units), so its plug-in variance ``sum(IF^2) / n^2`` splits into a
within-group part ``W_g`` per group, a sum of squares divided by ``N_g`` where an
unbiased estimate divides by ``N_g - 1``, and a between-group part (the IF's group means,
non-zero where a cell's control group pools several groups). The default multiplies each
``W_g`` by ``N_g / (N_g - 1)`` (HC2 for group means), keeps the between part, and takes
the interval and p-value from Student's t with the Welch-Satterthwaite degrees of freedom
``(sum V)^2 / sum_g(W_g^2 / (N_g - 1))`` (a group of one unit adds no variance estimate
and is left out of the df). With few stores per wave the normal intervals over-reject
(A/A 7.8 % at 5 % with 3 waves of 4 stores and 12 controls, see
``benchmarks/validity_review.py``); the t intervals keep the level. A standard error
below ``10 sqrt(machine eps)`` is reported as NaN, as R does.

One deliberate difference: for the standard error of the *overall* group aggregate, R's
``aggte`` (through 2.1.x at least) builds the weights' term from the waves of the first
ATT(g, t) cells instead of the list of waves; here the term uses each wave's own
indicator (the formula of Callaway & Sant'Anna). The point estimate is the same.

:func:`staggered_comparisons` turns a result into one
:class:`~loyalty_pilot.experiments.results.Comparison` per wave and one for the overall
(simple) ATT, so a staggered evaluation fits the ``comparisons`` list of the
``evaluate --json`` contract.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from .evaluate import Evaluation
from .panel import PanelError
from .results import Comparison, degenerate, from_absolute

CONTROL_GROUPS = ("never_treated", "not_yet_treated")
INFERENCES = ("t", "normal")
BASE_PERIODS = ("varying", "universal")
BASELINES = {"never_treated": "never treated", "not_yet_treated": "not yet treated"}
"""The ``baseline`` name of the comparisons for each control group."""

_SE_FLOOR = math.sqrt(np.finfo(float).eps) * 10  # R did: smaller standard errors are NA


@dataclass(frozen=True)
class Estimate:
    """One aggregated effect: ``att`` with its standard error, pointwise interval at
    ``1 - alpha`` and two-sided p-value (NaN where the standard error is); ``df`` the t
    degrees of freedom of the interval (NaN: normal, ``inference="normal"``)."""

    att: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{att, se, ci_low, ci_high, p_value, df}``, NaN as None."""
        return {
            "att": _plain(self.att),
            "se": _plain(self.se),
            "ci_low": _plain(self.ci_low),
            "ci_high": _plain(self.ci_high),
            "p_value": _plain(self.p_value),
            "df": _plain(self.df),
        }


@dataclass(frozen=True, eq=False)
class Aggregation:
    """An aggregation of the ATT(g, t): one row per wave or event time, and the overall."""

    table: pd.DataFrame
    overall: Estimate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"estimates": [one record per row], "overall": {...}}``."""
        return {"estimates": _records(self.table), "overall": self.overall.to_dict()}


@dataclass(frozen=True, eq=False)
class StaggeredResult:
    """The output of :func:`callaway_santanna`.

    ``att_gt`` has one row per wave and period: ``group`` (the wave's first treated
    period), ``time``, ``event_time`` (``time - group``), ``base_time`` (the period the
    change is measured from), ``post`` (``time >= group``), ``att``, ``se``, ``ci_low``,
    ``ci_high``, ``p_value``, ``n_treated``, ``n_control`` (the units of the 2x2 DiD) and
    ``treated_mean`` (the wave's observed mean outcome in ``time``).

    ``simple`` is the overall ATT (post-treatment cells weighted by wave size);
    ``by_group`` has per wave ``group, att, se, ci_low, ci_high, p_value, n_units,
    n_periods, treated_mean`` (the wave's mean outcome over its post-treatment periods);
    ``dynamic`` per event time ``event_time, att, se, ci_low, ci_high, p_value,
    n_groups``. ``n_units`` counts the units used (after dropping those treated from the
    first period); ``notes`` says what was dropped or could not be estimated.
    """

    att_gt: pd.DataFrame
    simple: Estimate
    by_group: Aggregation
    dynamic: Aggregation
    control_group: str
    alpha: float
    n_units: int
    base_period: str = "varying"
    anticipation: int = 0
    notes: tuple[str, ...] = ()
    inference: str = "t"

    @property
    def baseline(self) -> str:
        """The comparisons' baseline name: ``"never treated"`` or ``"not yet treated"``."""
        return BASELINES[self.control_group]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``method, control_group, base_period, anticipation, alpha, n_units,
        att_gt`` (records), ``overall`` (the simple aggregate), ``by_group`` and
        ``dynamic`` (each ``{"estimates": records, "overall": {...}}``), ``notes``."""
        return {
            "method": "staggered",
            "control_group": self.control_group,
            "base_period": self.base_period,
            "anticipation": int(self.anticipation),
            "alpha": self.alpha,
            "inference": self.inference,
            "n_units": int(self.n_units),
            "att_gt": _records(self.att_gt),
            "overall": self.simple.to_dict(),
            "by_group": self.by_group.to_dict(),
            "dynamic": self.dynamic.to_dict(),
            "notes": list(self.notes),
        }

    def to_evaluation(self, metric: str) -> Evaluation:
        """An :class:`~loyalty_pilot.experiments.evaluate.Evaluation` whose comparisons are
        :func:`staggered_comparisons` (the control arm is the baseline name)."""
        comparisons = staggered_comparisons(self, metric)
        return Evaluation(
            comparisons=comparisons,
            method="staggered",
            metric=metric,
            n_units=self.n_units,
            arms=(self.baseline, *(c.arm for c in comparisons)),
            control=self.baseline,
            alpha=self.alpha,
        )


def callaway_santanna(
    panel: pd.DataFrame,
    *,
    unit: str,
    period: str,
    outcome: str,
    first_treated: str,
    control_group: str = "never_treated",
    base_period: str = "varying",
    alpha: float = 0.05,
    anticipation: int = 0,
    inference: str = "t",
) -> StaggeredResult:
    """Group-time ATTs of a staggered rollout and their aggregates, as R's ``did``.

    Args:
        panel: long table, one row per (unit, period), balanced.
        unit, period, outcome: column names; ``period`` and ``outcome`` numeric.
        first_treated: column with each unit's first treated period (constant per unit,
            one of the periods), 0 for a unit never treated.
        control_group: ``"never_treated"`` or ``"not_yet_treated"``.
        base_period: ``"varying"`` or ``"universal"`` (see the module docstring).
        alpha: level of the two-sided pointwise intervals.
        anticipation: periods before ``g`` in which the treatment may already act; the
            base period of wave ``g`` is then the last one before ``g - anticipation``.
        inference: ``"t"`` (small-sample: group-HC2 variances, Welch-Satterthwaite t) or
            ``"normal"`` (R's analytic standard errors and normal intervals).

    Units treated from the first period on (``g <= first period + anticipation``) have no
    pre-period and are dropped with a note, as R does. With ``"not_yet_treated"`` and no
    never-treated unit the last wave serves as control only: periods from its start
    (minus ``anticipation``) on are dropped and it gets no ATT (R's rule; noted).

    Raises:
        PanelError: a column is missing, the outcome or period is not numeric or has a
            missing value, a (unit, period) is duplicated or missing, ``first_treated``
            varies within a unit or holds a value that is not a period, or no wave or no
            control unit is left.
        ValueError: a parameter is invalid (the message names it).
    """
    _check_parameters(control_group, base_period, alpha, anticipation)
    if inference not in INFERENCES:
        raise ValueError(f"inference == {inference!r}, must be one of {list(INFERENCES)}.")
    y, periods, g, notes = _prepare(panel, unit, period, outcome, first_treated)

    first = periods[0]
    early = (g != 0) & (g <= first + anticipation)
    if early.any():
        waves = ", ".join(_fmt(v) for v in np.unique(g[early]))
        notes.append(
            f"dropped {int(early.sum())} units treated from the first {period} {_fmt(first)} "
            f"on ({first_treated} {waves}): they have no pre-period"
        )
        y, g = y[~early], g[~early]

    waves = np.unique(g[g != 0])
    if not (g == 0).any():
        if control_group == "never_treated":
            raise PanelError(
                f"control_group='never_treated' needs never-treated units ({first_treated} 0) "
                f"and there is none; use control_group='not_yet_treated'"
            )
        if waves.size:
            last = waves[-1]
            keep = periods < last - anticipation
            notes.append(
                f"no never-treated unit: the last wave ({first_treated} {_fmt(last)}) is the "
                f"control only and {period}s from {_fmt(last - anticipation)} on are dropped"
            )
            y, periods, waves = y[:, keep], periods[keep], waves[:-1]
    if waves.size == 0:
        raise PanelError(f"no wave to estimate: no unit of {first_treated!r} is treated later")
    if periods.size < 2:
        raise PanelError(f"fewer than two {period}s left: no difference can be taken")

    n = _Variance(g, inference)
    cells, influence = _att_gt(
        y, periods, g, waves, control_group, base_period, anticipation, alpha, n, notes
    )
    share = {w: float(np.mean(g == w)) for w in waves}
    simple = _simple(cells, influence, g, share, alpha, n)
    by_group = _by_group(cells, influence, g, share, alpha, n)
    dynamic = _dynamic(cells, influence, g, share, alpha, n)
    return StaggeredResult(
        att_gt=cells,
        simple=simple,
        by_group=by_group,
        dynamic=dynamic,
        control_group=control_group,
        alpha=alpha,
        n_units=n.n,
        base_period=base_period,
        anticipation=anticipation,
        notes=tuple(notes),
        inference=inference,
    )


def staggered_comparisons(result: StaggeredResult, metric: str) -> tuple[Comparison, ...]:
    """One Comparison per wave (arm ``"wave {g}"``, the wave's ATT) and one ``"overall"``
    (the simple aggregate), each against ``result.baseline``, method ``"staggered"``.

    ``relative`` is the effect over the treated units' counterfactual mean, as for the
    other estimators (:func:`~loyalty_pilot.experiments.results.relative_from_absolute`):
    the counterfactual mean is the observed mean outcome over the same post-treatment
    cells (for a wave its units over its post periods; overall the cells weighted by wave
    size, as the ATT) minus the effect. It is NaN where that mean is not positive. On a
    log outcome it is relative to the log, not a percent uplift.

    ``n_units`` of a wave is its units plus the most controls any of its cells used;
    overall, every unit. Extras: ``se``, ``wave`` (None overall), ``n_treated``,
    ``n_control`` and, with ``inference="t"``, ``df``. A wave without an estimate has
    status ``"not_identified"``; a zero standard error gives ``"zero_variance"`` with NaN intervals.
    """
    baseline = result.baseline
    post = result.att_gt[result.att_gt["post"] & result.att_gt["att"].notna()]
    out = []
    for row in result.by_group.table.itertuples(index=False):
        cells = post[post["group"] == row.group]
        n_control = int(cells["n_control"].max()) if len(cells) else 0
        n_treated = int(row.n_units)
        extras = {"se": row.se, "wave": _plain(row.group), "n_treated": n_treated,
                  "n_control": n_control}  # fmt: skip
        if math.isfinite(row.df):
            extras["df"] = row.df
        estimate = Estimate(row.att, row.se, row.ci_low, row.ci_high, row.p_value, row.df)
        out.append(
            _comparison(f"wave {_fmt(row.group)}", baseline, metric, estimate,
                        n_treated + n_control, row.treated_mean, result.alpha, extras)
        )  # fmt: skip
    weights = post["n_treated"].to_numpy(float)
    treated_mean = (
        float(np.sum(weights * post["treated_mean"]) / weights.sum()) if len(post) else math.nan
    )
    extras = {"se": result.simple.se, "wave": None,
              "n_treated": int(result.by_group.table["n_units"].sum()),
              "n_control": int(post["n_control"].max()) if len(post) else 0}  # fmt: skip
    if math.isfinite(result.simple.df):
        extras["df"] = result.simple.df
    out.append(
        _comparison("overall", baseline, metric, result.simple, result.n_units, treated_mean,
                    result.alpha, extras)
    )  # fmt: skip
    return tuple(out)


# --------------------------------------------------------------------------- estimation


def _att_gt(
    y: np.ndarray,
    periods: np.ndarray,
    g: np.ndarray,
    waves: np.ndarray,
    control_group: str,
    base_period: str,
    anticipation: int,
    alpha: float,
    var: _Variance,
    notes: list[str],
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ATT(g, t) table and their influence functions (units x cells).

    Each cell is a 2x2 DiD on the change ``y_t - y_base`` of the wave's units and the
    control units; its influence function is ``n (D (dy - mu1) / N1 - C (dy - mu0) / N0)``
    (DRDID's ``reg_did_panel`` with an intercept only, rescaled by ``n / (N1 + N0)`` as
    ``did`` does), zero for the other units.
    """
    n = var.n
    rows, columns = [], []
    start = 0 if base_period == "universal" else 1
    for wave in waves:
        treated = g == wave
        n_treated = int(treated.sum())
        wave_base = int(np.flatnonzero(periods + anticipation < wave)[-1])
        for t in range(start, periods.size):
            post = bool(wave <= periods[t])
            base = wave_base if (post or base_period == "universal") else t - 1
            row = {"group": wave, "time": periods[t], "event_time": periods[t] - wave,
                   "base_time": periods[base], "post": post,
                   "treated_mean": float(y[treated, t].mean())}  # fmt: skip
            psi = np.zeros(n)
            if base == t:  # universal base period: normalised to 0
                rows.append({**row, "att": 0.0, "se": math.nan, "df": math.nan,
                             "n_treated": n_treated, "n_control": 0})  # fmt: skip
                columns.append(psi)
                continue
            if control_group == "never_treated":
                control = g == 0
            else:
                limit = periods[max(t, base)] + anticipation
                control = (g == 0) | ((g > limit) & (g != wave))
            n_control = int(control.sum())
            change = y[:, t] - y[:, base]
            if n_control == 0:
                notes.append(
                    f"no control unit for wave {_fmt(wave)} in {_fmt(periods[t])}: "
                    "its ATT(g,t) is NaN and left out of the aggregates"
                )
                att, se, df = math.nan, math.nan, math.nan
            else:
                mu1, mu0 = change[treated].mean(), change[control].mean()
                att = float(mu1 - mu0)
                psi[treated] = n * (change[treated] - mu1) / n_treated
                psi[control] = -n * (change[control] - mu0) / n_control
                se, df = var.se_df(psi)
            rows.append({**row, "att": att, "se": se, "df": df, "n_treated": n_treated,
                         "n_control": n_control})  # fmt: skip
            columns.append(psi)
    table = pd.DataFrame(rows)
    table = _with_inference(table, alpha)
    order = ["group", "time", "event_time", "base_time", "post", "att", "se", "ci_low",
             "ci_high", "p_value", "n_treated", "n_control", "treated_mean", "df"]  # fmt: skip
    return table[order], np.column_stack(columns)


def _simple(
    cells: pd.DataFrame, influence: np.ndarray, g: np.ndarray, share: dict, alpha: float,
    n: _Variance,
) -> Estimate:  # fmt: skip
    keep = np.flatnonzero(cells["post"].to_numpy() & cells["att"].notna().to_numpy())
    return _weighted(cells, influence, g, share, keep, alpha, n)


def _by_group(
    cells: pd.DataFrame, influence: np.ndarray, g: np.ndarray, share: dict, alpha: float,
    n: _Variance,
) -> Aggregation:  # fmt: skip
    valid = cells["post"].to_numpy() & cells["att"].notna().to_numpy()
    groups = cells["group"].to_numpy()
    rows, atts, ifs, waves = [], [], [], []
    for wave in share:
        keep = np.flatnonzero(valid & (groups == wave))
        if keep.size:
            att = float(cells["att"].to_numpy()[keep].mean())
            psi = influence[:, keep].mean(axis=1)
            atts.append(att)
            ifs.append(psi)
            waves.append(wave)
            se, df = n.se_df(psi)
        else:
            att = se = df = math.nan
        mean = cells["treated_mean"].to_numpy()[keep].mean() if keep.size else math.nan
        rows.append({"group": wave, "att": att, "se": se, "df": df,
                     "n_units": int((g == wave).sum()),
                     "n_periods": int(keep.size), "treated_mean": float(mean)})  # fmt: skip
    table = _with_inference(pd.DataFrame(rows), alpha)
    table = table[["group", "att", "se", "ci_low", "ci_high", "p_value", "n_units",
                   "n_periods", "treated_mean", "df"]]  # fmt: skip
    if not waves:
        return Aggregation(table, _estimate(math.nan, math.nan, alpha=alpha))
    p = np.array([share[w] for w in waves])
    indicator = np.column_stack([g == w for w in waves]).astype(float)
    psi = np.column_stack(ifs) @ (p / p.sum()) + _weights_if(indicator, p) @ np.array(atts)
    overall = float(np.dot(atts, p) / p.sum())
    return Aggregation(table, _estimate(overall, *n.se_df(psi), alpha=alpha))


def _dynamic(
    cells: pd.DataFrame, influence: np.ndarray, g: np.ndarray, share: dict, alpha: float,
    n: _Variance,
) -> Aggregation:  # fmt: skip
    valid = cells["att"].notna().to_numpy()
    event = cells["event_time"].to_numpy()
    rows, atts, ifs = [], [], []
    for e in np.unique(event[valid]):
        keep = np.flatnonzero(valid & (event == e))
        att, psi = _combine(cells, influence, g, share, keep)
        se, df = n.se_df(psi)
        rows.append({"event_time": e, "att": att, "se": se, "df": df, "n_groups": int(keep.size)})
        if e >= 0:
            atts.append(att)
            ifs.append(psi)
    columns = ["event_time", "att", "se", "ci_low", "ci_high", "p_value", "n_groups", "df"]
    table = _with_inference(
        pd.DataFrame(rows, columns=["event_time", "att", "se", "df", "n_groups"]), alpha
    )[columns]
    if not atts:
        return Aggregation(table, _estimate(math.nan, math.nan, alpha=alpha))
    psi = np.column_stack(ifs).mean(axis=1)
    return Aggregation(table, _estimate(float(np.mean(atts)), *n.se_df(psi), alpha=alpha))


def _weighted(
    cells: pd.DataFrame,
    influence: np.ndarray,
    g: np.ndarray,
    share: dict,
    keep: np.ndarray,
    alpha: float,
    n: _Variance,
) -> Estimate:
    if keep.size == 0:
        return _estimate(math.nan, math.nan, alpha=alpha)
    att, psi = _combine(cells, influence, g, share, keep)
    return _estimate(att, *n.se_df(psi), alpha=alpha)


def _combine(
    cells: pd.DataFrame, influence: np.ndarray, g: np.ndarray, share: dict, keep: np.ndarray
) -> tuple[float, np.ndarray]:
    """Wave-share weighted mean of the cells ``keep`` and its influence function, with the
    term for the estimated shares (``did``'s ``wif``)."""
    groups = cells["group"].to_numpy()[keep]
    att = cells["att"].to_numpy()[keep]
    p = np.array([share[w] for w in groups])
    indicator = np.column_stack([g == w for w in groups]).astype(float)
    psi = influence[:, keep] @ (p / p.sum()) + _weights_if(indicator, p) @ att
    return float(np.dot(att, p) / p.sum()), psi


def _weights_if(indicator: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Influence function of the weights ``p_k / sum(p)`` with ``p_k`` the share of the
    units in the wave of column k of ``indicator`` (units x cells)."""
    total = p.sum()
    centred = indicator - p
    return centred / total - np.outer(centred.sum(axis=1), p) / total**2


class _Variance:
    """Standard errors and df of estimates from their influence functions over the units.

    ``"normal"``: ``sqrt(mean(IF^2) / n)`` (R) and no df. ``"t"``: per group of units (a
    wave, or the never-treated) the within-group sum of squares of the IF times
    ``N_g / (N_g - 1)`` plus the between-group part as it is, over ``n^2``, and the
    Welch-Satterthwaite df of the within-group parts (see the module docstring).
    """

    def __init__(self, g: np.ndarray, inference: str):
        self.n = len(g)
        self.inference = inference
        labels, codes, sizes = np.unique(g, return_inverse=True, return_counts=True)
        self.onehot = (codes[:, None] == np.arange(len(labels))[None, :]).astype(float)
        self.sizes = sizes.astype(float)
        self.factor = np.where(sizes > 1, sizes / np.maximum(sizes - 1, 1), 1.0)
        self.dof = np.where(sizes > 1, sizes - 1.0, np.inf)  # a group of one: no df term

    def se_df(self, psi: np.ndarray) -> tuple[float, float]:
        """(se, df) of one estimate with influence function ``psi`` (n,); NaN df: normal."""
        if self.inference == "normal":
            se = math.sqrt(float(np.mean(psi**2)) / self.n)
            return (se if se > _SE_FLOOR else math.nan), math.nan
        squares = psi**2 @ self.onehot
        between = (psi @ self.onehot) ** 2 / self.sizes  # N_g (mean of psi in g)^2
        within = self.factor * np.maximum(squares - between, 0.0) / self.n**2
        total = float(within.sum() + between.sum() / self.n**2)
        se = math.sqrt(total)
        if not se > _SE_FLOOR:
            return math.nan, math.nan
        denominator = float(np.sum(within**2 / self.dof))
        df = total**2 / denominator if denominator > 0 else math.inf
        return se, df


def _estimate(att: float, se: float, df: float = math.nan, *, alpha: float) -> Estimate:
    if not (math.isfinite(att) and math.isfinite(se)):
        return Estimate(att, se, math.nan, math.nan, math.nan, df)
    if math.isnan(df) or math.isinf(df):
        z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
        p_value = math.erfc(abs(att / se) / math.sqrt(2.0))
    else:
        from scipy import stats

        z = float(stats.t.ppf(1.0 - alpha / 2.0, df))
        p_value = float(2.0 * stats.t.sf(abs(att / se), df))
    return Estimate(att, se, att - z * se, att + z * se, p_value, df)


def _with_inference(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    columns = zip(table["att"], table["se"], table["df"], strict=True)
    estimates = [_estimate(a, s, d, alpha=alpha) for a, s, d in columns]
    return table.assign(
        ci_low=[e.ci_low for e in estimates],
        ci_high=[e.ci_high for e in estimates],
        p_value=[e.p_value for e in estimates],
    )


def _comparison(
    arm: str,
    baseline: str,
    metric: str,
    estimate: Estimate,
    n_units: int,
    treated_mean: float,
    alpha: float,
    extras: dict[str, Any],
) -> Comparison:
    extras = {k: _plain(v) for k, v in extras.items()}
    if not math.isfinite(estimate.att):
        return degenerate(arm, baseline, metric, "staggered", "not_identified", n_units,
                          alpha, **extras)  # fmt: skip
    comparison = from_absolute(
        arm, baseline, metric, "staggered", estimate.att, estimate.ci_low, estimate.ci_high,
        estimate.p_value, n_units, treated_mean, alpha=alpha, extras=extras,
    )  # fmt: skip
    if not math.isfinite(estimate.se):
        return dataclasses.replace(comparison, status="zero_variance")
    return comparison


# --------------------------------------------------------------------------- input


def _check_parameters(control_group: str, base_period: str, alpha: float, anticipation: int):
    if control_group not in CONTROL_GROUPS:
        raise ValueError(
            f"control_group == {control_group!r}, must be one of {list(CONTROL_GROUPS)}."
        )
    if base_period not in BASE_PERIODS:
        raise ValueError(f"base_period == {base_period!r}, must be one of {list(BASE_PERIODS)}.")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha!r}, must be in (0, 1).")
    if (
        isinstance(anticipation, bool)
        or not isinstance(anticipation, int | np.integer)
        or anticipation < 0
    ):
        raise ValueError(f"anticipation == {anticipation!r}, must be an integer >= 0.")


def _prepare(
    panel: pd.DataFrame, unit: str, period: str, outcome: str, first_treated: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Outcomes (units x periods), sorted periods, each unit's first treated period."""
    for name, column in (("unit", unit), ("period", period), ("outcome", outcome),
                         ("first_treated", first_treated)):  # fmt: skip
        if column not in panel.columns:
            raise PanelError(f"{name} column {column!r} is not in the panel")
    if len(panel) == 0:
        raise PanelError("the panel has no row")
    for column in (period, outcome, first_treated):
        values = panel[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            raise PanelError(f"column {column!r} must be numeric, not {values.dtype}")
        bad = ~np.isfinite(values.to_numpy(float))
        if bad.any():
            u, t = panel.loc[bad, unit].iloc[0], panel.loc[bad, period].iloc[0]
            raise PanelError(
                f"column {column!r} has a missing or infinite value: unit "
                f"{_plain(u)!r}, {period} {_plain(t)!r}"
            )
    duplicated = panel.duplicated([unit, period])
    if duplicated.any():
        u, t = panel.loc[duplicated, unit].iloc[0], panel.loc[duplicated, period].iloc[0]
        raise PanelError(f"unit {_plain(u)!r} has two rows for {period} {_plain(t)!r}")
    per_unit = panel.groupby(unit, sort=True)[first_treated].nunique()
    varying = per_unit[per_unit > 1]
    if len(varying):
        u = varying.index[0]
        values = sorted(panel.loc[panel[unit] == u, first_treated].unique())
        raise PanelError(
            f"column {first_treated!r} must be constant per unit: unit {_plain(u)!r} has "
            f"{[_plain(v) for v in values]}"
        )
    wide = panel.pivot(index=unit, columns=period, values=outcome).sort_index(axis=1)
    missing = wide.isna().to_numpy()
    if missing.any():
        i, t = np.argwhere(missing)[0]
        raise PanelError(
            f"the panel must be balanced: unit {_plain(wide.index[i])!r} has no row for "
            f"{period} {_plain(wide.columns[t])!r}"
        )
    periods = wide.columns.to_numpy()
    g = panel.groupby(unit, sort=True)[first_treated].first().reindex(wide.index).to_numpy()
    unknown = sorted(set(np.unique(g)) - {0} - set(periods))
    if unknown:
        raise PanelError(
            f"{first_treated} {_plain(unknown[0])!r} is not a {period} of the panel "
            f"(use 0 for never treated)"
        )
    return wide.to_numpy(float), periods, g, []


# --------------------------------------------------------------------------- output


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    """numpy scalar -> Python scalar; NaN / inf -> None."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
