"""Pilot assignment: which eligible units (stores, regions) get which arm, for a seed.

Every design is one machinery: a *plan* fixed by the units and their data (strata, matched
tuples, clusters, the whitened covariates, the chosen regions), then *draws* of it, all at
once as an ``int8`` matrix (draws x units; -1 = not in the pilot, 0 = control, 1.. the
programme arms). :func:`draw_codes` returns many draws (placebo pilots for power,
randomization inference); :func:`assign` is exactly one draw of the same design, seeded,
with its diagnostics. Units are sorted by id (str) before anything is computed, so the
answer depends only on the set of units and their data, never on the row order.

Designs (:data:`DESIGN_METHODS`)
--------------------------------
* ``complete``: ``per_arm * len(arms)`` units at random, arms at random.
* ``stratified``: ``per_arm`` allocated across strata proportionally to their sizes by
  largest remainder (ties: stratum label order), capped at ``floor(n_s / len(arms))`` per
  stratum; then complete randomization within each stratum. ``block`` = stratum label
  (columns joined with ``'|'``).
* ``matched``: tuples of ``len(arms)`` units formed greedily on the Mahalanobis distance of
  the covariates (within strata when given): repeatedly the unit whose ``len(arms) - 1``
  nearest remaining neighbours are closest in sum, with those neighbours, forms a tuple
  (ties: smallest unit id); units left over are the most isolated. ``per_arm`` tuples are
  picked at random and the arms permuted within each. ``block`` = tuple id. The tuples
  depend on the data only, not on the seed.
* ``rerandomized`` (Morgan & Rubin 2012): complete (or, with strata, stratified) draws in
  vectorized batches, kept when the *joint* Mahalanobis statistic
  ``M = sum_a n_a |zbar_a - zbar|^2`` (:func:`~loyalty_pilot.experiments.balance.joint_mahalanobis`;
  with two arms exactly Morgan & Rubin's ``M``) is at most the threshold. The joint
  statistic rather than the maximum over arm-vs-control pairs: it is chi-square with
  ``K (len(arms) - 1)`` df, so ``acceptance`` keeps its meaning (the share of draws kept)
  for any number of arms; ``K`` is the rank of the covariates' covariance (the number of
  covariates unless collinear). Without ``max_mahalanobis`` the threshold is the
  ``acceptance`` quantile of that chi-square. The covariance is taken over the eligible
  units (fixed across draws). Draws are accepted in order and the batch size is a function
  of the units, ``n_draws`` and ``acceptance`` only, so a seed gives one answer.
* ``cluster``: whole clusters (e.g. regions) randomized like ``complete``; ``per_arm``
  counts clusters; ``block`` = cluster label.
* ``synthetic_region``: candidate treated sets of ``n_treated_regions`` regions ranked by
  the synthetic-control fit of their pre-period
  (:func:`~loyalty_pilot.experiments.market_selection.rank_regions`); the best
  ``len(arms) - 1`` disjoint sets are treated, which programme arm gets which is drawn from
  the seed; every other region is control. ``block`` = region. The regions are the units
  themselves, or the values of the ``cluster`` column (units then follow their region).

``per_arm=None`` uses all eligible units (clusters, tuples) split as evenly as the design
allows: sizes differ by at most one and the first arms (control first) take the extras; in
a stratified design the extras of successive strata go round the arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loyalty_pilot.experiments.balance import (
    balance_table,
    greedy_tuples,
    joint_mahalanobis,
    numeric_matrix,
    pre_period_covariates,
    pre_period_series,
    size_bands,
    whiten,
)
from loyalty_pilot.experiments.market_selection import disjoint_best, rank_regions, ranking_records

__all__ = [
    "DESIGN_METHODS",
    "Assignment",
    "assign",
    "balance_table",
    "draw_codes",
    "pre_period_covariates",
    "pre_period_series",
    "rank_regions",
    "size_bands",
]

DESIGN_METHODS = (
    "complete",
    "stratified",
    "matched",
    "rerandomized",
    "cluster",
    "synthetic_region",
)
MIN_TRIES = 1_000_000
"""Rerandomization gives up after ``max(MIN_TRIES, 20 * n_draws / acceptance)`` draws."""
BATCH_CELLS = 2_000_000
"""Rerandomization batch: at most this many unit cells (draws x units) at a time, at least
64 draws; the batch size depends only on the units, ``n_draws`` and ``acceptance``."""
RANKING_KEEP = 50
"""Candidate sets kept in ``details['ranking']`` of a ``synthetic_region`` assignment."""
_STRATA_METHODS = ("stratified", "matched", "rerandomized")


@dataclass(frozen=True, eq=False)
class Assignment:
    """One seeded assignment of a pilot.

    ``arm``: arm name per unit in the pilot (index: unit id, str, sorted). ``block``: same
    index, the stratum / matched tuple / cluster / region within which the design
    randomized (None for ``complete`` and unstratified ``rerandomized``); randomization
    inference re-draws within it. ``arms``: control first. ``details``: JSON-ready
    diagnostics of the design (sizes, strata, tuples, threshold, ranking, ...).
    """

    arm: pd.Series
    block: pd.Series | None
    method: str
    seed: int
    arms: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Columns ``unit, arm, block`` (block None when the design has none)."""
        block = [None] * len(self.arm) if self.block is None else self.block.to_numpy()
        return pd.DataFrame(
            {"unit": self.arm.index.to_numpy(), "arm": self.arm.to_numpy(), "block": block}
        )

    def balance(self, covariates: pd.DataFrame) -> pd.DataFrame:
        """:func:`balance_table` of this assignment (control = ``arms[0]``)."""
        return balance_table(covariates, self.arm, self.arms[0], arms=self.arms)

    def pre_series(self, wide: pd.DataFrame) -> pd.DataFrame:
        """:func:`pre_period_series` of this assignment, columns in ``arms`` order."""
        return pre_period_series(wide, self.arm, arms=self.arms)


@dataclass(frozen=True, eq=False)
class _Plan:
    """A design fixed by the data; :func:`_draw` samples it. Indices are in sorted order.

    ``kind``: ``groups`` (each ``(slots, base)`` of ``groups`` is shuffled independently),
    ``tuples`` (pick ``n_pick`` rows of ``tuples``, permute arms within) or ``fixed``
    (``region_sets`` get the programme arms in a random order, other regions control).
    ``slot_of_unit`` maps units to slots (clusters, regions) or is None (slots = units).
    """

    kind: str
    n_units: int
    n_arms: int
    n_slots: int
    groups: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    tuples: np.ndarray | None = None
    n_pick: int = 0
    region_sets: tuple[np.ndarray, ...] = ()
    slot_of_unit: np.ndarray | None = None
    z: np.ndarray | None = None
    threshold: float = math.inf
    threshold_name: str = "max_mahalanobis"
    acceptance: float = 0.05
    block: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} == {value!r}, must be an int >= {minimum}.")
    return int(value)


def _columns(frame: pd.DataFrame, names: Sequence[str], parameter: str) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in frame.columns:
            hint = (
                "; compute level and trend with pre_period_covariates(wide)"
                if parameter == "covariates"
                else ""
            )
            raise ValueError(
                f"{parameter}: column {name!r} not in units (columns: {list(frame.columns)}){hint}."
            )
    return names


def _labels(frame: pd.DataFrame, names: Sequence[str], parameter: str) -> np.ndarray:
    """One str label per unit: the columns' values joined with ``'|'``; missing is an error."""
    parts = []
    for name in names:
        column = frame[name]
        if column.isna().any():
            unit = column.index[column.isna().to_numpy()][0]
            raise ValueError(f"{parameter}: column {name!r} is missing for unit {unit!r}.")
        parts.append(column.astype(str).to_numpy(dtype=object))
    if not parts:
        return np.full(len(frame), "", dtype=object)
    out = parts[0]
    for part in parts[1:]:
        out = out + "|" + part
    return np.asarray(out, dtype=object)


def _even(n: int, k: int, offset: int = 0) -> np.ndarray:
    """``n`` split into ``k`` sizes differing by at most one; extras from arm ``offset`` on."""
    q, r = divmod(n, k)
    return q + (((np.arange(k) - offset) % k) < r).astype(np.int64)


def _base(sizes: np.ndarray, n_slots: int) -> np.ndarray:
    """Codes ``0 * sizes[0], 1 * sizes[1], ...`` then -1 up to ``n_slots``."""
    codes = np.repeat(np.arange(len(sizes), dtype=np.int8), sizes)
    return np.concatenate([codes, np.full(n_slots - len(codes), -1, dtype=np.int8)])


def _largest_remainder(per_arm: int, counts: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """``per_arm`` split across strata proportionally to ``counts``, at most ``caps`` each."""
    total = int(counts.sum())
    quota = per_arm * counts // total
    remainder = per_arm * counts % total
    alloc = np.minimum(quota, caps)
    left = per_arm - int(alloc.sum())
    order = np.lexsort((np.arange(len(counts)), -remainder))
    while left > 0:
        room = order[alloc[order] < caps[order]]
        take = room[:left]
        alloc[take] += 1
        left -= len(take)
    return alloc


def _plan(*args: Any) -> _Plan:
    """:func:`_make_plan`, then a check that every arm can get a unit (``per_arm=None``)."""
    plan = _make_plan(*args)
    if plan.kind == "tuples":
        smallest = plan.n_pick
    elif plan.kind == "groups":
        counts = sum(np.bincount(base[base >= 0], minlength=plan.n_arms) for _, base in plan.groups)
        smallest = int(np.min(counts))
    else:
        smallest = 1
    if smallest == 0:
        what = {"tuples": "matched tuples"}.get(plan.kind, "units")
        if plan.slot_of_unit is not None:
            what = "clusters"
        raise ValueError(
            f"per_arm == None: the {plan.n_units} eligible units leave an arm with no "
            f"{what} ({plan.n_arms} arms)."
        )
    return plan


def _make_plan(
    frame: pd.DataFrame,
    arms: tuple[str, ...],
    method: str,
    per_arm: int | None,
    strata: Sequence[str],
    covariates: Sequence[str],
    cluster: str | None,
    max_mahalanobis: float | None,
    acceptance: float,
    wide: pd.DataFrame | None,
    n_treated_regions: int,
) -> _Plan:
    """Check the parameters and fix the design on the units (sorted by id)."""
    if method not in DESIGN_METHODS:
        raise ValueError(f"method == {method!r}, must be one of {DESIGN_METHODS}.")
    if per_arm is not None:
        per_arm = _check_int(per_arm, "per_arm", 1)
    strata = _columns(frame, strata, "strata")
    if strata and method not in _STRATA_METHODS:
        raise ValueError(
            f"strata == {strata}, method == {method!r} does not stratify "
            f"(methods that do: {_STRATA_METHODS})."
        )
    if not 0 < acceptance < 1:
        raise ValueError(f"acceptance == {acceptance!r}, must be in (0, 1).")
    if max_mahalanobis is not None and not max_mahalanobis >= 0:
        raise ValueError(f"max_mahalanobis == {max_mahalanobis!r}, must be >= 0.")
    n, k = len(frame), len(arms)
    details: dict[str, Any] = {"n_eligible": n}
    if method in ("cluster", "synthetic_region"):
        return _slot_plan(frame, arms, method, per_arm, cluster, wide, n_treated_regions, details)
    labels = _labels(frame, strata, "strata")
    if method == "matched":
        return _matched_plan(frame, arms, per_arm, strata, covariates, labels, details)
    if strata:
        groups, block = _strata_groups(arms, per_arm, labels, details)
    else:
        sizes = _even(n, k) if per_arm is None else np.full(k, per_arm)
        if sizes.sum() > n:
            raise ValueError(f"per_arm == {per_arm} needs {sizes.sum()} units, only {n} eligible.")
        groups, block = ((np.arange(n), _base(sizes, n)),), None
    if method in ("complete", "stratified"):
        return _Plan("groups", n, k, n, groups=groups, block=block, details=details)
    names = _columns(frame, covariates, "covariates")
    z = whiten(numeric_matrix(frame[names], "covariates"))
    df = z.shape[1] * (k - 1)
    if max_mahalanobis is None:
        from scipy.special import gammaincinv

        threshold = 2.0 * float(gammaincinv(df / 2.0, acceptance)) if df else 0.0
        name = "acceptance"
    else:
        threshold, name = float(max_mahalanobis), "max_mahalanobis"
    details.update(statistic="joint", df=df, threshold=threshold, target_acceptance=acceptance)
    return _Plan("groups", n, k, n, groups=groups, z=z, threshold=threshold,
                 threshold_name=name, acceptance=acceptance, block=block,
                 details=details)  # fmt: skip


def _strata_groups(
    arms: tuple[str, ...], per_arm: int | None, labels: np.ndarray, details: dict[str, Any]
) -> tuple[tuple[tuple[np.ndarray, np.ndarray], ...], np.ndarray]:
    """Per stratum (sorted labels) its units and base codes; records ``details['strata']``."""
    k = len(arms)
    names, inverse = np.unique(labels.astype(str), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(names))
    if per_arm is None:
        offsets = np.concatenate([[0], np.cumsum(counts % k)[:-1]]) % k
        sizes = [_even(int(c), k, int(o)) for c, o in zip(counts, offsets, strict=True)]
    else:
        caps = counts // k
        if per_arm > caps.sum():
            raise ValueError(
                f"per_arm == {per_arm} needs {per_arm} units per arm, the strata allow at most "
                f"{int(caps.sum())} ({len(labels)} eligible units in {len(names)} strata)."
            )
        sizes = [np.full(k, m) for m in _largest_remainder(per_arm, counts, caps)]
    groups = []
    for s in range(len(names)):
        members = np.flatnonzero(inverse == s)
        groups.append((members, _base(sizes[s], len(members))))
    details["strata"] = {
        str(name): {"eligible": int(c), "sizes": dict(zip(arms, map(int, size), strict=True))}
        for name, c, size in zip(names, counts, sizes, strict=True)
    }
    return tuple(groups), labels.astype(str)


def _matched_plan(
    frame: pd.DataFrame,
    arms: tuple[str, ...],
    per_arm: int | None,
    strata: list[str],
    covariates: Sequence[str],
    labels: np.ndarray,
    details: dict[str, Any],
) -> _Plan:
    n, k = len(frame), len(arms)
    names = _columns(frame, covariates, "covariates")
    z = whiten(numeric_matrix(frame[names], "covariates"))
    tuples: list[np.ndarray] = []
    tuple_strata: list[str] = []
    for label in np.unique(labels.astype(str)):
        members = np.flatnonzero(labels == label)
        found = greedy_tuples(z[members], k)
        tuples += [members[t] for t in found]
        tuple_strata += [label] * len(found)
    n_tuples = len(tuples)
    if per_arm is not None and per_arm > n_tuples:
        raise ValueError(
            f"per_arm == {per_arm} needs {per_arm} matched tuples of {k} units, only {n_tuples} "
            f"can be formed from {n} eligible units" + (" within strata." if strata else ".")
        )
    width = len(str(max(n_tuples, 1)))
    block = np.full(n, "", dtype=object)
    ids = []
    for j, (members, label) in enumerate(zip(tuples, tuple_strata, strict=True)):
        ids.append(f"{label}|tuple-{j + 1:0{width}d}" if strata else f"tuple-{j + 1:0{width}d}")
        block[members] = ids[-1]
    matrix = np.array(tuples, dtype=np.intp).reshape(n_tuples, k)
    spread = [float(np.sqrt(((z[t] - z[t].mean(axis=0)) ** 2).sum(axis=1)).mean()) for t in tuples]
    details.update(
        n_tuples=n_tuples,
        covariates=list(names),
        mean_tuple_spread=float(np.mean(spread)) if spread else math.nan,
    )
    n_pick = n_tuples if per_arm is None else per_arm
    return _Plan("tuples", n, k, n, tuples=matrix, n_pick=n_pick, block=block, details=details)


def _slot_plan(
    frame: pd.DataFrame,
    arms: tuple[str, ...],
    method: str,
    per_arm: int | None,
    cluster: str | None,
    wide: pd.DataFrame | None,
    n_treated_regions: int,
    details: dict[str, Any],
) -> _Plan:
    """Cluster and synthetic-region plans: slots are the clusters (regions)."""
    n, k = len(frame), len(arms)
    if cluster is None:
        if method == "cluster":
            raise ValueError("cluster == None, method == 'cluster' needs the cluster column.")
        labels = frame.index.to_numpy(dtype=object)
    else:
        labels = _labels(frame, _columns(frame, [cluster], "cluster"), "cluster")
    slots, slot_of_unit = np.unique(labels.astype(str), return_inverse=True)
    m = len(slots)
    block = slots[slot_of_unit].astype(object)
    if method == "cluster":
        sizes = _even(m, k) if per_arm is None else np.full(k, per_arm)
        if sizes.sum() > m:
            raise ValueError(
                f"per_arm == {per_arm} needs {sizes.sum()} clusters, only {m} eligible."
            )
        details["n_clusters"] = m
        return _Plan("groups", n, k, m, groups=((np.arange(m), _base(sizes, m)),),
                     slot_of_unit=slot_of_unit, block=block, details=details)  # fmt: skip
    n_treated = _check_int(n_treated_regions, "n_treated_regions", 1)
    if per_arm is not None and per_arm != n_treated:
        raise ValueError(
            f"per_arm == {per_arm}, method == 'synthetic_region' treats n_treated_regions == "
            f"{n_treated} regions per arm: pass per_arm=None."
        )
    if wide is None:
        raise ValueError("wide == None, method == 'synthetic_region' needs the region panel.")
    if m < (k - 1) * n_treated + 1:
        raise ValueError(
            f"n_treated_regions == {n_treated} with {k - 1} programme arm(s) needs at least "
            f"{(k - 1) * n_treated + 1} eligible regions, only {m}."
        )
    index = pd.Index(wide.index.astype(str))
    absent = pd.Index(slots).difference(index)
    if len(absent):
        raise ValueError(f"wide has no row for region {absent[0]!r}.")
    ranking = rank_regions(wide.set_axis(index, axis=0).loc[list(slots)], n_treated)
    chosen = disjoint_best(ranking, k - 1)
    position = {name: i for i, name in enumerate(slots)}
    sets = tuple(np.array([position[r] for r in regions], dtype=np.intp) for regions in chosen)
    details.update(
        n_regions=m,
        n_candidates=len(ranking),
        chosen=[list(regions) for regions in chosen],
        ranking=ranking_records(ranking, RANKING_KEEP),
    )
    return _Plan("fixed", n, k, m, region_sets=sets, slot_of_unit=slot_of_unit, block=block,
                 details=details)  # fmt: skip


def _draw_base(plan: _Plan, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``n_draws`` slot-level draws of a ``groups``, ``tuples`` or ``fixed`` plan."""
    out = np.empty((n_draws, plan.n_slots), dtype=np.int8)
    if plan.kind == "groups":
        for slots, base in plan.groups:
            out[:, slots] = rng.permuted(np.tile(base, (n_draws, 1)), axis=1)
    elif plan.kind == "tuples":
        n_tuples, k = plan.tuples.shape
        out[:] = -1
        picked = rng.permuted(np.tile(np.arange(n_tuples) < plan.n_pick, (n_draws, 1)), axis=1)
        arms = rng.permuted(np.tile(np.arange(k, dtype=np.int8), (n_draws, n_tuples, 1)), axis=2)
        out[:, plan.tuples.ravel()] = np.where(picked[:, :, None], arms, -1).reshape(n_draws, -1)
    else:
        out[:] = 0
        order = rng.permuted(
            np.tile(np.arange(1, plan.n_arms, dtype=np.int8), (n_draws, 1)), axis=1
        )
        for j, regions in enumerate(plan.region_sets):
            out[:, regions] = order[:, j, None]
    return out


def _draw(plan: _Plan, n_draws: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """``n_draws`` unit-level draws (sorted unit order) and, for rerandomization, its figures."""
    if plan.z is None:
        codes = _draw_base(plan, n_draws, rng)
        return (codes if plan.slot_of_unit is None else codes[:, plan.slot_of_unit]), {}
    wanted = math.ceil(2 * n_draws / plan.acceptance)  # about twice the expected need
    batch = max(64, min(wanted, BATCH_CELLS // max(plan.n_units, 1)))
    max_tries = max(MIN_TRIES, math.ceil(20 * n_draws / plan.acceptance))
    kept: list[np.ndarray] = []
    stats: list[np.ndarray] = []
    n_kept = tried = 0
    while n_kept < n_draws:
        if tried >= max_tries:
            raise ValueError(
                f"{plan.threshold_name}: only {n_kept} of {tried} random assignments had "
                f"Mahalanobis <= {plan.threshold:.4g}, {n_draws} needed; raise it."
            )
        codes = _draw_base(plan, batch, rng)
        m = joint_mahalanobis(codes, plan.z, plan.n_arms)
        ok = np.flatnonzero(m <= plan.threshold)[: n_draws - n_kept]
        tried += int(ok[-1]) + 1 if n_kept + len(ok) == n_draws else batch
        kept.append(codes[ok])
        stats.append(m[ok])
        n_kept += len(ok)
    info = {
        "draws_tried": tried,
        "acceptance_rate": n_draws / tried,
        "mahalanobis": float(np.concatenate(stats)[0]),  # of the first draw (assign's)
    }
    return np.concatenate(kept), info


def _prepare(units: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Units sorted by id (str) and, per sorted unit, its row in the caller's frame."""
    if not isinstance(units, pd.DataFrame):
        raise ValueError("units must be a DataFrame (one row per eligible unit).")
    if len(units) == 0:
        raise ValueError("units is empty: no eligible unit.")
    ids = units.index.astype(str)
    if ids.has_duplicates:
        raise ValueError(f"units: unit id {ids[ids.duplicated()][0]!r} appears twice.")
    order = np.argsort(ids.to_numpy(dtype=object), kind="stable")
    return units.iloc[order].set_axis(ids[order], axis=0), order


def _arm_names(arms: Sequence[str]) -> tuple[str, ...]:
    names = (arms,) if isinstance(arms, str) else tuple(str(a) for a in arms)
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise ValueError(f"arms == {list(names)}, needs two or more distinct names, control first.")
    if len(names) > 127:
        raise ValueError(f"arms has {len(names)} names, at most 127.")
    return names


def assign(
    units: pd.DataFrame,
    arms: Sequence[str],
    *,
    method: str,
    per_arm: int | None,
    seed: int,
    strata: Sequence[str] = (),
    covariates: Sequence[str] = ("level", "trend"),
    cluster: str | None = None,
    max_mahalanobis: float | None = None,
    acceptance: float = 0.05,
    wide: pd.DataFrame | None = None,
    n_treated_regions: int = 1,
) -> Assignment:
    """Assign the eligible units to the arms by a seeded design (see the module doc).

    Args:
        units: one row per eligible unit (index: unit id, made str); columns include the
            ``covariates`` (matched, rerandomized), ``strata`` and ``cluster`` columns the
            design uses. Size bands: :func:`size_bands`.
        arms: arm names, control first (e.g. ``["control", "cash", "gift"]``).
        method: one of :data:`DESIGN_METHODS`.
        per_arm: units per arm (matched: tuples; cluster: clusters); None: all eligible
            units split as evenly as the design allows. Must be None or
            ``n_treated_regions`` for ``synthetic_region``.
        seed: non-negative int; ``np.random.default_rng(seed)`` draws the design.
        strata: columns to stratify on (stratified, matched, rerandomized only).
        covariates: columns balanced on (matched, rerandomized).
        cluster: column of the cluster (cluster) or region (synthetic_region; None: the
            units are the regions).
        max_mahalanobis: rerandomization threshold; None: the ``acceptance`` quantile of
            the chi-square with ``rank(covariates) * (len(arms) - 1)`` df.
        acceptance: target share of rerandomization draws accepted, in (0, 1).
        wide: regions x periods pre-period panel (synthetic_region).
        n_treated_regions: regions per programme arm (synthetic_region).

    Returns:
        The :class:`Assignment`; it equals the first row of :func:`draw_codes` with
        ``rng=np.random.default_rng(seed)`` and ``n_draws=1``.

    Raises:
        ValueError: a parameter is invalid or there are not enough eligible units; the
            message names the parameter.
    """
    names = _arm_names(arms)
    seed = _check_int(seed, "seed", 0)
    frame, _ = _prepare(units)
    plan = _plan(frame, names, method, per_arm, strata, covariates, cluster, max_mahalanobis,
                 acceptance, wide, n_treated_regions)  # fmt: skip
    codes, info = _draw(plan, 1, np.random.default_rng(seed))
    code = codes[0]
    in_pilot = code >= 0
    index = pd.Index(frame.index[in_pilot], name="unit")
    arm = pd.Series(np.asarray(names, dtype=object)[code[in_pilot]], index=index, name="arm")
    block = None
    if plan.block is not None:
        block = pd.Series(plan.block[in_pilot], index=index, name="block", dtype=object)
    details = {
        **plan.details,
        **info,
        "n_pilot": int(in_pilot.sum()),
        "sizes": {name: int(np.sum(code == a)) for a, name in enumerate(names)},
    }
    if method in ("cluster", "synthetic_region"):
        details["clusters"] = {
            name: sorted(set(plan.block[code == a])) for a, name in enumerate(names)
        }
    return Assignment(arm=arm, block=block, method=method, seed=seed, arms=names, details=details)


def draw_codes(
    units: pd.DataFrame,
    n_arms: int,
    *,
    method: str,
    per_arm: int | None,
    n_draws: int,
    rng: np.random.Generator | int,
    strata: Sequence[str] = (),
    covariates: Sequence[str] = ("level", "trend"),
    cluster: str | None = None,
    max_mahalanobis: float | None = None,
    acceptance: float = 0.05,
    wide: pd.DataFrame | None = None,
    n_treated_regions: int = 1,
) -> np.ndarray:
    """``n_draws`` independent assignments of one design, vectorized.

    Same parameters as :func:`assign` (``n_arms`` arms, control = 0). Returns an ``int8``
    array (n_draws, len(units)) in the row order of ``units``: -1 = not in the pilot,
    0 = control, 1 .. n_arms - 1 the programme arms. Draws depend on the set of units and
    their data, not on the row order. For power analysis (placebo pilots) and randomization
    inference.
    """
    n_arms = _check_int(n_arms, "n_arms", 2)
    n_draws = _check_int(n_draws, "n_draws", 1)
    frame, order = _prepare(units)
    names = tuple(str(a) for a in range(n_arms))
    plan = _plan(frame, names, method, per_arm, strata, covariates, cluster, max_mahalanobis,
                 acceptance, wide, n_treated_regions)  # fmt: skip
    codes, _ = _draw(plan, n_draws, np.random.default_rng(rng))
    out = np.empty_like(codes)
    out[:, order] = codes
    return out
