"""Heterogeneity of the uplift: by RFM segment, by region. Exploratory, never the decision.

The caller estimates each subgroup with the same estimator as the primary analysis (one
:class:`~loyalty_pilot.experiments.results.Comparison` per subgroup);
:func:`subgroup_table` lays them out with raw and Holm-adjusted p-values (Holm across the
subgroups of one dimension, :func:`loyalty_pilot.experiments.multiple.holm`), flags every
row ``exploratory`` and writes the multiplicity caveat, and tests whether the effects
differ with Cochran's Q and I^2 (:func:`cochran_q`).

Cochran's Q assumes independent subgroup estimates (disjoint stores, as regions are) and
normal sampling distributions. Segments of the same stores' customers share the stores'
shocks: their estimates are positively correlated, which makes Q conservative. With few
stores per subgroup the estimates are t- rather than normal-distributed and Q is then
somewhat liberal. Either way it is a screen, not a finding.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .multiple import holm
from .results import OK, Comparison

COLUMNS = (
    "estimate",
    "ci_low",
    "ci_high",
    "relative",
    "rel_ci_low",
    "rel_ci_high",
    "se",
    "p_value",
    "p_value_holm",
    "significant",
    "significant_holm",
    "n_units",
    "status",
    "exploratory",
)


@dataclass(frozen=True, eq=False)
class SubgroupTable:
    """One dimension's subgroup effects, the heterogeneity test and the caveat.

    ``table`` has one row per subgroup (the label in the column named ``by``) and the
    columns of :data:`COLUMNS`; ``significant`` and ``significant_holm`` compare the raw
    and Holm-adjusted p-values with ``alpha``. ``q``, ``q_df``, ``q_p_value``, ``i2``:
    Cochran's Q over the subgroups with a finite estimate and standard error (NaN with
    fewer than two).
    """

    by: str
    table: pd.DataFrame
    alpha: float
    n_subgroups: int
    n_tested: int
    n_significant: int
    n_significant_holm: int
    q: float
    q_df: int
    q_p_value: float
    i2: float
    caveat: str
    exploratory: bool = True

    def records(self) -> list[dict[str, Any]]:
        """The rows as JSON-ready dicts (NaN becomes None)."""
        return [{k: _clean(v) for k, v in row.items()} for row in self.table.to_dict("records")]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary figures, the caveat and the rows."""
        return {
            "by": self.by,
            "exploratory": self.exploratory,
            "alpha": self.alpha,
            "n_subgroups": self.n_subgroups,
            "n_tested": self.n_tested,
            "n_significant": self.n_significant,
            "n_significant_holm": self.n_significant_holm,
            "heterogeneity": {
                "test": "cochran_q",
                "q": _clean(self.q),
                "df": self.q_df,
                "p_value": _clean(self.q_p_value),
                "i2": _clean(self.i2),
            },
            "caveat": self.caveat,
            "subgroups": self.records(),
        }


def cochran_q(estimates: Any, ses: Any) -> dict[str, float]:
    """Cochran's Q test that the effects are equal, and Higgins & Thompson's I^2.

    With weights ``w = 1 / se^2`` and the fixed-effect mean ``m = sum w e / sum w``:
    ``Q = sum w (e - m)^2``, chi-square with ``k - 1`` df under equal effects;
    ``I^2 = max(0, (Q - df) / Q)``, the share of the variation beyond chance. Pairs with
    a non-finite estimate or a non-positive standard error are left out; with fewer than
    two left every figure is NaN.

    >>> r = cochran_q([1.0, 3.0], [1.0, 1.0])
    >>> r["q"], r["df"], round(r["p_value"], 4), r["i2"]
    (2.0, 1, 0.1573, 0.5)
    """
    from scipy import stats

    e = np.asarray(estimates, dtype=float)
    s = np.asarray(ses, dtype=float)
    if e.shape != s.shape or e.ndim != 1:
        raise ValueError(f"estimates {e.shape} and ses {s.shape} must be vectors of one length.")
    keep = np.isfinite(e) & np.isfinite(s) & (s > 0)
    k = int(keep.sum())
    if k < 2:
        nan = math.nan
        return {"q": nan, "df": max(k - 1, 0), "p_value": nan, "i2": nan, "pooled": nan,
                "pooled_se": nan}  # fmt: skip
    e, w = e[keep], 1.0 / s[keep] ** 2
    pooled = float(w @ e / w.sum())
    q = float(w @ (e - pooled) ** 2)
    df = k - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return {
        "q": q,
        "df": df,
        "p_value": float(stats.chi2.sf(q, df)),
        "i2": i2,
        "pooled": pooled,
        "pooled_se": float(1.0 / math.sqrt(w.sum())),
    }


def subgroup_table(
    comparisons: Mapping[str, Comparison],
    *,
    by: str = "subgroup",
    alpha: float = 0.05,
) -> SubgroupTable:
    """Subgroup effects with Holm across the subgroups, flagged exploratory, and Cochran's Q.

    ``comparisons`` maps each subgroup label (e.g. an RFM segment or a region) to its
    Comparison, in the order of the rows. ``se`` is ``extras["se"]``, else the
    half-width of the interval over the normal quantile of its level. Degenerate
    subgroups stay in the table (NaN figures and their status) but count in neither Holm's
    family nor Q.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1).")
    if not comparisons:
        raise ValueError("comparisons is empty: give one Comparison per subgroup.")
    if by in COLUMNS:
        raise ValueError(f"by == {by!r} is a column of the table; choose another name.")
    rows = []
    for label, c in comparisons.items():
        ok = c.status == OK
        nan = math.nan
        rows.append(
            {
                by: str(label),
                "estimate": c.estimate if ok else nan,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
                "relative": c.relative,
                "rel_ci_low": c.rel_ci_low,
                "rel_ci_high": c.rel_ci_high,
                "se": _se(c) if ok else nan,
                "p_value": c.p_value if ok else nan,
                "n_units": int(c.n_units),
                "status": c.status,
            }
        )
    table = pd.DataFrame(rows)
    table["p_value_holm"] = holm(table["p_value"].to_numpy(dtype=float))
    table["significant"] = table["p_value"] < alpha
    table["significant_holm"] = table["p_value_holm"] < alpha
    table["exploratory"] = True
    table = table[[by, *COLUMNS]]
    het = cochran_q(table["estimate"], table["se"])
    n_tested = int(np.isfinite(table["p_value"]).sum())
    n_sig = int(table["significant"].sum())
    n_holm = int(table["significant_holm"].sum())
    return SubgroupTable(
        by=by,
        table=table,
        alpha=float(alpha),
        n_subgroups=len(table),
        n_tested=n_tested,
        n_significant=n_sig,
        n_significant_holm=n_holm,
        q=het["q"],
        q_df=int(het["df"]),
        q_p_value=het["p_value"],
        i2=het["i2"],
        caveat=_caveat(by, len(table), n_tested, n_sig, n_holm, alpha, het),
    )


def subgroup_tables(
    by_dimension: Mapping[str, Mapping[str, Comparison]], *, alpha: float = 0.05
) -> dict[str, SubgroupTable]:
    """:func:`subgroup_table` for each dimension (e.g. ``{"rfm_segment": ..., "region": ...}``).

    Holm runs within each dimension; each caveat says how many dimensions were cut, as
    every extra cut is another chance of a spurious subgroup finding.
    """
    out = {}
    n_dims = len(by_dimension)
    for by, comparisons in by_dimension.items():
        result = subgroup_table(comparisons, by=by, alpha=alpha)
        if n_dims > 1:
            note = (
                f" The effect was cut {n_dims} ways ({', '.join(map(str, by_dimension))}); "
                "Holm adjusts within each cut, not across them."
            )
            result = dataclasses.replace(result, caveat=result.caveat + note)
        out[by] = result
    return out


def _se(c: Comparison) -> float:
    se = c.extras.get("se")
    if se is not None and math.isfinite(float(se)) and float(se) > 0:
        return float(se)
    from scipy import stats

    half = (c.ci_high - c.ci_low) / 2.0
    if not (math.isfinite(half) and half > 0):
        return math.nan
    return float(half / stats.norm.ppf(1.0 - c.alpha / 2.0))


def _caveat(
    by: str, n: int, n_tested: int, n_sig: int, n_holm: int, alpha: float, het: dict[str, float]
) -> str:
    def count(k: int) -> str:
        return "none" if k == 0 else f"{k}"

    untested = n - n_tested
    text = (
        f"Exploratory: {n_tested} {by} subgroup{'s' if n_tested != 1 else ''} tested"
        + (f" ({untested} could not be estimated)" if untested else "")
        + f"; {count(n_sig)} significant at {alpha:g} before adjustment, "
        f"{count(n_holm)} after Holm's adjustment for the {n_tested} tests. Subgroup "
        "differences are not the pre-registered question: treat them as hypotheses for a "
        "later pilot, not as findings."
    )
    if math.isfinite(het["q"]):
        text += (
            f" Heterogeneity: Cochran's Q = {het['q']:.2f} on {het['df']} df "
            f"(p = {het['p_value']:.3g}), I^2 = {het['i2']:.0%}."
        )
    else:
        text += " Heterogeneity: not tested (fewer than two subgroups with an estimate)."
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
