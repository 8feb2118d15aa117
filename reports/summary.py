"""The decision in a few plain lines, for the terminal (``decide``, ``report``, ``demo``).

Same wording as the report (the catalogues of :mod:`loyalty_pilot.reports.sentences`),
in the report's language.
"""

from __future__ import annotations

from .document import DecisionDocument
from .sentences import Formatter


def decision_lines(doc: DecisionDocument, lang: str = "en") -> list[str]:
    """The verdict, the recommended arm, every reason and the three biggest risks."""
    from . import i18n

    f = Formatter(lang, doc.currency, {(g.arm, g.metric): g.kind for g in doc.guardrails})
    decision = doc.decision
    head = f"{i18n.text(f'verdict.{decision.verdict}', lang)}: {doc.pilot}"
    lines = [head]
    lines += money_lines(doc, lang)
    for reason in decision.reasons:
        lines.append(f"  {f.result(reason.passed)}  {f.reason(reason.code, reason.params)}")
    risks = doc.top_risks()
    if risks:
        lines.append(i18n.text("summary.risks", lang))
        lines += [f"  - {f.risk(r.code, r.params)}" for r in risks]
    return lines


#: the total-sales and log-scale figures "differ materially" beyond this (1 point)
MATERIAL_DIFFERENCE = 0.01


def money_lines(doc: DecisionDocument, lang: str = "en") -> list[str]:
    """Per arm: the decision's estimand (total sales) with its prior and posterior, and
    the log-scale figure when it differs from it by more than one point."""
    from . import i18n

    f = Formatter(lang, doc.currency)
    lines = []
    for arm in doc.arms:
        total = arm.uplift_total_sales
        if total is not None and arm.prior is not None and arm.posterior is not None:
            lines.append(
                "  " + i18n.text(
                    "summary.money_arm", lang, arm=arm.arm, estimate=f.pct(total.estimate),
                    low=f.pct(total.ci_low), high=f.pct(total.ci_high),
                    prior=f.pct(arm.prior.mean), prior_sd=f.pct(arm.prior.sd, signed=False),
                    posterior=f.pct(arm.posterior.mean),
                    posterior_sd=f.pct(arm.posterior.sd, signed=False),
                )
            )  # fmt: skip
        log = arm.uplift_log_scale
        if (
            total is not None and log is not None and total.estimate is not None
            and log.estimate is not None
            and abs(total.estimate - log.estimate) > MATERIAL_DIFFERENCE
        ):  # fmt: skip
            lines.append(
                "  " + i18n.text(
                    "summary.log_scale", lang, estimate=f.pct(log.estimate),
                    low=f.pct(log.ci_low), high=f.pct(log.ci_high),
                )
            )  # fmt: skip
    return lines
