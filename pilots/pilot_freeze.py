"""``assign`` and ``rollout``: freeze the designed assignment, plan the waves around it.

The frozen units are always stores (or customers): a design that randomizes whole
regions freezes every eligible store of each region with the region as its ``block``, so
store operations get a store list and the evaluation can analyse by region.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from loyalty_pilot.pilots.pilot_data import REGION_DESIGNS

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

    from loyalty_pilot.pilots.pilot_data import PilotData
    from loyalty_pilot.pilots.pilot_design import PilotDesign
    from loyalty_pilot.pilots.pilotspec import PilotFile
    from loyalty_pilot.pilots.registry import FreezeOutcome, FrozenAssignment
    from loyalty_pilot.pilots.rollout import RolloutPlan


def require_frozen(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, workspace: Any
) -> FrozenAssignment:
    """The pilot's latest frozen version; a UserError when it was never frozen."""
    from loyalty_pilot.pilots.errors import UserError
    from loyalty_pilot.pilots.registry import latest

    frozen = latest(con, pf.spec.pilot)
    if frozen is None:
        raise UserError(
            f"{pf.path}: pilot {pf.spec.pilot} has no frozen assignment in {workspace}; "
            "run `loyalty-pilot assign` first"
        )
    return frozen


def frozen_units(pf: PilotFile, result: PilotDesign) -> pd.DataFrame:
    """unit, arm, block (and region for stores) of the assignment to freeze."""
    frame = result.assignment.to_frame()
    frame["unit"] = frame["unit"].astype(str)
    by_region = pf.spec.unit == "region" or pf.spec.design.method in REGION_DESIGNS
    if by_region:
        stores = result.data.stores.astype(str)
        arm_of = dict(zip(frame["unit"], frame["arm"], strict=True))
        stores = stores[stores["region"].isin(arm_of)]
        return pd.DataFrame(
            {
                "unit": stores["unit"].to_numpy(),
                "arm": stores["region"].map(arm_of).to_numpy(),
                "block": stores["region"].to_numpy(),
                "region": stores["region"].to_numpy(),
            }
        ).sort_values("unit", ignore_index=True)
    if result.data.kind == "store":
        region = result.data.units["region"].astype(str)
        frame["region"] = frame["unit"].map(region)
    return frame.sort_values("unit", ignore_index=True)


def freeze_pilot(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    *,
    new_version: bool = False,
    progress: Callable[[str], None] | None = None,
    design: PilotDesign | None = None,
) -> FreezeOutcome:
    """Design the pilot (power only when the YAML leaves the size open) and freeze it.

    ``design``: a design already run on the same connection (the demo), frozen as is.
    """
    from loyalty_pilot.pilots.pilot_design import run_design
    from loyalty_pilot.pilots.registry import design_hash, frame_fingerprint, freeze

    spec = pf.spec
    result = design or run_design(
        con, pf, with_power=spec.design.units_per_arm is None, progress=progress
    )
    payload = result.design_payload(pf)
    units = frozen_units(pf, result)
    snapshot: dict[str, Any] = {
        **payload,
        "test_period": spec.test_period.model_dump(mode="json"),
        "weeks": result.weeks,
        "threshold": result.threshold,
        "assignment_details": result.assignment.details,
    }
    if spec.design.method == "rerandomized":  # its inference re-draws with every covariate
        snapshot["covariates"] = result.covariates.to_dict()
    return freeze(
        con,
        pilot=spec.pilot,
        design_hash=design_hash(payload),
        data_fingerprint=frame_fingerprint(result.fingerprint_frame()),
        seed=spec.design.seed,
        method=spec.design.method,
        unit_kind=spec.unit,
        units=units,
        spec=snapshot,
        new_version=new_version,
    )


def rollout_plan(
    con: duckdb.DuckDBPyConnection, pf: PilotFile, data: PilotData | None = None
) -> tuple[RolloutPlan, str, FrozenAssignment | None]:
    """The waves around the frozen pilot (or a plan without pilot stores when not frozen),
    the pilot's stage in words, and the frozen version. ``data``: the pilot's candidates
    when the caller has already read them."""
    from loyalty_pilot.pilots.pilot_data import load_pilot_data
    from loyalty_pilot.pilots.registry import latest
    from loyalty_pilot.pilots.rollout import pilot_stage, plan_rollout

    spec = pf.spec
    frozen = latest(con, spec.pilot)
    data = data or load_pilot_data(con, pf)
    pilot_stores: list[str] = []
    if frozen is not None and spec.unit != "customer":
        treated = frozen.units[frozen.units["arm"] != pf.control()]
        pilot_stores = treated["unit"].astype(str).tolist()
    try:
        plan = plan_rollout(
            data.stores,
            pilot_stores=pilot_stores,
            waves=spec.rollout.waves,
            holdout_share=spec.rollout.holdout_share,
            seed=spec.design.seed,
            pilot_start=spec.test_period.start,
            pilot_weeks=spec.test_period.weeks,
        )
    except ValueError as exc:
        raise pf.error(("rollout", "waves"), str(exc)) from None
    stage = pilot_stage(
        frozen=frozen is not None,
        pilot_start=spec.test_period.start,
        pilot_weeks=spec.test_period.weeks,
        data_end=data.data_end,
    )
    return plan, stage, frozen
