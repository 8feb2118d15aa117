"""A loyalty programme variant: strict, typed, one YAML file per variant.

The models only validate values; reading YAML files (duplicate keys, line numbers) is the
job of ``loyalty_pilot.pilots.specfile``. Every model forbids unknown keys and is frozen;
numbers must be numbers and ids must be strings (``programme: 0123`` is an error, not 83).

How each mechanism is replayed on historical baskets is defined in
:mod:`loyalty_pilot.simulator.replay`; the field docs below say what each key means.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loyalty_pilot.simulator.rfm import SEGMENTS

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Uncertain(Strict):
    """A behavioural assumption: relative effect with its uncertainty (normal)."""

    mean: float = Field(0.0, allow_inf_nan=False, gt=-1, description="relative, 0.03 = +3 %")
    sd: NonNegativeFloat = Field(0.0, description="standard deviation of the assumption")


class SegmentResponse(Strict):
    """Assumptions for one RFM segment; a missing one falls back to the programme's."""

    visit_uplift: Uncertain | None = None
    basket_uplift: Uncertain | None = None
    churn_reduction: Uncertain | None = None


class Response(Strict):
    """Behavioural response of enrolled customers (used by the projection, not the replay)."""

    visit_uplift: Uncertain = Uncertain()
    basket_uplift: Uncertain = Uncertain()
    churn_reduction: Uncertain = Uncertain()
    segments: dict[str, SegmentResponse] = Field(
        default_factory=dict, description="per RFM segment: " + ", ".join(SEGMENTS)
    )

    @field_validator("segments")
    @classmethod
    def _known_segments(cls, value: dict[str, SegmentResponse]) -> dict[str, SegmentResponse]:
        for name in value:
            if name not in SEGMENTS:
                raise ValueError(f"unknown RFM segment {name!r}; known: {', '.join(SEGMENTS)}")
        return value

    @property
    def is_zero(self) -> bool:
        parts = [self.visit_uplift, self.basket_uplift, self.churn_reduction]
        for seg in self.segments.values():
            parts += [p for p in (seg.visit_uplift, seg.basket_uplift, seg.churn_reduction) if p]
        return all(p.mean == 0 and p.sd == 0 for p in parts)


class Enrolment(Strict):
    uptake: Share = Field(1.0, description="share of active identified customers who join")


class Earn(Strict):
    points_per_currency: PositiveFloat = Field(description="points per currency unit spent")
    welcome_bonus: int = Field(0, ge=0, description="points credited at enrolment")
    department_multipliers: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="points multiplier by basket department (baskets need a department column)",
    )


class CashVoucher(Strict):
    kind: Literal["cash_voucher"]
    points: int = Field(gt=0, description="points converted into one voucher")
    value: PositiveFloat = Field(description="face value of the voucher")
    share: Share | None = Field(None, description="share of members choosing this reward")


class Gift(Strict):
    kind: Literal["gift"]
    name: str = ""
    points: int = Field(gt=0, description="points converted into one gift")
    retail_value: PositiveFloat = Field(description="value perceived by the customer")
    unit_cost: PositiveFloat = Field(description="cost paid by the retailer")
    share: Share | None = None


class Discount(Strict):
    """Fixed discount card: ``rate`` off every basket of a member, no points."""

    kind: Literal["discount"]
    rate: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


class ScaleStep(Strict):
    from_spend: NonNegativeFloat = Field(
        description="calendar-year spend from which the rate applies"
    )
    rate: Rate


class ProgressiveDiscount(Strict):
    """Discount rate rising with the member's cumulative spend in the calendar year."""

    kind: Literal["progressive_discount"]
    scale: list[ScaleStep] = Field(min_length=1)

    @field_validator("scale")
    @classmethod
    def _increasing(cls, steps: list[ScaleStep]) -> list[ScaleStep]:
        if steps[0].from_spend != 0:
            raise ValueError("the first step must start at from_spend 0")
        for before, after in itertools.pairwise(steps):
            if after.from_spend <= before.from_spend:
                raise ValueError("from_spend must increase from step to step")
        return steps


Reward = Annotated[CashVoucher | Gift | Discount | ProgressiveDiscount, Field(discriminator="kind")]
PointReward = CashVoucher | Gift


class Redemption(Strict):
    rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        0.8, description="share of issued rewards redeemed; the rest is breakage"
    )
    validity_days: int = Field(90, gt=0, description="days a reward can be redeemed")


class Expiry(Strict):
    inactivity_days: int | None = Field(
        None, gt=0, description="the balance lapses after this many days without a basket"
    )
    validity_years: int | None = Field(
        None,
        ge=0,
        description="points earned in year Y expire on 31 December of year Y + validity_years",
    )


class TierBenefit(Strict):
    description: str = ""
    discount_rate: Rate = 0.0
    cost_per_member_year: NonNegativeFloat = 0.0


class Tier(Strict):
    name: str = Field(pattern=ID_PATTERN)
    min_spend_12m: NonNegativeFloat
    multiplier: PositiveFloat = 1.0
    benefit: TierBenefit | None = None


class Referral(Strict):
    bonus_referrer: int = Field(0, ge=0)
    bonus_referee: int = Field(0, ge=0)
    rate_per_member_year: NonNegativeFloat = Field(
        description="assumed referrals per member and year"
    )


class Economics(Strict):
    gross_margin: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    budget_share_of_revenue: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    running_cost_per_member_year: NonNegativeFloat = 0.0


class SmartThresholds(Strict):
    """Thresholds of the SMART check (defaults follow the domain brief)."""

    max_rules: int = Field(6, gt=0, description="Simple: at most this many rules")
    min_value_per_100: NonNegativeFloat = Field(
        0.5, description="Measurable: cash-equivalent reward per 100 spent, at least"
    )
    min_attainable: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        0.3, description="Attainable: share reaching a first reward within 12 months, at least"
    )
    max_days_to_first_reward: int = Field(
        365, gt=0, description="Time-bound: median-frequency customer's days to first reward"
    )


class Programme(Strict):
    """One programme variant."""

    programme: str = Field(pattern=ID_PATTERN, max_length=80, description="name, unique")
    description: str = ""
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    start: dt.date | None = Field(None, description="first day of the replay (default: data)")
    enrolment: Enrolment = Enrolment()
    earn: Earn | None = None
    rewards: list[Reward] = Field(min_length=1)
    redemption: Redemption = Redemption()
    expiry: Expiry = Expiry()
    tiers: list[Tier] = Field(default_factory=list)
    referral: Referral | None = None
    economics: Economics
    response: Response = Response()
    smart: SmartThresholds = SmartThresholds()

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, tiers: list[Tier]) -> list[Tier]:
        if not tiers:
            return tiers
        if tiers[0].min_spend_12m != 0:
            raise ValueError(
                f"the first tier {tiers[0].name!r} must have min_spend_12m 0 "
                "(every member has a tier)"
            )
        for before, after in itertools.pairwise(tiers):
            if after.min_spend_12m <= before.min_spend_12m:
                raise ValueError(
                    f"tier thresholds must increase: {after.name!r} ({after.min_spend_12m:g}) "
                    f"after {before.name!r} ({before.min_spend_12m:g})"
                )
        names = [t.name for t in tiers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"tier name {name!r} is used twice; tier names must be unique")
        return tiers

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        points = self.point_rewards
        if points and self.earn is None:
            raise ValueError("rewards with points need an 'earn' section")
        if sum(isinstance(r, Discount) for r in self.rewards) > 1:
            raise ValueError("at most one fixed discount reward")
        if sum(isinstance(r, ProgressiveDiscount) for r in self.rewards) > 1:
            raise ValueError("at most one progressive_discount reward")
        shares = [r.share for r in points]
        given = [s for s in shares if s is not None]
        if given and len(given) != len(shares):
            raise ValueError("give a share to every point reward or to none")
        if given and not math.isclose(sum(given), 1.0, abs_tol=1e-9):
            raise ValueError(f"point reward shares must sum to 1 (they sum to {sum(given):g})")
        if self.earn is None and any(t.multiplier != 1 for t in self.tiers):
            raise ValueError("tier multipliers need an 'earn' section")
        if self.earn is None and (
            self.expiry.inactivity_days or self.expiry.validity_years is not None
        ):
            raise ValueError("expiry applies to points: it needs an 'earn' section")
        if self.referral is not None and not points:
            raise ValueError("referral bonuses are points: they need a reward with points")
        return self

    @property
    def point_rewards(self) -> list[PointReward]:
        return [r for r in self.rewards if isinstance(r, CashVoucher | Gift)]

    @property
    def reward_shares(self) -> list[float]:
        """Share of members choosing each point reward (equal when not given)."""
        points = self.point_rewards
        if not points:
            return []
        if points[0].share is None:
            return [1.0 / len(points)] * len(points)
        return [float(r.share) for r in points]  # type: ignore[arg-type]

    @property
    def discount_rate(self) -> float:
        return sum(r.rate for r in self.rewards if isinstance(r, Discount))

    @property
    def progressive(self) -> ProgressiveDiscount | None:
        return next((r for r in self.rewards if isinstance(r, ProgressiveDiscount)), None)


def reward_cost(reward: PointReward) -> float:
    """What one reward costs the retailer: a voucher's face value, a gift's unit cost."""
    return float(reward.value) if isinstance(reward, CashVoucher) else float(reward.unit_cost)


def reward_perceived(reward: PointReward) -> float:
    """What one reward is worth to the customer: face value, or the gift's retail value."""
    return float(reward.value) if isinstance(reward, CashVoucher) else float(reward.retail_value)


def slug(name: str) -> str:
    """A name safe for a column: lower case, non-alphanumerics as underscores."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
