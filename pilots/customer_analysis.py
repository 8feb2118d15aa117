"""The evaluation of a frozen customer pilot (offers randomized to customers).

The customer-level table is built in the workspace DuckDB, one row per frozen customer:
``arm``, ``sales`` and ``visits`` over the test weeks so far, the same over the
pre-period (the CUPED covariates), ``repurchase`` (1 when the customer bought in the test
weeks) and the RFM ``segment``. The statistics run on sufficient statistics aggregated
by the same DuckDB query (:func:`loyalty_pilot.experiments.sufficient.sufficient_sql`), so
no customer row reaches Python for the tests: only the per-arm sums do.

- primary metric (sales or visits): CUPED with the pre-period value, every variant vs
  the control and vs each other, Holm-adjusted; the sample-ratio-mismatch check over all
  arms against the frozen shares;
- secondary: the other metric (CUPED), repurchase (two proportions);
- guardrails on sales-like metrics as relative non-inferiority tests;
- weekly looks: CUPED on the cumulative test-period values at the end of each week,
  monitored against O'Brien-Fleming-type boundaries;
- heterogeneity by RFM segment (exploratory, Holm across segments, Cochran's Q).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from loyalty_pilot.pilots.errors import UserError

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.experiments.evaluate import Evaluation
    from loyalty_pilot.experiments.guardrails import GuardrailResult
    from loyalty_pilot.experiments.sequential import SequentialLook
    from loyalty_pilot.experiments.subgroups import SubgroupTable
    from loyalty_pilot.pilots.pilotspec import PilotFile
    from loyalty_pilot.pilots.registry import FrozenAssignment

TABLE = "pilot_customers"


@dataclass(frozen=True)
class CustomerAnalysis:
    """What ``evaluate PILOT.yaml`` computes for a customer pilot."""

    primary: Evaluation
    srm_p_value: float
    frozen_version: int
    test_start: date
    test_end: date
    weeks_observed: int
    weeks_planned: int
    secondary: dict[str, Evaluation] = field(default_factory=dict)
    guardrails: dict[str, list[GuardrailResult]] = field(default_factory=dict)
    sequential: dict[str, SequentialLook] = field(default_factory=dict)
    heterogeneity: dict[str, SubgroupTable] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    simultaneous: tuple[Any, ...] = ()  # variant vs control at alpha / number of variants

    def to_dict(self) -> dict[str, Any]:
        out = self.primary.to_dict()
        out["srm_p_value"] = self.srm_p_value
        out["pilot"] = {
            "version": self.frozen_version,
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "weeks_observed": self.weeks_observed,
            "weeks_planned": self.weeks_planned,
            "analysis_unit": "customer",
        }
        out["secondary"] = {m: e.to_dict() for m, e in self.secondary.items()}
        out["guardrails"] = {a: [g.to_dict() for g in r] for a, r in self.guardrails.items()}
        out["sequential"] = {a: look.to_dict() for a, look in self.sequential.items()}
        out["heterogeneity"] = {a: t.to_dict() for a, t in self.heterogeneity.items()}
        out["notes"] = list(self.notes)
        out["simultaneous"] = [c.to_dict() for c in self.simultaneous]
        return out


def _register(con: duckdb.DuckDBPyConnection, frozen: FrozenAssignment) -> None:
    units = frozen.units[["unit", "arm"]].astype(str)
    con.register("frozen_customers", units)


def _build(
    con: duckdb.DuckDBPyConnection, pre_start: date, pre_end: date, start: date, end: date
) -> None:
    """The per-customer table ``pilot_customers`` (a temporary table of the connection)."""
    con.execute(f"DROP TABLE IF EXISTS {TABLE}")
    con.execute(
        f"""CREATE TEMP TABLE {TABLE} AS
        SELECT f.unit AS customer_id, f.arm,
               coalesce(CAST(sum(CAST(b.amount AS DECIMAL(38, 6)))
                   FILTER (WHERE b.date BETWEEN ? AND ?) AS DOUBLE), 0) AS sales,
               coalesce(count(*) FILTER (WHERE b.date BETWEEN ? AND ? AND b.amount > 0), 0)
                   AS visits,
               coalesce(CAST(sum(CAST(b.amount AS DECIMAL(38, 6)))
                   FILTER (WHERE b.date BETWEEN ? AND ?) AS DOUBLE), 0) AS sales_pre,
               coalesce(count(*) FILTER (WHERE b.date BETWEEN ? AND ? AND b.amount > 0), 0)
                   AS visits_pre,
               CAST(count(*) FILTER (WHERE b.date BETWEEN ? AND ? AND b.amount > 0) > 0
                    AS INTEGER) AS repurchase
        FROM frozen_customers f
        LEFT JOIN baskets b ON b.customer_id = f.unit
        GROUP BY f.unit, f.arm""",
        [start, end, start, end, pre_start, pre_end, pre_start, pre_end, start, end],
    )


def _stats(
    con: duckdb.DuckDBPyConnection, outcome: str, covariate: str | None, where: str = ""
) -> dict[str, Any]:
    from loyalty_pilot.experiments.sufficient import stats_from_rows, sufficient_sql

    source = TABLE if not where else f"(SELECT * FROM {TABLE} WHERE {where})"
    rows = con.execute(sufficient_sql(source, arm="arm", outcome=outcome, covariate=covariate))
    return stats_from_rows(rows.df())


def _ordered(stats: dict[str, Any], arms: list[str]) -> dict[str, Any]:
    return {a: stats[a] for a in arms if a in stats}


def _evaluation(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, outcome: str, method: str,
    covariate: str | None, where: str = "", alpha: float | None = None,
) -> tuple[Evaluation, dict[str, Any]]:  # fmt: skip
    from loyalty_pilot.experiments.customer import compare_all
    from loyalty_pilot.experiments.evaluate import Evaluation

    arms = [pf.control(), *pf.variants()]
    stats = _ordered(_stats(con, outcome, covariate, where), arms)
    if pf.control() not in stats or len(stats) < 2:
        raise UserError(f"{pf.path}: no customers of the control and a variant to compare")
    alpha = pf.spec.decision.alpha if alpha is None else alpha
    comparisons = compare_all(stats, pf.control(), method, alpha, metric=outcome)
    n = sum(s.n for s in stats.values())
    evaluation = Evaluation(comparisons, method, outcome, n, tuple(stats), pf.control(), alpha)
    return evaluation, stats


def analyse_customer_pilot(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, frozen: FrozenAssignment
) -> CustomerAnalysis:
    """The whole evaluation of a frozen customer pilot (module docstring)."""
    from loyalty_pilot.experiments.customer import sample_ratio_mismatch
    from loyalty_pilot.pilots.pilot_eval import test_end

    spec = pf.spec
    _first, last = con.execute("SELECT min(date), max(date) FROM baskets").fetchall()[0]
    start, end = spec.test_period.start, test_end(pf)
    if last is None or last < start:
        raise UserError(
            f"{pf.path}: no data in the test period yet (it starts on {start}; the data ends "
            f"on {last})"
        )
    end_seen = min(end, last)
    weeks_seen = min((end_seen - start + timedelta(days=1)).days // 7, spec.test_period.weeks)
    primary_metric = (
        spec.metrics.primary if spec.metrics.primary in ("sales", "visits") else "sales"
    )
    _register(con, frozen)
    try:
        _build(con, spec.pre_period.start, spec.pre_period.end, start, end_seen)
        primary, stats = _evaluation(con, pf, primary_metric, "cuped", f"{primary_metric}_pre")
        planned = frozen.units["arm"].astype(str).value_counts()
        shares = {a: float(planned.get(a, 0)) / len(frozen.units) for a in stats}
        # intent to treat: every frozen customer is analysed, so the counts are the
        # frozen ones; the check guards against customers lost between freeze and data
        srm = sample_ratio_mismatch(stats, shares).p_value
        k = len(pf.variants())
        simultaneous = tuple(
            c for c in (
                primary.comparisons if k == 1 else _evaluation(
                    con, pf, primary_metric, "cuped", f"{primary_metric}_pre",
                    alpha=spec.decision.alpha / k,
                )[0].comparisons
            )
            if c.baseline == pf.control()
        )  # fmt: skip
        other = "visits" if primary_metric == "sales" else "sales"
        secondary = {
            other: _evaluation(con, pf, other, "cuped", f"{other}_pre")[0],
            "repurchase": _evaluation(con, pf, "repurchase", "proportion", None)[0],
        }
        guardrails = _guardrails(con, pf, secondary, primary)
        heterogeneity = _by_segment(con, pf, primary_metric)
        looks = _weekly_looks(con, pf, frozen, primary_metric, start, weeks_seen)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {TABLE}")
        con.unregister("frozen_customers")
    return CustomerAnalysis(
        primary, float(srm), frozen.version, start, end, weeks_seen, spec.test_period.weeks,
        secondary, guardrails, looks, heterogeneity,
        ("CUPED on the pre-period value; aggregated in DuckDB as sufficient statistics",
         "intent to treat: every frozen customer is analysed, zeros included"),
        simultaneous,
    )  # fmt: skip


def _guardrails(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    secondary: dict[str, Evaluation],
    primary: Evaluation,
) -> dict[str, list[GuardrailResult]]:
    from loyalty_pilot.experiments.guardrails import (
        GuardrailResult,
        default_direction,
        default_kind,
        guardrail,
    )

    by_metric = {primary.metric: primary, **secondary}
    out: dict[str, list[GuardrailResult]] = {arm: [] for arm in pf.variants()}
    alpha = pf.spec.decision.alpha
    for rule in pf.spec.metrics.guardrails:
        evaluation = by_metric.get(rule.metric)
        for arm in out:
            found = None
            if evaluation is not None:
                found = next(
                    (c for c in evaluation.comparisons
                     if c.arm == arm and c.baseline == pf.control()), None,
                )  # fmt: skip
            if found is None:
                out[arm].append(
                    GuardrailResult(
                        rule.metric, default_direction(rule.metric), float(rule.margin),
                        default_kind(rule.metric), alpha, math.nan, math.nan, None, math.nan,
                        "not measured at customer level (store-level metric)",
                    )
                )  # fmt: skip
                continue
            out[arm].append(
                guardrail(
                    found,
                    margin=float(rule.margin),
                    direction=default_direction(rule.metric),
                    kind=default_kind(rule.metric),
                    alpha=alpha,
                )
            )
    return out


def _by_segment(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, metric: str
) -> dict[str, SubgroupTable]:
    from loyalty_pilot.experiments.subgroups import subgroup_table
    from loyalty_pilot.pilots.panels import customer_rfm

    # segments as of the end of the pre-period: test-period purchases must not move a
    # treated customer into another segment
    as_of = pf.spec.pre_period.end + timedelta(days=1)
    rfm = customer_rfm(con, as_of=as_of)[["customer_id", "segment"]].astype(str)
    con.register("rfm_segments", rfm)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {TABLE} AS
            SELECT p.*, coalesce(r.segment, 'unknown') AS segment
            FROM {TABLE} p LEFT JOIN rfm_segments r ON r.customer_id = p.customer_id"""
        )
    finally:
        con.unregister("rfm_segments")
    segments = [
        r[0] for r in con.execute(f"SELECT DISTINCT segment FROM {TABLE} ORDER BY 1").fetchall()
    ]
    out: dict[str, SubgroupTable] = {}
    per_arm: dict[str, dict[str, Any]] = {arm: {} for arm in pf.variants()}
    for segment in segments:  # one query per RFM segment (11 at most)
        quoted = segment.replace("'", "''")
        try:
            evaluation, _ = _evaluation(
                con, pf, metric, "cuped", f"{metric}_pre", where=f"segment = '{quoted}'"
            )
        except UserError:
            continue
        for c in evaluation.comparisons:
            if c.baseline == pf.control() and c.arm in per_arm:
                per_arm[c.arm][segment] = c
    for arm, comparisons in per_arm.items():
        if comparisons:
            out[arm] = subgroup_table(comparisons, by="segment", alpha=pf.spec.decision.alpha)
    return out


def _weekly_looks(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    frozen: FrozenAssignment,
    metric: str,
    start: date,
    weeks_seen: int,
) -> dict[str, SequentialLook]:
    """CUPED on the cumulative test-period values at the end of each week so far."""
    from loyalty_pilot.experiments.customer import compare_all
    from loyalty_pilot.experiments.sequential import information_fraction, monitor
    from loyalty_pilot.experiments.sufficient import stats_from_rows, sufficient_sql

    del frozen  # the customers are already in the temporary table
    planned = pf.spec.test_period.weeks
    if weeks_seen < 1:
        return {}
    value = "amount" if metric == "sales" else "CAST(amount > 0 AS INTEGER)"
    stats_rows: dict[str, list[tuple[float, float]]] = {arm: [] for arm in pf.variants()}
    for week in range(1, weeks_seen + 1):  # one aggregate query per week (12 or so)
        last = start + timedelta(weeks=week, days=-1)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pilot_week AS
            SELECT p.customer_id, p.arm, p.{metric}_pre,
                   coalesce(sum({value}) FILTER (WHERE b.date BETWEEN ? AND ?), 0) AS y
            FROM {TABLE} p LEFT JOIN baskets b ON b.customer_id = p.customer_id
            GROUP BY 1, 2, 3""",
            [start, last],
        )
        rows = con.execute(
            sufficient_sql("pilot_week", arm="arm", outcome="y", covariate=f"{metric}_pre")
        ).df()
        stats = _ordered(stats_from_rows(rows), [pf.control(), *pf.variants()])
        for c in compare_all(stats, pf.control(), "cuped", pf.spec.decision.alpha, metric=metric):
            if c.baseline == pf.control() and c.arm in stats_rows:
                stats_rows[c.arm].append((c.estimate, float(c.extras.get("se", math.nan))))
    con.execute("DROP TABLE IF EXISTS pilot_week")
    fractions = information_fraction(np.arange(1, weeks_seen + 1), planned)
    out = {}
    for arm, rows in stats_rows.items():
        z = [e / s if s > 0 else math.nan for e, s in rows]
        estimate, se = rows[-1]
        out[arm] = monitor(
            z, fractions, alpha=pf.spec.decision.alpha, estimate=estimate,
            se=se if se > 0 else None,
        )  # fmt: skip
    return out
