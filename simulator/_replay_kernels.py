"""Array kernels of :mod:`loyalty_pilot.simulator.replay`: ordering and segmented sums.

Every function works on whole arrays (no Python loop per basket or per member) and keeps
its temporaries small: int32 where the values fit, in-place operations, and ``del`` of
large intermediates as soon as they are used, so that the replay's peak memory stays a
small multiple of its input columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

BLOCK = 1 << 20  # elements per block of a blockwise loop (8 MB of float64)


def blocks(n: int, size: int = BLOCK) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``.

    Elementwise work done block by block keeps its temporaries small: they are reused by
    the allocator instead of being fresh pages (a fresh array of n elements costs page
    faults worth several passes over it).
    """
    for at in range(0, n, size):
        yield slice(at, min(at + size, n))


def sum_by(
    out: np.ndarray,
    n: int,
    index: Callable[[slice], np.ndarray],
    weights: Callable[[slice], np.ndarray],
) -> np.ndarray:
    """``out += bincount(index, weights)`` over n elements, block by block, in order.

    ``np.add.at`` adds in element order like ``bincount``, so the sums are the same to
    the last bit, without n-sized index or weight arrays.
    """
    for part in blocks(n):
        np.add.at(out, index(part), weights(part))
    return out


def bits(value: int) -> int:
    """Number of bits holding the non-negative integer ``value`` (0 for 0)."""
    return max(int(value), 0).bit_length()


def index_dtype(n: int) -> type[np.signedinteger]:
    """The smallest of int32 / int64 that indexes ``n`` elements."""
    return np.int32 if n < (1 << 31) else np.int64


def segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sums (int64) restarting at every True of ``starts`` (``starts[0]`` True).

    One array: each segment's first value is lowered by the total of the segment before
    it, so a single running sum restarts at every segment.
    """
    out = values.astype(np.int64)
    begin = np.flatnonzero(starts)
    if len(begin) > 1:
        totals = np.add.reduceat(out, begin)
        out[begin[1:]] -= totals[:-1]
    np.cumsum(out, out=out)
    return out


def tier_of_sorted(thresholds: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """``max(searchsorted(thresholds, spend, 'right') - 1, 0)`` as int8, for sorted thresholds.

    With non-decreasing thresholds that index is the number of thresholds after the first
    one that are <= spend: a few comparisons instead of a binary search per element.
    """
    tier = np.zeros(spend.shape, dtype=np.int8)
    for threshold in thresholds[1:]:  # a handful of tiers
        tier += spend >= threshold
    return tier


def member_time_order(
    member: np.ndarray,
    tsday: np.ndarray,
    timestamps: Callable[[np.ndarray], np.ndarray],
    per_day: int,
    per_second: int,
    basket_id: pd.Series,
    rows: Callable[[np.ndarray], np.ndarray],
    ts_all: np.ndarray | None = None,
) -> tuple[Any, np.ndarray, np.ndarray, Any]:
    """Order baskets by (member, timestamp, basket_id as text).

    ``member`` (member rank >= 0) and ``tsday`` (day of the timestamp) are int arrays;
    ``timestamps(positions)`` returns the int64 timestamps (``per_day`` units a day,
    ``per_second`` a second) of the given positions, ``rows(positions)`` their rows in
    ``basket_id``. Returns ``order`` (positions in order), ``member[order]``,
    ``tsday[order]`` and None; when (member, day) already is in order (e.g. read with
    ORDER BY), ``order`` is None (the identity) but for the moves ``(at, source)``
    returned last: the basket at position ``at`` is the one at ``source``.

    The bulk is two stable radix sorts of 16-bit keys (day, then member) when members and
    days fit in 16 bits, else one in-place ``sort`` of an int64 key packing (member, day,
    position) when it fits in 63 bits (much faster than ``argsort`` and the key carries
    the sorted member and day); baskets of the same member and day are then put in timestamp order,
    and equal timestamps in basket_id order, on that (small) subset only.

    ``ts_all`` (optional) are the int64 timestamps of all positions: when (member,
    timestamp) already is in order, only equal timestamps of a member are looked at.
    """
    n = len(member)
    idx_t = index_dtype(n)
    if n == 0:
        return None, member, tsday, (np.zeros(0, dtype=idx_t),) * 2
    d0 = int(tsday.min())
    width_d, width_i = bits(int(tsday.max()) - d0), bits(n - 1)
    if ts_all is not None and _ordered(member, ts_all):  # e.g. read with ORDER BY
        return None, member, tsday, _order_ties(member, ts_all, basket_id, rows)
    ordered = _ordered(member, tsday)
    if ordered:
        order = np.arange(n, dtype=idx_t)
        c, d = member, tsday
    elif int(member.max()) < 1 << 16 and width_d <= 16:
        # two stable radix sorts (numpy's, for 16-bit keys): by day, then by member; the
        # same order as the key below, faster for chunks of up to 65536 members
        packed = member.astype(np.uint32)  # (member, day) in one word: fewer gathers
        packed <<= 16
        packed |= (tsday - d0).astype(np.uint32)
        order = np.argsort(packed.astype(np.uint16), kind="stable")  # the low half: day
        packed = packed[order]
        by_member = np.argsort((packed >> 16).astype(np.uint16), kind="stable")
        order = order[by_member].astype(idx_t)
        packed = packed[by_member]
        c = (packed >> 16).astype(member.dtype)
        d = (packed & 0xFFFF).astype(np.int32)
        d += d0
        del packed, by_member
    elif bits(int(member.max())) + width_d + width_i <= 63:
        key = member.astype(np.int64)
        key <<= width_d
        key += tsday
        key -= d0
        key <<= width_i
        for part in blocks(n):  # positions in the low bits
            key[part] |= np.arange(part.start, part.stop, dtype=np.int64)
        key.sort()
        order = np.empty(n, dtype=idx_t)
        d = np.empty(n, dtype=np.int32)
        c = np.empty(n, dtype=member.dtype)
        for part in blocks(n):
            k = key[part]
            np.bitwise_and(k, (1 << width_i) - 1, out=order[part], casting="unsafe")
            k >>= width_i
            np.bitwise_and(k, (1 << width_d) - 1, out=d[part], casting="unsafe")
            d[part] += d0
            k >>= width_d
            c[part] = k
        del key
    else:  # too wide for one key: sort by (member, day, position)
        order = np.lexsort((tsday, member)).astype(idx_t)
        c, d = member[order], tsday[order]
    moved = _order_within_days(order, c, d, timestamps, per_day, per_second, basket_id, rows)
    if ordered:  # the identity but for a few moves within a day
        return None, c, d, (moved, order[moved])
    return order, c, d, None


def _ordered(member: np.ndarray, tsday: np.ndarray) -> bool:
    """Whether (member, day) (or (member, timestamp)) is already non-decreasing.

    Block by block (stopping at the first block out of order): a step is in order when the
    member rises, or stays and the day does not fall.
    """
    n = len(member)
    for part in blocks(n - 1):
        lo, hi = slice(part.start, part.stop), slice(part.start + 1, part.stop + 1)
        m0, m1 = member[lo], member[hi]
        ok = tsday[hi] >= tsday[lo]
        ok &= m1 == m0
        ok |= m1 > m0
        if not ok.all():
            return False
    return True


def _order_within_days(
    order: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    timestamps: Callable[[np.ndarray], np.ndarray],
    per_day: int,
    per_second: int,
    basket_id: pd.Series,
    rows: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Reorder ``order`` in place within runs of equal (member, day): timestamp, basket_id.

    Returns the positions whose entry changed.
    """
    n = len(order)
    dup = c[1:] == c[:-1]
    dup &= d[1:] == d[:-1]
    if not dup.any():
        return np.zeros(0, dtype=order.dtype)
    in_group = np.zeros(n, dtype=bool)
    in_group[1:] = dup
    in_group[:-1] |= dup
    idx = np.flatnonzero(in_group)
    del in_group
    group_start = np.ones(len(idx), dtype=bool)
    group_start[1:] = ~dup[idx[1:] - 1]
    del dup
    group = np.cumsum(group_start) - 1
    sub = order[idx]
    before = sub.copy()
    ts = timestamps(sub)
    time_of_day = ts - d[idx].astype(np.int64) * per_day  # in [0, per_day)
    width = bits(per_day - 1)
    if per_second > 1 and not (time_of_day % per_second).any():
        time_of_day //= per_second
        width = bits(per_day // per_second - 1)
    changed = False
    if bits(int(group[-1])) + width <= 63:
        key = group << width
        key |= time_of_day
        del time_of_day
        if not (key[1:] >= key[:-1]).all():  # already in order (e.g. ORDER BY): keep it
            perm = np.argsort(key, kind="stable")
            sub, ts, changed = sub[perm], ts[perm], True
        del key
    else:
        perm = np.lexsort((ts, group))
        sub, ts, changed = sub[perm], ts[perm], True
    # equal timestamps of one member: basket_id as text
    tie = np.zeros(len(sub), dtype=bool)
    tie[1:] = (group[1:] == group[:-1]) & (ts[1:] == ts[:-1])
    if tie.any():
        in_tie = tie.copy()
        in_tie[:-1] |= tie[1:]
        at = np.flatnonzero(in_tie)
        tie_group = np.cumsum(~tie)[at]
        ids = basket_id.iloc[rows(sub[at])].astype(str).to_numpy()
        _, id_rank = np.unique(ids, return_inverse=True)
        tie_order = np.lexsort((id_rank, tie_group))
        if (tie_order != np.arange(len(at))).any():
            sub[at] = sub[at][tie_order]
            changed = True
    if not changed:
        return np.zeros(0, dtype=order.dtype)
    order[idx] = sub
    return idx[sub != before].astype(order.dtype)


def _order_ties(
    member: np.ndarray,
    ts: np.ndarray,
    basket_id: pd.Series,
    rows: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Moves ``(at, source)`` putting equal (member, timestamp) runs in basket_id order.

    For baskets already in (member, timestamp) order: the basket at position ``at``
    becomes the one at ``source``. Only the runs of equal timestamps are looked at.
    """
    n = len(member)
    found = []
    for part in blocks(n - 1):  # steps within a member and a timestamp
        lo, hi = slice(part.start, part.stop), slice(part.start + 1, part.stop + 1)
        tie = ts[hi] == ts[lo]
        tie &= member[hi] == member[lo]
        found.append(np.flatnonzero(tie) + part.start)
    tie_at = np.concatenate(found) if found else np.zeros(0, dtype=np.intp)
    idx_t = index_dtype(n)
    if len(tie_at) == 0:
        return (np.zeros(0, dtype=idx_t),) * 2
    at = np.union1d(tie_at, tie_at + 1)  # the baskets of the runs, in order
    tie_group = np.cumsum(~np.isin(at - 1, tie_at))  # a run starts without a tie before it
    ids = basket_id.iloc[rows(at)].astype(str).to_numpy()
    _, id_rank = np.unique(ids, return_inverse=True)
    tie_order = np.lexsort((id_rank, tie_group))
    source = at[tie_order]
    moved = source != at
    return at[moved].astype(idx_t), source[moved].astype(idx_t)


def cents_by_row(
    n_rows: int, n: int, index: Callable[[slice], np.ndarray], cents: np.ndarray
) -> np.ndarray:
    """Exact int64 sums of the integer ``cents`` of n elements by ``index(part)`` row.

    Block by block, float64 bincounts are exact (a block of 2**20 int32 values sums to
    less than 2**51), so the sums do not depend on the order of the elements.
    """
    out = np.zeros(n_rows, dtype=np.int64)
    for part in blocks(n):
        if cents.dtype.itemsize <= 4:
            out += np.bincount(index(part), weights=cents[part], minlength=n_rows).astype(np.int64)
        else:
            np.add.at(out, index(part), cents[part])
    return out


def members_in_order(member: np.ndarray) -> bool:
    """Whether the members (>= 0; -1 not a member, skipped) never fall along the baskets.

    Block by block, stopping at the first fall.
    """
    last = -1
    for part in blocks(len(member)):
        values = member[part]
        if values.min() < 0:
            values = values[values >= 0]
            if len(values) == 0:
                continue
        if values[0] < last or (values[1:] < values[:-1]).any():
            return False
        last = int(values[-1])
    return True
