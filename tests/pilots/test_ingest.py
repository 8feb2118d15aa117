"""Ingest: every rejection reason, line numbers, atomicity, idempotency, CSV and Parquet."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pandas as pd
import pytest

from loyalty_pilot.pilots import ingest as ingest_module
from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.ingest import ingest, scan
from loyalty_pilot.pilots.workspace import open_workspace

HEADER = "basket_id,customer_id,store_id,date,amount,margin,items\n"
STORES = (
    "store_id,region,format,size_m2,opened\nS1,north,hyper,5000,2010-03-01\nS2,south,proxi,400,\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def counts(ws) -> tuple[int, int, int]:
    con = ws.connect()
    try:
        return tuple(
            con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("baskets", "stores", "ingests")
        )
    finally:
        con.close()


def rejects(result) -> dict[int, str]:
    with open(result.rejects_file, newline="", encoding="utf-8") as handle:
        return {int(row["line"]): row["reason"] for row in csv.DictReader(handle)}


@pytest.fixture
def ws(tmp_path):
    workspace = open_workspace(tmp_path / "ws")
    ingest(workspace, stores=write(tmp_path / "stores.csv", STORES))
    return workspace


# Each line of this file carries one rejection reason (or none); line numbers are physical.
MIXED = (
    HEADER
    + "B1,C1,S1,2025-01-06,10.50,3.1,2\n"  # 2 good
    + ",C1,S1,2025-01-06,10,,\n"  # 3 empty basket_id
    + "B3,C1,,2025-01-06,10,,\n"  # 4 empty store_id
    + "B4,C1,S1,,10,,\n"  # 5 empty date
    + "B5,C1,S1,2025-02-30,10,,\n"  # 6 unparseable date
    + "B6,C1,S1,2025-01-06,,,\n"  # 7 empty amount
    + "B7,C1,S1,2025-01-06,ten,,\n"  # 8 non-numeric amount
    + "B8,C1,S1,2025-01-06,inf,,\n"  # 9 non-finite amount
    + "B9,C1,S1,2025-01-06,10,abc,\n"  # 10 non-numeric margin
    + "B10,C1,S1,2025-01-06,10,,2.5\n"  # 11 non-integer items
    + "B1,C2,S1,2025-01-07,11,,\n"  # 12 duplicate of line 2
    + "B12,C1,S9,2025-01-06,10,,\n"  # 13 unknown store
    + "B13,C1,S1,2025-01-06,10,,,extra\n"  # 14 too many columns
    + "B14,C1\n"  # 15 missing columns
    + "B15,,S2,2025-01-08 18:30:00,25,,\n"  # 16 good, anonymous
    + "B16,C3,S2,2025-01-09,-7.25,,\n"  # 17 good, a return
    + '"B17",C3,S2,2025-01-10T09:15:00,"12,5",,1\n'  # 18 good, decimal comma
)
EXPECTED = {
    3: "empty basket_id",
    4: "empty store_id",
    5: "empty date",
    6: "unparseable date '2025-02-30'",
    7: "empty amount",
    8: "non-numeric amount 'ten'",
    9: "non-numeric amount 'inf'",
    10: "non-numeric margin 'abc'",
    11: "non-integer items '2.5'",
    12: "duplicate basket_id (first at line 2)",
    13: "unknown store_id 'S9'",
    14: "too many columns",
    15: "missing columns",
}


def test_each_rejection_reason_with_its_line(ws, tmp_path):
    (result,) = ingest(ws, baskets=write(tmp_path / "mixed.csv", MIXED))
    assert (result.loaded, result.rejected, result.rows_read) == (4, 13, 17)
    assert (result.anonymous, result.returns) == (1, 1)
    assert rejects(result) == EXPECTED
    con = ws.connect()
    got = con.execute(
        "SELECT basket_id, customer_id, store_id, CAST(ts AS VARCHAR), amount, margin, items "
        "FROM baskets ORDER BY basket_id"
    ).fetchall()
    assert got == [
        ("B1", "C1", "S1", "2025-01-06 00:00:00", 10.5, 3.1, 2),
        ("B15", None, "S2", "2025-01-08 18:30:00", 25.0, None, None),
        ("B16", "C3", "S2", "2025-01-09 00:00:00", -7.25, None, None),
        ("B17", "C3", "S2", "2025-01-10 09:15:00", 12.5, None, 1),
    ]


def test_already_loaded_basket_ids_and_a_changed_file(ws, tmp_path):
    ingest(ws, baskets=write(tmp_path / "a.csv", HEADER + "B1,C1,S1,2025-01-06,10,,\n"))
    (result,) = ingest(
        ws,
        baskets=write(
            tmp_path / "b.csv", HEADER + "B1,C1,S1,2025-01-06,10,,\nB2,C1,S1,2025-01-07,5,,\n"
        ),
    )
    assert (result.loaded, result.rejected) == (1, 1)
    assert rejects(result) == {2: "basket_id already loaded"}
    assert counts(ws)[0] == 2


def test_reject_duplicate_keeps_first_valid_occurrence(ws, tmp_path):
    text = HEADER + "B1,C1,S1,bad,10,,\nB1,C1,S1,2025-01-06,10,,\nB1,C2,S1,2025-01-06,10,,\n"
    (result,) = ingest(ws, baskets=write(tmp_path / "d.csv", text))
    assert result.loaded == 1
    assert rejects(result) == {
        2: "unparseable date 'bad'",
        4: "duplicate basket_id (first at line 3)",
    }


def test_store_rules(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    text = (
        "store_id,region,size_m2,opened\nS1,north,100,2020-01-01\nS2,,100,\nS1,south,1,\n"
        "S3,east,-5,\nS4,east,big,\nS5,west,10,yesterday\nS6,west,,\n"
    )
    (result,) = ingest(ws, stores=write(tmp_path / "s.csv", text))
    assert (result.loaded, result.rejected) == (2, 5)
    assert rejects(result) == {
        3: "empty region",
        4: "duplicate store_id (first at line 2)",
        5: "negative size_m2 '-5'",
        6: "non-numeric size_m2 'big'",
        7: "unparseable opened date 'yesterday'",
    }
    (again,) = ingest(ws, stores=write(tmp_path / "s2.csv", "store_id,region\nS1,north\nS7,x\n"))
    assert rejects(again) == {2: "store_id already loaded"}


def test_missing_required_column_exits_without_change(ws, tmp_path):
    before = counts(ws)
    bad = write(tmp_path / "bad.csv", "basket_id,customer_id,store_id,amount\nB1,C1,S1,10\n")
    with pytest.raises(UserError, match=r"bad\.csv: missing required column 'date'"):
        ingest(ws, baskets=bad)
    assert counts(ws) == before


def test_nothing_loadable_is_an_error_but_lists_the_rejects(ws, tmp_path):
    before = counts(ws)
    bad = write(tmp_path / "allbad.csv", HEADER + "B1,C1,S1,nope,10,,\nB2,C1,S9,2025-01-01,1,,\n")
    with pytest.raises(UserError, match=r"nothing loaded from .*allbad\.csv: 2 of 2 rows rejected"):
        ingest(ws, baskets=bad)
    assert counts(ws) == before
    files = list((ws.path / "rejects").glob("allbad-*.rejects.csv"))
    assert len(files) == 1
    assert "unknown store_id 'S9'" in files[0].read_text()


def test_stores_and_baskets_are_one_transaction(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    stores = write(tmp_path / "stores.csv", STORES)
    bad = write(tmp_path / "b.csv", "basket_id,store_id\nB1,S1\n")
    with pytest.raises(UserError, match="missing required columns"):
        ingest(ws, baskets=bad, stores=stores)
    assert counts(ws) == (0, 0, 0)


def test_failure_midway_leaves_the_workspace_unchanged(ws, tmp_path, monkeypatch):
    before = counts(ws)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # _write_rejects runs after the good rows were inserted: the insert must be undone.
    monkeypatch.setattr(ingest_module, "_write_rejects", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(ws, baskets=write(tmp_path / "m.csv", MIXED))
    assert counts(ws) == before
    assert not list((ws.path / "rejects").glob("m-*"))
    monkeypatch.undo()
    (result,) = ingest(ws, baskets=tmp_path / "m.csv")  # not recorded as loaded
    assert result.loaded == 4


def test_same_file_twice_loads_nothing_new(ws, tmp_path):
    path = write(tmp_path / "m.csv", MIXED)
    (first,) = ingest(ws, baskets=path)
    before = counts(ws)
    (second,) = ingest(ws, baskets=path)
    assert second.already_loaded
    assert second.loaded == 0
    assert counts(ws) == before
    copy = write(tmp_path / "renamed.csv", MIXED)  # same bytes under another name
    (third,) = ingest(ws, baskets=copy)
    assert third.already_loaded
    assert third.fingerprint == first.fingerprint
    assert counts(ws) == before


def test_parquet_path_with_typed_columns(ws, tmp_path):
    frame = pd.DataFrame(
        {
            "basket_id": ["P1", "P2", "P3", "P1"],
            "customer_id": ["007", None, "008", "009"],
            "store_id": ["S1", "S2", "S1", "S1"],
            "date": pd.to_datetime(
                ["2025-03-01 10:00", "2025-03-02", "2025-03-03", "2025-03-04"], format="ISO8601"
            ),
            "amount": [12.345, -3.0, float("nan"), 4.0],
            "items": [1, 2, 3, 4],
        }
    )
    path = tmp_path / "b.parquet"
    frame.to_parquet(path, index=False)
    (result,) = ingest(ws, baskets=path)
    assert (result.loaded, result.rejected, result.anonymous, result.returns) == (2, 2, 1, 1)
    # Parquet rows are numbered from 1.
    assert rejects(result) == {3: "empty amount", 4: "duplicate basket_id (first at line 1)"}
    con = ws.connect()
    assert con.execute(
        "SELECT customer_id, amount FROM baskets WHERE basket_id = 'P1'"
    ).fetchone() == (
        "007",
        12.345,
    )


def test_third_party_csv_dialect(ws, tmp_path):
    """Semicolons, a BOM, CRLF, capitalised names in another order, extra columns, quotes."""
    text = (
        "\ufeffStore_ID;Date;Amount;Basket_ID;Customer_ID;Cashier\r\n"
        'S1;2025-05-01 08:00:00;"1 234";T-1;00042;Ann\r\n'
        "S2;2025-05-02;19,90;T-2;;Bob\r\n"
        "S1;2025-05-03;5.5;T-3;00042;\r\n"
    )
    path = tmp_path / "pos_export.csv"
    path.write_bytes(text.encode("utf-8"))
    (result,) = ingest(ws, baskets=path)
    assert (result.loaded, result.rejected, result.anonymous) == (2, 1, 1)
    assert rejects(result) == {2: "non-numeric amount '1 234'"}
    assert result.ignored_columns == ("Cashier",)
    con = ws.connect()
    rows = con.execute("SELECT basket_id, customer_id, amount FROM baskets ORDER BY 1").fetchall()
    assert rows == [("T-2", None, 19.9), ("T-3", "00042", 5.5)]


def test_blank_lines_keep_line_numbers_right(ws, tmp_path):
    text = (
        HEADER
        + "B1,C1,S1,2025-01-06,1,,\n\nB2,C1,S1,2025-01-06,1,,\nB3,C1\n\n\nB4,C1,S9,2025-01-06,1,,\n"
    )
    path = write(tmp_path / "blank.csv", text)
    assert scan(path)[1] == [3, 6, 7]
    (result,) = ingest(ws, baskets=path)
    assert rejects(result) == {5: "missing columns", 8: "unknown store_id 'S9'"}


def test_scan_finds_blank_lines_across_chunks(tmp_path):
    lines = ["h"] + ["x" * (i % 7) for i in range(300)]
    text = "\r\n".join(lines) + "\r\n"
    path = tmp_path / "c.csv"
    path.write_bytes(text.encode())
    expected = [n + 1 for n, line in enumerate(lines) if line == ""]
    for chunk in (1, 2, 3, 5, 64, 1 << 20):
        assert scan(path, chunk=chunk)[1] == expected


def test_gzip_csv(ws, tmp_path):
    path = tmp_path / "b.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(HEADER + "G1,C1,S1,2025-01-06,10,,\nG2,C1,S1,2025-01-06,x,,\n")
    (result,) = ingest(ws, baskets=path)
    assert (result.loaded, result.rejected) == (1, 1)
    assert rejects(result) == {3: "non-numeric amount 'x'"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("empty.csv", "", "the file is empty"),
        ("data.xlsx", "x", "unknown file type"),
        ("header_only.csv", HEADER, "nothing loaded"),
    ],
)
def test_unreadable_files(ws, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        ingest(ws, baskets=path)


def test_every_row_is_loaded_or_rejected_on_a_larger_file(ws, tmp_path):
    import numpy as np

    rng = np.random.default_rng(3)
    n = 20_000
    amount = rng.normal(30, 20, n).round(2).astype(str)
    bad = rng.random(n) < 0.01
    amount[bad] = "n/a"
    ids = np.array([f"B{i}" for i in range(n)])
    dup = rng.choice(n, 50, replace=False)
    ids[dup] = "B0"
    frame = pd.DataFrame(
        {
            "basket_id": ids,
            "customer_id": "C1",
            "store_id": "S1",
            "date": "2025-01-06",
            "amount": amount,
        }
    )
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    (result,) = ingest(ws, baskets=path)
    assert result.rows_read == n
    assert result.loaded + result.rejected == n
    table = pd.read_csv(result.rejects_file, dtype=str)
    lines = table["line"].astype(int).to_numpy()
    # Each rejected line points at the row it names.
    assert (frame["basket_id"].to_numpy()[lines - 2] == table["basket_id"].to_numpy()).all()
    b0_rows = np.flatnonzero(ids == "B0")
    valid_b0 = b0_rows[~bad[b0_rows]]
    expected_bad = set(np.flatnonzero(bad)) | set(valid_b0[1:])
    assert set(lines - 2) == expected_bad


def test_a_file_larger_than_the_memory_limit_loads(tmp_path, monkeypatch):
    """DuckDB spills to disk: a CSV bigger than the workspace's memory cap still loads."""
    import numpy as np

    n = 1_200_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "basket_id": np.char.add("B", np.arange(n).astype(str)),
            "customer_id": np.char.add("customer-", rng.integers(0, 50_000, n).astype(str)),
            "store_id": "S1",
            "date": "2025-01-06 12:00:00",
            "amount": rng.gamma(2.0, 20.0, n).round(2),
            "note": "x" * 40,
        }
    )
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    assert path.stat().st_size > 100e6
    monkeypatch.setenv("LOYALTY_PILOT_MEMORY_LIMIT", "96MB")
    ws = open_workspace(tmp_path / "ws")
    con = ws.connect()
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit in ("91.5 MiB", "96.0 MB")
    con.close()
    (result,) = ingest(ws, baskets=path)
    assert (result.loaded, result.rejected) == (n, 0)


def test_optional_department_is_kept(ws, tmp_path):
    text = (
        "basket_id,customer_id,store_id,date,amount,department\n"
        "D1,C1,S1,2025-01-06,5,fresh\nD2,C1,S1,2025-01-06,5,\n"
    )
    (result,) = ingest(ws, baskets=write(tmp_path / "d.csv", text))
    assert result.ignored_columns == ()
    con = ws.connect()
    rows = con.execute("SELECT basket_id, department FROM baskets ORDER BY 1").fetchall()
    assert rows == [("D1", "fresh"), ("D2", None)]
