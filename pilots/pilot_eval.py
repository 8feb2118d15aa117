"""``evaluate PILOT.yaml``: the frozen pilot evaluated on the workspace.

The assignment comes from the registry (the latest frozen version), never from a new
draw. The panel runs from the first day of the pre-period to the last day of the test
period (or of the data, when the test is still running). Stores randomized in whole
regions (``cluster``, ``synthetic_region``) are analysed by region, the level at which
they were randomized. Randomization inference re-draws the frozen design's own mechanism:
within strata, within matched tuples (the paired design), whole regions, or
rerandomization's balanced draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.pilot_data import REGION_DESIGNS

if TYPE_CHECKING:
    import duckdb

    from loyalty_pilot.experiments.evaluate import Evaluation
    from loyalty_pilot.pilots.pilotspec import PilotFile
    from loyalty_pilot.pilots.registry import FrozenAssignment

RI_DRAWS = 10_000


@dataclass(frozen=True)
class PilotEvaluation:
    """The evaluation and where it stands (weeks of the test period in the data)."""

    evaluation: Evaluation
    frozen_version: int
    test_start: date
    test_end: date
    weeks_observed: int
    weeks_planned: int
    analysis_unit: str

    def to_dict(self) -> dict[str, Any]:
        out = self.evaluation.to_dict()
        out["pilot"] = {
            "version": self.frozen_version,
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "weeks_observed": self.weeks_observed,
            "weeks_planned": self.weeks_planned,
            "analysis_unit": self.analysis_unit,
        }
        return out


def test_end(pf: PilotFile) -> date:
    period = pf.spec.test_period
    return period.start + timedelta(weeks=period.weeks, days=-1)


def rerandomized_draws(
    frozen: FrozenAssignment,
    arms: tuple[str, ...],
    *,
    n_draws: int,
    seed: int,
    max_tries: int = 2_000_000,
) -> Any:
    """Rerandomization's own re-draws for each comparison of ``arm`` with the control.

    Conditional on the other arms' units, the arm's and the control's labels are permuted
    among their units (within the frozen blocks, when the design was stratified) and a
    draw is kept when the whole assignment passes the frozen balance criterion: the joint
    Mahalanobis statistic over every eligible unit's covariates at most the frozen
    threshold, exactly as :func:`experiments.assignment.assign` accepted the real one.
    """
    from loyalty_pilot.experiments.balance import joint_mahalanobis, whiten

    covariates = pd.DataFrame(frozen.spec["covariates"])
    covariates.index = covariates.index.astype(str)
    match_on = list(frozen.spec.get("design", {}).get("match_on") or ["level", "trend"])
    threshold = float(frozen.spec["assignment_details"]["threshold"])
    z = whiten(covariates[match_on].to_numpy(dtype=float))
    frame = frozen.units.assign(unit=frozen.units["unit"].astype(str)).set_index("unit")
    code_of = {name: k for k, name in enumerate(arms)}
    observed = np.full(len(covariates), -1, dtype=np.int8)
    position = covariates.index.get_indexer(frame.index)
    observed[position] = frame["arm"].map(code_of).to_numpy()
    blocks = frame["block"].fillna("").astype(str).reindex(covariates.index).to_numpy()

    def draws(arm: str, comparison_units: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([seed, 0xE1, code_of[arm]])
        where = covariates.index.get_indexer([str(u) for u in comparison_units])
        labels = observed[where]
        block_codes = pd.factorize(blocks[where])[0]
        by_block = np.argsort(block_codes, kind="stable")
        kept: list[np.ndarray] = []
        tried = 0
        batch = max(100, min(4 * n_draws, 20_000_000 // max(len(observed), 1)))
        while sum(len(k) for k in kept) < n_draws and tried < max_tries:
            # positions sorted by (block, random key) receive the labels sorted by block:
            # a uniform permutation of the labels within every block
            keys = rng.random((batch, len(where))) + block_codes[None, :]
            order = np.argsort(keys, axis=1)
            permuted = np.empty((batch, len(where)), dtype=np.int8)
            np.put_along_axis(permuted, order, np.tile(labels[by_block], (batch, 1)), axis=1)
            codes = np.tile(observed, (batch, 1))
            codes[:, where] = permuted
            tried += batch
            accepted = joint_mahalanobis(codes, z, len(arms)) <= threshold * (1 + 1e-12)
            kept.append((codes[accepted][:, where] == code_of[arm]).astype(float))
        matrix = np.concatenate(kept)[:n_draws]
        if len(matrix) == 0:
            raise UserError(
                f"no re-draw of {arm} against the control passes the frozen balance criterion "
                f"in {tried:,} tries"
            )
        return matrix

    return draws


def evaluate_frozen(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    frozen: FrozenAssignment,
    *,
    method: str | None = None,
    scale: str | None = None,
    seed: int = 0,
    n_draws: int = RI_DRAWS,
) -> PilotEvaluation:
    """Evaluate ``frozen`` (a version of the pilot in ``pf``) on the workspace's data."""
    from loyalty_pilot.experiments.evaluate import evaluate
    from loyalty_pilot.experiments.panel import PanelError
    from loyalty_pilot.pilots.panels import store_week_panel
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS

    spec = pf.spec
    method = method or spec.evaluation.method
    scale = scale or spec.evaluation.scale
    _first, last = con.execute("SELECT min(date), max(date) FROM baskets").fetchone()
    start = spec.test_period.start
    end = test_end(pf)
    if last is None or last < start:
        raise UserError(
            f"{pf.path}: no data in the test period yet (it starts on {start}; the data ends "
            f"on {last})"
        )
    end_seen = min(end, last)
    weeks_seen = (end_seen - start).days // 7 + 1
    if frozen.unit_kind == "customer":
        raise UserError(
            f"{pf.path}: unit customer is evaluated with the customer-level tests "
            "(`evaluate --method welch|cuped|proportion`, a later issue); store and region "
            "pilots are evaluated here"
        )
    column = METRIC_COLUMNS[spec.metrics.primary]
    panel = store_week_panel(con, start=spec.pre_period.start, end=end_seen)
    panel["store_id"] = panel["store_id"].astype(str)
    units = frozen.units.assign(unit=frozen.units["unit"].astype(str)).set_index("unit")
    # stores randomized in whole regions are frozen store by store with their region as
    # block, and analysed region by region
    by_region = spec.unit == "region" or spec.design.method in REGION_DESIGNS
    panel = panel[panel["store_id"].isin(units.index)].copy()
    if by_region:
        panel["region"] = units["block"].reindex(panel["store_id"]).astype(str).to_numpy()
        panel = _regions(panel, column)
        regions = units.assign(region=units["block"].astype(str))
        assignment = regions.groupby("region")["arm"].first()
        key = "region"
    else:
        assignment = units["arm"]
        key = "store_id"
    kwargs: dict[str, Any] = {}
    if method == "ri":
        kwargs.update(_ri_design(pf, frozen, units, by_region, n_draws, seed))
    control = pf.control()
    try:
        evaluation = evaluate(
            panel,
            assignment,
            unit=key,
            period="week",
            outcome=column,
            start=np.datetime64(start, "ns"),
            method=method,
            control=control,
            alpha=spec.decision.alpha,
            rng=seed,
            scale=scale,
            n_draws=n_draws,
            **kwargs,
        )
    except (PanelError, ValueError) as exc:
        raise UserError(f"{pf.path}: {exc}") from None
    return PilotEvaluation(
        evaluation, frozen.version, start, end, weeks_seen, spec.test_period.weeks,
        "region" if by_region else "store",
    )  # fmt: skip


def _regions(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    """Region x week sums of the pilot's stores (ratio metrics recomputed from sums)."""
    sums = panel.groupby(["region", "week"], as_index=False)[
        ["sales", "baskets", "active_customers"]
    ].sum()
    sums["avg_basket"] = sums["sales"] / sums["baskets"].where(sums["baskets"] > 0)
    return sums


def _ri_design(
    pf: PilotFile,
    frozen: FrozenAssignment,
    units: pd.DataFrame,
    by_region: bool,
    n_draws: int,
    seed: int,
) -> dict[str, Any]:
    """How randomization inference re-draws the frozen design."""
    method = pf.spec.design.method
    if by_region or method == "complete":
        return {"design": "complete"}
    if method == "stratified":
        return {"design": "stratified", "strata": units["block"].astype(str).to_dict()}
    if method == "matched":
        return {"design": "paired", "pairs": units["block"].astype(str).to_dict()}
    if method == "rerandomized":
        if not frozen.spec.get("covariates"):
            raise UserError(
                f"{pf.path}: frozen version {frozen.version} has no covariates for "
                "rerandomization inference; re-freeze with --new-version"
            )
        arms = (pf.control(), *pf.variants())
        return {"ri_draws": rerandomized_draws(frozen, arms, n_draws=n_draws, seed=seed)}
    return {"design": "complete"}
