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


@dataclass(frozen=True)
class PilotPanel:
    """The frozen pilot's unit x week panel (every metric column) and its assignment.

    ``panel`` has one row per analysis unit (``key``: ``store_id`` or ``region``) and week
    from the pre-period's first day to ``end_seen``; columns of
    :func:`loyalty_pilot.pilots.pilot_metrics.store_week_metrics` (sums and rates).
    """

    panel: pd.DataFrame
    assignment: pd.Series  # analysis unit -> arm
    units: pd.DataFrame  # the frozen units, indexed by unit (arm, block, region)
    key: str
    by_region: bool
    start: date
    end: date
    end_seen: date
    weeks_seen: int


def pilot_panel(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    frozen: FrozenAssignment,
    *,
    until: date | None = None,
) -> PilotPanel:
    """Panel of the frozen pilot's units up to the data's last day (or ``until``)."""
    from loyalty_pilot.pilots.pilot_metrics import store_week_metrics

    spec = pf.spec
    _first, last = con.execute("SELECT min(date), max(date) FROM baskets").fetchall()[0]
    start = spec.test_period.start
    end = test_end(pf)
    if last is None or last < start:
        raise UserError(
            f"{pf.path}: no data in the test period yet (it starts on {start}; the data ends "
            f"on {last})"
        )
    if frozen.unit_kind == "customer":
        raise UserError(
            f"{pf.path}: unit customer is evaluated with the customer-level tests "
            "(`evaluate --method welch|cuped|proportion`); store and region pilots are "
            "evaluated here"
        )
    end_seen = min(end, last, until or end)
    weeks_seen = (end_seen - start + timedelta(days=1)).days // 7  # complete weeks only
    units = frozen.units.assign(unit=frozen.units["unit"].astype(str)).set_index("unit")
    panel = store_week_metrics(con, list(units.index), spec.pre_period.start, end_seen)
    # stores randomized in whole regions are frozen store by store with their region as
    # block, and analysed region by region
    by_region = spec.unit == "region" or spec.design.method in REGION_DESIGNS
    if by_region:
        panel["region"] = units["block"].reindex(panel["store_id"]).astype(str).to_numpy()
        panel = _regions(panel)
        regions = units.assign(region=units["block"].astype(str))
        assignment = regions.groupby("region")["arm"].first()
        key = "region"
    else:
        assignment = units["arm"]
        key = "store_id"
    return PilotPanel(panel, assignment, units, key, by_region, start, end, end_seen, weeks_seen)


def compare(
    pp: PilotPanel,
    pf: PilotFile,
    frozen: FrozenAssignment,
    *,
    column: str,
    method: str,
    scale: str,
    control: str | None = None,
    arms: tuple[str, ...] | None = None,
    units: list[str] | None = None,
    seed: int = 0,
    n_draws: int = RI_DRAWS,
    alpha: float | None = None,
    pre_test_periods: int | None = None,
) -> Evaluation:
    """Every arm of ``arms`` (default: all) against ``control`` on ``column`` (intervals at
    ``alpha``, default the pilot's ``decision.alpha``).

    ``units`` restricts the comparison to those analysis units (a subgroup); weeks with
    a missing value of a rate (no sales) are dropped for every unit of the comparison.
    """
    from loyalty_pilot.experiments.evaluate import evaluate
    from loyalty_pilot.experiments.panel import PanelError

    control = control or pf.control()
    keep = pp.assignment.isin([control, *(arms or pp.assignment.unique())])
    assignment = pp.assignment[keep]
    if units is not None:
        assignment = assignment[assignment.index.isin(units)]
    panel = pp.panel[pp.panel[pp.key].isin(assignment.index)]
    missing = panel.loc[panel[column].isna(), "week"].unique()
    if len(missing):
        panel = panel[~panel["week"].isin(missing)]
    kwargs: dict[str, Any] = {}
    if method == "ri":
        kwargs.update(_ri_design(pf, frozen, pp.units, pp.by_region, n_draws, seed))
    try:
        return evaluate(
            panel,
            assignment,
            unit=pp.key,
            period="week",
            outcome=column,
            start=np.datetime64(pp.start, "ns"),
            method=method,
            control=control,
            alpha=pf.spec.decision.alpha if alpha is None else alpha,
            rng=seed,
            scale=scale,
            n_draws=n_draws,
            pre_test_periods=pre_test_periods,
            **kwargs,
        )
    except (PanelError, ValueError) as exc:
        raise UserError(f"{pf.path}: {column}: {exc}") from None


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
    """Evaluate ``frozen`` (a version of the pilot in ``pf``) on the workspace's data:
    the primary metric, every variant against the control."""
    from loyalty_pilot.pilots.pilotspec import METRIC_COLUMNS

    spec = pf.spec
    pp = pilot_panel(con, pf, frozen)
    evaluation = compare(
        pp, pf, frozen,
        column=METRIC_COLUMNS[spec.metrics.primary],
        method=method or spec.evaluation.method,
        scale=scale or spec.evaluation.scale,
        seed=seed,
        n_draws=n_draws,
    )  # fmt: skip
    return PilotEvaluation(
        evaluation, frozen.version, pp.start, pp.end, pp.weeks_seen, spec.test_period.weeks,
        "region" if pp.by_region else "store",
    )  # fmt: skip


def _regions(panel: pd.DataFrame) -> pd.DataFrame:
    """Region x week sums of the pilot's stores, the rates recomputed from the sums."""
    sums = panel.groupby(["region", "week"], as_index=False)[
        ["sales", "margin", "baskets", "returns", "active_customers"]
    ].sum(min_count=1)
    sums["sales"] = sums["sales"].fillna(0.0)
    sales = sums["sales"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = sums["margin"].to_numpy(dtype=float)
        sums["gross_margin_rate"] = np.where(sales > 0, margin / sales, np.nan)
        moves = (sums["baskets"] + sums["returns"]).to_numpy(dtype=float)
        sums["returns_rate"] = np.where(moves > 0, sums["returns"].to_numpy(float) / moves, np.nan)
        baskets = sums["baskets"].to_numpy(dtype=float)
        sums["avg_basket"] = np.where(baskets > 0, sales / baskets, np.nan)
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
