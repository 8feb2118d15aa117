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

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

try:  # integer ids to text and their text order without Python strings (pandas' str type)
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - numpy strings instead
    pa = pc = None

from loyalty_pilot.simulator import _replay_kernels as _k
from loyalty_pilot.simulator.programme import (
    Programme,
    reward_cost,
    reward_perceived,
    slug,
)

_EPOCH = np.datetime64("1970-01-01", "D")

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
) -> ReplayResult:
    """Replay ``programme`` on ``baskets`` following rules R1-R12 (module docstring).

    Vectorized: one sort and segmented cumulative sums over all baskets at once. The only
    Python loops run over calendar years when points have a fixed validity (R7), over the
    tiers, and over blocks of about a million baskets for elementwise work whose
    temporaries would otherwise be fresh basket-sized arrays (``_replay_kernels.blocks``).
    Per-basket arrays are int32 where the values fit, rewards are kept for the issuing
    baskets only, and every intermediate is released as soon as it is used, so the peak
    memory stays about twice the raw input columns.
    """
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
    # without a window: summed below, with the month of every basket computed once
    revenue = None if window is None else _monthly_money(day_all[window], cents_all[window], months)

    # R2: enrolment and reward choice, over identified customers in the window.
    codes = data.pop("customer_code")  # -1: anonymous
    ident = data.pop("identified")  # None: all identified
    if window is not None:
        ident = window if ident is None else ident & window
    del window
    counted = codes if ident is None else codes[ident]
    present = np.flatnonzero(np.bincount(counted, minlength=data["n_codes"]))
    del counted
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
    del labels
    member_choice = choice[enrolled]
    m = len(member_codes)
    rank = np.full(data["n_codes"] + 1, -1, dtype=np.int32)  # the last slot: code -1
    rank[member_codes] = np.arange(m, dtype=np.int32)

    # R3: the members' baskets in order (member, timestamp, basket_id).
    member_all = rank[codes]
    del codes, rank
    if ident is not None:
        member_all[~ident] = -1
    del ident
    sel = None if member_all.min() >= 0 else np.flatnonzero(member_all >= 0)
    if sel is not None:
        sel = sel.astype(_k.index_dtype(len(day_all)))
        member_all = member_all[sel]
    ts_raw, per_day, per_second = data.pop("ts")
    if ts_raw is None:  # the timestamp is the date column: its day is the basket's day
        tsday = day_all if sel is None else day_all[sel]
    else:
        tsday = np.floor_divide(ts_raw if sel is None else ts_raw[sel], per_day).astype(np.int32)
    ts_source = data.pop("ts_source")

    def rows_of(positions: np.ndarray, sel: np.ndarray | None = sel) -> np.ndarray:
        return positions if sel is None else sel[positions]

    def timestamps(positions: np.ndarray, rows_of: Any = rows_of) -> np.ndarray:
        return ts_source[rows_of(positions)]

    order, c, tsday, moved = _k.member_time_order(
        member_all, tsday, timestamps, per_day, per_second, data["basket_id"], rows_of
    )
    del member_all
    if order is not None:
        rows = rows_of(order)
    elif sel is not None:  # in order, a subset: rows = sel but for the moves
        rows = sel.copy()
        rows[moved[0]] = sel[moved[1]]
    else:
        rows = None  # every basket, in order but for the moves
    del order, sel, rows_of, timestamps
    month = None
    if revenue is None and rows is None:  # the months serve the revenue and the members
        month = _month_index(day_all, months)
        revenue = _k.sum_by(
            np.zeros(len(months["first"])),
            len(day_all),
            month.__getitem__,
            lambda part, cents_all=cents_all: cents_all[part] / 100.0,
        )
    elif revenue is None:
        revenue = _monthly_money(day_all, cents_all, months)
    if rows is None:  # the members' baskets are all the baskets, in order but for moves
        at, source = moved  # within a (member, timestamp day): moved in place (own arrays)
        cents = cents_all
        cents[at] = cents[source]
        if ts_raw is None:
            day = tsday  # day_all itself: a move keeps the day
        else:
            day = day_all
            day[at] = day[source]
            month[at] = month[source]
        dept = data["dept"]
        if dept is not None and len(at):
            dept = dept.copy()
            dept[at] = dept[source]
    else:
        day = tsday if ts_raw is None else day_all[rows]
        cents = cents_all[rows]
        dept = None if data["dept"] is None else data["dept"][rows]
    del tsday, day_all, cents_all, rows
    parts = _member_events(
        programme, c, day, cents, dept, member_choice, s_day, e_day, months, sample, rng, month
    )
    ledger = _ledger(programme, parts, revenue, months)
    customers = _customers(programme, parts, member_ids, member_choice)
    totals = _totals(ledger, n_ident, m)
    return ReplayResult(programme, ledger, customers, start, end, seed, sample, n_ident, totals)


# ----------------------------------------------------------------------------- input


def _prepare(baskets: pd.DataFrame, programme: Programme) -> dict[str, Any]:
    """Lean columns: int32 days, int32 (else int64) cents, int32 customer codes."""
    for column in ("customer_id", "basket_id", "date", "amount"):
        if column not in baskets.columns:
            raise ValueError(f"baskets has no column {column!r}")
    amount = pd.to_numeric(baskets["amount"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(amount).all():
        raise ValueError("baskets column 'amount' has missing or non-numeric values")
    dates = _datetimes(baskets["date"])
    if dates.isna().any():
        raise ValueError("baskets column 'date' has missing values")
    date_raw, date_per_day, date_per_second = _datetime_ints(dates)
    n = len(date_raw)
    day = np.empty(n, dtype=np.int32)
    for part in _k.blocks(n):
        np.floor_divide(date_raw[part], date_per_day, out=day[part], casting="unsafe")
    if "ts" in baskets.columns:
        ts_raw, per_day, per_second = _datetime_ints(_datetimes(baskets["ts"]))
        ts_source, ts = ts_raw, (ts_raw, per_day, per_second)
    else:  # ordered by the date column itself
        ts_source, ts = date_raw, (None, date_per_day, date_per_second)
    fits = n == 0 or max(-np.rint(amount.min() * 100), np.rint(amount.max() * 100)) < 2**31
    cents = np.empty(n, dtype=np.int32 if fits else np.int64)
    for part in _k.blocks(n):
        scaled = amount[part] * 100
        cents[part] = np.rint(scaled, out=scaled)
    customer = baskets["customer_id"]
    dense = _dense_integer_codes(customer)
    if dense is not None:
        identified, (codes, n_codes, labels) = None, dense
    else:
        identified = customer.notna().to_numpy().copy()
        if not (pd.api.types.is_numeric_dtype(customer) or pd.api.types.is_bool_dtype(customer)):
            customer = customer.astype("string")
            identified &= (customer.str.len() > 0).fillna(False).to_numpy(dtype=bool)
            customer = customer.where(identified)
        factor, uniques = pd.factorize(customer)
        texts = np.asarray(uniques.astype(str), dtype=object)
        codes, n_codes = factor.astype(_k.index_dtype(len(texts) + 1)), len(texts)

        def labels(present: np.ndarray) -> np.ndarray:
            return texts[present].astype(str)

        if identified.all():
            identified = None
    dept = None  # a department without a multiplier counts 1: None when none has one
    multipliers = programme.earn.department_multipliers if programme.earn else {}
    if multipliers:
        if "department" not in baskets.columns:
            raise ValueError("the programme has department multipliers: baskets need 'department'")
        dept = baskets["department"].map(multipliers).fillna(1.0).to_numpy(dtype=float)
    return {
        "day": day,
        "ts": ts,
        "ts_source": ts_source,
        "cents": cents,
        "identified": identified,
        "customer_code": codes,
        "n_codes": n_codes,
        "labels": labels,
        "basket_id": baskets["basket_id"],
        "dept": dept,
    }


def _datetimes(column: pd.Series) -> pd.Series:
    """``pd.to_datetime(column)``, without a copy when it already holds datetimes."""
    return column if pd.api.types.is_datetime64_dtype(column.dtype) else pd.to_datetime(column)


def _datetime_ints(values: pd.Series) -> tuple[np.ndarray, int, int]:
    """Timestamps as int64 (a view when possible), with the units in a day and a second."""
    array = values.to_numpy()
    if array.dtype.kind != "M":  # e.g. time zone aware: UTC nanoseconds
        array = np.asarray(values.dt.tz_convert(None) if values.dt.tz else values, "M8[ns]")
    unit = np.datetime_data(array.dtype)[0]
    per_day = int(np.timedelta64(1, "D") // np.timedelta64(1, unit))
    per_second = int(np.timedelta64(1, "s") // np.timedelta64(1, unit)) if per_day > 86400 else 1
    return array.view(np.int64), per_day, per_second


def _dense_integer_codes(customer: pd.Series) -> tuple[np.ndarray, int, Any] | None:
    """Codes ``id - min`` for integer ids over a compact range (no hashing), else None."""
    if not isinstance(customer.dtype, np.dtype) or customer.dtype.kind not in "iu":
        return None
    ids = customer.to_numpy()
    if len(ids) == 0:
        return None
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo >= min(max(4 * len(ids), 1 << 20), (1 << 31) - 1):
        return None
    codes = np.empty(len(ids), dtype=np.int32)
    for part in _k.blocks(len(ids)):
        np.subtract(ids[part], ids.dtype.type(lo), out=codes[part], casting="unsafe")

    def labels(present: np.ndarray) -> Any:
        values = present.astype(ids.dtype) + ids.dtype.type(lo)
        return values.astype(str) if pa is None else pc.cast(pa.array(values), pa.string())

    return codes, hi - lo + 1, labels


def _day(value: dt.date) -> int:
    return int((np.datetime64(value, "D") - _EPOCH).astype(np.int64))


def _to_date(day: int) -> dt.date:
    return (_EPOCH + np.timedelta64(int(day), "D")).astype(dt.date)


def _months(s_day: int, e_day: int) -> dict[str, np.ndarray]:
    first_month = (_EPOCH + s_day).astype("datetime64[M]")
    last_month = (_EPOCH + e_day).astype("datetime64[M]")
    month = np.arange(first_month, last_month + 1)
    first = month.astype("datetime64[D]")
    month_end = (month + 1).astype("datetime64[D]") - 1
    first_days = np.maximum((first - _EPOCH).astype(np.int64), s_day)
    snapshot = np.minimum((month_end - _EPOCH).astype(np.int64), e_day)
    span = np.diff(np.append(first_days, snapshot[-1] + 1))
    return {
        "month": first,
        "first": first_days,
        "snapshot": snapshot,
        "year": month.astype("datetime64[Y]").astype(np.int64) + 1970,
        # ledger row of every day of the window, from its first day
        "lut": np.repeat(np.arange(len(first), dtype=np.intp), span),
    }


def _monthly_money(day: np.ndarray, cents: np.ndarray, months: dict[str, Any]) -> np.ndarray:
    """Sum of ``cents / 100`` by ledger row, in the order of the baskets."""
    return _k.sum_by(
        np.zeros(len(months["first"])),
        len(day),
        lambda part: _month_index(day[part], months),
        lambda part: cents[part] / 100.0,
    )


def _month_index(day: np.ndarray, months: dict[str, np.ndarray]) -> np.ndarray:
    """Ledger row (intp) of each day (days must lie in the window)."""
    offset = np.subtract(day, months["first"][0], dtype=np.int64 if day.itemsize > 4 else np.int32)
    return months["lut"][offset]


# ----------------------------------------------------------------------------- rules


def _member_events(
    programme: Programme,
    c: np.ndarray,
    day: np.ndarray,
    cents: np.ndarray,
    dept: np.ndarray | None,
    member_choice: np.ndarray,
    s_day: int,
    e_day: int,
    months: dict[str, np.ndarray],
    sample: bool,
    rng: np.random.Generator,
    month: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every rule on the members' baskets in order (``c`` member, ``day``, ``cents``).

    Per-basket arrays kept: ``c``, ``day``, ``cents``, ``month``, ``credit``, ``tier``
    and the discount; rewards and their redemption are kept only for the (few) baskets
    that issue rewards (``issuing`` positions).
    """
    n = len(c)
    m = len(member_choice)
    first = np.ones(n, dtype=bool)
    np.not_equal(c[1:], c[:-1], out=first[1:])
    last = np.ones(n, dtype=bool)
    last[:-1] = first[1:]
    starts = np.flatnonzero(first)  # every member has a basket: one start per member
    if month is None:
        month = _month_index(day, months)

    # R4 tier of each basket
    tiers = programme.tiers
    thresholds = np.array([round(t.min_spend_12m * 100) for t in tiers], dtype=np.int64)
    tier = np.zeros(n, dtype=np.int8)
    if len(tiers) > 1 and n:
        tier, spend_m = _rolling_tier(c, day, cents, thresholds, starts)
    else:
        spend_m = np.add.reduceat(cents, starts, dtype=np.int64) if m else np.zeros(0, np.int64)
    # Tiers on the snapshot days (R11)
    snapshot = _snapshot_tiers(c, month, day, cents, starts, thresholds, months) if tiers else None

    # R5 points
    credit = np.zeros(n, dtype=np.int64)
    welcome_bonus = 0
    if programme.earn is not None:
        credit = _points(programme, tier, cents, dept)
        welcome_bonus = programme.earn.welcome_bonus
        credit[starts] += welcome_bonus
    del dept

    # Reward threshold and valuation per member
    point_rewards = programme.point_rewards
    no_reward = np.int64(1 << 62)
    if point_rewards:
        t_by_reward = np.array([r.points for r in point_rewards], dtype=np.int64)
        cost_by_reward = np.array([reward_cost(r) for r in point_rewards])
        seen_by_reward = np.array([reward_perceived(r) for r in point_rewards])
        threshold_m = t_by_reward[member_choice]
        cost_m = cost_by_reward[member_choice]
        perceived_m = seen_by_reward[member_choice]
        per_point_m = cost_m / threshold_m
    else:
        threshold_m = np.full(m, no_reward)
        cost_m = perceived_m = per_point_m = np.zeros(m)
    uniform = len(np.unique(threshold_m)) <= 1

    def threshold_at(positions: np.ndarray | None) -> np.ndarray | np.int64:
        """Reward threshold of the members of these baskets (all when None)."""
        if uniform:
            return threshold_m[0] if m else no_reward
        return threshold_m[c] if positions is None else threshold_m[c[positions]]

    # R6 runs between inactivity lapses
    inactivity = programme.expiry.inactivity_days
    run_start = first.copy()
    if inactivity and n:
        run_start[1:] |= np.diff(day) >= inactivity
    run_first = np.flatnonzero(run_start)
    n_runs = len(run_first)
    run_last = np.append(run_first[1:] - 1, n - 1) if n_runs else run_first
    run_member = c[run_first].astype(np.int64) if n_runs else np.zeros(0, dtype=np.int64)
    never = np.iinfo(np.int64).max
    lapse_day = np.full(n_runs, never, dtype=np.int64)
    if inactivity and n_runs:
        candidate = day[run_last].astype(np.int64) + inactivity
        followed = ~last[run_last]  # the next run of the same member started by a lapse
        lapse_day = np.where(followed | (candidate <= e_day), candidate, never)

    # R7 + R8: balance, conversions and fixed-validity expiry
    validity = programme.expiry.validity_years
    y0 = int((_EPOCH + s_day).astype("datetime64[Y]").astype(np.int64)) + 1970
    year = months["year"][month] if validity is not None or programme.progressive else None
    if validity is None:
        issuing, rewards, balance, run_total = _conversions(
            credit, run_start, run_last, threshold_at
        )
        validity_events = (np.zeros(0, dtype=np.int64),) * 3
        # each member's credit: the sum of its runs' (every member has a first run)
        credit_m = np.add.reduceat(run_total, np.flatnonzero(first[run_first])) if m else run_total
        del run_total
    else:
        rewards, balance, validity_events = _conversions_by_year(
            credit, run_start, run_first, run_last, day, year, y0, e_day, lapse_day,
            validity, threshold_at,
        )  # fmt: skip
        issuing = np.flatnonzero(rewards)
        rewards = rewards[issuing]
        credit_m = np.add.reduceat(credit, starts, dtype=np.int64) if m else np.zeros(0, np.int64)
    del run_start
    lapsed = lapse_day <= e_day
    lapse_points = np.where(lapsed, balance, 0)

    # R9 redemption at the next basket within the validity (issuing baskets only)
    valid_days = programme.redemption.validity_days
    redemption_rate = programme.redemption.rate
    issue_day = day[issuing].astype(np.int64)
    next_day = day[np.minimum(issuing + 1, max(n - 1, 0))].astype(np.int64)
    has_next = ~last[issuing] & (next_day <= issue_day + valid_days)
    del last
    if sample:
        draws = rng.binomial(rewards, redemption_rate)
        redeemed = np.where(has_next, draws, 0).astype(float)
    else:
        redeemed = np.where(has_next, rewards * redemption_rate, 0.0)
    expired_rewards = rewards - redeemed
    resolve_day = np.where(has_next, next_day, issue_day + valid_days)

    # R10 discounts
    discount = _discounts(programme, tier, cents, first, year)

    return {
        "n": n, "m": m, "c": c, "day": day, "month": month, "cents": cents, "starts": starts,
        "tier": tier, "thresholds": thresholds, "credit": credit,
        "welcome_bonus": welcome_bonus, "issuing": issuing, "rewards": rewards,
        "issue_day": issue_day, "threshold_at": threshold_at, "redeemed": redeemed,
        "expired_rewards": expired_rewards, "resolve_day": resolve_day,
        "discount": discount, "run_member": run_member, "lapse_day": lapse_day,
        "lapse_points": lapse_points, "validity_events": validity_events, "cost_m": cost_m,
        "perceived_m": perceived_m, "per_point_m": per_point_m,
        "snapshot": snapshot, "valid_days": valid_days, "e_day": e_day,
        "months": months, "sampled": sample, "spend_m": spend_m, "credit_m": credit_m,
        "first": first,
    }  # fmt: skip


def _rolling_tier(
    c: np.ndarray, day: np.ndarray, cents: np.ndarray, thresholds: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """R4: tier (int8) from the member's spend over earlier baskets in (day - 365, day).

    Also returns each member's total spend (int64 cents), a by-product of the running sum.

    Only baskets whose member has spent (positive amounts) at least the second threshold
    before them can be above the first tier; for those, the member's first basket dated
    after ``day - 365`` is found by one binary search of the sorted (member, day) keys.
    The keys are int32 when member and day fit in 31 bits (days counted from the first
    day - 365, so ``key - 365`` stays within the member).
    """
    n = len(c)
    cc0 = np.zeros(n + 1, dtype=np.int64)  # spend before each basket
    cc0[1:] = cents
    np.cumsum(cc0, out=cc0)
    spend_m = cc0[np.append(starts[1:], n)]
    spend_m -= cc0[starts]
    if cents.min() >= 0:
        positive0 = cc0
    else:
        positive0 = np.zeros(n + 1, dtype=np.int64)
        np.maximum(cents, 0, out=positive0[1:], casting="unsafe")
        np.cumsum(positive0, out=positive0)
    base = positive0[starts]
    found = []
    for part in _k.blocks(n):  # bound >= the spend over any window before the basket
        bound = positive0[part] - base[c[part]]
        found.append(np.flatnonzero(bound >= thresholds[1]) + part.start)
    candidates = np.concatenate(found)
    del found, positive0
    tier = np.zeros(n, dtype=np.int8)
    if len(candidates) == 0:
        return tier, spend_m
    d0 = int(day.min()) - 365
    width = _k.bits(int(day.max()) - d0)
    key_t = np.int32 if _k.bits(int(c[-1])) + width <= 31 else np.int64
    key = c.astype(key_t)
    key <<= width
    key += day
    key -= key_t(d0)
    needles = key[candidates]
    needles -= key_t(365)
    # The answer for a basket lies between its member's first basket and itself: each
    # chunk of (sorted) needles is searched in the small slice of keys that holds its
    # answers, which stays in cache (same result as one search of all keys).
    lo = np.empty(len(candidates), dtype=np.intp)
    for j in _k.blocks(len(candidates), 1 << 16):
        a, z = int(starts[c[candidates[j.start]]]), int(candidates[j.stop - 1]) + 1
        np.add(np.searchsorted(key[a:z], needles[j], side="right"), a, out=lo[j])
    del key, needles
    spend = cc0[candidates]
    spend -= cc0[lo]
    tier[candidates] = _k.tier_of_sorted(thresholds, spend)
    return tier, spend_m


def _points(
    programme: Programme, tier: np.ndarray, cents: np.ndarray, dept: np.ndarray | None
) -> np.ndarray:
    """R5: ``floor(cents * rate / 100 + 1e-9)`` for amount > 0, else 0 (int64).

    ``rate = points_per_currency * department * tier multiplier``, in that order; without
    department multipliers the department counts 1.0, which changes no product.
    """
    earn = programme.earn
    tier_mult = np.array([t.multiplier for t in programme.tiers] or [1.0])
    rate_by_tier = earn.points_per_currency * tier_mult
    nonnegative = earn.points_per_currency >= 0 and (tier_mult >= 0).all() and dept is None
    points = np.empty(len(cents), dtype=np.int64)
    for part in _k.blocks(len(cents)):
        if dept is None:
            rate = np.take(rate_by_tier, tier[part])
        else:
            rate = dept[part] * earn.points_per_currency
            rate *= np.take(tier_mult, tier[part])
        rate *= cents[part]
        rate /= 100
        rate += 1e-9
        points[part] = np.floor(rate, out=rate)
    if nonnegative:
        np.maximum(points, 0, out=points)  # rates >= 0: returns and zeros earn <= 0
    else:
        points[cents <= 0] = 0
    return points


def _conversions(
    credit: np.ndarray, run_start: np.ndarray, run_last: np.ndarray, threshold_at: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R8 without fixed validity: issuing baskets, their rewards, each run's final balance
    and each run's total credit.

    With ``total`` the balance after each basket (before conversions) and ``k = total //
    threshold`` the rewards issued so far in the run, a basket issues ``k - k[previous]``
    (its ``before // threshold``, the balance before it being the previous ``total``).
    """
    total = _k.segment_cumsum(credit, run_start)  # balance after each basket
    run_total = total[run_last]
    balance = run_total % threshold_at(run_last)
    k = np.floor_divide(total, threshold_at(None), out=total)
    issuing, rewards = [], []
    for part in _k.blocks(len(k)):  # the nonzero k - k[previous], block by block
        kp = k[part]
        issued = np.empty_like(kp)
        np.subtract(kp[1:], kp[:-1], out=issued[1:])
        issued[0] = kp[0] - k[part.start - 1] if part.start else kp[0]
        restart = run_start[part]
        issued[restart] = k[part][restart]
        at = np.flatnonzero(issued)
        issuing.append(at + part.start)
        rewards.append(issued[at])
    if not issuing:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64), balance, run_total
    return np.concatenate(issuing), np.concatenate(rewards), balance, run_total


def _conversions_by_year(
    credit: np.ndarray,
    run_start: np.ndarray,
    run_first: np.ndarray,
    run_last: np.ndarray,
    day: np.ndarray,
    year: np.ndarray,
    y0: int,
    e_day: int,
    lapse_day: np.ndarray,
    validity: int,
    threshold_at: Any,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """R7 + R8 with fixed validity: balances carried year by year, 31 December expiries."""
    n, n_runs = len(credit), len(run_first)
    y1 = int((_EPOCH + e_day).astype("datetime64[Y]").astype(np.int64)) + 1970
    n_years = y1 - y0 + 1
    run = np.cumsum(run_start) - 1
    balance = np.zeros(n_runs, dtype=np.int64)
    rewards = np.zeros(n, dtype=np.int64)
    credit_by_year = np.zeros((n_runs, n_years), dtype=np.int64)
    if n:
        credit_by_year = (
            np.bincount(run * n_years + (year - y0), weights=credit, minlength=n_runs * n_years)
            .round()
            .astype(np.int64)
            .reshape(n_runs, n_years)
        )
    expiry_day: list[np.ndarray] = []
    expiry_run: list[np.ndarray] = []
    expiry_points: list[np.ndarray] = []
    for p in range(n_years):
        idx = np.flatnonzero(year == y0 + p)
        if len(idx):
            r = run[idx]
            starts = np.ones(len(idx), dtype=bool)
            starts[1:] = r[1:] != r[:-1]
            total = balance[r] + _k.segment_cumsum(credit[idx], starts)
            before = total - credit[idx]
            t = threshold_at(idx)
            rewards[idx] = total // t - before // t
            ends = np.append(starts[1:], True)
            balance[r[ends]] = (total % t)[ends]
        dec31 = _day(dt.date(y0 + p, 12, 31))
        if dec31 > e_day or not n_runs:
            continue
        alive = (day[run_first] <= dec31) & (lapse_day > dec31)
        kept = credit_by_year[:, max(0, p - validity + 1) : p + 1].sum(axis=1) if validity else 0
        expired = np.where(alive, np.maximum(balance - kept, 0), 0)
        hit = np.flatnonzero(expired > 0)
        balance[hit] -= expired[hit]
        expiry_day.append(np.full(len(hit), dec31, dtype=np.int64))
        expiry_run.append(hit)
        expiry_points.append(expired[hit])
    events = (
        np.concatenate(expiry_day) if expiry_day else np.zeros(0, dtype=np.int64),
        np.concatenate(expiry_run) if expiry_run else np.zeros(0, dtype=np.int64),
        np.concatenate(expiry_points) if expiry_points else np.zeros(0, dtype=np.int64),
    )
    return rewards, balance, events


def _discounts(
    programme: Programme,
    tier: np.ndarray,
    cents: np.ndarray,
    first: np.ndarray,
    year: np.ndarray | None,
) -> np.ndarray | None:
    """R10: ``cents / 100 * rate`` per basket (float64), None when every rate is 0.

    ``rate = discount card + progressive step + tier discount``, added in that order.
    """
    tiers = programme.tiers
    tier_discount = np.array([t.benefit.discount_rate if t.benefit else 0.0 for t in tiers])
    progressive = programme.progressive
    if progressive is None:
        by_tier = np.full(max(len(tiers), 1), float(programme.discount_rate))
        if tiers:
            by_tier = by_tier + tier_discount
        if not by_tier.any():
            return None
        discount = cents / 100
        discount *= by_tier[0] if len(by_tier) == 1 else np.take(by_tier, tier)
        return discount
    # progressive step from the spend of the member's earlier baskets of the same year
    new_year = first.copy()
    new_year[1:] |= year[1:] != year[:-1]
    spend = _k.segment_cumsum(cents, new_year)
    spend -= cents
    steps = np.array([round(s.from_spend * 100) for s in progressive.scale], dtype=np.int64)
    step_rates = np.array([s.rate for s in progressive.scale])
    rate = np.full(len(cents), float(programme.discount_rate))
    rate += step_rates[_tier_of(steps, spend)]
    if tiers:
        rate += np.take(tier_discount, tier)
    rate *= cents / 100
    return rate


def _snapshot_tiers(
    c: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    cents: np.ndarray,
    starts: np.ndarray,
    thresholds: np.ndarray,
    months: Any,
) -> dict[str, np.ndarray]:
    """Tiers on the snapshot days (R11) from the spend over (snapshot - 365, snapshot].

    A basket of month ``a`` counts on the snapshots ``a <= s < b``, ``b`` the first snapshot
    with ``snapshot - 365 >= day`` (a look-up table over the window's days): a bincount of
    +cents at (a, member) and of -cents at (b, member), then a cumulative sum down the
    months gives each member's spend on each snapshot day (whole cents: exact in float64).
    Members are taken in blocks of about a million baskets, so the (months x members)
    spend never exists whole; each block leaves only what the ledger and the customers
    need. Returns ``at_least`` (members whose spend reaches each threshold, thresholds x
    months), ``tier_end`` (tier on the last snapshot) and ``top`` (highest snapshot tier).
    """
    snapshots = months["snapshot"]
    n_snap, m, n = len(snapshots), len(starts), len(c)
    window_days = np.arange(months["first"][0], snapshots[-1] + 1)
    drop = np.searchsorted(snapshots - 365, window_days, side="left")  # n_snap: never
    at_least = np.zeros((len(thresholds), n_snap), dtype=np.int64)
    tier_end = np.zeros(m, dtype=np.int8)
    top = np.zeros(m, dtype=np.int8)
    edges = np.unique(np.append(np.searchsorted(starts, np.arange(0, n, 1 << 20)), m))
    for m0, m1 in itertools.pairwise(edges):  # blocks of members
        b0 = starts[m0]
        b1 = starts[m1] if m1 < m else n
        members = m1 - m0
        size = (n_snap + 1) * members  # row n_snap: baskets that never drop out
        weights = cents[b0:b1].astype(float)
        member = c[b0:b1] - m0
        cell = month[b0:b1] * members
        cell += member
        grid = np.bincount(cell, weights=weights, minlength=size)
        np.take(drop, np.subtract(day[b0:b1], months["first"][0], dtype=np.int32), out=cell)
        cell *= members
        cell += member
        grid -= np.bincount(cell, weights=weights, minlength=size)
        del cell, weights, member
        spend = grid.reshape(n_snap + 1, members)[:n_snap]
        np.cumsum(spend, axis=0, out=spend)
        for i, threshold in enumerate(thresholds):  # a handful of tiers
            at_least[i] += (spend >= threshold).sum(axis=1)
        tier_end[m0:m1] = _k.tier_of_sorted(thresholds, spend[-1])
        top[m0:m1] = _k.tier_of_sorted(thresholds, spend.max(axis=0))
    return {"at_least": at_least, "tier_end": tier_end, "top": top}


def _tier_of(thresholds: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """Index of the highest threshold <= spend (the lowest when the spend is below all)."""
    return np.maximum(np.searchsorted(thresholds, spend, side="right") - 1, 0)


# ----------------------------------------------------------------------------- output


def _ledger(
    programme: Programme, parts: dict[str, Any], revenue: np.ndarray, months: dict[str, Any]
) -> pd.DataFrame:
    n_months = len(months["first"])
    e_day = parts["e_day"]
    c, month = parts["c"], parts["month"]
    issuing = parts["issuing"]
    issue_month = month[issuing]

    def per_month(index: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum ``weights`` (float) or count by ledger row."""
        counts = np.bincount(index, weights=weights, minlength=n_months)
        return counts if weights is None else counts.astype(float)

    located: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}

    def by_day(days: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum ``weights`` (or count) by the month of ``days``; days after ``end`` drop out."""
        if id(days) not in located:  # each array of days is located once
            inside = None if (len(days) == 0 or days.max() <= e_day) else days <= e_day
            chosen = days if inside is None else days[inside]
            located[id(days)] = (inside, _month_index(chosen, months))
        inside, index = located[id(days)]
        w = None if weights is None else np.asarray(weights, dtype=float)
        if w is not None and inside is not None:
            w = w[inside]
        return per_month(index, w)

    starts = parts["starts"]
    new_members = per_month(month[starts])
    members = np.cumsum(new_members)
    new_visit = parts["first"].copy()  # a member's first basket, or first of a month
    new_visit[1:] |= month[1:] != month[:-1]
    active_members = per_month(month[new_visit])
    del new_visit
    rewards = parts["rewards"]  # issuing baskets only
    converted = rewards * parts["threshold_at"](issuing)
    cost_i = parts["cost_m"][c[issuing]]
    expiry_day = parts["issue_day"] + parts["valid_days"]
    resolve_day = parts["resolve_day"]
    v_day, v_run, v_points = parts["validity_events"]
    run_member = parts["run_member"]
    lapsed = parts["lapse_day"] <= e_day
    lapse_day = parts["lapse_day"][lapsed]
    lapse_points = parts["lapse_points"][lapsed]
    lapse_member = run_member[lapsed]
    v_member = run_member[v_run]

    n = parts["n"]
    credit = parts["credit"]

    def dense_sum(weights: Any) -> np.ndarray:
        """Sum of ``weights(part)`` (float) over all baskets by ledger row, blockwise."""
        return _k.sum_by(np.zeros(n_months), n, lambda part: month[part], weights)

    # Points credited (welcome bonus included): whole numbers, exact in float64 sums; and
    # their value: the change of balance of each basket at its member's cost per point.
    # One pass for both (each sum in basket order, as ``dense_sum``).
    per_point = parts["per_point_m"]
    uniform = len(per_point) and (per_point == per_point[0]).all()
    credited, change_sum = np.zeros(n_months), np.zeros(n_months)
    for part in _k.blocks(n):
        index = month[part]
        change = credit[part].astype(float)
        np.add.at(credited, index, change)
        i0, i1 = np.searchsorted(issuing, (part.start, part.stop))
        change[issuing[i0:i1] - part.start] -= converted[i0:i1]
        change *= per_point[0] if uniform else per_point[c[part]]
        np.add.at(change_sum, index, change)
    welcome = per_month(month[starts]) * float(parts["welcome_bonus"])
    # Outstanding points and pending rewards: every change dated, summed up to each snapshot.
    outstanding = np.cumsum(
        credited - per_month(issue_month, converted)
        - by_day(v_day, v_points) - by_day(lapse_day, lapse_points)
    )  # fmt: skip
    points_value = np.cumsum(
        change_sum
        - by_day(v_day, v_points * per_point[v_member])
        - by_day(lapse_day, lapse_points * per_point[lapse_member])
    )
    pending = np.cumsum(per_month(issue_month, rewards) - by_day(resolve_day, rewards))
    pending_value = np.cumsum(
        per_month(issue_month, rewards * cost_i) - by_day(resolve_day, rewards * cost_i)
    )
    redemption_rate = programme.redemption.rate

    tiers = programme.tiers
    tier_counts = np.zeros((len(tiers), n_months))
    if tiers:
        snapshot = parts["snapshot"]
        tier_counts = _tier_counts(snapshot["at_least"], parts["thresholds"], parts["m"], members)
    tier_cost = np.array([t.benefit.cost_per_member_year if t.benefit else 0.0 for t in tiers])
    tier_benefit_cost = (tier_cost[:, None] * tier_counts).sum(axis=0) / 12 if tiers else 0.0
    economics = programme.economics
    running_cost = members * economics.running_cost_per_member_year / 12
    referral_cost = np.zeros(n_months)
    if programme.referral is not None:
        shares = np.array(programme.reward_shares)
        point_value = float(
            (shares * np.array([reward_cost(r) / r.points for r in programme.point_rewards])).sum()
        )
        bonus = programme.referral.bonus_referrer + programme.referral.bonus_referee
        referral_cost = (
            programme.referral.rate_per_member_year / 12 * members * bonus * point_value
            * redemption_rate
        )  # fmt: skip
    discount = parts["discount"]
    cents = parts["cents"]
    ledger = pd.DataFrame(
        {
            "month": months["month"].astype("datetime64[ns]"),
            "snapshot": (_EPOCH + months["snapshot"]).astype("datetime64[ns]"),
            "revenue": revenue,
            "members_revenue": dense_sum(lambda part: cents[part] / 100),
            "new_members": new_members.astype(np.int64),
            "members": members.astype(np.int64),
            "active_members": active_members.astype(np.int64),
            "points_earned": (credited - welcome).round().astype(np.int64),
            "welcome_points": welcome.round().astype(np.int64),
            "points_expired_inactivity": by_day(lapse_day, lapse_points).round().astype(np.int64),
            "points_expired_validity": by_day(v_day, v_points).round().astype(np.int64),
            "points_converted": per_month(issue_month, converted).round().astype(np.int64),
            "rewards_issued": per_month(issue_month, rewards).round().astype(np.int64),
            "rewards_issued_cost": per_month(issue_month, rewards * cost_i),
            "rewards_issued_perceived": per_month(
                issue_month, rewards * parts["perceived_m"][c[issuing]]
            ),
            "rewards_redeemed": by_day(resolve_day, parts["redeemed"]),
            "redemption_cost": by_day(resolve_day, parts["redeemed"] * cost_i),
            "rewards_expired": by_day(expiry_day, parts["expired_rewards"]),
            "breakage": by_day(expiry_day, parts["expired_rewards"] * cost_i),
            "discount_cost": (
                np.zeros(n_months) if discount is None else dense_sum(discount.__getitem__)
            ),
            "tier_benefit_cost": tier_benefit_cost + np.zeros(n_months),
            "running_cost": running_cost,
            "referral_cost": referral_cost,
        }
    )
    ledger["total_cost"] = (
        ledger["redemption_cost"] + ledger["discount_cost"] + ledger["tier_benefit_cost"]
        + ledger["running_cost"] + ledger["referral_cost"]
    )  # fmt: skip
    if parts["sampled"]:  # whole rewards: counts are integers
        for column in ("rewards_redeemed", "rewards_expired"):
            ledger[column] = ledger[column].round().astype(np.int64)
    ledger["outstanding_points"] = np.rint(outstanding).astype(np.int64)
    ledger["pending_rewards"] = np.rint(pending).astype(np.int64)
    ledger["liability"] = (points_value + pending_value) * redemption_rate
    for i, t in enumerate(tiers):
        ledger[f"members_tier_{slug(t.name)}"] = tier_counts[i].astype(np.int64)
    return ledger


def _tier_counts(
    at_least: np.ndarray, thresholds: np.ndarray, m: int, members: np.ndarray
) -> np.ndarray:
    """Members in each tier on each snapshot day (float, tiers x months).

    Tiers rise with the spend: the members at tier >= i (i >= 1) are those whose spend
    reaches threshold i. Members not yet enrolled have no spend: they are taken out of the
    tier of a zero spend.
    """
    at_or_above = at_least.astype(float)
    at_or_above[0] = m  # every member has a tier
    counts = at_or_above.copy()
    counts[:-1] -= at_or_above[1:]
    counts[_tier_of(thresholds, np.zeros(1))[0]] -= m - members
    return counts


def _customers(
    programme: Programme, parts: dict[str, Any], ids: np.ndarray, member_choice: np.ndarray
) -> pd.DataFrame:
    m = parts["m"]
    c, day = parts["c"], parts["day"]
    e_day = parts["e_day"]
    starts = parts["starts"]
    issuing = parts["issuing"]

    def per_member(values: np.ndarray, members: np.ndarray) -> np.ndarray:
        return np.bincount(members, weights=np.asarray(values, dtype=float), minlength=m)

    rewards = parts["rewards"]
    c_issuing = c[issuing]
    never = np.iinfo(np.int64).max
    first_reward = np.full(m, never)  # days rise within a member: its first issuing basket
    head = np.ones(len(issuing), dtype=bool)
    np.not_equal(c_issuing[1:], c_issuing[:-1], out=head[1:])
    first_reward[c_issuing[head]] = parts["issue_day"][head]
    has_reward = first_reward != never
    first_advantage = first_reward.copy()
    discount = parts["discount"]
    if discount is not None:
        advantaged = discount > 0
        advantaged &= parts["cents"] > 0
        at = np.flatnonzero(advantaged)
        del advantaged
        c_at = c[at]
        head = np.ones(len(at), dtype=bool)
        np.not_equal(c_at[1:], c_at[:-1], out=head[1:])
        np.minimum.at(first_advantage, c_at[head], day[at[head]])
    has_advantage = first_advantage != never
    _, v_run, v_points = parts["validity_events"]
    lapsed = parts["lapse_day"] <= e_day
    run_member = parts["run_member"]
    expired = per_member(v_points, run_member[v_run]) + per_member(
        parts["lapse_points"][lapsed], run_member[lapsed]
    )
    converted = rewards * parts["threshold_at"](issuing)
    points_earned = parts["credit_m"]
    balance_end = points_earned - per_member(converted, c_issuing) - expired
    enrol = day[starts].astype(np.int64)
    tiers = programme.tiers
    names = pd.array([t.name for t in tiers] or [""], dtype="str")  # text once, then taken
    if tiers:
        tier_end = names.take(parts["snapshot"]["tier_end"].astype(np.intp))
        top = parts["snapshot"]["top"].copy()
        if m:
            np.maximum(top, np.maximum.reduceat(parts["tier"], starts), out=top)
        top_tier = names.take(top.astype(np.intp))
    else:
        tier_end = top_tier = names.take(np.zeros(m, dtype=np.intp))
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "enrolled": (_EPOCH + enrol).astype("datetime64[ns]"),
            "reward": member_choice.astype(np.int64),
            "baskets": np.diff(np.append(starts, len(c))).astype(np.int64),
            "spend": parts["spend_m"] / 100,
            "points_earned": points_earned,
            "points_expired": expired.round().astype(np.int64),
            "rewards_issued": per_member(rewards, c_issuing).round().astype(np.int64),
            "rewards_redeemed": _counts(per_member(parts["redeemed"], c_issuing), parts["sampled"]),
            "first_reward_date": _dates_or_nat(first_reward, has_reward),
            "days_to_first_reward": np.where(has_reward, first_reward - enrol, np.nan),
            "first_advantage_date": _dates_or_nat(first_advantage, has_advantage),
            "days_to_first_advantage": np.where(has_advantage, first_advantage - enrol, np.nan),
            "tier_end": tier_end,
            "top_tier": top_tier,
            "balance_end": balance_end.round().astype(np.int64),
        }
    )
    return frame  # members are numbered in customer_id (text) order: already sorted


def _counts(values: np.ndarray, whole: bool) -> np.ndarray:
    """Sampled counts are whole numbers (int64); expected ones stay fractional."""
    return values.round().astype(np.int64) if whole else values


def _dates_or_nat(days: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = (_EPOCH + np.where(present, days, 0)).astype("datetime64[ns]")
    out[~present] = np.datetime64("NaT")
    return out


def _totals(ledger: pd.DataFrame, identified: int, members: int) -> dict[str, Any]:
    revenue = float(ledger["revenue"].sum())
    cost = float(ledger["total_cost"].sum())
    return {
        "revenue": revenue,
        "members_revenue": float(ledger["members_revenue"].sum()),
        "identified_customers": identified,
        "members": members,
        "cost": cost,
        "cost_share": cost / revenue if revenue else float("nan"),
        "rewards_issued": int(ledger["rewards_issued"].sum()),
        "rewards_value": float(ledger["rewards_issued_cost"].sum()),
        "rewards_perceived": float(ledger["rewards_issued_perceived"].sum()),
        "rewards_redeemed": float(ledger["rewards_redeemed"].sum()),
        "breakage": float(ledger["breakage"].sum()),
        "discount_cost": float(ledger["discount_cost"].sum()),
        "liability_end": float(ledger["liability"].iloc[-1]),
        "outstanding_points_end": int(ledger["outstanding_points"].iloc[-1]),
    }
