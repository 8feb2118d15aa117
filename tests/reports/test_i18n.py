"""Every code has wording in both languages; numbers and dates follow the locale."""

from __future__ import annotations

import re
import string

import pytest

from loyalty_pilot.reports import document as d
from loyalty_pilot.reports import i18n
from loyalty_pilot.reports.render import render_html, render_markdown
from loyalty_pilot.reports.sentences import PARAM_KINDS, Formatter

NB, NNB = "\u00a0", "\u202f"


def test_both_catalogues_have_the_same_keys_and_fields() -> None:
    assert set(i18n.CATALOGUES["en"]) == set(i18n.CATALOGUES["fr"])
    for key, en in i18n.CATALOGUES["en"].items():
        assert i18n.fields(en) == i18n.fields(i18n.CATALOGUES["fr"][key]), key


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_every_code_has_wording(lang: str) -> None:
    for code, params in d.REASON_CODES.items():
        assert i18n.fields(i18n.CATALOGUES[lang][f"reason.{code}"]) <= set(params), code
    for code, params in d.RISK_CODES.items():
        assert i18n.fields(i18n.CATALOGUES[lang][f"risk.{code}"]) <= set(params), code
    for code in i18n.QUALITY_CODES:
        for outcome in ("pass", "fail", "unknown"):
            assert i18n.has(f"quality.{code}.{outcome}", lang)
    for verdict in d.VERDICTS:
        assert i18n.has(f"verdict.{verdict}", lang)
        assert i18n.has(f"headline.{verdict}", lang)
    for stage in ("not_frozen", "before_test", "running", "complete"):
        assert i18n.has(f"stage.{stage}", lang)
    for letter in "SMART":
        assert i18n.has(f"smart.{letter}", lang)


def test_reason_and_risk_sentences_use_every_parameter() -> None:
    """No figure a code carries is silently dropped from its sentence (in English)."""
    for code, params in {**d.REASON_CODES, **d.RISK_CODES}.items():
        kind = "reason" if code in d.REASON_CODES else "risk"
        assert i18n.fields(i18n.EN[f"{kind}.{code}"]) == set(params), code
        assert set(params) <= set(PARAM_KINDS), code


def test_missing_key_is_an_error() -> None:
    with pytest.raises(i18n.MissingTranslation):
        i18n.text("reason.no_such_code", "fr")
    with pytest.raises(ValueError, match="lang"):
        i18n.text("title", "de", pilot="x")


@pytest.mark.parametrize(
    ("value", "en", "fr"),
    [
        (0.031, "+3.1%", f"+3,1{NB}%"),
        (-0.0042, "-0.4%", f"-0,4{NB}%"),
        (0.0, "0.0%", f"0,0{NB}%"),
        (None, "n/a", "n.d."),
        (float("nan"), "n/a", "n.d."),
    ],
)
def test_percent(value, en: str, fr: str) -> None:
    assert i18n.pct(value, "en") == en
    assert i18n.pct(value, "fr") == fr


@pytest.mark.parametrize(
    ("value", "currency", "en", "fr"),
    [
        (12345.6, "EUR", "€12,346", f"12{NNB}346{NB}€"),
        (-228000.0, "EUR", "-€228,000", f"-228{NNB}000{NB}€"),
        (42.5, "GBP", "£42.50", f"42,50{NB}£"),
        (1234567.0, "CHF", f"CHF{NB}1,234,567", f"1{NNB}234{NNB}567{NB}CHF"),
    ],
)
def test_money(value: float, currency: str, en: str, fr: str) -> None:
    assert i18n.money(value, currency, "en") == en
    assert i18n.money(value, currency, "fr") == fr


def test_numbers_p_values_and_dates() -> None:
    assert i18n.num(1234.5, "en", 1) == "1,234.5"
    assert i18n.num(1234.5, "fr", 1) == f"1{NNB}234,5"
    assert i18n.pvalue(0.0123, "fr") == "0,012"
    assert i18n.pvalue(0.0001, "en") == f"<{NB}0.001"
    assert i18n.fmt_date("2026-03-30", "en") == "30 March 2026"
    assert i18n.fmt_date("2026-08-17", "fr") == "17 août 2026"
    assert i18n.fmt_timestamp("2026-06-29T14:05:00+00:00", "fr") == "29 juin 2026 à 14:05 UTC"
    assert i18n.gate("GO on north", "fr") == "GO sur north"
    assert i18n.gate("a gate of the future", "fr") == "a gate of the future"


def test_french_punctuation_gets_no_break_spaces() -> None:
    assert i18n.text("title", "fr", pilot="p") == f"Rapport de décision{NB}: p"


def test_sentence_formats_each_parameter_by_name() -> None:
    f = Formatter("fr", "EUR", {("cash", "gross_margin_rate"): "absolute"})
    out = f.reason(
        "variant_preferred",
        {
            "arm": "cash",
            "other": "gift",
            "difference": 0.017,
            "low": 0.002,
            "high": 0.033,
            "p_value": 0.0004,
        },
    )
    assert out == (
        f"cash fait mieux que gift de +1,7{NB}% (entre +0,2{NB}% et +3,3{NB}%, p <{NB}0,001)."
    )
    out = f.reason(
        "guardrail_failed",
        {"arm": "cash", "metric": "gross_margin_rate", "bound": -0.016, "margin": 0.015},
    )
    assert f"-1,60{NB}pt" in out or "-1,60 pt" in out  # a rate's change: percentage points
    assert "1,50" in out
    assert "taux de marge brute" in out
    assert "n.d." in f.risk("loss_possible", {"arm": "gift", "p10_profit": None})


def _english_phrases() -> list[str]:
    """Every run of literal text of an English template longer than three words."""
    phrases = []
    for template in i18n.EN.values():
        for literal, *_ in string.Formatter().parse(template):
            for piece in re.split(r"[():;,.]", literal):
                piece = piece.strip()
                if len(piece.split()) > 3:
                    phrases.append(piece)
    return phrases


@pytest.mark.parametrize("verdict", d.VERDICTS)
def test_french_report_contains_no_english_sentence(verdict: str, make_doc) -> None:
    doc = make_doc(verdict, description=None)
    phrases = _english_phrases()
    assert len(phrases) > 100
    for out in (render_html(doc, "fr"), render_markdown(doc, "fr")):
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", out)).replace("\\", "")
        found = [phrase for phrase in phrases if phrase in text]
        assert not found, found


def test_english_report_says_the_english_phrases(make_doc) -> None:
    """The check above is not vacuous: the same phrases are found in the English report."""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", render_html(make_doc(), "en")))
    assert sum(phrase in text for phrase in _english_phrases()) > 40


def test_guardrail_metrics_are_named_in_words_in_both_languages():
    from loyalty_pilot.reports.sentences import Formatter

    params = {"arm": "cash", "metric": "gross_margin_rate", "bound": -0.001, "margin": 0.005}
    french = Formatter("fr", "EUR").reason("guardrail_passed", params)
    english = Formatter("en", "EUR").reason("guardrail_passed", params)
    assert "taux de marge brute" in french
    assert "gross margin rate" in english
    assert "gross_margin_rate" not in french + english
