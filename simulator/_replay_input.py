"""Input side of :mod:`loyalty_pilot.simulator.replay`: lean columns, days and months.

The baskets become int32 days, int32 (else int64) cents and int32 customer codes; the
window's calendar months become the ledger rows (rule R11 of the replay's docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

try:  # integer ids to text and their text order without Python strings (pandas' str type)
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - numpy strings instead
    pa = pc = None

from loyalty_pilot.simulator import _replay_kernels as _k
from loyalty_pilot.simulator.programme import Programme

_EPOCH = np.datetime64("1970-01-01", "D")


def _prepare(baskets: pd.DataFrame, programme: Programme) -> dict[str, Any]:
    """Lean columns: int32 days, int32 (else int64) cents, int32 customer codes."""
    for column in ("customer_id", "basket_id", "date", "amount"):
        if column not in baskets.columns:
            raise ValueError(f"baskets has no column {column!r}")
    amount = pd.to_numeric(baskets["amount"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(amount).all():
        raise ValueError("baskets column 'amount' has missing or non-numeric values")
    dates = _datetimes(baskets["date"])
    if dates.isna().any():
        raise ValueError("baskets column 'date' has missing values")
    date_raw, date_per_day, date_per_second = _datetime_ints(dates)
    n = len(date_raw)
    day = np.empty(n, dtype=np.int32)
    for part in _k.blocks(n):
        np.floor_divide(date_raw[part], date_per_day, out=day[part], casting="unsafe")
    if "ts" in baskets.columns:
        ts_raw, per_day, per_second = _datetime_ints(_datetimes(baskets["ts"]))
        ts_source, ts = ts_raw, (ts_raw, per_day, per_second)
    else:  # ordered by the date column itself
        ts_source, ts = date_raw, (None, date_per_day, date_per_second)
    fits = n == 0 or max(-np.rint(amount.min() * 100), np.rint(amount.max() * 100)) < 2**31
    cents = np.empty(n, dtype=np.int32 if fits else np.int64)
    for part in _k.blocks(n):
        scaled = amount[part] * 100
        cents[part] = np.rint(scaled, out=scaled)
    customer = baskets["customer_id"]
    dense = _dense_integer_codes(customer)
    if dense is not None:
        identified, (codes, n_codes, labels) = None, dense
    else:
        identified = customer.notna().to_numpy().copy()
        if not (pd.api.types.is_numeric_dtype(customer) or pd.api.types.is_bool_dtype(customer)):
            customer = customer.astype("string")
            identified &= (customer.str.len() > 0).fillna(False).to_numpy(dtype=bool)
            customer = customer.where(identified)
        factor, uniques = pd.factorize(customer)
        texts = np.asarray(uniques.astype(str), dtype=object)
        codes, n_codes = factor.astype(_k.index_dtype(len(texts) + 1)), len(texts)

        def labels(present: np.ndarray) -> np.ndarray:
            return texts[present].astype(str)

        if identified.all():
            identified = None
    dept = None  # a department without a multiplier counts 1: None when none has one
    multipliers = programme.earn.department_multipliers if programme.earn else {}
    if multipliers:
        if "department" not in baskets.columns:
            raise ValueError("the programme has department multipliers: baskets need 'department'")
        dept = baskets["department"].map(multipliers).fillna(1.0).to_numpy(dtype=float)
    return {
        "day": day,
        "ts": ts,
        "ts_source": ts_source,
        "cents": cents,
        "identified": identified,
        "customer_code": codes,
        "n_codes": n_codes,
        "labels": labels,
        "basket_id": baskets["basket_id"],
        "dept": dept,
    }


def _datetimes(column: pd.Series) -> pd.Series:
    """``pd.to_datetime(column)``, without a copy when it already holds datetimes."""
    return column if pd.api.types.is_datetime64_dtype(column.dtype) else pd.to_datetime(column)


def _datetime_ints(values: pd.Series) -> tuple[np.ndarray, int, int]:
    """Timestamps as int64 (a view when possible), with the units in a day and a second."""
    array = values.to_numpy()
    if array.dtype.kind != "M":  # e.g. time zone aware: UTC nanoseconds
        array = np.asarray(values.dt.tz_convert(None) if values.dt.tz else values, "M8[ns]")
    unit = np.datetime_data(array.dtype)[0]
    per_day = int(np.timedelta64(1, "D") // np.timedelta64(1, unit))
    per_second = int(np.timedelta64(1, "s") // np.timedelta64(1, unit)) if per_day > 86400 else 1
    return array.view(np.int64), per_day, per_second


def _dense_integer_codes(customer: pd.Series) -> tuple[np.ndarray, int, Any] | None:
    """Codes ``id - min`` for integer ids over a compact range (no hashing), else None."""
    if not isinstance(customer.dtype, np.dtype) or customer.dtype.kind not in "iu":
        return None
    ids = customer.to_numpy()
    if len(ids) == 0:
        return None
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo >= min(max(4 * len(ids), 1 << 20), (1 << 31) - 1):
        return None
    codes = np.empty(len(ids), dtype=np.int32)
    for part in _k.blocks(len(ids)):
        np.subtract(ids[part], ids.dtype.type(lo), out=codes[part], casting="unsafe")

    def labels(present: np.ndarray) -> Any:
        values = present.astype(ids.dtype) + ids.dtype.type(lo)
        return values.astype(str) if pa is None else pc.cast(pa.array(values), pa.string())

    return codes, hi - lo + 1, labels


def _day(value: dt.date) -> int:
    return int((np.datetime64(value, "D") - _EPOCH).astype(np.int64))


def _to_date(day: int) -> dt.date:
    return (_EPOCH + np.timedelta64(int(day), "D")).astype(dt.date)


def _months(s_day: int, e_day: int) -> dict[str, np.ndarray]:
    first_month = (_EPOCH + s_day).astype("datetime64[M]")
    last_month = (_EPOCH + e_day).astype("datetime64[M]")
    month = np.arange(first_month, last_month + 1)
    first = month.astype("datetime64[D]")
    month_end = (month + 1).astype("datetime64[D]") - 1
    first_days = np.maximum((first - _EPOCH).astype(np.int64), s_day)
    snapshot = np.minimum((month_end - _EPOCH).astype(np.int64), e_day)
    span = np.diff(np.append(first_days, snapshot[-1] + 1))
    return {
        "month": first,
        "first": first_days,
        "snapshot": snapshot,
        "year": month.astype("datetime64[Y]").astype(np.int64) + 1970,
        # ledger row of every day of the window, from its first day
        "lut": np.repeat(np.arange(len(first), dtype=np.intp), span),
    }


def _monthly_money(day: np.ndarray, cents: np.ndarray, months: dict[str, Any]) -> np.ndarray:
    """Sum of ``cents / 100`` by ledger row, in the order of the baskets."""
    return _k.sum_by(
        np.zeros(len(months["first"])),
        len(day),
        lambda part: _month_index(day[part], months),
        lambda part: cents[part] / 100.0,
    )


def _month_index(day: np.ndarray, months: dict[str, np.ndarray]) -> np.ndarray:
    """Ledger row (intp) of each day (days must lie in the window)."""
    offset = np.subtract(day, months["first"][0], dtype=np.int64 if day.itemsize > 4 else np.int32)
    return months["lut"][offset]
