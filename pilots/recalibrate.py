"""``recalibrate PILOT.yaml``: the pilot's evidence updates each programme's behavioural
assumptions, and the chain-wide rollout is projected again with them.

For each programme arm: the primary comparison with the control (the log-scale
estimate and its standard error) is the observation; the programme file's own response
is the prior (never an earlier recalibration, so the same evidence is not counted
twice); a store pilot measures the whole store's sales, so its uplift is divided by the
members' share of revenue before it updates a members' response
(:func:`loyalty_pilot.simulator.recalibration.recalibrate`). The posterior is saved as
the programme's next assumption set in the workspace (versioned, insert-only), written
out as programme YAML when asked, and the full-chain projection is rerun with it:
profit, ROI and the break-even uplift with their uncertainty, before and after.

Only ``loyalty-pilot recalibrate`` saves: ``decide`` and ``report`` recalibrate with
``save=False`` (the same figures, the workspace's assumption sets left as they are).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyalty_pilot.pilots.errors import UserError

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.pilots.pilotspec import PilotFile
    from loyalty_pilot.pilots.registry import FrozenAssignment
    from loyalty_pilot.simulator.projection import Projection
    from loyalty_pilot.simulator.recalibration import Recalibration


@dataclass(frozen=True, eq=False)
class ArmRecalibration:
    """One programme arm: the evidence, the updated assumptions and both projections."""

    arm: str
    programme: str
    comparison: dict[str, Any]
    members_share: float
    recalibration: Recalibration
    version: int | None  # the saved assumption set; None when not saved
    before: Projection
    after: Projection
    yaml_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        def summary(p: Projection) -> dict[str, Any]:
            return {
                "profit": p.profit.to_dict(),
                "roi": p.roi.to_dict(),
                "break_even_uplift": p.to_dict().get("break_even_uplift"),
                "cost": p.cost,
            }

        return {
            "arm": self.arm,
            "programme": self.programme,
            "evidence": {
                k: self.comparison.get(k)
                for k in ("relative", "rel_ci_low", "rel_ci_high", "p_value", "method", "scale")
            },
            "members_share": self.members_share,
            "recalibration": self.recalibration.to_dict(),
            "assumption_set_version": self.version,
            "projection_before": summary(self.before),
            "projection_after": summary(self.after),
            "yaml": None if self.yaml_path is None else str(self.yaml_path),
        }


def recalibrate_pilot(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    frozen: FrozenAssignment,
    *,
    out: Path | None = None,
    horizon_months: int = 12,
    draws: int = 1000,
    seed: int = 0,
    comparisons: list[dict[str, Any]] | None = None,
    save: bool = True,
) -> list[ArmRecalibration]:
    """Recalibrate every programme arm of the frozen pilot (module docstring).

    ``comparisons``: the primary comparisons when the caller already has them (their
    ``to_dict()``); otherwise the pilot is evaluated here. ``save``: save each posterior
    as the programme's next assumption set (``con`` must then be writable); with
    ``save=False`` nothing is written to the workspace (``out`` still gets the YAML
    files, their comment saying the set was not saved).
    """
    from loyalty_pilot.pilots.assumptions import observation_from_comparison
    from loyalty_pilot.pilots.panels import customer_rfm
    from loyalty_pilot.pilots.programmes import workspace_baskets
    from loyalty_pilot.simulator.projection import fit_retention, project
    from loyalty_pilot.simulator.recalibration import (
        members_share,
        recalibrate,
        recalibrated_programme,
    )

    kinds = {"sales": "sales", "visits": "visits", "basket_size": "basket"}
    kind = kinds.get(pf.spec.metrics.primary)
    if kind is None:
        raise pf.error(
            ("metrics", "primary"),
            f"recalibration learns from sales, visits or basket_size, not "
            f"{pf.spec.metrics.primary}",
        )
    if comparisons is None:
        comparisons = _primary_comparisons(con, pf, frozen)
    by_arm = {c["arm"]: c for c in comparisons if c.get("baseline") == pf.control()}
    baskets = workspace_baskets(con)
    table = customer_rfm(con)
    rfm = dict(zip(table["customer_id"].astype(str), table["segment"].astype(str), strict=True))
    retention = fit_retention(baskets, horizon_months=horizon_months, segments=rfm)
    results = []
    for arm in pf.variants():
        if arm not in by_arm:
            raise UserError(f"{pf.path}: no comparison of {arm} with the control to learn from")
        programme = pf.programmes[arm]
        segments = rfm if programme.response.segments else None
        kwargs = {
            "horizon_months": horizon_months, "draws": draws, "seed": seed, "segments": segments,
            "retention": retention,
        }  # fmt: skip
        before = project(baskets, programme, **kwargs)
        share = 1.0 if frozen.unit_kind == "customer" else members_share(before)
        observation = observation_from_comparison(by_arm[arm])
        update = recalibrate(
            programme.response, **{kind: observation}, members_share=share
        )  # fmt: skip
        after = project(baskets, recalibrated_programme(programme, update), **kwargs)
        results.append(
            ArmRecalibration(arm, programme.programme, by_arm[arm], share, update, None,
                             before, after)
        )  # fmt: skip
    if save:
        return save_recalibrations(con, pf, frozen, results, out=out)
    if out is not None:
        results = [_write_unsaved(pf, frozen, r, out) for r in results]
    return results


def _source(pf: PilotFile, frozen: FrozenAssignment) -> str:
    return f"pilot {pf.spec.pilot} v{frozen.version}"


def _yaml_path(out: Path, programme: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{programme}.recalibrated.yaml"


def _write_unsaved(
    pf: PilotFile, frozen: FrozenAssignment, r: ArmRecalibration, out: Path
) -> ArmRecalibration:
    from loyalty_pilot.pilots.assumptions import write_programme_yaml

    comment = (
        f"{r.programme}: response assumptions recalibrated by {_source(pf, frozen)}, "
        "not saved in the workspace (`loyalty-pilot recalibrate` saves them)"
    )
    path = write_programme_yaml(
        pf.programmes[r.arm], r.recalibration.posterior, _yaml_path(out, r.programme),
        source_comment=comment,
    )  # fmt: skip
    return replace(r, yaml_path=path)


def save_recalibrations(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    frozen: FrozenAssignment,
    results: list[ArmRecalibration],
    *,
    out: Path | None = None,
) -> list[ArmRecalibration]:
    """Save each arm's posterior as its programme's next assumption set (the same
    response as the latest set: that version, nothing written) and, with ``out``, write
    it as programme YAML; the results with their versions and files."""
    from loyalty_pilot.pilots.assumptions import export_assumptions, save_assumptions

    saved = []
    for r in results:
        version = save_assumptions(con, r.programme, r.recalibration, _source(pf, frozen))
        path = None
        if out is not None:
            _, path = export_assumptions(
                con, pf.programmes[r.arm], _yaml_path(out, r.programme), version=version
            )
        saved.append(replace(r, version=version, yaml_path=path))
    return saved


def _primary_comparisons(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, frozen: FrozenAssignment
) -> list[dict[str, Any]]:
    """The primary comparisons of each variant with the control, as JSON-ready dicts."""
    if frozen.unit_kind == "customer":
        from loyalty_pilot.pilots.customer_analysis import analyse_customer_pilot

        evaluation = analyse_customer_pilot(con, pf, frozen).primary
    else:
        from loyalty_pilot.pilots.pilot_eval import evaluate_frozen

        method = pf.spec.evaluation.method
        if method in ("ri", "synthetic_control"):
            method = "did"  # the update needs a standard error
        evaluation = evaluate_frozen(con, pf, frozen, method=method).evaluation
    return [c.to_dict() for c in evaluation.comparisons]


def recalibration_lines(results: list[ArmRecalibration]) -> list[str]:
    """Before / after, per arm: assumptions and the full-rollout profit."""
    lines = []
    for r in results:
        c = r.comparison
        post = r.recalibration.posterior
        prior = r.recalibration.prior
        lines.append(
            f"{r.arm} ({r.programme}): pilot {c['relative']:+.1%} sales "
            f"[{c['rel_ci_low']:+.1%}, {c['rel_ci_high']:+.1%}]; members' share of sales "
            f"{r.members_share:.0%}; weight of the pilot {r.recalibration.weight:.0%}"
        )
        for name in ("visit_uplift", "basket_uplift"):
            a, b = getattr(prior, name), getattr(post, name)
            lines.append(
                f"  {name}: {a.mean:+.2%} (sd {a.sd:.2%}) -> {b.mean:+.2%} (sd {b.sd:.2%})"
            )
        for label, p in (("before", r.before), ("after", r.after)):
            q = p.profit
            lines.append(
                f"  full rollout profit P10 / P50 / P90 {label}: "
                f"{q.p10:,.0f} / {q.p50:,.0f} / {q.p90:,.0f}"
            )
        where = f"; written to {r.yaml_path}" if r.yaml_path else ""
        if r.version is None:
            lines.append(
                f"  not saved in the workspace (`loyalty-pilot recalibrate` saves it){where}"
            )
        else:
            lines.append(f"  saved as assumption set v{r.version} of {r.programme}{where}")
    return lines
