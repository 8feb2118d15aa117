"""The replay by chunks of members, through any map: exact and independent of the workers.

Members are cut into chunks that depend on the baskets alone (``chunks``); each chunk is
replayed on its own through ``map_`` and the chunks' monthly flows are summed in chunk
order. So a given chunking gives the same result, to the last bit, with the builtin
``map``, the default and thread pools of any size; and every chunking agrees with the
independent reference replay (integers equal, money to 1e-9).
"""

from __future__ import annotations

import datetime as dt
import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_replay_reference import basket_sets, compare, programmes, windows

from loyalty_pilot.simulator import _replay_chunks
from loyalty_pilot.simulator.programme import Programme
from loyalty_pilot.simulator.replay import replay

SPEC = {
    "programme": "parallel",
    "enrolment": {"uptake": 0.8},
    "earn": {
        "points_per_currency": 1.3,
        "welcome_bonus": 50,
        "department_multipliers": {"fresh": 2.0, "wine": 0.5},
    },
    "rewards": [
        {"kind": "cash_voucher", "points": 300, "value": 3.0, "share": 0.6},
        {"kind": "gift", "points": 700, "retail_value": 15.0, "unit_cost": 8.5, "share": 0.4},
        {"kind": "discount", "rate": 0.01},
    ],
    "redemption": {"rate": 0.7, "validity_days": 60},
    "expiry": {"inactivity_days": 120, "validity_years": 1},
    "tiers": [
        {"name": "silver", "min_spend_12m": 0},
        {
            "name": "gold",
            "min_spend_12m": 800,
            "multiplier": 1.25,
            "benefit": {"discount_rate": 0.02, "cost_per_member_year": 12.0},
        },
        {"name": "platinum", "min_spend_12m": 2500, "multiplier": 1.5},
    ],
    "referral": {"bonus_referrer": 100, "bonus_referee": 50, "rate_per_member_year": 0.5},
    "economics": {
        "gross_margin": 0.3,
        "budget_share_of_revenue": 0.02,
        "running_cost_per_member_year": 6.0,
    },
}


def synthetic(n: int = 30_000, customers: int = 700, seed: int = 1) -> pd.DataFrame:
    """Seeded baskets in random order: anonymous ones, returns, equal timestamps."""
    rng = np.random.default_rng(seed)
    weight = rng.gamma(0.8, 1.0, customers)
    customer = rng.choice(customers, size=n, p=weight / weight.sum()).astype(object)
    customer[rng.random(n) < 0.05] = None  # anonymous
    seconds = rng.integers(0, 800, n) * 86_400 + rng.integers(8, 21, n) * 3600
    amount = np.round(rng.gamma(2.0, 22.0, n), 2)
    amount[rng.random(n) < 0.02] *= -1  # returns
    return pd.DataFrame(
        {
            "customer_id": [None if c is None else f"k{c}" for c in customer],
            "basket_id": [f"b{i % 9973}" for i in range(n)],
            "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(seconds, unit="s"),
            "amount": amount,
            "department": rng.choice(["fresh", "dry", "wine"], n),
        }
    )


@pytest.fixture(scope="module")
def baskets() -> pd.DataFrame:
    return synthetic()


def assert_same(one, two) -> None:
    """Equal to the last bit (ledger, members and totals)."""
    pd.testing.assert_frame_equal(one.ledger, two.ledger, check_exact=True)
    pd.testing.assert_frame_equal(one.customers, two.customers, check_exact=True)
    assert one.totals == two.totals


def assert_close(one, two) -> None:
    """Integers and dates equal, money equal to 1e-9 (the reference tests' tolerance)."""
    for a, b in ((one.ledger, two.ledger), (one.customers, two.customers)):
        assert list(a.columns) == list(b.columns)
        for column in a.columns:
            if a[column].dtype.kind == "f":
                np.testing.assert_allclose(a[column], b[column], rtol=1e-9, atol=1e-9)
            else:
                pd.testing.assert_series_equal(a[column], b[column], check_exact=True)


@pytest.mark.parametrize("sample", [False, True])
@pytest.mark.parametrize("chunks", [2, 5])
def test_map_and_thread_pools_give_the_default_result_exactly(baskets, sample, chunks):
    programme = Programme.model_validate(SPEC)
    default = replay(baskets, programme, seed=3, sample=sample, chunks=chunks)
    assert_same(replay(baskets, programme, seed=3, sample=sample, chunks=chunks, map_=map), default)
    for workers in (1, 2, 4):
        with ThreadPoolExecutor(workers) as pool:
            pooled = replay(baskets, programme, seed=3, sample=sample, chunks=chunks, map_=pool.map)
        assert_same(pooled, default)


@pytest.mark.parametrize("sample", [False, True])
def test_chunks_agree_with_one_chunk(baskets, sample):
    """Any chunking: integers (sampled draws included) exact, money to 1e-9."""
    programme = Programme.model_validate(SPEC)
    one = replay(baskets, programme, seed=5, sample=sample, chunks=1)
    for chunks in (2, 3, 8, 10_000):  # more chunks than members: one member a chunk
        assert_close(replay(baskets, programme, seed=5, sample=sample, chunks=chunks), one)


def test_basket_order_does_not_matter(baskets):
    """Random order, member / time order (the workspace's) and a window, chunked."""
    programme = Programme.model_validate(SPEC)
    ordered = baskets.sort_values(["customer_id", "date", "basket_id"], na_position="last")
    kwargs = {"chunks": 4, "start": dt.date(2023, 3, 1), "end": dt.date(2024, 11, 30)}
    assert_same(replay(ordered, programme, **kwargs), replay(baskets, programme, **kwargs))
    identified = baskets.dropna(subset=["customer_id"])
    assert_same(
        replay(ordered.dropna(subset=["customer_id"]), programme, chunks=3),
        replay(identified, programme, chunks=3),
    )


def test_chunk_edges_balance_baskets_and_cover_every_member():
    counts = np.array([5, 1, 1, 1, 10, 2, 2, 2, 2, 2])
    edges = _replay_chunks.chunk_edges(counts, 3)
    assert edges[0] == 0
    assert edges[-1] == len(counts)
    assert (np.diff(edges) > 0).all()
    assert [int(counts[a:b].sum()) for a, b in itertools.pairwise(edges)] == [8, 10, 10]
    assert list(_replay_chunks.chunk_edges(counts, 1)) == [0, 10]
    assert list(_replay_chunks.chunk_edges(np.zeros(0, dtype=int), 4)) == [0, 0]
    assert _replay_chunks.default_chunks(0) == 1
    assert _replay_chunks.default_chunks(3 * _replay_chunks.CHUNK_BASKETS + 1) == 4


@pytest.mark.parametrize("ordered", [False, True])
def test_chunk_rows_do_not_depend_on_the_pieces(ordered):
    """Each chunk's basket positions, ascending, however the grouping is split."""
    rng = np.random.default_rng(2)
    member = rng.integers(-1, 50, 1000).astype(np.int32)  # -1: not a member's basket
    if ordered:
        member.sort()
    counts = np.bincount(member[member >= 0], minlength=50)
    edges = _replay_chunks.chunk_edges(counts, 4)
    expected = [
        np.flatnonzero((member >= lo) & (member < hi)) for lo, hi in itertools.pairwise(edges)
    ]
    for pieces in (1, 3):
        columns = {"member": member, "twice": 2 * np.arange(1000)}
        rows = _replay_chunks.chunk_rows(member, counts, edges, ordered, map, columns, pieces)
        for got, want in zip(rows, expected, strict=True):
            if isinstance(got, _replay_chunks.ChunkRows):
                np.testing.assert_array_equal(got.column("member"), member[want])
                np.testing.assert_array_equal(got.column("twice"), 2 * want)
                got = got.rows()
            np.testing.assert_array_equal(np.arange(1000)[got], want)


def test_default_map_is_builtin_map_for_small_inputs():
    with _replay_chunks.default_map(1000) as map_:
        assert map_ is map


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_chunked_replay_equals_reference(fast, data):
    """The independent reference replay, with members in up to 4 chunks through ``map``."""
    baskets = data.draw(basket_sets(), label="baskets")
    spec = data.draw(programmes(), label="programme")
    kwargs = data.draw(windows(baskets), label="kwargs")
    chunks = data.draw(st.integers(2, 4), label="chunks")
    compare(
        lambda frame, programme, **kw: fast(frame, programme, map_=map, chunks=chunks, **kw),
        baskets,
        spec,
        kwargs,
    )


def test_chunks_must_be_positive(baskets):
    with pytest.raises(ValueError, match="chunks == 0, must be >= 1"):
        replay(baskets, Programme.model_validate(SPEC), chunks=0)


def test_default_map_is_a_thread_pool_for_large_inputs(monkeypatch):
    monkeypatch.setattr(_replay_chunks.os, "cpu_count", lambda: 8)
    with _replay_chunks.default_map(_replay_chunks.PARALLEL_BASKETS) as map_:
        assert map_ is not map
        assert list(map_(abs, [-1, 2, -3])) == [1, 2, 3]


@pytest.mark.parametrize("sample", [False, True])
def test_default_pool_and_small_pieces_give_the_same_result(baskets, monkeypatch, sample):
    """The default thread pool (forced on small data) and the baskets grouped by chunk in
    many small pieces: the result of builtin ``map`` in one piece, to the last bit."""
    programme = Programme.model_validate(SPEC)
    serial = replay(baskets, programme, seed=7, sample=sample, chunks=6, map_=map)
    monkeypatch.setattr(_replay_chunks, "PARALLEL_BASKETS", 0)
    monkeypatch.setattr(_replay_chunks, "PIECE_BASKETS", 997)
    monkeypatch.setattr(_replay_chunks.os, "cpu_count", lambda: 2)
    assert_same(replay(baskets, programme, seed=7, sample=sample, chunks=6), serial)


@pytest.mark.parametrize("chunks", [1, 4])
def test_a_separate_timestamp_column_orders_like_timestamped_dates(baskets, chunks):
    """Dates at midnight and the time in ``ts``: the replay of timestamped dates, in
    random and in member / time order."""
    programme = Programme.model_validate(SPEC)
    split = baskets.assign(ts=baskets["date"], date=baskets["date"].dt.normalize())
    expected = replay(baskets, programme, chunks=chunks)
    ordered = split.sort_values(["customer_id", "ts", "basket_id"], na_position="last")
    for frame in (split, ordered):
        assert_same(replay(frame, programme, chunks=chunks), expected)
