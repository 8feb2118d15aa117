"""Multiple arms: the family of pairwise comparisons and the Holm adjustment across it.

With arms ``control, a, b, ...`` the family is every variant against the control, then
every variant against every later variant (the baseline is the earlier arm in the arms'
order): :func:`family`. :func:`holm` is the Holm (1979) step-down adjustment of a vector
of p-values; :func:`with_holm` applies it to a tuple of comparisons. Nothing here depends
on the estimator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .results import Comparison


def family(arms: Sequence[Any], control: Any) -> list[tuple[Any, Any]]:
    """``(arm, baseline)`` pairs: each variant vs ``control``, then variant vs variant.

    ``arms`` gives the order (the control may be anywhere in it; it is taken out). For
    variants ``v1, v2, v3``: ``(v1, c), (v2, c), (v3, c), (v2, v1), (v3, v1), (v3, v2)``.
    """
    if control not in arms:
        raise ValueError(f"control {control!r} is not one of the arms {list(arms)}.")
    variants = [a for a in arms if a != control]
    pairs = [(v, control) for v in variants]
    k = len(variants)
    pairs += [(variants[j], variants[i]) for i in range(k) for j in range(i + 1, k)]
    return pairs


def holm(p_values: Any) -> np.ndarray:
    """Holm step-down adjusted p-values, in the order given.

    With the ``m`` finite p-values sorted ``p(1) <= ... <= p(m)``, the adjusted value of
    ``p(i)`` is ``max_{j <= i} min(1, (m - j + 1) p(j))``: the same as
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``. NaN p-values
    (comparisons that could not be estimated) stay NaN and do not count in ``m``.

    Raises:
        ValueError: a p-value outside [0, 1].
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, not of shape {p.shape}.")
    finite = np.isfinite(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        bad = p[finite][(p[finite] < 0) | (p[finite] > 1)][0]
        raise ValueError(f"p-value == {bad!r}, must be in [0, 1].")
    out = np.full(p.shape, math.nan)
    q = p[finite]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * q[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out[finite] = adjusted
    return out


def with_holm(comparisons: Sequence[Comparison]) -> tuple[Comparison, ...]:
    """The comparisons with Holm-adjusted p-values across all of them, in their extras.

    ``p_value`` stays the raw p-value; the extras get ``p_value_raw``,
    ``p_value_adjusted``, ``adjustment`` (``"holm"``) and ``family_size`` (the number of
    comparisons with a p-value). Intervals are not adjusted.
    """
    raw = np.array([c.p_value for c in comparisons], dtype=float)
    adjusted = holm(raw)
    size = int(np.isfinite(raw).sum())
    return tuple(
        dataclasses.replace(
            c,
            extras={
                **c.extras,
                "p_value_raw": float(r),
                "p_value_adjusted": float(a),
                "adjustment": "holm",
                "family_size": size,
            },
        )
        for c, r, a in zip(comparisons, raw, adjusted, strict=True)
    )
