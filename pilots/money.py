"""The money side of a pilot: each arm's economics and prior from its projection, the
posterior after the pilot, and what more weeks or a pilot are worth.

Glue between the simulator's projection (:class:`~loyalty_pilot.simulator.projection.
Projection`, over ``decision.horizon_months`` at full rollout) and the statistics of
:mod:`loyalty_pilot.experiments.value`:

* **Economics**: ``cost`` the programme's replayed cost over the horizon at zero
  response, ``u*`` its break-even uplift of total sales, so ``profit(u) = cost (u / u* -
  1)``; the loss limit ``decision.loss_threshold`` (default one year of that cost) and
  ``decision.max_loss_probability``.
* **Prior** (``decision.prior``): ``assumptions``: the projection's own draws of the
  total-sales uplift (incremental revenue / baseline revenue, per draw of the programme's
  behavioural assumptions), as a normal on ``log(1 + u)``; ``sceptical``: the same
  spread centred so that the expected uplift is the break-even (expected profit 0);
  ``{mean, sd}``: given.
* **Likelihood**: the pilot's ratio estimate of ``log(1 + u)`` and its se, widened to
  the t interval (:func:`~loyalty_pilot.experiments.decision_power.likelihood_se`). A
  customer pilot measures its customers' sales: its uplift ``u_c`` is ``u = share u_c``
  of total sales (``share`` the members' share of revenue), by the delta method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loyalty_pilot.experiments.value import Economics, Normal, evsi, evsi_arms, posterior

if TYPE_CHECKING:
    from loyalty_pilot.pilots.pilot_models import Decision as DecisionSpec
    from loyalty_pilot.simulator.projection import Projection

WEEKS_PER_MONTH = 52.0 / 12.0


@dataclass(frozen=True)
class ArmMoney:
    """One programme arm's economics and beliefs (``posterior`` None before the pilot)."""

    arm: str
    economics: Economics
    prior: Normal
    prior_source: str  # assumptions | sceptical | given
    cost_per_sales: float  # programme cost per euro of sales (chain, zero response)
    estimate: float | None = None  # log(1 + u) of total sales, from the pilot
    se: float | None = None  # the likelihood's se of it
    posterior: Normal | None = None

    @property
    def belief(self) -> Normal:
        return self.posterior or self.prior

    def summary(self) -> dict[str, Any]:
        """The decision's figures on the current belief (JSON-ready)."""
        econ, belief = self.economics, self.belief
        return {
            "prior": {**self.prior.to_dict(), "source": self.prior_source},
            "posterior": belief.to_dict(),
            "break_even": _finite(econ.break_even),
            "cost": econ.cost,
            "loss_threshold": econ.loss_threshold,
            "max_loss_probability": econ.max_loss_probability,
            "prob_above_break_even": econ.prob_above_break_even(belief),
            "expected_profit": econ.expected_profit(belief),
            "prob_loss": econ.prob_loss(belief),
            "go": econ.go(belief),
        }


def arm_money(
    arm: str,
    projection: Projection,
    spec: DecisionSpec,
    *,
    estimate: float | None = None,
    se: float | None = None,
    members_share: float = 1.0,
) -> ArmMoney:
    """The arm's economics and prior from ``projection`` (made with the programme file's
    own assumptions over ``spec.horizon_months``), updated by the pilot's ``estimate``
    and likelihood ``se`` of ``log(1 + u_c)`` when given (``u_c`` of the pilot's units'
    sales; ``members_share`` < 1 for a customer pilot). ValueError names the key."""
    totals = projection.totals
    revenue = float(totals["revenue"])
    cost = float(totals["cost_replay"])
    if not revenue > 0:
        raise ValueError("the projection has no revenue over the horizon")
    break_even = float(projection.break_even_uplift)
    if not cost > 0 or not break_even > 0:
        raise ValueError(
            f"decision.rule: the programme {projection.programme.programme!r} costs nothing "
            "over the horizon: there is no money decision to make (use rule: interval)"
        )
    loss = spec.loss_threshold
    if loss is None:
        loss = cost * 12.0 / spec.horizon_months
    economics = Economics.from_break_even(cost, break_even, float(loss), spec.max_loss_probability)
    prior, source = _prior(projection, spec, revenue, break_even)
    post = None
    if estimate is not None and se is not None and math.isfinite(estimate) and se > 0:
        x, s = _to_total(estimate, se, members_share)
        post = posterior(prior, x, s)
        estimate, se = x, s
    return ArmMoney(arm, economics, prior, source, cost / revenue, estimate, se, post)


def _prior(
    projection: Projection, spec: DecisionSpec, revenue: float, break_even: float
) -> tuple[Normal, str]:
    from loyalty_pilot.experiments.value import prior_from_draws

    given = spec.prior
    if not isinstance(given, str):
        return Normal.of_uplift(float(given.mean), float(given.sd)), "given"
    draws = np.asarray(projection.samples["incremental_revenue"], dtype=float) / revenue
    try:
        assumed = prior_from_draws(draws)
    except ValueError as exc:
        raise ValueError(
            f"decision.prior: {given}: the programme's assumptions give no prior ({exc}); "
            "give the response sds in the programme file or a prior {mean, sd}"
        ) from None
    if given == "sceptical":
        # E[u] = u*: the expected profit is exactly 0 before the pilot
        return Normal(math.log1p(break_even) - assumed.sd**2 / 2, assumed.sd), "sceptical"
    return assumed, "assumptions"


def _to_total(x: float, se: float, share: float) -> tuple[float, float]:
    """``log(1 + share (e^x - 1))`` and its delta-method se."""
    if share == 1.0:
        return float(x), float(se)
    u = share * math.expm1(x)
    return math.log1p(u), se * share * math.exp(x) / (1 + u)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------ value of information


@dataclass(frozen=True)
class Candidate:
    """One design sized by the value of its information (all money over the horizon)."""

    unit: str  # store | customer
    units_per_arm: int
    weeks: int
    controls: str  # matched | all (store pilots) | randomized (customer tests)
    se: float  # the likelihood's se of log(1 + u) of total sales, per arm
    mde: float | None  # the two-sided test's MDE (power table)
    mde_go: float | None  # the smallest uplift with P(GO) >= target, by the rule
    p_go: dict[str, float]  # P(GO) at 0, break-even, 2x, 5x (keys '0', '1x', '2x', '5x')
    evsi: float
    cost: float  # programme cost in the pilot's treated units + the rollout's delay
    net_value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "units_per_arm": self.units_per_arm,
            "weeks": self.weeks,
            "controls": self.controls,
            "se": self.se,
            "mde": _json(self.mde),
            "mde_go": _json(self.mde_go),
            "p_go": self.p_go,
            "evsi": self.evsi,
            "cost": self.cost,
            "net_value": self.net_value,
        }


def _json(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def pilot_value(
    arms: Sequence[ArmMoney],
    se: float,
    treated_sales: float,
    weeks: int,
    horizon_months: int,
    *,
    rng: int = 0,
    interval_cuts: Sequence[float] | None = None,
) -> tuple[float, float, float, float]:
    """``(V_after, V_now, EVSI, cost)`` of a pilot whose estimate of each arm's
    ``log(1 + u)`` has se ``se``, ``treated_sales`` the sales of one arm's treated units
    over the ``weeks`` (zero response). ``V_after``: the expected profit of the decision
    the pilot's rule makes: the expected-profit rule (default), or with ``interval_cuts``
    (one per arm, on ``x_hat``) the interval rule
    (:func:`~loyalty_pilot.experiments.value.value_after_interval`). ``V_now``: deciding
    now on the prior by the expected-profit rule. Cost: the programme's cost in every
    arm's treated units, plus the delay: ``weeks`` of the decision's expected value lost
    from the horizon (``V_after weeks / horizon weeks``)."""
    from loyalty_pilot.experiments.value import value_after_interval, value_after_interval_arms

    priors = [a.belief for a in arms]
    econ = [a.economics for a in arms]
    now = max(0.0, *(e.value_of_deciding(p) for e, p in zip(econ, priors, strict=True)))
    if interval_cuts is not None:
        if len(arms) == 1:
            after = value_after_interval(priors[0], se, econ[0], interval_cuts[0])
        else:
            after = value_after_interval_arms(
                priors, [se] * len(arms), econ, list(interval_cuts), n=40_000, rng=rng
            )
        gain = after - now
    elif len(arms) == 1:
        gain = float(evsi(priors[0], se, econ[0]))
        after = now + gain
    else:
        after, now, gain = evsi_arms(priors, [se] * len(arms), econ, n=40_000, rng=rng)
    horizon_weeks = horizon_months * WEEKS_PER_MONTH
    programme = sum(a.cost_per_sales for a in arms) * treated_sales
    delay = max(after, 0.0) * weeks / horizon_weeks
    return after, now, gain, programme + delay
