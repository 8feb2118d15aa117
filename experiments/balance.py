"""Balance of a pilot design on pre-period data: covariates, standardized differences, series.

* :func:`pre_period_covariates` -- per unit, the ``level`` and ``trend`` of the primary metric
  over the pre-period: what matched and rerandomized designs balance on.
* :func:`balance_table` -- per programme arm and covariate, the means and the standardized
  difference against control, plus the Mahalanobis statistic of the arm against control.
* :func:`pre_period_series` -- the mean pre-period series per arm, for the chart of treated
  against control before the start.
* :func:`whiten` and :func:`joint_mahalanobis` -- the vectorized Mahalanobis machinery that
  :mod:`~loyalty_pilot.experiments.assignment` matches and rerandomizes with.
* :func:`rerandomization_check` -- the balance of a rerandomized assignment against its own
  acceptance rule (a chi-square p-value of it cannot fail).

Method choices
--------------
*Standardized difference* (Austin 2009): ``(mean_arm - mean_control) / sqrt((var_arm +
var_control) / 2)`` with sample variances (``ddof=1``). An arm of one unit has no sample
variance: the denominator then uses the variance of the other group alone (a pilot in one
treated region still gets a readable figure); with no variance at all (both groups of one
unit) or a zero one, ``std_diff`` is 0 when the means are equal and NaN otherwise.

*Mahalanobis statistic* (Morgan & Rubin 2012): ``M = d' [(1/n_arm + 1/n_control) S]^-1 d``
with ``d`` the difference of covariate means and ``S`` the sample covariance of the
covariates over the units of the table (all arms). It is approximately chi-square with as
many degrees of freedom as covariates under complete randomization. ``S`` is inverted on its
range (pseudo-inverse), so a constant or collinear covariate does not break it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_EIG_RTOL = 1e-10
"""Eigenvalues of a covariance below this share of the largest are treated as zero."""


def _str_index(frame: pd.DataFrame | pd.Series, name: str) -> pd.DataFrame | pd.Series:
    """``frame`` with its index as str; duplicated ids are an error naming ``name``."""
    index = frame.index.astype(str)
    if index.has_duplicates:
        raise ValueError(f"{name}: unit id {index[index.duplicated()][0]!r} appears twice.")
    return frame.set_axis(index, axis=0)


def numeric_matrix(frame: pd.DataFrame, name: str) -> np.ndarray:
    """``frame`` as a float matrix; a non-numeric or non-finite cell is an error naming it."""
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: column {frame.columns[k]!r} for unit {frame.index[i]!r} is "
            f"{frame.iat[i, k]!r}, must be a finite number."
        )
    return values


def pre_period_covariates(wide: pd.DataFrame, *, log: bool = True) -> pd.DataFrame:
    """Level and trend of each unit's pre-period series of the primary metric.

    Args:
        wide: units x periods (index: unit ids, made str; columns: periods, sorted here) of
            the primary metric over the pre-period; every cell finite.
        log: work on ``log1p(y)`` (relative differences, robust to store size) when True,
            on ``y`` otherwise.

    Returns:
        One row per unit (index ``unit``, sorted): ``level`` (mean of the series) and
        ``trend`` (OLS slope of the series on the period's position 0, 1, ..., T-1: change
        per period).

    Raises:
        ValueError: ``wide`` is empty, has fewer than two periods (no trend), a duplicated
            unit, a non-finite cell, or a value <= -1 with ``log``.
    """
    if not isinstance(wide, pd.DataFrame) or wide.shape[0] == 0:
        raise ValueError("wide must be a non-empty DataFrame (units x periods).")
    if wide.shape[1] < 2:
        raise ValueError(f"wide has {wide.shape[1]} period(s), the trend needs at least 2.")
    frame = _str_index(wide, "wide").sort_index(axis=0).sort_index(axis=1)
    y = numeric_matrix(frame, "wide")
    if log:
        if (y <= -1).any():
            i, t = np.argwhere(y <= -1)[0]
            raise ValueError(
                f"wide: value {y[i, t]!r} for unit {frame.index[i]!r} is <= -1, "
                "log1p needs > -1 (use log=False)."
            )
        y = np.log1p(y)
    t = np.arange(y.shape[1], dtype=float)
    tc = t - t.mean()
    return pd.DataFrame(
        {"level": y.mean(axis=1), "trend": (y @ tc) / float(tc @ tc)},
        index=pd.Index(frame.index, name="unit"),
    )


def whiten(x: np.ndarray) -> np.ndarray:
    """Centred ``x`` (n, K) mapped to ``z`` (n, r) with identity sample covariance.

    Euclidean distances between rows of ``z`` are Mahalanobis distances between rows of
    ``x`` (sample covariance, ``ddof=1``, inverted on its range: ``r`` is its rank).
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    xc = x - x.mean(axis=0) if n else x
    if n < 2 or x.shape[1] == 0:
        return np.zeros((n, 0))
    values, vectors = np.linalg.eigh(xc.T @ xc / (n - 1))
    keep = values > _EIG_RTOL * max(float(values.max()), np.finfo(float).tiny)
    return xc @ (vectors[:, keep] / np.sqrt(values[keep]))


def joint_mahalanobis(codes: np.ndarray, z: np.ndarray, n_arms: int) -> np.ndarray:
    """Joint Mahalanobis balance statistic of many assignments at once.

    ``codes`` (draws, n): arm per unit (-1 = not in the pilot); ``z`` (n, r): whitened
    covariates (:func:`whiten`). Per draw ``M = sum_a n_a |zbar_a - zbar|^2`` over the arms,
    ``zbar`` the mean over the pilot units: the k-arm generalisation of Morgan & Rubin's
    ``M`` (for two arms it equals ``d' [(1/n_1 + 1/n_0) S]^-1 d`` exactly), approximately
    chi-square with ``r (n_arms - 1)`` degrees of freedom.
    """
    codes = np.asarray(codes)
    total = np.zeros(codes.shape[0])
    sums = np.zeros((codes.shape[0], z.shape[1]))
    counts = np.zeros(codes.shape[0])
    for a in range(n_arms):
        mask = (codes == a).astype(float)
        n_a = mask.sum(axis=1)
        s_a = mask @ z
        total += (s_a * s_a).sum(axis=1) / np.maximum(n_a, 1.0)
        sums += s_a
        counts += n_a
    return np.maximum(total - (sums * sums).sum(axis=1) / np.maximum(counts, 1.0), 0.0)


def _arm_series(arm: pd.Series) -> pd.Series:
    if not isinstance(arm, pd.Series):
        raise ValueError("arm must be a pd.Series (index: unit id, values: arm name).")
    return _str_index(arm, "arm").astype(str)


def _arm_order(arm: pd.Series, arms: Sequence[str] | None) -> list[str]:
    present = sorted(set(arm.to_numpy()))
    if arms is None:
        return present
    order = [str(a) for a in arms]
    unknown = sorted(set(present) - set(order))
    if unknown:
        raise ValueError(f"arms == {order}, does not list arm {unknown[0]!r} of `arm`.")
    return [a for a in order if a in present]


def balance_table(
    covariates: pd.DataFrame,
    arm: pd.Series,
    control: str,
    *,
    arms: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Standardized differences of pre-period covariates, each arm against control.

    Args:
        covariates: one row per unit (index: unit id) and one numeric column per covariate
            (e.g. :func:`pre_period_covariates`); units not in ``arm`` are ignored.
        arm: arm name per unit in the pilot (index: unit id).
        control: the control arm's name.
        arms: order of the arms in the table (default: sorted names).

    Returns:
        One row per (arm other than control, covariate): ``arm, covariate, n_arm,
        n_control, mean_arm, mean_control, std_diff`` (see the module doc) and
        ``mahalanobis``: the Morgan-Rubin statistic of the arm against control on all the
        covariates jointly, the same on every row of the arm (a column rather than an extra
        row, so ``std_diff`` holds standardized differences only).

    Raises:
        ValueError: ``control`` is not an arm, a unit of ``arm`` has no covariates, a
            covariate is not a finite number.
    """
    arm = _arm_series(arm)
    if not isinstance(covariates, pd.DataFrame) or covariates.shape[1] == 0:
        raise ValueError("covariates must be a DataFrame with at least one column.")
    cov = _str_index(covariates, "covariates")
    missing = arm.index.difference(cov.index)
    if len(missing):
        raise ValueError(f"covariates has no row for unit {missing[0]!r} of `arm`.")
    order = _arm_order(arm, arms)
    if control not in order:
        raise ValueError(f"control == {control!r}, is not an arm of `arm` (arms: {order}).")
    frame = cov.loc[arm.index]
    x = numeric_matrix(frame, "covariates")
    labels = arm.to_numpy()
    z = whiten(x)
    is_control = labels == control
    x_c = x[is_control]
    mean_c, var_c = x_c.mean(axis=0), _sample_var(x_c)
    rows = []
    for name in order:
        if name == control:
            continue
        members = labels == name
        x_a = x[members]
        mean_a, var_a = x_a.mean(axis=0), _sample_var(x_a)
        n_a, n_c = int(members.sum()), int(is_control.sum())
        gap = z[members].mean(axis=0) - z[is_control].mean(axis=0)
        m = float(gap @ gap) * n_a * n_c / (n_a + n_c) if z.shape[1] else float("nan")
        std = _std_diff(mean_a - mean_c, var_a, var_c)
        for k, column in enumerate(frame.columns):
            rows.append((name, str(column), n_a, n_c, float(mean_a[k]), float(mean_c[k]),
                         float(std[k]), m))  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=["arm", "covariate", "n_arm", "n_control", "mean_arm", "mean_control",
                 "std_diff", "mahalanobis"],
    )  # fmt: skip


def rerandomization_check(statistic: float, threshold: float, df: int) -> dict[str, float | bool]:
    """Balance of a rerandomized assignment judged against its own acceptance rule.

    Rerandomization keeps only draws with ``M <= threshold``, so the chi-square p-value of
    the kept assignment is at least ``1 - acceptance`` by construction (>= 0.95 at the
    default): a gate on that p-value can never fire. What can be checked is the rule
    itself: ``inside`` is ``statistic <= threshold`` (with a relative tolerance of 1e-6
    for recomputation), False for an assignment that the design could not have produced
    (edited after the draw, or frozen from another design). ``p_within`` is the p-value of
    ``statistic`` under the design's own acceptance distribution, the chi-square with
    ``df`` degrees of freedom truncated at the threshold: ``(F(threshold) - F(M)) /
    F(threshold)``, uniform over the accepted draws; 0 outside.

    >>> r = rerandomization_check(1.0, 2.0, 2)
    >>> r["inside"], round(r["p_within"], 4)
    (True, 0.3775)
    >>> rerandomization_check(2.5, 2.0, 2)["inside"]
    False
    """
    from scipy import stats

    m, c = float(statistic), float(threshold)
    inside = bool(m <= c * (1.0 + 1e-6) + 1e-12)
    p_within = float("nan")
    if df > 0 and c > 0 and np.isfinite(c):
        top = float(stats.chi2.cdf(c, df))
        p_within = max(0.0, (top - float(stats.chi2.cdf(m, df))) / top) if top > 0 else 0.0
        if not inside:
            p_within = 0.0
    return {"inside": inside, "p_within": p_within, "statistic": m, "threshold": c, "df": df}


def _sample_var(x: np.ndarray) -> np.ndarray:
    """Column sample variances (``ddof=1``); NaN for fewer than two rows."""
    if x.shape[0] < 2:
        return np.full(x.shape[1], np.nan)
    return x.var(axis=0, ddof=1)


def _std_diff(diff: np.ndarray, var_a: np.ndarray, var_c: np.ndarray) -> np.ndarray:
    """``diff / sqrt(mean of the available variances)``; 0 for 0/0, NaN for d/0 or no variance."""
    variances = np.vstack([var_a, var_c])
    available = np.isfinite(variances)
    count = available.sum(axis=0)
    pooled = np.where(available, variances, 0.0).sum(axis=0) / np.maximum(count, 1)
    sd = np.sqrt(np.where(count > 0, pooled, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 0, diff / sd, np.nan)
    return np.where(~(sd > 0) & (diff == 0), 0.0, out)


def pre_period_series(
    wide: pd.DataFrame, arm: pd.Series, *, arms: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean pre-period series per arm, for the chart of treated against control.

    Args:
        wide: units x periods of the metric (index: unit id; columns: periods).
        arm: arm name per unit in the pilot; units of ``wide`` not in it are ignored.
        arms: column order (default: sorted arm names).

    Returns:
        Index: the periods (sorted, named ``period``); one column per arm: the mean of the
        metric over the arm's units in that period.

    Raises:
        ValueError: a unit of ``arm`` has no row in ``wide``, or a cell is not finite.
    """
    arm = _arm_series(arm)
    if not isinstance(wide, pd.DataFrame):
        raise ValueError("wide must be a DataFrame (units x periods).")
    frame = _str_index(wide, "wide").sort_index(axis=1)
    missing = arm.index.difference(frame.index)
    if len(missing):
        raise ValueError(f"wide has no row for unit {missing[0]!r} of `arm`.")
    frame = frame.loc[arm.index]
    y = numeric_matrix(frame, "wide")
    order = _arm_order(arm, arms)
    labels = arm.to_numpy()
    means = {name: y[labels == name].mean(axis=0) for name in order}
    return pd.DataFrame(means, index=pd.Index(frame.columns, name="period"))


def size_bands(values: pd.Series | Sequence[float], n: int = 3) -> pd.Series:
    """Cut numeric values (e.g. ``size_m2``) into ``n`` bands at their quantiles.

    Labels ``band1`` (smallest) .. ``band{n}``; equal values share a band, so a band may be
    empty or larger than ``len / n`` when values tie. Keeps the index of a Series.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n == {n!r}, must be a positive int.")
    series = values if isinstance(values, pd.Series) else pd.Series(list(values))
    x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(x).all():
        raise ValueError("values must all be finite numbers.")
    if len(x) == 0:
        return pd.Series([], index=series.index, dtype=object)
    edges = np.quantile(x, np.arange(1, n) / n)
    band = np.searchsorted(edges, x, side="right") + 1
    return pd.Series([f"band{b}" for b in band], index=series.index, dtype=object)


def greedy_tuples(z: np.ndarray, k: int) -> list[np.ndarray]:
    """Greedy tuples of ``k`` rows of ``z`` close in Euclidean distance (see the module doc)."""
    m = z.shape[0]
    if m < k:
        return []
    d2 = np.zeros((m, m))
    for j in range(z.shape[1]):
        diff = z[:, j, None] - z[None, :, j]
        d2 += diff * diff
    dist = np.sqrt(d2)
    np.fill_diagonal(dist, np.inf)
    remaining = np.arange(m)
    out = []
    while len(remaining) >= k:
        cost = np.partition(dist, k - 2, axis=1)[:, : k - 1].sum(axis=1)
        seed = int(np.argmin(cost))
        near = np.argsort(dist[seed], kind="stable")[: k - 1]
        members = np.concatenate([[seed], near])
        out.append(np.sort(remaining[members]))
        keep = np.ones(len(remaining), dtype=bool)
        keep[members] = False
        remaining = remaining[keep]
        dist = dist[np.ix_(keep, keep)]
    return out
