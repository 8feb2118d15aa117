"""Validity of the pilot estimators, measured: A/A false-positive rate and interval coverage.

Run: ``python benchmarks/validity.py`` (full study, writes ``benchmarks/validity_results.md``)
or ``python benchmarks/validity.py --quick`` (a smoke run, prints only).

The requirement: at alpha = 5 %, over >= 1,000 placebo pilots on the synthetic chain, the
A/A false-positive rate (FPR) of every method must lie in [3.5 %, 6.5 %] with 8, 16 and
32 pilot stores, and the 95 % interval must cover a known injected effect in
[93.5 %, 96.5 %] of the pilots. This script measures both; it does not tune anything.

Data
    ``--chains`` synthetic chains from :func:`loyalty_pilot.pilots.synthetic.generate`
    (different seeds, 4-6 regions), each aggregated with a pandas groupby to a store x
    week panel of weekly sales (sum of basket amounts; a store-week without baskets is 0).
    A placebo pilot picks a chain (round robin, so the results are not conditional on one
    chain), a window of ``--pre`` + ``--post`` weeks at a random calendar position (so
    Christmas, Easter, ... fall in the test period of some pilots and not others), ``N``
    stores at random and, among them, ``N/2`` treated by complete randomization.

A/A (false positives)
    No effect: the share of pilots whose p-value of "no effect" is <= 5 %.

Coverage (same pilots, same assignments)
    The treated stores' test-period outcomes are multiplied by ``1 + --effect`` (5 %):
    a constant *multiplicative* effect at the panel level, which is what the generator's
    ``Effect(stores=..., basket_uplift=0.05)`` gives in expectation (it multiplies every
    basket amount of those stores from its start). As the effect is injected into the
    panel, the counterfactual is known exactly, and the true effect per store and week is
    ``0.05 * mean(treated stores' counterfactual sales over the test period)`` -- the
    estimand of every method here (``Comparison.estimate`` is the absolute effect per
    unit and period). Coverage is the share of 95 % intervals that contain it.

Outcomes (``--outcomes``, both by default)
    ``sales``: weekly sales in EUR. ``index``: each store's weekly sales divided by its
    own pre-period mean, x 100 (stores weigh equally; the 5 % effect is then ~5 points for
    every store). ``ancova`` is skipped on the index (its covariate, the pre-period mean,
    is 100 for every store).

Generator-injected effect (``--gen-pilots``, one configuration)
    ``--gen-chains`` chains generated with ``Effect(stores=<32 random stores>,
    basket_uplift=0.05)`` from a test start at a random week; each pilot takes ``N/2``
    treated stores among the 32 affected ones and ``N/2`` controls among the others (with
    the affected set itself random, this is complete randomization). The generator does
    not give the same draws with and without the effect, so the truth is the expected
    effect ``0.05 / 1.05 * (treated stores' observed mean over the test period)``; its
    error against the realised effect is about 5 % of the basket-level noise of that
    mean, negligible next to the interval widths.

Total sales: the ratio DiD (``--ratio-placebos``, its own section)
    :func:`~loyalty_pilot.experiments.ratio.ratio_did` estimates the uplift of the treated
    stores' *total* sales, ``ratio`` plain and ``ratio-adjusted`` (``adjust="regression"``),
    with ``did-log`` (``did`` on log sales, relative = exp(effect) - 1) as the reference.
    Pilots of N stores: equal arms (N/2 treated, N/2 controls, as above) and "all other
    stores as controls" (N/2 treated, every other store of the chain a control). Effects on
    the treated stores' test weeks: ``homogeneous`` (x 1.05 everywhere), ``small-half``
    (x 1.10 on the half of the treated stores with the smaller pre-period sales, nothing on
    the others) and ``rank`` (x (1 + 0.10 (n1 - r) / (n1 - 1)), r = 1 for the smallest
    store: the effect falls with size). The truth is the relative uplift of the treated
    stores' total test-period sales, computed from the injected panel:
    ``sum(with effect) / sum(without) - 1``; coverage is that of the relative interval
    ``[rel_ci_low, rel_ci_high]``. The A/A false-positive rate is in the homogeneous rows.

Methods (public functions only): ``did`` with CR2 (the default), CR1 and a wild cluster
bootstrap (``--boot`` draws), ``ancova``, ``randomization_inference`` (complete design;
exact enumeration up to 20,000 assignments, i.e. N = 8 and 16, else ``--ri-draws`` draws),
``event_study`` (its main estimate: mean post effect against the last pre week) and
``synthetic_control`` (the treated stores' average against the N/2 controls as donors,
placebo-in-space inference). A call that raises, or returns no p-value, is counted as a
failure (column ``fail``) and left out of the rates; a non-ok status with figures (e.g.
``poor_fit``) is counted in ``flag`` and kept.
"""

from __future__ import annotations

import os

# Run as a script: one BLAS thread. The estimators do many small matrix products, for
# which threading only adds contention (event_study is 4-6x faster single-threaded on the
# 2-core machine). Set before numpy is imported; untouched when imported by the tests.
if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import dataclasses
import datetime
import math
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from loyalty_pilot.experiments.did import ancova, did, event_study
from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.randomization import randomization_inference
from loyalty_pilot.experiments.ratio import ratio_did
from loyalty_pilot.experiments.results import Comparison
from loyalty_pilot.experiments.synthetic_control import synthetic_control
from loyalty_pilot.pilots.synthetic import Effect, generate

ALPHA = 0.05
FPR_BAND = (0.035, 0.065)
COVERAGE_BAND = (0.935, 0.965)
START = datetime.date(2024, 1, 1)
DEFAULT_METHOD = "did-cr2"
OUTCOMES = {
    "sales": "weekly sales (EUR) per store",
    "index": "weekly sales per store as an index, its pre-period mean = 100",
    "log": "log of weekly sales per store (what `evaluate` uses by default: scale auto)",
}
RESULTS = Path(__file__).resolve().with_name("validity_results.md")

Method = Callable[[PanelData, int], Comparison]


def make_methods(boot: int, ri_draws: int, ri_exact_max: int = 20_000) -> dict[str, Method]:
    """Method name -> ``f(data, seed)``; the seed feeds the bootstrap and RI draws."""
    return {
        "did-cr2": lambda d, s: did(d),
        "did-cr1": lambda d, s: did(d, inference="cr1"),
        "did-wild": lambda d, s: did(d, inference="wild", n_boot=boot, rng=s),
        "ancova": lambda d, s: ancova(d),
        "ri": lambda d, s: randomization_inference(
            d, design="complete", n_draws=ri_draws, exact_max=ri_exact_max, rng=s
        ),
        "event-study": lambda d, s: event_study(d),
        "synthetic-control": lambda d, s: synthetic_control(d),
    }


METHOD_NAMES = tuple(make_methods(1, 1))


def _did_log(data: PanelData) -> Comparison:
    """``did`` on log sales, relative figures ``exp(.) - 1`` (what ``evaluate`` reports)."""
    res = did(dataclasses.replace(data, y=np.log(np.maximum(data.y, 1e-9))))
    return dataclasses.replace(
        res,
        relative=math.expm1(res.estimate),
        rel_ci_low=math.expm1(res.ci_low),
        rel_ci_high=math.expm1(res.ci_high),
    )


RATIO_METHODS: dict[str, Method] = {
    "ratio": lambda d, s: ratio_did(d),
    "ratio-adjusted": lambda d, s: ratio_did(d, adjust="regression"),
    "did-log": lambda d, s: _did_log(d),
}
RATIO_EFFECTS = ("homogeneous", "small-half", "rank")


# --- data ---------------------------------------------------------------------------


def weekly_sales(chain, weeks: int) -> np.ndarray:
    """Store x week matrix of summed basket amounts (rows in ``chain.stores`` order)."""
    b = chain.baskets
    week = (b["date"].dt.normalize() - pd.Timestamp(START)).dt.days // 7
    table = (
        b.groupby([b["store_id"], week.rename("week")])["amount"]
        .sum()
        .unstack(fill_value=0.0)
        .reindex(index=chain.stores["store_id"], columns=range(weeks), fill_value=0.0)
    )
    return table.to_numpy(dtype=float)


def make_chains(n: int, stores: int, customers: int, weeks: int, seed: int) -> list[np.ndarray]:
    return [
        weekly_sales(
            generate(stores, 4 + k % 3, customers, weeks, seed=seed + k, start=START), weeks
        )
        for k in range(n)
    ]


@dataclass
class Pilot:
    """One placebo pilot: the A/A panel, the same panel with the effect, and the truth."""

    aa: PanelData | None
    effect: PanelData
    truth: float
    seed: int
    base: float  # the treated stores' counterfactual mean over the test period


def draw_pilots(
    panels: list[np.ndarray],
    size: int,
    n: int,
    pre: int,
    post: int,
    effect: float,
    seed: int,
) -> list[Pilot]:
    rng = np.random.default_rng([seed, size])
    n_stores, n_weeks = panels[0].shape
    length = pre + post
    is_post = np.arange(length) >= pre
    out = []
    for k in range(n):
        y_all = panels[k % len(panels)]
        start = int(rng.integers(0, n_weeks - length + 1))
        stores = rng.choice(n_stores, size, replace=False)
        treated = np.zeros(size, dtype=bool)
        treated[rng.choice(size, size // 2, replace=False)] = True
        y = y_all[stores, start : start + length]
        y_eff = y.copy()
        block = np.ix_(treated, is_post)
        y_eff[block] *= 1.0 + effect
        truth = effect * float(y[block].mean())
        units, periods = stores, np.arange(start, start + length)
        out.append(
            Pilot(
                PanelData(y, units, periods, treated, is_post),
                PanelData(y_eff, units, periods, treated, is_post),
                truth,
                int(rng.integers(2**31)),
                truth / effect,
            )
        )
    return out


def draw_generator_pilots(
    n_chains: int,
    stores: int,
    customers: int,
    weeks: int,
    size: int,
    n: int,
    pre: int,
    post: int,
    effect: float,
    seed: int,
) -> list[Pilot]:
    """Pilots on chains where ``generate`` itself injected the effect (see module doc)."""
    rng = np.random.default_rng([seed, 7, size])
    length = pre + post
    is_post = np.arange(length) >= pre
    out = []
    per_chain = math.ceil(n / n_chains)
    for c in range(n_chains):
        start_week = int(rng.integers(pre, weeks - post + 1))
        affected = np.sort(rng.choice(stores, stores // 2, replace=False))
        ids = tuple(f"S{i + 1:03d}" for i in affected)
        chain = generate(
            stores,
            4 + c % 3,
            customers,
            weeks,
            seed=seed + 1000 + c,
            start=START,
            effects=[
                Effect(
                    start=START + datetime.timedelta(weeks=start_week),
                    stores=ids,
                    basket_uplift=effect,
                )
            ],
        )
        assert list(chain.stores["store_id"][affected]) == list(ids)
        y_all = weekly_sales(chain, weeks)[:, start_week - pre : start_week + post]
        others = np.setdiff1d(np.arange(stores), affected)
        for _ in range(min(per_chain, n - len(out))):
            t = rng.choice(affected, size // 2, replace=False)
            c_ = rng.choice(others, size - size // 2, replace=False)
            units = np.concatenate([t, c_])
            treated = np.arange(size) < size // 2
            y = y_all[units]
            truth = effect / (1.0 + effect) * float(y[np.ix_(treated, is_post)].mean())
            periods = np.arange(start_week - pre, start_week + post)
            out.append(
                Pilot(
                    None,
                    PanelData(y, units, periods, treated, is_post),
                    truth,
                    int(rng.integers(2**31)),
                    truth / effect,
                )
            )
    return out


def as_outcome(pilots: list[Pilot], outcome: str, effect: float) -> list[Pilot]:
    """``sales``: as drawn; ``index``: each store's sales / its pre-period mean x 100.

    The pre-period is untouched by the effect, so the same factor scales the A/A and the
    effect panels, and the injected effect stays 5 % of the (indexed) counterfactual.
    """
    if outcome == "sales":
        return pilots
    if outcome == "log":
        # A multiplicative effect is an additive log(1 + effect) on every treated cell.
        logged = []
        for p in pilots:
            eff = dataclasses.replace(p.effect, y=np.log(np.maximum(p.effect.y, 1e-9)))
            aa = (
                None
                if p.aa is None
                else dataclasses.replace(p.aa, y=np.log(np.maximum(p.aa.y, 1e-9)))
            )
            logged.append(Pilot(aa, eff, float(np.log1p(effect)), p.seed, 1.0))
        return logged
    out = []
    for p in pilots:
        post = p.effect.post
        base = p.effect.y[:, ~post].mean(axis=1, keepdims=True)
        scale = 100.0 / np.where(base > 0, base, 1.0)
        eff = dataclasses.replace(p.effect, y=p.effect.y * scale)
        aa = None if p.aa is None else dataclasses.replace(p.aa, y=p.aa.y * scale)
        truth = effect / (1.0 + effect) * float(eff.y[np.ix_(eff.treated, post)].mean())
        out.append(Pilot(aa, eff, truth, p.seed, truth / effect))
    return out


@dataclass
class RatioPilot:
    """A total-sales pilot: the A/A panel and, per effect, the panel and its true uplift."""

    aa: PanelData
    effects: dict[str, tuple[PanelData, float]]
    seed: int


def effect_factors(pre_sales: np.ndarray, kind: str, effect: float) -> np.ndarray:
    """Multiplier of each treated store's test weeks (``pre_sales``: its pre-period mean)."""
    n1 = len(pre_sales)
    rank = np.empty(n1)
    rank[np.argsort(pre_sales, kind="stable")] = np.arange(1, n1 + 1)
    if kind == "homogeneous":
        return np.full(n1, 1.0 + effect)
    if kind == "small-half":
        return np.where(rank <= n1 // 2, 1.0 + 2.0 * effect, 1.0)
    if kind == "rank":
        return 1.0 + 2.0 * effect * (n1 - rank) / (n1 - 1)
    raise ValueError(f"kind == {kind!r}, must be one of {RATIO_EFFECTS}.")


def draw_ratio_pilots(
    panels: list[np.ndarray],
    size: int,
    n: int,
    pre: int,
    post: int,
    effect: float,
    seed: int,
    controls: str,
) -> list[RatioPilot]:
    """``n`` pilots of ``size // 2`` treated stores against ``size // 2`` controls
    (``controls="matched"``) or every other store (``"all"``), see the module doc."""
    rng = np.random.default_rng([seed, size, controls == "all"])
    n_stores, n_weeks = panels[0].shape
    length = pre + post
    is_post = np.arange(length) >= pre
    n1 = size // 2
    out = []
    for k in range(n):
        y_all = panels[k % len(panels)]
        start = int(rng.integers(0, n_weeks - length + 1))
        stores = rng.permutation(n_stores)[: size if controls == "matched" else n_stores]
        treated = np.zeros(len(stores), dtype=bool)
        treated[rng.choice(len(stores), n1, replace=False)] = True
        y = y_all[stores, start : start + length]
        units, periods = stores, np.arange(start, start + length)
        aa = PanelData(y, units, periods, treated, is_post)
        block = np.ix_(treated, is_post)
        effects = {}
        for kind in RATIO_EFFECTS:
            factors = effect_factors(y[treated][:, ~is_post].mean(axis=1), kind, effect)
            y_eff = y.copy()
            y_eff[block] *= factors[:, None]
            truth = float(y_eff[block].sum() / y[block].sum() - 1.0)
            effects[kind] = (PanelData(y_eff, units, periods, treated, is_post), truth)
        out.append(RatioPilot(aa, effects, int(rng.integers(2**31))))
    return out


def evaluate_ratio(name: str, fn: Method, pilots: list[RatioPilot], config: str) -> list[Cell]:
    """One cell per effect; the A/A false positives are counted in the first (homogeneous)."""
    cells = [Cell(name, f"{config}, {kind}") for kind in RATIO_EFFECTS]
    for pilot in pilots:
        res = _call(cells[0], fn, pilot.aa, pilot.seed)
        if res is not None:
            cells[0].n += 1
            cells[0].rejections += res.p_value <= ALPHA
        for cell, kind in zip(cells, RATIO_EFFECTS, strict=True):
            data, truth = pilot.effects[kind]
            res = _call(cell, fn, data, pilot.seed)
            if res is None or math.isnan(res.rel_ci_low) or math.isnan(res.rel_ci_high):
                cell.fail += res is not None
                continue
            cell.n_cov += 1
            cell.covered += res.rel_ci_low <= truth <= res.rel_ci_high
            cell.eff_rejections += res.p_value <= ALPHA
            cell.half_widths.append((res.rel_ci_high - res.rel_ci_low) / 2)
    return cells


def ratio_section(args: argparse.Namespace, panels: list[np.ndarray]) -> tuple[str, list[Cell]]:
    """The total-sales study: every size x {equal arms, all other stores} x effect."""
    t0 = time.perf_counter()
    n_stores = panels[0].shape[0]
    cells: list[Cell] = []
    print("total sales: the ratio DiD", flush=True)
    for controls in ("matched", "all"):
        for size in args.sizes:
            pilots = draw_ratio_pilots(panels, size, args.ratio_placebos, args.pre, args.post,
                                       args.effect, args.seed, controls)  # fmt: skip
            n1 = size // 2
            config = (f"N = {size} ({n1} + {n1})" if controls == "matched"
                      else f"{n1} treated + {n_stores - n1} controls")  # fmt: skip
            for name, fn in RATIO_METHODS.items():
                cells += evaluate_ratio(name, fn, pilots, config)
                for cell in cells[-len(RATIO_EFFECTS) :]:
                    print(row(cell), flush=True)
    seconds = time.perf_counter() - t0
    ratio_cells = [c for c in cells if c.method != "did-log"]
    text = "\n".join(
        [
            f"### Total sales: the ratio DiD ({seconds:.0f} s)",
            "",
            f"{args.ratio_placebos} pilots per size and control set; effects on the treated "
            f"stores' test weeks: homogeneous x {1 + args.effect:g}; small-half: x "
            f"{1 + 2 * args.effect:g} on the smaller half of the treated stores (pre-period "
            f"sales), none on the others; rank: x (1 + {2 * args.effect:g} (n1 - r)/(n1 - 1)), "
            "r = 1 the smallest. Truth: the treated stores' total test-period sales with the "
            "effect over without, - 1. Coverage of the relative interval; half-width in "
            "points of relative uplift. FPR: A/A, in the homogeneous rows. `did-log` is the "
            "reference (store-equal-weighted: its target is not the total-sales uplift when "
            "the effect depends on size).",
            "",
            "Size-correlated effects over-cover by construction, not by a variance error: "
            "the truth is the pilot's own treated stores' uplift, so the ratio's error "
            "`tau - log(1 + truth)` is exactly its A/A error (the effect multiplies the "
            "treated test-period total in both), while the interval also carries the spread "
            "of the store effects (it shows in the growth residuals, from which no estimator "
            "can tell it apart from noise). That spread is variance for the uplift of other "
            "stores (a rollout) and not for the pilot's own: the usual conservativeness of "
            "the Neyman variance under heterogeneous effects.",
            "",
            HEADER,
            "|" + "---|" * 14,
            *[row(c) for c in cells],
            "",
            summary(ratio_cells, args.sizes),
            "",
        ]
    )
    return text, cells


# --- evaluation ---------------------------------------------------------------------


@dataclass
class Cell:
    """Counts for one method x configuration."""

    method: str
    config: str
    n: int = 0  # pilots evaluated under A/A
    rejections: int = 0
    n_cov: int = 0
    covered: int = 0
    eff_rejections: int = 0
    fail: int = 0
    flag: int = 0
    seconds: float = 0.0
    half_widths: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    def fpr(self) -> float:
        return self.rejections / self.n if self.n else math.nan

    def coverage(self) -> float:
        return self.covered / self.n_cov if self.n_cov else math.nan

    def power(self) -> float:
        return self.eff_rejections / self.n_cov if self.n_cov else math.nan


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return low, high


def _call(cell: Cell, fn: Method, data: PanelData, seed: int) -> Comparison | None:
    t0 = time.perf_counter()
    try:
        result = fn(data, seed)
    except Exception as exc:  # recorded, never fatal: the study must finish
        key = f"{type(exc).__name__}: {exc}"[:120]
        cell.errors[key] = cell.errors.get(key, 0) + 1
        cell.fail += 1
        return None
    finally:
        cell.seconds += time.perf_counter() - t0
    if result.status != "ok":
        cell.statuses[result.status] = cell.statuses.get(result.status, 0) + 1
        cell.flag += 1
    if not math.isfinite(result.p_value):
        cell.fail += 1
        return None
    return result


def evaluate(cell: Cell, fn: Method, pilots: list[Pilot]) -> Cell:
    for pilot in pilots:
        if pilot.aa is not None:
            res = _call(cell, fn, pilot.aa, pilot.seed)
            if res is not None:
                cell.n += 1
                cell.rejections += res.p_value <= ALPHA
        res = _call(cell, fn, pilot.effect, pilot.seed)
        if res is not None and not (math.isnan(res.ci_low) or math.isnan(res.ci_high)):
            cell.n_cov += 1
            cell.covered += res.ci_low <= pilot.truth <= res.ci_high
            cell.eff_rejections += res.p_value <= ALPHA
            cell.half_widths.append((res.ci_high - res.ci_low) / 2 / pilot.base)
        elif res is not None:
            cell.fail += 1
    return cell


def verdict(cell: Cell) -> tuple[bool | None, bool]:
    fpr_ok = None if not cell.n else FPR_BAND[0] <= cell.fpr() <= FPR_BAND[1]
    cov_ok = cell.n_cov > 0 and COVERAGE_BAND[0] <= cell.coverage() <= COVERAGE_BAND[1]
    return fpr_ok, cov_ok


# --- reporting ----------------------------------------------------------------------


def pct(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.{digits}f} %"


HEADER = (
    "| method | config | pilots | FPR | FPR 95 % CI | coverage | coverage 95 % CI "
    "| power | median CI half-width | fail | flag | FPR band | coverage band | seconds |"
)


def row(cell: Cell) -> str:
    lo, hi = clopper_pearson(cell.rejections, cell.n)
    clo, chi = clopper_pearson(cell.covered, cell.n_cov)
    fpr_ok, cov_ok = verdict(cell)
    hw = float(np.median(cell.half_widths)) if cell.half_widths else math.nan
    hw_text = "inf" if math.isinf(hw) else pct(hw)
    mark = {True: "pass", False: "**FAIL**", None: "-"}
    fpr_text = pct(cell.fpr()) if cell.n else "-"
    ci_text = f"[{pct(lo)}, {pct(hi)}]" if cell.n else "-"
    return (
        f"| {cell.method} | {cell.config} | {max(cell.n, cell.n_cov)} | {fpr_text} | {ci_text} "
        f"| {pct(cell.coverage())} | [{pct(clo)}, {pct(chi)}] | {pct(cell.power())} "
        f"| {hw_text} | {cell.fail} | {cell.flag} | {mark[fpr_ok]} | {mark[cov_ok]} "
        f"| {cell.seconds:.1f} |"
    )


def ri_floor(size: int) -> str:
    """Largest attainable RI rejection rate <= alpha under the exact complete design."""
    count = math.comb(size, size // 2)
    if count > 20_000:
        return ""
    # |T| is symmetric under swapping the arms (equal arms): p-values step by 2/count.
    step = 2 / count if size % 2 == 0 else 1 / count
    return pct(math.floor(ALPHA / step) * step, 2)


def summary(cells: list[Cell], sizes: list[int]) -> str:
    lines = []
    by_method: dict[str, list[Cell]] = {}
    for cell in cells:
        by_method.setdefault(cell.method, []).append(cell)
    passing, failing = [], []
    for method, group in by_method.items():
        bad = []
        for cell in group:
            fpr_ok, cov_ok = verdict(cell)
            if fpr_ok is False:
                bad.append(f"FPR {pct(cell.fpr())} at {cell.config}")
            if not cov_ok:
                bad.append(f"coverage {pct(cell.coverage())} at {cell.config}")
        (failing if bad else passing).append((method, bad))
    lines.append(
        "Pass (every configuration inside both bands): "
        + (", ".join(f"`{m}`" for m, _ in passing) or "none")
        + "."
    )
    for method, bad in failing:
        lines.append(f"Fail: `{method}` -- " + "; ".join(bad) + ".")
    if any(cell.method == "ri" for cell in cells):
        floors = [f"N = {s}: {ri_floor(s)}" for s in sizes if ri_floor(s)]
        if floors:
            lines.append(
                "Exact RI cannot reject more often than the largest multiple of its p-value "
                "step below 5 % (" + ", ".join(floors) + ")."
            )
    return "\n\n".join(lines)


def write_markdown(path: Path, text: str) -> None:
    path.write_text(text)


# --- main ---------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--placebos", type=int, default=2000, help="placebo pilots per size")
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), choices=METHOD_NAMES)
    p.add_argument("--seed", type=int, default=20240101)
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--stores", type=int, default=64)
    p.add_argument("--customers", type=int, default=30_000)
    p.add_argument("--weeks", type=int, default=104)
    p.add_argument("--pre", type=int, default=40)
    p.add_argument("--post", type=int, default=12)
    p.add_argument("--effect", type=float, default=0.05)
    p.add_argument(
        "--outcomes",
        nargs="+",
        choices=tuple(OUTCOMES),
        default=list(OUTCOMES),
        help="weekly sales, and/or each store's sales as an index (pre-period mean = 100)",
    )
    p.add_argument("--boot", type=int, default=999, help="wild bootstrap draws")
    p.add_argument("--ri-draws", type=int, default=2000, help="RI draws when not exact")
    p.add_argument("--gen-pilots", type=int, default=1000, help="0: skip the generator run")
    p.add_argument("--gen-size", type=int, default=16)
    p.add_argument("--gen-chains", type=int, default=40)
    p.add_argument("--out", type=Path, default=None, help=f"markdown file (full run: {RESULTS})")
    p.add_argument(
        "--ratio-placebos",
        type=int,
        default=2000,
        help="pilots per size and control set of the total-sales study (0: skip)",
    )
    p.add_argument(
        "--ratio-only",
        action="store_true",
        help="only the total-sales study (no --outcomes, no generator run)",
    )
    p.add_argument("--quick", action="store_true", help="small smoke run, no file written")
    args = p.parse_args(argv)
    if args.quick:
        args.placebos = min(args.placebos, 100)
        args.chains, args.customers = 2, 8000
        args.gen_pilots, args.gen_chains = min(args.gen_pilots, 50), 2
        args.ratio_placebos = min(args.ratio_placebos, 100)
    elif args.out is None:
        args.out = RESULTS
    for s in args.sizes:
        if s < 4 or s % 2 or s > args.stores:
            p.error(f"--sizes: {s} must be even, >= 4 and <= --stores")
    return args


def main(argv: list[str] | None = None) -> list[Cell]:
    args = parse(argv)
    command = f"python benchmarks/validity.py {shlex.join(sys.argv[1:] if argv is None else argv)}"
    command = command.rstrip()
    all_methods = make_methods(args.boot, args.ri_draws)
    t_start = time.perf_counter()
    t0 = time.perf_counter()
    panels = make_chains(args.chains, args.stores, args.customers, args.weeks, args.seed)
    t_chains = time.perf_counter() - t0
    print(f"{args.chains} chains generated and aggregated in {t_chains:.1f} s", flush=True)
    drawn = {
        size: draw_pilots(panels, size, args.placebos, args.pre, args.post, args.effect, args.seed)
        for size in args.sizes
    }
    if args.ratio_only:
        args.outcomes, args.gen_pilots = [], 0
    gen_drawn: list[Pilot] = []
    t_gen = 0.0
    if args.gen_pilots:
        t0 = time.perf_counter()
        gen_drawn = draw_generator_pilots(
            args.gen_chains,
            args.stores,
            args.customers,
            args.weeks,
            args.gen_size,
            args.gen_pilots,
            args.pre,
            args.post,
            args.effect,
            args.seed,
        )
        t_gen = time.perf_counter() - t0
        print(f"{args.gen_chains} generator-effect chains in {t_gen:.1f} s", flush=True)

    sections, everything = [], []
    for outcome in args.outcomes:
        t_out = time.perf_counter()
        notes = []
        methods = {k: v for k, v in all_methods.items() if k in args.methods}
        if outcome == "index" and methods.pop("ancova", None) is not None:
            notes.append(
                "`ancova` is not run on the index: every store's pre-period mean is 100 by "
                "construction, so its covariate is constant (it returns `not_identified`)."
            )
        cells: list[Cell] = []
        print(f"outcome {outcome}", flush=True)
        for size, pilots in drawn.items():
            pilots = as_outcome(pilots, outcome, args.effect)
            for name, fn in methods.items():
                cells.append(evaluate(Cell(name, f"N = {size}"), fn, pilots))
                print(row(cells[-1]), flush=True)
        if gen_drawn:
            pilots = as_outcome(gen_drawn, outcome, args.effect)
            for name, fn in methods.items():
                config = f"N = {args.gen_size}, generate(Effect)"
                cells.append(evaluate(Cell(name, config), fn, pilots))
                print(row(cells[-1]), flush=True)
        sections.append(section(outcome, cells, args, time.perf_counter() - t_out, notes))
        everything += cells
    if args.ratio_placebos:
        text, cells = ratio_section(args, panels)
        sections.append(text)
        everything += cells
    total = time.perf_counter() - t_start
    text = "\n".join(
        [
            "## Validity: A/A false-positive rate and interval coverage",
            "",
            f"`{command}`",
            "",
            f"{platform.python_implementation()} {platform.python_version()}, numpy "
            f"{np.__version__}, {datetime.date.today().isoformat()}; total {total:.0f} s "
            f"(generating the chains {t_chains:.0f} s + {t_gen:.0f} s). {args.chains} chains "
            f"of {args.stores} stores, {args.customers:,} customers, {args.weeks} weeks (seeds "
            f"{args.seed}...{args.seed + args.chains - 1}); each placebo pilot: a chain in turn, "
            f"a random window of {args.pre} pre + {args.post} test weeks, N random stores, N/2 "
            f"treated by complete randomization; coverage: the treated stores' test-period "
            f"outcome x {1 + args.effect:g} (true effect {args.effect:g} x their counterfactual "
            "mean). generate(Effect): "
            f"{args.gen_pilots} pilots on {args.gen_chains} chains generated with "
            f"`Effect(stores=<half the stores>, basket_uplift={args.effect:g})`, treated stores "
            f"among the affected ones (truth: {args.effect:g}/{1 + args.effect:g} x the treated "
            "observed test-period mean). Bands: FPR in "
            f"[{pct(FPR_BAND[0])}, {pct(FPR_BAND[1])}], coverage in [{pct(COVERAGE_BAND[0])}, "
            f"{pct(COVERAGE_BAND[1])}]. CIs: Clopper-Pearson 95 %. Power: rejections with the "
            "effect. Half-width: median, relative to the counterfactual mean. fail: calls that "
            "raised or gave no p-value; flag: non-ok status with figures (e.g. `poor_fit`). "
            "seconds: time inside the method (A/A + effect calls, one core).",
            "",
            *sections,
        ]
    )
    print()
    print(text)
    if args.out is not None:
        write_markdown(args.out, text + "\n")
        print(f"\nwritten to {args.out}")
    return everything


def section(
    outcome: str, cells: list[Cell], args: argparse.Namespace, seconds: float, notes: list[str]
) -> str:
    errors = [f"- `{c.method}` {c.config}: {k} ({v}x)" for c in cells for k, v in c.errors.items()]
    flags = [
        f"- `{c.method}` {c.config}: " + ", ".join(f"{k} {v}x" for k, v in c.statuses.items())
        for c in cells
        if c.statuses
    ]
    return "\n".join(
        [
            f"### Outcome: {OUTCOMES[outcome]} ({seconds:.0f} s)",
            "",
            HEADER,
            "|" + "---|" * 14,
            *[row(c) for c in cells],
            "",
            summary(cells, args.sizes),
            "",
            *[*notes, ""][: len(notes) + bool(notes)],
            *(["Errors:", "", *errors, ""] if errors else []),
            *(["Statuses other than ok (figures kept):", "", *flags, ""] if flags else []),
        ]
    )


if __name__ == "__main__":
    main()
