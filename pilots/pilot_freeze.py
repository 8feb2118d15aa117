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


def yaml_payload(pf: PilotFile, per_arm: int) -> dict[str, Any]:
    """The design payload (the registry's design hash) of the YAML with ``per_arm`` units
    per arm, without running the design: :meth:`PilotDesign.design_payload` reads only the
    arms and the size from the design, the rest from the YAML."""
    from types import SimpleNamespace

    from loyalty_pilot.pilots.pilot_design import PilotDesign

    stand_in = SimpleNamespace(arms=(pf.control(), *pf.variants()), per_arm=per_arm)
    return PilotDesign.design_payload(stand_in, pf)  # type: ignore[arg-type]


def _yaml_per_arm(pf: PilotFile) -> int | None:
    """The size the YAML fixes (None: the power analysis's recommendation, as frozen)."""
    design = pf.spec.design
    if design.method == "synthetic_region":
        return design.treated_regions
    return design.units_per_arm


def matching_versions(con: duckdb.DuckDBPyConnection, pf: PilotFile) -> tuple[list[int], list[int]]:
    """(the versions whose design hash is the YAML's design's, every version), oldest first.

    With ``design.units_per_arm: null`` the size is the one each version was frozen with
    (its snapshot's ``per_arm``): the recommendation is not recomputed.
    """
    from loyalty_pilot.pilots.registry import design_hash, get, history

    fixed = _yaml_per_arm(pf)
    every, matching = [], []
    hashes: dict[int, str] = {}
    for row in history(con, pf.spec.pilot):
        version = int(row["version"])
        every.append(version)
        per_arm = fixed
        if per_arm is None:
            per_arm = get(con, pf.spec.pilot, version).spec.get("per_arm")
        if per_arm is None:
            continue
        key = int(per_arm)
        if key not in hashes:
            hashes[key] = design_hash(yaml_payload(pf, key))
        if hashes[key] == row["design_hash"]:
            matching.append(version)
    return matching, every


def require_frozen(
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    workspace: Any,
    *,
    version: int | None = None,
    say: Callable[[str], None] | None = None,
) -> FrozenAssignment:
    """The frozen version of the pilot that the YAML describes, said through ``say``.

    Without ``version``: the latest version whose design hash is the YAML's design's
    (:func:`matching_versions`). With ``version``: that version, which must exist and
    match the YAML (the YAML's metrics, test period and decision rules are read with it,
    so another design's version would mix two designs). A UserError when the pilot was
    never frozen, the version does not exist, or the YAML matches no frozen version.
    """
    from loyalty_pilot.pilots.errors import UserError
    from loyalty_pilot.pilots.registry import get

    pilot = pf.spec.pilot
    matching, every = matching_versions(con, pf)
    if not every:
        raise UserError(
            f"{pf.path}: pilot {pilot} has no frozen assignment in {workspace}; "
            "run `loyalty-pilot assign` first"
        )
    listed = ", ".join(map(str, every))
    if version is not None:
        if version not in every:
            raise UserError(f"--version {version}: pilot {pilot} has no version {version} "
                            f"(versions: {listed})")  # fmt: skip
        if version not in matching:
            which = (
                f"it matches version{'s' if len(matching) > 1 else ''} "
                f"{', '.join(map(str, matching))}"
                if matching
                else "it matches no frozen version"
            )
            raise UserError(
                f"--version {version}: version {version} of pilot {pilot} was frozen from "
                f"another design than {pf.path} ({which}); read it with the YAML it was "
                "frozen from"
            )
        chosen = version
    elif not matching:
        raise UserError(
            f"{pf.path}: the YAML's design matches no frozen version of pilot {pilot} "
            f"(versions: {listed}); freeze it with `loyalty-pilot assign {pf.path} "
            "--new-version`, or put back the design a version was frozen with"
        )
    else:
        chosen = matching[-1]
    frozen = get(con, pilot, chosen)
    if say is not None:
        others = (
            f"; versions {', '.join(map(str, matching))} match the YAML, --version N reads another"
            if len(matching) > 1
            else ""
        )
        say(
            f"reading frozen version {frozen.version} of pilot {pilot} (design hash "
            f"{frozen.design_hash[:12]}, frozen {frozen.created_at:%Y-%m-%d %H:%M} UTC"
            f"{others})"
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
    con: duckdb.DuckDBPyConnection,
    pf: PilotFile,
    data: PilotData | None = None,
    *,
    version: int | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[RolloutPlan, str, FrozenAssignment | None]:
    """The waves around the frozen pilot (or a plan without pilot stores when not frozen),
    the pilot's stage in words, and the frozen version: the one the YAML describes, or
    ``version`` (see :func:`require_frozen`). ``data``: the pilot's candidates when the
    caller has already read them."""
    from loyalty_pilot.pilots.pilot_data import load_pilot_data
    from loyalty_pilot.pilots.registry import history
    from loyalty_pilot.pilots.rollout import pilot_stage, plan_rollout

    spec = pf.spec
    frozen = None
    if version is not None or history(con, spec.pilot):
        frozen = require_frozen(con, pf, "the workspace", version=version, say=say)
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
