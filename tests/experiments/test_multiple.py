"""Holm adjustment pinned to statsmodels; the family of pairs; compare_all's extras."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from loyalty_pilot.experiments.customer import compare, compare_all
from loyalty_pilot.experiments.multiple import family, holm, with_holm
from loyalty_pilot.experiments.sufficient import aggregate


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.2, size=int(rng.integers(1, 12)))
    p[: len(p) // 3] = p[0]  # ties
    expected = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(holm(p), expected, rtol=1e-12, atol=0)


def test_holm_known_values_and_nan():
    # m = 3: 0.01 * 3, max(0.03, 0.02 * 2), max(0.04, 0.04 * 1)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    out = holm([0.01, math.nan, 0.04])  # NaN stays NaN and is not counted: m = 2
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], multipletests([0.01, 0.04], method="holm")[1])
    assert holm([0.9, 0.8]).tolist() == [1.0, 1.0]
    assert holm([]).size == 0
    with pytest.raises(ValueError, match="must be in"):
        holm([0.5, 1.5])


def test_family_order():
    assert family(["control", "cash", "gift"], "control") == [
        ("cash", "control"),
        ("gift", "control"),
        ("gift", "cash"),
    ]
    assert family(["a", "ctl", "b", "c"], "ctl") == [
        ("a", "ctl"), ("b", "ctl"), ("c", "ctl"), ("b", "a"), ("c", "a"), ("c", "b"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="control 'x'"):
        family(["a", "b"], "x")


@pytest.mark.parametrize("method", ["welch", "cuped"])
def test_compare_all_holm_across_the_family(method):
    rng = np.random.default_rng(3)
    n = 3_000
    arm = rng.integers(0, 4, n)
    pre = rng.gamma(2.0, 25.0, n)
    y = 0.8 * pre + rng.normal(0, 20, n) + np.array([0.0, 3.0, 1.0, 0.5])[arm]
    raw = aggregate(arm, y, covariate=pre)
    names = {0: "control", 1: "cash", 2: "gift", 3: "points"}
    stats = {names[k]: raw[k] for k in (0, 1, 2, 3)}
    out = compare_all(stats, "control", method, 0.05, metric="revenue")
    pairs = [(c.arm, c.baseline) for c in out]
    assert pairs == family(list(stats), "control")
    assert len(out) == 6
    raw_p = np.array([c.p_value for c in out])
    np.testing.assert_allclose(
        [c.extras["p_value_adjusted"] for c in out], multipletests(raw_p, method="holm")[1]
    )
    for c, (a, b) in zip(out, pairs, strict=True):
        direct = compare(stats[a], stats[b], method, arm=a, baseline=b, metric="revenue")
        assert c.p_value == direct.p_value == c.extras["p_value_raw"]
        assert c.estimate == direct.estimate
        assert c.extras["family_size"] == 6
        assert c.extras["adjustment"] == "holm"


def test_with_holm_skips_degenerate():
    rng = np.random.default_rng(4)
    arm = np.r_[np.zeros(50, int), np.ones(50, int), [2]]
    stats = aggregate(arm, rng.normal(size=101))
    out = compare_all(stats, 0, "welch")
    statuses = [c.status for c in out]
    assert statuses == ["ok", "one_unit_per_arm", "one_unit_per_arm"]
    assert out[0].extras["family_size"] == 1
    assert out[0].extras["p_value_adjusted"] == pytest.approx(out[0].p_value)
    assert math.isnan(out[1].extras["p_value_adjusted"])
    assert with_holm(()) == ()
