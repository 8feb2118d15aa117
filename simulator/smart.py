"""The SMART check of a programme variant (seed 000): each letter a figure, a threshold
and a verdict.

- **S**imple: the number of rules a customer must understand (:func:`count_rules`),
  at most ``smart.max_rules``.
- **M**easurable: the cash-equivalent advantage per 100 spent at the entry level (points
  valued at the reward's *perceived* value, gifts at retail value; plus a discount card's
  rate and the first non-zero step of a progressive scale), at least
  ``smart.min_value_per_100``.
- **A**ttainable: the share of members observed for 12 months (enrolled at least 365 days
  before the end of the baskets) who reach a first advantage within 365 days of
  enrolment on the historical baskets, at least ``smart.min_attainable``.
- **R**ealistic: the replayed cost as a share of the revenue over the same window, at
  most ``economics.budget_share_of_revenue``.
- **T**ime-bound: the median days to a first advantage of median-frequency members
  (observed for 12 months, with an annual basket rate between the 40th and 60th
  percentiles; never reaching one counts as infinitely long), at most
  ``smart.max_days_to_first_reward`` (365 by default: at least one advantage a year).

A, R and T need a replay; without one they are reported as not evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_pilot.simulator.programme import (
    CashVoucher,
    Gift,
    Programme,
    reward_perceived,
)
from loyalty_pilot.simulator.replay import ReplayResult

LETTERS = ("S", "M", "A", "R", "T")
NAMES = {
    "S": "simple",
    "M": "measurable",
    "A": "attainable",
    "R": "realistic",
    "T": "time-bound",
}


@dataclass(frozen=True)
class Letter:
    """One SMART criterion: ``passed`` is None when it could not be evaluated."""

    letter: str
    name: str
    figure: float
    threshold: float
    comparison: str  # '<=' or '>='
    unit: str
    passed: bool | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        figure = self.figure if math.isfinite(self.figure) else None
        return {
            "name": self.name,
            "figure": figure,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "unit": self.unit,
            "pass": self.passed,
            "note": self.note,
        }


@dataclass(frozen=True)
class SmartCheck:
    programme: str
    letters: tuple[Letter, ...]

    @property
    def passed(self) -> bool | None:
        """True when every letter passes; None when one could not be evaluated."""
        verdicts = [letter.passed for letter in self.letters]
        if any(v is False for v in verdicts):
            return False
        if any(v is None for v in verdicts):
            return None
        return True

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "fail", None: "incomplete"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {letter.letter: letter.to_dict() for letter in self.letters}
        out["verdict"] = self.verdict
        return out


def count_rules(programme: Programme) -> int:
    """Rules a customer must understand: one per mechanism, reward option, extra tier."""
    rules = 0
    earn = programme.earn
    if earn is not None:
        rules += 1  # points per currency unit
        rules += earn.welcome_bonus > 0
        rules += bool(earn.department_multipliers)
    points = programme.point_rewards
    rules += len(points)
    rules += bool(points)  # the reward's validity
    rules += programme.discount_rate > 0
    progressive = programme.progressive
    if progressive is not None:
        rules += sum(step.rate > 0 for step in progressive.scale)
    rules += max(len(programme.tiers) - 1, 0)
    rules += programme.expiry.inactivity_days is not None
    rules += programme.expiry.validity_years is not None
    rules += programme.referral is not None
    return int(rules)


def value_per_100(programme: Programme) -> float:
    """Cash-equivalent advantage per 100 spent at the entry level (see module doc)."""
    value = 0.0
    earn = programme.earn
    points = programme.point_rewards
    if earn is not None and points:
        base = programme.tiers[0].multiplier if programme.tiers else 1.0
        per_point = sum(
            share * reward_perceived(r) / r.points
            for share, r in zip(programme.reward_shares, points, strict=True)
        )
        value += 100 * earn.points_per_currency * base * per_point
    value += 100 * programme.discount_rate
    progressive = programme.progressive
    if progressive is not None:
        value += 100 * next((s.rate for s in progressive.scale if s.rate > 0), 0.0)
    if programme.tiers and programme.tiers[0].benefit is not None:
        value += 100 * programme.tiers[0].benefit.discount_rate
    return float(value)


def smart_check(programme: Programme, result: ReplayResult | None = None) -> SmartCheck:
    """The five letters; A, R and T from ``result`` (a replay of this programme)."""
    thresholds = programme.smart
    rules = count_rules(programme)
    measurable = value_per_100(programme)
    priced = all(isinstance(r, CashVoucher | Gift) for r in programme.point_rewards)
    letters = [
        Letter("S", NAMES["S"], rules, thresholds.max_rules, "<=", "rules",
               rules <= thresholds.max_rules),
        Letter("M", NAMES["M"], measurable, thresholds.min_value_per_100, ">=",
               f"{programme.currency} per 100 spent",
               priced and measurable >= thresholds.min_value_per_100),
    ]  # fmt: skip
    if result is None:
        for letter in ("A", "R", "T"):
            letters.append(_not_evaluated(programme, letter))
        return SmartCheck(programme.programme, tuple(letters))
    attainable, observed, days = _attainment(result)
    note = f"{observed:,} members observed for 12 months"
    reached = None if observed == 0 else attainable >= thresholds.min_attainable
    letters.append(
        Letter("A", NAMES["A"], attainable, thresholds.min_attainable, ">=",
               "share of members", reached,
               note if observed else "no member observed for 12 months: not evaluated")
    )  # fmt: skip
    share = result.totals["cost_share"]
    budget = programme.economics.budget_share_of_revenue
    letters.append(
        Letter("R", NAMES["R"], share, budget, "<=", "cost / revenue",
               None if not math.isfinite(share) else share <= budget)
    )  # fmt: skip
    letters.append(
        Letter("T", NAMES["T"], days, thresholds.max_days_to_first_reward, "<=",
               "days (median-frequency member)",
               None if observed == 0 else days <= thresholds.max_days_to_first_reward,
               "never within the history" if math.isinf(days) else "")
    )  # fmt: skip
    return SmartCheck(programme.programme, tuple(letters))


def _not_evaluated(programme: Programme, letter: str) -> Letter:
    thresholds = programme.smart
    spec = {
        "A": (thresholds.min_attainable, ">=", "share of members"),
        "R": (programme.economics.budget_share_of_revenue, "<=", "cost / revenue"),
        "T": (thresholds.max_days_to_first_reward, "<=", "days (median-frequency member)"),
    }[letter]
    return Letter(letter, NAMES[letter], math.nan, spec[0], spec[1], spec[2], None,
                  "needs the chain's baskets (a workspace)")  # fmt: skip


def _attainment(result: ReplayResult) -> tuple[float, int, float]:
    """(attainable share, members observed, median days for median-frequency members)."""
    members: pd.DataFrame = result.customers
    end = pd.Timestamp(result.end)
    observed = members[members["enrolled"] <= end - pd.Timedelta(days=365)]
    if observed.empty:
        return math.nan, 0, math.nan
    days = observed["days_to_first_advantage"].to_numpy(dtype=float)
    reached = np.isfinite(days) & (days <= 365)
    share = float(reached.mean())
    annual = _annual_baskets(result, observed)
    lo, hi = np.percentile(annual, [40, 60])
    band = (annual >= lo) & (annual <= hi)
    band_days = np.where(np.isfinite(days[band]), days[band], np.inf)
    median = float(np.median(band_days)) if band.any() else math.nan
    return share, len(observed), median


def _annual_baskets(result: ReplayResult, observed: pd.DataFrame) -> np.ndarray:
    """Each observed member's baskets per year, from enrolment to the end of the window."""
    span_days = (pd.Timestamp(result.end) - observed["enrolled"]).dt.days.to_numpy() + 1
    return observed["baskets"].to_numpy(dtype=float) * 365.0 / span_days
