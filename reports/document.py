"""The decision document: everything the management report shows, as plain frozen data.

``pilots`` builds it (from the design, the frozen assignment, the evaluation, the
projections and the rollout plan) and ``reports`` renders it; ``reports`` imports
nothing from the other packages. Every field is a plain Python value (str, int, float,
bool, None, lists, dicts of them, or the dataclasses below), so :meth:`to_dict` is
JSON-ready and :func:`from_dict` reads it back.

Wording is not data: verdicts, reasons, risks and quality checks are **codes with
parameters** (``Reason("interval_above_threshold", {"arm": "cash", ...})``); the renderer
turns them into sentences in the report's language. Names (stores, regions, arms,
programmes, descriptions) are the user's data and are rendered as text, escaped.

Figures: relative effects as fractions (0.031 = +3.1 %), money in the programme's
currency, dates as ISO strings. Missing figures are None.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = "1"
VERDICTS = ("GO", "NO-GO", "EXTEND")


@dataclass(frozen=True)
class Reason:
    """One reason of the decision: ``code`` (see :data:`REASON_CODES`), whether it argues
    for going ahead (``passed``), and the figures its sentence needs."""

    code: str
    passed: bool | None
    params: dict[str, Any] = field(default_factory=dict)


#: the reason codes and the parameters their sentences use
REASON_CODES = {
    "interval_above_threshold": ("arm", "low", "high", "threshold"),
    "interval_below_threshold": ("arm", "low", "high", "threshold"),
    "interval_straddles_threshold": ("arm", "low", "high", "threshold"),
    "expected_profit_go": (
        "arm",
        "expected_profit",
        "prob_above",
        "prob_loss",
        "max_loss_probability",
    ),
    "expected_profit_open": (
        "arm",
        "expected_profit",
        "prob_above",
        "prob_loss",
        "max_loss_probability",
    ),
    "expected_profit_negative": (
        "arm",
        "expected_profit",
        "prob_above",
        "prob_loss",
        "max_loss_probability",
    ),
    "loss_too_likely": (
        "arm",
        "expected_profit",
        "prob_above",
        "prob_loss",
        "max_loss_probability",
    ),
    "guardrail_passed": ("arm", "metric", "bound", "margin"),
    "guardrail_failed": ("arm", "metric", "bound", "margin"),
    "guardrail_unknown": ("arm", "metric"),
    "roi_above_minimum": ("arm", "roi", "min_roi"),
    "roi_below_minimum": ("arm", "roi", "min_roi"),
    "sample_ratio_ok": ("p_value",),
    "sample_ratio_mismatch": ("p_value",),
    "balance_ok": ("max_std_diff",),
    "balance_poor": ("max_std_diff",),
    "pre_trend_ok": ("p_value",),
    "pre_trend_violated": ("p_value",),
    "planned_weeks_reached": ("weeks", "planned"),
    "planned_weeks_not_reached": ("weeks", "planned"),
    "sequential_boundary_crossed": ("arm", "look"),
    "extend_weeks": ("weeks",),
    "extend_worth": ("weeks", "value", "cost"),
    "extend_not_enough": ("weeks",),
    "variant_preferred": ("arm", "other", "difference", "low", "high", "p_value"),
    "variants_indistinguishable": ("arm", "other", "difference", "low", "high", "p_value"),
}

#: the risk codes and their parameters
RISK_CODES = {
    "low_power": ("mde", "threshold"),
    "interval_wide": ("arm", "low", "high"),
    "cost_overrun": ("arm", "p90_cost", "budget"),
    "loss_possible": ("arm", "p10_profit"),
    "liability_build_up": ("arm", "liability"),
    "guardrail_close": ("arm", "metric", "bound", "margin"),
    "few_units": ("n_units",),
    "assumption_dominated": ("arm", "weight"),
    "heterogeneity": ("arm", "by", "i2"),
    "breakage_dependence": ("arm", "breakage_share"),
}


@dataclass(frozen=True)
class Decision:
    """GO / NO-GO / EXTEND, every reason, and the variant to roll out."""

    verdict: str
    reasons: list[Reason]
    threshold: float | None  # the uplift the primary interval must clear
    threshold_source: str  # 'break_even' | 'min_uplift'
    recommended_arm: str | None  # the variant to roll out (None: none)
    recommendation_confidence: float | None  # e.g. 1 - p of the head-to-head, or None
    extend_weeks: int | None = None  # EXTEND: more weeks that would settle it
    min_roi: float | None = None
    rule: str = "interval"  # 'expected_profit' | 'interval' (decision.rule)


@dataclass(frozen=True)
class Interval:
    """A relative uplift and its interval (fractions: 0.01 = +1 %)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Belief:
    """A belief about the relative uplift of total sales: its mean and sd (fractions),
    and the normal on log(1 + u) it is (``log_mean``, ``log_sd``)."""

    mean: float | None
    sd: float | None
    log_mean: float | None
    log_sd: float | None


@dataclass(frozen=True)
class ArmResult:
    """One comparison on the primary metric (a variant against its baseline)."""

    arm: str
    baseline: str
    programme: str | None
    relative: float | None
    rel_ci_low: float | None
    rel_ci_high: float | None
    estimate: float | None  # absolute, per unit and week, on the metric
    p_value: float | None
    p_value_adjusted: float | None
    n_units: int
    status: str
    method: str
    # the decision's estimand and the money (a variant against the control; None elsewhere)
    uplift_total_sales: Interval | None = None  # total-sales ratio, at the report's level
    uplift_log_scale: Interval | None = None  # DiD on log store sales, shown beside it
    prior: Belief | None = None  # from the programme's assumptions (decision.prior)
    posterior: Belief | None = None
    prob_above_break_even: float | None = None
    expected_profit: float | None = None  # over decision.horizon_months, full rollout
    prob_loss: float | None = None  # P(loss > decision.loss_threshold)


@dataclass(frozen=True)
class Quantiles:
    mean: float | None
    p10: float | None
    p50: float | None
    p90: float | None


@dataclass(frozen=True)
class Projection:
    """The full-chain rollout projection of one variant (recalibrated assumptions)."""

    arm: str
    programme: str
    horizon_months: int
    revenue: float | None
    cost: Quantiles
    profit: Quantiles
    roi: Quantiles
    break_even_uplift: float | None
    points_issued: float | None
    points_redeemed: float | None
    points_expired: float | None
    liability_end: float | None
    breakage: float | None
    monthly: list[dict[str, Any]] = field(default_factory=list)  # month, cost, liability, ...


@dataclass(frozen=True)
class Risk:
    code: str
    severity: float  # larger is worse; the report shows the three largest
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WeeklySeries:
    """Weekly mean of the primary metric per arm (pre-period and test), for the chart."""

    metric: str
    weeks: list[str]
    series: dict[str, list[float | None]]
    test_start: str
    test_end: str


@dataclass(frozen=True)
class ForestRow:
    label: str  # arm, region or segment name
    group: str  # 'arm' | 'head_to_head' | 'region' | 'segment'
    arm: str
    relative: float | None
    low: float | None
    high: float | None
    exploratory: bool = False


@dataclass(frozen=True)
class SmartLetter:
    letter: str  # S M A R T
    figure: float | None
    threshold: float | None
    passed: bool | None
    unit: str  # 'count' | 'per_100' | 'share' | 'days'


@dataclass(frozen=True)
class SmartCard:
    programme: str
    letters: list[SmartLetter]
    verdict: str  # 'pass' | 'fail' | 'incomplete'


@dataclass(frozen=True)
class GuardrailRow:
    arm: str
    metric: str
    margin: float
    kind: str  # absolute | relative
    bound: float | None
    passed: bool | None


@dataclass(frozen=True)
class QualityCheck:
    code: str  # sample_ratio | balance | pre_trend | planned_weeks | sequential
    passed: bool | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PowerRow:
    per_arm: int
    weeks: int
    mde: float | None
    false_positive_rate: float | None


@dataclass(frozen=True)
class DesignSummary:
    method: str
    unit: str
    per_arm: int
    weeks: int
    units: dict[str, list[str]]  # arm -> unit ids
    balance: list[dict[str, Any]]  # arm, covariate, std_diff
    power: list[PowerRow]
    mde: float | None  # at the chosen design
    break_even: dict[str, float | None]


@dataclass(frozen=True)
class AssumptionRow:
    programme: str
    parameter: str  # visit_uplift | basket_uplift | churn_reduction
    prior_mean: float | None
    prior_sd: float | None
    posterior_mean: float | None
    posterior_sd: float | None


@dataclass(frozen=True)
class SensitivityRow:
    arm: str
    uplift: float  # the relative sales uplift assumed
    label: str  # 'pilot_low' | 'pilot_estimate' | 'pilot_high' | 'break_even'
    profit: float | None
    roi: float | None


@dataclass(frozen=True)
class WaveRow:
    name: str
    n_stores: int
    start: str
    weeks: int
    gate: str
    regions: list[str]


@dataclass(frozen=True)
class RolloutSummary:
    waves: list[WaveRow]
    holdout: int
    stage: str  # where the pilot stands, a code: not_frozen | before_test | running | complete
    next_gate: str | None


@dataclass(frozen=True)
class Reproducibility:
    tool_version: str
    pilot_version: int
    design_hash: str
    data_fingerprint: str
    seed: int
    config_hashes: dict[str, str]  # file -> sha256 of the pilot and programme files
    generated_at: str


@dataclass(frozen=True)
class DecisionDocument:
    """Everything the report shows (module docstring)."""

    pilot: str
    description: str | None
    currency: str
    metric: str  # the primary metric: sales | visits | basket_size | active_customers
    decision: Decision
    arms: list[ArmResult]  # each variant vs the control
    head_to_head: list[ArmResult]  # variant vs variant
    projections: list[Projection]
    risks: list[Risk]
    weekly: WeeklySeries | None
    forest: list[ForestRow]
    smart: list[SmartCard]
    guardrails: list[GuardrailRow]
    quality: list[QualityCheck]
    design: DesignSummary | None
    assumptions: list[AssumptionRow]
    sensitivity: list[SensitivityRow]
    rollout: RolloutSummary | None
    reproducibility: Reproducibility
    schema_version: str = SCHEMA_VERSION
    # level of the arms' intervals: 1 - alpha / (number of variants) when the GO rule reads
    # simultaneous (Bonferroni) intervals; None when not recorded
    interval_level: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinities are None)."""
        return _clean(dataclasses.asdict(self))

    def top_risks(self, k: int = 3) -> list[Risk]:
        return sorted(self.risks, key=lambda r: -r.severity)[:k]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def from_dict(data: dict[str, Any]) -> DecisionDocument:
    """A document from its :meth:`DecisionDocument.to_dict` (e.g. a report's JSON)."""
    return _build(DecisionDocument, data)


def _build(cls: Any, data: Any) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _value(hints[f.name], data[f.name])
    return cls(**kwargs)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if origin is list and args and dataclasses.is_dataclass(args[0]):
        return [_build(args[0], v) for v in value]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in args:
            if dataclasses.is_dataclass(arg):
                return _build(arg, value)
    return value
