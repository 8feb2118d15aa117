"""Sufficient statistics: numpy, pandas, chunked and SQL aggregation give the same sums."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments.sufficient import (
    FIELDS,
    SufficientStats,
    aggregate,
    aggregate_frame,
    combine,
    stats_from_rows,
    sufficient_sql,
)

REL = 1e-12


def make_rows(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "cash", "gift"], size=n)
    pre = rng.gamma(2.0, 25.0, n)
    baskets = rng.poisson(3.0, n) + 1
    revenue = 0.8 * pre + rng.normal(0, 20, n) + 5 * (arm == "cash")
    return pd.DataFrame({"arm": arm, "revenue": revenue, "baskets": baskets, "pre": pre})


def aggregate_all(frame: pd.DataFrame) -> dict:
    return aggregate_frame(
        frame, arm="arm", outcome="revenue", denominator="baskets", covariate="pre"
    )


def direct(frame: pd.DataFrame, label: str) -> dict[str, float]:
    """Each field by plain numpy on the arm's rows."""
    part = frame[frame["arm"] == label]
    y, x, c = (part[k].to_numpy(dtype=float) for k in ("revenue", "baskets", "pre"))
    return {
        "n": len(part), "sum_y": y.sum(), "sum_y2": (y * y).sum(),
        "sum_x": x.sum(), "sum_x2": (x * x).sum(), "sum_xy": (x * y).sum(),
        "sum_c": c.sum(), "sum_c2": (c * c).sum(), "sum_yc": (y * c).sum(),
    }  # fmt: skip


def assert_same(stats: SufficientStats, expected: dict[str, float], rel: float = REL) -> None:
    for name in FIELDS:
        assert getattr(stats, name) == pytest.approx(expected[name], rel=rel), name


def test_aggregate_frame_matches_numpy_per_arm():
    frame = make_rows()
    stats = aggregate_all(frame)
    assert list(stats) == ["cash", "control", "gift"]
    for label, s in stats.items():
        assert_same(s, direct(frame, label))


def test_moments_match_numpy():
    frame = make_rows()
    s = aggregate_all(frame)["gift"]
    part = frame[frame["arm"] == "gift"]
    assert s.mean_y == pytest.approx(part["revenue"].mean(), rel=1e-12)
    assert s.var_y == pytest.approx(part["revenue"].var(ddof=1), rel=1e-10)
    assert s.var_x == pytest.approx(part["baskets"].var(ddof=1), rel=1e-10)
    assert s.var_c == pytest.approx(part["pre"].var(ddof=1), rel=1e-10)
    assert s.cov_xy == pytest.approx(np.cov(part["baskets"], part["revenue"])[0, 1], rel=1e-10)
    assert s.cov_yc == pytest.approx(np.cov(part["revenue"], part["pre"])[0, 1], rel=1e-10)


def test_integer_codes_fast_path_and_labels():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 3, 1_000).astype(np.int8)
    y = rng.normal(size=1_000)
    stats = aggregate(codes, y)
    assert list(stats) == [0, 1, 2]
    for k in range(3):
        assert stats[k].n == int((codes == k).sum())
        assert stats[k].sum_y == pytest.approx(y[codes == k].sum(), rel=1e-12)
        assert not stats[k].has_ratio
        assert not stats[k].has_covariate
    # negative labels and categoricals are factorized; an unused category is left out
    assert list(aggregate(codes.astype(int) - 1, y)) == [-1, 0, 1]
    cat = pd.Categorical(np.where(codes == 0, "b", "a"), categories=["b", "a", "z"])
    assert list(aggregate(cat, y)) == ["b", "a"]


def test_chunks_add_up_to_the_whole():
    frame = make_rows(3_001)
    whole = aggregate_all(frame)
    parts = [
        aggregate_all(chunk)
        for chunk in (frame.iloc[i : i + 450] for i in range(0, len(frame), 450))
    ]
    merged = combine(parts)
    assert set(merged) == set(whole)
    for label in whole:
        assert_same(merged[label], whole[label].to_dict())


def test_sql_in_duckdb_matches_numpy():
    frame = make_rows().rename(columns={"revenue": 'rev "eur"'})
    frame.loc[3, "pre"] = np.nan  # a NULL in a used column: the row is left out
    con = duckdb.connect()
    con.register("customers", frame)
    sql = sufficient_sql(
        "customers", arm="arm", outcome='rev "eur"', denominator="baskets", covariate="pre"
    )
    rows = con.execute(sql).df()
    assert list(rows.columns) == ["arm", *FIELDS]
    stats = stats_from_rows(rows)
    kept = frame.drop(index=3).rename(columns={'rev "eur"': "revenue"})
    for label, s in stats.items():
        assert_same(s, direct(kept, label), rel=1e-9)


def test_sql_without_optional_groups():
    sql = sufficient_sql("read_parquet('c.parquet')", arm="arm", outcome="retained")
    assert "sum_x" not in sql
    assert "sum_c" not in sql
    assert "FROM read_parquet('c.parquet')" in sql
    con = duckdb.connect()
    frame = pd.DataFrame({"arm": ["a", "a", "b"], "retained": [1, 0, 1]})
    con.register("t", frame)
    stats = stats_from_rows(con.execute(sufficient_sql("t", arm="arm", outcome="retained")).df())
    assert stats["a"] == SufficientStats(2, 1.0, 1.0)
    assert stats["b"] == SufficientStats(1, 1.0, 1.0)


def test_stats_from_rows_adds_partial_rows():
    rows = [
        {"arm": "a", "n": 2, "sum_y": 3.0, "sum_y2": 5.0},
        {"arm": "a", "n": 1, "sum_y": 1.0, "sum_y2": 1.0},
    ]
    assert stats_from_rows(rows) == {"a": SufficientStats(3, 4.0, 6.0)}


def test_add_and_invalid_fields():
    a = SufficientStats(2, 3.0, 5.0, sum_c=1.0, sum_c2=1.0, sum_yc=2.0)
    b = SufficientStats(1, 1.0, 1.0, sum_c=2.0, sum_c2=4.0, sum_yc=2.0)
    assert a + b == SufficientStats(3, 4.0, 6.0, sum_c=3.0, sum_c2=5.0, sum_yc=4.0)
    with pytest.raises(ValueError, match="different fields"):
        a + SufficientStats(1, 1.0, 1.0)
    with pytest.raises(ValueError, match="together"):
        SufficientStats(1, 1.0, 1.0, sum_x=1.0)
    with pytest.raises(ValueError, match="sum_x was not aggregated"):
        _ = SufficientStats(2, 1.0, 1.0).var_x
    with pytest.raises(ValueError, match="shape"):
        aggregate(np.zeros(3, int), np.zeros(2))
    with pytest.raises(ValueError, match="missing"):
        aggregate(np.array(["a", None], dtype=object), np.zeros(2))
    with pytest.raises(ValueError, match="'nope'"):
        aggregate_frame(make_rows(10), arm="arm", outcome="nope")
