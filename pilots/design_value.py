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

Customer-randomized tests (:mod:`loyalty_pilot.pilots.customer_candidates`, when the offer
can be targeted per customer) come in as ``extra`` candidates valued the same way.

The recommendation: ``pilot`` (the candidate of largest net value, when positive), or
``customer_test`` when that candidate is a customer-randomized test beside a store or
region pilot (for a ``unit: customer`` pilot they are its own design: ``pilot``);
otherwise ``rollout_with_holdout`` when rolling out now is worth money under the prior
(no pilot pays for itself: roll out in waves with a randomized holdout, which measures
the uplift at no delay), else ``do_not_roll_out`` (neither the programme nor a pilot of
it is worth its cost on the programme's own assumptions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
RECOMMENDATIONS = ("pilot", "customer_test", "rollout_with_holdout", "do_not_roll_out")


@dataclass(frozen=True)
class ValueSizing:
    """The candidates, the value of deciding now, and the recommendation."""

    candidates: tuple[Candidate, ...]
    value_now: float
    recommendation: str
    best: Candidate | None
    rule: str
    customer_tests: dict[str, Any] | None = None  # the customer candidates' figures
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "value_now": self.value_now,
            "recommendation": self.recommendation,
            "best": None if self.best is None else self.best.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "customer_tests": self.customer_tests,
            "notes": list(self.notes),
        }


def decision_rule(
    money: Sequence[ArmMoney], rule: str, alpha: float, threshold: float | None = None
) -> tuple[Any, float]:
    """The rule P(GO) is computed by, for the arm of smallest finite break-even, and the
    uplift the curve's multiples are of: the expected-profit rule with the arm's prior,
    or the interval rule at ``alpha / k`` (``k`` programme arms) against ``threshold``
    (``decision.min_uplift`` when a number) or the arm's break-even. ``(None, inf)``
    when no arm has a finite break-even (no uplift pays: no curve)."""
    if not money:
        raise ValueError("money: no programme arm to value.")
    finite = [m for m in money if math.isfinite(m.economics.break_even)]
    if not finite:
        return None, math.inf
    key = min(finite, key=lambda m: m.economics.break_even)
    be = key.economics.break_even
    if rule == "expected_profit":
        return ProfitRule(key.prior, key.economics), be
    bar = be if threshold is None else threshold
    return IntervalRule(alpha / len(money), bar), bar if bar > 0 else be


def interval_cuts(
    money: Sequence[ArmMoney], alpha: float, se: float, df: float, threshold: float | None
) -> list[float]:
    """Each arm's cut on ``x_hat`` under the interval rule: ``log(1 + bar) + t se`` with
    the arm's own break-even (or ``threshold``) and t at ``alpha / k``, the fits' df."""
    from scipy import stats

    t = float(stats.t.ppf(1 - alpha / len(money) / 2, df if df > 0 else np.inf))
    out = []
    for m in money:
        bar = m.economics.break_even if threshold is None else threshold
        out.append(math.log1p(bar) + t * se if math.isfinite(bar) else math.inf)
    return out


def recommend(candidates: Sequence[Candidate], value_now: float, pilot_unit: str = "store") -> str:
    """``pilot`` or ``customer_test`` for the candidate of largest positive net value (a
    customer one beside a store or region pilot: ``customer_test``), else
    ``rollout_with_holdout`` when deciding now is worth money, else ``do_not_roll_out``."""
    best = max(candidates, key=lambda c: c.net_value, default=None)
    if best is not None and best.net_value > 0:
        beside = best.unit == "customer" and pilot_unit != "customer"
        return "customer_test" if beside else "pilot"
    return "rollout_with_holdout" if value_now > 0 else "do_not_roll_out"


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
    extra: Sequence[Candidate] = (),
    pilot_unit: str = "store",
    customer_tests: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    threshold: float | None = None,
) -> ValueSizing:
    """Every candidate of ``tables`` (controls -> PowerTable with fits) valued, then the
    ``extra`` candidates already valued (customer-randomized tests), and the
    recommendation among them all (:func:`recommend`)."""
    the_rule, be = decision_rule(money, rule, alpha, threshold)
    now = max(0.0, *(m.economics.value_of_deciding(m.prior) for m in money))
    candidates = []
    notes = list(notes)
    for controls, table in tables.items():
        if table.fits and table.fits[0].scale not in ("ratio", "log"):
            notes.append(
                f"no value sizing of the {controls}-control designs: the money needs an "
                f"estimate of log(1 + uplift) (estimator ratio, or did / ancova on the log "
                f"scale), not {table.fits[0].estimator} on the {table.fits[0].scale} scale"
            )
            continue
        for cell, fits in zip(table.cells, table.fits, strict=True):
            se_all = likelihood_se(fits.se, fits.df)
            finite = se_all[np.isfinite(se_all) & (se_all > 0)]
            if finite.size == 0:
                notes.append(
                    f"{cell.per_arm} per arm x {cell.weeks} weeks ({controls}): no placebo "
                    f"gave a standard error ({fits.estimator}): not valued"
                )
                continue
            se = float(np.median(finite))
            if the_rule is None:  # no finite break-even: no uplift pays, no curve
                curve, go80 = [0.0] * len(MULTIPLES), math.inf
            else:
                uplifts = [m * be for _, m in MULTIPLES]
                curve = go_curve(the_rule, fits.estimate, fits.se, fits.df, uplifts)
                go80 = mde_go(the_rule, fits.estimate, fits.se, fits.df, target=target)
            treated = float(fits.treated_share) * chain_weekly_sales * cell.weeks
            raw = np.asarray(fits.se, dtype=float)
            raw_se = float(np.median(raw[np.isfinite(raw) & (raw > 0)]))
            dfs = np.asarray(fits.df, dtype=float)
            df = float(np.nanmedian(dfs)) if np.isfinite(dfs).any() else math.inf
            cuts = (
                interval_cuts(money, alpha, raw_se, df, threshold) if rule == "interval" else None
            )
            _, _, gain, cost = pilot_value(
                money, se, treated, cell.weeks, horizon_months, rng=seed, interval_cuts=cuts
            )
            candidates.append(
                Candidate(
                    "store", cell.per_arm, cell.weeks, controls, se, _finite(cell.mde),
                    _finite(go80), {k: p for (k, _), p in zip(MULTIPLES, curve, strict=True)},
                    float(gain), float(cost), float(gain - cost),
                )
            )  # fmt: skip
    candidates += list(extra)
    best = max(candidates, key=lambda c: c.net_value, default=None)
    recommendation = recommend(candidates, now, pilot_unit)
    return ValueSizing(
        tuple(candidates), now, recommendation, best, rule, customer_tests, tuple(notes)
    )  # notes: the given ones and the candidates left out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def sizing_lines(sizing: ValueSizing, currency: str, money: Sequence[ArmMoney]) -> list[str]:
    """The console's plain words: the priors, the table, the recommendation."""
    lines = ["", "Money: the prior of each variant's total-sales uplift (its own assumptions)"]
    for m in money:
        p = m.prior
        lines.append(
            f"  {m.arm:<10} prior {p.uplift_mean:+.2%} (sd {p.uplift_sd:.2%}, {m.prior_source}); "
            f"break-even {_pct2(m.economics.break_even)}; expected profit now "
            f"{currency} {m.economics.expected_profit(p):,.0f}"
        )
    prior_sd = min((m.prior.uplift_sd for m in money), default=math.nan)
    lines.append(
        f"  {'unit':<8} {'per arm':>7} {'weeks':>5} {'controls':>10} {'MDE':>7} "
        f"{'prior sd':>8} {'MDE_GO':>7} {'P(GO|0)':>7} {'P(GO|BE)':>8} {'P(GO|2BE)':>9} "
        f"{'P(GO|5BE)':>9} {'EVSI':>12} {'cost':>12} {'net':>12}"
    )
    for c in sizing.candidates:
        lines.append(
            f"  {c.unit:<8} {c.units_per_arm:>7} {c.weeks:>5} {c.controls:>10} {_pct(c.mde):>7} "
            f"{_pct(prior_sd, signed=False):>8} {_pct(c.mde_go):>7} {c.p_go['0']:>7.1%} "
            f"{c.p_go['1x']:>8.1%} {c.p_go['2x']:>9.1%} {c.p_go['5x']:>9.1%} "
            f"{c.evsi:>12,.0f} {c.cost:>12,.0f} {c.net_value:>12,.0f}"
        )
    by_arm = ", ".join(f"{m.arm} {m.prior.uplift_sd:.2%}" for m in money)
    lines.append(
        f"  prior sd: the spread of the uplift the programmes' own assumptions give ({by_arm});"
        " a pilot whose MDE is many times it can barely move the decision"
    )
    lines += _customer_lines(sizing)
    customers = [c for c in sizing.candidates if c.unit == "customer"]
    if sizing.recommendation == "pilot" and sizing.best is not None:
        b = sizing.best
        word = "customers" if b.unit == "customer" else "stores"
        lines.append(
            f"Recommendation: a pilot of {b.units_per_arm} {word} per arm for {b.weeks} weeks "
            f"({b.controls} controls): worth {currency} {b.evsi:,.0f} in a better decision for "
            f"a cost of {currency} {b.cost:,.0f}."
        )
    elif sizing.recommendation == "customer_test" and sizing.best is not None:
        b = sizing.best
        stores = [c for c in sizing.candidates if c.unit != "customer"]
        versus = ""
        if stores:
            top = max(stores, key=lambda c: c.net_value)
            versus = f"; the best store pilot nets {currency} {top.net_value:,.0f}"
        lines.append(
            f"Recommendation: a customer-randomized test is worth more: {b.units_per_arm} "
            f"customers per arm for {b.weeks} weeks (the offer randomized to identified "
            f"customers), worth {currency} {b.evsi:,.0f} in a better decision for a cost of "
            f"{currency} {b.cost:,.0f} (net {currency} {b.net_value:,.0f}{versus})."
        )
    elif sizing.recommendation == "rollout_with_holdout":
        nor = ", nor does a customer-randomized test" if customers else ""
        lines.append(
            f"Recommendation: no pilot pays{nor}: roll out in waves with a randomized holdout "
            f"(deciding now is worth {currency} {sizing.value_now:,.0f} on the assumptions)."
        )
    else:
        lines.append(
            "Recommendation: neither the programme nor a pilot of it pays on its own "
            "assumptions: do not roll out (or revise the programme)."
        )
    return lines


def _customer_lines(sizing: ValueSizing) -> list[str]:
    """What the customer-randomized candidates rest on, one line per test length."""
    tests = sizing.customer_tests or {}
    lines = []
    for d in tests.get("designs", []):
        pooled, last = d["pooled"], d["last_window"]
        lines.append(
            f"  customer tests of {d['weeks']} weeks: {d['population']:,} identified customers "
            f"bought in the {d['weeks']} weeks before; their share of sales "
            f"{d['members_share']:.0%}; CUPED removes {pooled['variance_reduction']:.0%} of "
            f"the variance; relative variance {pooled['relative_variance']:.3f} pooled over "
            f"{len(d['windows'])} windows ({last['relative_variance']:.3f} in the last)"
        )
    lines += [f"  note: {n}" for n in sizing.notes]
    return lines


def _pct2(value: float) -> str:
    return f"{value:+.2%}" if math.isfinite(value) else "none (an extra euro costs its margin)"


def _pct(value: float | None, signed: bool = True) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.1%}"
