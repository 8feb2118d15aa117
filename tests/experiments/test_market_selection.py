"""Market selection: synthetic-control ranking of candidate treated regions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from loyalty_pilot.experiments.assignment import rank_regions
from loyalty_pilot.experiments.market_selection import disjoint_best, ranking_records


def make_regions(seed: int = 0, n_regions: int = 6, n_weeks: int = 24) -> pd.DataFrame:
    """Regions of different size with their own seasonal shape and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_weeks)
    rows = {
        f"r{i}": rng.uniform(100, 1000)
        * (1 + 0.1 * np.sin(t / rng.uniform(2, 5)) + rng.normal(0, 0.02, n_weeks))
        for i in range(n_regions)
    }
    return pd.DataFrame(rows).T


def test_two_regions_by_hand() -> None:
    """One donor: weight 1, RMSPE of the difference of the mean-normalized series."""
    wide = pd.DataFrame([[10.0, 12.0, 14.0], [200.0, 190.0, 210.0]], index=["b", "a"])
    ranking = rank_regions(wide)
    a = np.array([200.0, 190.0, 210.0]) / 200.0
    b = np.array([10.0, 12.0, 14.0]) / 12.0
    expected = math.sqrt(np.mean((a - b) ** 2))
    assert ranking["rmspe"].tolist() == pytest.approx([expected, expected], rel=1e-12)
    assert ranking["regions"].tolist() == [("a",), ("b",)]  # tie broken by region id
    assert ranking["rank"].tolist() == [1, 2]
    assert ranking["weights"].tolist() == [{"b": 1.0}, {"a": 1.0}]


def test_exact_mixture_ranks_first() -> None:
    wide = make_regions()
    normalized = wide.div(wide.mean(axis=1), axis=0)
    wide.loc["mix"] = 42.0 * (0.25 * normalized.loc["r1"] + 0.75 * normalized.loc["r4"])
    ranking = rank_regions(wide)
    assert ranking.iloc[0]["regions"] == ("mix",)
    assert ranking.iloc[0]["rmspe"] == pytest.approx(0.0, abs=1e-10)
    assert ranking.iloc[0]["weights"] == pytest.approx({"r1": 0.25, "r4": 0.75}, abs=1e-6)
    assert ranking["rmspe"].is_monotonic_increasing


def test_pairs_pinned_to_an_independent_optimizer() -> None:
    """A pair's score: mean of its raw series, normalized, against normalized donors."""
    wide = make_regions(seed=1, n_regions=5)
    ranking = rank_regions(wide, n_treated=2)
    assert len(ranking) == math.comb(5, 2)
    assert all(len(r) == 2 and r == tuple(sorted(r)) for r in ranking["regions"])
    row = ranking[ranking["regions"] == ("r1", "r3")].iloc[0]
    treated = wide.loc[["r1", "r3"]].mean().to_numpy()
    treated = treated / treated.mean()
    donors = wide.loc[["r0", "r2", "r4"]]
    pool = donors.div(donors.mean(axis=1), axis=0).to_numpy().T
    res = minimize(
        lambda w: np.mean((treated - pool @ w) ** 2),
        np.full(3, 1 / 3),
        method="SLSQP",
        bounds=[(0, 1)] * 3,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        options={"ftol": 1e-15, "maxiter": 500},
    )
    assert row["rmspe"] == pytest.approx(math.sqrt(res.fun), rel=1e-5)
    assert sum(row["weights"].values()) == pytest.approx(1.0, abs=1e-5)


def test_scale_and_row_order_do_not_matter() -> None:
    wide = make_regions(seed=2)
    ranking = rank_regions(wide)
    scaled = wide.copy()
    scaled.loc["r2"] *= 1000.0  # normalization: a region's size does not change its score
    shuffled = scaled.iloc[::-1].iloc[:, np.random.default_rng(0).permutation(wide.shape[1])]
    other = rank_regions(shuffled)
    assert other["regions"].tolist() == ranking["regions"].tolist()
    np.testing.assert_allclose(other["rmspe"], ranking["rmspe"], rtol=1e-9)


def test_disjoint_best_and_records() -> None:
    ranking = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "regions": [("a", "b"), ("b", "c"), ("c", "d")],
            "rmspe": [0.1, 0.2, 0.3],
            "weights": [{"c": 1.0}, {"a": 1.0}, {"a": 1.0}],
        }
    )
    assert disjoint_best(ranking, 2) == [("a", "b"), ("c", "d")]
    with pytest.raises(ValueError, match="only 2 disjoint"):
        disjoint_best(ranking, 3)
    records = ranking_records(ranking, limit=1)
    assert records == [{"regions": ["a", "b"], "rmspe": 0.1, "weights": {"c": 1.0}}]


def test_rank_regions_errors() -> None:
    wide = make_regions(n_regions=3)
    with pytest.raises(ValueError, match="n_treated == 0"):
        rank_regions(wide, 0)
    with pytest.raises(ValueError, match="needs at least 4 regions"):
        rank_regions(wide, 3)
    negative = wide.copy()
    negative.loc["r1"] = -1.0
    with pytest.raises(ValueError, match="region 'r1' has pre-period mean"):
        rank_regions(negative)
    missing = wide.copy()
    missing.iloc[0, 2] = np.nan
    with pytest.raises(ValueError, match="wide: column 2 for unit 'r0'"):
        rank_regions(missing)
    with pytest.raises(ValueError, match="candidate sets"):
        rank_regions(make_regions(n_regions=60, n_weeks=3), 4)
