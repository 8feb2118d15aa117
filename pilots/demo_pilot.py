"""The demo's synthetic pilot: stores drawn at random, a known effect per arm injected by
the generator, then evaluated from the workspace's store x week panel as a user would.

Arms: ``cash`` and ``gift`` (each with a known visit and basket uplift from the start of
the test period) and ``control``. The truth for an arm is the relative sales uplift the
generator injects in its stores, ``(1 + visit_uplift) * (1 + basket_uplift) - 1``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import duckdb

ARMS = {
    "cash": {"visit_uplift": 0.05, "basket_uplift": 0.01},
    "gift": {"visit_uplift": 0.02, "basket_uplift": 0.01},
}
TEST_WEEKS = 12
PRE_WEEKS = 40


@dataclass(frozen=True)
class PilotPlan:
    """Which store is in which arm, when the test starts, and the injected truth."""

    assignment: dict[str, str]
    start: dt.date
    test_weeks: int
    pre_weeks: int
    truth: dict[str, float]  # arm -> relative sales uplift

    def effects(self) -> list[dict[str, Any]]:
        """The generator effects that inject the truth into each treated arm's stores."""
        out = []
        for arm, uplift in ARMS.items():
            stores = tuple(s for s, a in self.assignment.items() if a == arm)
            out.append({"stores": stores, "start": self.start, "churn_reduction": 0.0, **uplift})
        return out


def plan_pilot(
    n_stores: int, weeks: int, chain_start: dt.date, *, per_arm: int = 8, seed: int = 0
) -> PilotPlan | None:
    """Draw ``per_arm`` stores for each arm at random; None when the chain is too small."""
    arms = ["control", *ARMS]
    per_arm = min(per_arm, n_stores // len(arms))
    if per_arm < 2 or weeks < TEST_WEEKS + 8:
        return None
    rng = np.random.default_rng(seed + 7919)
    chosen = rng.choice(n_stores, size=per_arm * len(arms), replace=False)
    assignment = {
        f"S{index + 1:03d}": arms[position // per_arm] for position, index in enumerate(chosen)
    }
    start = chain_start + dt.timedelta(weeks=weeks - TEST_WEEKS)
    truth = {arm: (1 + u["visit_uplift"]) * (1 + u["basket_uplift"]) - 1 for arm, u in ARMS.items()}
    pre = min(PRE_WEEKS, weeks - TEST_WEEKS)
    return PilotPlan(dict(sorted(assignment.items())), start, TEST_WEEKS, pre, truth)


def evaluate_pilot(
    con: duckdb.DuckDBPyConnection, plan: PilotPlan, *, method: str = "did", scale: str = "log"
) -> list[dict[str, Any]]:
    """Evaluate the pilot on weekly store sales from the workspace; one row per arm.

    Sales of stores of very different sizes move multiplicatively (seasons, trends), so
    the demo estimates on the log scale by default."""
    from loyalty_pilot.experiments.evaluate import evaluate
    from loyalty_pilot.pilots.panels import store_week_panel

    first = plan.start - dt.timedelta(weeks=plan.pre_weeks)
    last = plan.start + dt.timedelta(weeks=plan.test_weeks, days=-1)
    panel = store_week_panel(con, start=first, end=last)
    panel = panel[panel["store_id"].isin(plan.assignment)]
    result = evaluate(
        panel,
        plan.assignment,
        unit="store_id",
        period="week",
        outcome="sales",
        start=np.datetime64(plan.start, "ns"),
        method=method,
        control="control",
        scale=scale,
    )
    rows = []
    for comparison in result.comparisons:
        row = comparison.to_dict()
        row["truth_relative"] = plan.truth[comparison.arm]
        low, high = row["rel_ci_low"], row["rel_ci_high"]
        row["truth_covered"] = (
            low is not None and high is not None and low <= row["truth_relative"] <= high
        )
        rows.append(row)
    return rows


def pilot_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One printable line per arm: relative uplift, interval, p-value, and the truth."""
    lines = []
    for row in rows:
        rel, low, high = row["relative"], row["rel_ci_low"], row["rel_ci_high"]
        interval = "n/a" if low is None or high is None else f"[{low:+.1%}, {high:+.1%}]"
        estimate = "n/a" if rel is None else f"{rel:+.1%}"
        p_value = "n/a" if row["p_value"] is None else f"{row['p_value']:.3f}"
        lines.append(
            f"  {row['arm']:<6} vs {row['baseline']}: sales {estimate} {interval}  p {p_value}"
            f"  truth {row['truth_relative']:+.1%}  ({row['n_units']} stores, {row['status']})"
        )
    return lines
