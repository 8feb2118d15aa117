"""Programme files in the workflow: load them, replay them on the workspace, compare them.

The economics live in ``loyalty_pilot.simulator``; this module reads the files and the
workspace and lays the results side by side for the command line and its JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.specfile import SpecError, load_programme

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from loyalty_pilot.simulator.programme import Programme
    from loyalty_pilot.simulator.replay import ReplayResult
    from loyalty_pilot.simulator.smart import SmartCheck


@dataclass(frozen=True, eq=False)
class VariantReport:
    """One programme file, its replay on the chain's baskets (if any) and its SMART check."""

    path: str
    programme: Programme
    replay: ReplayResult | None
    smart: SmartCheck

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "programme": self.programme.programme,
            "file": self.path,
            "description": self.programme.description,
            "currency": self.programme.currency,
            "smart": self.smart.to_dict(),
        }
        if self.replay is not None:
            totals = dict(self.replay.totals)
            out.update(
                {
                    "start": self.replay.start.isoformat(),
                    "end": self.replay.end.isoformat(),
                    "seed": self.replay.seed,
                    **{k: _clean(v) for k, v in totals.items()},
                }
            )
        return out


def example_programmes() -> list[Path]:
    """The example programme files shipped with the package (examples/programmes)."""
    folder = resources.files("loyalty_pilot.examples").joinpath("programmes")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_programmes(paths: list[Path]) -> list[Programme]:
    """Load every file; every mistake of every file is reported at once (SpecError)."""
    programmes: list[Programme] = []
    issues = []
    for path in paths:
        try:
            programmes.append(load_programme(path))
        except SpecError as exc:
            issues.extend(exc.errors)
    if issues:
        raise SpecError(issues)
    names = [p.programme for p in programmes]
    for name in names:
        if names.count(name) > 1:
            raise UserError(f"programme name {name!r} is used by two files; names must be unique")
    return programmes


def workspace_baskets(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The workspace's baskets as the replay wants them."""
    return con.execute(
        "SELECT customer_id, basket_id, ts, date, amount, department FROM baskets "
        "ORDER BY customer_id, ts, basket_id"
    ).df()


def evaluate(
    paths: list[Path], baskets: pd.DataFrame | None, *, seed: int = 0
) -> list[VariantReport]:
    """Load, replay on ``baskets`` (when given) and SMART-check every programme."""
    from loyalty_pilot.simulator.replay import replay
    from loyalty_pilot.simulator.smart import smart_check

    programmes = load_programmes(paths)
    reports = []
    for path, programme in zip(paths, programmes, strict=True):
        result = None
        if baskets is not None and len(baskets):
            try:
                result = replay(baskets, programme, seed=seed)
            except ValueError as exc:
                raise UserError(f"{path}: {exc}") from None
        reports.append(VariantReport(str(path), programme, result, smart_check(programme, result)))
    return reports


ROWS: tuple[tuple[str, str], ...] = (
    ("members", "members"),
    ("cost", "cost"),
    ("cost_share", "cost / revenue"),
    ("rewards_issued", "rewards issued"),
    ("rewards_value", "rewards at cost"),
    ("rewards_perceived", "rewards perceived"),
    ("breakage", "breakage"),
    ("discount_cost", "discounts"),
    ("liability_end", "liability at end"),
)


def comparison_table(reports: list[VariantReport]) -> str:
    """Variants side by side: replayed figures and the SMART scorecard."""
    headers = ["", *[r.programme.programme for r in reports]]
    rows: list[list[str]] = []
    if any(r.replay is not None for r in reports):
        for key, label in ROWS:
            rows.append([label, *[_fmt(key, r.replay.totals[key]) if r.replay else "-"
                                  for r in reports]])  # fmt: skip
    for index, letter in enumerate("SMART"):
        cells = []
        for report in reports:
            item = report.smart.letters[index]
            verdict = {True: "pass", False: "FAIL", None: "n/a"}[item.passed]
            cells.append(f"{_figure(item.figure, item.unit)} {verdict}")
        rows.append([f"{letter} {report_name(letter)}", *cells])
    rows.append(["SMART verdict", *[r.smart.verdict for r in reports]])
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    for row in rows:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def report_name(letter: str) -> str:
    from loyalty_pilot.simulator.smart import NAMES

    return NAMES[letter]


def _fmt(key: str, value: float) -> str:
    if key == "cost_share":
        return f"{value:.3%}" if math.isfinite(value) else "-"
    if key in ("members", "rewards_issued"):
        return f"{value:,.0f}"
    return f"{value:,.0f}"


def _figure(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "never" if value == math.inf else "-"
    if unit == "cost / revenue":
        return f"{value:.2%}"
    if unit.startswith("share"):
        return f"{value:.1%}"
    if unit.startswith("days") or unit == "rules":
        return f"{value:.0f}"
    return f"{value:.2f}"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
