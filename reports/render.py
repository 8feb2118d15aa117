"""Render a decision document as HTML, Markdown, JSON or PDF, and write report files.

- HTML: one self-contained file (inline CSS and SVG charts, no script, no URL), jinja2
  with autoescape and StrictUndefined: every name from the user's data is escaped.
- Markdown: the same blocks as the HTML for e-mail (no charts); every value is escaped
  for Markdown by the template environment's ``finalize``.
- JSON: :meth:`DecisionDocument.to_dict`, validated against :func:`json_schema`.
- PDF: WeasyPrint from the HTML (the ``pdf`` extra, which needs Pango).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2

from . import i18n
from .document import DecisionDocument
from .schema import json_schema, validate
from .view import build_view

FORMATS = ("html", "md", "json", "pdf")
LANGS = i18n.LANGS
PDF_HINT = "install the pdf extra: pip install '.[pdf]' (needs Pango)"
TEMPLATES = Path(__file__).parent / "templates"
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")

__all__ = [
    "FORMATS",
    "LANGS",
    "csv_safe",
    "json_schema",
    "render_html",
    "render_json",
    "render_markdown",
    "render_pdf",
    "validate",
    "write_report",
]


class RawMarkdown(str):
    """Template text that must not be escaped (table rules)."""


def md_escape(value: Any) -> str:
    """A value as literal Markdown text, on one line, with as few backslashes as it takes:
    inline markup (``* _ [ ] < > | ` \\``, entities) and block starts (``#``, ``- ``,
    ``+ ``, ``1. ``) are escaped; ``-1.1%`` or ``sales_mean`` stay as they are."""
    if isinstance(value, RawMarkdown):
        return str(value)
    text = re.sub(r"[ \t\r\n\f\v]+", " ", str(value)).strip()  # keeps no-break spaces
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = re.sub(r"(?<![\w\\])_|_(?!\w)", r"\\_", text)
    text = re.sub(r"&(?=#?\w+;)", r"\\&", text)
    if re.match(r"#|[-+](\s|$)", text):
        return "\\" + text
    return re.sub(r"^(\d+)([.)])(?=\s|$)", r"\1\\\2", text)


@functools.cache
def _environment(kind: str) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(TEMPLATES))
    if kind == "html":
        return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env = jinja2.Environment(
        loader=loader,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        finalize=md_escape,
        keep_trailing_newline=True,
    )
    env.globals["raw"] = RawMarkdown
    return env


def render_html(doc: DecisionDocument, lang: str = "en") -> str:
    """The report as one self-contained HTML page."""
    view = build_view(doc, lang, with_charts=True)
    return _environment("html").get_template("report.html.j2").render(view=view)


def render_markdown(doc: DecisionDocument, lang: str = "en") -> str:
    """The report as Markdown (same content as the HTML, without the charts)."""
    view = build_view(doc, lang, with_charts=False)
    text = _environment("md").get_template("report.md.j2").render(view=view)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_json(doc: DecisionDocument) -> str:
    """The document as JSON, validated against the schema (ValueError naming the path)."""
    data = doc.to_dict()
    validate(data)
    return json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _refuse_urls(url: str, *args: Any, **kwargs: Any) -> Any:
    raise ValueError(f"the report loads nothing from outside: {url}")


def render_pdf(doc: DecisionDocument, lang: str, path: str | os.PathLike[str]) -> None:
    """The HTML report printed to PDF at ``path`` by WeasyPrint (the ``pdf`` extra)."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise RuntimeError(f"{PDF_HINT}: {exc}") from exc
    html = render_html(doc, lang)
    weasyprint.HTML(string=html, url_fetcher=_refuse_urls).write_pdf(str(path))


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula: text starting with ``= + - @``, a
    tab or a line break gets a leading ``'``. Numbers are written as they are."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_CSV_TRIGGERS) else text


def _render(doc: DecisionDocument, fmt: str, lang: str) -> str:
    if fmt == "html":
        return render_html(doc, lang)
    if fmt == "md":
        return render_markdown(doc, lang)
    return render_json(doc)


def write_report(
    doc: DecisionDocument,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = ("html", "md", "json"),
    lang: str = "en",
    stem: str = "report",
) -> dict[str, Path]:
    """Write ``{stem}.{format}`` files in ``out_dir``; returns format -> path.

    All or nothing: every format is rendered first, each into a temporary file in
    ``out_dir``, and only when all are complete are they renamed into place (an atomic
    replace per file). On any error the temporary files are removed and the previous
    reports, if any, are left untouched.
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats == {unknown or formats}, each must be one of {FORMATS}")
    i18n.check_lang(lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {fmt: _render(doc, fmt, lang) for fmt in formats if fmt != "pdf"}
    pending: dict[str, Path] = {}
    try:
        for fmt in formats:
            handle, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".{fmt}.tmp", dir=out)
            os.close(handle)
            pending[fmt] = Path(name)
            os.chmod(name, 0o644)  # mkstemp makes 0600; a report is for reading
            if fmt == "pdf":
                render_pdf(doc, lang, name)
            else:
                _write_text(Path(name), texts[fmt])
        final = {fmt: out / f"{stem}.{fmt}" for fmt in formats}
        for fmt in formats:
            os.replace(pending[fmt], final[fmt])
            del pending[fmt]
        return final
    finally:
        for leftover in pending.values():
            with contextlib.suppress(OSError):
                leftover.unlink()


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
