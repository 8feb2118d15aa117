"""Build the decision document of a frozen pilot: evaluate, recalibrate, decide, gather.

Everything the report shows is computed here from the workspace and the pilot YAML, then
handed to ``reports`` as a :class:`~loyalty_pilot.reports.document.DecisionDocument`
(plain data: codes and figures, no sentences).

Choices:

- **Threshold**: ``decision.min_uplift`` when it is a number; with ``break_even``, the
  largest break-even uplift of the variants (from the recalibrated full-rollout
  projections), so no variant is declared worth it below its own break-even.
- **ROI** for the decision: the mean of the recalibrated full-rollout ROI.
- **Quality checks**: balance (the joint Mahalanobis statistic of the design's
  covariates between the frozen arms, judged against its randomization distribution:
  chi-square, poor when p < 0.001; the largest absolute standardized difference is shown
  beside it), pre-trend (event study on the pre-period; None when it cannot be tested),
  planned weeks (or an efficacy boundary crossed at some look). No sample-ratio check:
  the pilot is analysed by intent to treat, every frozen unit included (file mode has it).
- **Weeks to settle** an EXTEND: the power machinery (placebo pilots on the pre-period)
  gives the MDE at the frozen size for longer tests; the first length whose expected
  interval half-width is below the distance between the estimate and the threshold.
- **Sensitivity**: with ``u*`` the break-even uplift and ``C`` the programme's cost at
  full rollout, the profit of an uplift ``u`` is ``C (u / u* - 1)`` and the ROI
  ``u / u* - 1`` (the definition of ``u*``); shown at the pilot's interval bounds, its
  estimate and ``u*``.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loyalty_pilot.experiments.power import placebo_power

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.pilots.pilotspec import PilotFile
    from loyalty_pilot.pilots.registry import FrozenAssignment
    from loyalty_pilot.reports.document import DecisionDocument

BALANCE_P = 0.001  # the arms' joint balance statistic this unlikely under the design: poor
EXTENSIONS = (4, 8, 12, 26)  # extra weeks considered for an EXTEND
PRE_TREND_WEEKS = 12  # the pre-trend test's window: the last 12 pre-period weeks at most


def _f(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_document(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    frozen: FrozenAssignment,
    *,
    seed: int = 0,
    draws: int = 1000,
    progress: Any = None,
    recalibrated_dir: Path | None = None,
) -> tuple[DecisionDocument, dict[str, Any]]:
    """The decision document of the frozen pilot, and the pieces it was built from
    (``analysis``: the evaluation, ``recalibrated``: the recalibration of each arm).
    Nothing is written to the workspace (only ``recalibrate`` saves assumption sets)."""
    from loyalty_pilot.pilots.decide import decide
    from loyalty_pilot.pilots.pilot_design import check_break_even_metric
    from loyalty_pilot.pilots.recalibrate import recalibrate_pilot
    from loyalty_pilot.reports import document as d

    say = progress or (lambda _m: None)
    spec = pf.spec
    check_break_even_metric(pf)
    customers = frozen.unit_kind == "customer"
    pp = None
    say("evaluating the pilot")
    if customers:
        from loyalty_pilot.pilots.customer_analysis import analyse_customer_pilot

        analysis: Any = analyse_customer_pilot(con, pf, frozen)
        evaluation = analysis.primary
        weeks_seen, planned = analysis.weeks_observed, analysis.weeks_planned
    else:
        from loyalty_pilot.pilots.pilot_analysis import analyse_pilot
        from loyalty_pilot.pilots.pilot_eval import pilot_panel

        pp = pilot_panel(con, pf, frozen)  # read once: analysis, pre-trend, weekly chart
        analysis = analyse_pilot(con, pf, frozen, seed=seed, pp=pp)
        evaluation = analysis.primary.evaluation
        weeks_seen, planned = analysis.primary.weeks_observed, analysis.primary.weeks_planned
    comparisons = [c.to_dict() for c in evaluation.comparisons]
    say("recalibrating the assumptions and projecting the full rollout")
    recalibrated = recalibrate_pilot(
        con,
        pf,
        frozen,
        draws=draws,
        seed=seed,
        comparisons=comparisons,
        out=recalibrated_dir,
        save=False,  # only `recalibrate` saves assumption sets
        horizon_months=spec.decision.horizon_months,
    )
    programme_of = {arm: pf.programmes[arm].programme for arm in pf.variants()}
    from loyalty_pilot.pilots.pilot_data import load_pilot_data

    data = load_pilot_data(con, pf)  # read once: shares, design checks, the rollout plan
    share = 1.0
    if customers:
        from loyalty_pilot.pilots.decision_money import customers_share

        share = customers_share(con, pf, data)

    # the GO rule reads each variant's Bonferroni interval (alpha / number of variants)
    simultaneous = [c.to_dict() for c in analysis.simultaneous] or comparisons
    adjusted = {(c["arm"], c["baseline"]): c.get("p_value_adjusted") for c in comparisons}
    simultaneous = [
        {**c, "p_value_adjusted": adjusted.get((c["arm"], c["baseline"]))} for c in simultaneous
    ]
    arms = [_arm(c, programme_of) for c in simultaneous if c["baseline"] == pf.control()]
    if pp is not None and evaluation.method == "ratio":  # the log-scale figure beside it
        arms = _with_log_scale(arms, pp, pf, frozen, seed)
    head = [_arm(c, programme_of) for c in comparisons if c["baseline"] != pf.control()]
    projections = [_projection(r, d) for r in recalibrated]
    break_even = {p.arm: p.break_even_uplift for p in projections}
    threshold: Any
    if spec.decision.min_uplift == "break_even":
        # each arm against its own break-even uplift of store sales; a customer pilot
        # measures its customers' sales (intent to treat), of which their share of the
        # chain's sales reaches the stores
        scale = {r.arm: 1.0 / share for r in recalibrated}
        threshold = {arm: (None if u is None else u * scale[arm]) for arm, u in break_even.items()}
        source = "break_even"
    else:
        threshold, source = float(spec.decision.min_uplift), "min_uplift"

    guardrails = [
        d.GuardrailRow(arm, g.metric, float(g.margin), g.kind, _f(g.bound), g.passed)
        for arm, rows in analysis.guardrails.items()
        for g in rows
    ]
    say("quality checks and the power to settle it")
    balance, power_rows, mde_by_weeks, design_mde, balance_p = _design_checks(
        data, pf, frozen, planned
    )
    quality = _quality(analysis, balance, balance_p, weeks_seen, planned, pf, pp, frozen)
    crossed = {arm: efficacy_stop(look) is not None for arm, look in analysis.sequential.items()}

    simultaneous_of = {c["arm"]: c for c in simultaneous if c["baseline"] == pf.control()}

    def settle(arm: str) -> int | None:
        from loyalty_pilot.pilots.decision_money import weeks_to_settle

        own = threshold.get(arm) if isinstance(threshold, dict) else threshold
        if arm not in simultaneous_of or own is None:
            return None
        return weeks_to_settle(
            simultaneous_of[arm], own, spec.decision.alpha / max(len(pf.variants()), 1),
            weeks_seen, mde_by_weeks,
        )  # fmt: skip

    if spec.decision.rule == "interval":  # stopped early: GO reads the repeated CI
        arms = [_with_rci(a, analysis.sequential.get(a.arm), weeks_seen, planned) for a in arms]
    views = None
    if spec.decision.rule == "expected_profit":
        from loyalty_pilot.pilots.decision_money import money_views

        views, money = money_views(
            pf, comparisons, recalibrated, customers=customers, weeks_seen=weeks_seen,
            treated_weekly_sales=_treated_weekly_sales(data, frozen), mde_by_weeks=mde_by_weeks,
            share=share,
        )  # fmt: skip
        arms = [_with_money(a, money.get(a.arm)) for a in arms]
    decision = decide(
        money=views,
        arms=arms,
        head_to_head=head,
        threshold=threshold,
        threshold_source=source,
        guardrails=guardrails,
        roi={p.arm: p.roi for p in projections},
        min_roi=float(spec.decision.min_roi),
        quality=quality,
        weeks_observed=weeks_seen,
        weeks_planned=planned,
        sequential_crossed=crossed,
        weeks_to_settle=settle,
        longest_weeks=26,  # the longest extension weeks_to_settle considers
        alpha=spec.decision.alpha,
    )
    say("gathering the report")
    weekly = None if pp is None else _weekly(pp, pf)
    forest = _forest(arms, head, analysis)
    smart = _smart(con, pf)
    design = d.DesignSummary(
        method=spec.design.method,
        unit=spec.unit,
        per_arm=int(frozen.units["arm"].value_counts().min()),
        weeks=planned,
        units={
            arm: sorted(frozen.units.loc[frozen.units["arm"] == arm, "unit"].astype(str))
            for arm in (pf.control(), *pf.variants())
        },
        balance=balance,
        power=power_rows,
        mde=design_mde,
        break_even=break_even,
    )
    assumptions = [
        d.AssumptionRow(
            r.programme,
            name,
            _f(getattr(r.recalibration.prior, name).mean),
            _f(getattr(r.recalibration.prior, name).sd),
            _f(getattr(r.recalibration.posterior, name).mean),
            _f(getattr(r.recalibration.posterior, name).sd),
        )
        for r in recalibrated
        for name in ("visit_uplift", "basket_uplift", "churn_reduction")
    ]
    sensitivity = _sensitivity(arms, recalibrated)
    if isinstance(threshold, dict):  # the risk of low power: against the smallest to detect
        single = min((v for v in threshold.values() if v is not None), default=None)
    else:
        single = threshold
    risks = _risks(
        arms,
        projections,
        guardrails,
        recalibrated,
        analysis,
        design_mde,
        single,
        design.per_arm,
        pf,
    )
    rollout = _rollout(con, pf, data, frozen.version)  # the version the document reads
    files = {str(pf.path): _sha(pf.path)}
    files.update({str(p): _sha(p) for p in pf.programme_paths.values()})
    from loyalty_pilot import __version__

    document = d.DecisionDocument(
        pilot=spec.pilot,
        description=spec.description,
        currency=next(iter(pf.programmes.values())).currency,
        metric=spec.metrics.primary,
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
        assumptions=assumptions,
        sensitivity=sensitivity,
        rollout=rollout,
        interval_level=1 - spec.decision.alpha / max(len(pf.variants()), 1),
        reproducibility=d.Reproducibility(
            tool_version=__version__,
            pilot_version=frozen.version,
            design_hash=frozen.design_hash,
            data_fingerprint=frozen.data_fingerprint,
            seed=int(spec.design.seed),
            config_hashes=files,
            generated_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        ),
    )
    return document, {"analysis": analysis, "recalibrated": recalibrated}


def _analysis_arms(data: Any, frozen: FrozenAssignment) -> Any:
    """The frozen arm of each analysis unit: the store (or customer), or the region (its
    block) for a region pilot."""
    units = frozen.units.assign(unit=frozen.units["unit"].astype(str))
    if data.kind == "region":
        return units.groupby("block")["arm"].first()
    return units.set_index("unit")["arm"]


def _treated_weekly_sales(data: Any, frozen: FrozenAssignment) -> dict[str, float]:
    """Each arm's units' mean weekly sales over the pre-period (the programme's cost base
    in the pilot)."""
    arm = _analysis_arms(data, frozen)
    arm.index = arm.index.astype(str)
    weekly = data.wide.mean(axis=1)
    weekly.index = weekly.index.astype(str)
    return {
        str(a): float(weekly.reindex(arm.index[arm == a]).fillna(0.0).sum()) for a in arm.unique()
    }


def _with_log_scale(arms: list[Any], pp: Any, pf: PilotFile, frozen: Any, seed: int) -> list[Any]:
    """Each arm's row with the DiD on log store sales (store-equal weights) beside the
    total-sales ratio, at the same simultaneous level."""
    import dataclasses

    from loyalty_pilot.pilots.pilot_analysis import primary_column
    from loyalty_pilot.pilots.pilot_eval import compare
    from loyalty_pilot.reports.document import Interval

    k = max(len(pf.variants()), 1)
    evaluation = compare(
        pp, pf, frozen, column=primary_column(pf), method="did", scale="log", seed=seed,
        alpha=pf.spec.decision.alpha / k,
    )  # fmt: skip
    log = {c.arm: c for c in evaluation.comparisons}
    out = []
    for row in arms:
        c = log.get(row.arm)
        interval = None if c is None else Interval(
            _f(c.relative), _f(c.rel_ci_low), _f(c.rel_ci_high)
        )  # fmt: skip
        out.append(dataclasses.replace(row, uplift_log_scale=interval))
    return out


def _with_rci(row: Any, look: Any, weeks_seen: int, planned: int) -> Any:
    """When the pilot stopped early on an efficacy crossing, the arm's interval is the
    repeated confidence interval of the current look (valid under the monitoring; the
    fixed-sample interval is not), and its method says so."""
    import dataclasses

    if look is None or weeks_seen >= planned or efficacy_stop(look) is None:
        return row
    low, high = _f(look.rci_low), _f(look.rci_high)
    if low is None or high is None:
        return row
    return dataclasses.replace(row, rel_ci_low=low, rel_ci_high=high, method=f"{row.method}+rci")


def _belief(b: Any) -> Any:
    from loyalty_pilot.reports.document import Belief

    return Belief(_f(b.uplift_mean), _f(b.uplift_sd), _f(b.mean), _f(b.sd))


def _with_money(row: Any, money: Any) -> Any:
    """The arm's row with its money figures (the expected-profit rule's)."""
    import dataclasses

    if money is None:
        return row
    summary = money.summary()
    return dataclasses.replace(
        row,
        prior=_belief(money.prior),
        posterior=_belief(money.belief),
        prob_above_break_even=_f(summary["prob_above_break_even"]),
        expected_profit=_f(summary["expected_profit"]),
        prob_loss=_f(summary["prob_loss"]),
    )


def _arm(c: dict[str, Any], programme_of: dict[str, str]) -> Any:
    from loyalty_pilot.reports.document import ArmResult

    return ArmResult(
        arm=c["arm"],
        baseline=c["baseline"],
        programme=programme_of.get(c["arm"]),
        relative=_f(c.get("relative")),
        rel_ci_low=_f(c.get("rel_ci_low")),
        rel_ci_high=_f(c.get("rel_ci_high")),
        estimate=_f(c.get("estimate")),
        p_value=_f(c.get("p_value")),
        p_value_adjusted=_f(c.get("p_value_adjusted")),
        n_units=int(c.get("n_units") or 0),
        status=str(c.get("status", "ok")),
        method=str(c.get("method", "")),
        uplift_total_sales=_interval(c) if c.get("scale") == "total" else None,
    )


def _interval(c: dict[str, Any]) -> Any:
    from loyalty_pilot.reports.document import Interval

    return Interval(_f(c.get("relative")), _f(c.get("rel_ci_low")), _f(c.get("rel_ci_high")))


def _quantiles(q: Any) -> Any:
    from loyalty_pilot.reports.document import Quantiles

    return Quantiles(_f(q.mean), _f(q.p10), _f(q.p50), _f(q.p90))


def _projection(r: Any, d: Any) -> Any:
    after = r.after
    ledger = after.baseline.ledger
    expired = ledger["points_expired_inactivity"] + ledger["points_expired_validity"]
    monthly = [
        {
            "month": str(m)[:7],
            "points_issued": _f(e),
            "points_redeemed": _f(c),
            "points_expired": _f(x),
            "liability": _f(li),
            "cost": _f(t),
        }
        for m, e, c, x, li, t in zip(
            ledger["month"].astype(str),
            ledger["points_earned"] + ledger["welcome_points"],
            ledger["points_converted"],
            expired,
            ledger["liability"],
            ledger["total_cost"],
            strict=True,
        )
    ]
    totals = after.totals
    from loyalty_pilot.simulator.projection import Quantiles as SimQuantiles

    return d.Projection(
        arm=r.arm,
        programme=r.programme,
        horizon_months=len(after.monthly),
        revenue=_f(totals.get("revenue")),
        cost=_quantiles(SimQuantiles.of(after.samples["cost"])),
        profit=_quantiles(after.profit),
        roi=_quantiles(after.roi),
        break_even_uplift=_f(after.break_even_uplift),
        points_issued=_f(sum(row["points_issued"] or 0 for row in monthly)),
        points_redeemed=_f(sum(row["points_redeemed"] or 0 for row in monthly)),
        points_expired=_f(sum(row["points_expired"] or 0 for row in monthly)),
        liability_end=_f(totals.get("liability_end")),
        breakage=_f(totals.get("breakage")),
        monthly=monthly,
    )


def _design_checks(
    data: Any, pf: PilotFile, frozen: FrozenAssignment, planned: int
) -> tuple[list[dict[str, Any]], list[Any], dict[int, float], float | None, Any]:
    """Balance of the frozen arms on the design's covariates (standardized differences and
    the joint Mahalanobis statistic with its chi-square p-value), the power table of the
    design (the same placebo pilots as ``design``: its draw, estimator, pre-window and
    seed) and the MDE of longer tests at the frozen size.

    ``balance_p`` is ``(p, M, df, rerandomization)``. For a rerandomized design the
    chi-square p-value cannot fail (the design keeps only draws with ``M`` at most its
    threshold, so ``p >= 1 - acceptance``); ``rerandomization`` is then
    :func:`~loyalty_pilot.experiments.balance.rerandomization_check` of the frozen
    assignment against the design's own threshold (``max_mahalanobis``, or the
    ``acceptance`` quantile of the chi-square), which fails for an assignment the design
    could not have drawn. None for the other designs."""
    from scipy import stats

    from loyalty_pilot.experiments.assignment import balance_table
    from loyalty_pilot.experiments.balance import joint_mahalanobis, whiten
    from loyalty_pilot.pilots.pilot_design import (
        _assign_kwargs,
        _draw_for_power,
        _grid,
        _units_frame,
        covariates_of,
    )
    from loyalty_pilot.reports.document import PowerRow

    spec = pf.spec
    covariates = covariates_of(data.wide)
    arm = _analysis_arms(data, frozen)
    arm = arm[arm.index.isin(covariates.index)]
    arms = [pf.control(), *pf.variants()]
    used = list(spec.design.match_on) if spec.design.method in ("matched", "rerandomized") else [
        "level", "trend"]  # fmt: skip
    table = balance_table(covariates.loc[arm.index, used], arm, pf.control(), arms=arms)
    balance = [
        {"arm": r["arm"], "covariate": r["covariate"], "std_diff": _f(r["std_diff"])}
        for r in table.to_dict(orient="records")
    ]
    codes = np.full(len(covariates), -1, dtype=np.int8)
    codes[covariates.index.get_indexer(arm.index)] = arm.map(arms.index).to_numpy()
    z = whiten(covariates[used].to_numpy(dtype=float))
    balance_p = None
    if z.shape[1] and len(arm) > len(arms):
        m = float(joint_mahalanobis(codes[None, :], z, len(arms))[0])
        df = z.shape[1] * (len(arms) - 1)
        check = None
        if spec.design.method == "rerandomized":
            from loyalty_pilot.experiments.balance import rerandomization_check

            if spec.design.max_mahalanobis is not None:
                limit = float(spec.design.max_mahalanobis)
            else:
                limit = float(stats.chi2.ppf(float(spec.design.acceptance), df))
            check = rerandomization_check(m, limit, df)
        balance_p = (float(stats.chi2.sf(m, df)), m, df, check)
    per_arm = int(arm.value_counts().min()) if len(arm) else 0
    if per_arm < 2 or spec.design.method == "synthetic_region" or data.kind == "customer":
        return balance, [], {}, None, balance_p
    frame = _units_frame(data)
    kwargs = _assign_kwargs(pf, data)
    sizes, weeks, pre_weeks = _grid(pf, data, len(arms), frame, kwargs)
    common = {
        "n_placebos": spec.power.placebos, "alpha": spec.decision.alpha,
        "power": spec.power.target, "estimator": spec.power.estimator,
        "scale": _power_scale(pf, data),
    }  # fmt: skip
    y = data.wide.to_numpy(dtype=float)
    rows: list[Any] = []
    mde_by_weeks: dict[int, float] = {}
    if sizes and weeks:  # the design's own table, as `design` computed it
        table = placebo_power(
            y, sizes=sizes, weeks=weeks, pre_weeks=pre_weeks,
            draw=_draw_for_power(frame, data.wide, len(arms), kwargs, pre_weeks),
            rng=np.random.default_rng([spec.design.seed, 0xB0]), **common,
        )  # fmt: skip
        rows = [PowerRow(c.per_arm, c.weeks, _f(c.mde), _f(c.false_positive_rate))
                for c in table.cells]  # fmt: skip
        mde_by_weeks = {
            c.weeks: c.mde for c in table.cells if c.per_arm == per_arm and _f(c.mde) is not None
        }
    history = data.wide.shape[1]
    longer = sorted({planned + e for e in EXTENSIONS} - set(mde_by_weeks))
    pre_longer = max(8, min(history // 2, history - max(longer) - 4))
    longer = [w for w in longer if w + pre_longer <= history]
    if longer:  # longer tests at the frozen size, for an EXTEND
        extra = placebo_power(
            y, sizes=[per_arm], weeks=longer, pre_weeks=pre_longer,
            draw=_draw_for_power(frame, data.wide, len(arms), kwargs, pre_longer),
            rng=np.random.default_rng([spec.design.seed, 0xDEC]), **common,
        )  # fmt: skip
        mde_by_weeks.update({c.weeks: c.mde for c in extra.cells if _f(c.mde) is not None})
    return balance, rows, mde_by_weeks, mde_by_weeks.get(planned), balance_p


def _power_scale(pf: PilotFile, data: Any) -> str:
    """The YAML's power scale, or the level scale when a series has zeros (customers)."""
    scale = pf.spec.power.scale
    return "level" if scale == "log" and (data.wide.to_numpy() <= 0).any() else scale


def _quality(
    analysis: Any,
    balance: list[dict[str, Any]],
    balance_p: Any,
    weeks_seen: int,
    planned: int,
    pf: PilotFile,
    pp: Any,
    frozen: FrozenAssignment,
) -> list[Any]:
    """``pp``: the store pilot's panel (None for a customer pilot: no pre-trend test).

    Balance: the chi-square p-value of the joint Mahalanobis statistic against
    ``BALANCE_P``; for a rerandomized design (``balance_p[3]``), whether the frozen
    assignment meets the design's own acceptance rule instead (a chi-square p-value of a
    rerandomized assignment is >= 1 - acceptance by construction and can never fail); the
    row then says ``rule: "rerandomization_threshold"`` with the statistic and threshold."""
    from loyalty_pilot.reports.document import QualityCheck

    checks = []  # no sample-ratio check: every frozen unit is analysed (intent to treat)
    worst = max((abs(b["std_diff"]) for b in balance if b["std_diff"] is not None), default=None)
    p_balance = balance_p[0] if balance_p else None
    rerandomized = balance_p[3] if balance_p and len(balance_p) > 3 else None
    if rerandomized is not None:
        checks.append(
            QualityCheck(
                "balance", bool(rerandomized["inside"]),
                {"max_std_diff": worst, "rule": "rerandomization_threshold",
                 "mahalanobis": _f(rerandomized["statistic"]),
                 "threshold": _f(rerandomized["threshold"]),
                 "p_within_acceptance": _f(rerandomized["p_within"])},
            )
        )  # fmt: skip
    else:
        checks.append(
            QualityCheck(
                "balance", None if p_balance is None else p_balance >= BALANCE_P,
                {"max_std_diff": worst},
            )
        )  # fmt: skip
    p_trend = None if pp is None else _pre_trend(pp, pf, frozen)
    checks.append(
        QualityCheck(
            "pre_trend",
            None if p_trend is None else p_trend >= pf.spec.decision.alpha,
            {"p_value": p_trend},
        )
    )
    checks.append(
        QualityCheck(
            "planned_weeks", weeks_seen >= planned, {"weeks": weeks_seen, "planned": planned}
        )
    )
    for arm, look in analysis.sequential.items():
        stop = efficacy_stop(look)
        checks.append(
            QualityCheck(  # a boundary not crossed is no fault: None, not False
                "sequential",
                True if stop is not None else None,
                {"arm": arm, "look": stop or look.look},
            )
        )
    return checks


def efficacy_stop(look: Any) -> int | None:
    """The first look at which the efficacy boundary was crossed upwards (the arm doing
    better), or None; a crossing downwards is harm, never a reason to stop for success."""
    for row in look.history:
        if row["crossed"]:
            return int(row["look"]) if row["statistic"] > 0 else None
    return None


def _pre_trend(pp: Any, pf: PilotFile, frozen: FrozenAssignment) -> Any:
    """The event study's joint pre-trend p-value (the smallest over the variants, times
    their number), or None when it cannot be tested."""
    from loyalty_pilot.pilots.errors import UserError
    from loyalty_pilot.pilots.pilot_eval import compare
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS

    try:
        # the last weeks before the test only: a joint test needs fewer effects than units
        units_in_pair = 2 * int(pp.assignment.value_counts().min())  # one variant vs control
        window = max(1, min(PRE_TREND_WEEKS, units_in_pair - 2))
        evaluation = compare(
            pp,
            pf,
            frozen,
            column=METRIC_COLUMNS[pf.spec.metrics.primary],
            method="event_study",
            scale=pf.spec.evaluation.scale,
            pre_test_periods=window,
        )
    except UserError:
        return None
    values = [_f(c.extras.get("pre_trend_p_value")) for c in evaluation.comparisons]
    values = [v for v in values if v is not None]
    # the smallest of k p-values, Bonferroni-adjusted: k variants are k chances
    return min(1.0, min(values) * len(values)) if values else None


def _weekly(pp: Any, pf: PilotFile) -> Any:
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS
    from loyalty_pilot.reports.document import WeeklySeries

    column = METRIC_COLUMNS[pf.spec.metrics.primary]
    frame = pp.panel.assign(arm=pp.panel[pp.key].map(pp.assignment))
    means = frame.groupby(["week", "arm"])[column].mean().unstack("arm").sort_index()
    weeks = [w.date().isoformat() for w in means.index]
    series = {str(a): [_f(v) for v in means[a].to_numpy()] for a in means.columns}
    return WeeklySeries(
        pf.spec.metrics.primary, weeks, series, pp.start.isoformat(), pp.end.isoformat()
    )


def _forest(arms: list[Any], head: list[Any], analysis: Any) -> list[Any]:
    from loyalty_pilot.reports.document import ForestRow

    rows = [ForestRow(a.arm, "arm", a.arm, a.relative, a.rel_ci_low, a.rel_ci_high) for a in arms]
    rows += [
        ForestRow(
            f"{a.arm} vs {a.baseline}",
            "head_to_head",
            a.arm,
            a.relative,
            a.rel_ci_low,
            a.rel_ci_high,
        )
        for a in head
    ]
    for arm, table in analysis.heterogeneity.items():
        for row in table.records():
            rows.append(
                ForestRow(
                    str(row[table.by]),
                    "region" if table.by == "region" else "segment",
                    arm,
                    _f(row.get("relative")),
                    _f(row.get("rel_ci_low")),
                    _f(row.get("rel_ci_high")),
                    True,
                )
            )
    return rows


def _smart(con: duckdb.DuckDBPyConnection, pf: PilotFile) -> list[Any]:
    from loyalty_pilot.pilots.programmes import evaluate, workspace_baskets
    from loyalty_pilot.reports.document import SmartCard, SmartLetter

    reports = evaluate([pf.programme_paths[a] for a in pf.variants()], workspace_baskets(con))
    units = {"S": "count", "M": "per_100", "A": "share", "R": "share", "T": "days"}
    cards = []
    for report in reports:
        letters = [
            SmartLetter(x.letter, _f(x.figure), _f(x.threshold), x.passed, units[x.letter])
            for x in report.smart.letters
        ]
        cards.append(SmartCard(report.programme.programme, letters, report.smart.verdict))
    return cards


def _sensitivity(arms: list[Any], recalibrated: list[Any]) -> list[Any]:
    """Profit and ROI at full rollout if the true uplift of store sales were ``u``.

    With the replay's cost ``C0`` (no behaviour change), the revenue ``R``, the gross
    margin ``gm`` and the marginal cost ``c`` of an extra euro of sales, the break-even
    uplift is ``u* = C0 / (R (gm - c))``; an uplift ``u`` brings ``R u (gm - c) - C0 =
    C0 (u / u* - 1)`` of profit for a cost of ``C0 + c R u``, hence the ROI.
    """
    from loyalty_pilot.reports.document import SensitivityRow

    rows = []
    for r in recalibrated:
        projection = r.after
        arm = next((a for a in arms if a.arm == r.arm), None)
        u_star = _f(projection.break_even_uplift)
        c0 = _f(projection.totals.get("cost_replay"))
        revenue = _f(projection.totals.get("revenue"))
        per_euro = _f(projection.marginal.basket_per_euro)
        if arm is None or None in (u_star, c0, revenue, per_euro) or u_star <= 0:
            continue
        points = [
            ("pilot_low", arm.rel_ci_low),
            ("pilot_estimate", arm.relative),
            ("pilot_high", arm.rel_ci_high),
            ("break_even", u_star),
        ]
        for label, u in points:
            if u is None:
                continue
            profit = c0 * (u / u_star - 1)
            cost = c0 + per_euro * revenue * u
            rows.append(SensitivityRow(r.arm, float(u), label, profit,
                                       profit / cost if cost > 0 else None))  # fmt: skip
    return rows


def _risks(
    arms: list[Any],
    projections: list[Any],
    guardrails: list[Any],
    recalibrated: list[Any],
    analysis: Any,
    design_mde: float | None,
    threshold: float | None,
    per_arm: int,
    pf: PilotFile,
) -> list[Any]:
    """Candidate risks with a severity (the report shows the three largest)."""
    from loyalty_pilot.reports.document import Risk

    risks = []
    if design_mde is not None and threshold is not None and 0 < threshold < design_mde:
        params = {"mde": design_mde, "threshold": threshold}
        risks.append(Risk("low_power", min(3.0, 1 + math.log(design_mde / threshold)), params))
    for a in arms:
        if a.rel_ci_low is not None and a.rel_ci_high is not None and threshold:
            width = a.rel_ci_high - a.rel_ci_low
            undecided = a.rel_ci_low <= threshold <= a.rel_ci_high
            if undecided and width > 2 * abs(threshold):
                risks.append(
                    Risk(
                        "interval_wide",
                        min(3.0, 1 + math.log(width / (2 * abs(threshold)))),
                        {"arm": a.arm, "low": a.rel_ci_low, "high": a.rel_ci_high},
                    )
                )
    for p in projections:
        programme = pf.programmes[p.arm]
        if p.profit.p10 is not None and p.profit.p10 < 0:
            scale = abs(p.profit.p50 or 1.0) or 1.0
            risks.append(
                Risk(
                    "loss_possible",
                    1 + abs(p.profit.p10) / scale,
                    {"arm": p.arm, "p10_profit": p.profit.p10},
                )
            )
        budget = programme.economics.budget_share_of_revenue * (p.revenue or 0.0)
        if p.cost.p90 is not None and budget > 0 and p.cost.p90 > budget:
            risks.append(
                Risk(
                    "cost_overrun",
                    p.cost.p90 / budget,
                    {"arm": p.arm, "p90_cost": p.cost.p90, "budget": budget},
                )
            )
        if p.liability_end and p.cost.mean and p.liability_end > 0.3 * p.cost.mean:
            risks.append(
                Risk(
                    "liability_build_up",
                    p.liability_end / p.cost.mean,
                    {"arm": p.arm, "liability": p.liability_end},
                )
            )
        if p.breakage and p.cost.mean and p.breakage > 0.2 * p.cost.mean:
            risks.append(
                Risk(
                    "breakage_dependence",
                    p.breakage / p.cost.mean,
                    {"arm": p.arm, "breakage_share": p.breakage / p.cost.mean},
                )
            )
    for g in guardrails:
        if g.passed and g.bound is not None and g.margin:
            gap = abs(abs(g.bound) - g.margin) / g.margin
            if gap < 0.2:
                risks.append(
                    Risk(
                        "guardrail_close",
                        1 + (0.2 - gap),
                        {"arm": g.arm, "metric": g.metric, "bound": g.bound, "margin": g.margin},
                    )
                )
    if per_arm < 8:
        risks.append(Risk("few_units", 8 / max(per_arm, 1), {"n_units": per_arm}))
    for r in recalibrated:
        weight = _f(r.recalibration.weight)
        if weight is not None and weight < 0.2:
            risks.append(
                Risk(
                    "assumption_dominated",
                    2.5 + (0.2 - weight) * 2,
                    {"arm": r.arm, "weight": weight},
                )
            )
    for arm, table in analysis.heterogeneity.items():
        i2 = _f(getattr(table, "i2", None))
        if i2 is not None and i2 > 0.5:
            risks.append(Risk("heterogeneity", 1 + i2, {"arm": arm, "by": table.by, "i2": i2}))
    return risks


def _rollout(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, data: Any, version: int | None = None
) -> Any:
    from loyalty_pilot.pilots.pilot_freeze import rollout_plan
    from loyalty_pilot.reports.document import RolloutSummary, WaveRow

    if pf.spec.unit == "customer":
        return None
    plan, stage, frozen = rollout_plan(con, pf, data, version=version)
    waves = [
        WaveRow(w.name, len(w.stores), w.start.isoformat(), w.weeks, w.gate, list(w.regions))
        for w in plan.waves
    ]
    code = (
        "not_frozen"
        if frozen is None
        else "complete"
        if stage.startswith("test period complete")
        else "running"
        if stage.startswith("running")
        else "before_test"
    )
    next_gate = waves[1].gate if len(waves) > 1 else None
    return RolloutSummary(waves, len(plan.holdout), code, next_gate)
