"""HTML and Markdown: page one, every section, escaping, charts with missing figures."""

from __future__ import annotations

import html
import re

import pytest

from loyalty_pilot.reports import document as d
from loyalty_pilot.reports.render import md_escape, render_html, render_markdown
from loyalty_pilot.reports.view import build_view

XSS = "<script>alert(1)</script>"
SECTIONS = (
    "summary",
    "weekly",
    "uplift",
    "cost",
    "smart",
    "checks",
    "design",
    "assumptions",
    "rollout",
    "reproducibility",
)


def _text(page: str) -> str:
    """The visible text of an HTML page, whitespace collapsed, entities decoded."""
    page = re.sub(r"<style>.*?</style>|<svg.*?</svg>", " ", page, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_page_one(doc: d.DecisionDocument) -> None:
    page = render_html(doc, "en")
    assert '<div id="banner" class="banner go"' in page
    assert '<meta name="viewport"' in page
    text = _text(page)
    assert "GO Roll out cash." in text
    assert (
        "The uplift of cash lies between +1.2% and +4.8%, entirely above the threshold of +0.9%."
    ) in text
    assert "cash: between +1.2% and +4.8% more sales per store (best estimate +3.1%)." in text
    assert "gift: a change in sales per store between -0.4% and +3.1%" in text
    assert "€984,000 €1,230,000 €1,476,000" in text  # cost P10 / P50 / P90
    assert "Profit €166,050 €1,660,500 €3,154,950" in text
    top = [
        text.index(s)
        for s in (
            "gift could lose money at full rollout: -€228,000 in the pessimistic case.",
            "The interval for gift is wide, from -0.4% to +3.1%.",
            "cash builds up €255,000 of unredeemed points owed to customers.",
        )
    ]
    assert top == sorted(top)
    assert "Only 8 units per arm" not in text.split("Sales per week")[0]  # 4th risk: not on p.1


def test_every_section_and_the_footer(doc: d.DecisionDocument) -> None:
    page = render_html(doc, "en")
    for section in SECTIONS:
        assert f'id="{section}"' in page, section
    text = _text(page)
    for expected in (
        "The shaded band is the pilot period (30 March 2026 to 15 June 2026).",
        "Points expired",
        "Liability at the end",
        "Time-bound",
        "410 days",
        "✘ fail",
        "At this size the pilot only detects 1.4%, more than the break-even uplift of cash",
        "Low end of the pilot interval",
        "Next gate: GO on pilot.",
        "12 stores are held out",
        "3f9a1c3f9a1c",
        "9c1e779c1e77",
        "pilots/spring.yaml",
        "29 June 2026, 14:05 UTC",
        "and 10 more",
        "Guardrail on visits for cash: the worst plausible change, -1.1%, "
        "stays within the allowed 2.0%.",
        "basket size",
    ):
        assert expected in text, expected
    assert page.count("<svg") == 3
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    assert "<script" not in page


@pytest.mark.parametrize(
    ("verdict", "css", "words"),
    [
        ("NO-GO", "nogo", "NO-GO Do not roll out."),
        ("EXTEND", "extend", "EXTEND Run the pilot for 8 more weeks before deciding."),
    ],
)
def test_banner_of_each_verdict(make_doc, verdict: str, css: str, words: str) -> None:
    page = render_html(make_doc(verdict), "en")
    assert f'class="banner {css}"' in page
    assert words in _text(page)


def test_french_page_one(make_doc) -> None:
    text = _text(render_html(make_doc("EXTEND"), "fr"))
    nb = "\u00a0"
    assert "PROLONGER Poursuivre le pilote 8 semaines de plus avant de décider." in text
    assert (f"cash{nb}: entre +1,2{nb}% et +4,8{nb}% de ventes en plus par magasin") in text
    assert f"984\u202f000{nb}€" in text
    assert "Environ 8 semaines de plus devraient suffire pour trancher." in text


def test_markdown_carries_the_same_sections(doc: d.DecisionDocument) -> None:
    md = render_markdown(doc, "en")
    view = build_view(doc, "en", with_charts=False)
    for section in [view["summary"], *view["sections"], view["footer"]]:
        assert f"## {section['title']}" in md
    assert "> **GO** Roll out cash." in md
    assert "- cash: between +1.2% and +4.8% more sales per store" in md
    assert "| cash | Programme cost | €984,000 | €1,230,000 | €1,476,000 |" in md
    assert "- gift could lose money at full rollout" in md
    assert "|---|---|---:|---:|---:|" in md
    assert "<svg" not in md
    assert "  \n" not in md


def test_html_and_markdown_say_the_same_sentences(doc: d.DecisionDocument) -> None:
    view = build_view(doc, "fr", with_charts=False)
    page, md = _text(render_html(doc, "fr")), render_markdown(doc, "fr").replace("\\", "")
    for section in [view["summary"], *view["sections"]]:
        for block in section["blocks"]:
            for line in block.get("items", [block.get("text")]):
                if line:
                    assert line in page, line
                    assert line in md, line


def test_user_data_is_escaped_everywhere(xss_doc: d.DecisionDocument) -> None:
    page = render_html(xss_doc, "en")
    assert "<script" not in page.lower()
    assert "<img" not in page
    assert "<b>" not in page
    assert "<a " not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = _text(page)
    assert f"Roll out {XSS}." in text
    assert '<img src=x onerror="alert(2)">' in text
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in "".join(
        re.findall(r"<svg.*?</svg>", page, flags=re.S)
    )
    md = render_markdown(xss_doc, "en")
    assert not re.search(r"(?<!\\)<", md)  # every < of the user's data is escaped
    assert r"\<script\>alert(1)\</script\>" in md


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("sales_mean", "sales_mean"),
        ("-1.1%", "-1.1%"),
        ("- item", r"\- item"),
        ("# title", r"\# title"),
        ("1. first", r"1\. first"),
        ("a | b", r"a \| b"),
        ("_x_ *y*", r"\_x\_ \*y\*"),
        ("two\nlines", "two lines"),
        ("&amp;", r"\&amp;"),
    ],
)
def test_markdown_escape(raw: str, escaped: str) -> None:
    assert md_escape(raw) == escaped


def test_none_heavy_document_renders(sparse_doc: d.DecisionDocument) -> None:
    for lang in ("en", "fr"):
        page = render_html(sparse_doc, lang)
        md = render_markdown(sparse_doc, lang)
        for section in SECTIONS:
            assert f'id="{section}"' in page
        assert "<svg" not in page  # nothing to draw
        assert ("n/a" if lang == "en" else "n.d.") in md
    text = _text(render_html(sparse_doc, "en"))
    assert "No weekly series is available" in text
    assert "No rollout plan" in text
    assert "cash: the uplift could not be estimated (status ok)." in text


def test_charts_skip_missing_points(make_doc) -> None:
    doc = make_doc()
    forest = [*doc.forest, d.ForestRow("west", "region", "cash", None, None, None, True)]
    odd = d.DecisionDocument(**{**doc.__dict__, "forest": forest})
    page = render_html(odd, "fr")
    assert page.count("<svg") == 3
    assert (
        "n.d."
        in re.findall(r'<svg[^>]*aria-label="Effet par variante.*?</svg>', page, flags=re.S)[0]
    )


def test_chart_ids_are_unique_and_svg_is_clean(doc: d.DecisionDocument) -> None:
    page = render_html(doc, "en")
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    for svg in svgs:
        assert "<?xml" not in svg
        assert "<!DOCTYPE" not in svg
        assert "@font-face" not in svg
        for ref in re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', svg):
            assert (ref[0] or ref[1]) in ids
        assert len(svg) < 120_000


def test_the_level_of_simultaneous_intervals_is_said(doc):
    import dataclasses

    from loyalty_pilot.reports.render import render_markdown

    plain = render_markdown(doc, "en")
    assert "confidence each" not in plain  # not recorded: nothing said
    two_arms = dataclasses.replace(doc, interval_level=0.975)
    text = render_markdown(two_arms, "en")
    n = len(doc.arms)
    assert (
        f"Intervals at 97.5% confidence each, so that the {n} variants are covered together" in text
    )
    french = render_markdown(two_arms, "fr")
    assert "97,5\u00a0% chacun" in french
