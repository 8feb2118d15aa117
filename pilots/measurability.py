"""Guardrails the pilot's data can measure, checked when the pilot is designed.

A guardrail that cannot be measured comes out of every evaluation as "unknown", and an
unknown guardrail blocks a GO for ever (:mod:`loyalty_pilot.pilots.decide`). So
``design`` and ``assign`` refuse it at once, naming the YAML key
(``metrics.guardrails.<i>.metric`` at its ``file:line:column``) and what is missing:

- ``gross_margin_rate`` is ``margin / sales`` of the baskets: it needs the baskets'
  ``margin`` column, filled on at least one basket of the pre-period (a baskets file
  ingested without that column leaves it empty);
- a customer pilot (``unit: customer``) is evaluated on one row per customer with its
  ``sales`` and ``visits`` (:mod:`loyalty_pilot.pilots.customer_analysis`): the
  store-level guardrails (``gross_margin_rate``, ``programme_cost_share``,
  ``returns_rate``, ``basket_size``, ``active_customers``) have no column there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.pilots.pilotspec import PilotFile

__all__ = ["CUSTOMER_GUARDRAILS", "check_measurable", "unmeasurable"]

#: The guardrails a customer pilot measures (columns of the customer-level table).
CUSTOMER_GUARDRAILS = ("sales", "visits")


def _has_margin(con: duckdb.DuckDBPyConnection, pf: PilotFile) -> bool:
    """Whether a basket of the pre-period has a margin."""
    period = pf.spec.pre_period
    row = con.execute(
        "SELECT count(margin) FROM baskets WHERE date BETWEEN ? AND ?",
        [period.start, period.end],
    ).fetchone()
    return bool(row and row[0])


def unmeasurable(con: duckdb.DuckDBPyConnection, pf: PilotFile) -> list[tuple[int, str]]:
    """``(index in metrics.guardrails, why)`` of every guardrail the data cannot measure."""
    spec = pf.spec
    out: list[tuple[int, str]] = []
    margin: bool | None = None  # read once, only when a guardrail needs it
    for index, rule in enumerate(spec.metrics.guardrails):
        metric = rule.metric
        if spec.unit == "customer" and metric not in CUSTOMER_GUARDRAILS:
            out.append(
                (
                    index,
                    f"{metric} cannot be measured in a customer pilot (unit: customer): the "
                    f"customer-level table has no {metric} column (it has "
                    f"{' and '.join(CUSTOMER_GUARDRAILS)}); remove this guardrail or pilot "
                    "by store",
                )
            )
            continue
        if metric == "gross_margin_rate":
            if margin is None:
                margin = _has_margin(con, pf)
            if not margin:
                out.append(
                    (
                        index,
                        "gross_margin_rate cannot be measured: the baskets have no margin "
                        f"column (no basket from {spec.pre_period.start} to "
                        f"{spec.pre_period.end} has a margin); ingest baskets with a margin "
                        "column or remove this guardrail",
                    )
                )
    return out


def check_measurable(con: duckdb.DuckDBPyConnection, pf: PilotFile) -> None:
    """A SpecError at the first guardrail the data cannot measure (see the module)."""
    problems = unmeasurable(con, pf)
    if problems:
        index, reason = problems[0]
        raise pf.error(("metrics", "guardrails", index, "metric"), reason)
