"""Eligibility rules and the staged rollout plan, on hand-made stores."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.pilots.eligibility import eligible_units
from loyalty_pilot.pilots.rollout import HOLDOUT, pilot_stage, plan_rollout

PRE_START = dt.date(2025, 1, 6)


def _wide(rows: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(np.array(list(rows.values()), dtype=float), index=list(rows))


def test_each_rule_gives_its_reason_and_the_first_rule_wins() -> None:
    wide = _wide(
        {
            "S1": [5, 5, 5, 5, 5, 5],  # eligible
            "S2": [0, 0, 5, 5, 5, 5],  # 4 weeks with sales < 5
            "S3": [5, 5, 5, 5, 0, 0],  # silent at the end: closed
            "S4": [5, 5, 5, 5, 5, 5],  # excluded
            "S5": [5, 5, 5, 5, 5, 5],  # opened inside the window
            "S6": [1, 1, 1, 1, 1, 1],  # too small
            "S7": [0, 0, 0, 0, 0, 0],  # excluded and silent: the list wins
        }
    )
    opened = pd.Series({"S1": pd.Timestamp("2001-01-01"), "S5": pd.Timestamp("2025-02-03")})
    result = eligible_units(
        wide,
        pre_start=PRE_START,
        min_pre_weeks=5,
        min_weekly_sales=2.0,
        exclude=["S4", "S7"],
        opened=opened,
        closed_weeks=2,
    )
    reasons = dict(zip(result.table["unit"], result.table["reason"], strict=True))
    assert result.eligible == ["S1"]
    assert reasons["S2"] == "4 weeks with sales, fewer than 5"
    assert reasons["S3"] == "no sales in the last 2 pre-period weeks (closed?)"
    assert reasons["S4"] == reasons["S7"] == "on the exclusion list"
    assert reasons["S5"] == "opened 2025-02-03, inside the pre-period"
    assert reasons["S6"].startswith("mean weekly sales below 2.00")
    summary = result.to_dict()
    assert summary["n_candidates"] == 7
    assert summary["n_eligible"] == 1
    assert summary["counts"]["eligible"] == 1
    assert summary["counts"]["on the exclusion list"] == 2
    assert len(summary["excluded"]) == 6


def test_opening_on_the_first_day_is_eligible_and_row_order_does_not_matter() -> None:
    wide = _wide({"B": [1, 1, 1], "A": [1, 1, 1]})
    opened = pd.Series({"A": pd.Timestamp(PRE_START), "B": pd.NaT})
    result = eligible_units(wide, pre_start=PRE_START, min_pre_weeks=3, opened=opened)
    assert result.eligible == ["A", "B"]
    assert list(result.table["unit"]) == ["A", "B"]


def _stores(n_per_region: dict[str, int]) -> pd.DataFrame:
    units, regions = [], []
    k = 0
    for region, n in n_per_region.items():
        for _ in range(n):
            k += 1
            units.append(f"S{k:03d}")
            regions.append(region)
    return pd.DataFrame({"unit": units, "region": regions})


WAVES = [
    {"name": "north", "regions": ["north"]},
    {"name": "half", "share": 0.5},
    {"name": "national"},
]


def _plan(seed: int = 3, holdout: float = 0.1, waves: list | None = None):
    stores = _stores({"north": 6, "south": 8, "east": 6})
    return plan_rollout(
        stores,
        pilot_stores=["S001", "S010"],
        waves=WAVES if waves is None else waves,
        holdout_share=holdout,
        seed=seed,
        pilot_start=dt.date(2025, 1, 6),
        pilot_weeks=12,
    )


def test_waves_partition_the_stores_with_a_holdout() -> None:
    plan = _plan()
    names = [w.name for w in plan.waves]
    assert names == ["pilot", "north", "half", "national"]
    every = [s for w in plan.waves for s in w.stores] + list(plan.holdout)
    assert sorted(every) == [f"S{k:03d}" for k in range(1, 21)]  # a partition
    assert len(set(every)) == len(every)
    assert len(plan.holdout) == round(0.1 * 18)  # 10 % of the 18 non-pilot stores
    assert plan.waves[0].stores == ("S001", "S010")
    north = plan.waves[1]
    assert all(int(s[1:]) <= 6 for s in north.stores)  # only north stores
    assert set(north.stores) == {f"S{k:03d}" for k in range(2, 7)} - set(plan.holdout)
    # the share wave brings the treated share of the rollout's stores to 50 %
    pool = 20 - len(plan.holdout)
    treated = sum(len(w.stores) for w in plan.waves[:3])
    assert treated == int(np.ceil(0.5 * pool))
    assert plan.waves[2].cumulative_share == pytest.approx(treated / pool)
    assert plan.waves[-1].cumulative_share == pytest.approx(1.0)
    assert plan.wave_of()[plan.holdout[0]] == HOLDOUT


def test_wave_dates_follow_the_gates() -> None:
    plan = _plan(waves=[{"name": "north", "regions": ["north"], "min_weeks": 8}, {"name": "all"}])
    pilot, north, rest = plan.waves
    assert north.start == pilot.start + dt.timedelta(weeks=12)
    assert rest.start == north.start + dt.timedelta(weeks=8)
    assert north.gate == "GO on pilot"
    assert rest.gate == "GO on north"
    first = plan.first_treated()
    assert first["S001"] == pilot.start
    assert first[plan.holdout[0]] is None


def test_same_seed_same_plan_other_seed_other_holdout() -> None:
    assert _plan(seed=3) == _plan(seed=3)
    holdouts = {_plan(seed=s).holdout for s in range(10)}
    assert len(holdouts) > 1


def test_unknown_region_and_leftover_stores() -> None:
    with pytest.raises(ValueError, match=r"rollout.waves\[0\] \(west\): unknown region"):
        _plan(waves=[{"name": "west", "regions": ["west"]}])
    plan = _plan(waves=[{"name": "north", "regions": ["north"]}])
    assert any("in no wave" in note for note in plan.notes)


def test_pilot_stage_in_words() -> None:
    start = dt.date(2025, 1, 6)
    stage = pilot_stage(frozen=False, pilot_start=start, pilot_weeks=12, data_end=None)
    assert "not frozen" in stage
    before = pilot_stage(
        frozen=True, pilot_start=start, pilot_weeks=12, data_end=dt.date(2025, 1, 1)
    )
    assert before == "frozen; the test starts on 2025-01-06"
    running = pilot_stage(
        frozen=True, pilot_start=start, pilot_weeks=12, data_end=dt.date(2025, 1, 20)
    )
    assert running == "running: data up to 2025-01-20, week 3 of 12"
    done = pilot_stage(
        frozen=True, pilot_start=start, pilot_weeks=12, data_end=dt.date(2025, 3, 30)
    )
    assert done.startswith("test period complete (2025-01-06 to 2025-03-30)")
