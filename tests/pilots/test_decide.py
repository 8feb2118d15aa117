"""The decision rules (pilots.decide), table-tested on hand-made evaluation results."""

from __future__ import annotations

import math
from typing import Any

import pytest

from loyalty_pilot.pilots.decide import decide
from loyalty_pilot.reports.document import (
    REASON_CODES,
    VERDICTS,
    ArmResult,
    GuardrailRow,
    QualityCheck,
    Quantiles,
    Reason,
)

THRESHOLD = 0.02  # the break-even uplift of the hand-made pilots


def arm(name: str, relative: float | None, low: float | None, high: float | None) -> ArmResult:
    return ArmResult(name, "control", name, relative, low, high, 10.0, 0.01, None, 8, "ok", "did")


def h2h(name: str, other: str, relative: float, low: float, high: float, p: float,
        p_adjusted: float | None = None) -> ArmResult:  # fmt: skip
    return ArmResult(name, other, name, relative, low, high, 1.0, p, p_adjusted, 16, "ok", "did")


def guard(name: str, passed: bool | None, metric: str = "gross_margin_rate") -> GuardrailRow:
    return GuardrailRow(name, metric, 0.005, "absolute", -0.004, passed)


def roi(mean: float | None) -> Quantiles:
    return Quantiles(mean, None if mean is None else mean - 0.3, mean, None)


WIN = arm("cash", 0.06, 0.03, 0.09)  # above the threshold
WIN2 = arm("gift", 0.04, 0.025, 0.055)
LOSS = arm("cash", -0.01, -0.03, 0.01)  # below
LOSS2 = arm("gift", 0.0, -0.015, 0.015)
OPEN = arm("cash", 0.03, -0.01, 0.07)  # straddles
OPEN2 = arm("gift", 0.01, -0.02, 0.04)
GOOD_QUALITY = [
    QualityCheck("sample_ratio", True, {"p_value": 0.41}),
    QualityCheck("balance", True, {"max_std_diff": 0.12}),
    QualityCheck("pre_trend", True, {"p_value": 0.63}),
]
QUALITY_OK = ["sample_ratio_ok", "balance_ok", "pre_trend_ok", "planned_weeks_reached"]


def quality(**replace: tuple[bool | None, dict[str, Any]]) -> list[QualityCheck]:
    return [
        QualityCheck(c.code, *replace[c.code]) if c.code in replace else c for c in GOOD_QUALITY
    ]


def run(arms: list[ArmResult], **over: Any):
    names = [a.arm for a in arms]
    settle = over.pop("settle", dict.fromkeys(names, 4))
    kwargs: dict[str, Any] = {
        "arms": arms,
        "head_to_head": [],
        "threshold": THRESHOLD,
        "threshold_source": "break_even",
        "guardrails": [guard(n, True) for n in names],
        "roi": {n: roi(0.4) for n in names},
        "min_roi": 0.0,
        "quality": GOOD_QUALITY,
        "weeks_observed": 12,
        "weeks_planned": 12,
        "sequential_crossed": {},
        "weeks_to_settle": settle.get,
        "longest_weeks": 16,
    }
    kwargs.update(over)
    return decide(**kwargs)


def _interval(*codes: str) -> list[str]:
    return [f"interval_{c}_threshold" for c in codes]


CASES = {
    "clear win, one arm": (
        {"arms": [WIN]},
        "GO", "cash", None,
        [*_interval("above"), "guardrail_passed", "roi_above_minimum", *QUALITY_OK],
    ),
    "clear loss, two arms": (
        {"arms": [LOSS, LOSS2]},
        "NO-GO", None, None,
        [*_interval("below", "below"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK],
    ),
    "inconclusive: the quicker arm's weeks": (
        {"arms": [OPEN, OPEN2], "settle": {"cash": 6, "gift": 3}},
        "EXTEND", None, 3,
        [*_interval("straddles", "straddles"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK, "extend_weeks"],
    ),
    "inconclusive: no length is enough": (
        {"arms": [OPEN, OPEN2], "settle": {}},
        "EXTEND", None, None,
        [*_interval("straddles", "straddles"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK, "extend_not_enough"],
    ),
    "inconclusive next to a loss: the open arm's weeks": (
        {"arms": [OPEN, LOSS2], "settle": {"cash": 5, "gift": 2}},
        "EXTEND", None, 5,
        [*_interval("straddles", "below"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK, "extend_weeks"],
    ),
    "guardrail breach on the winner, the other arm qualifies": (
        {"arms": [arm("cash", 0.08, 0.05, 0.11), WIN2],
         "guardrails": [guard("cash", False), guard("gift", True)]},
        "GO", "gift", None,
        [*_interval("above", "above"), "guardrail_failed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK],
    ),
    "guardrail breach on the only arm": (
        {"arms": [WIN], "guardrails": [guard("cash", True, "visits"), guard("cash", False)]},
        "NO-GO", None, None,
        [*_interval("above"), "guardrail_passed", "guardrail_failed", "roi_above_minimum",
         *QUALITY_OK],
    ),
    "breach on one arm, loss on the other": (
        {"arms": [WIN, LOSS2], "guardrails": [guard("cash", False), guard("gift", True)]},
        "NO-GO", None, None,
        [*_interval("above", "below"), "guardrail_failed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK],
    ),
    "unknown guardrail blocks GO, is no NO-GO": (
        {"arms": [WIN], "guardrails": [guard("cash", None)]},
        "EXTEND", None, None,
        [*_interval("above"), "guardrail_unknown", "roi_above_minimum", *QUALITY_OK],
    ),
    "ROI below min_roi: the uplift clears and does not pay": (
        {"arms": [WIN], "roi": {"cash": roi(0.2)}, "min_roi": 0.5},
        "NO-GO", None, None,
        [*_interval("above"), "guardrail_passed", "roi_below_minimum", *QUALITY_OK],
    ),
    "ROI unknown blocks GO": (
        {"arms": [WIN], "roi": {}},
        "EXTEND", None, None,
        [*_interval("above"), "guardrail_passed", "roi_below_minimum", *QUALITY_OK],
    ),
    "sample-ratio mismatch on a clear win: investigate": (
        {"arms": [WIN], "quality": quality(sample_ratio=(False, {"p_value": 0.0004}))},
        "EXTEND", None, None,
        [*_interval("above"), "guardrail_passed", "roi_above_minimum",
         "sample_ratio_mismatch", "balance_ok", "pre_trend_ok", "planned_weeks_reached"],
    ),
    "sample-ratio mismatch on a clear loss: no NO-GO either": (
        {"arms": [LOSS], "quality": quality(sample_ratio=(None, {"p_value": 0.0001}))},
        "EXTEND", None, None,
        [*_interval("below"), "guardrail_passed", "roi_above_minimum",
         "sample_ratio_mismatch", "balance_ok", "pre_trend_ok", "planned_weeks_reached"],
    ),
    "poor balance": (
        {"arms": [WIN], "quality": quality(balance=(None, {"max_std_diff": -0.31}))},
        "EXTEND", None, None,
        [*_interval("above"), "guardrail_passed", "roi_above_minimum", "sample_ratio_ok",
         "balance_poor", "pre_trend_ok", "planned_weeks_reached"],
    ),
    "pre-trend violated": (
        {"arms": [WIN], "quality": quality(pre_trend=(None, {"p_value": 0.01}))},
        "EXTEND", None, None,
        [*_interval("above"), "guardrail_passed", "roi_above_minimum", "sample_ratio_ok",
         "balance_ok", "pre_trend_violated", "planned_weeks_reached"],
    ),
    "pre-trend violated on one arm: GO on the other": (
        {"arms": [arm("cash", 0.08, 0.05, 0.11), WIN2],
         "quality": quality(pre_trend=(None, {"p_value": 0.02, "arm": "cash"}))},
        "GO", "gift", None,
        [*_interval("above", "above"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", "sample_ratio_ok", "balance_ok",
         "pre_trend_violated", "planned_weeks_reached"],
    ),
    "checks not made block nothing": (
        {"arms": [WIN], "quality": [QualityCheck("pre_trend", None, {"p_value": None}),
                                    QualityCheck("planned_weeks", True, {})]},
        "GO", "cash", None,
        [*_interval("above"), "guardrail_passed", "roi_above_minimum", "planned_weeks_reached"],
    ),
    "planned weeks not reached, boundary crossed": (
        {"arms": [WIN], "weeks_observed": 7, "sequential_crossed": {"cash": True},
         "quality": [*GOOD_QUALITY,
                     QualityCheck("sequential", True, {"arm": "cash", "look": 6})]},
        "GO", "cash", None,
        [*_interval("above"), "guardrail_passed", "roi_above_minimum", *QUALITY_OK[:3],
         "planned_weeks_not_reached", "sequential_boundary_crossed"],
    ),
    "planned weeks not reached, no boundary crossed": (
        {"arms": [WIN], "weeks_observed": 7, "sequential_crossed": {"cash": False}},
        "EXTEND", None, 5,
        [*_interval("above"), "guardrail_passed", "roi_above_minimum", *QUALITY_OK[:3],
         "planned_weeks_not_reached", "extend_weeks"],
    ),
    "straddles before the planned weeks: at least the plan": (
        {"arms": [OPEN], "weeks_observed": 6, "settle": {"cash": 2}},
        "EXTEND", None, 6,
        [*_interval("straddles"), "guardrail_passed", "roi_above_minimum", *QUALITY_OK[:3],
         "planned_weeks_not_reached", "extend_weeks"],
    ),
    "two winners, head-to-head prefers one": (
        {"arms": [arm("cash", 0.08, 0.05, 0.11), WIN2],
         "head_to_head": [h2h("cash", "gift", 0.04, 0.01, 0.07, 0.01, 0.02)]},
        "GO", "cash", 0.98,
        [*_interval("above", "above"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK, "variant_preferred"],
    ),
    "two winners, indistinguishable: the better point estimate": (
        {"arms": [WIN2, arm("cash", 0.08, 0.05, 0.11)],
         "head_to_head": [h2h("cash", "gift", 0.03, -0.01, 0.07, 0.2)]},
        "GO", "cash", 0.8,
        [*_interval("above", "above"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK,
         "variants_indistinguishable"],
    ),
    "a winner and an open arm: compared head to head": (
        {"arms": [WIN, OPEN2], "head_to_head": [h2h("gift", "cash", -0.04, -0.07, -0.01, 0.03)]},
        "GO", "cash", 0.97,
        [*_interval("above", "straddles"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK, "variant_preferred"],
    ),
    "head-to-head beats the higher point estimate": (
        {"arms": [arm("cash", 0.08, 0.03, 0.13), WIN2],
         "head_to_head": [h2h("gift", "cash", 0.03, 0.005, 0.055, 0.02)]},
        "GO", "gift", 0.98,
        [*_interval("above", "above"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK, "variant_preferred"],
    ),
    "two winners, no head-to-head row": (
        {"arms": [WIN, WIN2]},
        "GO", "cash", None,
        [*_interval("above", "above"), "guardrail_passed", "guardrail_passed",
         "roi_above_minimum", "roi_above_minimum", *QUALITY_OK],
    ),
    "threshold not computable": (
        {"arms": [WIN], "threshold": None},
        "EXTEND", None, None,
        [*_interval("straddles"), "guardrail_passed", "roi_above_minimum", *QUALITY_OK],
    ),
    "no interval (degenerate comparison)": (
        {"arms": [arm("cash", math.nan, math.nan, math.nan)], "settle": {"cash": 8}},
        "EXTEND", None, 8,
        [*_interval("straddles"), "guardrail_passed", "roi_above_minimum", *QUALITY_OK,
         "extend_weeks"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_decision_table(case):
    over, verdict, recommended, extra, codes = CASES[case]
    decision = run(**over)
    assert decision.verdict == verdict
    assert decision.recommended_arm == recommended
    assert [r.code for r in decision.reasons] == codes
    if verdict == "GO":
        assert decision.recommendation_confidence == pytest.approx(extra)
        assert decision.extend_weeks is None
    else:
        assert decision.recommendation_confidence is None
        assert decision.extend_weeks == extra
    assert decision.threshold_source == "break_even"
    assert decision.min_roi == over.get("min_roi", 0.0)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_every_reason_has_exactly_its_codes_params(case):
    decision = run(**CASES[case][0])
    assert decision.verdict in VERDICTS
    for reason in decision.reasons:
        assert reason.code in REASON_CODES
        assert tuple(reason.params) == REASON_CODES[reason.code]
        assert reason.passed in (True, False, None)


def test_reason_figures():
    decision = run(
        [arm("cash", 0.08, 0.05, 0.11), WIN2],
        head_to_head=[h2h("gift", "cash", -0.04, -0.06, -0.02, 0.01)],
        weeks_observed=9,
        sequential_crossed={"cash": True, "gift": True},
    )
    by_code = {}
    for reason in decision.reasons:
        by_code.setdefault(reason.code, []).append(reason)
    above = by_code["interval_above_threshold"][0]
    assert above.passed is True
    assert above.params == {"arm": "cash", "low": 0.05, "high": 0.11, "threshold": THRESHOLD}
    assert by_code["guardrail_passed"][0].params == {
        "arm": "cash", "metric": "gross_margin_rate", "bound": -0.004, "margin": 0.005,
    }  # fmt: skip
    assert by_code["roi_above_minimum"][0].params == {"arm": "cash", "roi": 0.4, "min_roi": 0.0}
    assert by_code["planned_weeks_not_reached"][0].params == {"weeks": 9, "planned": 12}
    assert [r.params for r in by_code["sequential_boundary_crossed"]] == [
        {"arm": "cash", "look": 9},
        {"arm": "gift", "look": 9},
    ]
    # the reversed row (gift over cash) is inverted exactly: 1 / (1 + x) - 1
    (preferred,) = by_code["variant_preferred"]
    assert preferred.passed is True
    assert preferred.params["arm"] == "cash"
    assert preferred.params["other"] == "gift"
    assert preferred.params["difference"] == pytest.approx(1 / 0.96 - 1)
    assert preferred.params["low"] == pytest.approx(1 / 0.98 - 1)
    assert preferred.params["high"] == pytest.approx(1 / 0.94 - 1)
    assert preferred.params["p_value"] == 0.01
    assert decision.recommendation_confidence == pytest.approx(0.99)


def test_unknown_threshold_and_not_enough_reasons_carry_none_and_longest():
    unknown = run([WIN], threshold=None).reasons[0]
    assert unknown.code == "interval_straddles_threshold"
    assert unknown.passed is None
    assert unknown.params["threshold"] is None
    not_enough = run([OPEN], settle={}, longest_weeks=20).reasons[-1]
    assert not_enough.code == "extend_not_enough"
    assert not_enough.passed is False
    assert not_enough.params == {"weeks": 20}


def test_confidence_is_the_weakest_pair_over_three_arms():
    decision = run(
        [arm("cash", 0.09, 0.06, 0.12), WIN2, arm("points", 0.05, 0.01, 0.09)],
        head_to_head=[
            h2h("cash", "gift", 0.05, 0.02, 0.08, 0.004, 0.01),
            h2h("cash", "points", 0.04, -0.01, 0.09, 0.1, 0.15),
        ],
    )
    assert decision.verdict == "GO"
    assert decision.recommended_arm == "cash"
    assert [r.code for r in decision.reasons[-2:]] == [
        "variant_preferred",
        "variants_indistinguishable",
    ]
    assert decision.recommendation_confidence == pytest.approx(0.85)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="threshold_source"):
        run([WIN], threshold_source="decision.min_uplift")
    with pytest.raises(ValueError, match="no arm"):
        run([])
    with pytest.raises(ValueError, match="quality check"):
        run([WIN], quality=[QualityCheck("srm", False, {})])


def test_the_look_comes_from_the_sequential_quality_row():
    look = QualityCheck("sequential", True, {"arm": "cash", "look": 6})
    decision = run([WIN], weeks_observed=7, sequential_crossed={"cash": True},
                   quality=[*GOOD_QUALITY, look])  # fmt: skip
    assert decision.reasons[-1] == Reason(
        "sequential_boundary_crossed", True, {"arm": "cash", "look": 6}
    )


def test_each_arm_against_its_own_threshold():
    # cash costs more (break-even 4 %), gift less (1 %): gift's [2.5 %, 5.5 %] clears its own
    decision = run([OPEN, WIN2], threshold={"cash": 0.04, "gift": 0.01})
    assert decision.verdict == "GO"
    assert decision.recommended_arm == "gift"
    assert decision.threshold == 0.04  # the largest, for the summary
    by_arm = {r.params["arm"]: r for r in decision.reasons if r.code.startswith("interval_")}
    assert by_arm["gift"].params["threshold"] == 0.01
    assert by_arm["cash"].params["threshold"] == 0.04
    # with one threshold for both, the largest, gift straddles it and nothing qualifies
    assert run([OPEN, WIN2], threshold=0.04).verdict == "EXTEND"


def test_balance_uses_the_callers_verdict_when_given():
    judged = quality(balance=(True, {"max_std_diff": 0.6}))  # large, but fine for the design
    assert run([WIN], quality=judged).verdict == "GO"
    codes = [r.code for r in run([WIN], quality=judged).reasons]
    assert "balance_ok" in codes
    by_rule = quality(balance=(None, {"max_std_diff": 0.6}))  # no verdict: the 0.25 rule
    assert "balance_poor" in [r.code for r in run([WIN], quality=by_rule).reasons]
