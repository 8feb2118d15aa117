"""The report's sections after page one, as blocks (see :mod:`reports.view`)."""

from __future__ import annotations

from typing import Any

from . import charts, i18n
from .blocks import Block, bullets, chart, h3, interval, p, table
from .document import ArmResult, DecisionDocument
from .sentences import Formatter

MAX_UNITS = 30  # unit ids listed per arm before "and N more"


def _t(f: Formatter) -> Any:
    return lambda key, **kw: i18n.text(key, f.lang, **kw)


def _arm_table(arms: list[ArmResult], f: Formatter) -> Block:
    t = _t(f)
    head = [
        t("col.arm"),
        t("col.baseline"),
        t("col.programme"),
        t("col.uplift"),
        t("col.interval"),
        t("col.estimate"),
        t("col.p_value"),
        t("col.p_adjusted"),
        t("col.n_units"),
        t("col.method"),
        t("col.status"),
    ]
    rows = [
        [
            a.arm,
            a.baseline,
            a.programme or f.na(),
            f.pct(a.relative),
            interval(a.rel_ci_low, a.rel_ci_high, f),
            f.num(a.estimate, 2),
            f.p(a.p_value),
            f.p(a.p_value_adjusted),
            f.num(a.n_units),
            a.method,
            a.status,
        ]
        for a in arms
    ]
    return table(head, rows, (3, 4, 5, 6, 7, 8))


def uplift_section(doc: DecisionDocument, f: Formatter, with_charts: bool) -> list[Block]:
    """Forest plot, the arms against the control, head to head, every forest row."""
    t = _t(f)
    blocks: list[Block] = []
    rows = [
        {
            "label": r.label if r.group in ("arm", "head_to_head") else f"{r.label} · {r.arm}",
            "relative": r.relative,
            "low": r.low,
            "high": r.high,
            "exploratory": r.exploratory,
        }
        for r in doc.forest
    ]
    if with_charts:
        svg = charts.forest_svg(rows, doc.decision.threshold, f.lang, t("uplift.forest"))
        blocks += chart(svg) or [p(t("uplift.no_forest"))]
    if doc.forest:
        blocks.append(p(t("chart.forest")))
    blocks += [h3(t("uplift.arms")), _arm_table(doc.arms, f)]
    if doc.head_to_head:
        blocks += [h3(t("uplift.head")), _arm_table(doc.head_to_head, f)]
    if doc.forest:
        head = [
            t("col.row"),
            t("col.group"),
            t("col.arm"),
            t("col.uplift"),
            t("col.interval"),
            t("col.exploratory"),
        ]
        body = [
            [
                r.label,
                t(f"group.{r.group}") if i18n.has(f"group.{r.group}", f.lang) else r.group,
                r.arm,
                f.pct(r.relative),
                interval(r.low, r.high, f),
                t("yes") if r.exploratory else t("no"),
            ]
            for r in doc.forest
        ]
        blocks += [h3(t("uplift.forest")), table(head, body, (3, 4))]
    return blocks


def cost_section(doc: DecisionDocument, f: Formatter, with_charts: bool) -> list[Block]:
    """Monthly points and liability chart, then the totals of each variant."""
    t = _t(f)
    if not doc.projections:
        return [p(t("proj.none"))]
    blocks: list[Block] = []
    if with_charts:
        labels = {
            "points_issued": t("proj.points_issued"),
            "points_redeemed": t("proj.points_redeemed"),
            "points_expired": t("proj.points_expired"),
            "liability": t("chart.liability"),
        }
        panels = [(pr.arm, pr.monthly) for pr in doc.projections]
        blocks += chart(charts.cost_svg(panels, f.lang, doc.currency, labels, t("section.cost")))
    blocks += [
        p(t("proj.horizon", arm=pr.arm, programme=pr.programme, months=f.num(pr.horizon_months)))
        for pr in doc.projections
    ]
    rows_spec = [
        ("proj.revenue", lambda pr: f.money(pr.revenue)),
        ("proj.cost", lambda pr: f.money(pr.cost.mean)),
        ("proj.profit", lambda pr: f.money(pr.profit.mean)),
        ("proj.roi", lambda pr: f.pct(pr.roi.mean)),
        ("proj.points_issued", lambda pr: f.num(pr.points_issued)),
        ("proj.points_redeemed", lambda pr: f.num(pr.points_redeemed)),
        ("proj.points_expired", lambda pr: f.num(pr.points_expired)),
        ("proj.liability_end", lambda pr: f.money(pr.liability_end)),
        ("proj.breakage", lambda pr: f.money(pr.breakage)),
        ("proj.break_even", lambda pr: f.pct(pr.break_even_uplift)),
    ]
    head = [t("col.quantity")] + [pr.arm for pr in doc.projections]
    rows = [[t(key)] + [fmt(pr) for pr in doc.projections] for key, fmt in rows_spec]
    numeric = tuple(range(1, len(head)))
    return [*blocks, h3(t("col.mean")), table(head, rows, numeric)]


def _smart_figure(value: Any, unit: str, f: Formatter) -> str:
    if value is None:
        return f.na()
    if unit == "share":
        return f.pct(value, signed=False)
    if unit == "per_100":
        return i18n.text("smart.per_100", f.lang, value=f.num(value, 1))
    if unit == "days":
        return i18n.text("smart.days", f.lang, value=f.num(value))
    return f.num(value, 0 if float(value).is_integer() else 1)


def smart_section(doc: DecisionDocument, f: Formatter) -> list[Block]:
    """One scorecard per programme: each letter's figure, threshold and result."""
    t = _t(f)
    if not doc.smart:
        return [p(t("smart.none"))]
    blocks: list[Block] = []
    head = [t("col.letter"), t("col.figure"), t("col.threshold"), t("col.result")]
    for card in doc.smart:
        verdict = t(f"smart.verdict.{card.verdict}")
        blocks.append(h3(t("smart.card", programme=card.programme, verdict=verdict)))
        rows = [
            [
                t(f"smart.{x.letter}"),
                _smart_figure(x.figure, x.unit, f),
                _smart_figure(x.threshold, x.unit, f),
                f.result(x.passed),
            ]
            for x in card.letters
        ]
        blocks.append(table(head, rows, (1, 2)))
    return blocks


def checks_section(doc: DecisionDocument, f: Formatter) -> list[Block]:
    """Every reason with its stance, the guardrails, the quality checks."""
    t = _t(f)
    reasons = [[f.stance(r.passed), f.reason(r.code, r.params)] for r in doc.decision.reasons]
    blocks: list[Block] = [h3(t("checks.reasons"))]
    blocks.append(
        table([t("col.stance"), t("col.reason")], reasons) if reasons else p(t("no_reason"))
    )
    blocks.append(h3(t("checks.guardrails")))
    if doc.guardrails:
        head = [
            t("col.arm"),
            t("col.metric"),
            t("col.kind"),
            t("col.margin"),
            t("col.bound"),
            t("col.result"),
        ]
        rows = [
            [
                g.arm,
                f.metric(g.metric),
                t(f"kind.{g.kind}") if i18n.has(f"kind.{g.kind}", f.lang) else g.kind,
                f.guardrail(g.margin, g.kind, signed=False),
                f.guardrail(g.bound, g.kind),
                f.result(g.passed),
            ]
            for g in doc.guardrails
        ]
        blocks.append(table(head, rows, (3, 4)))
    else:
        blocks.append(p(t("checks.no_guardrails")))
    blocks.append(h3(t("checks.quality")))
    if doc.quality:
        rows = [[f.result(q.passed), f.quality(q.code, q.passed, q.params)] for q in doc.quality]
        blocks.append(table([t("col.result"), t("col.check")], rows))
    else:
        blocks.append(p(t("checks.no_quality")))
    return blocks


def design_section(doc: DecisionDocument, f: Formatter) -> list[Block]:
    """The design in one line, MDE against break-even, units, balance and power."""
    t, design = _t(f), doc.design
    if design is None:
        return [p(t("design.none"))]
    unit = t(f"unit.{design.unit}") if i18n.has(f"unit.{design.unit}", f.lang) else design.unit
    blocks = [
        p(
            t(
                "design.summary",
                method=design.method,
                unit=unit,
                per_arm=f.num(design.per_arm),
                weeks=f.num(design.weeks),
            )
        )
    ]
    sentences = []
    for arm, be in design.break_even.items():
        if design.mde is None or be is None:
            continue
        key = "design.mde_ok" if design.mde <= be else "design.mde_short"
        sentences.append(t(key, mde=f.pct(design.mde, signed=False), arm=arm, break_even=f.pct(be)))
    blocks.append(bullets(sentences) if sentences else p(t("design.mde_unknown")))
    rows = []
    for arm, units in design.units.items():
        shown = ", ".join(units[:MAX_UNITS])
        if len(units) > MAX_UNITS:
            shown += " " + t("more_items", count=f.num(len(units) - MAX_UNITS))
        rows.append([arm, f.num(len(units)), shown])
    blocks += [
        h3(t("design.stores")),
        table([t("col.arm"), t("col.n_units"), t("col.units")], rows, (1,)),
    ]
    blocks.append(h3(t("design.balance")))
    if design.balance:
        rows = [
            [str(b.get("arm", "")), str(b.get("covariate", "")), f.num(b.get("std_diff"), 2)]
            for b in design.balance
        ]
        blocks.append(table([t("col.arm"), t("col.covariate"), t("col.std_diff")], rows, (2,)))
    else:
        blocks.append(p(t("design.no_balance")))
    blocks.append(h3(t("design.power")))
    if design.power:
        rows = [
            [
                f.num(r.per_arm),
                f.num(r.weeks),
                f.pct(r.mde, signed=False),
                f.pct(r.false_positive_rate, signed=False),
            ]
            for r in design.power
        ]
        head = [t("col.per_arm"), t("col.weeks"), t("col.mde"), t("col.fpr")]
        blocks.append(table(head, rows, (0, 1, 2, 3)))
    else:
        blocks.append(p(t("design.no_power")))
    return blocks


def assumptions_section(doc: DecisionDocument, f: Formatter) -> list[Block]:
    """Prior and recalibrated assumptions, then profit for each uplift scenario."""
    t = _t(f)

    def mean_sd(mean: Any, sd: Any) -> str:
        return t("mean_sd", mean=f.pct(mean), sd=f.pct(sd, signed=False))

    blocks: list[Block] = [h3(t("assumptions.table"))]
    if doc.assumptions:
        rows = [
            [
                a.programme,
                t(f"assumption.{a.parameter}"),
                mean_sd(a.prior_mean, a.prior_sd),
                mean_sd(a.posterior_mean, a.posterior_sd),
            ]
            for a in doc.assumptions
        ]
        head = [t("col.programme"), t("col.parameter"), t("col.prior"), t("col.posterior")]
        blocks.append(table(head, rows, (2, 3)))
    else:
        blocks.append(p(t("assumptions.none")))
    blocks.append(h3(t("assumptions.sensitivity")))
    if doc.sensitivity:
        rows = [
            [s.arm, t(f"scenario.{s.label}"), f.pct(s.uplift), f.money(s.profit), f.pct(s.roi)]
            for s in doc.sensitivity
        ]
        head = [t("col.arm"), t("col.scenario"), t("col.uplift"), t("col.profit"), t("col.roi")]
        blocks.append(table(head, rows, (2, 3, 4)))
    else:
        blocks.append(p(t("assumptions.no_sensitivity")))
    return blocks


def rollout_section(doc: DecisionDocument, f: Formatter) -> list[Block]:
    """Where the pilot stands, the waves and the next gate."""
    t, r = _t(f), doc.rollout
    if r is None:
        return [p(t("rollout.none"))]
    stage = t(f"stage.{r.stage}") if i18n.has(f"stage.{r.stage}", f.lang) else r.stage
    blocks = [p(stage)]
    head = [
        t("col.wave"),
        t("col.stores"),
        t("col.start"),
        t("col.weeks"),
        t("col.gate"),
        t("col.regions"),
    ]
    rows = [
        [
            w.name,
            f.num(w.n_stores),
            i18n.fmt_date(w.start, f.lang),
            f.num(w.weeks),
            i18n.gate(w.gate, f.lang),
            ", ".join(w.regions),
        ]
        for w in r.waves
    ]
    if rows:
        blocks.append(table(head, rows, (1, 3)))
    blocks.append(p(t("rollout.holdout", holdout=f.num(r.holdout))))
    blocks.append(
        p(
            t("rollout.next_gate", gate=i18n.gate(r.next_gate, f.lang))
            if r.next_gate
            else t("rollout.no_gate")
        )
    )
    return blocks


def footer_blocks(doc: DecisionDocument, f: Formatter) -> list[Block]:
    """Versions, hashes, fingerprint, seed and the hash of every configuration file."""
    t, r = _t(f), doc.reproducibility
    rows = [
        [t("repro.tool_version"), r.tool_version],
        [t("repro.pilot_version"), f.num(r.pilot_version)],
        [t("repro.design_hash"), r.design_hash],
        [t("repro.data_fingerprint"), r.data_fingerprint],
        [t("repro.seed"), str(r.seed)],
        [t("repro.generated_at"), i18n.fmt_timestamp(r.generated_at, f.lang)],
        [t("repro.schema_version"), doc.schema_version],
    ]
    blocks = [table([t("col.item"), t("col.value")], rows)]
    if r.config_hashes:
        hashes = [[name, digest] for name, digest in r.config_hashes.items()]
        blocks.append(table([t("col.file"), t("col.sha256")], hashes))
    return blocks
