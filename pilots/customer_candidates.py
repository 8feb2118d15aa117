"""Customer-randomized tests as candidates beside a store pilot (``power.customers_per_arm``).

When the offer can be targeted per customer, the programme can be tested by randomizing
identified customers instead of stores: thousands of units per arm instead of a dozen.
Each test of ``n`` customers per arm for ``W`` weeks (``W`` in ``power.weeks``) is sized
on the chain's own history, in the workspace DuckDB:

* **Windows.** For each ``W``, the last ``W`` weeks of the pre-period and up to
  :data:`N_WINDOWS` - 1 earlier, non-overlapping ``W``-week windows before it, each with
  the ``W`` weeks before it as the CUPED covariate window, all inside the pre-period.
* **Population** of a window: the identified customers (``customer_id`` not null) with a
  basket in its covariate window, the customers a test could randomize at its start.
  Per customer ``y``: sales over the window (zero when none), ``c``: sales over the
  covariate window. One SQL query aggregates the sufficient statistics per window
  (:func:`loyalty_pilot.experiments.sufficient.sufficient_sql`: ``n``, ``sum y``,
  ``sum y^2``, ``sum c``, ``sum c^2``, ``sum y c``), another the chain's sales over each
  window (every basket, anonymous ones included). No customer row reaches Python.
* **se.** The relative CUPED variance ``r = var(y - theta c) / mean(y)^2``
  (:class:`loyalty_pilot.experiments.customer_power.CustomerVariance`) pooled over the
  windows (weights ``n - 1``; the last window's own figure is kept beside it), so
  ``se_members(n) = sqrt(2 r / n)`` on ``log(1 + u_members)``. On total sales, ``u =
  s u_members`` with ``s`` the population's share of the chain's sales over the window
  (pooled: total over total), so ``se = s se_members`` (the delta method at ``u = 0``).
* **P(GO) and MDE_GO** in closed form for normal estimates ``x_hat ~ N(log(1 + u),
  se^2)`` under the decision's rule (:func:`~loyalty_pilot.experiments.decision_power.
  go_curve_normal`, :func:`~loyalty_pilot.experiments.decision_power.mde_go_normal`);
  the MDE of the two-sided test: ``expm1((z_{1 - alpha / 2} + z_power) se)``.
* **Money.** EVSI and cost from :func:`loyalty_pilot.pilots.money.pilot_value`: the
  programme's cost per euro of the chain's sales (``ArmMoney.cost_per_sales``) times one
  arm's treated customers' sales over the ``W`` weeks (``n`` times the pooled mean), in
  every programme arm, plus the delay of the rollout by ``W`` weeks.

A size larger than the population allows (``n`` times the number of arms) is left out,
said in the notes.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from loyalty_pilot.pilots.money import Candidate, pilot_value

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.experiments.customer_power import CustomerVariance
    from loyalty_pilot.experiments.decision_power import Rule
    from loyalty_pilot.experiments.sufficient import SufficientStats
    from loyalty_pilot.pilots.money import ArmMoney

N_WINDOWS = 4  # W-week windows of the pre-period pooled per test length
MULTIPLES = (("0", 0.0), ("1x", 1.0), ("2x", 2.0), ("5x", 5.0))


@dataclass(frozen=True)
class CustomerWindow:
    """One ``weeks``-week window of the pre-period: ``index`` 0 the last, 1 the one
    before, ...; ``stats`` of its population (``y`` its sales, ``c`` the covariate
    window's); ``chain_sales`` every basket's sales over the window."""

    weeks: int
    index: int
    start: date
    end: date
    stats: SufficientStats
    chain_sales: float

    @property
    def members_share(self) -> float:
        return self.stats.sum_y / self.chain_sales if self.chain_sales > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "weeks": self.weeks,
            "index": self.index,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "stats": self.stats.to_dict(),
            "chain_sales": self.chain_sales,
            "members_share": self.members_share,
        }


def windows_of(
    pre_start: date, pre_end: date, weeks: int, n_windows: int
) -> list[tuple[date, date, date]]:
    """``(covariate start, window start, window end)`` of each window, last first, the
    covariate window inside the pre-period."""
    out = []
    for k in range(n_windows):
        end = pre_end - timedelta(weeks=weeks * k)
        start = end - timedelta(weeks=weeks) + timedelta(days=1)
        c_start = start - timedelta(weeks=weeks)
        if c_start < pre_start:
            break
        out.append((c_start, start, end))
    return out


def window_stats(
    con: duckdb.DuckDBPyConnection,
    pre_start: date,
    pre_end: date,
    weeks: Sequence[int],
    *,
    n_windows: int = N_WINDOWS,
) -> list[CustomerWindow]:
    """Every window of every length in ``weeks``, aggregated in DuckDB (module docstring)."""
    from loyalty_pilot.experiments.sufficient import stats_from_rows, sufficient_sql

    rows = [
        (w, k, *dates)
        for w in weeks
        for k, dates in enumerate(windows_of(pre_start, pre_end, w, n_windows))
    ]
    if not rows:
        return []
    frame = pd.DataFrame(rows, columns=["weeks", "k", "c_start", "y_start", "y_end"])
    frame.insert(0, "window_id", range(len(frame)))
    for column in ("c_start", "y_start", "y_end"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    name = f"_customer_windows_{uuid.uuid4().hex}"
    con.register(name, frame)
    try:
        per_customer = f"""(
            SELECT w.window_id,
                coalesce(CAST(sum(CAST(b.amount AS DECIMAL(38, 6)))
                    FILTER (WHERE b.date >= w.y_start) AS DOUBLE), 0) AS y,
                coalesce(CAST(sum(CAST(b.amount AS DECIMAL(38, 6)))
                    FILTER (WHERE b.date < w.y_start) AS DOUBLE), 0) AS c
            FROM (SELECT window_id, CAST(c_start AS DATE) AS c_start,
                         CAST(y_start AS DATE) AS y_start, CAST(y_end AS DATE) AS y_end
                  FROM {name}) w
            JOIN baskets b ON b.date BETWEEN w.c_start AND w.y_end
            WHERE b.customer_id IS NOT NULL
            GROUP BY w.window_id, b.customer_id
            HAVING count(*) FILTER (WHERE b.date < w.y_start) > 0
        )"""
        sql = sufficient_sql(per_customer, arm="window_id", outcome="y", covariate="c")
        stats = stats_from_rows(con.execute(sql).df())
        chain = con.execute(
            f"""SELECT w.window_id, CAST(sum(CAST(b.amount AS DECIMAL(38, 6))) AS DOUBLE)
                FROM {name} w JOIN baskets b
                    ON b.date BETWEEN CAST(w.y_start AS DATE) AND CAST(w.y_end AS DATE)
                GROUP BY 1"""
        ).fetchall()
    finally:
        con.unregister(name)
    sales = {int(i): float(s) for i, s in chain}
    out = []
    for r in frame.itertuples():
        key = int(r.window_id)
        if key in stats:
            window = (int(r.weeks), int(r.k), r.y_start, r.y_end)
            out.append(CustomerWindow(*window, stats[key], sales.get(key, 0.0)))
    return out


@dataclass(frozen=True)
class CustomerDesign:
    """A test length's pooled figures: ``variance`` over its windows, ``last`` the last
    window's own, ``members_share`` the population's share of the chain's sales."""

    weeks: int
    windows: tuple[CustomerWindow, ...]
    variance: CustomerVariance
    last: CustomerVariance
    members_share: float

    @property
    def population(self) -> int:
        """Customers a test could randomize now (the last window's population)."""
        return self.windows[0].stats.n

    def se_members(self, per_arm: int) -> float:
        return self.variance.se(per_arm)

    def se_total(self, per_arm: int) -> float:
        """se of ``log(1 + u)`` of the chain's total sales: ``s se_members``."""
        return self.members_share * self.se_members(per_arm)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weeks": self.weeks,
            "population": self.population,
            "members_share": self.members_share,
            "pooled": self.variance.to_dict(),
            "last_window": self.last.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
        }


def designs_of(windows: Sequence[CustomerWindow]) -> list[CustomerDesign]:
    """One design per test length, its windows pooled (lengths without a usable
    population, a mean of zero sales or no chain sales, are left out)."""
    from loyalty_pilot.experiments.customer_power import CustomerVariance

    out = []
    for weeks in sorted({w.weeks for w in windows}):
        own = sorted((w for w in windows if w.weeks == weeks), key=lambda w: w.index)
        usable = [w for w in own if w.stats.n >= 2 and w.stats.sum_y > 0 and w.chain_sales > 0]
        if not usable or usable[0].index != 0:
            continue
        share = sum(w.stats.sum_y for w in usable) / sum(w.chain_sales for w in usable)
        pooled = CustomerVariance.pooled([w.stats for w in usable])
        last = CustomerVariance.of(usable[0].stats)
        out.append(CustomerDesign(weeks, tuple(usable), pooled, last, min(share, 1.0)))
    return out


def candidates_of(
    designs: Sequence[CustomerDesign],
    customers_per_arm: Sequence[int],
    n_arms: int,
    money: Sequence[ArmMoney],
    rule: Rule,
    break_even: float,
    *,
    alpha: float,
    target: float,
    horizon_months: int,
    seed: int = 0,
    threshold: float | None = None,
) -> tuple[list[Candidate], list[str]]:
    """Every (customers per arm x weeks) test valued, and notes on the sizes left out.
    Under the interval rule its EVSI is the interval rule's (``threshold``: the numeric
    ``decision.min_uplift``, else each arm's break-even)."""
    from scipy import stats

    from loyalty_pilot.experiments.decision_power import (
        IntervalRule,
        go_curve_normal,
        mde_go_normal,
    )
    from loyalty_pilot.pilots.design_value import interval_cuts

    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target))
    out, notes = [], []
    for design in designs:
        for per_arm in customers_per_arm:
            if per_arm * n_arms > design.population:
                notes.append(
                    f"customer test of {per_arm:,} per arm x {n_arms} arms for {design.weeks} "
                    f"weeks left out: only {design.population:,} identified customers bought "
                    f"in the {design.weeks} weeks before the test"
                )
                continue
            se = design.se_total(per_arm)
            if rule is None:  # no finite break-even: no uplift pays
                curve, go80 = [0.0] * len(MULTIPLES), math.inf
            else:
                curve = go_curve_normal(rule, se, [m * break_even for _, m in MULTIPLES])
                go80 = mde_go_normal(rule, se, target=target)
            # the programme's cost falls on its customers' sales: per euro of theirs it is
            # the chain-wide cost per euro over their share of the chain's sales
            share = design.members_share if design.members_share > 0 else 1.0
            treated = per_arm * design.variance.mean / share
            cuts = (
                interval_cuts(money, alpha, se, math.inf, threshold)
                if isinstance(rule, IntervalRule)
                else None
            )
            _, _, gain, cost = pilot_value(
                money, se, treated, design.weeks, horizon_months, rng=seed, interval_cuts=cuts
            )
            out.append(
                Candidate(
                    "customer", per_arm, design.weeks, "randomized", se,
                    _finite(math.expm1(z * se)), _finite(go80),
                    {k: p for (k, _), p in zip(MULTIPLES, curve, strict=True)},
                    float(gain), float(cost), float(gain - cost),
                )
            )  # fmt: skip
    return out, notes


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class CustomerTests:
    """The customer-randomized candidates, the figures they rest on, and notes."""

    candidates: tuple[Candidate, ...]
    designs: tuple[CustomerDesign, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "CUPED difference of means over the mean (delta method, log scale), "
            "windows of the pre-period pooled; P(GO) in closed form for normal estimates",
            "designs": [d.to_dict() for d in self.designs],
            "notes": list(self.notes),
        }


def customer_tests(
    con: duckdb.DuckDBPyConnection,
    *,
    pre_start: date,
    pre_end: date,
    weeks: Sequence[int],
    customers_per_arm: Sequence[int],
    n_arms: int,
    money: Sequence[ArmMoney],
    rule: Rule,
    break_even: float,
    alpha: float,
    target: float,
    horizon_months: int,
    seed: int = 0,
    n_windows: int = N_WINDOWS,
    threshold: float | None = None,
) -> CustomerTests:
    """The customer candidates of a pilot (module docstring); empty without sizes."""
    if not customers_per_arm:
        return CustomerTests((), ())
    windows = window_stats(con, pre_start, pre_end, weeks, n_windows=n_windows)
    designs = designs_of(windows)
    notes = [
        f"no customer test of {w} weeks: the pre-period holds no {2 * w} weeks with "
        "identified customers' sales (a window and its covariate weeks)"
        for w in weeks
        if w not in {d.weeks for d in designs}
    ]
    candidates, left_out = candidates_of(
        designs, customers_per_arm, n_arms, money, rule, break_even, threshold=threshold,
        alpha=alpha,
        target=target, horizon_months=horizon_months, seed=seed,
    )  # fmt: skip
    return CustomerTests(tuple(candidates), tuple(designs), tuple(notes + left_out))
