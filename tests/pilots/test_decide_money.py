"""The decision on money (pilots.decide with ``money``): table-tested on hand-made views."""

from __future__ import annotations

import pytest

from loyalty_pilot.pilots.decide import MoneyView, decide
from loyalty_pilot.reports.document import ArmResult, GuardrailRow, QualityCheck

QUALITY = [
    QualityCheck("sample_ratio", True, {"p_value": 0.41}),
    QualityCheck("balance", True, {"max_std_diff": 0.12}),
    QualityCheck("pre_trend", True, {"p_value": 0.63}),
]


def arm(name: str, rel: float = 0.01) -> ArmResult:
    return ArmResult(name, "control", name, rel, rel - 0.05, rel + 0.05, 1.0, 0.5, None, 8, "ok",
                     "ratio")  # fmt: skip


def view(profit: float, go: bool, *, loss: float = 0.05, extend=None, better=None) -> MoneyView:
    return MoneyView(profit, 0.6, loss, 0.10, go, extend, better or {})


def run(views: dict[str, MoneyView], guardrails=(), weeks=(12, 12)) -> object:
    return decide(
        arms=[arm(a) for a in views],
        head_to_head=[],
        threshold=dict.fromkeys(views, 0.005),
        threshold_source="break_even",
        guardrails=list(guardrails),
        roi={},
        min_roi=0.0,
        quality=QUALITY,
        weeks_observed=weeks[0],
        weeks_planned=weeks[1],
        sequential_crossed={},
        money=views,
    )


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]


def test_go_on_a_positive_expected_profit_with_the_loss_risk_allowed():
    d = run({"cash": view(50_000.0, True)})
    assert d.verdict == "GO"
    assert d.recommended_arm == "cash"
    assert codes(d)[0] == "expected_profit_go"
    assert d.reasons[0].params["expected_profit"] == 50_000.0
    assert "roi_above_minimum" not in codes(d)  # the expected profit replaces the ROI rule


def test_no_go_when_it_loses_money_or_the_loss_risk_is_too_high_and_weeks_are_not_worth_it():
    d = run({"cash": view(-10_000.0, False), "gift": view(5_000.0, False, loss=0.3)})
    assert d.verdict == "NO-GO"
    assert codes(d)[:2] == ["expected_profit_negative", "loss_too_likely"]


def test_extend_when_more_weeks_are_worth_their_cost():
    d = run({"cash": view(2_000.0, False, extend=(4, 30_000.0, 8_000.0))})
    assert d.verdict == "EXTEND"
    assert d.extend_weeks == 4
    last = d.reasons[-1]
    assert last.code == "extend_worth"
    assert last.params == {"weeks": 4, "value": 30_000.0, "cost": 8_000.0}


def test_the_most_profitable_qualifying_arm_with_the_probability_it_is_better():
    views = {
        "cash": view(40_000.0, True, better={"gift": 0.3}),
        "gift": view(90_000.0, True, better={"cash": 0.7}),
    }
    d = run(views)
    assert d.recommended_arm == "gift"
    assert d.recommendation_confidence == pytest.approx(0.7)


def test_a_breached_guardrail_still_rules_the_arm_out():
    breach = GuardrailRow("cash", "gross_margin_rate", 0.005, "absolute", -0.01, False)
    d = run({"cash": view(50_000.0, True)}, guardrails=[breach])
    assert d.verdict == "NO-GO"


def test_an_arm_without_a_view_is_an_error():
    with pytest.raises(ValueError, match="no view of arm 'gift'"):
        decide(arms=[arm("cash"), arm("gift")], head_to_head=[], threshold=0.005,
               threshold_source="break_even", guardrails=[], roi={}, min_roi=0.0, quality=[],
               weeks_observed=12, weeks_planned=12, sequential_crossed={},
               money={"cash": view(1.0, True)})  # fmt: skip


def test_a_go_before_the_planned_weeks_waits_for_them():
    d = run({"cash": view(50_000.0, True)}, weeks=(6, 12))
    assert d.verdict == "EXTEND"
    assert d.extend_weeks == 6
    assert d.reasons[-1].code == "extend_weeks"


def test_the_money_extension_is_reported_only_for_its_own_weeks():
    views = {"cash": view(2_000.0, False, extend=(2, 30_000.0, 8_000.0))}
    d = run(views, weeks=(8, 12))  # 4 planned weeks remain, more than the 2 bought
    assert d.extend_weeks == 4
    assert d.reasons[-1].code == "extend_weeks"


def test_an_arm_without_an_estimate_is_never_go_on_its_prior():
    unplaced = MoneyView(50_000.0, 0.9, 0.01, 0.10, True, None, {}, placed=False)
    d = run({"cash": unplaced})
    assert d.verdict == "EXTEND"
    assert d.reasons[0].code == "interval_straddles_threshold"
    assert d.reasons[0].passed is None
