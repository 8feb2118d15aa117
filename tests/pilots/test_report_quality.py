"""The balance row of the decision document for a rerandomized design can fail."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scipy import stats

from loyalty_pilot.experiments.balance import rerandomization_check
from loyalty_pilot.pilots.report_build import BALANCE_P, _quality


def _balance_row(balance_p):
    analysis = SimpleNamespace(sequential={})
    rows = [{"arm": "cash", "covariate": "level", "std_diff": 0.4}]
    checks = _quality(analysis, rows, balance_p, 8, 8, None, None, None)
    return next(c for c in checks if c.code == "balance")


def test_rerandomized_balance_is_judged_by_its_own_threshold():
    threshold = float(stats.chi2.ppf(0.05, 2))
    good_m, bad_m = 0.05, 9.0
    # the chi-square p of an accepted draw is >= 0.95: a p-value gate would always pass
    assert stats.chi2.sf(good_m, 2) >= 1 - 0.05
    good = _balance_row((stats.chi2.sf(good_m, 2), good_m, 2,
                         rerandomization_check(good_m, threshold, 2)))  # fmt: skip
    assert good.passed is True
    assert good.params["rule"] == "rerandomization_threshold"
    assert good.params["threshold"] == pytest.approx(threshold)
    tampered = _balance_row((stats.chi2.sf(bad_m, 2), bad_m, 2,
                             rerandomization_check(bad_m, threshold, 2)))  # fmt: skip
    assert stats.chi2.sf(bad_m, 2) > BALANCE_P  # the old gate passed this assignment
    assert tampered.passed is False
    assert tampered.params["max_std_diff"] == 0.4


def test_other_designs_keep_the_chi_square_gate():
    assert _balance_row((0.5, 1.4, 2, None)).passed is True
    assert _balance_row((1e-4, 20.0, 2, None)).passed is False
    assert _balance_row((0.5, 1.4, 2)).passed is True  # the old 3-tuple still reads
    assert _balance_row(None).passed is None
