"""Market selection for a pilot confined to one or two regions (as GeoLift's does).

When the programme can only run in whole regions and only in one or two of them, the pilot
will be read with a synthetic control (:mod:`~loyalty_pilot.experiments.synthetic_control`).
The region to treat is then best chosen as the one whose pre-period path the other regions
reproduce best: the smaller the pre-period misfit, the smaller the effect the pilot can tell
from noise.

Method choices
--------------
*Normalization.* Every region's pre-period series is divided by its own pre-period mean, so
regions of different size compare and a synthetic control matches shape, not scale. A
candidate set of several regions is treated as one aggregate region (the mean of their raw
series, then normalized), as the synthetic-control estimator averages treated units.

*Fit.* Simplex weights on the other regions, by the exact simplex least squares of
:func:`~loyalty_pilot.experiments.synthetic_control.simplex_least_squares` (no predictors,
no randomness: the ranking is deterministic). Every normalized series has mean one, so a
convex combination always matches the level: the score is the shape misfit.

*Score.* Relative RMSPE: ``sqrt(mean((treated - synthetic)^2))`` on the normalized series,
i.e. the typical misfit as a share of the treated region's pre-period mean. Ties are broken
by the region ids.

*Several programme arms.* Walking down the ranking, the first candidate sets that share no
region are taken, one per programme arm (:func:`disjoint_best`).
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from loyalty_pilot.experiments.balance import numeric_matrix
from loyalty_pilot.experiments.synthetic_control import simplex_least_squares

MAX_CANDIDATES = 20_000
"""Most candidate treated sets :func:`rank_regions` fits (``C(regions, n_treated)``)."""
WEIGHT_DECIMALS = 6


def rank_regions(wide: pd.DataFrame, n_treated: int = 1) -> pd.DataFrame:
    """Rank candidate treated sets by how well a synthetic control fits their pre-period.

    Args:
        wide: regions x periods of the metric over the pre-period (index: region ids, made
            str; columns: periods, sorted here); every cell finite, every region's mean > 0.
        n_treated: regions per candidate set (1: single regions, 2: pairs, ...).

    Returns:
        One row per candidate set, best first: ``rank`` (1, 2, ...), ``regions`` (tuple of
        region ids, sorted), ``rmspe`` (relative pre-period RMSPE, see the module doc) and
        ``weights`` (donor region -> weight, nonzero weights only, rounded to 6 decimals).

    Raises:
        ValueError: ``n_treated`` is not a positive int, fewer than ``n_treated + 1``
            regions, too many candidate sets, a non-finite cell or a mean <= 0.
    """
    if isinstance(n_treated, bool) or not isinstance(n_treated, int | np.integer) or n_treated < 1:
        raise ValueError(f"n_treated == {n_treated!r}, must be a positive int.")
    if not isinstance(wide, pd.DataFrame) or wide.shape[0] == 0 or wide.shape[1] == 0:
        raise ValueError("wide must be a non-empty DataFrame (regions x periods).")
    index = wide.index.astype(str)
    if index.has_duplicates:
        raise ValueError(f"wide: region {index[index.duplicated()][0]!r} appears twice.")
    frame = wide.set_axis(index, axis=0).sort_index(axis=0).sort_index(axis=1)
    regions = frame.index.to_numpy()
    n_regions = len(regions)
    if n_regions < n_treated + 1:
        raise ValueError(
            f"n_treated == {n_treated} needs at least {n_treated + 1} regions in wide "
            f"(treated and a donor), only {n_regions}."
        )
    n_candidates = math.comb(n_regions, n_treated)
    if n_candidates > MAX_CANDIDATES:
        raise ValueError(
            f"n_treated == {n_treated} with {n_regions} regions gives {n_candidates} candidate "
            f"sets, more than {MAX_CANDIDATES}."
        )
    y = numeric_matrix(frame, "wide")
    means = y.mean(axis=1)
    if (means <= 0).any():
        i = int(np.flatnonzero(means <= 0)[0])
        raise ValueError(
            f"wide: region {regions[i]!r} has pre-period mean {means[i]!r}, must be > 0 "
            "to normalize."
        )
    normalized = y / means[:, None]
    rows = []
    for chosen in combinations(range(n_regions), n_treated):
        members = list(chosen)
        treated = y[members].mean(axis=0)
        treated = treated / treated.mean()
        donors = np.setdiff1d(np.arange(n_regions), members)
        pool = normalized[donors].T
        w = simplex_least_squares(pool, treated)
        r = treated - pool @ w
        weights = {
            str(regions[j]): round(float(v), WEIGHT_DECIMALS)
            for j, v in zip(donors, w, strict=True)
            if round(float(v), WEIGHT_DECIMALS) > 0
        }
        rows.append((tuple(str(regions[j]) for j in members), math.sqrt(float(r @ r) / len(r)),
                     weights))  # fmt: skip
    order = sorted(range(len(rows)), key=lambda i: (rows[i][1], rows[i][0]))
    ranked = [rows[i] for i in order]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(ranked) + 1),
            "regions": [row[0] for row in ranked],
            "rmspe": [row[1] for row in ranked],
            "weights": [row[2] for row in ranked],
        }
    )


def disjoint_best(ranking: pd.DataFrame, n_sets: int) -> list[tuple[str, ...]]:
    """The first ``n_sets`` candidate sets of ``ranking`` that share no region, best first.

    Raises:
        ValueError: fewer than ``n_sets`` disjoint sets exist in the ranking.
    """
    chosen: list[tuple[str, ...]] = []
    used: set[str] = set()
    for regions in ranking["regions"]:
        if len(chosen) == n_sets:
            break
        if used.isdisjoint(regions):
            chosen.append(tuple(regions))
            used.update(regions)
    if len(chosen) < n_sets:
        raise ValueError(
            f"n_sets == {n_sets}: only {len(chosen)} disjoint candidate sets in the ranking."
        )
    return chosen


def ranking_records(ranking: pd.DataFrame, limit: int | None = None) -> list[dict]:
    """The ranking as JSON-ready records ``{regions, rmspe, weights}`` (the best ``limit``)."""
    head = ranking if limit is None else ranking.head(limit)
    return [
        {"regions": list(regions), "rmspe": float(rmspe), "weights": dict(weights)}
        for regions, rmspe, weights in zip(
            head["regions"], head["rmspe"], head["weights"], strict=True
        )
    ]
