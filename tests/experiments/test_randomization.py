"""Randomization inference: pinned to brute-force refits over every assignment."""

from __future__ import annotations

import math
from itertools import combinations, product

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments.panel import PanelData, wide_panel
from loyalty_pilot.experiments.randomization import randomization_inference
from loyalty_pilot.experiments.results import relative_from_absolute

START = 6


def make_panel(
    seed: int,
    n_units: int = 8,
    n_weeks: int = 10,
    effect: float = 0.0,
    treated: np.ndarray | None = None,
) -> PanelData:
    """Stores with their own level and trend, a common season, noise; random assignment."""
    rng = np.random.default_rng(seed)
    weeks = np.arange(n_weeks)
    y = (
        100.0
        + rng.normal(0, 10, size=(n_units, 1))
        + rng.normal(0, 0.5, size=(n_units, 1)) * weeks
        + 5 * np.sin(weeks / 2)
        + rng.normal(0, 3, size=(n_units, n_weeks))
    )
    if treated is None:
        treated = np.zeros(n_units, dtype=bool)
        treated[rng.choice(n_units, n_units // 2, replace=False)] = True
    post = weeks >= START
    y[np.ix_(treated, post)] += effect
    units = np.array([f"s{i:02d}" for i in range(n_units)])
    return PanelData(y, units, weeks, np.asarray(treated, dtype=bool), post)


def long_frame(data: PanelData) -> pd.DataFrame:
    frame = pd.DataFrame(data.y, index=data.units, columns=data.periods)
    frame = frame.rename_axis(index="unit", columns="week").stack().rename("y").reset_index()
    frame["post"] = frame["week"] >= START
    return frame


def pandas_did(frame: pd.DataFrame, treated_units: set[str]) -> float:
    """The DiD of unit means, refitted from the long panel with a pandas groupby."""
    means = frame.groupby(["unit", "post"])["y"].mean().unstack("post")
    d = means[True] - means[False]
    arm = d.index.isin(list(treated_units))
    return float(d[arm].mean() - d[~arm].mean())


def brute_p(stats: list[float], observed: float) -> float:
    stats_abs = np.abs(np.array(stats))
    tol = 1e-8 * max(stats_abs.max(), abs(observed))
    return float(sum(s >= abs(observed) - tol for s in stats_abs) / len(stats_abs))


def complete_assignments(units: np.ndarray, n_treated: int) -> list[set[str]]:
    return [set(c) for c in combinations(units, n_treated)]


def grouped_assignments(units: np.ndarray, treated: np.ndarray, labels) -> list[set[str]]:
    """Every assignment keeping the observed number treated within each group."""
    per_group = []
    for label in pd.unique(np.asarray(labels)):
        members = [u for u, g in zip(units, labels, strict=True) if g == label]
        k = int(sum(t for t, g in zip(treated, labels, strict=True) if g == label))
        per_group.append(list(combinations(members, k)))
    return [set().union(*choice) for choice in product(*per_group)]


STRATA = ["a", "a", "a", "a", "b", "b", "b", "b", "b", "b"]
PAIRS = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]


def design_case(design: str, seed: int):
    """(data, keyword arguments, all assignments) for one design."""
    if design == "complete":
        data = make_panel(seed, n_units=8, effect=4.0)
        return data, {}, complete_assignments(data.units, data.n_treated)
    if design == "stratified":
        treated = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0], dtype=bool)
        data = make_panel(seed, n_units=10, effect=4.0, treated=treated)
        return data, {"strata": STRATA}, grouped_assignments(data.units, treated, STRATA)
    treated = np.array([1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0], dtype=bool)
    data = make_panel(seed, n_units=12, effect=4.0, treated=treated)
    return data, {"pairs": PAIRS}, grouped_assignments(data.units, treated, PAIRS)


@pytest.mark.parametrize("design", ["complete", "stratified", "paired"])
@pytest.mark.parametrize("seed", [4, 6, 8])
def test_p_value_matches_brute_force_refits(design, seed):
    data, kwargs, assignments = design_case(design, seed)
    frame = long_frame(data)
    observed = pandas_did(frame, set(data.units[data.treated]))
    stats = [pandas_did(frame, a) for a in assignments]

    result = randomization_inference(data, design=design, **kwargs)

    assert result.status == "ok"
    assert result.extras["exact"] is True
    assert result.extras["n_draws"] == len(assignments)
    assert result.estimate == pytest.approx(observed, rel=1e-12)
    assert result.p_value == pytest.approx(brute_p(stats, observed), abs=1e-12)
    assert 0.0 < result.p_value < 1.0
    assert result.extras["se"] == pytest.approx(np.std(stats), rel=1e-10)
    assert result.n_units == len(data.units)


def test_paired_is_stratified_by_pair_and_differs_from_complete():
    """The brute-force comparison above would be vacuous if the designs drew alike."""
    data, _, _ = design_case("paired", 1)
    paired = randomization_inference(data, design="paired", pairs=PAIRS)
    by_pair = randomization_inference(data, design="stratified", strata=PAIRS)
    complete = randomization_inference(data)
    assert paired.p_value == by_pair.p_value
    assert paired.extras["n_draws"] == 2**6
    assert complete.extras["n_draws"] == math.comb(12, 6)
    assert complete.p_value != paired.p_value


def brute_grid_p(data: PanelData, assignments: list[np.ndarray], tau: float, ancova: bool):
    """p(tau): adjust the outcomes, recompute the statistic for every assignment (a loop)."""
    y = data.y - tau * np.outer(data.treated, data.post)
    pre, post = y[:, ~data.post].mean(axis=1), y[:, data.post].mean(axis=1)
    if ancova:
        slope = np.polyfit(pre, post, 1)[0]
        d = post - slope * pre
    else:
        d = post - pre
    stats = [d[mask].mean() - d[~mask].mean() for mask in assignments]
    return brute_p(stats, d[data.treated].mean() - d[~data.treated].mean())


@pytest.mark.parametrize(
    ("design", "statistic"),
    [("complete", "did"), ("complete", "ancova"), ("paired", "did"), ("stratified", "ancova")],
)
def test_interval_matches_brute_force_grid(design, statistic):
    data, kwargs, assignments = design_case(design, 2)
    masks = [np.isin(data.units, list(a)) for a in assignments]
    result = randomization_inference(data, design=design, statistic=statistic, **kwargs)
    assert math.isfinite(result.ci_low)
    assert math.isfinite(result.ci_high)
    width = result.ci_high - result.ci_low
    grid = np.linspace(result.ci_low - 0.5 * width, result.ci_high + 0.5 * width, 401)
    grid = grid + 0.37 * (grid[1] - grid[0])  # off the breakpoints
    step = grid[1] - grid[0]
    ancova = statistic == "ancova"
    pvalues = np.array([brute_grid_p(data, masks, tau, ancova) for tau in grid])
    accepted = grid[pvalues > result.alpha]
    assert pvalues[0] <= result.alpha
    assert pvalues[-1] <= result.alpha
    assert accepted.min() - step < result.ci_low <= accepted.min()
    assert accepted.max() <= result.ci_high < accepted.max() + step
    assert brute_grid_p(data, masks, 0.0, ancova) == pytest.approx(result.p_value, abs=1e-12)


def test_interval_is_unbounded_when_no_assignment_can_reject():
    """Four pairs: 16 sign flips, smallest p = 2/16 > 0.05, so no tau0 is ever rejected."""
    treated = np.array([1, 0, 1, 0, 0, 1, 0, 1], dtype=bool)
    data = make_panel(3, n_units=8, effect=4.0, treated=treated)
    pairs = [0, 0, 1, 1, 2, 2, 3, 3]
    masks = [np.isin(data.units, list(a)) for a in grouped_assignments(data.units, treated, pairs)]
    result = randomization_inference(data, design="paired", pairs=pairs)
    assert result.extras["min_p_value"] == pytest.approx(2 / 16)
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf)
    assert brute_grid_p(data, masks, 1e4, False) > 0.05
    assert brute_grid_p(data, masks, -1e4, False) > 0.05


def test_a_design_with_one_assignment_cannot_reject():
    """Every stratum a single unit: the observed assignment is the only one."""
    data = make_panel(5, n_units=80, effect=50.0)
    result = randomization_inference(data, design="stratified", strata=list(data.units))
    assert result.extras["n_draws"] == 1
    assert result.p_value == 1.0
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf)


def test_ancova_interval_can_be_unbounded():
    """Residualizing on the pre means: draws better balanced on pre than the observed one
    have a steeper T*(tau0), so they stay beyond |T_obs(tau0)| as tau0 -> +-inf."""
    data, _, assignments = design_case("complete", 7)
    masks = [np.isin(data.units, list(a)) for a in assignments]
    result = randomization_inference(data, statistic="ancova")
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf)
    assert brute_grid_p(data, masks, 1e4, True) > 0.05
    assert brute_grid_p(data, masks, -1e4, True) > 0.05
    assert math.isfinite(randomization_inference(data).ci_low)


def test_ancova_estimate_is_the_regression_coefficient():
    data = make_panel(11, n_units=10, effect=4.0)
    pre, post = data.y[:, ~data.post].mean(axis=1), data.y[:, data.post].mean(axis=1)
    design = np.column_stack([np.ones(len(pre)), pre, data.treated.astype(float)])
    coefficient = np.linalg.lstsq(design, post, rcond=None)[0][2]
    result = randomization_inference(data, statistic="ancova")
    did = randomization_inference(data)
    assert result.estimate == pytest.approx(coefficient, rel=1e-10)
    assert result.estimate != pytest.approx(did.estimate, rel=1e-3)


def test_relative_uses_the_treated_post_mean():
    data = make_panel(5, effect=4.0)
    result = randomization_inference(data)
    treated_post = data.y[np.ix_(data.treated, data.post)].mean()
    assert result.relative == pytest.approx(result.estimate / (treated_post - result.estimate))
    assert result.rel_ci_low == pytest.approx(relative_from_absolute(result.ci_low, treated_post))
    assert result.rel_ci_high == pytest.approx(relative_from_absolute(result.ci_high, treated_post))
    assert result.rel_ci_low < result.relative < result.rel_ci_high


def test_wide_panel_input_and_label_forms_agree():
    data = make_panel(4, n_units=10, treated=np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0], bool))
    frame = long_frame(data)
    rebuilt = wide_panel(
        frame,
        unit="unit",
        period="week",
        outcome="y",
        treated=dict(zip(data.units, data.treated, strict=True)),
        start=START,
    )
    mapping = dict(zip(data.units, STRATA, strict=True))
    shuffled = pd.Series(mapping).iloc[::-1]
    results = [
        randomization_inference(data, design="stratified", strata=STRATA),
        randomization_inference(rebuilt, design="stratified", strata=mapping),
        randomization_inference(data, design="stratified", strata=shuffled),
        randomization_inference(data, design="stratified", strata=np.array(STRATA)),
    ]
    first = results[0].to_dict()
    quantiles = first.pop("randomization_quantiles")
    for other in (r.to_dict() for r in results[1:]):
        assert other.pop("randomization_quantiles") == pytest.approx(quantiles)
        assert other == pytest.approx(first)
    complete = randomization_inference(data)
    assert complete.p_value != results[0].p_value


def test_seed_reproducibility():
    data = make_panel(8, n_units=24, n_weeks=12, effect=2.0)
    first = randomization_inference(data, n_draws=2_000, rng=42)
    again = randomization_inference(data, n_draws=2_000, rng=np.random.default_rng(42))
    other = randomization_inference(data, n_draws=2_000, rng=43)
    assert first.extras["exact"] is False
    assert first.extras["n_draws"] == 2_001
    assert first.to_dict() == again.to_dict()
    assert other.p_value != first.p_value
    count = first.p_value * 2_001  # (1 + #{|T*| >= |T_obs|}) / (1 + n_draws)
    assert count == pytest.approx(round(count), abs=1e-9)
    assert count >= 1


def test_exact_and_sampled_agree():
    data = make_panel(9, n_units=10, effect=3.0)
    exact = randomization_inference(data)
    sampled = randomization_inference(data, exact_max=0, n_draws=40_000, rng=1)
    assert exact.extras["exact"] is True
    assert sampled.extras["exact"] is False
    assert 0.02 < exact.p_value < 0.5
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.01)  # sd 0.002
    width = exact.ci_high - exact.ci_low
    assert sampled.ci_low == pytest.approx(exact.ci_low, abs=0.1 * width)
    assert sampled.ci_high == pytest.approx(exact.ci_high, abs=0.1 * width)
    assert sampled.extras["se"] == pytest.approx(exact.extras["se"], rel=0.02)


def simulated_calls(n_units: int, effect: float, n_panels: int = 500):
    for seed in range(n_panels):
        data = make_panel(10_000 + seed, n_units=n_units, n_weeks=8, effect=effect)
        yield randomization_inference(data, alpha=0.05)


@pytest.mark.parametrize(
    ("n_units", "low", "high"),
    [
        (10, 0.025, 0.075),  # exact size 12/252 = 4.8 %
        (8, 0.005, 0.055),  # exact size 2/70 = 2.9 %: with 8 units p can only be 2/70, 4/70...
    ],
)
def test_aa_rejection_rate(n_units, low, high):
    rejections = [r.p_value <= 0.05 for r in simulated_calls(n_units, effect=0.0)]
    assert low <= np.mean(rejections) <= high


def test_coverage_of_a_known_additive_effect():
    effect = 6.0
    results = list(simulated_calls(10, effect=effect))
    covered = [r.ci_low <= effect <= r.ci_high for r in results]
    assert 0.925 <= np.mean(covered) <= 0.975
    assert np.mean([r.p_value <= 0.05 for r in results]) > 0.5  # the effect is detectable


def test_degenerate_panels():
    data = make_panel(2)
    no_post = PanelData(data.y, data.units, data.periods, data.treated, data.post & False)
    no_pre = PanelData(data.y, data.units, data.periods, data.treated, data.post | True)
    one = np.zeros(8, dtype=bool)
    one[0] = True
    single = PanelData(data.y, data.units, data.periods, one, data.post)
    none = PanelData(data.y, data.units, data.periods, one & False, data.post)
    flat_y = 50.0 + np.arange(8)[:, None] + np.arange(10)[None, :]
    flat = PanelData(flat_y, data.units, data.periods, data.treated, data.post)

    assert randomization_inference(no_post).status == "no_post_period"
    assert randomization_inference(no_pre).status == "no_pre_period"
    assert randomization_inference(none).status == "no_units"
    result = randomization_inference(single)
    d = data.y[:, data.post].mean(axis=1) - data.y[:, ~data.post].mean(axis=1)
    assert result.status == "one_unit_per_arm"
    assert result.estimate == pytest.approx(d[0] - d[1:].mean())
    assert math.isnan(result.p_value)
    assert math.isnan(result.ci_low)
    zero = randomization_inference(flat)
    assert zero.status == "zero_variance"
    assert zero.estimate == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(zero.p_value)
    assert zero.to_dict()["design"] == "complete"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.2}, r"alpha == 1\.2, must be in \(0, 1\)\."),
        ({"alpha": 0}, "alpha == 0"),
        ({"n_draws": 0}, "n_draws == 0"),
        ({"n_draws": 10.5}, "n_draws == 10.5"),
        ({"exact_max": -1}, "exact_max == -1"),
        ({"design": "cluster"}, "design == 'cluster'"),
        ({"statistic": "median"}, "statistic == 'median'"),
        ({"design": "stratified"}, "strata is required"),
        ({"design": "paired"}, "pairs is required"),
        ({"strata": [0] * 8}, "strata is only used"),
        ({"design": "stratified", "strata": [0] * 7}, "strata has 7 labels"),
        ({"design": "stratified", "strata": {"s00": 0}}, "strata: unit 's01' has no label"),
        ({"design": "stratified", "strata": [0] * 7 + [None]}, "strata: a unit has a missing"),
        ({"design": "paired", "pairs": [0, 0, 1, 1, 2, 2, 3, 3]}, "pairs: pair 0 has 2 treated"),
        ({"rng": "seed"}, "rng == 'seed'"),
    ],
)
def test_parameter_errors(kwargs, message):
    treated = np.array([1, 1, 0, 0, 1, 0, 1, 0], dtype=bool)
    data = make_panel(1, treated=treated)
    with pytest.raises(ValueError, match=message):
        randomization_inference(data, **kwargs)


def test_given_assignments_equal_the_same_draws_made_inside():
    from loyalty_pilot.experiments.randomization import _assignments

    data = make_panel(8, n_units=24, n_weeks=12, effect=2.0)
    inside = randomization_inference(data, n_draws=500, exact_max=0, rng=5)
    groups = np.zeros(len(data.units), dtype=np.intp)
    matrix, exact, _ = _assignments(data.treated, groups, 500, 0, 5)
    assert not exact
    given = randomization_inference(data, assignments=matrix[1:])
    assert given.p_value == inside.p_value
    assert (given.ci_low, given.ci_high) == (inside.ci_low, inside.ci_high)
    assert given.extras["design"] == "given"
    # a design that allows only balanced draws changes the reference distribution
    keep = matrix[1:][:100]
    assert randomization_inference(data, assignments=keep).extras["n_draws"] == 101


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (np.ones((3, 5)), r"shape \(3, 5\)"),
        (np.full((2, 24), 0.5), "0 / 1 only"),
        (np.eye(24)[:3], "must treat 12 units"),
    ],
)
def test_given_assignments_are_checked(assignments, message):
    data = make_panel(8, n_units=24, n_weeks=12)
    with pytest.raises(ValueError, match=message):
        randomization_inference(data, assignments=assignments)
