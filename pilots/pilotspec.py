"""A pilot: strict, typed, one YAML file per pilot, checked like a programme file.

The models below only validate values, one file at a time; :func:`load_pilot` reads the
file strictly (``file:line:column`` for every mistake, all at once, see
:mod:`loyalty_pilot.pilots.specfile`), loads each arm's programme file and reports the
problems of the pilot and of its programmes together. :func:`check_against_data` then
checks the pilot against the workspace's data (periods inside the baskets, enough
eligible units, known regions) and points each problem at the key of the pilot file.

A pilot file::

    pilot: spring-cash-vs-gift
    arms: {control: null, cash: ../programmes/cash-voucher.yaml, gift: gift.yaml}
    unit: store                                   # store | region | customer
    pre_period: {start: 2025-01-06, end: 2026-03-29}
    test_period: {start: 2026-03-30, weeks: 12}   # or {start: ..., end: 2026-06-21}
    design: {method: matched, stratify_by: [region], units_per_arm: 8, seed: 7}
    metrics: {primary: sales, secondary: [visits, basket_size, active_customers]}
    decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}
    rollout: {waves: [{name: north, regions: [north]}, {name: national}]}

Weeks are those of the weekly panels (:mod:`loyalty_pilot.pilots.panels`): Monday to
Sunday. So a period starts on a Monday and ends on a Sunday, and every period is a whole
number of weeks.

Required: ``pilot``, ``arms`` (exactly one null arm, the control, and at least one
programme file), ``pre_period`` (at least 4 weeks), ``test_period`` (after the
pre-period; ``weeks`` or ``end``, or both if they agree) and ``design.seed``. Defaults:
unit ``store``; eligibility ``min_pre_weeks`` 26 (capped to the pre-period), no
exclusions, ``min_weekly_sales`` 0; design ``matched`` on ``[level, trend]``,
``units_per_arm`` null (the power analysis recommends), rerandomized ``acceptance``
0.05, ``treated_regions`` 1; power sizes ``[4, 6, 8, 12, 16]`` per arm, weeks ``[8, 12,
16]`` (the default lengths that do not fit the pre-period are dropped, given ones are
errors), 1000 placebos, target 0.8, estimator ``did``, scale ``log``, no
``customers_per_arm`` (no customer-randomized candidates: the offer cannot be targeted
per customer); metrics primary ``sales``, no secondary metric, no guardrail; decision
alpha 0.05, ``min_uplift: break_even``, ``min_roi`` 0; rollout ``holdout_share`` 0 and
one ``national`` wave, each wave's ``min_weeks`` the test's weeks; evaluation ``did``
(``synthetic_control`` for a synthetic_region design), scale ``auto``. Once validated,
the defaults that depend on other keys are filled in: ``test_period.weeks`` and ``end``,
``eligibility.min_pre_weeks`` and ``evaluation.method`` are never None.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from loyalty_pilot.pilots.pilot_models import (
    DESIGN_METHODS,
    ESTIMATORS,
    EVALUATION_METHODS,
    GUARDRAIL_METRICS,
    HIGHER_IS_WORSE,
    MATCH_FEATURES,
    METRIC_COLUMNS,
    MIN_DONOR_REGIONS,
    MIN_UNITS_PER_ARM,
    PRIMARY_METRICS,
    RATE_METRICS,
    STORE_ATTRIBUTES,
    UNITS,
    Loc,
    Pilot,
)
from loyalty_pilot.pilots.specfile import (
    LineMap,
    SpecError,
    SpecIssue,
    json_schema,
    load_programme,
    load_yaml,
    validate_data,
)
from loyalty_pilot.simulator.programme import Programme

__all__ = [
    "DESIGN_METHODS",
    "ESTIMATORS",
    "EVALUATION_METHODS",
    "GUARDRAIL_METRICS",
    "HIGHER_IS_WORSE",
    "MATCH_FEATURES",
    "METRIC_COLUMNS",
    "PRIMARY_METRICS",
    "RATE_METRICS",
    "STORE_ATTRIBUTES",
    "UNITS",
    "Pilot",
    "PilotFile",
    "check_against_data",
    "example_pilots",
    "load_pilot",
    "pilot_json_schema",
]


@dataclass(frozen=True)
class PilotFile:
    """A loaded pilot: the spec, where each key is in its file, and its arms' programmes."""

    spec: Pilot
    path: Path
    lines: LineMap
    programmes: dict[str, Programme]  # arm -> programme (the control excluded)
    programme_paths: dict[str, Path]  # arm -> resolved programme file

    def issue(self, key_path: Iterable[Any], reason: str) -> SpecIssue:
        """A problem at ``key_path`` of the file (the deepest key present gives the line)."""
        path = tuple(key_path)
        line, col = self.lines.locate(path)
        return SpecIssue(self.lines.file, line, col, path, reason)

    def error(self, key_path: Iterable[Any], reason: str) -> SpecError:
        """A :class:`SpecError` at ``key_path``, for checks against the data."""
        return SpecError([self.issue(key_path, reason)])

    def control(self) -> str:
        return self.spec.control

    def variants(self) -> tuple[str, ...]:
        return self.spec.variants


def load_pilot(path: str | Path) -> PilotFile:
    """Read and validate a pilot file and the programme file of each arm.

    Raises one :class:`SpecError` with every problem found: those of the pilot file (in
    file order), then those of its programme files (each at its own ``file:line``). A
    programme file that does not exist is reported at its arm's line.
    """
    path = Path(path)
    data, lines = load_yaml(path)
    issues: list[SpecIssue] = []
    spec: Pilot | None = None
    try:
        spec = validate_data(data, lines, Pilot)
    except SpecError as exc:
        issues.extend(exc.errors)

    def at(key_path: Loc, reason: str) -> SpecIssue:
        return SpecIssue(lines.file, *lines.locate(key_path), key_path, reason)

    programmes: dict[str, Programme] = {}
    programme_paths: dict[str, Path] = {}
    programme_issues: list[SpecIssue] = []
    arms = data.get("arms")
    by_file: dict[Path, str] = {}
    by_name: dict[str, str] = {}
    for arm, file in arms.items() if isinstance(arms, dict) else ():
        if not isinstance(arm, str) or not isinstance(file, str) or not file.strip():
            continue  # reported by the model
        where = ("arms", arm)
        resolved = _resolve(path, file)
        if resolved in by_file:
            issues.append(
                at(
                    where,
                    f"same programme file as arm {by_file[resolved]!r}: "
                    "each arm tests its own programme",
                )
            )
            continue
        by_file[resolved] = arm
        if not resolved.exists():
            issues.append(at(where, f"file {file} not found (looked for {resolved})"))
            continue
        if resolved.is_dir():
            issues.append(at(where, f"{file} is a folder, not a programme file"))
            continue
        try:
            programme = load_programme(resolved)
        except SpecError as exc:
            programme_issues.extend(exc.errors)
            continue
        name = programme.programme
        if name in by_name:
            issues.append(
                at(
                    where,
                    f"programme {name!r} ({file}) is also the programme of arm "
                    f"{by_name[name]!r}: programme names must be unique",
                )
            )
            continue
        by_name[name] = arm
        programmes[arm] = programme
        programme_paths[arm] = resolved
    issues.sort(key=lambda issue: (issue.line or 0, issue.col or 0))
    issues += programme_issues
    if issues or spec is None:
        raise SpecError(issues)
    return PilotFile(spec, path, lines, programmes, programme_paths)


def _resolve(pilot_path: Path, file: str) -> Path:
    target = Path(file).expanduser()
    if not target.is_absolute():
        target = pilot_path.parent / target
    return Path(os.path.normpath(target))


# --------------------------------------------------------------------------- data checks

_UNIT_WORDS = {"store": "stores", "region": "regions", "customer": "customers"}


def check_against_data(
    pf: PilotFile,
    *,
    data_start: dt.date,
    data_end: dt.date,
    n_eligible: int,
    regions: Collection[str] | None = None,
    units: Collection[str] | None = None,
    attributes: Collection[str] | None = None,
) -> None:
    """Check a loaded pilot against the workspace's data; every problem at its key, at once.

    ``data_start`` / ``data_end``: dates of the first and last basket. ``n_eligible``:
    units (of the pilot's ``unit``) passing the eligibility rules. ``regions``: the
    regions of the store list (checks rollout waves, clusters and synthetic regions).
    ``units``: every unit id in the data (checks ``eligibility.exclude``). ``attributes``:
    the store attributes available among region, format and size_band (checks
    ``stratify_by``). A test period after the last basket is fine (a future pilot); a
    pre-period that is not inside the data is not.
    """
    spec = pf.spec
    issues: list[SpecIssue] = []
    pre = spec.pre_period
    if pre.start < data_start:
        monday = data_start + dt.timedelta(days=-data_start.weekday() % 7)
        issues.append(
            pf.issue(
                ("pre_period", "start"),
                f"{pre.start} is before the first basket ({data_start}); start the pre-period "
                f"on or after it (the first Monday is {monday})",
            )
        )
    if pre.end > data_end:
        issues.append(
            pf.issue(
                ("pre_period", "end"),
                f"{pre.end} is after the last basket ({data_end}): the pre-period must be "
                "inside the data",
            )
        )
    if units is not None:
        known = set(units)
        for index, unit_id in enumerate(spec.eligibility.exclude):
            if unit_id not in known:
                issues.append(
                    pf.issue(
                        ("eligibility", "exclude", index),
                        f"unknown {spec.unit} {unit_id!r}" + _did_you_mean(unit_id, known),
                    )
                )
    issues += _enough_units(pf, n_eligible, regions)
    design = spec.design
    if attributes is not None:
        have = set(attributes)
        for index, key in enumerate(design.stratify_by):
            if key not in have:
                issues.append(
                    pf.issue(
                        ("design", "stratify_by", index),
                        f"the stores have no {key!r} in this workspace (known: "
                        f"{', '.join(sorted(have)) or 'none'}); ingest a stores file with it",
                    )
                )
        if design.cluster_by is not None and design.cluster_by not in have:
            issues.append(
                pf.issue(("design", "cluster_by"), f"the stores have no {design.cluster_by!r}")
            )
    if regions is not None:
        issues += _rollout_regions(pf, regions)
    if issues:
        raise SpecError(issues)


def _enough_units(pf: PilotFile, n_eligible: int, regions: Collection[str] | None) -> list:
    spec = pf.spec
    design = spec.design
    n_arms = len(spec.arms)
    issues = []
    if design.method == "synthetic_region":
        if regions is None and spec.unit != "region":
            return []
        n_regions = n_eligible if spec.unit == "region" else len(set(regions or ()))
        needed = design.treated_regions * len(spec.variants) + MIN_DONOR_REGIONS
        if n_regions < needed:
            issues.append(
                pf.issue(
                    ("design", "treated_regions"),
                    f"{design.treated_regions} treated region(s) x {len(spec.variants)} "
                    f"variant(s) + {MIN_DONOR_REGIONS} donor regions = {needed} regions "
                    f"needed, the data has {n_regions}",
                )
            )
        return issues
    if design.method == "cluster":
        if regions is None:
            return []
        n_units, word = len(set(regions)), "clusters (regions)"
    else:
        n_units, word = n_eligible, f"eligible {_UNIT_WORDS[spec.unit]}"
    per_arm = design.units_per_arm
    if per_arm is not None:
        if per_arm * n_arms > n_units:
            issues.append(
                pf.issue(
                    ("design", "units_per_arm"),
                    f"{per_arm} per arm x {n_arms} arms = {per_arm * n_arms} units needed, "
                    f"only {n_units} {word}",
                )
            )
        return issues
    smallest = min(spec.power.units_per_arm)
    if MIN_UNITS_PER_ARM * n_arms > n_units:
        issues.append(
            pf.issue(
                ("design",),
                f"at least {MIN_UNITS_PER_ARM} per arm x {n_arms} arms = "
                f"{MIN_UNITS_PER_ARM * n_arms} units needed, only {n_units} {word}",
            )
        )
    elif smallest * n_arms > n_units:
        issues.append(
            pf.issue(
                ("power", "units_per_arm"),
                f"even the smallest size, {smallest} per arm x {n_arms} arms = "
                f"{smallest * n_arms} units, is more than the {n_units} {word}; "
                "add smaller sizes or set design.units_per_arm",
            )
        )
    return issues


def _rollout_regions(pf: PilotFile, regions: Collection[str]) -> list[SpecIssue]:
    known = set(regions)
    issues = []
    listed: set[str] = set()
    waves = pf.spec.rollout.waves
    for index, wave in enumerate(waves):
        for position, region in enumerate(wave.regions or []):
            listed.add(region)
            if region not in known:
                issues.append(
                    pf.issue(
                        ("rollout", "waves", index, "regions", position),
                        f"unknown region {region!r}{_did_you_mean(region, known)}; "
                        f"regions: {', '.join(sorted(known))}",
                    )
                )
    if all(wave.regions is not None for wave in waves):
        left = sorted(known - listed)
        if left:
            issues.append(
                pf.issue(
                    ("rollout", "waves"),
                    f"regions {', '.join(left)} are in no wave: add them to a wave or end "
                    "with a wave without regions (all remaining stores)",
                )
            )
    return issues


def _did_you_mean(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- misc


def pilot_json_schema() -> dict[str, Any]:
    """JSON schema of the pilot YAML, for editor completion and checks."""
    return json_schema(Pilot, "loyalty-pilot pilot")


def example_pilots() -> list[Path]:
    """The example pilot files shipped with the package (examples/pilots)."""
    folder = resources.files("loyalty_pilot.examples").joinpath("pilots")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))
