"""The demo's synthetic pilot: plan, injected truth, evaluation from the workspace."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty_pilot.pilots.chain import build_chain
from loyalty_pilot.pilots.demo_pilot import evaluate_pilot, pilot_lines, plan_pilot
from loyalty_pilot.pilots.workspace import open_workspace


def test_plan_draws_disjoint_arms_and_injects_the_truth():
    plan = plan_pilot(48, 104, dt.date(2024, 1, 1), seed=5)
    arms = list(plan.assignment.values())
    assert sorted(set(arms)) == ["cash", "control", "gift"]
    assert arms.count("cash") == arms.count("gift") == arms.count("control") == 8
    assert plan.start == dt.date(2024, 1, 1) + dt.timedelta(weeks=92)
    effects = {tuple(e["stores"]): e for e in plan.effects()}
    cash_stores = tuple(s for s, a in plan.assignment.items() if a == "cash")
    assert effects[cash_stores]["visit_uplift"] == 0.05
    # truth = (1 + visits) (1 + basket) - 1 = 1.05 * 1.01 - 1
    assert plan.truth["cash"] == pytest.approx(0.0605)
    assert plan_pilot(4, 104, dt.date(2024, 1, 1)) is None


def test_pilot_evaluation_recovers_a_large_effect(tmp_path, monkeypatch):
    from loyalty_pilot.pilots import demo_pilot

    # A large effect and many customers per store, so the test has the power to see it.
    monkeypatch.setitem(demo_pilot.ARMS, "cash", {"visit_uplift": 0.25, "basket_uplift": 0.0})
    monkeypatch.setitem(demo_pilot.ARMS, "gift", {"visit_uplift": 0.0, "basket_uplift": 0.0})
    plan = plan_pilot(18, 40, dt.date(2024, 1, 1), per_arm=6, seed=2)
    ws = open_workspace(tmp_path / "ws")
    build_chain(ws, stores=18, regions=3, customers=9000, weeks=40, seed=2,
                start=dt.date(2024, 1, 1), effects=plan.effects())  # fmt: skip
    con = ws.connect(read_only=True)
    rows = {r["arm"]: r for r in evaluate_pilot(con, plan)}
    con.close()
    assert rows["cash"]["truth_relative"] == pytest.approx(0.25)
    assert rows["cash"]["rel_ci_low"] > 0.10  # clearly positive
    assert rows["cash"]["truth_covered"]
    assert rows["gift"]["rel_ci_low"] < 0 < rows["gift"]["rel_ci_high"]  # no effect injected
    lines = pilot_lines(list(rows.values()))
    assert any(line.strip().startswith("cash") and "truth +25.0%" in line for line in lines)
