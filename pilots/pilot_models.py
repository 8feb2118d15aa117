"""The pilot YAML's models: strict pydantic classes, one value at a time.

:mod:`loyalty_pilot.pilots.pilotspec` reads a file with them (strict YAML, every
mistake at ``file:line:column``), loads the arms' programmes and checks the pilot
against the workspace's data; the keys, defaults and rules are documented there.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import typing
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from loyalty_pilot.simulator.programme import ID_PATTERN

Unit = Literal["store", "region", "customer"]
DesignMethod = Literal[
    "complete", "stratified", "matched", "rerandomized", "cluster", "synthetic_region"
]
Metric = Literal["sales", "visits", "basket_size", "active_customers"]
GuardrailMetric = Literal[
    "gross_margin_rate",
    "programme_cost_share",
    "returns_rate",
    "sales",
    "visits",
    "basket_size",
    "active_customers",
]
StoreAttribute = Literal["region", "format", "size_band"]
MatchFeature = Literal["level", "trend", "volatility"]
Estimator = Literal["ratio", "did", "ancova", "ri"]
EvaluationMethod = Literal["ratio", "did", "ancova", "ri", "synthetic_control", "event_study"]
DecisionRule = Literal["expected_profit", "interval"]
Controls = Literal["matched", "all"]

UNITS: tuple[str, ...] = typing.get_args(Unit)
DESIGN_METHODS: tuple[str, ...] = typing.get_args(DesignMethod)
PRIMARY_METRICS: tuple[str, ...] = typing.get_args(Metric)
GUARDRAIL_METRICS: tuple[str, ...] = typing.get_args(GuardrailMetric)
#: Guardrails on these are rates: their margin is absolute (0.005 = half a point).
#: The other guardrails' margins are relative (0.02 = 2 % of the control's level).
RATE_METRICS = ("gross_margin_rate", "programme_cost_share", "returns_rate")
#: Guardrails where a rise is the harm (the others must not fall by more than the margin).
HIGHER_IS_WORSE = ("programme_cost_share", "returns_rate")
STORE_ATTRIBUTES: tuple[str, ...] = typing.get_args(StoreAttribute)
MATCH_FEATURES: tuple[str, ...] = typing.get_args(MatchFeature)
ESTIMATORS: tuple[str, ...] = typing.get_args(Estimator)
EVALUATION_METHODS: tuple[str, ...] = typing.get_args(EvaluationMethod)
#: The store x week panel column of each metric (:func:`pilots.panels.store_week_panel`).
METRIC_COLUMNS = {
    "sales": "sales",
    "visits": "baskets",
    "basket_size": "avg_basket",
    "active_customers": "active_customers",
}

MIN_PRE_WEEKS = 4  # shortest pre-period
MAX_TEST_WEEKS = 104  # longest test period
DEFAULT_MIN_PRE_WEEKS = 26  # eligibility: weeks with sales in the pre-period (capped)
MIN_UNITS_PER_ARM = 2
MIN_CUSTOMERS_PER_ARM = 100  # a customer-randomized test: fewer is not a test of means
DEFAULT_MATCH_ON = ["level", "trend"]
DEFAULT_ACCEPTANCE = 0.05
DEFAULT_POWER_WEEKS = [8, 12, 16]
MIN_DONOR_REGIONS = 2  # synthetic_region: untreated regions the synthetic control draws on

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
OpenUnit = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Loc = tuple[Any, ...]


def _fail(problems: Iterable[tuple[Loc, str]]) -> None:
    """Raise every ``(location, message)`` at once; locations are relative to the model
    (or field) being validated, so each message lands on its own key of the file."""
    details = [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
        for loc, message in problems
    ]
    if details:
        raise ValidationError.from_exception_data("pilot", details)


def _duplicates(values: list[Any], what: str) -> list[tuple[Loc, str]]:
    seen: set[Any] = set()
    out = []
    for index, value in enumerate(values):
        if value in seen:
            out.append(((index,), f"{what} {value!r} is listed twice"))
        seen.add(value)
    return out


def _weeks(start: dt.date, end: dt.date) -> int:
    return ((end - start).days + 1) // 7


def _monday(day: dt.date, key: str) -> tuple[Loc, str] | None:
    if day.weekday() == 0:
        return None
    before = day - dt.timedelta(days=day.weekday())
    return (
        (key,),
        f"{day.isoformat()} is a {day:%A}: weeks run Monday to Sunday, so a period starts "
        f"on a Monday (such as {before.isoformat()} or {(before + dt.timedelta(7)).isoformat()})",
    )


def _sunday(day: dt.date, key: str) -> tuple[Loc, str] | None:
    if day.weekday() == 6:
        return None
    after = day + dt.timedelta(days=6 - day.weekday())
    return (
        (key,),
        f"{day.isoformat()} is a {day:%A}: weeks run Monday to Sunday, so a period ends "
        f"on a Sunday (such as {(after - dt.timedelta(7)).isoformat()} or {after.isoformat()})",
    )


# --------------------------------------------------------------------------- periods


class PrePeriod(Strict):
    """History before the pilot: matching, power placebos and the estimators' baseline."""

    start: dt.date = Field(description="first day (a Monday)")
    end: dt.date = Field(description="last day (a Sunday)")

    @model_validator(mode="after")
    def _whole_weeks(self) -> PrePeriod:
        problems = [p for p in (_monday(self.start, "start"), _sunday(self.end, "end")) if p]
        if self.end <= self.start:
            problems.append(
                (("end",), f"the end {self.end} must come after the start {self.start}")
            )
        elif not problems and self.weeks < MIN_PRE_WEEKS:
            problems.append(
                (
                    ("end",),
                    f"the pre-period must be at least {MIN_PRE_WEEKS} weeks long, "
                    f"got {self.weeks} week{'s' if self.weeks != 1 else ''}",
                )
            )
        _fail(problems)
        return self

    @property
    def weeks(self) -> int:
        return _weeks(self.start, self.end)


class TestPeriod(Strict):
    """The pilot itself: ``start`` and its length as ``weeks`` or its last day as ``end``.

    Give either (or both, if they agree); once validated, both are set.
    """

    __test__ = False  # not a pytest class

    start: dt.date = Field(description="first day of the test (a Monday)")
    weeks: int | None = Field(
        None, ge=1, le=MAX_TEST_WEEKS, description="length in weeks (or give end)"
    )
    end: dt.date | None = Field(None, description="last day (a Sunday), instead of weeks")

    @model_validator(mode="after")
    def _length(self) -> TestPeriod:
        problems = [p for p in (_monday(self.start, "start"),) if p]
        if self.weeks is None and self.end is None:
            problems.append(((), "give the test length as 'weeks' or its last day as 'end'"))
        elif self.end is not None and self.end <= self.start:
            problems.append(
                (("end",), f"the end {self.end} must come after the start {self.start}")
            )
        elif self.end is not None and (sunday := _sunday(self.end, "end")):
            problems.append(sunday)
        elif self.end is not None and self.weeks is not None:
            end = self.start + dt.timedelta(weeks=self.weeks, days=-1)
            if end != self.end:
                problems.append(
                    (
                        ("end",),
                        f"weeks and end disagree: {self.weeks} weeks from {self.start} end on "
                        f"{end}, not {self.end}; give one of them",
                    )
                )
        elif self.end is not None and _weeks(self.start, self.end) > MAX_TEST_WEEKS:
            problems.append(
                (
                    ("end",),
                    f"the test may last at most {MAX_TEST_WEEKS} weeks, "
                    f"got {_weeks(self.start, self.end)}",
                )
            )
        _fail(problems)
        # both set from here on (the model is frozen: set them once, while validating)
        if self.weeks is None:
            object.__setattr__(self, "weeks", _weeks(self.start, self.end))  # type: ignore[arg-type]
        if self.end is None:
            object.__setattr__(self, "end", self.start + dt.timedelta(weeks=self.weeks, days=-1))
        return self

    @property
    def n_weeks(self) -> int:
        """Length in weeks."""
        return int(self.weeks)  # type: ignore[arg-type]

    @property
    def last_day(self) -> dt.date:
        """The test's last day (a Sunday)."""
        return self.end  # type: ignore[return-value]


class Eligibility(Strict):
    """Which units may enter the pilot (the rest are left out of every arm)."""

    min_pre_weeks: int | None = Field(
        None,
        ge=1,
        description="weeks with sales in the pre-period, at least "
        f"(default: {DEFAULT_MIN_PRE_WEEKS}, or the whole pre-period if shorter)",
    )
    exclude: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="unit ids left out (stores, regions or customers)"
    )
    min_weekly_sales: NonNegativeFloat = Field(
        0.0, description="mean weekly sales in the pre-period, at least"
    )

    @field_validator("exclude")
    @classmethod
    def _unique(cls, ids: list[str]) -> list[str]:
        _fail(_duplicates(ids, "unit"))
        return ids


# --------------------------------------------------------------------------- design


class Design(Strict):
    """How units are assigned to arms.

    ``complete``: plain randomisation; ``stratified``: within strata of ``stratify_by``;
    ``matched``: sets of units alike on ``match_on`` (within strata if ``stratify_by``),
    randomised within each set; ``rerandomized``: draws until the arms' Mahalanobis
    distance on ``match_on`` is small enough; ``cluster``: whole ``cluster_by`` groups of
    stores go to one arm; ``synthetic_region``: ``treated_regions`` whole regions per
    variant, compared with a synthetic control built from the other regions.

    ``match_on`` features are computed on each unit's pre-period series of the primary
    metric: ``level`` (mean), ``trend`` (slope), ``volatility`` (spread of the weekly
    changes). A parameter of another method is an error, unless it keeps its default
    value (so a validated design dumps and validates again). With unit customer, the
    strata are those of the customer's home store.
    """

    method: DesignMethod = "matched"
    units_per_arm: int | None = Field(
        None,
        ge=MIN_UNITS_PER_ARM,
        description="units per arm (clusters per arm for cluster); "
        "null: the power analysis's recommendation",
    )
    stratify_by: list[StoreAttribute] = Field(
        default_factory=list, description="stratified (required) and matched only"
    )
    match_on: list[MatchFeature] = Field(
        default_factory=lambda: list(DEFAULT_MATCH_ON),
        min_length=1,
        description="pre-period features of each unit: matched and rerandomized only",
    )
    max_mahalanobis: PositiveFloat | None = Field(
        None,
        description="rerandomized only: accept a draw at or below this distance "
        "(instead of acceptance)",
    )
    acceptance: OpenUnit = Field(
        DEFAULT_ACCEPTANCE,
        description="rerandomized only: the share of draws accepted, the best ones "
        "(used unless max_mahalanobis is given)",
    )
    cluster_by: Literal["region"] | None = Field(
        None, description="cluster only (required then): the group of stores"
    )
    treated_regions: Literal[1, 2] = Field(
        1, description="synthetic_region only: treated regions per variant arm"
    )
    seed: int = Field(ge=0, description="random seed of the assignment")
    controls: Controls = Field(
        "matched",
        description="matched: the control arm has units_per_arm units drawn by the design; "
        "all: every other eligible unit is a control too (store and region designs)",
    )

    @field_validator("stratify_by", "match_on")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        _fail(_duplicates(values, "key"))
        return values

    @model_validator(mode="after")
    def _parameters_of_the_method(self) -> Design:
        method = self.method
        given = self.model_fields_set

        def here(key: str) -> Loc:  # a missing key is reported at 'method'
            return (key,) if key in given else ("method",)

        problems: list[tuple[Loc, str]] = []
        if self.stratify_by and method not in ("stratified", "matched"):
            problems.append(
                (
                    ("stratify_by",),
                    f"stratify_by is for the stratified and matched methods, not {method}",
                )
            )
        if method == "stratified" and not self.stratify_by:
            problems.append(
                (
                    here("stratify_by"),
                    "the stratified method needs stratify_by: one or more of "
                    + ", ".join(STORE_ATTRIBUTES),
                )
            )
        if self.match_on != DEFAULT_MATCH_ON and method not in ("matched", "rerandomized"):
            problems.append(
                (
                    ("match_on",),
                    f"match_on is for the matched and rerandomized methods, not {method}",
                )
            )
        changed = {
            "max_mahalanobis": self.max_mahalanobis is not None,
            "acceptance": self.acceptance != DEFAULT_ACCEPTANCE,
        }
        for key in ("max_mahalanobis", "acceptance"):
            if changed[key] and method != "rerandomized":
                problems.append(((key,), f"{key} is for the rerandomized method, not {method}"))
        if method == "rerandomized" and changed["max_mahalanobis"] and changed["acceptance"]:
            problems.append((("acceptance",), "give max_mahalanobis or acceptance, not both"))
        if method == "cluster" and self.cluster_by is None:
            problems.append((here("cluster_by"), "the cluster method needs cluster_by: region"))
        if self.cluster_by is not None and method != "cluster":
            problems.append(
                (("cluster_by",), f"cluster_by is for the cluster method, not {method}")
            )
        if self.treated_regions != 1 and method != "synthetic_region":
            problems.append(
                (
                    ("treated_regions",),
                    f"treated_regions is for the synthetic_region method, not {method}",
                )
            )
        if self.controls == "all" and method in ("cluster", "synthetic_region"):
            problems.append(
                (
                    ("controls",),
                    f"controls: all is for designs drawing units, not {method} (its "
                    "untreated regions are the controls already)",
                )
            )
        _fail(problems)
        return self


class Power(Strict):
    """The power analysis: placebo pilots on the pre-period, for each size and length."""

    units_per_arm: list[Annotated[int, Field(ge=MIN_UNITS_PER_ARM)]] = Field(
        default_factory=lambda: [4, 6, 8, 12, 16],
        min_length=1,
        description="sizes tried (increasing)",
    )
    weeks: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: list(DEFAULT_POWER_WEEKS),
        min_length=1,
        description="test lengths tried (increasing); each must fit in the pre-period "
        "with a 4-week placebo pre-period",
    )
    placebos: int = Field(1000, ge=100, le=100_000, description="placebo pilots per cell")
    target: OpenUnit = Field(0.8, description="power wanted at the break-even uplift")
    estimator: Estimator = Field(
        "ratio",
        description="ratio: the relative uplift of total sales (the break-even's estimand); "
        "did, ancova, ri: on store sales (log scale by default)",
    )
    scale: Literal["log", "level"] = Field(
        "log", description="scale of did / ancova / ri (ratio is always on total sales)"
    )
    controls: list[Controls] = Field(
        default_factory=lambda: ["matched", "all"],
        min_length=1,
        description="control configurations sized: matched (as many controls as treated "
        "per arm) and all (every other eligible store is a control)",
    )
    customers_per_arm: list[Annotated[int, Field(ge=MIN_CUSTOMERS_PER_ARM)]] = Field(
        default_factory=list,
        description="customer-randomized tests sized beside the pilot (increasing): the "
        "offer can be targeted per customer; empty: it cannot, no customer candidates",
    )

    @field_validator("units_per_arm", "weeks", "customers_per_arm")
    @classmethod
    def _increasing(cls, values: list[int]) -> list[int]:
        problems = [
            ((index + 1,), f"must increase: {after} after {before}")
            for index, (before, after) in enumerate(itertools.pairwise(values))
            if after <= before
        ]
        _fail(problems)
        return values


# --------------------------------------------------------------------------- metrics


class Guardrail(Strict):
    """A metric that must not get worse than ``margin`` (a non-inferiority test).

    The margin is absolute for rates (``gross_margin_rate``, ``programme_cost_share``,
    ``returns_rate``: 0.005 = half a percentage point) and relative for the others
    (0.02 = 2 % of the control's level). ``programme_cost_share`` and ``returns_rate``
    must not rise by more than the margin; the others must not fall by more.
    """

    metric: GuardrailMetric
    margin: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class Metrics(Strict):
    primary: Metric = Field("sales", description="the metric of the decision")
    secondary: list[Metric] = Field(default_factory=list, description="reported, not decided on")
    guardrails: list[Guardrail] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> Metrics:
        problems = _duplicates(self.secondary, "metric")
        problems = [(("secondary", *loc), message) for loc, message in problems]
        for index, metric in enumerate(self.secondary):
            if metric == self.primary:
                problems.append(
                    (("secondary", index), f"{metric!r} is the primary metric; remove it here")
                )
        seen: set[str] = set()
        for index, guardrail in enumerate(self.guardrails):
            where = ("guardrails", index, "metric")
            if guardrail.metric == self.primary:
                problems.append(
                    (
                        where,
                        f"{guardrail.metric!r} is the primary metric: the decision already "
                        "tests it; remove this guardrail",
                    )
                )
            elif guardrail.metric in seen:
                problems.append((where, f"a guardrail on {guardrail.metric!r} is given twice"))
            seen.add(guardrail.metric)
        _fail(problems)
        return self


class PriorSpec(Strict):
    """A prior of the relative uplift of total sales given by its mean and sd."""

    mean: Annotated[float, Field(gt=-1, lt=10, allow_inf_nan=False)] = Field(
        description="mean relative uplift (0.01 = +1 %)"
    )
    sd: Annotated[float, Field(gt=0, lt=10, allow_inf_nan=False)] = Field(
        description="its standard deviation, > 0"
    )


class Decision(Strict):
    """Go / no-go: by default on money (expected profit and the risk of a loss, the prior
    from the programme's own assumptions updated by the pilot), or on an interval."""

    rule: DecisionRule | None = Field(
        None,
        description="default expected_profit (interval for a synthetic_region design or a "
        "primary metric other than sales); expected_profit: GO when the expected full-rollout "
        "profit is positive "
        "and P(loss > loss_threshold) <= max_loss_probability; interval: GO when the "
        "uplift's simultaneous interval clears min_uplift",
    )
    prior: Literal["assumptions", "sceptical"] | PriorSpec = Field(
        "assumptions",
        description="prior of the total-sales uplift: assumptions (the programme's "
        "behavioural assumptions, as the projection draws them), sceptical (centred on the "
        "break-even, same spread) or {mean, sd} (relative uplift, sd > 0)",
    )
    horizon_months: int = Field(
        12, ge=1, le=120, description="months of full rollout the profit is counted over"
    )
    loss_threshold: PositiveFloat | None = Field(
        None,
        description="a loss larger than this (currency) is the risk limited by "
        "max_loss_probability; default: one year of the programme's cost",
    )
    max_loss_probability: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        0.10, description="largest probability of losing more than loss_threshold for GO"
    )
    alpha: Annotated[float, Field(gt=0, le=0.5, allow_inf_nan=False)] = Field(
        0.05, description="significance level (one-sided tests per variant)"
    )
    min_uplift: Literal["break_even"] | float = Field(
        "break_even",
        description="relative uplift of the primary metric needed: a number in (-1, 10) "
        "or break_even (the programme's break-even uplift from the simulator)",
    )
    min_roi: float = Field(
        0.0, ge=-1, allow_inf_nan=False, description="projected ROI (profit / cost) needed"
    )

    @field_validator("prior", mode="before")
    @classmethod
    def _prior(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        extra = sorted(set(value) - {"mean", "sd"})
        if extra or not {"mean", "sd"} <= set(value):
            raise ValueError(f"a prior mapping has the keys mean and sd, got {sorted(value)}")
        for key, low in (("mean", -1.0), ("sd", 0.0)):
            x = value[key]
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise ValueError(f"{key} must be a number, got {x!r}")
            if not low < x < 10:
                raise ValueError(f"{key} must be > {low:g} and < 10, got {x!r}")
        return PriorSpec(mean=float(value["mean"]), sd=float(value["sd"]))

    @field_validator("min_uplift", mode="before")
    @classmethod
    def _uplift(cls, value: Any) -> Any:
        if value == "break_even" and isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            shown = f"the text {value!r}" if isinstance(value, str) else repr(value)
            raise ValueError(f"expected break_even or a number such as 0.02, got {shown}")
        if not -1 < value < 10:
            raise ValueError(f"must be between -1 and 10 (a relative uplift), got {value!r}")
        return float(value)


# --------------------------------------------------------------------------- rollout


class Wave(Strict):
    """One wave of the rollout: named ``regions``, a cumulative ``share`` of the stores,
    or neither (all remaining stores: the last wave only)."""

    name: str = Field(pattern=ID_PATTERN, max_length=80)
    regions: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)
    share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        None, description="cumulative share of the eligible stores treated after this wave"
    )
    min_weeks: int | None = Field(
        None, ge=1, description="weeks before the next wave (default: the test's weeks)"
    )


class Rollout(Strict):
    holdout_share: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = Field(
        0.0, description="share of eligible stores kept untreated until the last wave"
    )
    waves: list[Wave] = Field(default_factory=lambda: [Wave(name="national")], min_length=1)

    @model_validator(mode="after")
    def _waves(self) -> Rollout:
        problems: list[tuple[Loc, str]] = []
        names: set[str] = set()
        region_wave: dict[str, str] = {}
        share_before: tuple[float, str] | None = None
        last = len(self.waves) - 1
        for index, wave in enumerate(self.waves):
            here = ("waves", index)
            if wave.name in names:
                problems.append(((*here, "name"), f"wave name {wave.name!r} is used twice"))
            names.add(wave.name)
            if wave.regions is not None and wave.share is not None:
                problems.append(((*here, "share"), "give regions or share, not both"))
            elif wave.regions is None and wave.share is None and index != last:
                problems.append(
                    (
                        here,
                        f"wave {wave.name!r} has neither regions nor share: only the last "
                        "wave may (it takes all remaining stores)",
                    )
                )
            for position, region in enumerate(wave.regions or []):
                if region in region_wave:
                    problems.append(
                        (
                            (*here, "regions", position),
                            f"region {region!r} is already in wave {region_wave[region]!r}",
                        )
                    )
                else:
                    region_wave[region] = wave.name
            if wave.share is not None and wave.regions is None:
                where = (*here, "share")
                if share_before is not None and wave.share <= share_before[0]:
                    problems.append(
                        (
                            where,
                            f"shares are cumulative and must increase: {wave.share:g} "
                            f"after {share_before[0]:g} (wave {share_before[1]!r})",
                        )
                    )
                elif wave.share == 1 and index != last:
                    problems.append((where, "share 1 treats every store: only the last wave"))
                elif index != last and wave.share > 1 - self.holdout_share + 1e-12:
                    problems.append(
                        (
                            where,
                            f"share {wave.share:g} would treat the holdout "
                            f"(holdout_share {self.holdout_share:g}) before the last wave; "
                            f"at most {1 - self.holdout_share:g}",
                        )
                    )
                share_before = (wave.share, wave.name)
        _fail(problems)
        return self


class Evaluation(Strict):
    method: EvaluationMethod | None = Field(
        None,
        description="default: synthetic_control for a synthetic_region design, else ratio "
        "(the relative uplift of total sales)",
    )
    scale: Literal["auto", "level", "log"] = Field(
        "auto", description="effects on the log scale (relative) or in levels; auto chooses"
    )


# --------------------------------------------------------------------------- the pilot


class Pilot(Strict):
    """One pilot: its arms, units, periods, design, metrics, decision rules and rollout."""

    pilot: str = Field(pattern=ID_PATTERN, max_length=80, description="name, unique")
    description: str = ""
    arms: dict[str, str | None] = Field(
        description="arm name -> programme file (relative to the pilot file's folder), "
        "or null for the control arm (exactly one)"
    )
    unit: Unit = Field("store", description="what is assigned to an arm")
    pre_period: PrePeriod
    test_period: TestPeriod
    eligibility: Eligibility = Field(default_factory=Eligibility, validate_default=True)
    design: Design
    power: Power = Power()
    metrics: Metrics = Metrics()
    decision: Decision = Field(default_factory=Decision, validate_default=True)
    rollout: Rollout = Rollout()
    evaluation: Evaluation = Field(default_factory=Evaluation, validate_default=True)

    @field_validator("arms")
    @classmethod
    def _arms(cls, arms: dict[str, str | None]) -> dict[str, str | None]:
        problems: list[tuple[Loc, str]] = []
        for name, file in arms.items():
            if not re.match(ID_PATTERN, name) or len(name) > 80:
                problems.append(
                    (
                        (name,),
                        f"arm name {name!r} must be a name of letters, digits, '_', '.' "
                        "or '-' (no spaces), starting with a letter or digit",
                    )
                )
            if file is not None and not file.strip():
                problems.append(
                    ((name,), "expected the path of a programme file, or null for the control")
                )
        controls = [name for name, file in arms.items() if file is None]
        if not controls:
            problems.append(
                ((), "no control arm: give exactly one arm an empty value, such as 'control: null'")
            )
        for extra in controls[1:]:
            problems.append(
                (
                    (extra,),
                    f"arm {extra!r} is a second control (null) after {controls[0]!r}: "
                    "exactly one arm is the control; give this one a programme file",
                )
            )
        if len(arms) - len(controls) < 1 and controls:
            problems.append(
                (
                    (),
                    "no programme arm: besides the control, give at least one arm "
                    "a programme file, such as 'cash: cash-voucher.yaml'",
                )
            )
        _fail(problems)
        return arms

    @field_validator("test_period")
    @classmethod
    def _after_pre_period(cls, test: TestPeriod, info: ValidationInfo) -> TestPeriod:
        pre: PrePeriod | None = info.data.get("pre_period")
        if pre is not None and test.start <= pre.end:
            _fail(
                [
                    (
                        ("start",),
                        f"the test must start after the pre-period, which ends on {pre.end}; "
                        f"got {test.start}",
                    )
                ]
            )
        return test

    @field_validator("eligibility")
    @classmethod
    def _fits_pre_period(cls, rules: Eligibility, info: ValidationInfo) -> Eligibility:
        pre: PrePeriod | None = info.data.get("pre_period")
        if pre is None:
            return rules
        if rules.min_pre_weeks is None:  # the default, capped to the pre-period
            return rules.model_copy(update={"min_pre_weeks": min(DEFAULT_MIN_PRE_WEEKS, pre.weeks)})
        if rules.min_pre_weeks > pre.weeks:
            _fail(
                [
                    (
                        ("min_pre_weeks",),
                        f"min_pre_weeks {rules.min_pre_weeks} is longer than the "
                        f"{pre.weeks}-week pre-period",
                    )
                ]
            )
        return rules

    @field_validator("design")
    @classmethod
    def _fits_unit(cls, design: Design, info: ValidationInfo) -> Design:
        unit = info.data.get("unit")
        method = design.method
        problems: list[tuple[Loc, str]] = []
        if unit == "region" and method == "stratified":
            problems.append(
                (
                    ("method",),
                    "the stratified method needs store attributes; with unit region "
                    "use complete, matched or rerandomized",
                )
            )
        elif unit == "region" and design.stratify_by:
            problems.append(
                (
                    ("stratify_by",),
                    "with unit region there is nothing to stratify by "
                    "(regions have no region, format or size band); remove stratify_by",
                )
            )
        if unit in ("region", "customer") and method == "cluster":
            problems.append(
                (
                    ("method",),
                    f"the cluster method assigns whole regions of stores: it needs "
                    f"unit store, not {unit}",
                )
            )
        if unit == "customer" and method == "synthetic_region":
            problems.append(
                (
                    ("method",),
                    "the synthetic_region method treats whole regions: it needs "
                    "unit store or region, not customer",
                )
            )
        _fail(problems)
        return design

    @field_validator("power")
    @classmethod
    def _placebos_fit(cls, power: Power, info: ValidationInfo) -> Power:
        pre: PrePeriod | None = info.data.get("pre_period")
        if pre is None or power.weeks == DEFAULT_POWER_WEEKS:
            return power  # the default lengths are cut to the pre-period (power_weeks)
        _fail(
            (
                (
                    ("weeks", index),
                    f"a {weeks}-week placebo pilot and its own {MIN_PRE_WEEKS}-week "
                    f"pre-period do not fit in the {pre.weeks}-week pre-period",
                )
            )
            for index, weeks in enumerate(power.weeks)
            if weeks + MIN_PRE_WEEKS > pre.weeks
        )
        return power

    @field_validator("decision")
    @classmethod
    def _rule_default(cls, decision: Decision, info: ValidationInfo) -> Decision:
        if decision.rule is not None:
            return decision
        design: Design | None = info.data.get("design")
        metrics: Metrics | None = info.data.get("metrics")
        money = not (
            (design is not None and design.method == "synthetic_region")
            or (metrics is not None and metrics.primary != "sales")
        )
        return decision.model_copy(update={"rule": "expected_profit" if money else "interval"})

    @field_validator("evaluation")
    @classmethod
    def _fits_design(cls, evaluation: Evaluation, info: ValidationInfo) -> Evaluation:
        design: Design | None = info.data.get("design")
        if design is None:
            return evaluation
        if evaluation.method is None:  # the default follows the design
            method = "synthetic_control" if design.method == "synthetic_region" else "ratio"
            return evaluation.model_copy(update={"method": method})
        if design.method == "synthetic_region" and evaluation.method != "synthetic_control":
            _fail(
                [
                    (
                        ("method",),
                        "a synthetic_region design is evaluated with "
                        "synthetic_control (or leave method out)",
                    )
                ]
            )
        if evaluation.method == "synthetic_control" and design.method != "synthetic_region":
            _fail(
                [
                    (
                        ("method",),
                        f"synthetic_control evaluates a synthetic_region design, "
                        f"not a {design.method} one; use did, ancova, ri or event_study",
                    )
                ]
            )
        return evaluation

    # ----------------------------------------------------------------- derived values

    @property
    def control(self) -> str:
        """The control arm (the arm without a programme)."""
        return next(name for name, file in self.arms.items() if file is None)

    @property
    def variants(self) -> tuple[str, ...]:
        """The programme arms, in file order."""
        return tuple(name for name, file in self.arms.items() if file is not None)

    @property
    def min_pre_weeks(self) -> int:
        """Eligibility: weeks with sales in the pre-period needed (default applied)."""
        given = self.eligibility.min_pre_weeks
        return given if given is not None else min(DEFAULT_MIN_PRE_WEEKS, self.pre_period.weeks)

    @property
    def evaluation_method(self) -> str:
        """The evaluation's estimator (default applied)."""
        if self.evaluation.method is not None:
            return self.evaluation.method
        return "synthetic_control" if self.design.method == "synthetic_region" else "ratio"

    @property
    def power_weeks(self) -> tuple[int, ...]:
        """Test lengths of the power analysis that fit in the pre-period (may be empty)."""
        fit = self.pre_period.weeks - MIN_PRE_WEEKS
        return tuple(w for w in self.power.weeks if w <= fit)

    @property
    def wave_weeks(self) -> tuple[int, ...]:
        """Each rollout wave's ``min_weeks`` (default: the test's length)."""
        default = self.test_period.n_weeks
        return tuple(w.min_weeks or default for w in self.rollout.waves)


# --------------------------------------------------------------------------- files
