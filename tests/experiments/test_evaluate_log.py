"""evaluate(..., scale='log'): a multiplicative effect, read on the outcome's scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments.did import did
from loyalty_pilot.experiments.evaluate import evaluate
from loyalty_pilot.experiments.panel import PanelError, wide_panel


def panel(effect: float = 0.08, seed: int = 3) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(seed)
    units, weeks = 12, 20
    size = rng.lognormal(4, 1, units)  # stores of very different sizes
    rows = []
    for i in range(units):
        for w in range(weeks):
            treated = i < 6
            lift = 1 + effect if treated and w >= 14 else 1.0
            rows.append((f"s{i}", w, size[i] * lift * np.exp(rng.normal(0, 0.03))))
    frame = pd.DataFrame(rows, columns=["store", "week", "sales"])
    return frame, {f"s{i}": ("cash" if i < 6 else "control") for i in range(units)}


def test_log_scale_equals_the_estimator_on_log_sales_mapped_back():
    frame, arms = panel()
    result = evaluate(frame, arms, unit="store", period="week", outcome="sales", start=14,
                      scale="log")  # fmt: skip
    (c,) = result.comparisons
    logged = frame.assign(sales=np.log(frame["sales"]))
    treated = {u: a == "cash" for u, a in arms.items()}
    direct = did(wide_panel(logged, unit="store", period="week", outcome="sales",
                            treated=treated, start=14))  # fmt: skip
    assert c.extras["log_estimate"] == pytest.approx(direct.estimate)
    assert c.relative == pytest.approx(np.expm1(direct.estimate))
    assert c.rel_ci_low == pytest.approx(np.expm1(direct.ci_low))
    assert c.rel_ci_high == pytest.approx(np.expm1(direct.ci_high))
    assert c.p_value == pytest.approx(direct.p_value)
    post = frame[(frame["store"].map(arms) == "cash") & (frame["week"] >= 14)]["sales"].mean()
    assert c.estimate == pytest.approx(post * (1 - np.exp(-direct.estimate)))
    assert c.ci_low < c.estimate < c.ci_high
    assert c.rel_ci_low < 0.08 < c.rel_ci_high  # the truth is covered
    assert c.to_dict()["scale"] == "log"


def test_log_scale_needs_positive_outcomes():
    frame, arms = panel()
    frame.loc[5, "sales"] = 0.0
    with pytest.raises(PanelError, match="scale='log' needs a positive 'sales'"):
        evaluate(frame, arms, unit="store", period="week", outcome="sales", start=14,
                 scale="log")  # fmt: skip
    with pytest.raises(ValueError, match="scale == 'ln'"):
        evaluate(frame, arms, unit="store", period="week", outcome="sales", start=14,
                 scale="ln")  # fmt: skip


def test_auto_scale_is_log_for_positive_outcomes_and_level_otherwise():
    frame, arms = panel()
    kw = {"unit": "store", "period": "week", "outcome": "sales", "start": 14}
    auto = evaluate(frame, arms, **kw).comparisons[0]
    logged = evaluate(frame, arms, scale="log", **kw).comparisons[0]
    assert auto.to_dict() == logged.to_dict()
    assert auto.extras["scale"] == "log"
    frame.loc[0, "sales"] = 0.0  # a zero: the log is undefined, auto falls back to level
    auto = evaluate(frame, arms, **kw).comparisons[0]
    level = evaluate(frame, arms, scale="level", **kw).comparisons[0]
    assert auto.to_dict() == level.to_dict()
    assert auto.extras["scale"] == "level"
