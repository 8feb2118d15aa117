"""What a pilot reads from the workspace: its candidate units, their pre-period series and
their descriptors (region, format, size band, RFM segment), with the eligibility rules
applied.

The pilot's *analysis unit* follows ``unit`` and the design: stores (``unit: store``),
regions (``unit: region``, or stores randomized in whole regions by the ``cluster`` and
``synthetic_region`` designs: the pilot is then analysed region by region, the only
honest level when regions are what was randomized), or customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loyalty_pilot.pilots.eligibility import Eligibility, eligible_units
from loyalty_pilot.pilots.errors import UserError

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.pilots.pilotspec import PilotFile

REGION_DESIGNS = ("cluster", "synthetic_region")
SIZE_BANDS = ("small", "medium", "large")


@dataclass(frozen=True)
class PilotData:
    """The candidates of a pilot and the series its design and power analysis use.

    ``units``: one row per candidate unit (index: unit id, str): ``region`` (stores,
    customers: their main region), ``format``, ``size_m2``, ``size_band`` (stores),
    ``segment`` (customers), ``n_stores`` (regions).
    ``wide``: eligible analysis units x pre-period weeks of the primary metric.
    ``stores``: eligible stores -> region (the rollout's stores; empty for customers).
    """

    kind: str  # 'store' | 'region' | 'customer': the analysis unit
    units: pd.DataFrame
    wide: pd.DataFrame
    eligibility: Eligibility
    stores: pd.DataFrame
    data_start: date
    data_end: date
    metric: str
    column: str

    @property
    def eligible(self) -> list[str]:
        return [str(u) for u in self.wide.index]


def size_bands(size: pd.Series) -> pd.Series:
    """small / medium / large by tertiles of ``size_m2`` ('unknown' when missing)."""
    values = pd.to_numeric(size, errors="coerce")
    known = values.dropna()
    out = pd.Series("unknown", index=size.index, dtype=object)
    if known.empty:
        return out
    cuts = np.quantile(known.to_numpy(), [1 / 3, 2 / 3])
    band = np.searchsorted(cuts, known.to_numpy(), side="right")
    out.loc[known.index] = np.asarray(SIZE_BANDS, dtype=object)[band]
    return out


def _data_range(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    first, last = con.execute("SELECT min(date), max(date) FROM baskets").fetchall()[0]
    if first is None:
        raise UserError("the workspace holds no baskets: ingest or generate a chain first")
    return first, last


def _stores(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    frame = con.execute(
        """SELECT store_id, arg_max(region, coalesce(ingest_id, -1)) AS region,
                  arg_max(format, coalesce(ingest_id, -1)) AS format,
                  arg_max(size_m2, coalesce(ingest_id, -1)) AS size_m2,
                  arg_max(opened, coalesce(ingest_id, -1)) AS opened
           FROM stores GROUP BY store_id"""
    ).df()
    frame["store_id"] = frame["store_id"].astype(str)
    frame = frame.set_index("store_id").sort_index()
    frame["format"] = frame["format"].fillna("unknown").astype(str)
    frame["size_band"] = size_bands(frame["size_m2"])
    return frame


def _pivot(panel: pd.DataFrame, key: str, column: str) -> pd.DataFrame:
    wide = panel.pivot(index=key, columns="week", values=column).sort_index()
    wide.index = wide.index.astype(str)
    return wide.fillna(0.0)


def load_pilot_data(con: duckdb.DuckDBPyConnection, pf: PilotFile) -> PilotData:
    """Candidates, eligibility and pre-period series of the pilot in ``pf``."""
    from loyalty_pilot.pilots.panels import store_week_panel
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS, check_against_data

    spec = pf.spec
    data_start, data_end = _data_range(con)
    pre_start, pre_end = spec.pre_period.start, spec.pre_period.end
    metric = spec.metrics.primary
    column = METRIC_COLUMNS[metric]
    rules = spec.eligibility
    exclude = tuple(rules.exclude)

    if spec.unit == "customer":
        return _customers(con, pf, data_start, data_end, metric, column)

    stores = _stores(con)
    if pre_end > data_end or pre_start < data_start:
        # the spec's own cross-check names the key; run it before reading the panel
        check_against_data(
            pf, data_start=data_start, data_end=data_end, n_eligible=len(stores),
            regions=set(stores["region"]),
        )  # fmt: skip
    panel = store_week_panel(con, start=pre_start, end=pre_end)
    known = set(panel["store_id"].astype(str))
    unknown = sorted(set(exclude) - known)
    if unknown:
        index = list(exclude).index(unknown[0])
        raise pf.error(("eligibility", "exclude", index), f"unknown store {unknown[0]!r}")
    wide_all = _pivot(panel, "store_id", column)
    sales_all = _pivot(panel, "store_id", "sales")
    opened = stores.get("opened")
    eligibility = eligible_units(
        sales_all,
        pre_start=pre_start,
        min_pre_weeks=rules.min_pre_weeks,
        min_weekly_sales=rules.min_weekly_sales,
        exclude=exclude,
        opened=opened,
    )
    keep = eligibility.eligible
    region_of = panel.drop_duplicates("store_id").set_index("store_id")["region"].astype(str)
    region_of.index = region_of.index.astype(str)
    store_units = pd.DataFrame(
        {
            "region": region_of.reindex(keep),
            "format": stores["format"].reindex(keep).fillna("unknown"),
            "size_m2": stores["size_m2"].reindex(keep),
            "size_band": stores["size_band"].reindex(keep).fillna("unknown"),
        },
        index=pd.Index(keep, name="unit"),
    )
    rollout_stores = store_units.reset_index()[["unit", "region"]]
    by_region = spec.unit == "region" or spec.design.method in REGION_DESIGNS
    n_units = store_units["region"].nunique() if by_region else len(keep)
    check_against_data(
        pf, data_start=data_start, data_end=data_end, n_eligible=n_units,
        regions=set(region_of),
    )  # fmt: skip
    if not by_region:
        wide = wide_all.loc[keep]
        return PilotData(
            "store", store_units, wide, eligibility, rollout_stores, data_start, data_end,
            metric, column,
        )  # fmt: skip

    # regions: the eligible stores' sums (a ratio metric is recomputed from its parts)
    eligible_panel = panel[panel["store_id"].astype(str).isin(keep)]
    sums = eligible_panel.groupby(["region", "week"], as_index=False)[
        ["sales", "baskets", "active_customers"]
    ].sum()
    sums["avg_basket"] = sums["sales"] / sums["baskets"].where(sums["baskets"] > 0)
    wide = _pivot(sums, "region", column)
    units = store_units.groupby("region").size().rename("n_stores").to_frame().rename_axis("unit")
    units["region"] = units.index
    return PilotData(
        "region", units, wide, eligibility, rollout_stores, data_start, data_end, metric, column
    )


def _customers(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    data_start: date,
    data_end: date,
    metric: str,
    column: str,
) -> PilotData:
    """Customers active in the pre-period; weekly sales per customer (zeros included)."""
    from loyalty_pilot.pilots.panels import customer_rfm
    from loyalty_pilot.pilots.pilotspec import check_against_data

    spec = pf.spec
    if metric not in ("sales", "visits"):
        raise pf.error(
            ("metrics", "primary"), "unit customer supports the primary metrics sales and visits"
        )
    pre_start, pre_end = spec.pre_period.start, spec.pre_period.end
    monday = pre_start - timedelta(days=pre_start.weekday())
    n_weeks = (pre_end - monday).days // 7 + 1
    rows = con.execute(
        """SELECT customer_id, CAST(date_trunc('week', date) AS DATE) AS week,
                  CAST(sum(CAST(amount AS DECIMAL(38, 6))) AS DOUBLE) AS sales,
                  count(*) FILTER (WHERE amount > 0) AS baskets
           FROM baskets WHERE customer_id IS NOT NULL AND date BETWEEN ? AND ?
           GROUP BY 1, 2""",
        [pre_start, pre_end],
    ).df()
    customers = np.sort(rows["customer_id"].astype(str).unique())
    position = np.searchsorted(customers, rows["customer_id"].astype(str).to_numpy())
    week = ((pd.to_datetime(rows["week"]) - pd.Timestamp(monday)).dt.days // 7).to_numpy()
    matrix = np.zeros((len(customers), n_weeks))
    np.add.at(matrix, (position, week), rows[column].to_numpy(dtype=float))
    sales = np.zeros((len(customers), n_weeks))
    np.add.at(sales, (position, week), rows["sales"].to_numpy(dtype=float))
    weeks = pd.date_range(pd.Timestamp(monday), periods=n_weeks, freq="7D")
    wide_all = pd.DataFrame(matrix, index=pd.Index(customers), columns=weeks)
    eligibility = eligible_units(
        pd.DataFrame(sales, index=wide_all.index, columns=weeks),
        pre_start=pre_start,
        min_pre_weeks=1,
        min_weekly_sales=spec.eligibility.min_weekly_sales,
        exclude=tuple(spec.eligibility.exclude),
        closed_weeks=n_weeks,
    )
    keep = eligibility.eligible
    rfm = customer_rfm(con, as_of=pre_end + timedelta(days=1))  # the pre-period's segments
    segment = pd.Series(rfm["segment"].astype(str).to_numpy(), index=rfm["customer_id"].astype(str))
    units = pd.DataFrame(
        {"segment": segment.reindex(keep).fillna("unknown")}, index=pd.Index(keep, name="unit")
    )
    check_against_data(pf, data_start=data_start, data_end=data_end, n_eligible=len(keep))
    return PilotData(
        "customer", units, wide_all.loc[keep], eligibility,
        pd.DataFrame(columns=["unit", "region"]), data_start, data_end, metric, column,
    )  # fmt: skip


def describe(data: PilotData) -> dict[str, Any]:
    """JSON-ready summary of the candidates."""
    return {
        "analysis_unit": data.kind,
        "metric": data.metric,
        "data": {"first_day": data.data_start.isoformat(), "last_day": data.data_end.isoformat()},
        "eligibility": data.eligibility.to_dict(),
        "n_analysis_units": len(data.wide),
        "pre_weeks": data.wide.shape[1],
    }
