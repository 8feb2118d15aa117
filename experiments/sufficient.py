"""Sufficient statistics per arm for customer-level tests, and the ways to aggregate them.

The customer-level tests (:mod:`~loyalty_pilot.experiments.customer`) never see raw rows:
they work on one :class:`SufficientStats` per arm, the counts and sums below. Aggregation is
a separate step, so it can run wherever the rows are:

- numpy arrays: :func:`aggregate` (``np.bincount`` with weights over arm codes, the fast
  path);
- a pandas DataFrame: :func:`aggregate_frame` (arm column + value columns);
- SQL (DuckDB, or any engine with ``SUM`` and ``GROUP BY``): :func:`sufficient_sql` returns
  the ``SELECT`` text, :func:`stats_from_rows` reads its result back;
- chunks or Dask partitions: aggregate each part, then add the parts with ``+`` per arm
  (:func:`combine`). Sums merge exactly (up to floating-point rounding), so the
  statistics do not depend on how the rows were split.

Fields (per arm; ``y`` the outcome, ``x`` the denominator of a ratio metric, ``c`` the
pre-period covariate of CUPED, each summed over the arm's customers):

========  ===========================================================
``n``      customers
``sum_y``  sum of y;  ``sum_y2`` sum of y**2
``sum_x``  sum of x;  ``sum_x2`` sum of x**2;  ``sum_xy`` sum of x*y
``sum_c``  sum of c;  ``sum_c2`` sum of c**2;  ``sum_yc`` sum of y*c
========  ===========================================================

The ratio fields are None when no denominator was aggregated, the CUPED fields None when
no covariate was. Variances are computed as ``(sum_y2 - sum_y**2 / n) / (n - 1)``: the
rounding error is about ``1e-16 * mean**2 / variance`` relative, negligible for revenue
and counts (mean and standard deviation of the same order) but to be kept in mind for an
outcome with a huge offset and a tiny spread (subtract the offset before aggregating).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

RATIO_FIELDS = ("sum_x", "sum_x2", "sum_xy")
COVARIATE_FIELDS = ("sum_c", "sum_c2", "sum_yc")
FIELDS = ("n", "sum_y", "sum_y2", *RATIO_FIELDS, *COVARIATE_FIELDS)
"""The columns of :func:`sufficient_sql` and :func:`stats_from_rows`, after the arm."""


@dataclass(frozen=True)
class SufficientStats:
    """Counts and sums of one arm (see the module docstring for the fields).

    ``a + b`` is the statistics of the union of the two sets of customers (partial
    aggregates of the same arm, e.g. two chunks of a file). Both must carry the same
    optional groups (ratio, covariate).
    """

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float | None = None
    sum_x2: float | None = None
    sum_xy: float | None = None
    sum_c: float | None = None
    sum_c2: float | None = None
    sum_yc: float | None = None

    def __post_init__(self) -> None:
        for group in (RATIO_FIELDS, COVARIATE_FIELDS):
            present = [getattr(self, name) is not None for name in group]
            if any(present) and not all(present):
                raise ValueError(f"{', '.join(group)} must be given together or not at all.")
        if self.n < 0:
            raise ValueError(f"n == {self.n}, must be >= 0.")

    def __add__(self, other: SufficientStats) -> SufficientStats:
        if not isinstance(other, SufficientStats):
            return NotImplemented
        if self.has_ratio != other.has_ratio or self.has_covariate != other.has_covariate:
            raise ValueError("cannot add statistics with different fields (ratio, covariate).")
        merged = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            merged[f.name] = None if a is None else a + b
        return SufficientStats(**merged)

    @property
    def has_ratio(self) -> bool:
        """True when the denominator sums (``sum_x, sum_x2, sum_xy``) are present."""
        return self.sum_x is not None

    @property
    def has_covariate(self) -> bool:
        """True when the covariate sums (``sum_c, sum_c2, sum_yc``) are present."""
        return self.sum_c is not None

    @property
    def mean_y(self) -> float:
        return self.sum_y / self.n if self.n else float("nan")

    @property
    def var_y(self) -> float:
        """Sample variance of y (ddof 1); NaN below two customers."""
        return _var(self.n, self.sum_y, self.sum_y2)

    @property
    def mean_x(self) -> float:
        return _need(self.sum_x, "sum_x") / self.n if self.n else float("nan")

    @property
    def var_x(self) -> float:
        return _var(self.n, _need(self.sum_x, "sum_x"), _need(self.sum_x2, "sum_x2"))

    @property
    def cov_xy(self) -> float:
        return _cov(self.n, _need(self.sum_x, "sum_x"), self.sum_y, _need(self.sum_xy, "sum_xy"))

    @property
    def mean_c(self) -> float:
        return _need(self.sum_c, "sum_c") / self.n if self.n else float("nan")

    @property
    def var_c(self) -> float:
        return _var(self.n, _need(self.sum_c, "sum_c"), _need(self.sum_c2, "sum_c2"))

    @property
    def cov_yc(self) -> float:
        return _cov(self.n, self.sum_y, _need(self.sum_c, "sum_c"), _need(self.sum_yc, "sum_yc"))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (None for the groups not aggregated)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _need(value: float | None, name: str) -> float:
    if value is None:
        raise ValueError(f"{name} was not aggregated: pass the column to the aggregation.")
    return value


def _var(n: int, s: float, s2: float) -> float:
    if n < 2:
        return float("nan")
    return max((s2 - s * s / n) / (n - 1), 0.0)


def _cov(n: int, sa: float, sb: float, sab: float) -> float:
    if n < 2:
        return float("nan")
    return (sab - sa * sb / n) / (n - 1)


def aggregate(
    arm: Any,
    outcome: Any,
    *,
    denominator: Any = None,
    covariate: Any = None,
) -> dict[Any, SufficientStats]:
    """Per-arm sufficient statistics of numpy arrays (or anything ``np.asarray`` takes).

    Args:
        arm: arm label per customer. Non-negative integer codes are used as they are
            (the fast path: ``np.bincount`` with weights, one pass per field); other labels
            (strings, categoricals, negative numbers) are factorized first.
        outcome: y per customer (numbers, finite).
        denominator: x per customer for a ratio metric (``sum(y) / sum(x)``), or None.
        covariate: c per customer (pre-period value) for CUPED, or None.

    Returns:
        label -> :class:`SufficientStats`, for the labels present, in sorted order (the
        categories' order for a pandas Categorical).
    """
    codes, labels = _codes(arm)
    k = len(labels)
    y = _float(outcome, "outcome", len(codes))
    counts = np.bincount(codes, minlength=k)

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=weights, minlength=k)

    sums: dict[str, np.ndarray] = {"sum_y": total(y), "sum_y2": total(y * y)}
    if denominator is not None:
        x = _float(denominator, "denominator", len(codes))
        sums.update(sum_x=total(x), sum_x2=total(x * x), sum_xy=total(x * y))
    if covariate is not None:
        c = _float(covariate, "covariate", len(codes))
        sums.update(sum_c=total(c), sum_c2=total(c * c), sum_yc=total(y * c))
    present = np.flatnonzero(counts)
    return {
        _plain(labels[i]): SufficientStats(
            int(counts[i]), **{name: float(values[i]) for name, values in sums.items()}
        )
        for i in present
    }


def aggregate_frame(
    frame: pd.DataFrame,
    *,
    arm: str,
    outcome: str,
    denominator: str | None = None,
    covariate: str | None = None,
) -> dict[Any, SufficientStats]:
    """Per-arm sufficient statistics of a DataFrame with one row per customer.

    The columns are passed to :func:`aggregate` as numpy arrays. For Dask, aggregate each
    partition and add the results (``combine(ddf.map_partitions(...))`` or a loop over
    ``ddf.partitions``): the statistics are the same as for the whole frame.
    """
    for name in (arm, outcome, denominator, covariate):
        if name is not None and name not in frame.columns:
            raise ValueError(f"column {name!r} is not in the table.")
    return aggregate(
        frame[arm],
        frame[outcome].to_numpy(dtype=float),
        denominator=None if denominator is None else frame[denominator].to_numpy(dtype=float),
        covariate=None if covariate is None else frame[covariate].to_numpy(dtype=float),
    )


def combine(parts: Iterable[Mapping[Any, SufficientStats]]) -> dict[Any, SufficientStats]:
    """Add partial aggregates arm by arm (arms in order of first appearance)."""
    out: dict[Any, SufficientStats] = {}
    for part in parts:
        for label, stats in part.items():
            out[label] = out[label] + stats if label in out else stats
    return out


def sufficient_sql(
    table: str,
    *,
    arm: str,
    outcome: str,
    denominator: str | None = None,
    covariate: str | None = None,
) -> str:
    """The SQL ``SELECT`` computing the fields of :class:`SufficientStats` per arm.

    ``table`` is put in the ``FROM`` clause as given (a table name, ``read_parquet(...)``,
    a parenthesised subquery); the column names are quoted. The result has one row per
    arm with the columns ``arm`` and the fields present (:data:`FIELDS` order);
    :func:`stats_from_rows` turns it into statistics. Rows where one of the columns used
    is NULL are left out (the pandas path rejects missing values instead). Values are
    cast to DOUBLE so that integer columns do not overflow. Pure text: no database
    is touched here.

    Example (DuckDB)::

        rows = con.execute(sufficient_sql("customers", arm="arm", outcome="revenue",
                                          covariate="revenue_pre")).df()
        stats = stats_from_rows(rows)
    """
    y = f"CAST({_quote(outcome)} AS DOUBLE)"
    columns = ["COUNT(*) AS n", f"SUM({y}) AS sum_y", f"SUM({y} * {y}) AS sum_y2"]
    used = [arm, outcome]
    if denominator is not None:
        x = f"CAST({_quote(denominator)} AS DOUBLE)"
        columns += [f"SUM({x}) AS sum_x", f"SUM({x} * {x}) AS sum_x2", f"SUM({x} * {y}) AS sum_xy"]
        used.append(denominator)
    if covariate is not None:
        c = f"CAST({_quote(covariate)} AS DOUBLE)"
        columns += [f"SUM({c}) AS sum_c", f"SUM({c} * {c}) AS sum_c2", f"SUM({y} * {c}) AS sum_yc"]
        used.append(covariate)
    where = " AND ".join(f"{_quote(name)} IS NOT NULL" for name in used)
    select = ",\n    ".join([f"{_quote(arm)} AS arm", *columns])
    return (
        f"SELECT\n    {select}\nFROM {table}\nWHERE {where}\n"
        f"GROUP BY {_quote(arm)}\nORDER BY {_quote(arm)}"
    )


def stats_from_rows(rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> dict[Any, SufficientStats]:
    """Statistics from the rows of :func:`sufficient_sql` (a DataFrame or dicts): one row
    per arm with ``arm`` and the fields. Several rows of the same arm (partial aggregates)
    are added."""
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    parts = []
    for row in records:
        if "arm" not in row or "n" not in row:
            raise ValueError("each row needs the columns 'arm' and 'n' (see sufficient_sql).")
        values = {
            name: (None if row.get(name) is None else float(row[name])) for name in FIELDS[1:]
        }
        parts.append({_plain(row["arm"]): SufficientStats(int(row["n"]), **values)})
    return combine(parts)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _codes(arm: Any) -> tuple[np.ndarray, np.ndarray]:
    """(codes as intp for bincount, labels indexed by code)."""
    if isinstance(getattr(arm, "dtype", None), pd.CategoricalDtype):
        cat = pd.Categorical(arm)
        if (cat.codes < 0).any():
            raise ValueError("arm has missing values.")
        return cat.codes.astype(np.intp), np.asarray(cat.categories, dtype=object)
    values = np.asarray(arm)
    if values.ndim != 1:
        raise ValueError(f"arm must be one-dimensional, not of shape {values.shape}.")
    if values.dtype.kind in "iub" and values.size:
        low, high = int(values.min()), int(values.max())
        if low >= 0 and high <= max(4 * values.size, 1 << 16):
            return values.astype(np.intp, copy=False), np.arange(high + 1)
    codes, labels = pd.factorize(values, sort=True, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError("arm has missing values.")
    return codes.astype(np.intp, copy=False), np.asarray(labels, dtype=object)


def _float(values: Any, name: str, size: int) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if out.shape != (size,):
        raise ValueError(f"{name} has shape {out.shape}, must be ({size},) like arm.")
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
