"""Time the California (Proposition 99) synthetic control against pysyncon in the same run.

Run: ``python benchmarks/bench_synthetic_control.py`` (best of ``--repeat`` for the fits).
Times ``fit_synthetic_control`` with ADH 2010's seven predictors, ``synthetic_control``
with placebo-in-space inference (38 refits), and, when pysyncon is importable (``pip install
pysyncon``; not a project dependency), pysyncon's ``Synth.fit`` on the same predictors
(Nelder-Mead from equal V, its documented default; one run) as the reference, with the pre-period
MSPE each reaches (the published weights give 3.09).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from loyalty_pilot.experiments.panel import wide_panel
from loyalty_pilot.experiments.synthetic_control import fit_synthetic_control, synthetic_control

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "california_smoking.csv"
SPECIAL = [
    ("lnincome", range(1980, 1989)),
    ("age15to24", range(1980, 1989)),
    ("retprice", range(1980, 1989)),
    ("beer", range(1984, 1989)),
]
LAGS = [1975, 1980, 1988]


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Best wall-clock time of `repeat` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def predictors(df: pd.DataFrame) -> pd.DataFrame:
    """ADH 2010's predictors by state: four averages and three lagged outcomes."""
    y = df.pivot(index="state", columns="year", values="cigsale")
    cols = {c: df[df.year.isin(list(r))].groupby("state")[c].mean() for c, r in SPECIAL}
    cols.update({f"cigsale{t}": y[float(t)] for t in LAGS})
    return pd.DataFrame(cols)


def pysyncon_fit(df: pd.DataFrame) -> Callable[[], float] | None:
    """A callable fitting pysyncon's Synth and returning its pre-period MSPE, if installed."""
    try:
        from pysyncon import Dataprep, Synth
    except ImportError:
        return None
    states = sorted(set(df.state) - {"California"})
    dataprep = Dataprep(
        foo=df,
        predictors=[c for c, r in SPECIAL if r == range(1980, 1989)],
        predictors_op="mean",
        time_predictors_prior=range(1980, 1989),
        special_predictors=[(c, r, "mean") for c, r in SPECIAL if r != range(1980, 1989)]
        + [("cigsale", [t], "mean") for t in LAGS],
        dependent="cigsale",
        unit_variable="state",
        time_variable="year",
        treatment_identifier="California",
        controls_identifier=states,
        time_optimize_ssr=range(1970, 1989),
    )

    def run() -> float:
        synth = Synth()
        synth.fit(dataprep=dataprep, optim_method="Nelder-Mead", optim_initial="equal")
        return float(synth.loss_V)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    df = pd.read_csv(DATA)
    x = predictors(df)
    panel = wide_panel(
        df,
        unit="state",
        period="year",
        outcome="cigsale",
        treated={s: s == "California" for s in x.index},
        start=1989,
    )
    pre, treated = ~panel.post, panel.treated
    donors = panel.units[~treated]
    args_fit = (
        panel.y[treated][0, pre],
        panel.y[~treated][:, pre].T,
        x.loc["California"].to_numpy(),
        x.loc[donors].to_numpy().T,
    )
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    seconds, fit = best_of(args.repeat, lambda: fit_synthetic_control(*args_fit))
    print(
        f"fit_synthetic_control, 7 predictors, 38 donors: {seconds:.3f} s "
        f"(best of {args.repeat}), pre-period MSPE {fit.pre_mspe:.4f}"
    )
    t0 = time.perf_counter()
    result = synthetic_control(panel, predictors=x)
    placebo_seconds = time.perf_counter() - t0
    print(
        f"synthetic_control with placebo inference (1 + 38 fits): {placebo_seconds:.2f} s, "
        f"p = {result.p_value:.4f}, estimate {result.estimate:.2f}"
    )
    run = pysyncon_fit(df)
    if run is None:
        print("pysyncon not installed: no reference (pip install pysyncon)")
        return
    reference, loss = best_of(1, run)  # slow: one run
    print(
        f"reference pysyncon Synth.fit (Nelder-Mead, equal start): {reference:.3f} s, "
        f"pre-period MSPE {loss:.4f}"
    )
    print(f"ratio fit_synthetic_control / pysyncon: {seconds / reference:.2f}")


if __name__ == "__main__":
    main()
