"""A balanced unit x period panel in matrix form: what every store-level estimator takes.

The aggregation (baskets -> unit x week) happens elsewhere (DuckDB, pandas or Dask); the
estimators only see this small matrix, so they do not care where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


class PanelError(ValueError):
    """The panel cannot be used as given; the message names the column, unit or period."""


@dataclass(frozen=True, eq=False)
class PanelData:
    """``y[i, t]``: outcome of unit ``units[i]`` in period ``periods[t]`` (sorted).

    ``treated[i]``: the unit is in the treated arm; ``post[t]``: period ``t`` is on or
    after the start of the treatment.
    """

    y: np.ndarray
    units: np.ndarray
    periods: np.ndarray
    treated: np.ndarray
    post: np.ndarray

    @property
    def n_treated(self) -> int:
        return int(self.treated.sum())

    @property
    def n_control(self) -> int:
        return int((~self.treated).sum())

    def treated_post_mean(self) -> float:
        """Mean outcome of the treated units over the post periods (NaN if none)."""
        if not self.treated.any() or not self.post.any():
            return float("nan")
        return float(self.y[np.ix_(self.treated, self.post)].mean())


def wide_panel(
    panel: pd.DataFrame,
    *,
    unit: str,
    period: str,
    outcome: str,
    treated: Mapping[Any, bool] | pd.Series,
    start: Any,
) -> PanelData:
    """Pivot a long panel to :class:`PanelData`.

    ``treated`` maps every unit of the panel to True (treated) or False (control); units
    missing from it are an error, as are missing (unit, period) cells, duplicated cells
    and non-finite outcomes.
    """
    for column in (unit, period, outcome):
        if column not in panel.columns:
            raise PanelError(f"column {column!r} not in the panel (columns: {list(panel.columns)})")
    keys = panel[[unit, period]]
    duplicated = keys.duplicated()
    if duplicated.any():
        row = panel.loc[duplicated].iloc[0]
        raise PanelError(f"unit {row[unit]!r} has two rows for {period} {row[period]!r}")
    values = pd.to_numeric(panel[outcome], errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        row = panel.loc[bad].iloc[0]
        raise PanelError(
            f"column {outcome!r}: value {row[outcome]!r} for unit {row[unit]!r}, "
            f"{period} {row[period]!r} is not a finite number"
        )
    wide = (
        panel.assign(**{outcome: values})
        .pivot(index=unit, columns=period, values=outcome)
        .sort_index(axis=0)
        .sort_index(axis=1)
    )
    if wide.isna().any().any():
        missing = wide.isna().stack()
        u, p = missing[missing].index[0]
        raise PanelError(
            f"the panel is not balanced: no {outcome!r} for unit {u!r}, {period} {p!r}"
        )
    mapping = pd.Series(treated) if not isinstance(treated, pd.Series) else treated
    absent = [u for u in wide.index if u not in mapping.index]
    if absent:
        raise PanelError(f"unit {absent[0]!r} has no arm")
    periods = wide.columns.to_numpy()
    try:
        post = periods >= start
    except TypeError as exc:
        raise PanelError(f"start {start!r} cannot be compared with {period} values") from exc
    return PanelData(
        y=wide.to_numpy(dtype=float),
        units=wide.index.to_numpy(),
        periods=periods,
        treated=mapping.loc[wide.index].to_numpy(dtype=bool),
        post=np.asarray(post, dtype=bool),
    )
