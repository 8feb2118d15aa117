"""RFM scoring and segmentation of customers (pure pandas / numpy, no I/O).

Each of Recency, Frequency and Monetary value gets a score from 1 to 5 (5 = best: most
recent, most frequent, highest spend) by quintile of the cumulative distribution::

    score = ceil(5 * cume_dist),  cume_dist = share of customers whose value is <= this one

Recency is scored on ``-recency_days`` so that the most recent customers score highest.
Ties share a score, and every score can be checked by hand: with ``n`` customers and
``k`` of them at or below a value, the score is ``ceil(5 * k / n)``, computed here in
integers so that no rounding error can move a customer across a boundary.

The segment comes from the (R, F) grid below; the value band from the M score, the
customer pyramid of small, medium and best customers::

           F=1             F=2                 F=3                 F=4 - F=5
    R=5    new             potential loyalist  potential loyalist  champions
    R=4    promising       potential loyalist  potential loyalist  loyal
    R=3    about to sleep  about to sleep      need attention      loyal
    R=2    hibernating     hibernating         at risk             at risk (F=4), cannot lose (F=5)
    R=1    lost            lost                at risk             at risk (F=4), cannot lose (F=5)

    M 1-2 -> 'small',  M 3-4 -> 'medium',  M 5 -> 'best'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["INPUT_COLUMNS", "OUTPUT_COLUMNS", "SEGMENTS", "VALUE_BANDS", "score_rfm"]

INPUT_COLUMNS = ("customer_id", "recency_days", "frequency", "monetary")
SCORE_COLUMNS = ("r_score", "f_score", "m_score", "rfm_score", "segment", "value_band")
OUTPUT_COLUMNS = INPUT_COLUMNS + SCORE_COLUMNS

#: Segment names, from the best customers to the lost ones.
SEGMENTS = (
    "champions",
    "loyal",
    "potential loyalist",
    "new",
    "promising",
    "need attention",
    "about to sleep",
    "cannot lose",
    "at risk",
    "hibernating",
    "lost",
)

#: Value bands of the customer pyramid, from the base to the top.
VALUE_BANDS = ("small", "medium", "best")


def _segment(r: int, f: int) -> str:
    if r <= 2:
        if f == 5:
            return "cannot lose"
        if f >= 3:
            return "at risk"
        return "lost" if r == 1 else "hibernating"
    if r == 3:
        if f <= 2:
            return "about to sleep"
        return "need attention" if f == 3 else "loyal"
    if f >= 4:
        return "loyal" if r == 4 else "champions"
    if f >= 2:
        return "potential loyalist"
    return "promising" if r == 4 else "new"


#: segment of each (R, F) cell: ``_GRID[r - 1, f - 1]``
_GRID = np.array([[_segment(r, f) for f in range(1, 6)] for r in range(1, 6)], dtype=object)
_BANDS = np.array(["small", "small", "medium", "medium", "best"], dtype=object)


def _quintile_score(values: pd.Series) -> np.ndarray:
    """``ceil(5 * k / n)`` with ``k`` = number of values <= each value (ties share ``k``)."""
    n = len(values)
    k = values.rank(method="max").to_numpy(dtype=np.int64)
    return (5 * k + n - 1) // n


def score_rfm(table: pd.DataFrame) -> pd.DataFrame:
    """Score customers on Recency, Frequency and Monetary value and segment them.

    Input columns (other columns are kept as they are):

    ``customer_id``   the customer (unique in the table)
    ``recency_days``  days since the last purchase, as of the reference date
    ``frequency``     number of purchase baskets
    ``monetary``      net spend (returns included)

    Output: a copy of the input, rows and index in the same order, with the columns

    ``r_score``, ``f_score``, ``m_score``  int 1-5, 5 = best (``ceil(5 * cume_dist)``,
                                           recency scored on ``-recency_days``)
    ``rfm_score``   string of the three scores, e.g. ``"545"``
    ``segment``     one of :data:`SEGMENTS`, from the (R, F) grid in the module docstring
    ``value_band``  ``'small'`` (M 1-2), ``'medium'`` (M 3-4) or ``'best'`` (M 5)

    Scores are relative to the customers in ``table``: score a whole population at once.
    An empty table gives an empty frame with these columns. Raises ``ValueError`` for a
    missing column, a missing (NaN) value, a non-numeric measure or a repeated customer.
    """
    missing = [c for c in INPUT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"RFM table has no column {', '.join(map(repr, missing))}")
    for column in INPUT_COLUMNS[1:]:
        if not pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(
            table[column]
        ):
            raise ValueError(f"RFM column {column!r} must be numeric, not {table[column].dtype}")
    for column in INPUT_COLUMNS:
        if table[column].isna().any():
            raise ValueError(f"RFM column {column!r} has missing values")
    repeated = table["customer_id"].duplicated()
    if repeated.any():
        first = table["customer_id"][repeated].iloc[0]
        raise ValueError(f"RFM column 'customer_id' repeats customer {first!r}")

    out = table.copy()
    if out.empty:
        for column in ("r_score", "f_score", "m_score"):
            out[column] = pd.Series(dtype="int64")
        for column in ("rfm_score", "segment", "value_band"):
            out[column] = pd.Series(dtype="str")
        return out

    r = _quintile_score(-out["recency_days"])
    f = _quintile_score(out["frequency"])
    m = _quintile_score(out["monetary"])
    out["r_score"] = r
    out["f_score"] = f
    out["m_score"] = m
    labels = {
        "rfm_score": [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)],
        "segment": _GRID[r - 1, f - 1],
        "value_band": _BANDS[m - 1],
    }
    for column, values in labels.items():
        out[column] = pd.Series(values, index=out.index, dtype="str")
    return out
