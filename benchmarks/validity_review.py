"""Placebo measurements of the review fixes (issue #12 item 7), old behaviour beside new.

Run: ``python benchmarks/validity_review.py`` (full) or ``--quick`` (a smoke run, about a
fifth of the draws). Prints one table: per item the setting, the number of placebo
pilots, the figure with the old behaviour and with the fix, the required band and the
verdict (on the fix). Every draw is seeded (``--seed``); nothing is tuned here.

a. Callaway-Sant'Anna, A/A: 4 waves of 4 stores, no never-treated unit (the last wave is
   the control only, so 3 estimated waves of 4 stores), not-yet-treated controls, AR(1)
   0.5 weeks; and 3 waves of 4 stores against 12 never-treated. Share of simple-ATT
   p-values <= 5 %: ``inference="normal"`` (R's) vs ``"t"`` (the default). Band
   [3.5 %, 6.5 %].
b. Heterogeneity by region, A/A: 5 regions of 4 stores (2 treated), region DiD with CR2,
   no effect: Cochran's Q vs Welch's F. Band <= 6.5 %.
c. Weekly looks, A/A: 16 stores (8 treated), 16 pre weeks, 8 weekly looks, AR(1) 0.7
   (and 0.3) weeks. For each of ``--seq-pilots`` pilots the fractions (and the looks'
   correlation) come from the pilot's own pre-period; the chance of ever crossing the
   O'Brien-Fleming-type boundaries under no effect is measured on 40,000 simulated DiD
   paths from the true joint distribution (Monte Carlo of the contrasts). Old: weeks
   fraction k/K with independent-increments boundaries; new: the pilot-analysis
   procedure. Band <= 5 % + 2 Monte Carlo standard errors.
d. Rerandomized balance, 2,000 accepted draws (acceptance 5 %): share failing the old
   gate (chi-square p < 0.001; it cannot fail) and the new check (own threshold), and
   the share of tampered assignments (the most imbalanced split) each catches.
e. Synthetic control with 10 treated stores among 20 through ``evaluate --data``
   (:func:`loyalty_pilot.pilots.evaluate_file.evaluate_file`), A/A: the old
   single-donor placebos (recomputed here) vs the reassignment placebos. Band <= 6.5 %.
f. Event-study pre-trend with 2 treated stores of 10: share of draws where the old HTZ
   statistic is impossible (negative F or df), and the A/A rejection rate of the test
   reported now (HTZ where valid, else Bonferroni over the per-period t). Band: 0 %
   impossible, rejection <= 6.5 %.
g. Relative interval of two means (customer-level sales, lognormal, a true -30 %):
   with 10 customers per arm (sigma 1.5) the share of lower bounds below -100 % with the
   ratio-scale delta method vs
   :func:`~loyalty_pilot.experiments.results.relative_of_means`; with 200 per arm (sigma
   0.8) the coverage of both. Band: 0 % below -100 %, coverage [93.5 %, 96.5 %].
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from loyalty_pilot.experiments.balance import joint_mahalanobis, rerandomization_check, whiten
from loyalty_pilot.experiments.did import did, event_study
from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.results import relative_of_means
from loyalty_pilot.experiments.sequential import (
    boundaries,
    information_fraction,
    information_from_pre_period,
    look_correlation,
)
from loyalty_pilot.experiments.staggered import callaway_santanna
from loyalty_pilot.experiments.subgroups import subgroup_table
from loyalty_pilot.experiments.synthetic_control import _ratio, fit_synthetic_control


def ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Stationary AR(1) noise along the last axis (unit variance innovations)."""
    eps = rng.normal(size=shape)
    out = np.empty_like(eps)
    out[..., 0] = eps[..., 0] / math.sqrt(1 - rho**2)
    for t in range(1, shape[-1]):
        out[..., t] = rho * out[..., t - 1] + eps[..., t]
    return out


def staggered_panel(rng: np.random.Generator, n_never: int, waves: tuple[int, ...]) -> pd.DataFrame:
    n, periods = n_never + 4 * len(waves), 8
    y = 100 + 5 * rng.normal(size=(n, 1)) + 2 * rng.normal(size=(1, periods))
    y = y + ar1(rng, (n, periods), 0.5)
    g = np.r_[np.zeros(n_never), np.repeat(waves, 4)]
    return pd.DataFrame({"u": np.repeat(np.arange(n), periods),
                         "t": np.tile(np.arange(1, periods + 1), n),
                         "y": y.ravel(), "g": np.repeat(g, periods)})  # fmt: skip


def item_a(draws: int, rng: np.random.Generator) -> list[tuple]:
    rows = []
    for label, n_never, waves, control in (
        ("3 waves x 4, no never-treated", 0, (4, 5, 6, 7), "not_yet_treated"),
        ("3 waves x 4 + 12 never-treated", 12, (4, 5, 6), "never_treated"),
    ):
        hits = {"normal": 0, "t": 0}
        for _ in range(draws):
            panel = staggered_panel(rng, n_never, waves)
            for inference in hits:
                r = callaway_santanna(panel, unit="u", period="t", outcome="y",
                                      first_treated="g", control_group=control,
                                      inference=inference)  # fmt: skip
                hits[inference] += r.simple.p_value <= 0.05
        rows.append(("a", f"staggered A/A, {label}", draws, hits["normal"] / draws,
                     hits["t"] / draws, (0.035, 0.065)))  # fmt: skip
    return rows


def item_b(draws: int, rng: np.random.Generator) -> list[tuple]:
    n, periods, pre = 4, 16, 10
    post = np.arange(periods) >= pre
    q_hits = w_hits = 0
    for _ in range(draws):
        comps = {}
        for region in range(5):
            y = 100 + 5 * rng.normal(size=(n, 1))
            y = y + ar1(rng, (n, periods), 0.6) * rng.uniform(0.5, 2, size=(n, 1))
            treated = np.zeros(n, bool)
            treated[rng.permutation(n)[:2]] = True
            comps[f"r{region}"] = did(PanelData(y, np.arange(n), np.arange(periods), treated, post))
        table = subgroup_table(comps, by="region")
        q_hits += table.q_p_value < 0.05
        w_hits += table.het_p_value < 0.05
    return [("b", "region heterogeneity A/A, 5 regions x 4 stores", draws, q_hits / draws,
             w_hits / draws, (0.0, 0.065))]  # fmt: skip


def did_contrasts(y: np.ndarray, treated: np.ndarray, pre: int) -> np.ndarray:
    post = np.cumsum(y[..., pre:], axis=-1) / np.arange(1, y.shape[-1] - pre + 1)
    u = post - y[..., :pre].mean(axis=-1, keepdims=True)
    return u[:, treated].mean(axis=1) - u[:, ~treated].mean(axis=1)


def item_c(pilots: int, rng: np.random.Generator, paths: int = 40_000) -> list[tuple]:
    pre, planned, n = 16, 8, 16
    treated = np.arange(n) < n // 2
    rows = []
    weeks = information_fraction(np.arange(1, planned + 1), planned)
    old_c = np.asarray(boundaries(weeks).z)
    for rho in (0.7, 0.3):
        shape = (paths, n, pre + planned)
        est = did_contrasts(5 * rng.normal(size=(paths, n, 1)) + ar1(rng, shape, rho), treated, pre)
        z = np.abs(est / est.std(axis=0))
        old = float(np.mean((z >= old_c).any(axis=1)))
        y = ar1(rng, (pilots, n, pre + planned), rho)
        rates = []
        for i in range(pilots):
            t = information_from_pre_period(y[i, :, :pre], planned)
            c = np.asarray(boundaries(t, correlation=look_correlation(y[i, :, :pre], planned)).z)
            rates.append(float(np.mean((z >= c).any(axis=1))))
        v = est.var(axis=0)
        rows.append(("c", f"weekly looks A/A, AR(1) {rho}: mean over {pilots} pilots "
                     f"(max {max(rates):.1%}); exact t_1 {v[-1] / v[0]:.2f} vs k/K "
                     f"{weeks[0]:.3f}", pilots, old, float(np.mean(rates)),
                     (0.0, 0.05 + 2 * math.sqrt(0.05 * 0.95 / paths))))  # fmt: skip
    return rows


def item_d(draws: int, rng: np.random.Generator) -> list[tuple]:
    from scipy import stats

    from loyalty_pilot.experiments.assignment import draw_codes

    units = pd.DataFrame({"level": rng.normal(size=24), "trend": rng.normal(size=24)},
                         index=[f"s{i:02d}" for i in range(24)])  # fmt: skip
    codes = draw_codes(units, 2, method="rerandomized", per_arm=12, n_draws=draws,
                       rng=int(rng.integers(1 << 31)))  # fmt: skip
    z = whiten(units.to_numpy())
    m = joint_mahalanobis(codes, z, 2)
    threshold = float(stats.chi2.ppf(0.05, 2))
    old_fail = float(np.mean(stats.chi2.sf(m, 2) < 0.001))
    new_fail = float(np.mean([not rerandomization_check(v, threshold, 2)["inside"] for v in m]))
    tampered = (units["level"].rank(method="first").to_numpy() > 12).astype(int)[None, :]
    m_bad = float(joint_mahalanobis(tampered, z, 2)[0])
    caught_old = float(stats.chi2.sf(m_bad, 2) < 0.001)
    caught_new = float(not rerandomization_check(m_bad, threshold, 2)["inside"])
    return [
        ("d", "rerandomized balance: accepted draws failing", draws, old_fail, new_fail,
         (0.0, 0.0)),
        ("d", f"rerandomized balance: tampered assignment caught (M {m_bad:.1f} vs "
         f"threshold {threshold:.3f})", 1, caught_old, caught_new, (1.0, 1.0)),
    ]  # fmt: skip


def item_e(draws: int, rng: np.random.Generator) -> list[tuple]:
    from loyalty_pilot.pilots.evaluate_file import evaluate_file

    n, m, periods, pre = 20, 10, 30, 20
    old_hits = new_hits = 0
    post = np.arange(periods) >= pre
    with tempfile.TemporaryDirectory() as folder:
        for k in range(draws):
            factors = rng.normal(size=(2, periods)).cumsum(axis=1) * 0.5
            y = 100 + 5 * rng.normal(size=(n, 1)) + rng.normal(size=(n, 2)) @ factors
            y = y + ar1(rng, (n, periods), 0.6)
            arm = np.where(rng.permutation(n) < m, "treatment", "control")
            stores = np.repeat([f"S{i:02d}" for i in range(n)], periods)
            frame = pd.DataFrame({"store": stores, "arm": np.repeat(arm, periods),
                                  "week": np.tile(np.arange(periods), n),
                                  "sales": y.ravel()})  # fmt: skip
            path = Path(folder) / f"aa{k}.csv"
            frame.to_csv(path, index=False)
            evaluation = evaluate_file(path, unit="store", arm="arm", outcome="sales",
                                       period="week", start=str(pre),
                                       method="synthetic_control", scale="level")  # fmt: skip
            new_hits += evaluation.comparisons[0].p_value <= 0.05
            # the old placebos: each control store alone, fitted on the other controls
            treated = arm == "treatment"
            y1, y0 = y[treated].mean(axis=0), y[~treated].T
            fit = fit_synthetic_control(y1[~post], y0[~post])
            ratio = _ratio(y1 - y0 @ fit.weights, post)[0]
            ratios = []
            for j in range(y0.shape[1]):
                pool = np.delete(np.arange(y0.shape[1]), j)
                w = fit_synthetic_control(y0[~post, j], y0[~post][:, pool]).weights
                ratios.append(_ratio(y0[:, j] - y0[:, pool] @ w, post)[0])
            p_old = (1 + int(np.sum(np.array(ratios) >= ratio))) / (len(ratios) + 1)
            old_hits += p_old <= 0.1  # 1/11 is the smallest p: counted at its 10 % level
    return [("e", "synthetic control A/A, 10 treated of 20 via evaluate --data "
             "(old: single-donor placebos, p <= 1/11)", draws, old_hits / draws,
             new_hits / draws, (0.0, 0.065))]  # fmt: skip


def item_f(draws: int, rng: np.random.Generator) -> list[tuple]:
    n, periods, pre = 10, 14, 9
    post = np.arange(periods) >= pre
    impossible = rejected = 0
    for _ in range(draws):
        y = 100 + 5 * rng.normal(size=(n, 1)) + ar1(rng, (n, periods), 0.5)
        treated = np.zeros(n, bool)
        treated[rng.permutation(n)[:2]] = True
        r = event_study(PanelData(y, np.arange(n), np.arange(periods), treated, post),
                        pre_test_periods=6).extras  # fmt: skip
        impossible += r["pre_trend_status"] == "fallback" and "not valid" in r.get(
            "pre_trend_note", ""
        )
        rejected += r["pre_trend_p_value"] < 0.05
    return [
        ("f", "event-study pre-trend, 2 treated of 10, 6 pre effects: impossible HTZ "
         "(old: reported; new: never reported)", draws, impossible / draws, 0.0, (0.0, 0.0)),
        ("f", "event-study pre-trend A/A rejection at 5 % (the test reported now)", draws,
         math.nan, rejected / draws, (0.0, 0.065)),
    ]  # fmt: skip


def item_g(draws: int, rng: np.random.Generator) -> list[tuple]:
    q = 1.959963984540054
    rows = []
    for n, sigma, what in ((10, 1.5, "below"), (200, 0.8, "cover")):
        base = rng.lognormal(0.0, sigma, size=(draws, n))
        arm = 0.7 * rng.lognormal(0.0, sigma, size=(draws, n))
        m_t, m_c = arm.mean(axis=1), base.mean(axis=1)
        v_t, v_c = arm.var(axis=1, ddof=1) / n, base.var(axis=1, ddof=1) / n
        rel = m_t / m_c - 1
        rel_se = np.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4)
        old_low, old_high = rel - q * rel_se, rel + q * rel_se
        new = np.array([relative_of_means(*a, q) for a in zip(m_t, v_t, m_c, v_c, strict=True)])
        setting = f"{n} customers per arm, lognormal sigma {sigma}"
        if what == "below":
            rows.append(("g", f"relative interval of two means, {setting}: lower bound below "
                         f"-100 % (old minimum {100 * old_low.min():.0f} %)", draws,
                         float(np.mean(old_low < -1)), float(np.mean(new[:, 1] < -1)),
                         (0.0, 0.0)))  # fmt: skip
        else:
            old_cover = float(np.mean((old_low <= -0.3) & (old_high >= -0.3)))
            new_cover = float(np.mean((new[:, 1] <= -0.3) & (new[:, 2] >= -0.3)))
            rows.append(("g", f"relative interval of two means, {setting}: coverage of the "
                         "true -30 %", draws, old_cover, new_cover, (0.935, 0.965)))  # fmt: skip
    return rows


def pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def main(argv: list[str] | None = None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a fifth of the draws")
    parser.add_argument("--seed", type=int, default=20260112)
    parser.add_argument("--only", default="abcdefg", help="items to run, e.g. 'ace'")
    args = parser.parse_args(argv)
    scale = 0.2 if args.quick else 1.0
    sizes = {"a": 2000, "b": 1000, "c": 30, "d": 2000, "e": 200, "f": 1000, "g": 20000}
    runners = {"a": item_a, "b": item_b, "c": item_c, "d": item_d, "e": item_e,
               "f": item_f, "g": item_g}  # fmt: skip
    rows = []
    print("| item | setting | draws | old | new | band | verdict | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for key in args.only:
        rng = np.random.default_rng([args.seed, ord(key)])
        draws = max(6 if key == "c" else 20, int(sizes[key] * scale))
        if key == "d":
            draws = sizes[key]
        start = time.perf_counter()
        out = runners[key](draws, rng)
        seconds = time.perf_counter() - start
        for item, setting, n, old, new, (lo, hi) in out:
            ok = lo - 1e-12 <= new <= hi + 1e-12
            print(f"| {item} | {setting} | {n} | {pct(old)} | {pct(new)} | "
                  f"[{pct(lo)}, {pct(hi)}] | {'pass' if ok else 'FAIL'} | {seconds:.0f} |",
                  flush=True)  # fmt: skip
            rows.append((item, setting, n, old, new, (lo, hi), ok))
    return rows


if __name__ == "__main__":
    main()
