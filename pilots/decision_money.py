"""The expected-profit rule's inputs for a frozen pilot: per arm the prior, the posterior,
the money figures and the extension worth buying (:class:`~loyalty_pilot.pilots.decide.
MoneyView`).

* **Likelihood**: the primary comparison of the arm with the control (not the Bonferroni
  one: the money rule is not a test), ``log(1 + u)`` and its se on the estimator's own
  scale (the total-sales ratio by default), widened to its t interval.
* **Extension** of ``e`` weeks (``EXTENSIONS``, at least one week beyond what was
  observed): the se after ``W + e`` weeks is the observed se scaled as the design's
  placebo pilots scale (the MDE at the frozen size over test lengths, log-linear in the
  weeks between the lengths the power machinery gave; ``sqrt(W / (W + e))`` when it gave
  none), so serial correlation is kept; the information it adds is the se ``s_e`` with
  ``1 / s_{W+e}^2 = 1 / s_W^2 + 1 / s_e^2``. Its value is the EVSI of ``s_e`` with the
  current posterior as the prior (arm by arm); its cost the programme's cost in every
  arm's treated units for ``e`` weeks (all arms keep running) plus ``e`` weeks of the
  decision's expected value lost from the horizon. The extension bought is the one of
  largest positive net value; none when no ``e`` pays, so the answer does not repeat
  itself: after the weeks are added the posterior is sharper and the same weeks are
  worth less.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loyalty_pilot.experiments.decision_power import likelihood_se
from loyalty_pilot.experiments.value import evsi, prob_better
from loyalty_pilot.pilots.decide import MoneyView
from loyalty_pilot.pilots.money import WEEKS_PER_MONTH, ArmMoney, arm_money

if TYPE_CHECKING:
    from loyalty_pilot.pilots.pilotspec import PilotFile

EXTENSIONS = (1, 2, 4, 8, 12, 26)


def comparison_likelihood(comparison: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(log(1 + u), likelihood se)`` of a comparison dict (``Comparison.to_dict``).

    On the log scales (``scale`` ``total``: the ratio estimator, or ``log``) the
    estimator's own ``log_estimate``, ``se`` and ``df``; otherwise (level DiD, customer
    tests, RI) from the relative uplift and its interval on the log scale: ``se =
    (log(1 + high) - log(1 + low)) / (2 t)`` with the interval's own level (t with the
    comparison's df, z without). (None, None) when there is no usable estimate."""
    from scipy import stats

    def number(key: str) -> float | None:
        value = comparison.get(key)
        try:
            value = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    if comparison.get("status", "ok") != "ok":
        return None, None
    df = number("df")
    df = math.inf if df is None or df <= 0 else df
    x, se = number("log_estimate"), number("se")
    on_log = comparison.get("scale") in ("total", "log")
    if on_log and x is not None and se is not None and se > 0:
        return x, float(likelihood_se(se, df))
    relative, low, high = number("relative"), number("rel_ci_low"), number("rel_ci_high")
    alpha = number("alpha") or 0.05
    if relative is None or low is None or high is None or min(relative, low) <= -1:
        return None, None
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    width = math.log1p(high) - math.log1p(low)
    if not width > 0:
        return None, None
    return math.log1p(relative), float(likelihood_se(width / (2 * crit), df))


def se_scaling(mde_by_weeks: Mapping[int, float], observed: int, total: int) -> float:
    """``se(total weeks) / se(observed weeks)`` from the design's MDE by test length."""
    known = sorted((int(w), float(m)) for w, m in mde_by_weeks.items() if m and math.isfinite(m))
    if len(known) >= 2:
        weeks = np.log([w for w, _ in known])
        mdes = np.log([m for _, m in known])

        def at(w: int) -> float:
            if math.log(w) <= weeks[0] or math.log(w) >= weeks[-1]:  # extrapolate end slopes
                i = 0 if math.log(w) <= weeks[0] else len(weeks) - 2
                slope = (mdes[i + 1] - mdes[i]) / (weeks[i + 1] - weeks[i])
                return float(mdes[i] + slope * (math.log(w) - weeks[i]))
            return float(np.interp(math.log(w), weeks, mdes))

        ratio = math.exp(at(total) - at(observed))
        if 0 < ratio < 1:
            return ratio
    return math.sqrt(observed / total)


def best_extension(
    money: ArmMoney, weeks_seen: int, treated_weekly_sales: float, mde_by_weeks: Mapping,
    horizon_months: int, *, running_cost: float | None = None,
) -> tuple[int, float, float] | None:  # fmt: skip
    """``(weeks, value, cost)`` of the extension of largest positive net value, or None.
    ``running_cost``: the pilot's programme cost per week over every arm (default: this
    arm's, ``cost_per_sales x treated_weekly_sales``)."""
    weekly_cost = (
        money.cost_per_sales * treated_weekly_sales if running_cost is None else running_cost
    )
    if money.posterior is None or money.se is None or weeks_seen < 1:
        return None
    belief, econ = money.posterior, money.economics
    if econ.go(belief):
        return None
    horizon_weeks = horizon_months * WEEKS_PER_MONTH
    best = None
    for extra in EXTENSIONS:
        new = money.se * se_scaling(mde_by_weeks, weeks_seen, weeks_seen + extra)
        added = 1 / math.sqrt(max(1 / new**2 - 1 / money.se**2, 1e-300))
        value = float(evsi(belief, added, econ))
        after = econ.value_of_deciding(belief) + value
        cost = weekly_cost * extra + max(after, 0.0) * (extra / horizon_weeks)
        if value - cost > 0 and (best is None or value - cost > best[1] - best[2]):
            best = (extra, value, cost)
    return best


def customers_share(con: Any, pf: PilotFile, data: Any) -> float:
    """A customer pilot's population's share of the chain's sales over the pre-period:
    the map from its intent-to-treat uplift to the total-sales one (at full rollout every
    such customer is offered the programme), as the design's customer tests use it."""
    spec = pf.spec
    chain = con.execute(
        "SELECT coalesce(sum(amount), 0) FROM baskets WHERE date BETWEEN ? AND ?",
        [spec.pre_period.start, spec.pre_period.end],
    ).fetchone()[0]
    own = float(np.nansum(data.wide.to_numpy(dtype=float)))
    if not chain or chain <= 0 or not own > 0:
        raise pf.error(("unit",), "the pilot's customers have no sales in the pre-period")
    return min(own / float(chain), 1.0)


def money_views(
    pf: PilotFile,
    comparisons: Sequence[Mapping[str, Any]],
    recalibrated: Sequence[Any],
    *,
    customers: bool,
    weeks_seen: int,
    treated_weekly_sales: Mapping[str, float],
    mde_by_weeks: Mapping[int, float],
    share: float = 1.0,
) -> tuple[dict[str, MoneyView], dict[str, ArmMoney]]:
    """The expected-profit rule's view of every programme arm (module docstring);
    ``share``: a customer pilot's :func:`customers_share`."""
    spec = pf.spec.decision
    control = pf.control()
    arms: dict[str, ArmMoney] = {}
    for r in recalibrated:
        row = next((c for c in comparisons if c["arm"] == r.arm and c["baseline"] == control), {})
        x, se = comparison_likelihood(row)
        try:
            arms[r.arm] = arm_money(
                r.arm, r.before, spec, estimate=x, se=se,
                members_share=share if customers else 1.0,
            )  # fmt: skip
        except ValueError as exc:
            raise pf.error(("decision", "rule"), str(exc)) from None
    # every arm keeps running during an extension: its weekly programme cost is the pilot's
    running = sum(m.cost_per_sales * treated_weekly_sales.get(a, 0.0) for a, m in arms.items())
    views = {}
    for name, money in arms.items():
        summary = money.summary()
        better = {
            other: prob_better(money.belief, money.economics, o.belief, o.economics)
            for other, o in arms.items()
            if other != name
        }
        extend = best_extension(
            money, weeks_seen, treated_weekly_sales.get(name, 0.0), mde_by_weeks,
            spec.horizon_months, running_cost=running,
        )  # fmt: skip
        views[name] = MoneyView(
            summary["expected_profit"], summary["prob_above_break_even"], summary["prob_loss"],
            spec.max_loss_probability, bool(summary["go"]), extend, better,
            money.posterior is not None,
        )  # fmt: skip
    return views, arms


def weeks_to_settle(
    comparison: Mapping[str, Any],
    threshold: float,
    alpha: float,
    weeks_seen: int,
    mde_by_weeks: Mapping[int, float],
    *,
    longest: int = max(EXTENSIONS),
) -> int | None:
    """The interval rule's extension: the fewest more weeks (at least one) after which
    the ``1 - alpha`` interval, on the log scale of the estimate, is expected to be
    narrower than the distance from the estimate to ``log(1 + threshold)``: ``t_{df}
    se_W s(W + e) / s(W)`` with the *observed* se and df and the design's scaling
    :func:`se_scaling`. None when not even ``longest`` more weeks would."""
    from scipy import stats

    x, se_lik = comparison_likelihood(comparison)
    if x is None or se_lik is None or threshold <= -1 or weeks_seen < 1:
        return None
    # back to the estimator's se and df (the likelihood se carries t_df(0.975) / z(0.975))
    raw_df = comparison.get("df")
    df = math.inf if raw_df is None or not float(raw_df) > 0 else float(raw_df)
    se = se_lik / float(likelihood_se(1.0, df))
    t = float(stats.t.ppf(1 - alpha / 2, df))
    gap = abs(float(x) - math.log1p(threshold))
    for extra in range(1, longest + 1):
        half = t * se * se_scaling(mde_by_weeks, weeks_seen, weeks_seen + extra)
        if half < gap:
            return extra
    return None
