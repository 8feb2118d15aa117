"""Members replayed in chunks for :mod:`loyalty_pilot.simulator.replay`, concurrently.

Members are independent in the replay but for the monthly ledger, which sums over them.
The members (numbered in customer_id order) are cut into contiguous chunks of about
``CHUNK_BASKETS`` baskets; each chunk is ordered (R3) and replayed (R4-R10) on its own,
and leaves only its monthly flows, its members' columns and its issuing baskets. The
chunks depend on the baskets alone, never on the workers: the flows are summed over the
chunks in chunk order and the redemption draws (R9, sampled mode) are made in chunk
order, so the result is the same with any ``map_`` and any number of workers. ``map_``
is any callable ``map_(function, items)`` returning the results in the items' order:
builtin ``map``, ``ThreadPoolExecutor.map``, or for Dask
``lambda f, xs: client.gather(client.map(f, xs))`` (a Dask client's ``map`` alone
returns futures).
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_pilot.simulator import _replay_kernels as _k
from loyalty_pilot.simulator._replay_output import _customer_columns, _issued, _ledger_flows
from loyalty_pilot.simulator._replay_rules import _member_events
from loyalty_pilot.simulator.programme import Programme

CHUNK_BASKETS = 1 << 19  # baskets per chunk of members (about)
PIECE_BASKETS = 1 << 18  # baskets per piece when grouping baskets by chunk (in cache)
PARALLEL_BASKETS = 2_000_000  # from this many members' baskets, threads by default


@dataclass(frozen=True, eq=False)
class Baskets:
    """The columns every chunk reads (by basket position; never written)."""

    programme: Programme
    member: np.ndarray  # member number (int32) of each basket, -1: not a member's
    day: np.ndarray  # int32 day of the date column
    cents: np.ndarray
    dept: np.ndarray | None
    ts_raw: np.ndarray | None  # int64 timestamps when not the date column itself
    ts_source: np.ndarray  # int64 timestamps (the date column's when ts_raw is None)
    per_day: int
    per_second: int
    basket_id: pd.Series
    member_choice: np.ndarray
    s_day: int
    e_day: int
    months: dict[str, Any]
    ordered: bool  # the members' baskets come in member order


def chunk_edges(counts: np.ndarray, chunks: int) -> np.ndarray:
    """Member edges ``[0, ..., m]`` of up to ``chunks`` contiguous chunks of about equal
    basket counts (``counts``: baskets per member); empty chunks are dropped."""
    m = len(counts)
    if chunks <= 1 or m == 0:
        return np.array([0, m])
    cum = np.cumsum(counts)
    targets = cum[-1] * np.arange(1, chunks, dtype=np.int64) // chunks
    i = np.searchsorted(cum, targets, side="left")  # the member reaching each target
    below = np.where(i > 0, cum[np.maximum(i - 1, 0)], 0)  # baskets before member i
    inner = np.where(targets - below <= cum[i] - targets, i, i + 1)  # the nearer cut
    return np.unique(np.concatenate(([0], np.minimum(inner, m), [m])))


def default_chunks(n: int) -> int:
    """Chunks of about ``CHUNK_BASKETS`` baskets (a function of the baskets alone)."""
    return max(1, -(-n // CHUNK_BASKETS))


@contextmanager
def default_map(n: int) -> Iterator[Callable[..., Any]]:
    """A thread pool's ``map`` (up to 2 workers) for large inputs, else builtin ``map``.

    numpy releases the GIL in sorts, gathers, cumulative sums and ufuncs, so threads
    share the chunks without copying the columns.
    """
    workers = min(2, os.cpu_count() or 1)
    if n < PARALLEL_BASKETS or workers < 2:
        yield map
        return
    with ThreadPoolExecutor(workers) as pool:
        yield pool.map


def chunk_rows(
    member: np.ndarray,
    counts: np.ndarray,
    edges: np.ndarray,
    ordered: bool,
    map_: Callable[..., Any] = map,
    columns: dict[str, np.ndarray | None] | None = None,
    pieces: int | None = None,
) -> list[slice | np.ndarray | ChunkRows]:
    """Basket positions of each chunk of members, ascending (a slice when contiguous).

    Baskets in member order: a chunk is a run of the members' baskets. Otherwise each
    basket's chunk is looked up and the baskets are grouped by chunk with a stable
    counting sort (numpy's radix sort of small integers) in pieces of ``PIECE_BASKETS``
    through ``map_``, the ``columns`` (name: per-basket array) gathered along within each
    piece, where they stay in cache; each chunk joins its parts of the pieces
    (``ChunkRows``). The positions do not depend on the pieces.
    """
    cum = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    bounds = cum[edges]
    n = len(member)
    k = len(edges) - 1
    every = n == int(bounds[-1])  # every basket is a member's
    if ordered and every:
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    idx_t = _k.index_dtype(n)
    if ordered:
        sel = np.flatnonzero(member >= 0).astype(idx_t)
        return [sel[a:b] for a, b in itertools.pairwise(bounds)]
    chunk_t = np.int8 if k < 127 else np.int16 if k < 32767 else np.int32
    of_member = np.full(len(counts) + 1, k, dtype=chunk_t)  # last slot: member -1
    of_member[:-1] = np.repeat(np.arange(k, dtype=chunk_t), np.diff(edges))
    n_pieces = pieces or max(1, -(-n // PIECE_BASKETS))
    cuts = [n * i // n_pieces for i in range(n_pieces + 1)]
    columns = {name: c for name, c in (columns or {}).items() if c is not None}
    group = functools.partial(_group, member, of_member, k, columns)
    grouped = list(map_(group, [slice(a, b) for a, b in itertools.pairwise(cuts)]))
    return [ChunkRows(grouped, j) for j in range(k)]


def _group(
    member: np.ndarray,
    of_member: np.ndarray,
    k: int,
    columns: dict[str, np.ndarray],
    piece: slice,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A piece of the baskets grouped by chunk (in basket order within each): where each
    chunk's group starts (``k + 2`` bounds, the last group not members'), the positions
    (``"rows"``) and the ``columns`` in that order."""
    which = np.take(of_member, member[piece], mode="wrap")  # member -1: the last slot
    order = np.argsort(which, kind="stable").astype(np.int32)
    bounds = np.zeros(k + 2, dtype=np.int64)
    np.cumsum(np.bincount(which, minlength=k + 1), out=bounds[1:])
    order = order[: bounds[k]]  # members' baskets only
    rows = order.astype(_k.index_dtype(piece.stop))
    rows += piece.start
    grouped = {name: column[piece][order] for name, column in columns.items()}
    grouped["rows"] = rows
    return bounds, grouped


@dataclass(frozen=True, eq=False)
class ChunkRows:
    """The baskets of chunk ``j``: its groups in every piece of the baskets, joined."""

    pieces: list[tuple[np.ndarray, dict[str, np.ndarray]]]
    j: int

    def column(self, name: str) -> np.ndarray:
        j = self.j
        return np.concatenate([grouped[name][b[j] : b[j + 1]] for b, grouped in self.pieces])

    def rows(self) -> np.ndarray:
        return self.column("rows")


def replay_chunk(data: Baskets, chunk: tuple[int, int, Any]) -> dict[str, Any]:
    """Order (R3) and replay (R4-R10) the members ``lo..hi-1`` on their baskets ``rows``.

    Returns the chunk's monthly flows, its members' columns and its issuing baskets.
    """
    lo, hi, rows = chunk
    if isinstance(rows, ChunkRows):  # grouped with the columns
        take = rows.column
        rows = rows.rows()
    else:

        def take(name: str) -> np.ndarray:
            return getattr(data, name)[rows]

    view = isinstance(rows, slice)  # slices of the shared columns: copy before writing

    member = np.subtract(take("member"), np.int32(lo), dtype=np.int32)  # from 0
    if data.ts_raw is None:
        tsday = take("day")
    else:
        tsday = np.floor_divide(take("ts_raw"), data.per_day).astype(np.int32)

    def rows_of(positions: np.ndarray) -> np.ndarray:
        return positions + rows.start if view else rows[positions]

    def timestamps(positions: np.ndarray) -> np.ndarray:
        return data.ts_source[rows_of(positions)]

    order, c, d, moved = _k.member_time_order(
        member, tsday, timestamps, data.per_day, data.per_second, data.basket_id, rows_of,
        ts_all=data.ts_source[rows] if data.ordered else None,
    )  # fmt: skip
    del member
    cents = take("cents")
    dept = None if data.dept is None else take("dept")
    if order is not None:
        day = d if data.ts_raw is None else take("day")[order]
        cents = cents[order]
        dept = None if dept is None else dept[order]
    else:  # in order but for the moves (at, source) within a (member, timestamp day)
        at, source = moved
        day = d if data.ts_raw is None else take("day")  # a move keeps the timestamp day
        if len(at):
            cents = cents.copy() if view else cents
            cents[at] = cents[source]
            if data.ts_raw is not None:
                day = day.copy() if view else day
                day[at] = day[source]
            if dept is not None:
                dept = dept.copy() if view else dept
                dept[at] = dept[source]
    del order, d, tsday
    parts = _member_events(
        data.programme, c, day, cents, dept, data.member_choice[lo:hi], data.s_day,
        data.e_day, data.months,
    )  # fmt: skip
    return {
        "flows": _ledger_flows(data.programme, parts, data.months),
        "columns": _customer_columns(data.programme, parts),
        "issued": _issued(parts),
    }


def replay_chunks(
    data: Baskets, rows: list[Any], edges: np.ndarray, map_: Callable[..., Any]
) -> Iterator[dict[str, Any]]:
    """``replay_chunk`` of every chunk through ``map_``, results in chunk order."""
    chunks = [(int(lo), int(hi), r) for lo, hi, r in zip(edges[:-1], edges[1:], rows, strict=True)]
    return map_(functools.partial(replay_chunk, data), chunks)


def add_in_order(total: dict[str, np.ndarray] | None, flows: dict[str, np.ndarray]) -> dict:
    """``total + flows`` key by key (the first chunk's flows are taken as they are)."""
    if total is None:
        return dict(flows)
    return {key: total[key] + value for key, value in flows.items()}
