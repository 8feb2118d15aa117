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
