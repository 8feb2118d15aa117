"""The pilot's secondary and guardrail metrics, aggregated in the workspace DuckDB.

Store x week sums over the pilot's stores and weeks (zeros where a store has no basket):
``sales``, ``margin`` (sum of the baskets' gross margin; NULL margins count as missing),
``baskets`` (purchases), ``returns``, ``active_customers``; and the rates derived from
them per store and week: ``gross_margin_rate = margin / sales`` and ``returns_rate =
returns / (baskets + returns)``. The programme cost share of an arm comes from the exact
replay of its programme on the arm's stores' baskets over the test period (the
programme starting with empty balances on the first test day).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.simulator.programme import Programme


def store_week_metrics(
    con: duckdb.DuckDBPyConnection, stores: list[str], start: date, end: date
) -> pd.DataFrame:
    """Balanced store x week sums and rates of ``stores`` from ``start`` to ``end``."""
    frame = pd.DataFrame({"store_id": sorted(map(str, stores))})
    con.register("pilot_stores", frame)
    try:
        out = con.execute(
            """
            WITH weeks AS (
                SELECT CAST(w AS DATE) AS week FROM generate_series(
                    CAST(date_trunc('week', CAST(? AS DATE)) AS DATE),
                    CAST(? AS DATE), INTERVAL 7 DAY) t(w)
            ),
            a AS (
                SELECT b.store_id, CAST(date_trunc('week', b.date) AS DATE) AS week,
                       CAST(sum(CAST(b.amount AS DECIMAL(38, 6))) AS DOUBLE) AS sales,
                       CAST(sum(CAST(b.margin AS DECIMAL(38, 6))) AS DOUBLE) AS margin,
                       count(b.margin) AS with_margin,
                       count(*) FILTER (WHERE b.amount > 0) AS baskets,
                       count(*) FILTER (WHERE b.amount < 0) AS returns,
                       count(DISTINCT b.customer_id) AS active_customers
                FROM baskets b JOIN pilot_stores p ON p.store_id = b.store_id
                WHERE b.date BETWEEN ? AND ?
                GROUP BY 1, 2
            )
            SELECT p.store_id, w.week,
                   coalesce(a.sales, 0.0) AS sales,
                   a.margin AS margin,
                   coalesce(a.with_margin, 0) AS with_margin,
                   coalesce(a.baskets, 0) AS baskets,
                   coalesce(a.returns, 0) AS returns,
                   coalesce(a.active_customers, 0) AS active_customers
            FROM pilot_stores p CROSS JOIN weeks w
            LEFT JOIN a ON a.store_id = p.store_id AND a.week = w.week
            ORDER BY 1, 2
            """,
            [start, end, start, end],
        ).df()
    finally:
        con.unregister("pilot_stores")
    out["week"] = pd.to_datetime(out["week"])
    sales = out["sales"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["gross_margin_rate"] = np.where(
            sales > 0, out["margin"].to_numpy(float) / sales, np.nan
        )
        moves = (out["baskets"] + out["returns"]).to_numpy(dtype=float)
        out["returns_rate"] = np.where(moves > 0, out["returns"].to_numpy(float) / moves, np.nan)
        out["avg_basket"] = np.where(
            out["baskets"] > 0, sales / out["baskets"].to_numpy(float), np.nan
        )
    return out


def programme_cost_share(
    con: duckdb.DuckDBPyConnection,
    programme: Programme,
    stores: list[str],
    start: date,
    end: date,
    *,
    seed: int = 0,
) -> dict[str, float]:
    """The programme's cost as a share of the arm's stores' sales over the test period.

    Exact replay of ``programme`` on those baskets; ``cost`` on an accrual basis (rewards,
    discounts and running costs, plus the liability owed at the end), ``revenue`` and
    ``share``.
    """
    from loyalty_pilot.simulator.replay import replay

    frame = pd.DataFrame({"store_id": sorted(map(str, stores))})
    con.register("pilot_stores", frame)
    try:
        baskets = con.execute(
            """SELECT b.customer_id, b.basket_id, b.ts, b.date, b.amount, b.department
               FROM baskets b JOIN pilot_stores p ON p.store_id = b.store_id
               WHERE b.date BETWEEN ? AND ?
               ORDER BY b.customer_id, b.ts, b.basket_id""",
            [start, end],
        ).df()
    finally:
        con.unregister("pilot_stores")
    if baskets.empty:
        return {"cost": float("nan"), "revenue": 0.0, "share": float("nan")}
    result = replay(baskets, programme, seed=seed, start=start, end=end)
    # accrual basis: what was spent plus what is owed (the liability at the end; the
    # programme starts with empty balances), not only the rewards already redeemed
    cost = float(result.ledger["total_cost"].sum()) + float(result.ledger["liability"].iloc[-1])
    revenue = float(result.ledger["revenue"].sum())
    return {"cost": cost, "revenue": revenue, "share": cost / revenue if revenue else float("nan")}
