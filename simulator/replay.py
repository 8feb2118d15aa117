"""Exact replay of a programme variant on historical baskets.

What the variant would have cost on the chain's own baskets, before any assumption about
behaviour. The rules below are the specification; ``tests/simulator/reference_replay.py``
implements them independently with plain Python loops and the tests require both to agree
exactly.

Input
-----
``baskets``: a DataFrame with ``customer_id`` (missing = anonymous), ``basket_id``,
``date`` (date or timestamp), ``amount``; optional ``department`` (needed when the
programme has department multipliers; a department without a multiplier counts 1).
Money is counted in cents: ``cents = round(amount * 100)``; spends and thresholds are
compared in cents, so no rounding error decides a tier.

Rules
-----
R1 Window. The replay runs from ``start`` (argument, else ``programme.start``, else the
   first basket's date) to ``end`` (argument, else the last basket's date), inclusive.
   Baskets outside the window are ignored. Revenue counts every basket in the window.
R2 Enrolment. The identified customers with a basket in the window, sorted by
   ``customer_id`` (as strings), receive ``u = rng.random(n)`` from
   ``numpy.random.default_rng(seed)``; a customer enrols iff ``u < uptake`` (all when
   uptake is 1). Then ``v = rng.random(n)`` (drawn even if unused) picks each customer's
   point reward by inverse CDF over the rewards' shares in catalogue order
   (``index = searchsorted(cumsum(shares), v, side='right')``, clipped to the last).
   A member enrols on the date of its first basket in the window.
R3 Order. A member's baskets are processed in order of (timestamp, basket_id); only
   baskets on or after enrolment (all of the member's baskets in the window) count.
R4 Tier. The tier of a basket is the highest tier whose ``min_spend_12m`` (in cents) is
   <= the member's spend in cents over the member's earlier baskets (in the order of R3)
   dated strictly after ``date - 365 days``. Returns count (net spend).
R5 Points. A basket with amount > 0 earns
   ``floor(cents * rate / 100 + 1e-9)`` points with
   ``rate = points_per_currency * department_multiplier * tier_multiplier`` (multiplied in
   that order). Returns and zero baskets earn nothing. The first basket also credits the
   welcome bonus. Points are integers.
R6 Inactivity expiry. If a member's next basket comes ``inactivity_days`` or more days
   after the previous one (by date), the whole balance lapses on day
   ``previous date + inactivity_days``, before that next basket. After the member's last
   basket the balance lapses on that day too if it is <= ``end``.
R7 Fixed validity (``validity_years = k``). At the end of every 31 December in the window
   (after that day's baskets), the points still in the balance that were credited in a
   year <= Y - k expire. Balances are used oldest first, so the expired amount is
   ``max(0, balance - points credited in years Y-k+1..Y since the balance last lapsed)``
   (for k = 0 the whole balance). On the same day an inactivity lapse comes first.
R8 Conversion. After a basket's points are credited, while the balance is >= the
   member's reward threshold a reward is issued and its points are deducted (several in
   one basket when due; the welcome bonus counts).
R9 Redemption. A reward issued on date d is redeemed at the member's next basket (the
   next in the order of R3) if that basket is dated <= d + validity_days, with
   probability ``redemption.rate``; otherwise it expires unredeemed on
   d + validity_days (breakage). In expected mode each reward counts ``rate`` redeemed
   and ``1 - rate`` expiring on d + validity_days even when a basket follows; in sampled
   mode the number redeemed among the n rewards issued at a basket is
   ``rng.binomial(n, rate)`` for the issuing baskets in (customer_id, order) sequence,
   drawn after R2's draws. A redeemed reward costs its face value (cash) or unit cost
   (gift); an expired one is breakage at the same valuation.
R10 Discounts. A member's basket costs ``cents / 100 * rate`` in discount with
   ``rate = discount card rate + progressive rate + tier benefit discount_rate``; the
   progressive rate is that of the highest step whose ``from_spend`` (cents) is <= the
   member's spend in cents over its earlier baskets of the same calendar year. Returns
   give the discount back (negative cost).
R11 Monthly costs. The ledger has one row per calendar month from the month of
   ``start`` to the month of ``end``; its snapshot day is min(month end, end). Events
   (lapses, expiries) count in the month of their day, and only when the day is
   <= ``end``. For each month: running cost
   ``running_cost_per_member_year / 12`` per member enrolled on or before that day; tier
   benefit cost ``cost_per_member_year / 12`` per member in that tier on that day (tier
   from the spend over baskets dated in (day - 365, day]); expected referral cost
   ``rate_per_member_year / 12 * members * (bonus_referrer + bonus_referee) *
   point_value * redemption.rate`` with ``point_value`` the share-weighted cost per point
   of the point rewards; "members" and "tier" are taken on the snapshot day, and the
   month of ``end`` counts whole.
R12 Liability (IFRS 15 style, on each snapshot day, in both modes): outstanding points
   valued at the member's reward cost per point times the redemption rate, plus, for each
   reward still pending (issued on or before the day and not yet resolved), its cost
   times the redemption rate. A reward is resolved on its next basket's date when that
   basket comes within the validity, else on d + validity_days. The expected breakage is
   not a liability.

Readings of the rules (both implementations agree on them)
-----------------------------------------------------------
- R1: the default window runs from the first to the last basket of *all* baskets
  (anonymous ones included); ``end < start`` is an error.
- R2: customer ids are compared and reported as text (an integer id 9 becomes "9").
- R4 / R10: a negative rolling or calendar-year spend gets the first tier / first step.
- R5: the welcome bonus is credited on the first basket even if it is a return.
- R7: "since the balance last lapsed" means an R6 lapse; a 31 December expiry is not a
  lapse (points are used oldest first).
- R9: the binomial draw is made for every issuing basket, even when no basket follows
  within the validity (the draw is then unused). The next basket follows R3's order, so
  it can be on the same day. When it comes within the validity, the share not redeemed
  (``1 - rate``, or ``n - k`` sampled) expires on d + validity_days, while for the
  liability (R12) the whole group is resolved on the next basket's date.
- R11: when ``start`` is mid-month, the first month's running, tier and referral costs
  also count whole. Snapshot values are taken at the end of the snapshot day. Rewards
  expiring and balances lapsing after ``end`` are not counted (still pending / held).
- Tier columns are named ``members_tier_<slug(name)>`` (``Gold-Plus`` ->
  ``members_tier_gold_plus``).
- A "discounted purchase" (first advantage) is a basket with amount > 0 and a total
  discount rate > 0.
- Types: counts of points, members and issued rewards are int64; money is float64;
  ``rewards_redeemed`` and ``rewards_expired`` are float64 in expected mode and int64
  in sampled mode. Revenue, spend and discounts are ``cents / 100`` (not rounded again);
  ``cents = round(amount * 100)`` with halves to even.

Output
------
``ReplayResult.ledger``: one row per month with ``month`` (first day), ``snapshot``,
``revenue`` (all baskets of the month in the window), ``members_revenue``,
``new_members``, ``members`` (enrolled on or before the snapshot), ``active_members``
(members with a basket in the month), ``points_earned`` (R5, without the welcome bonus),
``welcome_points``, ``points_expired_inactivity`` (R6), ``points_expired_validity``
(R7), ``points_converted``, ``rewards_issued`` (count), ``rewards_issued_cost``,
``rewards_issued_perceived`` (gifts at retail value), ``rewards_redeemed`` (count,
expected or sampled), ``redemption_cost``, ``rewards_expired`` (count), ``breakage``
(at cost), ``discount_cost``, ``tier_benefit_cost``, ``running_cost``, ``referral_cost``,
``total_cost`` (redemption + discount + tier benefit + running + referral),
``outstanding_points``, ``pending_rewards``, ``liability`` and, with tiers, one
``members_tier_<name>`` column per tier (members in the tier on the snapshot day).

``ReplayResult.customers``: one row per member, sorted by ``customer_id``:
``customer_id``, ``enrolled`` (date), ``reward`` (index of the chosen point reward, -1
without point rewards), ``baskets``, ``spend``, ``points_earned`` (with the welcome
bonus), ``points_expired``, ``rewards_issued``, ``rewards_redeemed``,
``first_reward_date`` (NaT if none), ``days_to_first_reward`` (NaN if none),
``first_advantage_date`` and ``days_to_first_advantage`` (the first reward issued or
discounted purchase, whichever comes first; what the SMART check times),
``tier_end`` (tier on the last snapshot, "" without tiers), ``top_tier`` (highest tier
of any of its baskets or snapshots, "" without tiers), ``balance_end``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

try:  # the text order of customer ids without Python strings (pandas' str type)
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - numpy strings instead
    pc = None

from loyalty_pilot.simulator import _replay_chunks as _c
from loyalty_pilot.simulator import _replay_kernels as _k

# The helpers live in single-purpose modules; their names stay importable from here.
from loyalty_pilot.simulator._replay_input import _EPOCH as _EPOCH
from loyalty_pilot.simulator._replay_input import _datetime_ints as _datetime_ints
from loyalty_pilot.simulator._replay_input import _datetimes as _datetimes
from loyalty_pilot.simulator._replay_input import _day as _day
from loyalty_pilot.simulator._replay_input import _dense_integer_codes as _dense_integer_codes
from loyalty_pilot.simulator._replay_input import _month_index as _month_index
from loyalty_pilot.simulator._replay_input import _monthly_money as _monthly_money
from loyalty_pilot.simulator._replay_input import _months as _months
from loyalty_pilot.simulator._replay_input import _prepare as _prepare
from loyalty_pilot.simulator._replay_input import _to_date as _to_date
from loyalty_pilot.simulator._replay_output import _counts as _counts
from loyalty_pilot.simulator._replay_output import _customer_columns as _customer_columns
from loyalty_pilot.simulator._replay_output import _customers as _customers
from loyalty_pilot.simulator._replay_output import _dates_or_nat as _dates_or_nat
from loyalty_pilot.simulator._replay_output import _ledger as _ledger
from loyalty_pilot.simulator._replay_output import _ledger_flows as _ledger_flows
from loyalty_pilot.simulator._replay_output import _redemption_flows as _redemption_flows
from loyalty_pilot.simulator._replay_output import _tier_counts as _tier_counts
from loyalty_pilot.simulator._replay_output import _totals as _totals
from loyalty_pilot.simulator._replay_rules import _conversions as _conversions
from loyalty_pilot.simulator._replay_rules import _conversions_by_year as _conversions_by_year
from loyalty_pilot.simulator._replay_rules import _discounts as _discounts
from loyalty_pilot.simulator._replay_rules import _member_events as _member_events
from loyalty_pilot.simulator._replay_rules import _points as _points
from loyalty_pilot.simulator._replay_rules import _redemption as _redemption
from loyalty_pilot.simulator._replay_rules import _rolling_tier as _rolling_tier
from loyalty_pilot.simulator._replay_rules import _snapshot_tiers as _snapshot_tiers
from loyalty_pilot.simulator._replay_rules import _tier_of as _tier_of
from loyalty_pilot.simulator.programme import Programme as Programme
from loyalty_pilot.simulator.programme import reward_cost as reward_cost
from loyalty_pilot.simulator.programme import reward_perceived as reward_perceived
from loyalty_pilot.simulator.programme import slug as slug

LEDGER_COLUMNS = (
    "month", "snapshot", "revenue", "members_revenue", "new_members", "members",
    "active_members", "points_earned", "welcome_points", "points_expired_inactivity",
    "points_expired_validity", "points_converted", "rewards_issued", "rewards_issued_cost",
    "rewards_issued_perceived", "rewards_redeemed", "redemption_cost", "rewards_expired",
    "breakage", "discount_cost", "tier_benefit_cost", "running_cost", "referral_cost",
    "total_cost", "outstanding_points", "pending_rewards", "liability",
)  # fmt: skip
CUSTOMER_COLUMNS = (
    "customer_id", "enrolled", "reward", "baskets", "spend", "points_earned",
    "points_expired", "rewards_issued", "rewards_redeemed", "first_reward_date",
    "days_to_first_reward", "first_advantage_date", "days_to_first_advantage", "tier_end",
    "top_tier", "balance_end",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """The replay of one programme: monthly ledger and per-member summary (see above)."""

    programme: Programme
    ledger: pd.DataFrame
    customers: pd.DataFrame
    start: dt.date
    end: dt.date
    seed: int
    sampled: bool
    identified_customers: int = 0
    totals: dict[str, Any] = field(default_factory=dict)


def replay(
    baskets: pd.DataFrame,
    programme: Programme,
    *,
    seed: int = 0,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sample: bool = False,
    map_: Callable[..., Any] | None = None,
    chunks: int | None = None,
) -> ReplayResult:
    """Replay ``programme`` on ``baskets`` following rules R1-R12 (module docstring).

    Vectorized: sorts and segmented cumulative sums over whole arrays. The members
    (numbered in customer_id order) are cut into ``chunks`` contiguous chunks of about
    equal basket counts (default: one per ``_replay_chunks.CHUNK_BASKETS`` members'
    baskets, so the chunks depend on the baskets alone); each chunk is ordered (R3) and
    replayed (R4-R10) on its own through ``map_``, and the chunks' monthly flows are
    summed in chunk order, the redemption draws (R9, sampled mode) made in chunk order.

    ``map_``: any map-like callable ``map_(function, items)`` returning the results in
    order (builtin ``map``, ``ThreadPoolExecutor.map``; see ``_replay_chunks`` for Dask).
    Default: a pool of ``min(2, os.cpu_count())`` threads from
    ``_replay_chunks.PARALLEL_BASKETS`` members' baskets (numpy releases the GIL in its
    sorts, gathers and cumulative sums), else builtin ``map``. A given
    chunking gives the same result to the last bit with any ``map_`` and any number of
    workers. Other chunkings agree to rounding: counts, points and money in cents
    (revenue, spend) are summed exactly, the other money flows are float sums per chunk
    (in basket order) then over the chunks.

    The only Python loops run over chunks, over calendar years when points have a fixed
    validity (R7), over the tiers, and over blocks of about a million baskets for
    elementwise work whose temporaries would otherwise be fresh basket-sized arrays
    (``_replay_kernels.blocks``). Per-basket arrays are int32 where the values fit,
    rewards are kept for the issuing baskets only, and a chunk leaves only its monthly
    flows and its members' columns, so the peak memory stays below about 1.5 times the
    raw input columns.
    """
    if chunks is not None and chunks < 1:
        raise ValueError(f"chunks == {chunks}, must be >= 1.")
    data = _prepare(baskets, programme)
    day_all = data.pop("day")
    if len(day_all) == 0:
        raise ValueError("baskets is empty: nothing to replay")
    d_min, d_max = int(day_all.min()), int(day_all.max())
    start = start or programme.start or _to_date(d_min)
    end = end or _to_date(d_max)
    if end < start:
        raise ValueError(f"end == {end}, must be on or after start {start}.")
    s_day, e_day = _day(start), _day(end)
    months = _months(s_day, e_day)
    window = None  # None: every basket lies in the window
    if d_min < s_day or d_max > e_day:
        window = day_all >= s_day
        window &= day_all <= e_day
    cents_all = data.pop("cents")

    # R2: enrolment and reward choice, over identified customers in the window.
    codes = data.pop("customer_code")  # -1: anonymous
    ident = data.pop("identified")  # None: all identified
    if window is not None:
        ident = window if ident is None else ident & window
    counted = codes if ident is None else codes[ident]
    baskets_of = np.bincount(counted, minlength=data["n_codes"])
    del counted
    present = np.flatnonzero(baskets_of)
    labels = data["labels"](present)  # text: numpy strings, or a pyarrow string array
    if isinstance(labels, np.ndarray):
        order = np.argsort(labels, kind="stable")
    else:  # UTF-8 bytes order == code point order; the sort is stable
        order = pc.sort_indices(labels).to_numpy().astype(np.intp)
    customers = present[order]  # codes sorted by customer_id as text
    n_ident = len(customers)
    rng = np.random.default_rng(seed)
    u = rng.random(n_ident)
    v = rng.random(n_ident)
    enrolled = u < programme.enrolment.uptake
    shares = programme.reward_shares
    if shares:
        choice = np.minimum(np.searchsorted(np.cumsum(shares), v, side="right"), len(shares) - 1)
    else:
        choice = np.full(n_ident, -1)
    member_codes = customers[enrolled]
    if isinstance(labels, np.ndarray):
        member_ids = labels[order][enrolled]
    else:
        member_ids = pd.array(labels.take(order[enrolled]), dtype="str")
    del labels, order
    member_choice = choice[enrolled]
    m = len(member_codes)
    member_baskets = baskets_of[member_codes]  # baskets of each member in the window
    del baskets_of
    rank = np.full(data["n_codes"] + 1, -1, dtype=np.int32)  # the last slot: code -1
    rank[member_codes] = np.arange(m, dtype=np.int32)
    member_all = np.empty(len(codes), dtype=np.int32)  # member number of each basket
    for part in _k.blocks(len(codes)):
        np.take(rank, codes[part], out=member_all[part], mode="wrap")  # -1: the last slot
    del codes, rank
    if ident is not None:
        member_all[~ident] = -1
    del ident

    # R3-R10 by chunks of members, concurrently: each orders and replays its members.
    n_member = int(member_baskets.sum())
    edges = _c.chunk_edges(member_baskets, chunks or _c.default_chunks(n_member))
    ordered = _k.members_in_order(member_all)
    ts_raw, per_day, per_second = data.pop("ts")
    shared = _c.Baskets(
        programme, member_all, day_all, cents_all, data["dept"], ts_raw, data["ts_source"],
        per_day, per_second, data["basket_id"], member_choice, s_day, e_day, months, ordered,
    )  # fmt: skip
    flows = redemption = None
    columns = []
    rate = programme.redemption.rate
    with contextlib.ExitStack() as stack:
        if map_ is None:
            map_ = stack.enter_context(_c.default_map(n_member))
        by_basket = {"member": member_all, "day": day_all, "cents": cents_all}
        by_basket |= {"dept": data["dept"], "ts_raw": ts_raw}
        rows = _c.chunk_rows(member_all, member_baskets, edges, ordered, map_, by_basket)
        del by_basket
        results = _c.replay_chunks(shared, rows, edges, map_)
        del rows, shared
        # meanwhile: the revenue of every basket in the window (exact sums of cents), unless
        # the members' baskets are all the baskets (then the members' revenue, the same sums)
        revenue = None
        if n_member < len(day_all):
            days, cents = day_all, cents_all
            if window is not None:
                days, cents = day_all[window], cents_all[window]
            revenue = _k.cents_by_row(
                len(months["first"]), len(days),
                lambda part, days=days: _month_index(days[part], months), cents,
            )  # fmt: skip
            del days, cents
        del window, day_all, cents_all, member_all
        redeemed_m = []
        for result in results:  # in chunk order: the draws follow the members' order
            issued = result["issued"]
            redeemed, expired = _redemption(
                issued["rewards"], issued["has_next"], rate, rng if sample else None
            )
            flows = _c.add_in_order(flows, result["flows"])
            redemption = _c.add_in_order(
                redemption, _redemption_flows(issued, redeemed, expired, months)
            )
            redeemed_m.append(
                np.bincount(issued["member"], weights=redeemed, minlength=issued["m"])
            )
            columns.append(result["columns"])
            del result, issued
    flows.update(redemption)
    revenue = (flows["members_cents"] if revenue is None else revenue) / 100
    columns = {key: np.concatenate([c[key] for c in columns]) for key in columns[0]}
    columns["rewards_redeemed"] = np.concatenate(redeemed_m)
    welcome_bonus = programme.earn.welcome_bonus if programme.earn is not None else 0
    ledger = _ledger(programme, flows, revenue, months, m, welcome_bonus, sample)
    customers = _customers(programme, columns, member_ids, member_choice, sample)
    totals = _totals(ledger, n_ident, m)
    return ReplayResult(programme, ledger, customers, start, end, seed, sample, n_ident, totals)
