"""Weekly panels, customer RFM and a chain summary, aggregated inside the workspace DuckDB.

The raw baskets never leave DuckDB: each function runs one aggregating query and returns
a small pandas frame (or a dict). Tables are those of :mod:`loyalty_pilot.pilots.workspace`.

Conventions shared by every function here:

- A **week** is the Monday of the basket's date (``date_trunc('week', date)``, ISO weeks).
- The **store list** is the ``stores`` table plus every ``store_id`` found in ``baskets``
  but not in ``stores``; those get the region ``'(unknown)'``. A store listed twice takes
  the region of its latest ingest.
- ``sales`` is the net sum of ``amount`` (returns included); ``baskets`` counts purchase
  baskets (``amount > 0``) and ``returns`` counts return baskets (``amount < 0``).
- Money is summed exactly (as DECIMAL with 6 decimals), so a figure does not move in its
  last bits with the order DuckDB's threads add in: the same data give the same panel.
"""

from __future__ import annotations

import numbers
import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.simulator.rfm import SEGMENTS, score_rfm

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "UNKNOWN_REGION",
    "chain_summary",
    "customer_rfm",
    "region_week_panel",
    "store_week_panel",
]

UNKNOWN_REGION = "(unknown)"

PANEL_MEASURES = (
    "sales",
    "baskets",
    "returns",
    "active_customers",
    "anonymous_sales",
    "avg_basket",
)
MEMBER_MEASURES = ("members_sales", "members_active")

_STORE_LIST = f"""
    SELECT store_id, coalesce(arg_max(region, coalesce(ingest_id, -1)), '{UNKNOWN_REGION}')
               AS region
    FROM stores GROUP BY store_id
    UNION ALL
    SELECT DISTINCT b.store_id, '{UNKNOWN_REGION}' AS region
    FROM baskets b
    WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.store_id = b.store_id)
"""


def _as_date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise UserError(f"{name} = {value!r} is not an ISO date (YYYY-MM-DD)") from None
    raise UserError(f"{name} = {value!r} is not a date")


def _date_range(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    """First and last basket date; ``UserError`` when the workspace has no baskets."""
    # fetchall, not fetchone: DuckDB refuses other work while a result is unfinished
    ((first, last),) = con.execute("SELECT min(date), max(date) FROM baskets").fetchall()
    if first is None:
        raise UserError("the workspace has no baskets; load some with `loyalty-pilot ingest`")
    return first, last


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _member_view(con: duckdb.DuckDBPyConnection, members: pd.DataFrame) -> str:
    """Register ``members`` (customer_id, enrolled) in DuckDB; returns the view name."""
    if not isinstance(members, pd.DataFrame):
        raise UserError("members must be a table with columns customer_id and enrolled")
    for column in ("customer_id", "enrolled"):
        if column not in members.columns:
            raise UserError(f"members table has no column {column!r}")
    frame = members[["customer_id", "enrolled"]]
    try:
        frame = frame.assign(enrolled=pd.to_datetime(frame["enrolled"]))
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"members column 'enrolled' has a value that is not a date: {exc}"
        ) from None
    name = f"_members_{uuid.uuid4().hex}"
    con.register(name, frame)
    return name


def _panel(
    con: duckdb.DuckDBPyConnection,
    level: str,
    start: date | None,
    end: date | None,
    members: pd.DataFrame | None,
) -> pd.DataFrame:
    start, end = _as_date(start, "start"), _as_date(end, "end")
    first, last = _date_range(con)
    start = first if start is None else start
    end = last if end is None else end
    if start > end:
        raise UserError(f"start {start} is after end {end}")

    view = _member_view(con, members) if members is not None else None
    try:
        if view is None:
            member_join, member_flag = "", "FALSE"
        else:
            member_join = f"""LEFT JOIN (
                    SELECT CAST(customer_id AS VARCHAR) AS customer_id,
                           min(CAST(enrolled AS DATE)) AS enrolled
                    FROM {view} WHERE customer_id IS NOT NULL GROUP BY 1
                ) m ON m.customer_id = b.customer_id"""
            member_flag = "coalesce(b.date >= m.enrolled, FALSE)"
        if level == "store":
            key, units = "store_id", "SELECT store_id, region FROM store_list"
        else:
            key = "region"
            units = "SELECT region, count(*) AS stores FROM store_list GROUP BY region"
        member_columns = ""
        if view is not None:
            member_columns = """,
                coalesce(a.members_sales, 0.0) AS members_sales,
                coalesce(a.members_active, 0) AS members_active"""
        sql = f"""
            WITH store_list AS ({_STORE_LIST}),
            units AS ({units}),
            weeks AS (
                SELECT CAST(w AS DATE) AS week
                FROM generate_series(CAST(? AS DATE), CAST(? AS DATE), INTERVAL 7 DAY) t(w)
            ),
            b AS (
                SELECT b.customer_id, b.amount, s.store_id, s.region,
                       CAST(date_trunc('week', b.date) AS DATE) AS week,
                       {member_flag} AS is_member
                FROM baskets b
                JOIN store_list s ON s.store_id = b.store_id
                {member_join}
                WHERE b.date BETWEEN ? AND ?
            ),
            a AS (
                SELECT {key}, week,
                    CAST(sum(CAST(amount AS DECIMAL(38, 6))) AS DOUBLE) AS sales,
                    count(*) FILTER (WHERE amount > 0) AS baskets,
                    count(*) FILTER (WHERE amount < 0) AS returns,
                    count(DISTINCT customer_id) AS active_customers,
                    CAST(sum(CAST(amount AS DECIMAL(38, 6))) FILTER (WHERE customer_id IS NULL)
                        AS DOUBLE) AS anonymous_sales,
                    CAST(sum(CAST(amount AS DECIMAL(38, 6))) FILTER (WHERE is_member)
                        AS DOUBLE) AS members_sales,
                    count(DISTINCT customer_id) FILTER (WHERE is_member) AS members_active
                FROM b GROUP BY {key}, week
            )
            SELECT u.*, w.week,
                coalesce(a.sales, 0.0) AS sales,
                coalesce(a.baskets, 0) AS baskets,
                coalesce(a.returns, 0) AS returns,
                coalesce(a.active_customers, 0) AS active_customers,
                coalesce(a.anonymous_sales, 0.0) AS anonymous_sales,
                coalesce(a.sales, 0.0) / nullif(coalesce(a.baskets, 0), 0) AS avg_basket
                {member_columns}
            FROM units u
            CROSS JOIN weeks w
            LEFT JOIN a ON a.{key} = u.{key} AND a.week = w.week
            ORDER BY u.{key}, w.week
        """
        params = [_monday(start), _monday(end), start, end]
        frame = con.execute(sql, params).df()
    finally:
        if view is not None:
            con.unregister(view)

    columns = [key, "region"] if level == "store" else [key]
    if level != "store":
        columns.append("stores")
    columns += ["week", *PANEL_MEASURES]
    if view is not None:
        columns += list(MEMBER_MEASURES)
    frame = frame[columns]
    if not pd.api.types.is_datetime64_dtype(frame["week"]):
        frame["week"] = pd.to_datetime(frame["week"])
    return frame


def store_week_panel(
    con: duckdb.DuckDBPyConnection,
    start: date | None = None,
    end: date | None = None,
    members: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Balanced store x week panel of the baskets dated ``start`` to ``end`` (inclusive).

    ``start`` / ``end`` default to the first and last basket date. Every store of the store
    list appears for every week (Monday) from the week of ``start`` to the week of ``end``,
    with zeros where it has no baskets; a partial first or last week counts only the days
    inside ``[start, end]``.

    Columns, one row per (store_id, week), sorted by store_id then week:

    ``store_id``, ``region`` (``'(unknown)'`` for a store missing from ``stores``),
    ``week`` (datetime64, the Monday),
    ``sales`` net sum of amount (returns included), ``baskets`` count of amount > 0,
    ``returns`` count of amount < 0, ``active_customers`` distinct identified customers,
    ``anonymous_sales`` net sales of baskets without customer,
    ``avg_basket`` sales / baskets (NaN when there are no baskets).

    With ``members`` (a DataFrame with ``customer_id`` and ``enrolled``, a date), also
    ``members_sales``: net sales of members' baskets dated on or after their enrolment,
    and ``members_active``: distinct members with such a basket. A customer listed twice
    counts from the earliest enrolment.
    """
    return _panel(con, "store", start, end, members)


def region_week_panel(
    con: duckdb.DuckDBPyConnection,
    start: date | None = None,
    end: date | None = None,
    members: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Balanced region x week panel: the measures of :func:`store_week_panel` by region.

    Columns: ``region``, ``stores`` (stores of the region in the store list), ``week``,
    then the measures. ``active_customers`` and ``members_active`` count distinct customers
    within the region and week, so a customer who shops in two stores of a region counts
    once (they are not the sum over the region's stores).
    """
    return _panel(con, "region", start, end, members)


def customer_rfm(
    con: duckdb.DuckDBPyConnection,
    as_of: date | None = None,
    window_days: int | None = 365,
) -> pd.DataFrame:
    """Recency, frequency and monetary value of each identified customer, scored.

    ``as_of`` is the reference date (default: the day after the last basket date). The
    baskets used are those dated before ``as_of`` and, when ``window_days`` is set, on or
    after ``as_of - window_days``. Per customer:

    ``recency_days``  ``as_of`` minus the date of the last purchase (amount > 0)
    ``frequency``     number of purchase baskets (amount > 0)
    ``monetary``      net spend (sum of amount, returns included)

    Customers without a purchase in the window are left out. The columns of
    :func:`loyalty_pilot.simulator.rfm.score_rfm` are added; rows sorted by customer_id.
    """
    as_of = _as_date(as_of, "as_of")
    if window_days is not None and (
        isinstance(window_days, bool)
        or not isinstance(window_days, numbers.Integral)
        or window_days <= 0
    ):
        raise UserError(f"window_days = {window_days!r}, must be a positive whole number of days")
    _, last = _date_range(con)
    if as_of is None:
        as_of = last + timedelta(days=1)
    since = as_of - timedelta(days=int(window_days)) if window_days is not None else date.min
    frame = con.execute(
        """
        SELECT customer_id,
               CAST(? AS DATE) - max(date) FILTER (WHERE amount > 0) AS recency_days,
               count(*) FILTER (WHERE amount > 0) AS frequency,
               CAST(sum(CAST(amount AS DECIMAL(38, 6))) AS DOUBLE) AS monetary
        FROM baskets
        WHERE customer_id IS NOT NULL AND date < ? AND date >= ?
        GROUP BY customer_id
        HAVING count(*) FILTER (WHERE amount > 0) > 0
        ORDER BY customer_id
        """,
        [as_of, as_of, since],
    ).df()
    frame = frame.astype(
        {"recency_days": "int64", "frequency": "int64", "monetary": "float64"}
    ).reset_index(drop=True)
    return score_rfm(frame)


def chain_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Headline figures of the workspace, as plain JSON-ready Python values.

    Keys: ``stores`` (the store list), ``regions`` (distinct regions of the store list,
    ``'(unknown)'`` included), ``customers`` (distinct identified customers), ``baskets``
    (all basket rows, returns included), ``anonymous_baskets`` (rows without customer),
    ``returns`` (rows with amount < 0), ``sales`` (net sum of amount), ``first_date`` and
    ``last_date`` (ISO strings), ``sales_by_region`` (list of ``{region, stores, sales,
    share}`` sorted by sales, largest first; share of the chain's net sales, None when
    they are zero), ``segment_shares`` (list of ``{segment, customers, share}`` in the
    order of :data:`~loyalty_pilot.simulator.rfm.SEGMENTS`, zeros included, from
    :func:`customer_rfm` with its defaults; share None when no customer is scored).
    """
    first, last = _date_range(con)
    row = con.execute(
        f"""
        WITH store_list AS ({_STORE_LIST})
        SELECT (SELECT count(*) FROM store_list),
               (SELECT count(DISTINCT region) FROM store_list),
               count(DISTINCT customer_id),
               count(*),
               count(*) FILTER (WHERE customer_id IS NULL),
               count(*) FILTER (WHERE amount < 0),
               CAST(sum(CAST(amount AS DECIMAL(38, 6))) AS DOUBLE)
        FROM baskets
        """
    ).fetchall()
    ((stores, regions, customers, baskets, anonymous, returns, sales),) = row
    by_region = con.execute(
        f"""
        WITH store_list AS ({_STORE_LIST})
        SELECT s.region, count(DISTINCT s.store_id) AS stores,
               coalesce(CAST(sum(CAST(b.amount AS DECIMAL(38, 6))) AS DOUBLE), 0.0) AS sales
        FROM store_list s LEFT JOIN baskets b ON b.store_id = s.store_id
        GROUP BY s.region
        ORDER BY sales DESC, s.region
        """
    ).fetchall()
    sales = float(sales)
    sales_by_region = [
        {
            "region": region,
            "stores": int(n),
            "sales": float(value),
            "share": float(value) / sales if sales != 0 else None,
        }
        for region, n, value in by_region
    ]
    rfm = customer_rfm(con)
    counts = rfm["segment"].value_counts()
    scored = len(rfm)
    segment_shares = [
        {
            "segment": segment,
            "customers": int(counts.get(segment, 0)),
            "share": int(counts.get(segment, 0)) / scored if scored else None,
        }
        for segment in SEGMENTS
    ]
    return {
        "stores": int(stores),
        "regions": int(regions),
        "customers": int(customers),
        "baskets": int(baskets),
        "anonymous_baskets": int(anonymous),
        "returns": int(returns),
        "sales": sales,
        "first_date": first.isoformat(),
        "last_date": last.isoformat(),
        "sales_by_region": sales_by_region,
        "segment_shares": segment_shares,
    }
