"""write_report is all or nothing; csv_safe defuses spreadsheet formulas; PDF via WeasyPrint."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from loyalty_pilot.reports import document as d
from loyalty_pilot.reports import render
from loyalty_pilot.reports.render import csv_safe, write_report


def test_write_report_writes_each_format(doc: d.DecisionDocument, tmp_path: Path) -> None:
    paths = write_report(doc, tmp_path / "out", lang="fr")
    assert set(paths) == {"html", "md", "json"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "report.html",
        "report.json",
        "report.md",
    ]
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["pilot"] == doc.pilot
    assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (paths["md"].stat().st_mode & 0o777) == 0o644


def test_write_report_refuses_unknown_format_or_lang(doc, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="formats"):
        write_report(doc, tmp_path, formats=("html", "docx"))
    with pytest.raises(ValueError, match="lang"):
        write_report(doc, tmp_path, lang="de")
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_way_leaves_no_partial_file(doc, tmp_path: Path, monkeypatch) -> None:
    old = tmp_path / "report.html"
    old.write_text("previous report", encoding="utf-8")
    real = render._write_text
    calls = []

    def flaky(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 2:  # the second file dies half-written
            path.write_text(text[: len(text) // 2], encoding="utf-8")
            raise OSError("disk full")
        real(path, text)

    monkeypatch.setattr(render, "_write_text", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_report(doc, tmp_path, formats=("html", "md", "json"))
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert old.read_text(encoding="utf-8") == "previous report"


def test_render_error_writes_nothing(doc, tmp_path: Path) -> None:
    bad = d.DecisionDocument(**{**doc.__dict__, "risks": [d.Risk("meteor", 1.0)]})
    with pytest.raises(Exception, match="meteor"):
        write_report(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+33 6 12", "'+33 6 12"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("store-01", "store-01"),
        ("", ""),
        (None, ""),
        (-3.5, "-3.5"),
        (12, "12"),
        (True, "True"),
    ],
)
def test_csv_safe(value, expected: str) -> None:
    assert csv_safe(value) == expected


def test_pdf_without_weasyprint_says_what_to_install(doc, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails
    with pytest.raises(RuntimeError, match=r"install the pdf extra: pip install '\.\[pdf\]'"):
        render.render_pdf(doc, "en", tmp_path / "r.pdf")


def _weasyprint_works() -> bool:
    if importlib.util.find_spec("weasyprint") is None:
        return False
    try:
        import weasyprint  # noqa: F401
    except OSError:  # installed without Pango
        return False
    return True


@pytest.mark.skipif(not _weasyprint_works(), reason="weasyprint (the pdf extra) not installed")
def test_pdf(doc: d.DecisionDocument, tmp_path: Path) -> None:
    paths = write_report(doc, tmp_path, formats=("pdf", "json"), lang="fr")
    data = paths["pdf"].read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 20_000
