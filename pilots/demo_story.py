"""The demo's pilot, as a user would run it: a pilot YAML sized by power, frozen, its weeks
synthesized with a known effect, then evaluated from the workspace.

The chain's history (every week before the test) is ingested first; the pilot is
designed and frozen on it; the test weeks are then generated with the effect injected
in the frozen arms' stores (:func:`loyalty_pilot.pilots.chain.add_pilot_weeks`) and
ingested as new data. The truth of an arm is the relative sales uplift the generator
injects in its stores, ``(1 + visit_uplift) * (1 + basket_uplift) - 1``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

ARMS = {
    "cash": {"visit_uplift": 0.05, "basket_uplift": 0.01},
    "gift": {"visit_uplift": 0.02, "basket_uplift": 0.01},
}
TEST_WEEKS = 12
MIN_PRE_WEEKS = 30  # the demo pilot needs this much history before the test
MIN_STORES = 6  # 3 arms x 2 stores
PILOT_FILE = "pilot.yaml"


def test_start(chain_start: dt.date, weeks: int, stores: int) -> dt.date | None:
    """First day of the demo pilot's test (the last TEST_WEEKS weeks); None when the chain
    is too short or too small for a pilot."""
    if weeks < MIN_PRE_WEEKS + TEST_WEEKS or stores < MIN_STORES:
        return None
    return chain_start + dt.timedelta(weeks=weeks - TEST_WEEKS)


def truth() -> dict[str, float]:
    return {arm: (1 + u["visit_uplift"]) * (1 + u["basket_uplift"]) - 1 for arm, u in ARMS.items()}


def write_pilot_yaml(
    folder: Path, chain_start: dt.date, start: dt.date, regions: list[str], seed: int
) -> Path:
    """The demo's pilot YAML, with the chain's dates and the example programmes."""
    import yaml

    from loyalty_pilot.pilots.programmes import example_programmes

    programmes = {p.stem: p.resolve() for p in example_programmes()}
    waves: list[dict[str, Any]] = []
    if len(regions) >= 3:
        waves.append({"name": regions[0], "regions": [regions[0]]})
        waves.append({"name": "half", "share": 0.5})
    waves.append({"name": "national"})
    spec = {
        "pilot": "demo-cash-vs-gift",
        "description": "cash voucher and gift catalogue against a control, on the demo chain",
        "arms": {
            "control": None,
            "cash": str(programmes["cash-voucher"]),
            "gift": str(programmes["gift-catalogue"]),
        },
        "unit": "store",
        "pre_period": {"start": chain_start, "end": start - dt.timedelta(days=1)},
        "test_period": {"start": start, "weeks": TEST_WEEKS},
        "design": {"method": "rerandomized", "match_on": ["level", "trend"], "seed": seed},
        "power": {"units_per_arm": [4, 6, 8, 12, 16], "weeks": [8, 12], "placebos": 1000},
        "metrics": {
            "primary": "sales",
            "secondary": ["visits", "basket_size"],
            "guardrails": [
                {"metric": "gross_margin_rate", "margin": 0.005},
                {"metric": "programme_cost_share", "margin": 0.02},
            ],
        },
        "decision": {"rule": "expected_profit", "prior": "assumptions", "horizon_months": 12,
                     "alpha": 0.05, "min_uplift": "break_even", "min_roi": 0.0},
        "rollout": {"holdout_share": 0.1, "waves": waves},
        "evaluation": {"method": "ratio", "scale": "auto"},
    }
    path = folder / PILOT_FILE
    header = (
        "# written by `loyalty-pilot demo`: the demo pilot, sized by power to the break-even\n"
        "# uplift; try `loyalty-pilot rollout` or `evaluate` on it with --workspace\n"
    )
    path.write_text(header + yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def effects_of(arm_of: dict[str, str], start: dt.date) -> list[dict[str, Any]]:
    """Generator effects injecting each arm's truth into its frozen stores."""
    out = []
    for arm, uplift in ARMS.items():
        stores = tuple(sorted(s for s, a in arm_of.items() if a == arm))
        if stores:
            out.append({"stores": stores, "start": start, "churn_reduction": 0.0, **uplift})
    return out


def truth_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One printable line per arm: relative uplift, interval, p-value, and the truth."""
    lines = []
    for row in rows:
        rel, low, high = row["relative"], row["rel_ci_low"], row["rel_ci_high"]
        interval = "n/a" if low is None or high is None else f"[{low:+.1%}, {high:+.1%}]"
        estimate = "n/a" if rel is None else f"{rel:+.1%}"
        p_value = "n/a" if row["p_value"] is None else f"{row['p_value']:.3f}"
        adjusted = row.get("p_value_adjusted")
        if adjusted is not None:
            p_value += f" (Holm {adjusted:.3f})"
        covered = "inside" if row["truth_covered"] else "outside"
        lines.append(
            f"  {row['arm']:<6} vs {row['baseline']}: sales {estimate} {interval}  p {p_value}"
            f"  truth {row['truth_relative']:+.1%} ({covered} the interval; "
            f"{row['n_units']} units, {row['status']})"
        )
    return lines


def with_truth(comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluation's comparisons with the injected truth and whether it is covered."""
    known = {**truth(), "control": 0.0}
    rows = []
    for row in comparisons:
        row = dict(row)
        # against a variant (cash vs gift), the truth is the ratio of the two uplifts
        row["truth_relative"] = (1 + known[row["arm"]]) / (1 + known[row["baseline"]]) - 1
        low, high = row["rel_ci_low"], row["rel_ci_high"]
        row["truth_covered"] = bool(
            low is not None and high is not None and low <= row["truth_relative"] <= high
        )
        rows.append(row)
    return rows
