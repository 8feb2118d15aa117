"""The building blocks of a report section (paragraph, heading, list, table, chart)."""

from __future__ import annotations

from typing import Any

from .sentences import Formatter

Block = dict[str, Any]


def p(text: str) -> Block:
    """A paragraph."""
    return {"kind": "p", "text": text}


def h3(text: str) -> Block:
    """A sub-heading."""
    return {"kind": "h3", "text": text}


def bullets(items: list[str]) -> Block:
    """A bulleted list."""
    return {"kind": "list", "items": items}


def table(head: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> Block:
    """A table; the columns in ``numeric`` are aligned right."""
    return {
        "kind": "table",
        "head": head,
        "rows": rows,
        "align": ["num" if i in numeric else "txt" for i in range(len(head))],
    }


def chart(svg: str | None) -> list[Block]:
    """A chart block (an inline SVG made by :mod:`reports.charts`), or nothing."""
    return [{"kind": "chart", "svg": svg}] if svg else []


def interval(low: Any, high: Any, f: Formatter) -> str:
    """``[+1.2%, +4.8%]`` / ``[+1,2 % ; +4,8 %]`` (French: the comma is the decimal mark)."""
    if low is None and high is None:
        return f.na()
    sep = " ; " if f.lang == "fr" else ", "
    return f"[{f.pct(low)}{sep}{f.pct(high)}]"
