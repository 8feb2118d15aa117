"""A fast version of ``benchmarks/validity.py``: A/A false positives and coverage, measured.

200 placebo pilots of 16 stores (8 treated, 8 control, complete randomization) on one
small synthetic chain, for the default method (``did`` with CR2) and randomization
inference. With n = 200 pilots a valid 5 % test rejects 10 times on average, binomial sd
sqrt(200 * 0.05 * 0.95) = 3.1 rejections (1.5 points): the band [1.5 %, 10 %] (3 to 20
rejections) is about -2.3 / +3.2 sd around 5 %, wide enough for a valid method to stay in
(P(outside) about 0.4 %) and narrow enough to catch a test twice too liberal. Coverage
>= 88 % is 4.5 sd below 95 %. The full study (>= 1,000 pilots per size, every method) is
the benchmark script; its results are in BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from loyalty_pilot.experiments.did import did

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "validity.py"
N_PILOTS = 200
SIZE = 16


def _load():
    name = "loyalty_pilot_benchmarks_validity"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


validity = _load()


@pytest.fixture(scope="module")
def pilots():
    panels = validity.make_chains(1, stores=32, customers=4000, weeks=64, seed=11)
    return validity.draw_pilots(panels, SIZE, N_PILOTS, pre=40, post=12, effect=0.05, seed=3)


@pytest.fixture(scope="module")
def methods():
    # RI by 999 random draws instead of exact enumeration (12,870 assignments): faster,
    # and still a valid test (the observed assignment is among the draws).
    return validity.make_methods(boot=199, ri_draws=999, ri_exact_max=0)


def test_pilots_are_balanced_and_the_truth_is_the_injected_effect(pilots):
    assert len(pilots) == N_PILOTS
    for pilot in pilots[:20]:
        assert pilot.aa.n_treated == pilot.aa.n_control == SIZE // 2
        diff = pilot.effect.y - pilot.aa.y
        block = np.ix_(pilot.aa.treated, pilot.aa.post)
        assert diff[block].mean() == pytest.approx(pilot.truth, rel=1e-12)
        diff[block] = 0.0
        assert not diff.any()  # nothing injected outside the treated stores' test weeks
        # DiD is linear in y: the effect panel moves its estimate by the truth exactly.
        moved = did(pilot.effect).estimate - did(pilot.aa).estimate
        assert moved == pytest.approx(pilot.truth, rel=1e-9)


@pytest.mark.parametrize("name", ["did-cr2", "ri"])
def test_false_positive_rate_and_coverage(name, pilots, methods):
    cell = validity.evaluate(validity.Cell(name, f"N = {SIZE}"), methods[name], pilots)
    assert cell.fail == 0, cell.errors or cell.statuses
    assert cell.n == cell.n_cov == N_PILOTS
    assert 0.015 <= cell.fpr() <= 0.10, f"{name}: A/A FPR {cell.fpr():.1%}"
    assert cell.coverage() >= 0.88, f"{name}: coverage {cell.coverage():.1%}"


def test_the_harness_catches_an_invalid_method(pilots):
    """A test that always rejects and a point 'interval' are flagged by both bands."""

    def broken(data, seed):
        result = did(data)
        return dataclasses.replace(
            result, p_value=0.0, ci_low=result.estimate, ci_high=result.estimate
        )

    cell = validity.evaluate(validity.Cell("broken", "N = 16"), broken, pilots[:50])
    assert cell.fpr() == 1.0
    assert cell.coverage() == 0.0
    assert validity.verdict(cell) == (False, False)


def test_clopper_pearson_brackets_the_rate():
    low, high = validity.clopper_pearson(10, 200)
    assert low < 0.05 < high
    assert (low, high) == pytest.approx((0.0243, 0.0900), abs=5e-4)
    assert validity.clopper_pearson(0, 50)[0] == 0.0
    assert math.isnan(validity.clopper_pearson(0, 0)[0])


# -- the total-sales ratio DiD ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ratio_pilots():
    panels = validity.make_chains(1, stores=32, customers=4000, weeks=64, seed=11)
    return {
        controls: validity.draw_ratio_pilots(
            panels, SIZE, N_PILOTS, pre=40, post=12, effect=0.05, seed=3, controls=controls
        )
        for controls in ("matched", "all")
    }


def test_ratio_pilots_carry_the_total_sales_truth(ratio_pilots):
    for pilot in ratio_pilots["all"][:10]:
        aa = pilot.aa
        assert (aa.n_treated, aa.n_control) == (SIZE // 2, 32 - SIZE // 2)
        block = np.ix_(aa.treated, aa.post)
        for kind, (data, truth) in pilot.effects.items():
            assert truth == pytest.approx(data.y[block].sum() / aa.y[block].sum() - 1, 1e-12)
            moved = data.y - aa.y
            moved[block] = 0.0
            assert not moved.any(), kind
        assert pilot.effects["homogeneous"][1] == pytest.approx(0.05)
        assert 0 < pilot.effects["small-half"][1] < 0.05  # the small stores weigh little


@pytest.mark.parametrize("controls", ["matched", "all"])
@pytest.mark.parametrize("name", ["ratio", "ratio-adjusted"])
def test_ratio_false_positive_rate_and_coverage(ratio_pilots, controls, name):
    cells = validity.evaluate_ratio(name, validity.RATIO_METHODS[name], ratio_pilots[controls],
                                    f"N = {SIZE}")  # fmt: skip
    for cell in cells:
        assert cell.fail == 0, cell.errors or cell.statuses
        assert cell.n_cov == N_PILOTS
        assert cell.coverage() >= 0.88, f"{name} {cell.config}: coverage {cell.coverage():.1%}"
    assert cells[0].n == N_PILOTS
    assert 0.015 <= cells[0].fpr() <= 0.10, f"{name} {controls}: A/A FPR {cells[0].fpr():.1%}"


def test_ratio_error_with_any_injected_effect_is_the_aa_error(ratio_pilots):
    """Why size-correlated effects over-cover: the truth is the treated stores' own total
    uplift, so the log estimate minus log(1 + truth) is the A/A log estimate exactly,
    whatever the effect's spread; only the interval widens with it."""
    from loyalty_pilot.experiments.ratio import ratio_did

    se_aa, se_half = [], []
    for pilot in ratio_pilots["all"][:20] + ratio_pilots["matched"][:20]:
        aa = ratio_did(pilot.aa)
        for data, truth in pilot.effects.values():
            res = ratio_did(data)
            error = res.extras["log_estimate"] - math.log1p(truth)
            assert error == pytest.approx(aa.extras["log_estimate"], abs=1e-12)
            assert res.extras["df"] == pytest.approx(aa.extras["df"], rel=1e-9)
        se_aa.append(aa.extras["se"])
        se_half.append(ratio_did(pilot.effects["small-half"][0]).extras["se"])
    assert np.mean(np.square(se_half)) > np.mean(np.square(se_aa))  # wider on average
