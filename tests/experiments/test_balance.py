"""Balance diagnostics: covariates, standardized differences and series pinned by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments.assignment import assign
from loyalty_pilot.experiments.balance import (
    balance_table,
    greedy_tuples,
    joint_mahalanobis,
    pre_period_covariates,
    pre_period_series,
    whiten,
)


def test_pre_period_covariates_by_hand() -> None:
    wide = pd.DataFrame(
        [[10.0, 12.0, 11.0, 15.0], [100.0, 90.0, 80.0, 70.0], [0.0, 0.0, 1.0, 3.0]],
        index=["b", "a", "c"],
        columns=[3, 1, 2, 4],  # unsorted periods: sorted before the trend
    )
    out = pre_period_covariates(wide)
    assert out.index.tolist() == ["a", "b", "c"]
    assert out.index.name == "unit"
    ordered = wide.sort_index(axis=1)
    for unit in ["a", "b", "c"]:
        series = np.log1p(ordered.loc[unit].to_numpy())
        assert out.loc[unit, "level"] == pytest.approx(series.mean(), rel=1e-12)
        slope = np.polyfit(np.arange(4.0), series, 1)[0]
        assert out.loc[unit, "trend"] == pytest.approx(slope, rel=1e-10, abs=1e-14)
    raw = pre_period_covariates(wide, log=False)
    assert raw.loc["a", "level"] == pytest.approx(85.0)
    # periods 1..4 of 'a': 90, 80, 100, 70; centred t: -1.5, -0.5, 0.5, 1.5 -> -20 / 5
    assert raw.loc["a", "trend"] == pytest.approx(-4.0)
    assert raw.loc["c", "trend"] == pytest.approx(np.polyfit(range(4), [0, 1, 0, 3], 1)[0])


def test_pre_period_covariates_ignore_row_order_and_ids_become_str() -> None:
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.uniform(50, 150, size=(6, 8)), index=[5, 3, 1, 2, 4, 0])
    a = pre_period_covariates(wide)
    b = pre_period_covariates(wide.iloc[::-1])
    pd.testing.assert_frame_equal(a, b)
    assert a.index.tolist() == ["0", "1", "2", "3", "4", "5"]


def test_pre_period_covariates_errors() -> None:
    with pytest.raises(ValueError, match="wide has 1 period"):
        pre_period_covariates(pd.DataFrame({"w1": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=r"wide: column 'w2' for unit 'x'"):
        pre_period_covariates(pd.DataFrame({"w1": [1.0], "w2": [np.nan]}, index=["x"]))
    with pytest.raises(ValueError, match="log1p needs > -1"):
        pre_period_covariates(pd.DataFrame({"w1": [1.0], "w2": [-2.0]}, index=["x"]))
    assert pre_period_covariates(
        pd.DataFrame({"w1": [1.0], "w2": [-2.0]}, index=["x"]), log=False
    ).loc["x", "trend"] == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="appears twice"):
        pre_period_covariates(pd.DataFrame({"w1": [1.0, 2.0], "w2": [1.0, 2.0]}, index=["x", "x"]))
    with pytest.raises(ValueError, match="non-empty"):
        pre_period_covariates(pd.DataFrame())


def test_balance_table_std_diff_and_mahalanobis_by_hand() -> None:
    """Control 1, 2, 3 (var 1); cash 4, 6 (var 2): std diff 3 / sqrt(1.5).

    Mahalanobis with one covariate: d^2 / ((1/2 + 1/3) s^2), s^2 = var(1, 2, 3, 4, 6) = 3.7.
    """
    covariates = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 6.0, 99.0]}, index=list("abcdefg")[:6])
    arm = pd.Series(["control"] * 3 + ["cash"] * 2, index=list("abcde"))  # 'f' ignored
    table = balance_table(covariates, arm, "control")
    assert list(table.columns) == [
        "arm", "covariate", "n_arm", "n_control", "mean_arm", "mean_control", "std_diff",
        "mahalanobis",
    ]  # fmt: skip
    row = table.iloc[0]
    assert (row["arm"], row["covariate"], row["n_arm"], row["n_control"]) == ("cash", "x", 2, 3)
    assert row["mean_arm"] == 5.0
    assert row["mean_control"] == 2.0
    assert row["std_diff"] == pytest.approx(3 / math.sqrt(1.5), rel=1e-12)
    assert row["mahalanobis"] == pytest.approx(9 / ((1 / 2 + 1 / 3) * 3.7), rel=1e-12)


def test_balance_table_two_covariates_three_arms() -> None:
    rng = np.random.default_rng(2)
    covariates = pd.DataFrame(rng.normal(size=(30, 2)), columns=["level", "trend"],
                              index=[f"u{i:02d}" for i in range(30)])  # fmt: skip
    arm = pd.Series(
        np.array(["control", "cash", "gift"])[np.arange(30) % 3], index=covariates.index
    )
    table = balance_table(covariates, arm, "control", arms=["control", "gift", "cash"])
    assert table["arm"].tolist() == ["gift", "gift", "cash", "cash"]
    assert table["covariate"].tolist() == ["level", "trend"] * 2
    x = covariates.to_numpy()
    control = (arm == "control").to_numpy()
    for name in ("cash", "gift"):
        members = (arm == name).to_numpy()
        rows = table[table["arm"] == name]
        diff = x[members].mean(axis=0) - x[control].mean(axis=0)
        pooled = np.sqrt((x[members].var(axis=0, ddof=1) + x[control].var(axis=0, ddof=1)) / 2)
        np.testing.assert_allclose(rows["std_diff"], diff / pooled, rtol=1e-12)
        s = np.cov(x, rowvar=False)
        m = diff @ np.linalg.solve((1 / members.sum() + 1 / control.sum()) * s, diff)
        np.testing.assert_allclose(rows["mahalanobis"], m, rtol=1e-9)
    # default order: sorted names
    assert balance_table(covariates, arm, "control")["arm"].unique().tolist() == ["cash", "gift"]


def test_balance_table_one_unit_arms_are_nan_safe() -> None:
    covariates = pd.DataFrame({"x": [1.0, 3.0, 5.0, 10.0], "k": 7.0}, index=list("abcd"))
    one_treated = pd.Series(["control", "control", "control", "cash"], index=list("abcd"))
    table = balance_table(covariates, one_treated, "control").set_index("covariate")
    assert table.loc["x", "std_diff"] == pytest.approx((10 - 3) / 2.0)  # control sd alone: 2
    assert table.loc["k", "std_diff"] == 0.0  # equal means, no variance
    both_single = pd.Series(["control", "cash"], index=["a", "d"])
    with np.errstate(all="raise"):  # no warnings either
        single = balance_table(covariates, both_single, "control").set_index("covariate")
    assert math.isnan(single.loc["x", "std_diff"])
    assert single.loc["k", "std_diff"] == 0.0


def test_balance_table_errors() -> None:
    covariates = pd.DataFrame({"x": [1.0, 2.0]}, index=["a", "b"])
    with pytest.raises(ValueError, match="control == 'ctrl'"):
        balance_table(covariates, pd.Series(["control", "cash"], index=["a", "b"]), "ctrl")
    with pytest.raises(ValueError, match="no row for unit 'c'"):
        balance_table(covariates, pd.Series(["control", "cash"], index=["a", "c"]), "control")
    with pytest.raises(ValueError, match="does not list arm 'cash'"):
        balance_table(covariates, pd.Series(["control", "cash"], index=["a", "b"]), "control",
                      arms=["control"])  # fmt: skip


def test_assignment_balance_uses_its_arms() -> None:
    rng = np.random.default_rng(1)
    units = pd.DataFrame(rng.normal(size=(24, 2)), columns=["level", "trend"],
                         index=[f"u{i:02d}" for i in range(24)])  # fmt: skip
    a = assign(units, ["control", "gift", "cash"], method="complete", per_arm=6, seed=0)
    table = a.balance(units)
    assert table["arm"].unique().tolist() == ["gift", "cash"]
    wide = pd.DataFrame(rng.uniform(size=(24, 5)), index=units.index)
    assert a.pre_series(wide).columns.tolist() == ["control", "gift", "cash"]


def test_pre_period_series_by_hand() -> None:
    wide = pd.DataFrame(
        {"w2": [2.0, 4.0, 6.0, 100.0], "w1": [1.0, 3.0, 5.0, 100.0]}, index=["a", "b", "c", "z"]
    )
    arm = pd.Series(["control", "cash", "control"], index=["c", "b", "a"])  # 'z' not in pilot
    out = pre_period_series(wide, arm, arms=["control", "cash"])
    assert out.columns.tolist() == ["control", "cash"]
    assert out.index.tolist() == ["w1", "w2"]
    assert out.index.name == "period"
    assert out.loc["w1"].tolist() == [3.0, 3.0]
    assert out.loc["w2"].tolist() == [4.0, 4.0]
    with pytest.raises(ValueError, match="wide has no row for unit 'q'"):
        pre_period_series(wide, pd.Series(["control"], index=["q"]))


def test_whiten_gives_identity_covariance_and_handles_collinearity() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 3)) @ np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 4.0]])
    z = whiten(x)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(3), atol=1e-10)
    collinear = np.column_stack([x[:, 0], 2 * x[:, 0], np.ones(50)])
    assert whiten(collinear).shape == (50, 1)
    assert whiten(x[:1]).shape == (1, 0)


def test_joint_mahalanobis_two_arms_equals_morgan_rubin() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(20, 2))
    codes = np.array(
        [np.r_[np.zeros(10), np.ones(10)], np.r_[np.ones(8), np.zeros(8), -np.ones(4)]]
    )
    m = joint_mahalanobis(codes.astype(np.int8), whiten(x), 2)
    s = np.cov(x, rowvar=False)
    for row, value in zip(codes, m, strict=True):
        t, c = x[row == 1], x[row == 0]
        d = t.mean(axis=0) - c.mean(axis=0)
        assert value == pytest.approx(d @ np.linalg.solve((1 / len(t) + 1 / len(c)) * s, d))


def test_greedy_tuples_closest_first() -> None:
    z = np.array([[0.0], [10.0], [0.5], [10.2], [3.0], [100.0]])
    assert [t.tolist() for t in greedy_tuples(z, 2)] == [[1, 3], [0, 2], [4, 5]]
    assert greedy_tuples(z[:1], 2) == []


def test_rerandomization_check_can_fail_where_the_chi_square_p_cannot():
    """Rerandomized draws (acceptance 5 %) all pass their own rule and their chi-square
    p-value is >= 0.95 (so a p-value gate never fires); ``p_within`` is uniform over the
    accepted draws; an assignment outside the threshold (tampered: two units swapped to
    the worst imbalance) fails. M is recomputed with joint_mahalanobis."""
    from scipy import stats

    from loyalty_pilot.experiments.assignment import draw_codes
    from loyalty_pilot.experiments.balance import joint_mahalanobis, rerandomization_check

    rng = np.random.default_rng(8)
    units = pd.DataFrame(
        {"level": rng.normal(size=24), "trend": rng.normal(size=24)},
        index=[f"s{i:02d}" for i in range(24)],
    )
    codes = draw_codes(units, 2, method="rerandomized", per_arm=12, n_draws=400, rng=1)
    z = whiten(units[["level", "trend"]].to_numpy())
    m = joint_mahalanobis(codes, z, 2)
    threshold = float(stats.chi2.ppf(0.05, 2))
    assert (stats.chi2.sf(m, 2) >= 0.95 - 1e-12).all()
    checks = [rerandomization_check(v, threshold, 2) for v in m]
    assert all(c["inside"] for c in checks)
    p_within = np.array([c["p_within"] for c in checks])
    assert stats.kstest(p_within, "uniform").pvalue > 0.01
    # tampering: every treated unit with the highest levels
    tampered = (units["level"].rank(method="first").to_numpy() > 12).astype(int)[None, :]
    m_bad = float(joint_mahalanobis(tampered, z, 2)[0])
    bad = rerandomization_check(m_bad, threshold, 2)
    assert not bad["inside"]
    assert bad["p_within"] == 0.0
