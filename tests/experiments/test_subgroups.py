"""Subgroup table: Holm pinned to statsmodels, Cochran's Q and I^2 to a hand computation and
to ``statsmodels.stats.meta_analysis.combine_effects``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from loyalty_pilot.experiments.results import degenerate, from_absolute
from loyalty_pilot.experiments.subgroups import cochran_q, subgroup_table, subgroup_tables

ESTIMATES = [0.02, 0.05, -0.01, 0.03]
SES = [0.01, 0.02, 0.015, 0.01]


def comp(estimate: float, se: float, df: float = 10.0, extras: bool = True):
    q = stats.t.ppf(0.975, df)
    p = 2 * stats.t.sf(abs(estimate) / se, df)
    return from_absolute(
        "cash", "control", "sales", "did", estimate, estimate - q * se, estimate + q * se, p,
        10, 1.0, extras={"se": se, "df": df} if extras else {},
    )  # fmt: skip


def test_cochran_q_by_hand():
    w = [1 / s**2 for s in SES]
    pooled = sum(wi * e for wi, e in zip(w, ESTIMATES, strict=True)) / sum(w)
    q = sum(wi * (e - pooled) ** 2 for wi, e in zip(w, ESTIMATES, strict=True))
    r = cochran_q(ESTIMATES, SES)
    assert r["pooled"] == pytest.approx(pooled, rel=1e-12)
    assert r["pooled_se"] == pytest.approx(1 / math.sqrt(sum(w)), rel=1e-12)
    assert r["q"] == pytest.approx(q, rel=1e-12)
    assert r["df"] == 3
    assert r["p_value"] == pytest.approx(stats.chi2.sf(q, 3), rel=1e-12)
    assert r["i2"] == pytest.approx((q - 3) / q, rel=1e-12)
    # homogeneous effects: I^2 floors at 0
    assert cochran_q([1.0, 1.1], [1.0, 1.0])["i2"] == 0.0
    assert math.isnan(cochran_q([1.0, math.nan], [1.0, 1.0])["q"])


def test_cochran_q_matches_statsmodels_meta_analysis():
    from statsmodels.stats.meta_analysis import combine_effects

    ref = combine_effects(np.array(ESTIMATES), np.array(SES) ** 2)
    r = cochran_q(ESTIMATES, SES)
    assert r["q"] == pytest.approx(ref.q, rel=1e-10)
    assert r["i2"] == pytest.approx(ref.i2, rel=1e-10)


def test_table_holm_flags_and_caveat():
    from statsmodels.stats.multitest import multipletests

    comps = {f"seg{i}": comp(e, s) for i, (e, s) in enumerate(zip(ESTIMATES, SES, strict=True))}
    comps["seg9"] = degenerate("cash", "control", "sales", "did", "one_unit_per_arm", 1)
    result = subgroup_table(comps, by="rfm_segment")
    t = result.table
    assert list(t["rfm_segment"]) == ["seg0", "seg1", "seg2", "seg3", "seg9"]
    assert t["exploratory"].all()
    raw = np.array([c.p_value for c in list(comps.values())[:4]])
    assert t["p_value_holm"].iloc[:4].to_numpy() == pytest.approx(
        multipletests(raw, method="holm")[1], rel=1e-12
    )
    assert math.isnan(t["p_value_holm"].iloc[4])
    assert t["se"].iloc[:4].tolist() == pytest.approx(SES)
    assert result.n_subgroups == 5
    assert result.n_tested == 4
    assert result.n_significant == int((raw < 0.05).sum())
    assert result.n_significant_holm == int((multipletests(raw, method="holm")[1] < 0.05).sum())
    assert result.q == pytest.approx(cochran_q(ESTIMATES, SES)["q"])
    assert result.exploratory is True
    assert result.caveat.startswith("Exploratory: 4 rfm_segment subgroups tested")
    assert "1 could not be estimated" in result.caveat
    assert "Holm" in result.caveat
    assert "not the pre-registered question" in result.caveat
    assert "Cochran's Q" in result.caveat
    d = json.loads(json.dumps(result.to_dict()))
    assert d["exploratory"] is True
    assert all(row["exploratory"] for row in d["subgroups"])
    assert d["subgroups"][4]["p_value"] is None
    assert d["heterogeneity"]["df"] == 3


def test_caveat_says_none_when_nothing_survives():
    comps = {"north": comp(0.001, 0.01), "south": comp(0.03, 0.0125)}  # p 0.92 and 0.037
    result = subgroup_table(comps, by="region")
    assert result.n_significant == 1
    assert result.n_significant_holm == 0  # Holm: 2 x 0.037 > 0.05
    assert "none after Holm" in result.caveat


def test_se_from_interval_when_extras_lack_it():
    c = comp(0.02, 0.01, extras=False)
    t = subgroup_table({"a": c, "b": comp(0.0, 0.01)}).table
    half = (c.ci_high - c.ci_low) / 2
    assert t["se"].iloc[0] == pytest.approx(half / stats.norm.ppf(0.975))


def test_several_dimensions_and_bad_input():
    dims = {
        "rfm_segment": {"champions": comp(0.04, 0.01), "lapsed": comp(0.0, 0.02)},
        "region": {"north": comp(0.02, 0.01), "south": comp(0.01, 0.01)},
    }
    out = subgroup_tables(dims)
    assert set(out) == {"rfm_segment", "region"}
    assert "cut 2 ways" in out["region"].caveat
    assert out["region"].table.columns[0] == "region"
    with pytest.raises(ValueError, match="comparisons is empty"):
        subgroup_table({})
    with pytest.raises(ValueError, match="by =="):
        subgroup_table({"a": comp(0.0, 1.0)}, by="estimate")


def test_welch_heterogeneity_matches_statsmodels_welch_anova():
    """Welch's F from (mean, se, df) equals statsmodels' Welch ANOVA on the raw groups."""
    from statsmodels.stats.oneway import anova_oneway

    from loyalty_pilot.experiments.subgroups import welch_heterogeneity

    rng = np.random.default_rng(3)
    groups = [rng.normal(m, sd, size=n) for m, sd, n in ((0, 1, 4), (0.5, 2, 5), (1, 0.5, 3))]
    means = [g.mean() for g in groups]
    ses = [g.std(ddof=1) / math.sqrt(len(g)) for g in groups]
    dfs = [len(g) - 1 for g in groups]
    ours = welch_heterogeneity(means, ses, dfs)
    ref = anova_oneway(groups, use_var="unequal", welch_correction=True)
    assert ours["F"] == pytest.approx(ref.statistic, rel=1e-10)
    assert ours["df2"] == pytest.approx(ref.df[1], rel=1e-10)
    assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_table_uses_welch_when_the_subgroups_have_df():
    comps = {
        f"r{i}": comp(e, s, df=3.0) for i, (e, s) in enumerate(zip(ESTIMATES, SES, strict=True))
    }
    result = subgroup_table(comps, by="region")
    assert result.het_test == "welch_f"
    assert result.het_df[0] == 3
    assert result.het_p_value > result.q_p_value  # Q treats the se's as known
    d = result.to_dict()["heterogeneity"]
    assert d["test"] == "welch_f"
    assert d["p_value"] == pytest.approx(result.het_p_value)
    assert d["q_p_value"] == pytest.approx(result.q_p_value)
    assert "Welch's F" in result.caveat
    no_df = subgroup_table({"a": comp(0.02, 0.01, extras=False), "b": comp(0.0, 0.01)})
    assert no_df.het_test == "cochran_q"


def test_heterogeneity_size_by_region_with_few_stores():
    """Placebo: 5 regions of 4 stores (2 treated), no effect anywhere, region DiD with
    CR2 (2 df each). Cochran's Q rejects far too often; Welch's F keeps the level."""
    from loyalty_pilot.experiments.did import did
    from loyalty_pilot.experiments.panel import PanelData

    rng = np.random.default_rng(11)
    n, periods, pre, rho = 4, 16, 10, 0.6
    q_hits, w_hits = [], []
    for _ in range(120):
        comps = {}
        for r in range(5):
            eps = rng.normal(size=(n, periods))
            noise = np.empty_like(eps)
            noise[:, 0] = eps[:, 0] / math.sqrt(1 - rho**2)
            for t in range(1, periods):
                noise[:, t] = rho * noise[:, t - 1] + eps[:, t]
            y = 100 + 5 * rng.normal(size=(n, 1)) + noise * rng.uniform(0.5, 2, size=(n, 1))
            treated = np.zeros(n, bool)
            treated[rng.permutation(n)[:2]] = True
            post = np.arange(periods) >= pre
            comps[f"r{r}"] = did(PanelData(y, np.arange(n), np.arange(periods), treated, post))
        table = subgroup_table(comps, by="region")
        q_hits.append(table.q_p_value < 0.05)
        w_hits.append(table.het_p_value < 0.05)
    print(f"size at 5 %: Cochran's Q {np.mean(q_hits):.3f}, Welch's F {np.mean(w_hits):.3f}")
    assert float(np.mean(w_hits)) <= 0.09
    assert float(np.mean(q_hits)) > 0.12
