"""The console's money lines: the total-sales estimand with its prior and posterior, and
the log-scale figure only when it differs materially."""

from __future__ import annotations

import dataclasses

from loyalty_pilot.reports import document as d
from loyalty_pilot.reports.summary import decision_lines, money_lines


def _with_money(doc: d.DecisionDocument, log_estimate: float) -> d.DecisionDocument:
    arm = dataclasses.replace(
        doc.arms[0],
        uplift_total_sales=d.Interval(0.069, 0.024, 0.117),
        uplift_log_scale=d.Interval(log_estimate, 0.01, 0.12),
        prior=d.Belief(0.0135, 0.0053, 0.0134, 0.0052),
        posterior=d.Belief(0.0151, 0.0052, 0.0150, 0.0051),
    )
    return dataclasses.replace(doc, arms=[arm, *doc.arms[1:]])


def test_money_lines_in_english_and_french(doc):
    rich = _with_money(doc, 0.049)
    en = money_lines(rich, "en")
    name = rich.arms[0].arm
    assert en[0] == (
        f"  {name}: uplift of total sales +6.9% (+2.4% to +11.7%); prior +1.4% (sd 0.5%, "
        "from the programme's assumptions), after the pilot +1.5% (sd 0.5%)."
    )
    assert en[1] == (
        "      the store-equal-weight (log-scale) estimate differs: +4.9% (+1.0% to +12.0%)."
    )
    fr = money_lines(rich, "fr")
    assert "effet sur les ventes totales +6,9" in fr[0]
    assert en[0] in decision_lines(rich, "en")


def test_no_log_scale_line_when_the_two_agree(doc):
    assert len(money_lines(_with_money(doc, 0.065), "en")) == 1
    assert money_lines(doc, "en") == []  # no money figures: no line
