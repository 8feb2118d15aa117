"""Sizing a pilot by the value of its information: every candidate of the power grid
(units per arm x weeks x control configuration) with its P(GO) curve under the
pre-registered rule, its MDE of the decision, its EVSI, its cost and its net value.

For each candidate the placebo pilots of the power table (the design's own draw, the
decision's estimator) give the se the pilot will have (the median likelihood se of the
placebos) and, shifted by ``log(1 + u)``, P(GO) at ``u = 0`` (the false-GO rate), the
break-even, 2x and 5x it, by the rule the decision will apply
(:mod:`loyalty_pilot.experiments.decision_power`: the expected-profit rule with the
arm's prior, or the interval rule at ``alpha / k``), for the arm of smallest break-even.
EVSI and cost come from :func:`loyalty_pilot.pilots.money.pilot_value` (every variant's
prior and economics; the treated units' sales from the placebos' treated share of the
chain's weekly sales).

The recommendation: ``pilot`` (the candidate of largest net value, when positive);
otherwise ``rollout_with_holdout`` when rolling out now is worth money under the prior
(no pilot pays for itself: roll out in waves with a randomized holdout, which measures
the uplift at no delay), else ``do_not_roll_out`` (neither the programme nor a pilot of
it is worth its cost on the programme's own assumptions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loyalty_pilot.experiments.decision_power import (
    IntervalRule,
    ProfitRule,
    go_curve,
    likelihood_se,
    mde_go,
)
from loyalty_pilot.pilots.money import ArmMoney, Candidate, pilot_value

MULTIPLES = (("0", 0.0), ("1x", 1.0), ("2x", 2.0), ("5x", 5.0))
RECOMMENDATIONS = ("pilot", "rollout_with_holdout", "do_not_roll_out")


@dataclass(frozen=True)
class ValueSizing:
    """The candidates, the value of deciding now, and the recommendation."""

    candidates: tuple[Candidate, ...]
    value_now: float
    recommendation: str
    best: Candidate | None
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "value_now": self.value_now,
            "recommendation": self.recommendation,
            "best": None if self.best is None else self.best.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
        }


def size_by_value(
    tables: Mapping[str, Any],
    money: Sequence[ArmMoney],
    *,
    rule: str,
    alpha: float,
    target: float,
    chain_weekly_sales: float,
    horizon_months: int,
    seed: int = 0,
) -> ValueSizing:
    """Every candidate of ``tables`` (controls -> PowerTable with fits) valued."""
    if not money:
        raise ValueError("money: no programme arm to value.")
    key = min(money, key=lambda m: m.economics.break_even)
    if rule == "expected_profit":
        decision_rule: Any = ProfitRule(key.prior, key.economics)
    else:
        decision_rule = IntervalRule(alpha / len(money), key.economics.break_even)
    now = max(0.0, *(m.economics.value_of_deciding(m.prior) for m in money))
    candidates = []
    for controls, table in tables.items():
        for cell, fits in zip(table.cells, table.fits, strict=True):
            se_all = likelihood_se(fits.se, fits.df)
            finite = se_all[np.isfinite(se_all) & (se_all > 0)]
            if finite.size == 0:
                continue
            se = float(np.median(finite))
            be = key.economics.break_even
            uplifts = [m * be for _, m in MULTIPLES]
            curve = go_curve(decision_rule, fits.estimate, fits.se, fits.df, uplifts)
            go80 = mde_go(decision_rule, fits.estimate, fits.se, fits.df, target=target)
            treated = float(fits.treated_share) * chain_weekly_sales * cell.weeks
            _, _, gain, cost = pilot_value(money, se, treated, cell.weeks, horizon_months, rng=seed)
            candidates.append(
                Candidate(
                    "store", cell.per_arm, cell.weeks, controls, se, _finite(cell.mde),
                    _finite(go80), {k: p for (k, _), p in zip(MULTIPLES, curve, strict=True)},
                    float(gain), float(cost), float(gain - cost),
                )
            )  # fmt: skip
    best = max(candidates, key=lambda c: c.net_value, default=None)
    if best is not None and best.net_value > 0:
        recommendation = "pilot"
    elif now > 0:
        recommendation = "rollout_with_holdout"
    else:
        recommendation = "do_not_roll_out"
    return ValueSizing(tuple(candidates), now, recommendation, best, rule)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def sizing_lines(sizing: ValueSizing, currency: str, money: Sequence[ArmMoney]) -> list[str]:
    """The console's plain words: the priors, the table, the recommendation."""
    lines = ["", "Money: the prior of each variant's total-sales uplift (its own assumptions)"]
    for m in money:
        p = m.prior
        lines.append(
            f"  {m.arm:<10} prior {p.uplift_mean:+.2%} (sd {p.uplift_sd:.2%}, {m.prior_source}); "
            f"break-even {m.economics.break_even:+.2%}; expected profit now "
            f"{currency} {m.economics.expected_profit(p):,.0f}"
        )
    lines.append(
        f"  {'per arm':>7} {'weeks':>5} {'controls':>8} {'MDE':>7} {'MDE_GO':>7} "
        f"{'P(GO|0)':>7} {'P(GO|BE)':>8} {'P(GO|2BE)':>9} {'EVSI':>12} {'cost':>12} {'net':>12}"
    )
    for c in sizing.candidates:
        lines.append(
            f"  {c.units_per_arm:>7} {c.weeks:>5} {c.controls:>8} {_pct(c.mde):>7} "
            f"{_pct(c.mde_go):>7} {c.p_go['0']:>7.1%} {c.p_go['1x']:>8.1%} "
            f"{c.p_go['2x']:>9.1%} {c.evsi:>12,.0f} {c.cost:>12,.0f} {c.net_value:>12,.0f}"
        )
    prior_sd = ", ".join(f"{m.arm} {m.prior.uplift_sd:.2%}" for m in money)
    lines.append(f"  prior sd of the uplift (to read beside each MDE): {prior_sd}")
    if sizing.recommendation == "pilot" and sizing.best is not None:
        b = sizing.best
        lines.append(
            f"Recommendation: a pilot of {b.units_per_arm} stores per arm for {b.weeks} weeks "
            f"({b.controls} controls): worth {currency} {b.evsi:,.0f} in a better decision for "
            f"a cost of {currency} {b.cost:,.0f}."
        )
    elif sizing.recommendation == "rollout_with_holdout":
        lines.append(
            "Recommendation: no pilot pays: roll out in waves with a randomized holdout "
            f"(deciding now is worth {currency} {sizing.value_now:,.0f} on the assumptions)."
        )
    else:
        lines.append(
            "Recommendation: neither the programme nor a pilot of it pays on its own "
            "assumptions: do not roll out (or revise the programme)."
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
