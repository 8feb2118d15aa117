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

**Annualized** A and T: when no member is observed for 12 months (a year of baskets or
less: members enrol at their first basket), they are estimated from every member
observed for at least ``MIN_TENURE_DAYS``, each over its own tenure (enrolment to the
end of the baskets): the share reaching a first advantage within ``H`` days is a
Kaplan-Meier estimate (a member who has not reached one is censored at its tenure), ``H``
the longest tenure (under 365 days), and it is scaled to a year at the hazard seen over
``[0, H]``: ``S(365) = S(H) ** (365 / H)``. The median-frequency band of T uses the
members' annual basket rates over their tenure, and its median is the Kaplan-Meier
median of the band (beyond ``H``: ``H * log(2) / -log S(H)``, the same scaling). With
12 months observed these are the plain shares and medians above. The letters' notes
say which was used; with no member observed for ``MIN_TENURE_DAYS`` they say why A and
T are not evaluated.
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
YEAR_DAYS = 365
MIN_TENURE_DAYS = 91  # members observed this long feed the annualized A and T
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
    found = _attainment(result)
    attainable, observed, days = found.share, found.members, found.median_days
    if found.annualized:
        note = (
            f"annualized: {observed:,} members observed {MIN_TENURE_DAYS} to "
            f"{found.horizon:.0f} days (none for 12 months); Kaplan-Meier on their tenure, "
            f"scaled from {found.horizon:.0f} to {YEAR_DAYS} days"
        )
    else:
        note = f"{observed:,} members observed for 12 months"
    missing = (
        f"no member observed for 12 months nor for {MIN_TENURE_DAYS} days (the longest "
        f"tenure is {found.horizon:.0f} days): not evaluated"
    )
    reached = None if observed == 0 else attainable >= thresholds.min_attainable
    letters.append(
        Letter("A", NAMES["A"], attainable, thresholds.min_attainable, ">=",
               "share of members", reached, note if observed else missing)
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
               _time_note(found, days, observed, missing))
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


def _time_note(found: _Attainment, days: float, observed: int, missing: str) -> str:
    if observed == 0:
        return missing
    if math.isinf(days):
        return (
            "never within the history"
            if not found.annualized
            else ("annualized: no median-frequency member reached one within its tenure")
        )
    return "annualized (see A)" if found.annualized else ""


@dataclass(frozen=True)
class _Attainment:
    share: float  # reaching a first advantage within a year
    members: int  # members it is computed on (0: not evaluated)
    median_days: float  # of the median-frequency members (inf: never)
    annualized: bool  # from tenures under a year (module docstring)
    horizon: float  # the longest tenure used, days


def _attainment(result: ReplayResult) -> _Attainment:
    """Attainable share, members it rests on, median days of median-frequency members."""
    members: pd.DataFrame = result.customers
    end = pd.Timestamp(result.end)
    tenure = (end - members["enrolled"]).dt.days.to_numpy(dtype=float)
    longest = float(tenure.max()) if len(tenure) else 0.0
    year = tenure >= YEAR_DAYS
    if year.any():
        observed = members[year]
        days = observed["days_to_first_advantage"].to_numpy(dtype=float)
        reached = np.isfinite(days) & (days <= YEAR_DAYS)
        annual = _annual_baskets(result, observed)
        band = _band(annual)
        band_days = np.where(np.isfinite(days[band]), days[band], np.inf)
        median = float(np.median(band_days)) if band.any() else math.nan
        return _Attainment(float(reached.mean()), len(observed), median, False, longest)
    pool = tenure >= MIN_TENURE_DAYS
    if not pool.any():
        return _Attainment(math.nan, 0, math.nan, False, longest)
    observed = members[pool]
    days = observed["days_to_first_advantage"].to_numpy(dtype=float)
    span = tenure[pool]
    horizon = float(span.max())
    survival = _km_survival(days, span, horizon)
    share = 1.0 - survival ** (YEAR_DAYS / horizon)
    band = _band(_annual_baskets(result, observed))
    median = _km_median(days[band], span[band]) if band.any() else math.nan
    return _Attainment(float(share), len(observed), median, True, horizon)


def _band(annual: np.ndarray) -> np.ndarray:
    """Members with an annual basket rate between the 40th and 60th percentiles."""
    lo, hi = np.percentile(annual, [40, 60])
    return (annual >= lo) & (annual <= hi)


def _km_steps(days: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier of the time to a first advantage: event times and S after each.

    ``days``: days to the first advantage (NaN: none yet), ``span``: the tenure at which a
    member without one is censored (an event after the tenure cannot be seen).
    """
    event = np.isfinite(days) & (days <= span)
    times = np.where(event, days, span)
    steps = np.unique(times[event])
    survival = np.empty(len(steps))
    s = 1.0
    for i, t in enumerate(steps):
        at_risk = np.count_nonzero(times >= t)
        s *= 1.0 - np.count_nonzero(event & (times == t)) / at_risk
        survival[i] = s
    return steps, survival


def _km_survival(days: np.ndarray, span: np.ndarray, horizon: float) -> float:
    """S(horizon): the share not yet reaching a first advantage after ``horizon`` days."""
    steps, survival = _km_steps(days, span)
    passed = steps <= horizon
    return float(survival[passed][-1]) if passed.any() else 1.0


def _km_median(days: np.ndarray, span: np.ndarray) -> float:
    """The Kaplan-Meier median days; beyond the longest tenure H, H log 2 / -log S(H)
    (the hazard seen over [0, H] carried on); inf when nobody reached one."""
    steps, survival = _km_steps(days, span)
    below = np.flatnonzero(survival <= 0.5)
    if below.size:
        return float(steps[below[0]])
    horizon = float(span.max())
    last = float(survival[-1]) if survival.size else 1.0
    if last >= 1.0:
        return math.inf
    return horizon * math.log(2.0) / -math.log(last)


def _annual_baskets(result: ReplayResult, observed: pd.DataFrame) -> np.ndarray:
    """Each observed member's baskets per year, from enrolment to the end of the window."""
    span_days = (pd.Timestamp(result.end) - observed["enrolled"]).dt.days.to_numpy() + 1
    return observed["baskets"].to_numpy(dtype=float) * 365.0 / span_days
