"""The report as plain blocks of text and tables, shared by the HTML and Markdown templates.

:func:`build_view` turns a :class:`~reports.document.DecisionDocument` into a dict of
already formatted strings: the banner, page one (``summary``), the sections in order and
the reproducibility footer. Each section is a list of blocks ``{"kind": "p" | "h3" |
"list" | "table" | "chart", ...}``; both templates walk the same blocks, so HTML and
Markdown carry the same content (charts only in HTML). Nothing here escapes: the
templates do.
"""

from __future__ import annotations

from typing import Any

from . import charts, i18n
from .blocks import Block, bullets, chart, h3, p, table
from .document import ArmResult, Decision, DecisionDocument, Reason
from .sentences import Formatter
from .view_sections import (
    assumptions_section,
    checks_section,
    cost_section,
    design_section,
    footer_blocks,
    rollout_section,
    smart_section,
    uplift_section,
)

BANNER = {"GO": "go", "NO-GO": "nogo", "EXTEND": "extend"}


def key_reason(decision: Decision) -> Reason | None:
    """The reason that best says why: the first one pointing the verdict's way."""
    wanted = {"GO": True, "NO-GO": False, "EXTEND": None}.get(decision.verdict)
    preferred = ("interval_", "extend_")
    for candidates in (
        [r for r in decision.reasons if r.passed is wanted and r.code.startswith(preferred)],
        [r for r in decision.reasons if r.passed is wanted],
        list(decision.reasons),
    ):
        if candidates:
            return candidates[0]
    return None


def build_view(doc: DecisionDocument, lang: str = "en", with_charts: bool = True) -> dict:
    """Everything the templates show, formatted for ``lang``."""
    i18n.check_lang(lang)
    kinds = {(g.arm, g.metric): g.kind for g in doc.guardrails}
    f = Formatter(lang, doc.currency, kinds)
    t = lambda key, **kw: i18n.text(key, lang, **kw)  # noqa: E731
    metric = f.metric(doc.metric)
    sections = [
        ("weekly", t("section.weekly", metric=metric.capitalize()), _weekly(doc, f, with_charts)),
        ("uplift", t("section.uplift"), uplift_section(doc, f, with_charts)),
        ("cost", t("section.cost"), cost_section(doc, f, with_charts)),
        ("smart", t("section.smart"), smart_section(doc, f)),
        ("checks", t("section.checks"), checks_section(doc, f)),
        ("design", t("section.design"), design_section(doc, f)),
        ("assumptions", t("section.assumptions"), assumptions_section(doc, f)),
        ("rollout", t("section.rollout"), rollout_section(doc, f)),
    ]
    return {
        "lang": lang,
        "title": t("title", pilot=doc.pilot),
        "pilot": doc.pilot,
        "description": doc.description,
        "generated": t("generated", date=i18n.fmt_date(doc.reproducibility.generated_at, lang)),
        "banner": _banner(doc, f),
        "summary": {"id": "summary", "title": t("section.summary"), "blocks": _summary(doc, f)},
        "sections": [{"id": i, "title": title, "blocks": b} for i, title, b in sections],
        "footer": {
            "id": "reproducibility",
            "title": t("section.reproducibility"),
            "blocks": footer_blocks(doc, f),
        },
    }


def _banner(doc: DecisionDocument, f: Formatter) -> dict[str, str]:
    d = doc.decision
    lang = f.lang
    if d.verdict == "GO":
        headline = (
            i18n.text("headline.GO", lang, arm=d.recommended_arm)
            if d.recommended_arm
            else i18n.text("headline.GO_none", lang)
        )
    elif d.verdict == "EXTEND":
        headline = (
            i18n.text("headline.EXTEND", lang, weeks=f.num(d.extend_weeks))
            if d.extend_weeks
            else i18n.text("headline.EXTEND_none", lang)
        )
    else:
        headline = i18n.text(f"headline.{d.verdict}", lang)
    reason = key_reason(d)
    why = f.reason(reason.code, reason.params) if reason else i18n.text("no_reason", lang)
    return {
        "verdict": i18n.text(f"verdict.{d.verdict}", lang),
        "css": BANNER.get(d.verdict, "extend"),
        "headline": headline,
        "why": why,
    }


def uplift_sentence(a: ArmResult, unit: str, metric: str, f: Formatter) -> str:
    """``cash: between +1.2% and +4.8% more sales per store (best estimate +3.0%).``"""
    if a.rel_ci_low is not None and a.rel_ci_high is not None:
        # "more" only when the whole interval is a gain; "less" when it is a loss
        key = (
            "uplift.interval" if a.rel_ci_low >= 0
            else "uplift.interval_less" if a.rel_ci_high <= 0
            else "uplift.interval_change"
        )  # fmt: skip
    elif a.relative is not None:
        key = "uplift.point"
    else:
        key = "uplift.none"
    return i18n.text(
        key,
        f.lang,
        arm=a.arm,
        low=f.pct(a.rel_ci_low),
        high=f.pct(a.rel_ci_high),
        low_abs=f.pct(None if a.rel_ci_low is None else abs(a.rel_ci_low), signed=False),
        high_abs=f.pct(None if a.rel_ci_high is None else abs(a.rel_ci_high), signed=False),
        estimate=f.pct(a.relative),
        metric=metric,
        unit=unit,
        status=a.status,
    )


def _summary(doc: DecisionDocument, f: Formatter) -> list[Block]:
    lang, d = f.lang, doc.decision
    t = lambda key, **kw: i18n.text(key, lang, **kw)  # noqa: E731
    blocks = []
    if d.threshold is not None:
        source = t(f"threshold_source.{d.threshold_source}")
        blocks.append(p(t("threshold", threshold=f.pct(d.threshold), source=source)))
    else:
        blocks.append(p(t("threshold_none")))
    if d.recommended_arm and d.recommendation_confidence is not None:
        confidence = f.pct(d.recommendation_confidence, signed=False, digits=0)
        blocks.append(p(t("confidence", arm=d.recommended_arm, confidence=confidence)))
    unit = t(
        f"unit.{doc.design.unit}"
        if doc.design and i18n.has(f"unit.{doc.design.unit}", lang)
        else "unit.unit"
    )
    metric = f.metric(doc.metric)
    blocks.append(h3(t("summary.uplifts")))
    blocks.append(bullets([uplift_sentence(a, unit, metric, f) for a in doc.arms]))
    if doc.interval_level is not None:
        level = f.pct(doc.interval_level, signed=False)
        key = "summary.interval_simultaneous" if doc.interval_level > 0.95 else "summary.interval"
        total = f.pct(1 - (1 - doc.interval_level) * len(doc.arms), signed=False, digits=0)
        blocks.append(p(t(key, level=level, arms=f.num(len(doc.arms)), total=total)))
    months = max((pr.horizon_months for pr in doc.projections), default=0)
    blocks.append(h3(t("summary.rollout", months=f.num(months))))
    if doc.projections:
        head = [t("col.arm"), t("col.quantity"), t("col.p10"), t("col.p50"), t("col.p90")]
        rows = []
        for pr in doc.projections:
            for key, q, fmt in (
                ("proj.cost", pr.cost, f.money),
                ("proj.profit", pr.profit, f.money),
                ("proj.roi", pr.roi, f.pct),
            ):
                rows.append([pr.arm, t(key), fmt(q.p10), fmt(q.p50), fmt(q.p90)])
        blocks += [table(head, rows, (2, 3, 4)), p(t("proj.note"))]
    else:
        blocks.append(p(t("proj.none")))
    blocks.append(h3(t("summary.risks")))
    top = doc.top_risks(3)
    blocks.append(
        bullets([f.risk(r.code, r.params) for r in top]) if top else p(t("summary.no_risks"))
    )
    return blocks


def _weekly(doc: DecisionDocument, f: Formatter, with_charts: bool) -> list[Block]:
    lang, w = f.lang, doc.weekly
    t = lambda key, **kw: i18n.text(key, lang, **kw)  # noqa: E731
    if w is None or not w.weeks:
        return [p(t("weekly.none"))]
    control = doc.arms[0].baseline if doc.arms else None
    blocks: list[Block] = []
    if with_charts:
        svg = charts.weekly_svg(
            w.weeks,
            w.series,
            w.test_start,
            w.test_end,
            control,
            lang,
            t("section.weekly", metric=f.metric(w.metric)),
        )
        blocks += chart(svg) or [p(t("chart.none"))]
    blocks.append(
        p(
            t(
                "chart.shaded",
                start=i18n.fmt_date(w.test_start, lang),
                end=i18n.fmt_date(w.test_end, lang),
            )
        )
    )
    head = [t("col.arm"), t("col.before"), t("col.during"), t("col.change")]
    rows = []
    for arm, values in w.series.items():
        before = _mean(v for day, v in zip(w.weeks, values, strict=False) if day < w.test_start)
        during = _mean(
            v for day, v in zip(w.weeks, values, strict=False) if w.test_start <= day <= w.test_end
        )
        change = during / before - 1 if before and during is not None else None
        rows.append([arm, f.num(before, 1), f.num(during, 1), f.pct(change)])
    blocks += [h3(t("weekly.table", metric=f.metric(w.metric))), table(head, rows, (1, 2, 3))]
    return blocks


def _mean(values: Any) -> float | None:
    kept = [v for v in values if isinstance(v, int | float) and v == v]
    return sum(kept) / len(kept) if kept else None
