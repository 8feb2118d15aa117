"""The staged rollout: waves after the pilot, each gated on a GO for the one before.

Wave 0 is the pilot itself (its treated stores, all variants). The later waves come from
the pilot YAML's ``rollout.waves``, in order:

- a wave with ``regions`` takes every not-yet-treated store of those regions;
- a wave with ``share`` takes stores until that cumulative share of the rollout's stores
  is treated (stores drawn in a seeded random order, region by region in turn so every
  region moves at the same pace);
- a wave with neither takes every remaining store (the last wave only).

Before any wave is drawn, ``holdout_share`` of the non-pilot stores (seeded, spread over
regions) is set aside: never treated during the rollout, they are the controls that let
each wave be evaluated against stores not yet treated (staggered adoption), the last
wave included. Wave ``k`` is planned to start when wave ``k - 1`` has run its
``min_weeks`` and been evaluated: the plan gives the earliest dates, each gated on a GO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

PILOT_WAVE = "pilot"
HOLDOUT = "holdout"


@dataclass(frozen=True)
class Wave:
    """One wave: its stores, planned start (earliest) and length, and its gate."""

    name: str
    stores: tuple[str, ...]
    start: date
    weeks: int
    gate: str  # what must happen before it starts
    regions: tuple[str, ...] = ()
    cumulative_share: float = 0.0  # share of the rollout's stores treated after the wave

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_stores": len(self.stores),
            "stores": list(self.stores),
            "regions": list(self.regions),
            "start": self.start.isoformat(),
            "weeks": self.weeks,
            "cumulative_share": self.cumulative_share,
            "gate": self.gate,
        }


@dataclass(frozen=True)
class RolloutPlan:
    """The pilot (wave 0), the later waves and the holdout stores."""

    waves: tuple[Wave, ...]
    holdout: tuple[str, ...]
    seed: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def wave_of(self) -> dict[str, str]:
        """store -> name of the wave that treats it (``holdout`` for the held-out stores)."""
        out = dict.fromkeys(self.holdout, HOLDOUT)
        for wave in self.waves:
            out.update(dict.fromkeys(wave.stores, wave.name))
        return out

    def first_treated(self) -> dict[str, date | None]:
        """store -> planned first treated day (None: never, the holdout) for staggered DiD."""
        out: dict[str, date | None] = dict.fromkeys(self.holdout)
        for wave in self.waves:
            out.update(dict.fromkeys(wave.stores, wave.start))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "waves": [w.to_dict() for w in self.waves],
            "holdout": {"n_stores": len(self.holdout), "stores": list(self.holdout)},
            "notes": list(self.notes),
        }


def _field(wave: Any, name: str) -> Any:
    return wave.get(name) if isinstance(wave, dict) else getattr(wave, name, None)


def _spread_order(stores: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    """Stores in a seeded random order that alternates regions (round robin by region)."""
    frame = stores.sort_values("unit", kind="stable").reset_index(drop=True)
    frame = frame.assign(key=rng.random(len(frame)))
    frame = frame.sort_values(["region", "key"], kind="stable")
    frame["rank"] = frame.groupby("region").cumcount() / frame.groupby("region")["unit"].transform(
        "size"
    )
    frame = frame.sort_values(["rank", "key"], kind="stable")
    return frame["unit"].astype(str).tolist()


def plan_rollout(
    stores: pd.DataFrame,
    *,
    pilot_stores: Sequence[str],
    waves: Sequence[Any],
    holdout_share: float,
    seed: int,
    pilot_start: date,
    pilot_weeks: int,
) -> RolloutPlan:
    """Plan the waves over ``stores`` (columns ``unit``, ``region``; the eligible stores).

    ``waves``: the pilot YAML's waves (objects or dicts with ``name`` and optionally
    ``regions``, ``share``, ``min_weeks``). Raises ValueError naming the wave when a wave
    would be empty or a region is unknown.
    """
    stores = stores[["unit", "region"]].astype(str).drop_duplicates("unit")
    rng = np.random.default_rng([int(seed), 0x5EED])
    pilot = tuple(sorted(set(map(str, pilot_stores)) & set(stores["unit"])))
    rest = stores[~stores["unit"].isin(pilot)]
    order = _spread_order(rest, rng)
    n_hold = round(holdout_share * len(order))
    holdout = tuple(sorted(order[:n_hold]))
    order = order[n_hold:]
    region_of = dict(zip(stores["unit"], stores["region"], strict=True))
    known = set(stores["region"])
    pool = len(order) + len(pilot)  # stores the rollout treats, the pilot's included

    planned = [
        Wave(
            PILOT_WAVE,
            pilot,
            pilot_start,
            pilot_weeks,
            "frozen assignment",
            tuple(sorted({region_of[s] for s in pilot})),
            len(pilot) / max(pool, 1),
        )
    ]
    notes: list[str] = []
    treated = len(pilot)
    remaining = list(order)
    start = pilot_start
    previous = planned[0]
    for index, spec in enumerate(waves):
        name = str(_field(spec, "name"))
        regions = tuple(str(r) for r in (_field(spec, "regions") or ()))
        share = _field(spec, "share")
        unknown = sorted(set(regions) - known)
        if unknown:
            raise ValueError(f"rollout.waves[{index}] ({name}): unknown region(s) {unknown}")
        if regions:
            chosen = [s for s in remaining if region_of[s] in regions]
        elif share is not None:
            target = int(np.ceil(float(share) * pool - 1e-9))
            chosen = remaining[: max(target - treated, 0)]
        else:
            chosen = list(remaining)
        if not chosen:
            notes.append(f"wave {name} has no store left to treat")
        start = start + timedelta(weeks=previous.weeks)
        weeks = int(_field(spec, "min_weeks") or pilot_weeks)
        chosen_set = set(chosen)
        remaining = [s for s in remaining if s not in chosen_set]
        treated += len(chosen)
        wave = Wave(
            name,
            tuple(sorted(chosen)),
            start,
            weeks,
            f"GO on {previous.name}",
            tuple(sorted({region_of[s] for s in chosen})),
            treated / max(pool, 1),
        )
        planned.append(wave)
        previous = wave
    if remaining:
        notes.append(
            f"{len(remaining)} stores are in no wave (add a last wave without regions or share)"
        )
    return RolloutPlan(tuple(planned), holdout, int(seed), tuple(notes))


def pilot_stage(*, frozen: bool, pilot_start: date, pilot_weeks: int, data_end: date | None) -> str:
    """Where the pilot stands, in words, from the registry and the data's last day."""
    if not frozen:
        return "not frozen yet: run `loyalty-pilot assign`"
    end = pilot_start + timedelta(weeks=pilot_weeks, days=-1)
    if data_end is None or data_end < pilot_start:
        return f"frozen; the test starts on {pilot_start}"
    if data_end < end:
        week = (data_end - pilot_start).days // 7 + 1
        return f"running: data up to {data_end}, week {min(week, pilot_weeks)} of {pilot_weeks}"
    return f"test period complete ({pilot_start} to {end}): evaluate and decide on the first gate"
