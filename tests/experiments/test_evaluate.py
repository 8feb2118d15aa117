"""evaluate(): every arm against the control, each comparison = the estimator on its two arms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments.did import ancova, did, event_study
from loyalty_pilot.experiments.evaluate import METHODS, Evaluation, evaluate
from loyalty_pilot.experiments.panel import PanelError, wide_panel
from loyalty_pilot.experiments.randomization import randomization_inference
from loyalty_pilot.experiments.ratio import ratio_did
from loyalty_pilot.experiments.synthetic_control import synthetic_control

ARMS = ("control", "cash", "gift")
EFFECTS = {"control": 0.0, "cash": 5.0, "gift": 1.0}
START = 6


def make_panel(
    per_arm: int = 4,
    n_periods: int = 9,
    arms: tuple[str, ...] = ARMS,
    seed: int = 0,
    noise: float = 0.5,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Long store x week panel: unit and week effects, noise, EFFECTS[arm] from START on."""
    rng = np.random.default_rng(seed)
    weeks = 100 + 3 * rng.normal(size=n_periods)
    rows, assignment = [], {}
    for k in range(per_arm * len(arms)):
        store = f"S{k:02d}"
        arm = arms[k % len(arms)]
        assignment[store] = arm
        level = 20 * rng.normal()
        for t in range(n_periods):
            effect = EFFECTS.get(arm, 2.0) if t >= START else 0.0
            rows.append(
                {
                    "store": store,
                    "region": "north" if k % 2 else "south",
                    "week": t,
                    "sales": level + weeks[t] + effect + noise * rng.normal(),
                }
            )
    return pd.DataFrame(rows), assignment


def direct(panel: pd.DataFrame, assignment: dict, arm: str, method: str, **kw):
    """The estimator called by hand on the panel of ``control`` and ``arm`` only."""
    units = [u for u, a in assignment.items() if a in ("control", arm)]
    data = wide_panel(
        panel[panel["store"].isin(units)],
        unit="store",
        period="week",
        outcome="sales",
        treated={u: assignment[u] == arm for u in units},
        start=START,
    )
    labels = {"arm": arm, "baseline": "control", "metric": "sales", "alpha": kw.pop("alpha")}
    function = {
        "did": did,
        "ancova": ancova,
        "ri": randomization_inference,
        "synthetic_control": synthetic_control,
        "event_study": event_study,
        "ratio": ratio_did,
    }[method]
    return function(data, **labels, **kw)


def without_scale(comparison) -> dict:
    """The comparison as the estimator gives it: evaluate() only adds the scale used."""
    out = comparison.to_dict()
    if comparison.method == "ratio":  # its own scale: the total sales
        assert out["scale"] == "total"
        return out
    assert out.pop("scale") == "level"
    return out


def run(panel, assignment, **kw) -> Evaluation:
    kw.setdefault("start", START)
    kw.setdefault("scale", "level")  # the estimators' own scale (auto is tested apart)
    return evaluate(panel, assignment, unit="store", period="week", outcome="sales", **kw)


@pytest.mark.parametrize("method", METHODS)
def test_each_arm_equals_the_estimator_on_its_two_arm_subset(method):
    panel, assignment = make_panel()
    extra = {"rng": 3} if method == "ri" else {}
    result = run(panel, assignment, method=method, alpha=0.1, **extra)
    assert result.arms == ARMS
    assert result.method == method
    assert result.metric == "sales"
    assert result.n_units == 12
    assert [c.arm for c in result.comparisons] == ["cash", "gift"]
    assert {c.baseline for c in result.comparisons} == {"control"}
    for comparison in result.comparisons:
        expected = direct(panel, assignment, comparison.arm, method, alpha=0.1, **extra)
        assert without_scale(comparison) == expected.to_dict()
        assert comparison.n_units == 8
        assert comparison.alpha == 0.1
    assert result.comparisons[0].estimate != result.comparisons[1].estimate


def test_did_estimates_are_the_difference_in_differences_of_means():
    panel, assignment = make_panel()
    result = run(panel, assignment)
    post = panel["week"] >= START
    for comparison in result.comparisons:

        def change(arm, post=post):
            rows = panel["store"].map(assignment) == arm
            return panel.loc[rows & post, "sales"].mean() - panel.loc[rows & ~post, "sales"].mean()

        by_hand = change(comparison.arm) - change("control")
        assert comparison.estimate == pytest.approx(by_hand, rel=1e-10)
        assert comparison.status == "ok"
        assert comparison.ci_low < comparison.estimate < comparison.ci_high
    cash, gift = result.comparisons
    assert cash.ci_low < EFFECTS["cash"] < cash.ci_high
    assert gift.ci_low < EFFECTS["gift"] < gift.ci_high
    assert cash.ci_low > gift.ci_high  # the two arms are told apart


def test_to_dict_has_the_contract_keys_and_the_estimators_extras():
    panel, assignment = make_panel()
    out = run(panel, assignment, method="event_study").to_dict()
    assert list(out) == ["method", "metric", "alpha", "arms", "control", "n_units", "comparisons"]
    assert out["arms"] == list(ARMS)
    assert len(out["comparisons"]) == 2
    first = out["comparisons"][0]
    contract = "arm baseline metric method estimate ci_low ci_high relative rel_ci_low "
    contract += "rel_ci_high p_value n_units status"
    assert list(first)[:13] == contract.split()
    assert first["event_study"][0]["event_time"] == -START
    assert {"pre_trend_p_value", "pre_trend_F", "se", "df"} <= set(first)
    sc = run(panel, assignment, method="synthetic_control").to_dict()["comparisons"][0]
    donors = [u for u, a in assignment.items() if a == "control"]
    assert sorted(sc["weights"]) == donors
    assert sum(sc["weights"].values()) == pytest.approx(1.0, abs=1e-5)


def test_zero_one_arms_are_control_and_treatment():
    panel, named = make_panel(arms=("control", "treatment"))
    zero_one = {u: int(a == "treatment") for u, a in named.items()}
    result = run(panel, zero_one)
    assert result.arms == ("control", "treatment")
    assert result.comparisons[0].to_dict() == run(panel, named).comparisons[0].to_dict()
    as_bool = run(panel, pd.Series({u: bool(v) for u, v in zero_one.items()}))
    assert as_bool.comparisons[0].estimate == result.comparisons[0].estimate
    flipped = run(panel, zero_one, control=1)
    assert flipped.comparisons[0].estimate == pytest.approx(-result.comparisons[0].estimate)
    assert run(panel, zero_one, control="1").comparisons[0].estimate == pytest.approx(
        flipped.comparisons[0].estimate
    )
    with pytest.raises(PanelError, match="control arm 2 is not an arm"):
        run(panel, zero_one, control=2)


def test_numeric_arm_names_other_than_zero_one():
    panel, named = make_panel()
    codes = {"control": 0, "cash": 1, "gift": 2}
    result = run(panel, {u: codes[a] for u, a in named.items()}, control=0)
    assert result.arms == ("0", "1", "2")
    assert result.comparisons[1].estimate == run(panel, named).comparisons[1].estimate


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda p, a: (p, a, {"control": "placebo"}), PanelError, "'placebo'"),
        (lambda p, a: (p, dict.fromkeys(a, "control"), {}), PanelError, "no other arm"),
        (lambda p, a: (p, {u: x for u, x in a.items() if u != "S05"}, {}), PanelError, "'S05'"),
        (lambda p, a: (p, {**a, "S05": None}, {}), PanelError, "unit 'S05' has no arm"),
        (
            lambda p, a: (
                p.assign(sales=p["sales"].astype(object).where(p.index != 7, "abc")),
                a,
                {},
            ),
            PanelError,
            "'abc'",
        ),
        (lambda p, a: (p.drop(columns="sales"), a, {}), PanelError, "'sales'"),
        (lambda p, a: (p, a, {"method": "bayes"}), ValueError, "method == 'bayes'"),
        (lambda p, a: (p, a, {"alpha": 1.5}), ValueError, "alpha == 1.5"),
        (lambda p, a: (p, a, {"design": "paired"}), ValueError, "method='ri' only"),
        (lambda p, a: (p, a, {"method": "ri", "design": "stratified"}), ValueError, "strata"),
        (lambda p, a: (p, a, {"start": "2026-01-01"}), PanelError, "cannot be compared"),
        (lambda p, a: (p.drop(index=3), a, {}), PanelError, "not balanced"),
    ],
)
def test_input_errors_name_the_column_or_value(change, error, match):
    panel, assignment, kw = change(*make_panel())
    with pytest.raises(error, match=match):
        run(panel, assignment, **kw)


def test_units_of_the_assignment_without_data_are_ignored():
    panel, assignment = make_panel()
    result = run(panel, {**assignment, "S99": "cash"})
    assert result.comparisons[0].to_dict() == run(panel, assignment).comparisons[0].to_dict()


@pytest.mark.parametrize("method", METHODS)
def test_an_arm_with_one_unit_still_gives_a_comparison(method):
    panel, assignment = make_panel()
    single = {u: a for u, a in assignment.items() if a != "gift"} | {"S02": "gift"}
    panel = panel[panel["store"].isin(single)]
    result = run(panel, single, method=method, rng=0)
    assert [c.arm for c in result.comparisons] == ["cash", "gift"]
    gift = result.comparisons[1]
    assert gift.n_units == 5
    if method == "synthetic_control":  # one treated unit is fine: four donors
        assert gift.status in ("ok", "poor_fit")
        assert math.isfinite(gift.estimate)
    else:
        assert gift.status == "one_unit_per_arm"
        assert math.isnan(gift.p_value)
    assert result.comparisons[0].status == "ok"


@pytest.mark.parametrize("method", METHODS)
def test_no_pre_period_is_a_status(method):
    panel, assignment = make_panel()
    result = run(panel, assignment, method=method, start=0)
    assert [c.status for c in result.comparisons] == ["no_pre_period", "no_pre_period"]


def test_an_arm_without_units_in_the_panel_is_a_status():
    panel, assignment = make_panel()
    panel = panel[panel["store"].map(assignment) != "gift"]
    result = run(panel, assignment)
    assert [c.status for c in result.comparisons] == ["ok", "no_units"]


def test_ri_stratified_by_column_equals_a_direct_call():
    panel, assignment = make_panel(per_arm=6)
    strata = panel.groupby("store")["region"].first()
    result = run(panel, assignment, method="ri", design="stratified", strata="region", rng=5)
    by_series = run(panel, assignment, method="ri", design="stratified", strata=strata, rng=5)
    for comparison, other in zip(result.comparisons, by_series.comparisons, strict=True):
        assert comparison.extras["design"] == "stratified"
        expected = direct(
            panel,
            assignment,
            comparison.arm,
            "ri",
            alpha=0.05,
            design="stratified",
            strata=strata.to_dict(),
            rng=5,
        )
        assert without_scale(comparison) == expected.to_dict() == without_scale(other)
    complete = run(panel, assignment, method="ri", rng=5)
    assert complete.comparisons[0].p_value != result.comparisons[0].p_value


def test_ri_seed_reproduces_sampled_draws():
    panel, assignment = make_panel(per_arm=10, arms=("control", "cash"))
    first = run(panel, assignment, method="ri", rng=11, n_draws=400)
    again = run(panel, assignment, method="ri", rng=11, n_draws=400)
    other = run(panel, assignment, method="ri", rng=12, n_draws=400)
    assert first.comparisons[0].extras["exact"] is False
    assert first.comparisons[0].extras["n_draws"] == 401
    assert first.to_dict() == again.to_dict()
    assert first.comparisons[0].extras["se"] != other.comparisons[0].extras["se"]


def test_datetime_periods_take_a_string_start():
    panel, assignment = make_panel()
    days = pd.Timestamp("2026-01-05") + pd.to_timedelta(7 * panel["week"], unit="D")
    dated = panel.assign(week=days)
    start = "2026-02-16"  # week 6
    result = run(dated, assignment, start=start)
    assert result.comparisons[0].estimate == pytest.approx(
        run(panel, assignment).comparisons[0].estimate
    )
    assert result.comparisons[0].extras["n_pre"] == START
    with pytest.raises(PanelError, match="'not a date'"):
        run(dated, assignment, start="not a date")


def test_synthetic_control_takes_predictors():
    panel, assignment = make_panel()
    predictors = panel[panel["week"] < START].groupby("store")[["sales"]].mean()
    result = run(panel, assignment, method="synthetic_control", predictors=predictors)
    assert set(result.comparisons[0].extras["v"]) == {"sales"}
    with pytest.raises(ValueError, match="predictors"):
        run(panel, assignment, predictors=predictors)


def test_ri_draws_give_each_comparison_the_designs_own_redraws():
    panel, assignment = make_panel(per_arm=6)
    seen = {}

    def redraws(arm: str, units: np.ndarray) -> np.ndarray:
        seen[arm] = list(units)
        treated = np.array([assignment[u] == arm for u in units], dtype=float)
        rng = np.random.default_rng(len(seen))
        return np.array([rng.permutation(treated) for _ in range(300)])

    result = run(panel, assignment, method="ri", ri_draws=redraws)
    arms = [a for a in dict.fromkeys(assignment.values()) if a != "control"]
    assert sorted(seen) == sorted(arms)
    for arm in arms:
        expected = sorted(u for u, a in assignment.items() if a in ("control", arm))
        assert sorted(seen[arm]) == expected
    for comparison in result.comparisons:
        assert comparison.extras["design"] == "given"
        assert comparison.extras["n_draws"] == 301
    with pytest.raises(ValueError, match="ri_draws are used by method='ri' only"):
        run(panel, assignment, method="did", ri_draws=redraws)


# -- method="ratio": the uplift of total sales ---------------------------------------------


@pytest.mark.parametrize("scale", ["auto", "level", "log"])
def test_ratio_uses_level_data_with_unequal_arms(scale):
    """3 treated stores against every other store; the figures are ratio_did's on levels."""
    panel, _ = make_panel(per_arm=10, arms=("control",))
    stores = sorted(panel["store"].unique())
    assignment = {u: "cash" if k < 3 else "control" for k, u in enumerate(stores)}
    post = panel["week"] >= START
    panel = panel.assign(sales=panel["sales"] * np.where(
        post & panel["store"].map(assignment).eq("cash"), 1.1, 1.0))  # fmt: skip
    result = evaluate(panel, assignment, unit="store", period="week", outcome="sales",
                      start=START, method="ratio", scale=scale)  # fmt: skip
    (comparison,) = result.comparisons
    expected = direct(panel, assignment, "cash", "ratio", alpha=0.05)
    assert comparison.to_dict() == expected.to_dict()
    assert comparison.extras["scale"] == "total"
    assert (comparison.extras["n_treated"], comparison.extras["n_control"]) == (3, 7)
    treated = panel["store"].map(assignment).eq("cash")
    total = panel.groupby([treated, post])["sales"].sum()
    theta = total[True, True] / (total[True, False] * total[False, True] / total[False, False])
    assert comparison.relative == pytest.approx(theta - 1, rel=1e-12)


def test_ratio_on_a_region_panel_and_with_the_adjustment():
    panel, _ = make_panel(per_arm=5, n_periods=30, arms=("control", "cash"))
    by_region = panel.assign(region=panel["store"].str[-1:]).groupby(["region", "week"])
    regions = by_region["sales"].sum().reset_index()
    arms = {r: "cash" if r in "0246" else "control" for r in regions["region"].unique()}
    result = evaluate(regions, arms, unit="region", period="week", outcome="sales", start=20,
                      method="ratio", adjust="regression")  # fmt: skip
    (comparison,) = result.comparisons
    data = wide_panel(regions, unit="region", period="week", outcome="sales",
                      treated={r: a == "cash" for r, a in arms.items()}, start=20)  # fmt: skip
    assert comparison.to_dict() == ratio_did(data, arm="cash", metric="sales",
                                             adjust="regression").to_dict()  # fmt: skip
    assert comparison.extras["adjust"] == "regression"


def test_adjust_is_for_ratio_only():
    panel, assignment = make_panel()
    with pytest.raises(ValueError, match="adjust is used by method='ratio' only"):
        run(panel, assignment, method="did", adjust="regression")
    with pytest.raises(ValueError, match="adjust == 'cuped'"):
        run(panel, assignment, method="ratio", adjust="cuped")
