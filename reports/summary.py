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
    for reason in decision.reasons:
        lines.append(f"  {f.result(reason.passed)}  {f.reason(reason.code, reason.params)}")
    risks = doc.top_risks()
    if risks:
        lines.append(i18n.text("summary.risks", lang))
        lines += [f"  - {f.risk(r.code, r.params)}" for r in risks]
    return lines
