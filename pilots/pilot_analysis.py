"""The whole evaluation of a frozen store or region pilot: beyond one arm and one look.

- **Primary family**: every variant against the control and every variant against every
  other (cash vs gift, head to head), with Holm's adjustment across that family (raw and
  adjusted p-values both reported).
- **Secondary metrics** of the pilot YAML, each variant against the control.
- **Guardrails** as non-inferiority tests with the YAML's margins: rates (gross margin
  rate, returns rate) by DiD on the level scale with absolute margins; sales-like
  metrics on the log scale with relative margins; the programme cost share from the
  exact replay of the arm's programme on its stores' test-period baskets, against its
  margin as a ceiling.
- **Weekly looks**: the primary comparison recomputed at the end of every test week so
  far, monitored against O'Brien-Fleming-type group-sequential boundaries over the
  planned weeks (information fraction: weeks observed / weeks planned); the output says
  whether a boundary has been crossed and gives the repeated confidence interval.
- **Heterogeneity by region**: each variant against the control within each region,
  flagged exploratory, Holm across regions and Cochran's Q.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.experiments.evaluate import Evaluation
    from loyalty_pilot.experiments.guardrails import GuardrailResult
    from loyalty_pilot.experiments.results import Comparison
    from loyalty_pilot.experiments.sequential import SequentialLook
    from loyalty_pilot.experiments.subgroups import SubgroupTable
    from loyalty_pilot.pilots.pilot_eval import PilotEvaluation, PilotPanel
    from loyalty_pilot.pilots.pilotspec import PilotFile
    from loyalty_pilot.pilots.registry import FrozenAssignment

RATE_COLUMNS = ("gross_margin_rate", "returns_rate")


@dataclass(frozen=True)
class PilotAnalysis:
    """Everything ``evaluate PILOT.yaml`` computes (see the module docstring)."""

    primary: PilotEvaluation  # its comparisons: the whole family, Holm-adjusted
    secondary: dict[str, Evaluation] = field(default_factory=dict)
    guardrails: dict[str, list[GuardrailResult]] = field(default_factory=dict)
    sequential: dict[str, SequentialLook] = field(default_factory=dict)
    heterogeneity: dict[str, SubgroupTable] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    # each variant vs the control with Bonferroni intervals (alpha / number of variants):
    # what the GO rule reads, so k variants do not get k chances at a false GO
    simultaneous: tuple[Comparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = self.primary.to_dict()
        out["secondary"] = {m: e.to_dict() for m, e in self.secondary.items()}
        out["guardrails"] = {
            arm: [g.to_dict() for g in results] for arm, results in self.guardrails.items()
        }
        out["sequential"] = {arm: look.to_dict() for arm, look in self.sequential.items()}
        out["heterogeneity"] = {arm: table.to_dict() for arm, table in self.heterogeneity.items()}
        out["notes"] = list(self.notes)
        out["simultaneous"] = [c.to_dict() for c in self.simultaneous]
        return out


def _variants(pf: PilotFile) -> list[str]:
    return list(pf.variants())


def primary_column(pf: PilotFile) -> str:
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS

    return METRIC_COLUMNS[pf.spec.metrics.primary]


def primary_family(
    pp: PilotPanel, pf: PilotFile, frozen: FrozenAssignment, *, method: str, scale: str,
    seed: int = 0,
) -> tuple[Comparison, ...]:  # fmt: skip
    """Every variant vs the control, then every variant vs every later one, Holm-adjusted."""
    from loyalty_pilot.experiments.multiple import family, with_holm
    from loyalty_pilot.pilots.pilot_eval import compare

    column = primary_column(pf)
    arms = [pf.control(), *_variants(pf)]
    comparisons = []
    for arm, baseline in family(arms, pf.control()):
        evaluation = compare(
            pp, pf, frozen, column=column, method=method, scale=scale, control=baseline,
            arms=(arm,), seed=seed,
        )  # fmt: skip
        comparisons.append(evaluation.comparisons[0])
    return with_holm(comparisons)


def _log_z(comparison: Comparison) -> tuple[float, float, float]:
    """(estimate, se, df) on the scale the estimator worked on (log when it did)."""
    extras = comparison.extras
    estimate = extras.get("log_estimate", comparison.estimate)
    se = float(extras.get("se", math.nan))
    df = float(extras.get("df", math.nan))
    return float(estimate), se, df


def weekly_looks(
    pp: PilotPanel, pf: PilotFile, frozen: FrozenAssignment, *, scale: str
) -> dict[str, SequentialLook]:
    """Each variant vs the control at the end of every test week so far, by the decision's
    estimator (the total-sales ratio, on the log of the ratio, when the evaluation method
    is ``ratio``; else the DiD with CR2), monitored against the group-sequential
    boundaries over the planned weeks at ``alpha / k`` for ``k`` variants (Bonferroni, as
    the GO rule's intervals).

    Information fractions: from the pilot's own pre-period
    (:func:`~loyalty_pilot.experiments.sequential.information_from_pre_period`: the
    variance of the final DiD over that at look k, from the stores' weekly
    autocovariance), as ``k / K`` understates a DiD's early information 2-3 fold on
    serially correlated weeks; ``k / K`` only when the pre-period is too short
    (``information`` says which). The boundaries are solved for the correlation of the
    looks' estimates from the same model (a DiD's looks share the pre-period mean and
    are less correlated than independent increments assume, which lets more than alpha
    through), shrunk towards independence as an allowance for its estimation error.

    Every look carries its repeated confidence interval, the interval at that look's
    boundary: ``ci_low`` / ``ci_high`` on the estimator's scale and ``rci_low`` /
    ``rci_high`` as relative uplifts (also per look in ``history``). When a pilot stops
    early, the decision reads the RCI of the stopping look, not the fixed-sample
    interval."""
    from loyalty_pilot.experiments.results import relative_from_absolute
    from loyalty_pilot.experiments.sequential import (
        information_fraction,
        monitor,
    )
    from loyalty_pilot.pilots.pilot_eval import compare

    planned = pf.spec.test_period.weeks
    seen = min(pp.weeks_seen, planned)
    column = primary_column(pf)
    out: dict[str, SequentialLook] = {}
    if seen < 1:
        return out
    looks: dict[str, list[tuple[float, float, float]]] = {a: [] for a in _variants(pf)}
    means: dict[str, list[float]] = {a: [] for a in _variants(pf)}  # treated level means
    log_scale = False
    # the decision's estimator: the total-sales ratio (log of the ratio) or the DiD
    method = "ratio" if pf.spec.evaluation_method == "ratio" else "did"
    # each variant's looks at alpha / k: the RCI is then the simultaneous interval GO reads
    alpha = pf.spec.decision.alpha / max(len(_variants(pf)), 1)
    for week in range(1, seen + 1):
        last_day = np.datetime64(pp.start + timedelta(weeks=week), "ns")
        cut = dataclasses.replace(pp, panel=pp.panel[pp.panel["week"] < last_day])
        evaluation = compare(cut, pf, frozen, column=column, method=method, scale=scale)
        for comparison in evaluation.comparisons:
            looks[comparison.arm].append(_log_z(comparison))
            means[comparison.arm].append(_treated_mean(comparison))
            log_scale = comparison.extras.get("scale") in ("log", "total")
    fractions, information, correlation = _look_fractions(pp, column, planned, log_scale)
    fractions = fractions[:seen]
    if information == "weeks":
        fractions = information_fraction(np.arange(1, seen + 1), planned)
    for arm, rows in looks.items():
        stats = [e / s if s > 0 and math.isfinite(s) else math.nan for e, s, _ in rows]
        dfs = [d for _, _, d in rows]
        df = dfs if all(math.isfinite(d) and d > 0 for d in dfs) else None
        estimate, se, _ = rows[-1]
        mean = means[arm][-1]
        if log_scale:
            to_relative = math.expm1
        else:

            def to_relative(x: float, m: float = mean) -> float:
                return relative_from_absolute(x, m)

        look = monitor(
            stats, fractions, alpha=alpha, spending="obf",
            estimate=estimate if math.isfinite(se) else None,
            se=se if math.isfinite(se) and se > 0 else None, df=df,
            estimates=[e for e, _, _ in rows], ses=[s for _, s, _ in rows],
            to_relative=to_relative, information=information, correlation=correlation,
        )  # fmt: skip
        if not log_scale:  # each look's RCI against that look's treated mean
            history = []
            for row, m in zip(look.history, means[arm], strict=True):
                row = dict(row)
                row["rci_low"] = relative_from_absolute(row.get("ci_low", math.nan), m)
                row["rci_high"] = relative_from_absolute(row.get("ci_high", math.nan), m)
                history.append(row)
            look = dataclasses.replace(look, history=tuple(history))
        out[arm] = look
    return out


def _treated_mean(comparison: Comparison) -> float:
    """The treated units' test-period mean ``m`` behind ``relative = v / (m - v)``."""
    v, r = comparison.estimate, comparison.relative
    if not (math.isfinite(v) and math.isfinite(r)) or r == 0:
        return math.nan
    return float(v + v / r)


def _look_fractions(
    pp: PilotPanel, column: str, planned: int, log_scale: bool
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Information fractions of the planned looks and the correlation of the looks'
    estimates, from the pre-period of the pilot's units (``"pre_period"``), or
    ``(k / K, "weeks", None)`` when it cannot be estimated."""
    from loyalty_pilot.experiments.sequential import (
        information_fraction,
        information_from_pre_period,
        look_correlation,
    )

    weeks = np.arange(1, planned + 1)
    start = np.datetime64(pp.start, "ns")
    pre = pp.panel[pp.panel["week"] < start]
    wide = pre.pivot_table(index=pp.key, columns="week", values=column, aggfunc="sum")
    y = wide.dropna(axis=0).to_numpy(dtype=float)
    if log_scale:
        if not (y > 0).all():
            return information_fraction(weeks, planned), "weeks", None
        y = np.log(y)
    if y.shape[0] < 3 or y.shape[1] < 4:
        return information_fraction(weeks, planned), "weeks", None
    return information_from_pre_period(y, planned), "pre_period", look_correlation(y, planned)


def guardrail_results(
    con: duckdb.DuckDBPyConnection, pp: PilotPanel, pf: PilotFile, frozen: FrozenAssignment
) -> dict[str, list[GuardrailResult]]:
    """The YAML's guardrails for every variant (non-inferiority against the control)."""
    from loyalty_pilot.experiments.guardrails import GuardrailResult
    from loyalty_pilot.pilots.pilot_eval import compare
    from loyalty_pilot.pilots.pilot_metrics import programme_cost_share
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS

    alpha = pf.spec.decision.alpha
    out: dict[str, list[GuardrailResult]] = {arm: [] for arm in _variants(pf)}
    for rule in pf.spec.metrics.guardrails:
        metric, margin = rule.metric, float(rule.margin)
        if metric == "programme_cost_share":
            for arm in out:
                stores = [u for u, a in frozen.arm_of().items() if a == arm]
                share = programme_cost_share(
                    con, pf.programmes[arm], stores, pp.start, pp.end_seen,
                    seed=pf.spec.design.seed,
                )["share"]  # fmt: skip
                known = math.isfinite(share)
                out[arm].append(
                    GuardrailResult(
                        metric, "higher_is_worse", margin, "absolute", alpha, share, share,
                        (share <= margin) if known else None, math.nan,
                        f"programme cost {share:.2%} of the arm's sales over the test weeks "
                        f"(exact replay), ceiling {margin:.2%}" if known
                        else "no sales in the arm's stores over the test weeks",
                    )
                )  # fmt: skip
            continue
        column = metric if metric in RATE_COLUMNS else METRIC_COLUMNS[metric]
        scale = "level" if metric in RATE_COLUMNS else "auto"
        evaluation = compare(pp, pf, frozen, column=column, method="did", scale=scale)
        for comparison in evaluation.comparisons:
            out[comparison.arm].append(_guardrail(comparison, metric, margin, alpha))
    return out


def _guardrail(comparison: Comparison, metric: str, margin: float, alpha: float) -> GuardrailResult:
    """Non-inferiority of one comparison. On the log scale a relative margin ``m`` is the
    log-scale margin ``log(1 - m)`` (``log(1 + m)`` when higher is worse), tested with the
    estimator's own se and df; the result is reported as relative effects."""
    from loyalty_pilot.experiments.guardrails import (
        default_direction,
        default_kind,
        guardrail,
        non_inferiority,
    )

    direction, kind = default_direction(metric), default_kind(metric)
    extras = comparison.extras
    if extras.get("scale") != "log" or kind != "relative" or comparison.status != "ok":
        return guardrail(comparison, margin=margin, direction=direction, kind=kind, alpha=alpha)
    log_margin = -math.log1p(-margin) if direction == "higher_is_better" else math.log1p(margin)
    df = extras.get("df")
    result = non_inferiority(
        float(extras["log_estimate"]), float(extras.get("se", math.nan)), margin=log_margin,
        direction=direction, kind="absolute", df=df, alpha=alpha, metric=metric,
    )  # fmt: skip
    return dataclasses.replace(
        result,
        margin=margin,
        kind="relative",
        estimate=math.expm1(result.estimate),
        bound=math.expm1(result.bound) if math.isfinite(result.bound) else result.bound,
        reason=result.reason + " (tested on the log scale)",
    )


def _on_estimator_scale(comparison: Comparison) -> Comparison:
    """A log-scale comparison with its estimate and interval on the log scale (where its
    ``se`` is), so subgroup estimates and their se's agree (Cochran's Q); the relative
    figures are unchanged."""
    extras = comparison.extras
    if extras.get("scale") != "log":
        return comparison
    return dataclasses.replace(
        comparison,
        estimate=float(extras["log_estimate"]),
        ci_low=float(extras["log_ci_low"]),
        ci_high=float(extras["log_ci_high"]),
    )


def heterogeneity_by_region(
    pp: PilotPanel, pf: PilotFile, frozen: FrozenAssignment, *, scale: str
) -> dict[str, SubgroupTable]:
    """Each variant vs the control within each region (exploratory).

    Each region's comparison carries its CR2 degrees of freedom, so the table's test of
    equal effects is Welch's F (:func:`~loyalty_pilot.experiments.subgroups.welch_heterogeneity`),
    not Cochran's Q: with a few stores per region Q's size at 5 % is 19-33 %."""
    from loyalty_pilot.experiments.results import degenerate
    from loyalty_pilot.experiments.subgroups import subgroup_table
    from loyalty_pilot.pilots.pilot_eval import compare

    if pp.by_region or "region" not in pp.units:
        return {}
    column = primary_column(pf)
    regions = pp.units["region"].astype(str)
    out = {}
    for arm in _variants(pf):
        by_region = {}
        for region in sorted(regions.unique()):
            units = list(regions.index[regions == region])
            arms_here = set(pp.units.loc[units, "arm"].astype(str))
            if not {arm, pf.control()} <= arms_here:
                by_region[region] = degenerate(
                    arm, pf.control(), column, "did", "no_units", len(units),
                    pf.spec.decision.alpha,
                )  # fmt: skip
                continue
            evaluation = compare(
                pp, pf, frozen, column=column, method="did", scale=scale, arms=(arm,),
                units=units,
            )  # fmt: skip
            if evaluation.comparisons:
                by_region[region] = _on_estimator_scale(evaluation.comparisons[0])
        if by_region:
            out[arm] = subgroup_table(by_region, by="region", alpha=pf.spec.decision.alpha)
    return out


def analyse_pilot(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    frozen: FrozenAssignment,
    *,
    method: str | None = None,
    scale: str | None = None,
    seed: int = 0,
    pp: PilotPanel | None = None,
) -> PilotAnalysis:
    """The whole evaluation of a frozen store or region pilot (module docstring);
    ``pp``: the pilot's panel when the caller has already read it."""
    from loyalty_pilot.pilots.pilot_eval import PilotEvaluation, compare, pilot_panel
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS

    spec = pf.spec
    method = method or spec.evaluation.method
    scale = scale or spec.evaluation.scale
    pp = pp or pilot_panel(con, pf, frozen)
    family = primary_family(pp, pf, frozen, method=method, scale=scale, seed=seed)
    base = compare(pp, pf, frozen, column=METRIC_COLUMNS[spec.metrics.primary],
                   method=method, scale=scale, seed=seed)  # fmt: skip
    evaluation = dataclasses.replace(base, comparisons=family)
    primary = PilotEvaluation(
        evaluation, frozen.version, pp.start, pp.end, pp.weeks_seen, spec.test_period.weeks,
        "region" if pp.by_region else "store",
    )  # fmt: skip
    secondary = {}
    for metric in spec.metrics.secondary:
        column = METRIC_COLUMNS[metric]
        secondary[metric] = compare(pp, pf, frozen, column=column, method="did", scale="auto")
    notes = []
    looks: dict[str, SequentialLook] = {}
    if method == "synthetic_control":
        notes.append("weekly looks are monitored for DiD designs only, not synthetic control")
    else:
        looks = weekly_looks(pp, pf, frozen, scale=scale)
    k = len(_variants(pf))
    simultaneous = evaluation.comparisons[:k]
    if k > 1:
        simultaneous = compare(
            pp, pf, frozen, column=METRIC_COLUMNS[spec.metrics.primary], method=method,
            scale=scale, seed=seed, alpha=spec.decision.alpha / k,
        ).comparisons  # fmt: skip
    return PilotAnalysis(
        primary,
        secondary,
        guardrail_results(con, pp, pf, frozen),
        looks,
        heterogeneity_by_region(pp, pf, frozen, scale=scale),
        tuple(notes),
        tuple(simultaneous),
    )
