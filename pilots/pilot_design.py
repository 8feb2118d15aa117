"""``design PILOT.yaml``: eligibility, power on the chain's own history, the recommended
size, the proposed assignment and its balance.

The steps, in order:

1. the candidates and their pre-period series (:mod:`loyalty_pilot.pilots.pilot_data`);
2. the uplift the pilot must detect: ``decision.min_uplift``, a number, or
   ``break_even``: the smallest break-even uplift of the programme arms, each projected
   by the simulator on the workspace's baskets;
3. the power table: for every design of the grid ``power.units_per_arm x power.weeks``,
   the MDE by placebo pilots drawn with the pilot's own design inside the pre-period
   (:func:`loyalty_pilot.experiments.power.placebo_power`), with its analytic cross-check
   and the false-positive rate at zero effect;
4. the size: ``design.units_per_arm`` when the YAML gives it, else the smallest design of
   the grid whose MDE is at most the threshold (or, when none is, the largest the chain
   allows, with a plain warning);
5. the assignment, drawn with the design's seed, and its balance on the pre-period.

Everything here is deterministic for the YAML's seeds and the workspace's data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loyalty_pilot.pilots.pilot_data import PilotData, describe, load_pilot_data

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.experiments.assignment import Assignment
    from loyalty_pilot.experiments.power import PowerCell, PowerTable
    from loyalty_pilot.pilots.design_value import ValueSizing
    from loyalty_pilot.pilots.money import ArmMoney
    from loyalty_pilot.pilots.pilotspec import PilotFile

PLACEBO_MIN_PRE = 8  # fewest pre weeks a placebo pilot keeps


@dataclass(frozen=True)
class PilotDesign:
    """The outcome of ``design``: what the pilot will be and why."""

    pilot: str
    data: PilotData
    method: str  # the design method as drawn
    arms: tuple[str, ...]  # control first
    break_even: dict[str, float | None]  # programme arm -> break-even uplift
    threshold: float | None  # the uplift the pilot must detect
    threshold_source: str
    power: PowerTable | None
    recommended: PowerCell | None
    per_arm: int
    weeks: int
    assignment: Assignment
    balance: pd.DataFrame
    series: pd.DataFrame
    covariates: pd.DataFrame  # eligible units x (level, trend) on the pre-period
    notes: tuple[str, ...] = field(default_factory=tuple)
    sizing: ValueSizing | None = None  # the candidates valued by their information
    money: tuple[ArmMoney, ...] = ()  # each programme arm's prior and economics

    def design_payload(self, pf: PilotFile) -> dict[str, Any]:
        """What the assignment depends on, for the registry's design hash."""
        spec = pf.spec
        return {
            "pilot": spec.pilot,
            "unit": spec.unit,
            "arms": list(self.arms),
            "pre_period": spec.pre_period.model_dump(mode="json"),
            "eligibility": spec.eligibility.model_dump(mode="json"),
            # (controls: matched, the default, is left out so earlier frozen hashes hold)
            "design": spec.design.model_dump(
                mode="json", exclude={"controls"} if spec.design.controls == "matched" else None
            ),
            "primary": spec.metrics.primary,
            "per_arm": self.per_arm,
        }

    def fingerprint_frame(self) -> pd.DataFrame:
        """The data the assignment was drawn from: the eligible units' pre-period series
        and descriptors, for the registry's data fingerprint."""
        wide = self.data.wide.copy()
        wide.columns = [pd.Timestamp(c).date().isoformat() for c in wide.columns]
        return wide.join(self.data.units.drop(columns=["size_m2"], errors="ignore"))

    def to_dict(self) -> dict[str, Any]:
        from loyalty_pilot.pilots.registry import _jsonable

        sizing = None if self.sizing is None else self.sizing.to_dict()
        out = {
            "pilot": self.pilot,
            # the eligible units (until 0.x under "candidates", now the designs' key)
            "eligible_units": describe(self.data),
            "candidates": None if sizing is None else sizing["candidates"],
            "recommendation": None if sizing is None else sizing["recommendation"],
            "value_sizing": sizing,
            "money": [{"arm": m.arm, **m.summary()} for m in self.money],
            "method": self.method,
            "arms": list(self.arms),
            "break_even_uplift": self.break_even,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "power": None if self.power is None else self.power.to_dict(),
            "recommended": None if self.recommended is None else _jsonable(vars(self.recommended)),
            "per_arm": self.per_arm,
            "weeks": self.weeks,
            "assignment": {
                "method": self.assignment.method,
                "seed": self.assignment.seed,
                "details": _jsonable(self.assignment.details),
                "units": self.assignment.to_frame().to_dict(orient="records"),
                "counts": {str(k): int(v) for k, v in self.assignment.arm.value_counts().items()},
            },
            "balance": _jsonable(self.balance.to_dict(orient="records")),
            "pre_period_series": _jsonable(
                self.series.reset_index().rename(columns={"index": "week"}).to_dict("records")
            ),
            "notes": list(self.notes),
        }
        return out


def arm_projections(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, *, draws: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Every programme arm's projection over ``decision.horizon_months`` with its own
    assumptions (the simulator on the workspace)."""
    from loyalty_pilot.pilots.simulate import simulate

    arms = list(pf.variants())
    paths = [pf.programme_paths[arm] for arm in arms]
    horizon = pf.spec.decision.horizon_months
    projections = simulate(paths, con, horizon_months=horizon, draws=draws, seed=seed)
    return {arm: p.projection for arm, p in zip(arms, projections, strict=True)}


#: the draws and seed of the prior's projections: `decide`'s defaults, so design and decide
#: share a prior (the break-even does not depend on them: replays and marginal costs only)
PRIOR_DRAWS, PRIOR_SEED = 1000, 0


def break_even_of(projections: dict[str, Any]) -> dict[str, float | None]:
    """Each programme arm's break-even uplift from its projection (None when infinite)."""
    out: dict[str, float | None] = {}
    for arm, projection in projections.items():
        value = float(projection.break_even_uplift)
        out[arm] = value if np.isfinite(value) else None
    return out


def _threshold(
    pf: PilotFile, projections: dict[str, Any]
) -> tuple[dict[str, float | None], float | None, str]:
    wanted = pf.spec.decision.min_uplift
    check_break_even_metric(pf)
    if wanted == "break_even":
        uplifts = break_even_of(projections)
        finite = [v for v in uplifts.values() if v is not None]
        return uplifts, (min(finite) if finite else None), "break-even uplift (simulator)"
    return {}, float(wanted), "decision.min_uplift"


COVARIATES = ("level", "trend", "volatility")


def covariates_of(wide: pd.DataFrame) -> pd.DataFrame:
    """Pre-period ``level`` and ``trend`` (experiments.assignment.pre_period_covariates, on
    log1p when every value is positive) and ``volatility``: the standard deviation of the
    week-to-week changes of the same series."""
    from loyalty_pilot.experiments.assignment import pre_period_covariates

    log = bool((wide.to_numpy() > 0).all())
    out = pre_period_covariates(wide, log=log)
    values = wide.to_numpy(dtype=float)
    series = np.log1p(values) if log else values
    changes = np.diff(series, axis=1)
    volatility = changes.std(axis=1, ddof=1) if changes.shape[1] > 1 else np.zeros(len(wide))
    out["volatility"] = pd.Series(volatility, index=wide.index.astype(str)).reindex(out.index)
    return out


def check_break_even_metric(pf: PilotFile) -> None:
    """The break-even uplift is an uplift of sales: it is the threshold of a sales pilot
    only; another primary metric needs ``decision.min_uplift`` as a number."""
    spec = pf.spec
    if spec.decision.rule == "expected_profit" and spec.metrics.primary != "sales":
        raise pf.error(
            ("decision", "rule"),
            f"expected_profit is money on the uplift of sales; with the primary metric "
            f"{spec.metrics.primary} use rule: interval",
        )
    if spec.decision.rule == "expected_profit" and spec.design.method == "synthetic_region":
        raise pf.error(
            ("decision", "rule"),
            "a synthetic_region design's placebo test gives no standard error for the money "
            "rule; use rule: interval",
        )
    if spec.decision.min_uplift == "break_even" and spec.metrics.primary != "sales":
        raise pf.error(
            ("decision", "min_uplift"),
            f"break_even is an uplift of sales; with the primary metric "
            f"{spec.metrics.primary} give min_uplift as a number",
        )


def _units_frame(data: PilotData) -> pd.DataFrame:
    """The assignment's unit table: descriptors and pre-period covariates, sorted by id."""
    return data.units.join(covariates_of(data.wide)).sort_index()


def _assign_kwargs(pf: PilotFile, data: PilotData) -> dict[str, Any]:
    """The design's parameters for experiments.assignment (analysis-unit level)."""
    design = pf.spec.design
    method = design.method
    kwargs: dict[str, Any] = {"method": method}
    if method == "cluster":  # stores in whole regions: regions are the analysis units
        kwargs["method"] = "complete"
    if method in ("stratified", "matched") and design.stratify_by and data.kind == "store":
        kwargs["strata"] = tuple(design.stratify_by)
    if method in ("matched", "rerandomized"):
        kwargs["covariates"] = tuple(design.match_on)
    if method == "rerandomized":
        kwargs["max_mahalanobis"] = design.max_mahalanobis
        kwargs["acceptance"] = design.acceptance
    if method == "synthetic_region":
        kwargs["wide"] = data.wide
        kwargs["n_treated_regions"] = design.treated_regions
    return kwargs


def _draw_for_power(
    units: pd.DataFrame, wide: pd.DataFrame, n_arms: int, kwargs: dict[str, Any], pre_weeks: int
) -> Callable[[np.random.Generator, int, int, int], np.ndarray]:
    """Placebo assignments drawn with the pilot's own design, for one arm vs control.

    Designs that use pre-period covariates (matched, rerandomized) recompute them on the
    placebo's own pre-window, so the placebo is designed as the real pilot will be.
    """
    from loyalty_pilot.experiments.assignment import draw_codes

    method = kwargs["method"]
    if method == "synthetic_region":
        method = "complete"  # power of the one-region design: a region against the rest
    uses_covariates = method in ("matched", "rerandomized")
    extra = {k: v for k, v in kwargs.items() if k in ("strata", "covariates", "acceptance")}
    if method == "rerandomized":
        extra["max_mahalanobis"] = kwargs.get("max_mahalanobis")
    cache: dict[int, pd.DataFrame] = {}

    def draw(rng: np.random.Generator, per_arm: int, n_draws: int, start: int) -> np.ndarray:
        frame = units
        if uses_covariates:
            if start not in cache:
                window = wide.iloc[:, max(start - pre_weeks, 0) : start]
                cache[start] = units.drop(columns=list(COVARIATES)).join(covariates_of(window))
            frame = cache[start]
        codes = draw_codes(
            frame, n_arms, method=method, per_arm=per_arm, n_draws=n_draws, rng=rng, **extra
        )
        codes = codes.copy()
        codes[codes > 1] = -1  # one variant against the control
        return codes

    return draw


def _grid(
    pf: PilotFile, data: PilotData, n_arms: int, units: pd.DataFrame, kwargs: dict[str, Any]
) -> tuple[list[int], list[int], int]:
    """Sizes the design can draw from the eligible units, durations that fit the history,
    and the placebo pilots' pre weeks."""
    from loyalty_pilot.experiments.assignment import draw_codes

    power = pf.spec.power
    n_units = len(data.wide)
    extra = {k: v for k, v in kwargs.items() if k not in ("method", "wide", "n_treated_regions")}
    sizes = []
    for size in power.units_per_arm:
        if size * n_arms > n_units:
            continue
        try:  # e.g. matched tuples within strata: fewer tuples than units / arms
            draw_codes(
                units, n_arms, method=kwargs["method"], per_arm=size, n_draws=1,
                rng=np.random.default_rng(0), **extra,
            )  # fmt: skip
        except ValueError:
            continue
        sizes.append(size)
    history = data.wide.shape[1]
    pre_weeks = min(history // 2, max(PLACEBO_MIN_PRE, history - max(power.weeks) - 4))
    weeks = [w for w in power.weeks if pre_weeks + w <= history]
    return sizes, weeks, pre_weeks


def run_design(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    *,
    with_power: bool = True,
    break_even: dict[str, float | None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PilotDesign:
    """Everything ``design`` prints (see the module docstring).

    ``break_even``: the programme arms' break-even uplifts when the caller has already
    projected them (the demo); otherwise the simulator projects them when the YAML asks
    for ``min_uplift: break_even``.
    """
    from loyalty_pilot.experiments.assignment import assign, balance_table, pre_period_series
    from loyalty_pilot.pilots.measurability import check_measurable

    check_measurable(con, pf)  # a guardrail the data cannot measure: refused before any work
    say = progress or (lambda _message: None)
    spec = pf.spec
    say("reading the candidates")
    data = load_pilot_data(con, pf)
    arms = (pf.control(), *pf.variants())
    n_arms = len(arms)
    units = _units_frame(data)
    kwargs = _assign_kwargs(pf, data)
    notes: list[str] = []

    threshold, source = None, "not computed (no power analysis)"
    projections: dict[str, Any] | None = None
    if break_even is not None and spec.decision.min_uplift == "break_even":
        finite = [v for v in break_even.values() if v is not None]
        threshold, source = (min(finite) if finite else None), "break-even uplift (simulator)"
    elif with_power:
        say("projecting the break-even uplift")
        if spec.decision.min_uplift == "break_even":  # projected once: break-even and prior
            projections = arm_projections(con, pf, draws=PRIOR_DRAWS, seed=PRIOR_SEED)
        break_even, threshold, source = _threshold(pf, projections or {})
    break_even = dict(break_even or {})

    table = None
    recommended = None
    money: tuple[Any, ...] = ()
    sizing = None
    design = spec.design
    if with_power and design.method == "synthetic_region":
        n_donors = len(data.wide) - design.treated_regions * (n_arms - 1)
        notes.append(
            "no placebo power for a synthetic-region design: its placebo test compares the "
            f"treated region with {n_donors} donor regions, so no p-value falls below "
            f"1/{n_donors + 1} = {1 / (n_donors + 1):.2f}; read the pre-period fit (RMSPE) "
            "in the ranking instead"
        )
    if with_power and design.method != "synthetic_region":
        sizes, weeks, pre_weeks = _grid(pf, data, n_arms, units, kwargs)
        if not sizes:
            notes.append(
                f"no size of the power grid fits the {len(data.wide)} eligible units "
                f"with {n_arms} arms"
            )
        elif not weeks:
            notes.append("the pre-period is too short for placebo pilots of the planned lengths")
        else:
            say(
                f"power: {len(sizes)} sizes x {len(weeks)} durations x "
                f"{spec.power.placebos:,} placebo pilots"
            )
            draw = _draw_for_power(units, data.wide, n_arms, kwargs, pre_weeks)
            scale = spec.power.scale
            if scale == "log" and (data.wide.to_numpy() <= 0).any():
                scale = "level"  # customers' weeks without purchase: log is undefined
                notes.append("power on the level scale: some units have weeks without sales")
            table = _power(
                pf,
                data.wide.to_numpy(dtype=float),
                sizes=sizes,
                weeks=weeks,
                pre_weeks=pre_weeks,
                n_placebos=spec.power.placebos,
                draw=draw,
                alpha=spec.decision.alpha,
                power=spec.power.target,
                estimator=spec.power.estimator,
                scale=scale,
                threshold=threshold,
                rng=np.random.default_rng([design.seed, 0xB0]),
                keep_fits=True,
            )
            recommended = table.recommend(threshold) if threshold is not None else None
            say("valuing the candidates by the information they buy")
            tables = {"matched": table}
            if "all" in spec.power.controls:
                tables["all"] = _power(
                    pf, data.wide.to_numpy(dtype=float), sizes=sizes, weeks=weeks,
                    pre_weeks=pre_weeks, n_placebos=spec.power.placebos, draw=draw,
                    alpha=spec.decision.alpha, power=spec.power.target,
                    estimator=spec.power.estimator, scale=scale, threshold=threshold,
                    rng=np.random.default_rng([design.seed, 0xB1]), controls="all",
                    keep_fits=True,
                )  # fmt: skip
            if "matched" not in spec.power.controls:
                tables.pop("matched")
            money, sizing = _value_sizing(con, pf, data, tables, projections)
    per_arm, test_weeks = _size(
        pf, data, n_arms, table, recommended, threshold, notes, sizing=sizing
    )

    say("drawing the assignment")
    try:
        assignment = assign(units, list(arms), per_arm=per_arm, seed=design.seed, **kwargs)
    except ValueError as exc:
        raise pf.error(("design",), str(exc)) from None
    if design.controls == "all":
        assignment = with_all_controls(assignment, list(units.index.astype(str)))
    covariates = units[list(COVARIATES)]
    balance = balance_table(
        covariates.loc[assignment.arm.index], assignment.arm, arms[0], arms=list(arms)
    )
    series = pre_period_series(data.wide, assignment.arm, arms=list(arms))
    return PilotDesign(
        spec.pilot, data, design.method, arms, break_even, threshold, source, table,
        recommended, per_arm, test_weeks, assignment, balance, series, covariates, tuple(notes),
        sizing, money,
    )  # fmt: skip


def _value_sizing(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    data: PilotData,
    tables: dict[str, Any],
    projections: dict[str, Any] | None = None,
) -> tuple[tuple[Any, ...], Any]:
    """Each arm's prior and economics, and the candidates valued (pilots.design_value),
    the customer-randomized tests of ``power.customers_per_arm`` among them
    (pilots.customer_candidates)."""
    from loyalty_pilot.pilots.customer_candidates import customer_tests
    from loyalty_pilot.pilots.design_value import decision_rule, size_by_value
    from loyalty_pilot.pilots.money import arm_money

    spec = pf.spec
    if projections is None:  # not projected yet (the caller knew the break-even)
        projections = arm_projections(con, pf, draws=PRIOR_DRAWS, seed=PRIOR_SEED)
    money = []
    for arm, projection in projections.items():
        try:
            money.append(arm_money(arm, projection, spec.decision))
        except ValueError as exc:
            raise pf.error(("decision", "prior"), str(exc)) from None
    if not money or not tables:
        return tuple(money), None
    weekly = float(data.wide.sum(axis=0).mean())
    wanted = spec.decision.min_uplift
    threshold = None if wanted == "break_even" else float(wanted)
    rule, break_even = decision_rule(money, spec.decision.rule, spec.decision.alpha, threshold)
    customers = customer_tests(
        con, pre_start=spec.pre_period.start, pre_end=spec.pre_period.end,
        weeks=spec.power.weeks, customers_per_arm=spec.power.customers_per_arm,
        n_arms=len(pf.variants()) + 1, money=money, rule=rule, break_even=break_even,
        threshold=threshold,
        alpha=spec.decision.alpha, target=spec.power.target,
        horizon_months=spec.decision.horizon_months, seed=spec.design.seed,
    )  # fmt: skip
    sizing = size_by_value(
        tables, money, rule=spec.decision.rule, alpha=spec.decision.alpha,
        target=spec.power.target, chain_weekly_sales=weekly,
        horizon_months=spec.decision.horizon_months, seed=spec.design.seed,
        extra=customers.candidates, pilot_unit=data.kind,
        customer_tests=customers.to_dict() if customers.designs else None,
        notes=customers.notes, threshold=threshold,
    )  # fmt: skip
    return tuple(money), sizing


def with_all_controls(assignment: Assignment, eligible: list[str]) -> Assignment:
    """``design.controls: all``: every eligible unit the design did not draw joins the
    control arm, in a block of its own (``"other-controls"``: randomization inference
    keeps them controls, as the design never could have treated them)."""
    import dataclasses

    arm = assignment.arm
    extra = sorted(set(eligible) - set(arm.index.astype(str)))
    if not extra:
        return assignment
    control = assignment.arms[0]
    arm = pd.concat([arm, pd.Series(control, index=extra)]).sort_index()
    block = assignment.block
    if block is not None:
        block = pd.concat([block, pd.Series("other-controls", index=extra)]).sort_index()
    details = {**assignment.details, "other_controls": len(extra)}
    return dataclasses.replace(assignment, arm=arm, block=block, details=details)


def _power(pf: PilotFile, *args: Any, **kwargs: Any) -> PowerTable:
    """placebo_power, its ValueError (data the estimator cannot take) as a user error."""
    from loyalty_pilot.experiments.power import placebo_power

    try:
        return placebo_power(*args, **kwargs)
    except ValueError as exc:
        raise pf.error(("power",), str(exc)) from None


def _size(
    pf: PilotFile,
    data: PilotData,
    n_arms: int,
    table: PowerTable | None,
    recommended: PowerCell | None,
    threshold: float | None,
    notes: list[str],
    *,
    sizing: Any = None,
) -> tuple[int, int]:
    """Units per arm and test weeks: the YAML's, else the value sizing's pilot (the
    candidate of largest positive net value), else the power recommendation's (a size of
    the grid the design can draw), else the largest size the design can draw (its strata
    included), said in ``notes``."""
    design = pf.spec.design
    weeks = pf.spec.test_period.weeks
    n_units = len(data.wide)
    if design.method == "synthetic_region":
        return design.treated_regions, weeks
    if design.units_per_arm is not None:
        if recommended is None and table is not None and threshold is not None:
            notes.append(
                f"no design of the grid detects {threshold:+.1%} at {pf.spec.power.target:.0%} "
                f"power; with {design.units_per_arm} units per arm the pilot can only see "
                "effects near the MDE in the table"
            )
        if recommended is not None and recommended.per_arm > design.units_per_arm:
            notes.append(
                f"the YAML asks for {design.units_per_arm} units per arm; detecting "
                f"{threshold:+.1%} needs {recommended.per_arm} ({recommended.weeks} weeks)"
            )
        return design.units_per_arm, weeks
    best = None if sizing is None else sizing.best
    if sizing is not None and sizing.recommendation == "pilot" and best.unit == "store":
        if best.weeks != weeks or best.controls != design.controls:
            notes.append(
                f"the pilot of largest net value runs {best.weeks} weeks with "
                f"{best.controls} controls; the YAML plans {weeks} weeks with "
                f"{design.controls} controls"
            )
        return best.units_per_arm, weeks
    if recommended is not None:
        if recommended.weeks != weeks:
            notes.append(
                f"the recommended design runs {recommended.weeks} weeks; the YAML plans {weeks}"
            )
        return recommended.per_arm, weeks
    from loyalty_pilot.experiments.assignment import draw_codes

    # the largest size the design can draw: strata (or matched tuples within strata)
    # allow fewer than n_units // n_arms; feasibility falls with the size (bisection)
    units, kwargs = _units_frame(data), _assign_kwargs(pf, data)
    extra = {k: v for k, v in kwargs.items() if k not in ("method", "wide", "n_treated_regions")}

    def drawable(size: int) -> bool:
        try:
            draw_codes(
                units, n_arms, method=kwargs["method"], per_arm=size, n_draws=1,
                rng=np.random.default_rng(0), **extra,
            )  # fmt: skip
        except ValueError:
            return False
        return True

    ceiling = n_units // n_arms
    largest, low, high = 0, 1, ceiling
    while low <= high:
        middle = (low + high) // 2
        if drawable(middle):
            largest, low = middle, middle + 1
        else:
            high = middle - 1
    within = f" within its strata ({', '.join(design.stratify_by)})" if "strata" in kwargs else ""
    if largest < 2:
        raise pf.error(
            ("design", "units_per_arm"),
            f"null (the power analysis's recommendation): the {design.method} design "
            f"can draw at most {largest} units per arm from {n_units} eligible units for "
            f"{n_arms} arms{within}; a pilot needs 2",
        )
    why = (
        f" ({n_units} eligible units for {n_arms} arms would allow {ceiling})"
        if largest < ceiling
        else ""
    )
    if table is not None and threshold is not None:
        notes.append(
            f"no design of the grid can detect {threshold:+.1%} at "
            f"{pf.spec.power.target:.0%} power: the pilot would be money spent on noise. "
            f"Using the largest the {design.method} design allows{within}, {largest} per "
            f"arm{why}, only to learn."
        )
    else:
        notes.append(
            f"design.units_per_arm is null and there is no power recommendation to take: "
            f"using the largest the {design.method} design allows{within}, {largest} per "
            f"arm{why}"
        )
    return largest, weeks
