"""Which units may take part in a pilot, and why the others may not.

A store is eligible when, over the pilot's pre-period:

- it is not on the pilot's explicit exclusion list (``eligibility.exclude``);
- it did not open inside the window: its ``opened`` date (stores table), when known, is
  on or before the first day of the pre-period;
- it did not close inside the window: it has sales in the last ``closed_weeks`` weeks of
  the pre-period (a store silent for a month at the end of the history is taken as
  closed, or closing);
- it has enough history: at least ``min_pre_weeks`` weeks with positive sales;
- its mean weekly sales reach ``min_weekly_sales``.

The first reason that applies is reported (in that order). Regions and customers follow
the same rules where they apply (a region is eligible when it has at least one eligible
store and enough weeks with sales; a customer when not excluded and active in the
pre-period).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

CLOSED_WEEKS = 4  # a store without sales in the last 4 pre-period weeks is taken as closed


@dataclass(frozen=True)
class Eligibility:
    """One row per candidate unit: ``unit``, ``eligible`` (bool), ``reason`` ('' if eligible),
    ``weeks_with_sales`` and ``mean_weekly_sales`` over the pre-period."""

    table: pd.DataFrame

    @property
    def eligible(self) -> list[str]:
        return sorted(self.table.loc[self.table["eligible"], "unit"].astype(str))

    @property
    def excluded(self) -> pd.DataFrame:
        return self.table.loc[~self.table["eligible"], ["unit", "reason"]].reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """Number of units per reason (``eligible`` for the eligible ones)."""
        reasons = self.table["reason"].where(self.table["eligible"] == False, "eligible")  # noqa: E712
        return {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}

    def to_dict(self) -> dict[str, object]:
        return {
            "n_candidates": len(self.table),
            "n_eligible": int(self.table["eligible"].sum()),
            "counts": self.counts(),
            "excluded": self.excluded.to_dict(orient="records"),
        }


def eligible_units(
    wide: pd.DataFrame,
    *,
    pre_start: date,
    min_pre_weeks: int,
    min_weekly_sales: float = 0.0,
    exclude: Collection[str] = (),
    opened: pd.Series | None = None,
    closed_weeks: int = CLOSED_WEEKS,
) -> Eligibility:
    """Apply the eligibility rules to ``wide`` (units x pre-period weeks of sales).

    ``opened``: unit -> opening date (NaT / None when unknown), for stores.
    """
    sales = wide.to_numpy(dtype=float)
    units = wide.index.astype(str)
    positive = sales > 0
    weeks_with = positive.sum(axis=1)
    mean_sales = sales.mean(axis=1) if sales.shape[1] else np.zeros(len(units))
    tail = positive[:, -closed_weeks:].any(axis=1) if sales.shape[1] else np.zeros(len(units))
    on_list = np.isin(np.asarray(units), np.asarray(sorted(map(str, exclude)), dtype=object))
    opening = (
        pd.Series(pd.NaT, index=units)
        if opened is None
        else pd.to_datetime(pd.Series(opened).reindex(units))
    )
    late = (opening > pd.Timestamp(pre_start)).to_numpy()
    opening_text = opening.dt.strftime("%Y-%m-%d").fillna("").to_numpy()
    reasons = np.select(
        [on_list, late, ~tail, weeks_with < min_pre_weeks, mean_sales < min_weekly_sales],
        [
            np.full(len(units), "on the exclusion list", dtype=object),
            "opened " + opening_text.astype(object) + ", inside the pre-period",
            np.full(
                len(units),
                f"no sales in the last {closed_weeks} pre-period weeks (closed?)",
                dtype=object,
            ),
            weeks_with.astype(str).astype(object)
            + f" weeks with sales, fewer than {min_pre_weeks}",
            np.full(len(units), f"mean weekly sales below {min_weekly_sales:,.2f}", dtype=object),
        ],
        default="",
    ).astype(object)
    table = pd.DataFrame(
        {
            "unit": units,
            "eligible": [r == "" for r in reasons],
            "reason": reasons,
            "weeks_with_sales": weeks_with.astype(int),
            "mean_weekly_sales": mean_sales,
        }
    )
    return Eligibility(table.sort_values("unit", kind="stable").reset_index(drop=True))
