"""A pilot: strict, typed, one YAML file per pilot, checked like a programme file.

The models below only validate values, one file at a time; :func:`load_pilot` reads the
file strictly (``file:line:column`` for every mistake, all at once, see
:mod:`loyalty_pilot.pilots.specfile`), loads each arm's programme file and reports the
problems of the pilot and of its programmes together. :func:`check_against_data` then
checks the pilot against the workspace's data (periods inside the baskets, enough
eligible units, known regions) and points each problem at the key of the pilot file.

A pilot file::

    pilot: spring-cash-vs-gift
    arms: {control: null, cash: ../programmes/cash-voucher.yaml, gift: gift.yaml}
    unit: store                                   # store | region | customer
    pre_period: {start: 2025-01-06, end: 2026-03-29}
    test_period: {start: 2026-03-30, weeks: 12}   # or {start: ..., end: 2026-06-21}
    design: {method: matched, stratify_by: [region], units_per_arm: 8, seed: 7}
    metrics: {primary: sales, secondary: [visits, basket_size, active_customers]}
    decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}
    rollout: {waves: [{name: north, regions: [north]}, {name: national}]}

Weeks are those of the weekly panels (:mod:`loyalty_pilot.pilots.panels`): Monday to
Sunday. So a period starts on a Monday and ends on a Sunday, and every period is a whole
number of weeks.

Required: ``pilot``, ``arms`` (exactly one null arm, the control, and at least one
programme file), ``pre_period`` (at least 4 weeks), ``test_period`` (after the
pre-period; ``weeks`` or ``end``, or both if they agree) and ``design.seed``. Defaults:
unit ``store``; eligibility ``min_pre_weeks`` 26 (capped to the pre-period), no
exclusions, ``min_weekly_sales`` 0; design ``matched`` on ``[level, trend]``,
``units_per_arm`` null (the power analysis recommends), rerandomized ``acceptance`` 0.05,
``treated_regions`` 1; power sizes ``[4, 6, 8, 12, 16]`` per arm, weeks ``[8, 12, 16]``
(the default lengths that do not fit the pre-period are dropped, given ones are errors),
1000 placebos, target 0.8, estimator ``did``, scale ``log``; metrics primary ``sales``,
no secondary metric, no guardrail; decision alpha 0.05, ``min_uplift: break_even``,
``min_roi`` 0; rollout ``holdout_share`` 0 and one ``national`` wave, each wave's
``min_weeks`` the test's weeks; evaluation ``did`` (``synthetic_control`` for a
synthetic_region design), scale ``auto``. Once validated, the defaults that depend on
other keys are filled in: ``test_period.weeks`` and ``end``,
``eligibility.min_pre_weeks`` and ``evaluation.method`` are never None.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import os
import re
import typing
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
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

from loyalty_pilot.pilots.specfile import (
    LineMap,
    SpecError,
    SpecIssue,
    json_schema,
    load_programme,
    load_yaml,
    validate_data,
)
from loyalty_pilot.simulator.programme import ID_PATTERN, Programme

__all__ = [
    "DESIGN_METHODS",
    "EVALUATION_METHODS",
    "GUARDRAIL_METRICS",
    "HIGHER_IS_WORSE",
    "MATCH_FEATURES",
    "METRIC_COLUMNS",
    "PRIMARY_METRICS",
    "RATE_METRICS",
    "STORE_ATTRIBUTES",
    "UNITS",
    "Pilot",
    "PilotFile",
    "check_against_data",
    "example_pilots",
    "load_pilot",
    "pilot_json_schema",
]

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
Estimator = Literal["did", "ancova", "ri"]
EvaluationMethod = Literal["did", "ancova", "ri", "synthetic_control", "event_study"]

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
    estimator: Estimator = "did"
    scale: Literal["log", "level"] = "log"

    @field_validator("units_per_arm", "weeks")
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


class Decision(Strict):
    """Go / no-go: a variant goes if its uplift is significant and large enough, and pays."""

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
        None, description="default: synthetic_control for a synthetic_region design, else did"
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
    decision: Decision = Decision()
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

    @field_validator("evaluation")
    @classmethod
    def _fits_design(cls, evaluation: Evaluation, info: ValidationInfo) -> Evaluation:
        design: Design | None = info.data.get("design")
        if design is None:
            return evaluation
        if evaluation.method is None:  # the default follows the design
            method = "synthetic_control" if design.method == "synthetic_region" else "did"
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
        return "synthetic_control" if self.design.method == "synthetic_region" else "did"

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


@dataclass(frozen=True)
class PilotFile:
    """A loaded pilot: the spec, where each key is in its file, and its arms' programmes."""

    spec: Pilot
    path: Path
    lines: LineMap
    programmes: dict[str, Programme]  # arm -> programme (the control excluded)
    programme_paths: dict[str, Path]  # arm -> resolved programme file

    def issue(self, key_path: Iterable[Any], reason: str) -> SpecIssue:
        """A problem at ``key_path`` of the file (the deepest key present gives the line)."""
        path = tuple(key_path)
        line, col = self.lines.locate(path)
        return SpecIssue(self.lines.file, line, col, path, reason)

    def error(self, key_path: Iterable[Any], reason: str) -> SpecError:
        """A :class:`SpecError` at ``key_path``, for checks against the data."""
        return SpecError([self.issue(key_path, reason)])

    def control(self) -> str:
        return self.spec.control

    def variants(self) -> tuple[str, ...]:
        return self.spec.variants


def load_pilot(path: str | Path) -> PilotFile:
    """Read and validate a pilot file and the programme file of each arm.

    Raises one :class:`SpecError` with every problem found: those of the pilot file (in
    file order), then those of its programme files (each at its own ``file:line``). A
    programme file that does not exist is reported at its arm's line.
    """
    path = Path(path)
    data, lines = load_yaml(path)
    issues: list[SpecIssue] = []
    spec: Pilot | None = None
    try:
        spec = validate_data(data, lines, Pilot)
    except SpecError as exc:
        issues.extend(exc.errors)

    def at(key_path: Loc, reason: str) -> SpecIssue:
        return SpecIssue(lines.file, *lines.locate(key_path), key_path, reason)

    programmes: dict[str, Programme] = {}
    programme_paths: dict[str, Path] = {}
    programme_issues: list[SpecIssue] = []
    arms = data.get("arms")
    by_file: dict[Path, str] = {}
    by_name: dict[str, str] = {}
    for arm, file in arms.items() if isinstance(arms, dict) else ():
        if not isinstance(arm, str) or not isinstance(file, str) or not file.strip():
            continue  # reported by the model
        where = ("arms", arm)
        resolved = _resolve(path, file)
        if resolved in by_file:
            issues.append(
                at(
                    where,
                    f"same programme file as arm {by_file[resolved]!r}: "
                    "each arm tests its own programme",
                )
            )
            continue
        by_file[resolved] = arm
        if not resolved.exists():
            issues.append(at(where, f"file {file} not found (looked for {resolved})"))
            continue
        if resolved.is_dir():
            issues.append(at(where, f"{file} is a folder, not a programme file"))
            continue
        try:
            programme = load_programme(resolved)
        except SpecError as exc:
            programme_issues.extend(exc.errors)
            continue
        name = programme.programme
        if name in by_name:
            issues.append(
                at(
                    where,
                    f"programme {name!r} ({file}) is also the programme of arm "
                    f"{by_name[name]!r}: programme names must be unique",
                )
            )
            continue
        by_name[name] = arm
        programmes[arm] = programme
        programme_paths[arm] = resolved
    issues.sort(key=lambda issue: (issue.line or 0, issue.col or 0))
    issues += programme_issues
    if issues or spec is None:
        raise SpecError(issues)
    return PilotFile(spec, path, lines, programmes, programme_paths)


def _resolve(pilot_path: Path, file: str) -> Path:
    target = Path(file).expanduser()
    if not target.is_absolute():
        target = pilot_path.parent / target
    return Path(os.path.normpath(target))


# --------------------------------------------------------------------------- data checks

_UNIT_WORDS = {"store": "stores", "region": "regions", "customer": "customers"}


def check_against_data(
    pf: PilotFile,
    *,
    data_start: dt.date,
    data_end: dt.date,
    n_eligible: int,
    regions: Collection[str] | None = None,
    units: Collection[str] | None = None,
    attributes: Collection[str] | None = None,
) -> None:
    """Check a loaded pilot against the workspace's data; every problem at its key, at once.

    ``data_start`` / ``data_end``: dates of the first and last basket. ``n_eligible``:
    units (of the pilot's ``unit``) passing the eligibility rules. ``regions``: the
    regions of the store list (checks rollout waves, clusters and synthetic regions).
    ``units``: every unit id in the data (checks ``eligibility.exclude``). ``attributes``:
    the store attributes available among region, format and size_band (checks
    ``stratify_by``). A test period after the last basket is fine (a future pilot); a
    pre-period that is not inside the data is not.
    """
    spec = pf.spec
    issues: list[SpecIssue] = []
    pre = spec.pre_period
    if pre.start < data_start:
        monday = data_start + dt.timedelta(days=-data_start.weekday() % 7)
        issues.append(
            pf.issue(
                ("pre_period", "start"),
                f"{pre.start} is before the first basket ({data_start}); start the pre-period "
                f"on or after it (the first Monday is {monday})",
            )
        )
    if pre.end > data_end:
        issues.append(
            pf.issue(
                ("pre_period", "end"),
                f"{pre.end} is after the last basket ({data_end}): the pre-period must be "
                "inside the data",
            )
        )
    if units is not None:
        known = set(units)
        for index, unit_id in enumerate(spec.eligibility.exclude):
            if unit_id not in known:
                issues.append(
                    pf.issue(
                        ("eligibility", "exclude", index),
                        f"unknown {spec.unit} {unit_id!r}" + _did_you_mean(unit_id, known),
                    )
                )
    issues += _enough_units(pf, n_eligible, regions)
    design = spec.design
    if attributes is not None:
        have = set(attributes)
        for index, key in enumerate(design.stratify_by):
            if key not in have:
                issues.append(
                    pf.issue(
                        ("design", "stratify_by", index),
                        f"the stores have no {key!r} in this workspace (known: "
                        f"{', '.join(sorted(have)) or 'none'}); ingest a stores file with it",
                    )
                )
        if design.cluster_by is not None and design.cluster_by not in have:
            issues.append(
                pf.issue(("design", "cluster_by"), f"the stores have no {design.cluster_by!r}")
            )
    if regions is not None:
        issues += _rollout_regions(pf, regions)
    if issues:
        raise SpecError(issues)


def _enough_units(pf: PilotFile, n_eligible: int, regions: Collection[str] | None) -> list:
    spec = pf.spec
    design = spec.design
    n_arms = len(spec.arms)
    issues = []
    if design.method == "synthetic_region":
        if regions is None and spec.unit != "region":
            return []
        n_regions = n_eligible if spec.unit == "region" else len(set(regions or ()))
        needed = design.treated_regions * len(spec.variants) + MIN_DONOR_REGIONS
        if n_regions < needed:
            issues.append(
                pf.issue(
                    ("design", "treated_regions"),
                    f"{design.treated_regions} treated region(s) x {len(spec.variants)} "
                    f"variant(s) + {MIN_DONOR_REGIONS} donor regions = {needed} regions "
                    f"needed, the data has {n_regions}",
                )
            )
        return issues
    if design.method == "cluster":
        if regions is None:
            return []
        n_units, word = len(set(regions)), "clusters (regions)"
    else:
        n_units, word = n_eligible, f"eligible {_UNIT_WORDS[spec.unit]}"
    per_arm = design.units_per_arm
    if per_arm is not None:
        if per_arm * n_arms > n_units:
            issues.append(
                pf.issue(
                    ("design", "units_per_arm"),
                    f"{per_arm} per arm x {n_arms} arms = {per_arm * n_arms} units needed, "
                    f"only {n_units} {word}",
                )
            )
        return issues
    smallest = min(spec.power.units_per_arm)
    if MIN_UNITS_PER_ARM * n_arms > n_units:
        issues.append(
            pf.issue(
                ("design",),
                f"at least {MIN_UNITS_PER_ARM} per arm x {n_arms} arms = "
                f"{MIN_UNITS_PER_ARM * n_arms} units needed, only {n_units} {word}",
            )
        )
    elif smallest * n_arms > n_units:
        issues.append(
            pf.issue(
                ("power", "units_per_arm"),
                f"even the smallest size, {smallest} per arm x {n_arms} arms = "
                f"{smallest * n_arms} units, is more than the {n_units} {word}; "
                "add smaller sizes or set design.units_per_arm",
            )
        )
    return issues


def _rollout_regions(pf: PilotFile, regions: Collection[str]) -> list[SpecIssue]:
    known = set(regions)
    issues = []
    listed: set[str] = set()
    waves = pf.spec.rollout.waves
    for index, wave in enumerate(waves):
        for position, region in enumerate(wave.regions or []):
            listed.add(region)
            if region not in known:
                issues.append(
                    pf.issue(
                        ("rollout", "waves", index, "regions", position),
                        f"unknown region {region!r}{_did_you_mean(region, known)}; "
                        f"regions: {', '.join(sorted(known))}",
                    )
                )
    if all(wave.regions is not None for wave in waves):
        left = sorted(known - listed)
        if left:
            issues.append(
                pf.issue(
                    ("rollout", "waves"),
                    f"regions {', '.join(left)} are in no wave: add them to a wave or end "
                    "with a wave without regions (all remaining stores)",
                )
            )
    return issues


def _did_you_mean(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- misc


def pilot_json_schema() -> dict[str, Any]:
    """JSON schema of the pilot YAML, for editor completion and checks."""
    return json_schema(Pilot, "loyalty-pilot pilot")


def example_pilots() -> list[Path]:
    """The example pilot files shipped with the package (examples/pilots)."""
    folder = resources.files("loyalty_pilot.examples").joinpath("pilots")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))
