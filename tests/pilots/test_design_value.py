"""Sizing by value (pilots.design_value) on hand-made placebo fits: what is valued, what
is left out and why, and the interval rule's own value of information."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from loyalty_pilot.experiments.value import Economics, Normal, value_after_interval
from loyalty_pilot.pilots.design_value import interval_cuts, size_by_value
from loyalty_pilot.pilots.money import ArmMoney, pilot_value


def _table(scale="ratio", se=0.02, estimator="ratio"):
    rng = np.random.default_rng(0)
    n = 400
    fits = SimpleNamespace(
        estimate=se * rng.standard_normal(n), se=np.full(n, se), df=np.full(n, 30.0),
        per_arm=8, weeks=12, scale=scale, estimator=estimator, treated_share=0.2,
    )  # fmt: skip
    cell = SimpleNamespace(per_arm=8, weeks=12, mde=0.05)
    return SimpleNamespace(cells=(cell,), fits=(fits,))


def _money(break_even=0.005):
    econ = Economics.from_break_even(60_000.0, break_even, 60_000.0, 0.10)
    return [ArmMoney("cash", econ, Normal(0.006, 0.01), "assumptions", 0.006)]


KW = {"alpha": 0.05, "target": 0.8, "chain_weekly_sales": 1e6, "horizon_months": 12}


def test_a_candidate_is_valued_by_its_median_likelihood_se():
    sizing = size_by_value({"matched": _table()}, _money(), rule="expected_profit", **KW)
    (c,) = sizing.candidates
    from loyalty_pilot.experiments.decision_power import likelihood_se

    se = float(likelihood_se(0.02, 30.0))
    assert c.se == pytest.approx(se)
    _, _, gain, cost = pilot_value(_money(), se, 0.2 * 1e6 * 12, 12, 12)
    assert (c.evsi, c.cost) == (pytest.approx(gain), pytest.approx(cost))
    assert set(c.p_go) == {"0", "1x", "2x", "5x"}


def test_level_scale_and_ri_fits_are_left_out_with_a_note():
    level = size_by_value({"matched": _table(scale="level", estimator="did")}, _money(),
                          rule="expected_profit", **KW)  # fmt: skip
    assert level.candidates == ()
    assert "not did on the level scale" in level.notes[0]
    ri = size_by_value({"matched": _table(se=math.nan, estimator="ri", scale="log")}, _money(),
                       rule="expected_profit", **KW)  # fmt: skip
    assert ri.candidates == ()
    assert "no placebo gave a standard error (ri)" in ri.notes[0]


def test_an_infinite_break_even_values_the_pilot_without_a_curve():
    econ = Economics(0.0, 60_000.0, 60_000.0, 0.10)  # an extra euro costs its margin
    money = [ArmMoney("cash", econ, Normal(0.006, 0.01), "assumptions", 0.006)]
    sizing = size_by_value({"matched": _table()}, money, rule="expected_profit", **KW)
    (c,) = sizing.candidates
    assert c.p_go == {"0": 0.0, "1x": 0.0, "2x": 0.0, "5x": 0.0}
    assert c.mde_go is None
    assert sizing.recommendation == "do_not_roll_out"


def test_the_interval_rule_is_valued_by_its_own_decisions():
    money = _money()
    sizing = size_by_value({"matched": _table()}, money, rule="interval", **KW)
    (c,) = sizing.candidates
    from scipy import stats

    cut = math.log1p(0.005) + stats.t.ppf(1 - 0.05 / 2, 30.0) * 0.02
    assert interval_cuts(money, 0.05, 0.02, 30.0, None) == [pytest.approx(cut)]
    after = value_after_interval(money[0].prior, c.se, money[0].economics, cut)
    now = money[0].economics.value_of_deciding(money[0].prior)
    assert c.evsi == pytest.approx(after - now)


def test_all_other_eligible_units_join_the_control_arm_in_their_own_block():
    import pandas as pd

    from loyalty_pilot.experiments.assignment import Assignment
    from loyalty_pilot.pilots.pilot_design import with_all_controls

    arm = pd.Series({"S1": "cash", "S2": "control", "S3": "cash", "S4": "control"})
    block = pd.Series({"S1": "t1", "S2": "t1", "S3": "t2", "S4": "t2"})
    drawn = Assignment(arm, block, "matched", 7, ("control", "cash"), {})
    wide = with_all_controls(drawn, ["S1", "S2", "S3", "S4", "S5", "S6"])
    assert wide.arm.to_dict() == {"S1": "cash", "S2": "control", "S3": "cash",
                                  "S4": "control", "S5": "control", "S6": "control"}  # fmt: skip
    assert wide.block["S5"] == wide.block["S6"] == "other-controls"
    assert wide.details["other_controls"] == 2
    assert with_all_controls(drawn, ["S1", "S2", "S3", "S4"]) is drawn
