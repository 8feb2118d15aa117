"""A synthetic chain through the real path: generate, write, ingest, panel."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.pilots.chain import build_chain
from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.panels import store_week_panel
from loyalty_pilot.pilots.synthetic import generate
from loyalty_pilot.pilots.workspace import open_workspace


def test_injected_store_effect_is_recovered_from_the_workspace_panel(tmp_path):
    """+8 % visits and +4 % basket size in half the stores from week 30, read back through
    ingest and the store x week panel: a difference in differences of log baskets and of
    log average basket recovers both within a tolerance set by the stores' own noise."""
    treated = tuple(f"S{i:03d}" for i in range(1, 41, 2))
    effect = {
        "stores": treated,
        "start": date(2024, 7, 22),  # week 29 from 2024-01-01
        "visit_uplift": 0.08,
        "basket_uplift": 0.04,
        "churn_reduction": 0.0,
    }
    ws = open_workspace(tmp_path / "ws")
    summary = build_chain(
        ws, stores=40, regions=4, customers=40_000, weeks=52, seed=11, effect=effect
    )
    truth = json.loads((tmp_path / "ws" / "generated" / "truth.json").read_text())
    assert truth["effects"][0]["visit_uplift"] == 0.08
    assert summary["ingest"][-1]["rejected"] == 0
    con = ws.connect()
    panel = store_week_panel(con)
    con.close()
    panel["post"] = panel["week"] >= pd.Timestamp(effect["start"])
    panel["treated"] = panel["store_id"].isin(treated)
    per_store = panel.groupby(["store_id", "treated", "post"]).agg(
        baskets=("baskets", "sum"), sales=("sales", "sum")
    )
    per_store["log_baskets"] = np.log(per_store["baskets"])
    per_store["log_avg"] = np.log(per_store["sales"] / per_store["baskets"])
    wide = per_store.unstack("post")
    for column, true_effect in (("log_baskets", 0.08), ("log_avg", 0.04)):
        change = wide[(column, True)] - wide[(column, False)]
        by_arm = change.groupby(level="treated")
        estimate = by_arm.mean()[True] - by_arm.mean()[False]
        se = np.sqrt((by_arm.var() / by_arm.count()).sum())
        assert se < 0.02  # the test has the power to see the effect
        assert abs(estimate - np.log1p(true_effect)) < 3.5 * se, (column, estimate, se)
        assert estimate > 2 * se  # and it does see it


def test_generated_files_are_the_contract_and_the_truth_is_kept_apart(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    summary = build_chain(ws, stores=5, regions=2, customers=300, weeks=6, seed=2)
    stores = pd.read_csv(summary["files"]["stores"])
    assert list(stores.columns) == ["store_id", "region", "format", "size_m2", "opened"]
    assert summary["ingest"][0]["ignored_columns"] == []
    truth = pd.read_parquet(summary["files"]["store_truth"])
    assert {"attractiveness", "growth"} <= set(truth.columns)
    chain = generate(stores=5, regions=2, customers=300, weeks=6, seed=2)
    assert summary["chain"]["baskets"] == len(chain.baskets)
    assert summary["chain"]["sales"] == pytest.approx(chain.baskets["amount"].sum())


def test_bad_effect_is_a_user_error(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    bad = {"stores": ("S999",), "start": date(2024, 1, 1), "visit_uplift": 0.1}
    with pytest.raises(UserError, match="unknown id 'S999'"):
        build_chain(ws, stores=3, regions=1, customers=50, weeks=4, effect=bad)
