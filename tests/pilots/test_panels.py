import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.panels import (
    chain_summary,
    customer_rfm,
    region_week_panel,
    store_week_panel,
)
from loyalty_pilot.pilots.workspace import open_workspace
from loyalty_pilot.simulator.rfm import SEGMENTS, score_rfm

STORES = pd.DataFrame(
    {
        "store_id": ["S1", "S2", "S3", "S4", "S5"],
        "region": ["north", "north", "south", "south", "east"],  # S5: no baskets at all
    }
)
FIRST_MONDAY = date(2025, 1, 6)
EMPTY_WEEK = date(2025, 2, 3)  # no basket anywhere that week


def connect(tmp_path):
    return open_workspace(tmp_path / "ws").connect()


def insert(con, stores: pd.DataFrame | None, baskets: pd.DataFrame | None) -> None:
    if stores is not None:
        con.register("src_stores", stores)
        con.execute("INSERT INTO stores (store_id, region) SELECT store_id, region FROM src_stores")
        con.unregister("src_stores")
    if baskets is not None:
        con.register("src_baskets", baskets)
        con.execute(
            """INSERT INTO baskets (basket_id, customer_id, store_id, ts, date, amount)
               SELECT basket_id, customer_id, store_id, CAST(date AS TIMESTAMP),
                      CAST(date AS DATE), amount
               FROM src_baskets"""
        )
        con.unregister("src_baskets")


def basket_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows of (customer_id or None, store_id, date, amount)."""
    frame = pd.DataFrame(rows, columns=["customer_id", "store_id", "date", "amount"], dtype=object)
    frame["basket_id"] = [f"B{i:05d}" for i in range(len(frame))]
    frame["date"] = pd.to_datetime(frame["date"])
    frame["amount"] = frame["amount"].astype(float)
    return frame


def random_baskets(seed: int = 42, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = [FIRST_MONDAY + timedelta(days=d) for d in range(84)]
    days = [d for d in days if not EMPTY_WEEK <= d < EMPTY_WEEK + timedelta(days=7)]
    customers = [f"C{i:02d}" for i in range(25)]
    rows = []
    for _ in range(n):
        anonymous = rng.random() < 0.3
        customer = None if anonymous else customers[rng.integers(len(customers))]
        store = ["S1", "S2", "S3", "S4", "S9"][rng.integers(5)]  # S9: not in stores
        day = days[rng.integers(len(days))]
        amount = round(float(rng.gamma(2.0, 20.0)), 2)
        if rng.random() < 0.1:
            amount = -amount
        rows.append((customer, store, day, amount))
    # the same customer in two stores of one region in one week
    rows += [("C00", "S1", date(2025, 1, 7), 10.0), ("C00", "S2", date(2025, 1, 8), 12.0)]
    rows.append(("C01", "S3", date(2025, 1, 9), 0.0))  # neither a basket nor a return
    return basket_frame(rows)


@pytest.fixture
def chain(tmp_path):
    con = connect(tmp_path)
    baskets = random_baskets()
    insert(con, STORES, baskets)
    yield con, baskets
    con.close()


def expected_panel(baskets: pd.DataFrame, key: str) -> pd.DataFrame:
    """The panel recomputed in pandas, independently of the SQL."""
    regions = dict(zip(STORES["store_id"], STORES["region"], strict=True)) | {"S9": "(unknown)"}
    b = baskets.assign(
        region=baskets["store_id"].map(regions),
        week=baskets["date"] - pd.to_timedelta(baskets["date"].dt.day_of_week, unit="D"),
    )
    g = b.groupby([key, "week"])
    agg = pd.DataFrame(
        {
            "sales": g["amount"].sum(),
            "baskets": g["amount"].agg(lambda a: int((a > 0).sum())),
            "returns": g["amount"].agg(lambda a: int((a < 0).sum())),
            "active_customers": g["customer_id"].nunique(),
            "anonymous_sales": b[b["customer_id"].isna()].groupby([key, "week"])["amount"].sum(),
        }
    )
    units = sorted(regions) if key == "store_id" else sorted(set(regions.values()))
    weeks = pd.date_range(b["week"].min(), b["week"].max(), freq="7D")
    index = pd.MultiIndex.from_product([units, weeks], names=[key, "week"])
    out = agg.reindex(index).fillna(0.0).reset_index()
    out["avg_basket"] = out["sales"] / out["baskets"].replace(0, np.nan)
    return out


def test_store_week_panel_matches_pandas(chain):
    con, baskets = chain
    panel = store_week_panel(con)
    expected = expected_panel(baskets, "store_id")
    assert list(panel.columns) == [
        "store_id", "region", "week", "sales", "baskets", "returns",
        "active_customers", "anonymous_sales", "avg_basket",
    ]  # fmt: skip
    assert pd.api.types.is_datetime64_dtype(panel["week"])
    assert (panel["week"].dt.day_of_week == 0).all()
    # balanced: 6 stores (S9 included) x 12 weeks
    assert len(panel) == 6 * 12 == len(expected)
    assert panel["store_id"].tolist() == expected["store_id"].tolist()
    assert panel["week"].tolist() == expected["week"].tolist()
    for column in ("sales", "anonymous_sales", "avg_basket"):
        np.testing.assert_allclose(panel[column], expected[column], rtol=1e-12, atol=1e-9)
    for column in ("baskets", "returns", "active_customers"):
        assert panel[column].dtype == "int64"
        assert panel[column].tolist() == expected[column].astype(int).tolist()
    assert panel.loc[panel["store_id"] == "S9", "region"].eq("(unknown)").all()
    assert panel.loc[panel["store_id"] == "S1", "region"].eq("north").all()
    # zero-filled cells: store S5 has no baskets, and no store sold in EMPTY_WEEK
    for cells in (panel[panel["store_id"] == "S5"], panel[panel["week"] == str(EMPTY_WEEK)]):
        assert len(cells) > 0
        assert (cells[["sales", "baskets", "returns", "active_customers"]] == 0).all().all()
        assert cells["avg_basket"].isna().all()
    # the fixture has returns and anonymous baskets, so these columns are exercised
    assert panel["returns"].sum() > 0
    assert panel["anonymous_sales"].abs().sum() > 0
    np.testing.assert_allclose(panel["sales"].sum(), baskets["amount"].sum())


def test_region_panel_matches_pandas_and_counts_distinct_customers(chain):
    con, baskets = chain
    panel = region_week_panel(con)
    expected = expected_panel(baskets, "region")
    assert list(panel.columns[:3]) == ["region", "stores", "week"]
    assert panel["region"].tolist() == expected["region"].tolist()
    assert len(panel) == 4 * 12
    stores = panel.groupby("region")["stores"].first().to_dict()
    assert stores == {"(unknown)": 1, "east": 1, "north": 2, "south": 2}
    for column in ("sales", "anonymous_sales", "avg_basket"):
        np.testing.assert_allclose(panel[column], expected[column], rtol=1e-12, atol=1e-9)
    for column in ("baskets", "returns", "active_customers"):
        assert panel[column].tolist() == expected[column].astype(int).tolist()

    store_panel = store_week_panel(con)
    summed = store_panel.groupby(["region", "week"], as_index=False)[
        ["sales", "baskets", "active_customers"]
    ].sum()
    merged = panel.merge(summed, on=["region", "week"], suffixes=("", "_stores"))
    np.testing.assert_allclose(merged["sales"], merged["sales_stores"])
    assert merged["baskets"].tolist() == merged["baskets_stores"].tolist()
    # C00 shopped in S1 and S2 (both north) in the week of 2025-01-06: counted once
    assert (merged["active_customers"] <= merged["active_customers_stores"]).all()
    cell = merged[(merged["region"] == "north") & (merged["week"] == str(FIRST_MONDAY))]
    assert int(cell["active_customers"].iloc[0]) < int(cell["active_customers_stores"].iloc[0])


def test_start_end_limit_dates_and_weeks(chain):
    con, baskets = chain
    # Wednesday to Tuesday: weeks 2025-01-13 .. 2025-01-27, partial first and last week
    start, end = date(2025, 1, 15), date(2025, 1, 28)
    panel = store_week_panel(con, start=start, end=end)
    weeks = pd.to_datetime(["2025-01-13", "2025-01-20", "2025-01-27"])
    assert sorted(panel["week"].unique()) == list(weeks)
    inside = baskets[(baskets["date"] >= str(start)) & (baskets["date"] <= str(end))]
    np.testing.assert_allclose(panel["sales"].sum(), inside["amount"].sum())
    assert panel["baskets"].sum() == int((inside["amount"] > 0).sum())
    # weeks beyond the data are kept, empty
    later = store_week_panel(con, start=date(2025, 3, 31), end=date(2025, 4, 13))
    assert len(later) == 6 * 2
    assert later["sales"].eq(0).all()


def test_members_sales_respect_enrolment_date(tmp_path):
    con = connect(tmp_path)
    baskets = basket_frame(
        [
            ("A", "S1", date(2025, 1, 14), 10.0),  # before A enrolled: not a member sale
            ("A", "S1", date(2025, 1, 15), 20.0),  # enrolment day: counts
            ("A", "S2", date(2025, 1, 20), 30.0),
            ("A", "S2", date(2025, 1, 21), -5.0),  # a member's return counts too
            ("B", "S1", date(2025, 1, 15), 50.0),  # never enrolled
            ("C", "S1", date(2025, 1, 14), 7.0),
            (None, "S1", date(2025, 1, 16), 100.0),
        ]
    )
    insert(con, STORES, baskets)
    members = pd.DataFrame(
        {
            "customer_id": ["A", "C", "C", "Z"],
            # C listed twice: the earliest enrolment counts; Z never shops
            "enrolled": pd.to_datetime(["2025-01-15", "2025-01-30", "2025-01-01", "2025-01-01"]),
        }
    )
    panel = store_week_panel(con, members=members).set_index(["store_id", "week"])
    assert list(panel.columns[-2:]) == ["members_sales", "members_active"]
    w1, w2 = pd.Timestamp("2025-01-13"), pd.Timestamp("2025-01-20")
    assert panel.loc[("S1", w1), "members_sales"] == 20.0 + 7.0
    assert panel.loc[("S1", w1), "members_active"] == 2
    assert panel.loc[("S1", w1), "sales"] == 10 + 20 + 50 + 7 + 100
    assert panel.loc[("S2", w2), "members_sales"] == 25.0
    assert panel.loc[("S2", w2), "members_active"] == 1
    assert panel.loc[("S3", w1), "members_sales"] == 0.0
    assert panel.loc[("S3", w1), "members_active"] == 0

    region = region_week_panel(con, members=members).set_index(["region", "week"])
    assert region.loc[("north", w1), "members_sales"] == 27.0
    assert region.loc[("north", w2), "members_active"] == 1
    # the registered member table is gone afterwards
    views = con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views == [(0,)]
    with pytest.raises(UserError, match="'enrolled'"):
        store_week_panel(con, members=members[["customer_id"]])
    assert "members_sales" not in store_week_panel(con).columns


def test_customer_rfm_window_and_as_of_boundaries(tmp_path):
    con = connect(tmp_path)
    as_of = date(2025, 6, 1)
    since = as_of - timedelta(days=30)  # 2025-05-02
    baskets = basket_frame(
        [
            ("A", "S1", as_of, 1000.0),  # exactly at as_of: excluded
            ("A", "S1", since, 40.0),  # exactly at as_of - window: included
            ("A", "S1", since - timedelta(days=1), 500.0),  # just outside the window
            ("B", "S1", since - timedelta(days=1), 60.0),  # only outside: not in table
            ("C", "S2", date(2025, 5, 20), 80.0),
            ("C", "S2", date(2025, 5, 10), 30.0),
            ("C", "S2", date(2025, 5, 25), -10.0),  # a return: net spend, not recency
            ("D", "S2", date(2025, 5, 25), -20.0),  # only a return: not in table
            (None, "S2", date(2025, 5, 26), 90.0),  # anonymous: never in the table
        ]
    )
    insert(con, STORES, baskets)
    rfm = customer_rfm(con, as_of=as_of, window_days=30)
    assert rfm["customer_id"].tolist() == ["A", "C"]
    assert rfm["recency_days"].tolist() == [30, 12]
    assert rfm["frequency"].tolist() == [1, 2]
    assert rfm["monetary"].tolist() == [40.0, 100.0]
    assert {"r_score", "f_score", "m_score", "rfm_score", "segment", "value_band"} <= set(rfm)
    # without a window, older baskets count
    full = customer_rfm(con, as_of=as_of, window_days=None).set_index("customer_id")
    assert full.index.tolist() == ["A", "B", "C"]
    assert full.loc["A", "frequency"] == 2
    assert full.loc["A", "monetary"] == 540.0
    assert full.loc["B", "recency_days"] == 31  # 2025-05-01 to 2025-06-01
    # default as_of: the day after the last basket (2025-06-01) -> 2025-06-02
    default = customer_rfm(con, window_days=None).set_index("customer_id")
    assert default.loc["A", "recency_days"] == 1
    assert default.loc["A", "monetary"] == 1540.0
    assert customer_rfm(con, as_of=date(2024, 1, 1)).empty
    with pytest.raises(UserError, match="window_days"):
        customer_rfm(con, window_days=0)


def test_chain_summary_matches_pandas(chain):
    con, baskets = chain
    summary = chain_summary(con)
    json.dumps(summary)  # ready for --json
    assert summary["stores"] == 6  # 5 listed + S9 seen only in baskets
    assert summary["regions"] == 4
    assert summary["customers"] == baskets["customer_id"].nunique()
    assert summary["baskets"] == len(baskets)
    assert summary["anonymous_baskets"] == int(baskets["customer_id"].isna().sum())
    assert summary["returns"] == int((baskets["amount"] < 0).sum())
    assert summary["sales"] == pytest.approx(baskets["amount"].sum())
    assert summary["first_date"] == baskets["date"].min().date().isoformat()
    assert summary["last_date"] == baskets["date"].max().date().isoformat()

    regions = dict(zip(STORES["store_id"], STORES["region"], strict=True)) | {"S9": "(unknown)"}
    by_region = baskets.groupby(baskets["store_id"].map(regions))["amount"].sum()
    got = {row["region"]: row for row in summary["sales_by_region"]}
    assert set(got) == {"north", "south", "east", "(unknown)"}
    for region, sales in by_region.items():
        assert got[region]["sales"] == pytest.approx(sales)
        assert got[region]["share"] == pytest.approx(sales / baskets["amount"].sum())
    assert got["east"]["sales"] == 0.0
    assert [got[r]["stores"] for r in ("north", "south", "east", "(unknown)")] == [2, 2, 1, 1]
    ordered = [row["sales"] for row in summary["sales_by_region"]]
    assert ordered == sorted(ordered, reverse=True)

    # segments: the RFM table rebuilt in pandas for the default window
    as_of = baskets["date"].max() + pd.Timedelta(days=1)
    window = baskets[
        baskets["customer_id"].notna()
        & (baskets["date"] < as_of)
        & (baskets["date"] >= as_of - pd.Timedelta(days=365))
    ]
    purchases = window[window["amount"] > 0].groupby("customer_id")["date"]
    table = pd.DataFrame(
        {
            "recency_days": (as_of - purchases.max()).dt.days,
            "frequency": purchases.size(),
            "monetary": window.groupby("customer_id")["amount"].sum(),
        }
    ).dropna()
    table = table.rename_axis("customer_id").reset_index()
    counts = score_rfm(table)["segment"].value_counts()
    assert [row["segment"] for row in summary["segment_shares"]] == list(SEGMENTS)
    for row in summary["segment_shares"]:
        assert row["customers"] == counts.get(row["segment"], 0)
        assert row["share"] == pytest.approx(counts.get(row["segment"], 0) / len(table))
    assert sum(row["customers"] for row in summary["segment_shares"]) == len(table) > 0


def test_user_errors(tmp_path):
    con = connect(tmp_path)
    for call in (store_week_panel, region_week_panel, customer_rfm, chain_summary):
        with pytest.raises(UserError, match="no baskets"):
            call(con)
    insert(con, STORES, random_baskets(n=20))
    with pytest.raises(UserError, match="start 2025-03-01 is after end 2025-02-01"):
        store_week_panel(con, start=date(2025, 3, 1), end=date(2025, 2, 1))
    with pytest.raises(UserError, match="not an ISO date"):
        region_week_panel(con, start="March")


def test_store_listed_twice_takes_region_of_latest_ingest(tmp_path):
    con = connect(tmp_path)
    con.execute(
        "INSERT INTO stores (store_id, region, ingest_id) "
        "VALUES ('S1', 'north', 1), ('S1', 'west', 2), ('S2', 'north', 1)"
    )
    insert(con, None, basket_frame([("A", "S1", date(2025, 1, 7), 10.0)]))
    panel = store_week_panel(con)
    assert panel[["store_id", "region"]].values.tolist() == [["S1", "west"], ["S2", "north"]]
    region = region_week_panel(con).set_index("region")
    assert region["stores"].to_dict() == {"north": 1, "west": 1}
    assert region.loc["west", "sales"] == 10.0
