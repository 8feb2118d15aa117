"""Heterogeneity of the uplift: by RFM segment, by region. Exploratory, never the decision.

The caller estimates each subgroup with the same estimator as the primary analysis (one
:class:`~loyalty_pilot.experiments.results.Comparison` per subgroup);
:func:`subgroup_table` lays them out with raw and Holm-adjusted p-values (Holm across the
subgroups of one dimension, :func:`loyalty_pilot.experiments.multiple.holm`), flags every
row ``exploratory`` and writes the multiplicity caveat, and tests whether the effects
differ.

The test of equal effects. Cochran's Q (:func:`cochran_q`, chi-square on ``k - 1`` df)
treats the subgroup standard errors as known; with few stores per region they are
estimated from a handful of units (CR2 df of 2 to 6) and Q's size at 5 % is 19-33 % (see
``benchmarks/validity_review.py``). When every tested subgroup carries its degrees of
freedom (``extras["df"]``), the table therefore uses Welch's (1951) heterogeneous-variance
F test of equal means (:func:`welch_heterogeneity`): the Hartung-Knapp-type correction of
Q for estimated variances, ``F(k - 1, (k^2 - 1) / (3 Lambda))``; its size stays at about
5 % with 2 to 6 df per region. Without df it falls back to Cochran's Q (and says so).
Cochran's Q and I^2 are reported either way, as descriptions. Both tests assume
independent subgroup estimates (disjoint stores, as regions are). Segments of the same
stores' customers share the stores' shocks: their estimates are positively correlated,
which makes either test conservative. Either way it is a screen, not a finding.
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
    fewer than two). ``het_test`` is the test of equal effects used (``"welch_f"`` or
    ``"cochran_q"``), ``het_statistic``, ``het_df`` (``(df1, df2)``, ``df2`` None for Q)
    and ``het_p_value`` its figures (see the module docstring).
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
    het_test: str = "cochran_q"
    het_statistic: float = math.nan
    het_df: tuple[float, float | None] = (math.nan, None)
    het_p_value: float = math.nan

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
                "test": self.het_test,
                "statistic": _clean(self.het_statistic),
                "df1": _clean(self.het_df[0]),
                "df2": _clean(self.het_df[1]),
                "p_value": _clean(self.het_p_value),
                "q": _clean(self.q),
                "df": self.q_df,
                "q_p_value": _clean(self.q_p_value),
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


def welch_heterogeneity(estimates: Any, ses: Any, dfs: Any) -> dict[str, float]:
    """Welch's (1951) F test that ``k`` effects with estimated standard errors are equal.

    With ``w = 1 / se^2``, ``W = sum w`` and ``m = sum w e / W``:
    ``A = sum w (e - m)^2 / (k - 1)`` (Cochran's Q over its df),
    ``Lambda = sum (1 - w / W)^2 / df``, ``F = A / (1 + 2 (k - 2) Lambda / (k^2 - 1))`` on
    ``(k - 1, (k^2 - 1) / (3 Lambda))`` df. As every ``df -> inf`` it becomes Q on
    ``k - 1`` df. Triples with a non-finite estimate, a non-positive se or df are left
    out; fewer than two left: NaN.

    >>> r = welch_heterogeneity([1.0, 3.0], [1.0, 1.0], [4.0, 4.0])
    >>> round(r["F"], 3), r["df1"], round(r["df2"], 3), round(r["p_value"], 4)
    (2.0, 1, 8.0, 0.195)
    """
    from scipy import stats

    e, s, d = (np.asarray(v, dtype=float) for v in (estimates, ses, dfs))
    if not e.shape == s.shape == d.shape or e.ndim != 1:
        raise ValueError(f"estimates {e.shape}, ses {s.shape} and dfs {d.shape} must match.")
    keep = np.isfinite(e) & np.isfinite(s) & (s > 0) & (d > 0) & ~np.isnan(d)
    k = int(keep.sum())
    if k < 2:
        return {"F": math.nan, "df1": max(k - 1, 0), "df2": math.nan, "p_value": math.nan}
    e, w, d = e[keep], 1.0 / s[keep] ** 2, d[keep]
    total = w.sum()
    mean = float(w @ e / total)
    a = float(w @ (e - mean) ** 2) / (k - 1)
    lam = float(np.sum((1.0 - w / total) ** 2 / d))
    f = a / (1.0 + 2.0 * (k - 2) * lam / (k * k - 1))
    df2 = (k * k - 1) / (3.0 * lam) if lam > 0 else math.inf
    return {"F": f, "df1": k - 1, "df2": df2, "p_value": float(stats.f.sf(f, k - 1, df2))}


def subgroup_table(
    comparisons: Mapping[str, Comparison],
    *,
    by: str = "subgroup",
    alpha: float = 0.05,
) -> SubgroupTable:
    """Subgroup effects with Holm across the subgroups, flagged exploratory, and Cochran's Q.

    ``comparisons`` maps each subgroup label (e.g. an RFM segment or a region) to its
    Comparison, in the order of the rows. ``se`` is ``extras["se"]``, else the
    half-width of the interval over the normal quantile of its level; ``df`` is
    ``extras["df"]``. Degenerate subgroups stay in the table (NaN figures and their
    status) but count in neither Holm's family nor the heterogeneity test, which is
    Welch's F when every tested subgroup has a df, else Cochran's Q.
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
                "_df": _df(c) if ok else nan,
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
    dfs = table.pop("_df").to_numpy(dtype=float)
    table = table[[by, *COLUMNS]]
    het = cochran_q(table["estimate"], table["se"])
    tested = np.isfinite(table["estimate"].to_numpy(float)) & (table["se"].to_numpy(float) > 0)
    if tested.sum() >= 2 and np.all(np.isfinite(dfs[tested]) & (dfs[tested] > 0)):
        w = welch_heterogeneity(table["estimate"], table["se"], dfs)
        test = ("welch_f", w["F"], (float(w["df1"]), w["df2"]), w["p_value"])
    else:
        test = ("cochran_q", het["q"], (float(het["df"]), None), het["p_value"])
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
        caveat=_caveat(by, len(table), n_tested, n_sig, n_holm, alpha, het, test),
        het_test=test[0],
        het_statistic=test[1],
        het_df=test[2],
        het_p_value=test[3],
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


def _df(c: Comparison) -> float:
    df = c.extras.get("df")
    try:
        return float(df) if df is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _caveat(
    by: str, n: int, n_tested: int, n_sig: int, n_holm: int, alpha: float,
    het: dict[str, float], test: tuple[str, float, tuple[float, float | None], float],
) -> str:  # fmt: skip
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
    if math.isfinite(het["q"]) and test[0] == "welch_f" and math.isfinite(test[3]):
        text += (
            f" Heterogeneity: Welch's F = {test[1]:.2f} on ({test[2][0]:.0f}, "
            f"{test[2][1]:.3g}) df (p = {test[3]:.3g}; Cochran's Q = {het['q']:.2f}, "
            f"which treats the subgroups' standard errors as known), I^2 = {het['i2']:.0%}."
        )
    elif math.isfinite(het["q"]):
        text += (
            f" Heterogeneity: Cochran's Q = {het['q']:.2f} on {het['df']} df "
            f"(p = {het['p_value']:.3g}; no df for the subgroups' standard errors, so it "
            f"treats them as known and is liberal with few units), I^2 = {het['i2']:.0%}."
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
