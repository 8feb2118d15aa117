"""The HTML report in headless Chromium (Debian's package): no console error, the banner
is visible and every chart renders, on a desktop and on a phone. Screenshots are kept in
``tests/reports/artifacts/``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loyalty_pilot.reports.render import render_html

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.mark.parametrize(
    ("name", "verdict", "lang", "width", "xss"),
    [
        ("go-en-desktop", "GO", "en", 1280, False),
        ("nogo-fr-phone", "NO-GO", "fr", 375, False),
        ("xss-en-phone", "GO", "en", 390, True),
    ],
)
def test_report_in_chromium(
    browser,
    make_doc,
    xss_doc,
    tmp_path: Path,
    name: str,
    verdict: str,
    lang: str,
    width: int,
    xss: bool,
) -> None:
    doc = xss_doc if xss else make_doc(verdict)
    page_file = tmp_path / f"{name}.html"
    page_file.write_text(render_html(doc, lang), encoding="utf-8")
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda dlg: (dialogs.append(dlg.message), dlg.dismiss()))
    page.goto(page_file.as_uri(), wait_until="load")
    try:
        assert errors == []
        assert dialogs == []  # no alert() ever ran
        assert requests == [page_file.as_uri()]  # self-contained: nothing else is loaded
        banner = page.locator("#banner")
        assert banner.is_visible()
        box = banner.bounding_box()
        assert box
        assert box["width"] > 200
        assert box["height"] > 40
        charts = page.locator("svg.chart")
        assert charts.count() == 3
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box, i
            assert box["width"] > 200, i
            assert box["height"] > 80, i
            assert box["x"] + box["width"] <= width
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width  # no sideways scrolling of the page (tables scroll inside)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=True)
        page.close()
