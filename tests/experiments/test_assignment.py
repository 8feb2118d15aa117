"""Pilot assignment: partitions, sizes, determinism, row-order stability, balance gains."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from loyalty_pilot.experiments.assignment import (
    DESIGN_METHODS,
    Assignment,
    assign,
    balance_table,
    draw_codes,
    pre_period_covariates,
    size_bands,
)

ARMS3 = ("control", "cash", "gift")
REGIONS = ("east", "north", "south", "west")


def make_wide(seed: int = 0, n_units: int = 60, n_weeks: int = 26) -> pd.DataFrame:
    """Weekly sales of stores with their own level and trend, a common season and noise."""
    rng = np.random.default_rng(seed)
    weeks = np.arange(n_weeks)
    log_y = (
        8.0
        + rng.normal(0, 0.4, size=(n_units, 1))
        + rng.normal(0, 0.01, size=(n_units, 1)) * weeks
        + 0.05 * np.sin(weeks / 3)
        + rng.normal(0, 0.05, size=(n_units, n_weeks))
    )
    return pd.DataFrame(np.expm1(log_y), index=[f"s{i:03d}" for i in range(n_units)], columns=weeks)


def make_units(seed: int = 0, n_units: int = 60) -> pd.DataFrame:
    """Eligible stores: level and trend, region, format, size band."""
    rng = np.random.default_rng(seed + 100)
    units = pre_period_covariates(make_wide(seed, n_units))
    units["region"] = np.array(REGIONS)[np.arange(n_units) % 4]
    units["format"] = rng.choice(["super", "express"], size=n_units)
    units["size_m2"] = rng.uniform(200, 2000, size=n_units).round()
    units["size_band"] = size_bands(units["size_m2"])
    return units


def region_wide(units: pd.DataFrame, wide: pd.DataFrame) -> pd.DataFrame:
    """Region x week panel: sum of the stores of each region."""
    return wide.loc[units.index].groupby(units["region"]).sum()


def kwargs_for(method: str, units: pd.DataFrame, wide: pd.DataFrame) -> dict:
    """Design parameters that make ``method`` runnable on ``units``."""
    if method == "stratified":
        return {"strata": ["region", "format"], "per_arm": 5}
    if method == "matched":
        return {"strata": ["region"], "per_arm": 6}
    if method == "rerandomized":
        return {"per_arm": 8}
    if method == "cluster":
        return {"cluster": "region", "per_arm": 1}
    if method == "synthetic_region":
        return {"cluster": "region", "per_arm": None, "wide": region_wide(units, wide)}
    return {"per_arm": 7}


def check_partition(a: Assignment, units: pd.DataFrame) -> None:
    """Arm and block: unique sorted ids of eligible units, every unit in exactly one arm."""
    assert a.arm.index.is_unique
    assert a.arm.index.is_monotonic_increasing
    assert set(a.arm.index) <= set(units.index.astype(str))
    assert set(a.arm) <= set(a.arms)
    if a.block is not None:
        assert a.block.index.equals(a.arm.index)
        assert a.block.notna().all()


# ---------------------------------------------------------------- sizes and partitions


@pytest.mark.parametrize("arms", [("control", "cash"), ARMS3])
@pytest.mark.parametrize("method", ["complete", "rerandomized"])
def test_complete_and_rerandomized_sizes(method: str, arms: tuple[str, ...]) -> None:
    units = make_units()
    a = assign(units, arms, method=method, per_arm=9, seed=4)
    check_partition(a, units)
    assert a.arm.value_counts().to_dict() == dict.fromkeys(arms, 9)
    assert a.block is None
    assert a.details["sizes"] == dict.fromkeys(arms, 9)
    assert a.details["n_pilot"] == 9 * len(arms)


@pytest.mark.parametrize("arms", [("control", "cash"), ARMS3])
def test_stratified_sizes_per_stratum(arms: tuple[str, ...]) -> None:
    units = make_units()
    a = assign(units, arms, method="stratified", per_arm=6, seed=1, strata=["region", "format"])
    check_partition(a, units)
    assert a.arm.value_counts().to_dict() == dict.fromkeys(arms, 6)
    expected = units["region"] + "|" + units["format"]
    assert (a.block == expected.loc[a.block.index]).all()
    # every stratum holds the same number of units of every arm, as recorded
    counts = pd.crosstab(a.block, a.arm)
    assert (counts.nunique(axis=1) == 1).all()
    for label, row in counts.iterrows():
        assert a.details["strata"][label]["sizes"] == row.to_dict()


def test_stratified_largest_remainder_by_hand() -> None:
    """Strata of 10, 6 and 4 units, 5 per arm, 2 arms: quotas 2.5, 1.5, 1.0 -> 3, 1, 1.

    The two remainders of 0.5 tie; the first stratum in label order gets the extra unit.
    """
    units = pd.DataFrame(
        {"g": ["a"] * 10 + ["b"] * 6 + ["c"] * 4, "level": 0.0},
        index=[f"u{i:02d}" for i in range(20)],
    )
    a = assign(units, ["control", "cash"], method="stratified", per_arm=5, seed=0, strata=["g"])
    per_stratum = pd.crosstab(a.block, a.arm)
    assert per_stratum.loc["a"].tolist() == [3, 3]
    assert per_stratum.loc["b"].tolist() == [1, 1]
    assert per_stratum.loc["c"].tolist() == [1, 1]


def test_stratified_allocation_respects_capacity() -> None:
    """A stratum too small for its proportional share passes the extra to the others."""
    units = pd.DataFrame(
        {"g": ["a"] * 3 + ["b"] * 17}, index=[f"u{i:02d}" for i in range(20)]
    )  # proportional share of 'a' for 3 per arm x 3 arms: 0.45 -> cap floor(3 / 3) = 1
    a = assign(units, ARMS3, method="stratified", per_arm=6, seed=2, strata=["g"])
    counts = pd.crosstab(a.block, a.arm)
    assert counts.loc["a"].tolist() == [1, 1, 1]
    assert counts.loc["b"].tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match=r"per_arm == 7 .* at most 6"):
        assign(units, ARMS3, method="stratified", per_arm=7, seed=2, strata=["g"])


@pytest.mark.parametrize("arms", [("control", "cash"), ARMS3])
def test_matched_tuples_one_unit_per_arm(arms: tuple[str, ...]) -> None:
    units = make_units()
    a = assign(units, arms, method="matched", per_arm=7, seed=3, strata=["region"])
    check_partition(a, units)
    assert a.arm.value_counts().to_dict() == dict.fromkeys(arms, 7)
    assert a.block.nunique() == 7
    for _, members in a.arm.groupby(a.block):
        assert sorted(members) == sorted(arms)  # one unit of each arm per tuple
        assert units.loc[members.index, "region"].nunique() == 1  # within a stratum
    assert all(label.split("|")[0] in REGIONS for label in a.block)
    # 60 units in 4 regions of 15: 5 tuples of 3 (7 of 2) per region
    assert a.details["n_tuples"] == 4 * (15 // len(arms))


def test_matched_pairs_by_hand() -> None:
    """Levels 0, 0.1, 5, 5.2, 10, 10.3 (constant trend): the nearest pairs, in that order."""
    units = pd.DataFrame(
        {"level": [10.3, 0.0, 5.2, 0.1, 10.0, 5.0], "trend": 1.0},
        index=["f", "a", "d", "b", "e", "c"],
    )
    a = assign(units, ["control", "cash"], method="matched", per_arm=None, seed=0)
    tuples = {tuple(sorted(m.index)) for _, m in a.arm.groupby(a.block)}
    assert tuples == {("a", "b"), ("c", "d"), ("e", "f")}
    assert a.block.loc[["a", "b"]].tolist() == ["tuple-1", "tuple-1"]  # closest pair first
    assert a.block.loc[["c", "d"]].tolist() == ["tuple-2", "tuple-2"]
    assert a.block.loc[["e", "f"]].tolist() == ["tuple-3", "tuple-3"]


def test_matched_triples_leave_the_outlier_out() -> None:
    units = pd.DataFrame(
        {"level": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 50.0], "trend": 0.0},
        index=list("abcdefg"),
    )
    a = assign(units, ARMS3, method="matched", per_arm=None, seed=5)
    assert "g" not in a.arm.index
    assert {tuple(sorted(m.index)) for _, m in a.arm.groupby(a.block)} == {
        ("a", "b", "c"),
        ("d", "e", "f"),
    }


@pytest.mark.parametrize("arms", [("control", "cash"), ARMS3])
def test_cluster_assigns_whole_clusters(arms: tuple[str, ...]) -> None:
    units = make_units()
    a = assign(units, arms, method="cluster", per_arm=1, seed=8, cluster="region")
    check_partition(a, units)
    assert (a.block == units.loc[a.arm.index, "region"]).all()
    assert a.block.nunique() == len(arms)
    for region, members in a.arm.groupby(a.block):
        assert members.nunique() == 1  # the whole region gets one arm
        assert len(members) == int((units["region"] == region).sum())  # every store of it
    assert sorted(len(v) for v in a.details["clusters"].values()) == [1] * len(arms)


def test_per_arm_none_uses_all_units_as_evenly_as_possible() -> None:
    units = make_units(n_units=61)
    a = assign(units, ARMS3, method="complete", per_arm=None, seed=0)
    assert len(a.arm) == 61
    assert a.arm.value_counts().to_dict() == {"control": 21, "cash": 20, "gift": 20}
    s = assign(units, ARMS3, method="stratified", per_arm=None, seed=0, strata=["region"])
    assert len(s.arm) == 61
    assert sorted(s.arm.value_counts().tolist()) == [20, 20, 21]
    counts = pd.crosstab(s.block, s.arm)
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()
    m = assign(units, ARMS3, method="matched", per_arm=None, seed=0, strata=["region"])
    # regions of 16, 15, 15, 15 units: 5 triples each
    assert m.arm.value_counts().to_dict() == dict.fromkeys(ARMS3, 20)
    c = assign(units, ARMS3, method="cluster", per_arm=None, seed=0, cluster="region")
    assert len(c.arm) == 61
    assert sorted(len(v) for v in c.details["clusters"].values()) == [1, 1, 2]
    r = assign(units, ("control", "cash"), method="rerandomized", per_arm=None, seed=0)
    assert r.arm.value_counts().to_dict() == {"control": 31, "cash": 30}


def test_rerandomized_with_strata_keeps_strata() -> None:
    units = make_units()
    a = assign(units, ARMS3, method="rerandomized", per_arm=4, seed=2, strata=["region"])
    assert (a.block == units.loc[a.arm.index, "region"]).all()
    counts = pd.crosstab(a.block, a.arm)
    assert (counts == 1).all().all()
    assert a.details["mahalanobis"] <= a.details["threshold"]


# ---------------------------------------------------------------- rerandomization


def test_rerandomized_threshold_and_statistic_by_hand() -> None:
    """Two arms, all units: M = d' [(1/n1 + 1/n0) S]^-1 d with S over the units."""
    units = make_units(n_units=40)
    a = assign(units, ("control", "cash"), method="rerandomized", per_arm=None, seed=11)
    assert a.details["df"] == 2
    assert a.details["threshold"] == pytest.approx(chi2.ppf(0.05, 2), rel=1e-10)
    x = units[["level", "trend"]].to_numpy()
    treated = (a.arm.loc[units.index] == "cash").to_numpy()
    d = x[treated].mean(axis=0) - x[~treated].mean(axis=0)
    s = np.cov(x, rowvar=False)
    m = d @ np.linalg.solve((1 / treated.sum() + 1 / (~treated).sum()) * s, d)
    assert a.details["mahalanobis"] == pytest.approx(m, rel=1e-9)
    assert m <= a.details["threshold"]
    assert a.details["draws_tried"] >= 1
    assert a.details["acceptance_rate"] == pytest.approx(1 / a.details["draws_tried"])


def test_rerandomized_acceptance_rate_near_target() -> None:
    """Under complete randomization M is about chi-square: ~5 % of the draws pass."""
    units = make_units(n_units=60)
    codes = draw_codes(units, 2, method="complete", per_arm=None, n_draws=4000, rng=1)
    from loyalty_pilot.experiments.balance import joint_mahalanobis, whiten

    m = joint_mahalanobis(codes, whiten(units[["level", "trend"]].to_numpy()), 2)
    share = float(np.mean(m <= chi2.ppf(0.05, 2)))
    assert 0.035 < share < 0.065
    a = assign(units, ARMS3, method="rerandomized", per_arm=None, seed=3, acceptance=0.2)
    assert a.details["df"] == 4
    assert a.details["threshold"] == pytest.approx(chi2.ppf(0.2, 4), rel=1e-10)


def test_rerandomized_explicit_threshold_and_impossible_one() -> None:
    units = make_units(n_units=30)
    a = assign(units, ARMS3, method="rerandomized", per_arm=5, seed=0, max_mahalanobis=0.5)
    assert a.details["threshold"] == 0.5
    assert a.details["mahalanobis"] <= 0.5
    with pytest.raises(ValueError, match="max_mahalanobis"):
        draw_codes(units, 3, method="rerandomized", per_arm=5, n_draws=1, rng=0,
                   max_mahalanobis=0.0, acceptance=0.5)  # fmt: skip


def test_rerandomized_draws_all_pass_the_threshold() -> None:
    units = make_units(n_units=40)
    codes = draw_codes(units, 3, method="rerandomized", per_arm=6, n_draws=300, rng=5)
    from loyalty_pilot.experiments.balance import joint_mahalanobis, whiten

    m = joint_mahalanobis(codes, whiten(units[["level", "trend"]].to_numpy()), 3)
    assert (m <= chi2.ppf(0.05, 4) + 1e-9).all()
    assert len({row.tobytes() for row in codes}) == 300  # independent draws


# ---------------------------------------------------------------- synthetic region


def test_synthetic_region_treats_the_best_fitting_region() -> None:
    """Region 'mix' is a mixture of two others: its synthetic control fits exactly."""
    rng = np.random.default_rng(3)
    t = np.arange(30)
    base = {f"r{i}": 100 * (i + 1) * (1 + 0.1 * np.sin(t / (i + 2)) + rng.normal(0, 0.02, 30))
            for i in range(5)}  # fmt: skip
    r0, r1 = base["r0"] / base["r0"].mean(), base["r1"] / base["r1"].mean()
    base["mix"] = 700 * (0.3 * r0 + 0.7 * r1)
    wide = pd.DataFrame(base).T
    units = pd.DataFrame(index=wide.index)  # the units are the regions
    a = assign(units, ("control", "cash"), method="synthetic_region", per_arm=None, seed=0,
               wide=wide)  # fmt: skip
    assert a.arm[a.arm == "cash"].index.tolist() == ["mix"]
    assert (a.arm.drop("mix") == "control").all()
    assert len(a.arm) == 6
    best = a.details["ranking"][0]
    assert best["regions"] == ["mix"]
    assert best["rmspe"] == pytest.approx(0.0, abs=1e-9)
    assert best["weights"] == pytest.approx({"r0": 0.3, "r1": 0.7}, abs=1e-6)
    assert a.details["n_candidates"] == 6
    # three arms: the two best disjoint regions, which arm gets which drawn from the seed
    b = assign(units, ARMS3, method="synthetic_region", per_arm=None, seed=0, wide=wide)
    treated = b.arm[b.arm != "control"]
    ranking = [r["regions"][0] for r in b.details["ranking"]]
    assert set(treated.index) == set(ranking[:2])
    assert sorted(treated) == ["cash", "gift"]
    draws = [
        assign(units, ARMS3, method="synthetic_region", per_arm=None, seed=s, wide=wide)
        for s in range(20)
    ]
    seen = {d.arm.loc[ranking[0]] for d in draws}
    assert seen == {"cash", "gift"}


def test_synthetic_region_stores_follow_their_region_and_pairs() -> None:
    units = make_units()
    wide = region_wide(units, make_wide())
    a = assign(units, ("control", "cash"), method="synthetic_region", per_arm=None, seed=1,
               cluster="region", wide=wide, n_treated_regions=2)  # fmt: skip
    check_partition(a, units)
    assert len(a.arm) == len(units)  # every store: treated regions' and control regions'
    assert (a.block == units.loc[a.arm.index, "region"]).all()
    treated_regions = sorted(set(a.block[a.arm == "cash"]))
    assert treated_regions == a.details["ranking"][0]["regions"]
    assert a.details["n_candidates"] == math.comb(4, 2)
    assert a.details["clusters"]["cash"] == treated_regions
    # ineligible regions in the caller's panel do not change anything
    extra = pd.concat([wide, pd.DataFrame([wide.iloc[0] * 1.01], index=["zz-closed"])])
    b = assign(units, ("control", "cash"), method="synthetic_region", per_arm=None, seed=1,
               cluster="region", wide=extra, n_treated_regions=2)  # fmt: skip
    pd.testing.assert_series_equal(a.arm, b.arm)
    assert a.details == b.details


# ---------------------------------------------------------------- determinism and stability

RUNNABLE = list(DESIGN_METHODS)


@pytest.mark.parametrize("method", RUNNABLE)
def test_same_seed_same_answer_and_draw_codes_agree(method: str) -> None:
    units, wide = make_units(), make_wide()
    kwargs = kwargs_for(method, units, wide)
    a = assign(units, ARMS3, method=method, seed=21, **kwargs)
    b = assign(units, ARMS3, method=method, seed=21, **kwargs)
    pd.testing.assert_series_equal(a.arm, b.arm)
    assert a.details == b.details
    json.dumps(a.details)  # JSON-ready
    frame = a.to_frame()
    assert list(frame.columns) == ["unit", "arm", "block"]
    assert frame["unit"].tolist() == a.arm.index.tolist()
    # assign is exactly the first draw of draw_codes with the same seed
    codes = draw_codes(units, 3, method=method, n_draws=1, rng=np.random.default_rng(21),
                       **kwargs)  # fmt: skip
    expected = pd.Series(codes[0], index=units.index.astype(str))
    expected = expected[expected >= 0].sort_index()
    assert expected.index.equals(a.arm.index)
    assert (np.asarray(ARMS3)[expected.to_numpy()] == a.arm.to_numpy()).all()


@pytest.mark.parametrize("method", ["complete", "stratified", "matched", "rerandomized", "cluster"])
def test_different_seeds_differ(method: str) -> None:
    units, wide = make_units(), make_wide()
    kwargs = kwargs_for(method, units, wide)
    arms = {tuple(assign(units, ARMS3, method=method, seed=s, **kwargs).arm.items())
            for s in range(5)}  # fmt: skip
    assert len(arms) > 1


@pytest.mark.parametrize("method", RUNNABLE)
def test_row_order_does_not_matter(method: str) -> None:
    units, wide = make_units(), make_wide()
    kwargs = kwargs_for(method, units, wide)
    a = assign(units, ARMS3, method=method, seed=7, **kwargs)
    perm = np.random.default_rng(99).permutation(len(units))
    shuffled = dict(kwargs)
    if "wide" in kwargs:
        shuffled["wide"] = kwargs["wide"].iloc[::-1]
    b = assign(units.iloc[perm], ARMS3, method=method, seed=7, **shuffled)
    pd.testing.assert_series_equal(a.arm, b.arm)
    if a.block is None:
        assert b.block is None
    else:
        pd.testing.assert_series_equal(a.block, b.block)
    assert a.details == b.details
    # draw_codes follows the caller's rows: the same draws, permuted columns
    c1 = draw_codes(units, 3, method=method, n_draws=50, rng=3, **kwargs)
    c2 = draw_codes(units.iloc[perm], 3, method=method, n_draws=50, rng=3, **shuffled)
    np.testing.assert_array_equal(c1[:, perm], c2)


def test_integer_ids_are_strings() -> None:
    units = make_units(n_units=12).reset_index(drop=True)
    a = assign(units, ("control", "cash"), method="complete", per_arm=3, seed=0)
    assert all(isinstance(u, str) for u in a.arm.index)


# ---------------------------------------------------------------- draw_codes


@pytest.mark.parametrize("method", ["complete", "stratified", "matched", "rerandomized", "cluster"])
def test_draw_codes_every_row_is_a_design(method: str) -> None:
    units, wide = make_units(), make_wide()
    kwargs = kwargs_for(method, units, wide)
    codes = draw_codes(units, 3, method=method, n_draws=200, rng=np.random.default_rng(0),
                       **kwargs)  # fmt: skip
    assert codes.shape == (200, len(units))
    assert codes.dtype == np.int8
    assert set(np.unique(codes)) <= {-1, 0, 1, 2}
    per_arm = kwargs["per_arm"]
    if method == "cluster":
        sizes = units.groupby("region").size()
        for row in codes:
            labels = pd.Series(row, index=units.index).groupby(units["region"]).agg(set)
            assert (labels.map(len) == 1).all()  # whole clusters
            chosen = [next(iter(v)) for v in labels]
            assert sorted(c for c in chosen if c >= 0) == [0, 1, 2]
        assert sizes.sum() == len(units)
    else:
        for arm in range(3):
            assert ((codes == arm).sum(axis=1) == per_arm).all()
    # the draws vary (4 clusters: 24 ways to give three of them the three arms)
    assert len({row.tobytes() for row in codes}) == (24 if method == "cluster" else 200)
    if method in ("complete", "rerandomized"):
        assert ((codes >= 0).mean(axis=0) > 0).all()


def test_draw_codes_matched_permutes_within_fixed_tuples() -> None:
    units = make_units()
    a = assign(units, ARMS3, method="matched", per_arm=None, seed=0)
    codes = draw_codes(units, 3, method="matched", per_arm=None, n_draws=100, rng=4)
    frame = pd.DataFrame(codes.T, index=units.index.astype(str))
    tuples = frame.loc[a.block.index].groupby(a.block.to_numpy())
    for _, block in tuples:
        assert (np.sort(block.to_numpy(), axis=0) == np.arange(3)[:, None]).all()


# ---------------------------------------------------------------- balance over many seeds


def test_matched_and_rerandomized_beat_complete_on_balance() -> None:
    """Mean over 200 seeds of the largest |std diff| of level and trend across arms."""
    units = make_units(seed=5, n_units=48)
    covariates = units[["level", "trend"]]
    worst = {}
    for method in ("complete", "matched", "rerandomized"):
        values = []
        for seed in range(200):
            a = assign(units, ARMS3, method=method, per_arm=8, seed=seed)
            table = balance_table(covariates, a.arm, "control")
            values.append(table["std_diff"].abs().max())
        worst[method] = float(np.mean(values))
    assert worst["matched"] < 0.7 * worst["complete"]
    assert worst["rerandomized"] < 0.7 * worst["complete"]


# ---------------------------------------------------------------- size bands and errors


def test_size_bands_tertiles() -> None:
    values = pd.Series([100, 900, 500, 300, 700, 200, 800, 400, 600], index=list("abcdefghi"))
    bands = size_bands(values)
    assert bands.index.equals(values.index)
    assert bands.loc[["a", "f", "d"]].tolist() == ["band1"] * 3
    assert bands.loc[["h", "c", "i"]].tolist() == ["band2"] * 3
    assert bands.loc[["e", "g", "b"]].tolist() == ["band3"] * 3
    assert size_bands([5, 5, 5, 5], n=2).nunique() == 1  # ties share a band
    with pytest.raises(ValueError, match="n == 0"):
        size_bands(values, n=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "random"}, r"method == 'random', must be one of"),
        ({"per_arm": 9}, r"per_arm == 9 needs 27 units, only 20 eligible"),
        ({"per_arm": 0}, r"per_arm == 0, must be an int >= 1"),
        ({"seed": -1}, r"seed == -1"),
        ({"seed": 1.5}, r"seed == 1.5"),
        ({"strata": ["size_band"]}, r"strata == \['size_band'\], method == 'complete'"),
        ({"method": "stratified", "strata": ["colour"]}, r"strata: column 'colour' not in units"),
        ({"method": "matched", "covariates": ["x"]}, r"covariates: column 'x' not in units"),
        ({"method": "matched", "per_arm": 7}, r"per_arm == 7 needs 7 matched tuples of 3 units"),
        ({"method": "cluster"}, r"cluster == None"),
        ({"method": "cluster", "cluster": "region", "per_arm": 2}, r"needs 6 clusters, only 4"),
        ({"method": "rerandomized", "acceptance": 1.0}, r"acceptance == 1.0"),
        ({"method": "rerandomized", "max_mahalanobis": -1.0}, r"max_mahalanobis == -1.0"),
        ({"method": "synthetic_region", "per_arm": None}, r"wide == None"),
        ({"method": "synthetic_region", "per_arm": 3}, r"per_arm == 3, method == 'synthetic_r"),
    ],
)
def test_errors_name_the_parameter(kwargs: dict, match: str) -> None:
    units = make_units(n_units=20)
    call = {"method": "complete", "per_arm": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        assign(units, ARMS3, **call)


def test_more_errors() -> None:
    units = make_units(n_units=20)
    with pytest.raises(ValueError, match="arms"):
        assign(units, ["control"], method="complete", per_arm=1, seed=0)
    with pytest.raises(ValueError, match="arms"):
        assign(units, ["a", "a"], method="complete", per_arm=1, seed=0)
    doubled = pd.concat([units, units.iloc[:1]])
    with pytest.raises(ValueError, match="appears twice"):
        assign(doubled, ARMS3, method="complete", per_arm=1, seed=0)
    with pytest.raises(ValueError, match="units is empty"):
        assign(units.iloc[:0], ARMS3, method="complete", per_arm=1, seed=0)
    broken = units.assign(region=units["region"].where(units.index != "s003"))
    with pytest.raises(ValueError, match=r"strata: column 'region' is missing for unit 's003'"):
        assign(broken, ARMS3, method="stratified", per_arm=1, seed=0, strata=["region"])
    bad = units.assign(level=units["level"].where(units.index != "s004"))
    with pytest.raises(ValueError, match=r"covariates: column 'level' for unit 's004'"):
        assign(bad, ARMS3, method="rerandomized", per_arm=1, seed=0)
    with pytest.raises(ValueError, match="wide has no row for region 'west'"):
        assign(units, ARMS3, method="synthetic_region", per_arm=None, seed=0, cluster="region",
               wide=region_wide(units, make_wide()).drop("west"))  # fmt: skip
    with pytest.raises(ValueError, match=r"n_treated_regions == 2 with 2 programme arm"):
        assign(units, ARMS3, method="synthetic_region", per_arm=None, seed=0, cluster="region",
               wide=region_wide(units, make_wide()), n_treated_regions=2)  # fmt: skip
    for method, extra in [("complete", {}), ("matched", {}), ("cluster", {"cluster": "region"}),
                          ("stratified", {"strata": ["region"]})]:  # fmt: skip
        with pytest.raises(ValueError, match="per_arm == None: the 2 eligible units leave an arm"):
            assign(units.iloc[:2], ARMS3, method=method, per_arm=None, seed=0, **extra)
    with pytest.raises(ValueError, match="n_draws == 0"):
        draw_codes(units, 3, method="complete", per_arm=1, n_draws=0, rng=0)
