"""Sentences from codes: reasons, risks and quality checks in the report's language.

Each parameter is formatted by its name (:data:`PARAM_KINDS`): relative effects as
signed percentages, money in the document's currency, p-values, counts, metric and
dimension names in words; names of arms and other user data are left as given (the
templates escape them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import i18n

#: how each parameter of a reason, risk or quality check is formatted
PARAM_KINDS: dict[str, str] = {
    "arm": "name",
    "other": "name",
    "low": "signed_pct",
    "high": "signed_pct",
    "threshold": "signed_pct",
    "difference": "signed_pct",
    "mde": "pct",
    "roi": "signed_pct",
    "min_roi": "signed_pct",
    "p_value": "p",
    "max_std_diff": "dec2",
    "weeks": "int",
    "planned": "int",
    "look": "int",
    "n_units": "int",
    "p90_cost": "money",
    "budget": "money",
    "liability": "money",
    "p10_profit": "money",
    "expected_profit": "money",
    "value": "money",
    "cost": "money",
    "prob_above": "pct",
    "prob_loss": "pct",
    "max_loss_probability": "pct",
    "weight": "pct",
    "breakage_share": "pct",
    "i2": "pct",
    "by": "by",
    "metric": "metric",
    "bound": "guardrail",
    "margin": "guardrail_margin",
}


@dataclass(frozen=True)
class Formatter:
    """Formats figures for one document in one language."""

    lang: str
    currency: str = "EUR"
    guardrail_kinds: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def na(self) -> str:
        return i18n.na(self.lang)

    def pct(self, x: Any, signed: bool = True, digits: int = 1) -> str:
        return i18n.pct(x, self.lang, digits, signed)

    def money(self, x: Any) -> str:
        return i18n.money(x, self.currency, self.lang)

    def num(self, x: Any, digits: int = 0) -> str:
        return i18n.num(x, self.lang, digits)

    def p(self, x: Any) -> str:
        return i18n.pvalue(x, self.lang)

    def metric(self, name: Any) -> str:
        key = f"metric.{name}"
        return i18n.text(key, self.lang) if i18n.has(key, self.lang) else str(name)

    def guardrail(self, value: Any, kind: str | None, signed: bool = True) -> str:
        """A guardrail bound (signed) or margin: a percentage when relative, else a number."""
        if kind == "absolute":  # a rate's change or margin: percentage points
            if value is None:
                return self.na()
            shown = float(value) * 100 if signed else abs(float(value)) * 100
            number = i18n.num(shown, self.lang, 2, signed=signed)
            return i18n.text("unit.points", self.lang, value=number)
        return (
            self.pct(value, signed=signed)
            if signed or value is None
            else self.pct(abs(value), signed=False)
        )

    def param(self, name: str, value: Any, params: Mapping[str, Any]) -> str:
        kind = PARAM_KINDS.get(name, "raw")
        if value is None:
            return self.na()
        if kind == "signed_pct":
            return self.pct(value)
        if kind == "pct":
            return self.pct(value, signed=False)
        if kind == "p":
            return self.p(value)
        if kind == "dec2":
            return self.num(value, 2)
        if kind == "int":
            return self.num(value, 0)
        if kind == "money":
            return self.money(value)
        if kind == "metric":
            return self.metric(value)
        if kind == "by":
            key = f"by.{value}"
            return i18n.text(key, self.lang) if i18n.has(key, self.lang) else str(value)
        if kind in ("guardrail", "guardrail_margin"):
            found = self.guardrail_kinds.get((str(params.get("arm")), str(params.get("metric"))))
            return self.guardrail(value, found or "relative", signed=kind == "guardrail")
        if isinstance(value, float):
            return self.num(value, 2)
        return str(value)

    def sentence(self, key: str, params: Mapping[str, Any] | None = None) -> str:
        """The catalogue sentence ``key`` filled with ``params`` formatted by name."""
        params = params or {}
        formatted = {name: self.param(name, value, params) for name, value in params.items()}
        out = i18n.text(key, self.lang, **formatted)
        return out.replace("= <", "<")  # "p = < 0.001" reads "p < 0.001"

    def reason(self, code: str, params: Mapping[str, Any]) -> str:
        return self.sentence(f"reason.{code}", params)

    def risk(self, code: str, params: Mapping[str, Any]) -> str:
        return self.sentence(f"risk.{code}", params)

    def quality(self, code: str, passed: bool | None, params: Mapping[str, Any]) -> str:
        outcome = "unknown" if passed is None else "pass" if passed else "fail"
        return self.sentence(f"quality.{code}.{outcome}", params)

    def result(self, passed: bool | None) -> str:
        """``✔ pass`` / ``✘ fail`` / ``? unknown``: a sign and a word, not colour alone."""
        if passed is None:
            return "? " + i18n.text("result.unknown", self.lang)
        return (
            ("✔ " + i18n.text("result.pass", self.lang))
            if passed
            else ("✘ " + i18n.text("result.fail", self.lang))
        )

    def stance(self, passed: bool | None) -> str:
        if passed is None:
            return "? " + i18n.text("stance.open", self.lang)
        return (
            ("✔ " + i18n.text("stance.for", self.lang))
            if passed
            else ("✘ " + i18n.text("stance.against", self.lang))
        )
