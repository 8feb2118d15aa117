"""A realistic hand-made decision document (every field filled) and None-heavy variants."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest

from loyalty_pilot.reports import document as d

XSS = "<script>alert(1)</script>"


def _weeks(start: date, n: int) -> list[str]:
    return [(start + timedelta(weeks=i)).isoformat() for i in range(n)]


def _monthly(n: int, scale: float) -> list[dict[str, Any]]:
    rows, liability = [], 0.0
    for i in range(n):
        issued, redeemed, expired = scale * (1.0 + 0.05 * i), scale * 0.6, scale * 0.1 * (i > 6)
        liability += (issued - redeemed - expired) * 0.01
        rows.append(
            {
                "month": f"{2026 + (3 + i) // 12}-{(3 + i) % 12 + 1:02d}",
                "points_issued": issued,
                "points_redeemed": redeemed,
                "points_expired": expired,
                "liability": liability,
                "cost": redeemed * 0.01,
            }
        )
    return rows


def build_document(
    verdict: str = "GO",
    *,
    arm_names: tuple[str, str] = ("cash", "gift"),
    store_prefix: str = "store-",
    description: str | None = "Cash voucher against gift catalogue, spring 2026.",
    sparse: bool = False,
) -> d.DecisionDocument:
    """A complete document; ``sparse`` replaces most figures by None (and empties lists)."""
    cash, gift = arm_names
    n = None if sparse else 1  # multiply a figure by n: None when sparse

    def f(x: float) -> float | None:
        return None if n is None else x

    reasons = [
        d.Reason(
            "interval_above_threshold",
            True,
            {"arm": cash, "low": f(0.012), "high": f(0.048), "threshold": f(0.009)},
        ),
        d.Reason(
            "interval_straddles_threshold",
            None,
            {"arm": gift, "low": f(-0.004), "high": f(0.031), "threshold": f(0.009)},
        ),
        d.Reason(
            "guardrail_passed",
            True,
            {"arm": cash, "metric": "visits", "bound": f(-0.011), "margin": 0.02},
        ),
        d.Reason("roi_above_minimum", True, {"arm": cash, "roi": f(1.35), "min_roi": 1.0}),
        d.Reason("balance_ok", True, {"max_std_diff": f(0.08)}),
        d.Reason("pre_trend_ok", True, {"p_value": f(0.41)}),
        d.Reason("planned_weeks_reached", True, {"weeks": 12, "planned": 12}),
        d.Reason(
            "variant_preferred",
            True,
            {
                "arm": cash,
                "other": gift,
                "difference": f(0.017),
                "low": f(0.002),
                "high": f(0.033),
                "p_value": f(0.0004),
            },
        ),
    ]
    if verdict == "NO-GO":
        reasons.insert(
            0,
            d.Reason(
                "interval_below_threshold",
                False,
                {"arm": cash, "low": -0.02, "high": 0.005, "threshold": 0.009},
            ),
        )
    if verdict == "EXTEND":
        reasons.insert(0, d.Reason("extend_weeks", None, {"weeks": 8}))
    decision = d.Decision(
        verdict=verdict,
        reasons=reasons,
        threshold=f(0.009),
        threshold_source="break_even",
        recommended_arm=cash if verdict == "GO" else None,
        recommendation_confidence=f(0.97),
        extend_weeks=8 if verdict == "EXTEND" else None,
        min_roi=1.0,
    )

    def arm(name: str, base: str, rel: float, low: float, high: float) -> d.ArmResult:
        return d.ArmResult(
            arm=name,
            baseline=base,
            programme=f"{name}-programme",
            relative=f(rel),
            rel_ci_low=f(low),
            rel_ci_high=f(high),
            estimate=f(rel * 41_250.0),
            p_value=f(0.003),
            p_value_adjusted=f(0.006),
            n_units=8,
            status="ok",
            method="did_cluster",
        )

    arms = [arm(cash, "control", 0.031, 0.012, 0.048), arm(gift, "control", 0.013, -0.004, 0.031)]
    head = [arm(cash, gift, 0.017, 0.002, 0.033)]

    def q(mean: float, spread: float) -> d.Quantiles:
        return d.Quantiles(f(mean), f(mean - spread), f(mean), f(mean + spread))

    projections = [
        d.Projection(
            arm=name,
            programme=f"{name}-programme",
            horizon_months=24,
            revenue=f(182_500_000.0),
            cost=q(cost, cost * 0.2),
            profit=q(profit, abs(profit) * 0.9),
            roi=q(profit / cost, 0.6),
            break_even_uplift=f(be),
            points_issued=f(96_000_000.0),
            points_redeemed=f(61_000_000.0),
            points_expired=f(9_500_000.0),
            liability_end=f(255_000.0),
            breakage=f(95_000.0),
            monthly=[] if sparse else _monthly(24, 4_000_000.0),
        )
        for name, cost, profit, be in (
            (cash, 1_230_000.0, 1_660_500.0, 0.009),
            (gift, 910_000.0, -120_000.0, 0.007),
        )
    ]
    risks = [
        d.Risk("few_units", 1.0, {"n_units": 8}),
        d.Risk("loss_possible", 2.1, {"arm": gift, "p10_profit": f(-228_000.0)}),
        d.Risk("interval_wide", 1.8, {"arm": gift, "low": f(-0.004), "high": f(0.031)}),
        d.Risk("liability_build_up", 1.4, {"arm": cash, "liability": f(255_000.0)}),
        d.Risk("heterogeneity", 1.2, {"arm": cash, "by": "region", "i2": f(0.62)}),
        d.Risk("low_power", 0.5, {"mde": f(0.014), "threshold": f(0.009)}),
        d.Risk("cost_overrun", 0.4, {"arm": cash, "p90_cost": f(1.5e6), "budget": f(1.4e6)}),
        d.Risk(
            "guardrail_close",
            0.3,
            {"arm": cash, "metric": "visits", "bound": f(-0.017), "margin": 0.02},
        ),
        d.Risk("assumption_dominated", 0.2, {"arm": gift, "weight": f(0.12)}),
        d.Risk("breakage_dependence", 0.1, {"arm": cash, "breakage_share": f(0.21)}),
    ]
    weeks = _weeks(date(2026, 1, 5), 24)
    weekly = (
        None
        if sparse
        else d.WeeklySeries(
            metric="sales",
            weeks=weeks,
            series={
                "control": [40_000.0 + 150 * i for i in range(24)],
                cash: [40_100.0 + 150 * i + (1300 if i >= 12 else 0) for i in range(24)],
                gift: [
                    39_900.0 + 150 * i + (500 if i >= 12 else 0) if i != 5 else None
                    for i in range(24)
                ],
            },
            test_start=weeks[12],
            test_end=weeks[23],
        )
    )
    forest = [
        d.ForestRow(cash, "arm", cash, f(0.031), f(0.012), f(0.048)),
        d.ForestRow(gift, "arm", gift, f(0.013), f(-0.004), f(0.031)),
        d.ForestRow(f"{cash} vs {gift}", "head_to_head", cash, f(0.017), f(0.002), f(0.033)),
        d.ForestRow("north", "region", cash, f(0.044), f(0.010), f(0.078), True),
        d.ForestRow("south", "region", cash, 0.015 if not sparse else None, None, None, True),
    ]
    letters = [
        d.SmartLetter("S", f(3.0), 5.0, True, "count"),
        d.SmartLetter("M", f(1.0), 1.0, True, "count"),
        d.SmartLetter("A", f(42.0), 25.0, True, "per_100"),
        d.SmartLetter("R", f(0.011), 0.02, True, "share"),
        d.SmartLetter("T", f(120.0), 365.0, None if sparse else True, "days"),
    ]
    smart = [
        d.SmartCard(f"{cash}-programme", letters, "incomplete" if sparse else "pass"),
        d.SmartCard(
            f"{gift}-programme",
            [*letters[:4], d.SmartLetter("T", f(410.0), 365.0, False, "days")],
            "fail",
        ),
    ]
    guardrails = [
        d.GuardrailRow(cash, "visits", 0.02, "relative", f(-0.011), True if not sparse else None),
        d.GuardrailRow(gift, "basket_size", 1.5, "absolute", f(-0.4), True),
    ]
    quality = [
        d.QualityCheck("sample_ratio", None if sparse else True, {"p_value": f(0.62)}),
        d.QualityCheck("balance", True, {"max_std_diff": f(0.08)}),
        d.QualityCheck("pre_trend", None if sparse else True, {"p_value": f(0.41)}),
        d.QualityCheck("planned_weeks", True, {"weeks": 12, "planned": 12}),
        d.QualityCheck("sequential", False, {"arm": cash, "look": 3}),
    ]
    units = {
        "control": [f"{store_prefix}{i:03d}" for i in range(8)],
        cash: [f"{store_prefix}{i:03d}" for i in range(8, 16)],
        gift: [f"{store_prefix}{i:03d}" for i in range(16, 56)],
    }
    design = (
        None
        if sparse
        else d.DesignSummary(
            method="matched",
            unit="store",
            per_arm=8,
            weeks=12,
            units=units,
            balance=[
                {"arm": cash, "covariate": "sales_mean", "std_diff": 0.08},
                {"arm": gift, "covariate": "sales_mean", "std_diff": -0.05},
                {"arm": gift, "covariate": "size_m2", "std_diff": None},
            ],
            power=[
                d.PowerRow(8, 12, 0.014, 0.049),
                d.PowerRow(8, 20, 0.011, 0.051),
                d.PowerRow(8, 24, None, None),
            ],
            mde=0.014,
            break_even={cash: 0.009, gift: 0.016},
        )
    )
    assumptions = [
        d.AssumptionRow(f"{cash}-programme", p, f(0.03), f(0.015), f(0.034), f(0.008))
        for p in ("visit_uplift", "basket_uplift", "churn_reduction")
    ]
    sensitivity = [
        d.SensitivityRow(cash, u, label, f(1_230_000.0 * (u / 0.009 - 1)), f(u / 0.009 - 1))
        for u, label in (
            (0.012, "pilot_low"),
            (0.031, "pilot_estimate"),
            (0.048, "pilot_high"),
            (0.009, "break_even"),
        )
    ]
    rollout = (
        None
        if sparse
        else d.RolloutSummary(
            waves=[
                d.WaveRow("pilot", 16, "2026-03-30", 12, "frozen assignment", ["north", "south"]),
                d.WaveRow("north", 40, "2026-06-22", 8, "GO on pilot", ["north"]),
                d.WaveRow(
                    "national", 180, "2026-08-17", 8, "GO on north", ["east", "south", "west"]
                ),
            ],
            holdout=12,
            stage="complete",
            next_gate="GO on pilot",
        )
    )
    return d.DecisionDocument(
        pilot="spring-cash-vs-gift",
        description=description,
        currency="EUR",
        metric="sales",
        decision=decision,
        arms=arms,
        head_to_head=head,
        projections=projections,
        risks=risks,
        weekly=weekly,
        forest=forest,
        smart=smart,
        guardrails=guardrails,
        quality=quality,
        design=design,
        assumptions=[] if sparse else assumptions,
        sensitivity=[] if sparse else sensitivity,
        rollout=rollout,
        reproducibility=d.Reproducibility(
            tool_version="0.1.0",
            pilot_version=2,
            design_hash="3f9a1c" * 10 + "abcd",
            data_fingerprint="9c1e77" * 10 + "0f0f",
            seed=7,
            config_hashes={"pilots/spring.yaml": "a" * 64, "programmes/cash.yaml": "b" * 64},
            generated_at="2026-06-29T14:05:00+00:00",
        ),
    )


def xss_document() -> d.DecisionDocument:
    """Hostile names everywhere the user's data shows."""
    doc = build_document(
        arm_names=(XSS, "gift <b>bold</b> & $x$"),
        store_prefix=XSS,
        description='<img src=x onerror="alert(2)"> <a href="javascript:alert(3)">click</a>',
    )
    return dataclasses.replace(doc, pilot=f"pilot {XSS}")


@pytest.fixture
def doc() -> d.DecisionDocument:
    return build_document()


@pytest.fixture(params=["GO", "NO-GO", "EXTEND"])
def any_verdict(request: pytest.FixtureRequest) -> d.DecisionDocument:
    return build_document(request.param)


@pytest.fixture
def sparse_doc() -> d.DecisionDocument:
    return build_document("EXTEND", sparse=True, description=None)


@pytest.fixture
def make_doc() -> Any:
    """The builder itself, for tests that need a particular variant."""
    return build_document


@pytest.fixture
def xss_doc() -> d.DecisionDocument:
    return xss_document()
