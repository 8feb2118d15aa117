"""The two decision rules measured by placebo pilots: false-GO rate, P(GO) curve and the
expected-profit regret of each against the truth.

Run: ``python benchmarks/decision_rules.py`` (prints a Markdown table; ``--quick`` for a
smoke run).

Data: synthetic chains from :func:`loyalty_pilot.pilots.synthetic.generate` aggregated to
store x week sales (as ``benchmarks/validity.py``), ``--placebos`` placebo pilots per
size drawn by :func:`loyalty_pilot.experiments.power.placebo_sample` (random fake start,
complete randomization, the total-sales ratio estimator; ``--controls all``: every other
store a control). A true uplift ``u`` moves each placebo's estimate by ``log(1 + u)``
exactly (the ratio estimator's property, pinned in the tests), so one set of fits gives
every ``u``.

Economics: ``profit(u) = cost (u / u* - 1)`` with ``u* = --break-even`` and ``cost =
--cost``; the loss limit one year of cost, ``max_loss_probability`` 0.10. Prior: normal
on ``log(1 + u)`` with mean ``--prior-mean`` and sd ``--prior-sd`` (relative uplifts;
defaults of the order of the demo programmes' own assumptions: ``design`` prints them).
The interval rule: the lower end of the ``1 - alpha / k`` interval above ``u*``
(``k = --variants``).

Regret at a true ``u``: ``max(profit(u), 0) - P(GO) profit(u)``: what the rule loses, on
average over the pilots, against knowing the truth. Reported per rule and ``u`` in
``{0, u*, 2u*, 5u*}``, plus its average over the prior (``u`` drawn from it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validity import make_chains

from loyalty_pilot.experiments.decision_power import IntervalRule, ProfitRule, go_share
from loyalty_pilot.experiments.power import placebo_sample
from loyalty_pilot.experiments.value import Economics, Normal


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--stores", type=int, default=48)
    p.add_argument("--customers", type=int, default=6000)
    p.add_argument("--weeks", type=int, default=104)
    p.add_argument("--placebos", type=int, default=2000)
    p.add_argument("--sizes", default="8,16,24")
    p.add_argument("--test-weeks", type=int, default=12)
    p.add_argument("--pre", type=int, default=52)
    p.add_argument("--controls", default="matched", choices=["matched", "all"])
    p.add_argument("--break-even", type=float, default=0.005)
    p.add_argument("--cost", type=float, default=1_000_000.0)
    p.add_argument("--prior-mean", type=float, default=0.01)
    p.add_argument("--prior-sd", type=float, default=0.01)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--variants", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--pilot",
        help="a pilot YAML: its workspace's store panel (eligible stores, pre-period) for the "
        "placebos and its variants' own priors and economics (the arm of smallest "
        "break-even) instead of --break-even/--cost/--prior-*; needs --workspace",
    )
    p.add_argument("--workspace", help="the workspace of --pilot (e.g. demo-workspace)")
    args = p.parse_args(argv)
    if args.quick:
        args.chains, args.placebos, args.customers, args.sizes = 1, 300, 3000, "8"
    return args


def from_pilot(pilot: str, workspace: str | None) -> tuple[list[np.ndarray], Normal, Economics]:
    """The workspace's pre-period store panel and the pilot's key arm's prior/economics."""
    from loyalty_pilot.pilots.money import arm_money
    from loyalty_pilot.pilots.pilot_data import load_pilot_data
    from loyalty_pilot.pilots.pilot_design import arm_projections
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.workspace import open_workspace

    if workspace is None:
        raise SystemExit("--pilot needs --workspace")
    pf = load_pilot(pilot)
    con = open_workspace(workspace).connect(create=False, read_only=True)
    try:
        data = load_pilot_data(con, pf)
        money = [
            arm_money(arm, projection, pf.spec.decision)
            for arm, projection in arm_projections(con, pf).items()
        ]
    finally:
        con.close()
    key = min(money, key=lambda m: m.economics.break_even)
    return [data.wide.to_numpy(dtype=float)], key.prior, key.economics


def main(argv: list[str] | None = None) -> str:
    args = parse(argv)
    began = time.perf_counter()
    if args.pilot:
        chains, prior, econ = from_pilot(args.pilot, args.workspace)
        args.break_even, args.cost = econ.break_even, econ.cost
        args.prior_mean, args.prior_sd = prior.uplift_mean, prior.uplift_sd
        args.pre = min(args.pre, chains[0].shape[1] - args.test_weeks)
    else:
        chains = make_chains(args.chains, args.stores, args.customers, args.weeks, seed=args.seed)
        econ = Economics.from_break_even(args.cost, args.break_even, args.cost, 0.10)
        prior = Normal.of_uplift(args.prior_mean, args.prior_sd)
    rules = {
        "expected_profit": ProfitRule(prior, econ),
        "interval": IntervalRule(args.alpha / args.variants, args.break_even),
    }
    be = args.break_even
    uplifts = {"0": 0.0, "u*": be, "2u*": 2 * be, "5u*": 5 * be}
    draws = np.expm1(prior.mean + prior.sd * np.random.default_rng(args.seed).standard_normal(400))
    lines = [
        f"Placebo pilots: {args.placebos} per size x {len(chains)} chains of {chains[0].shape[0]} "
        f"stores, {args.test_weeks} test weeks, pre {args.pre} weeks, controls "
        f"{args.controls}; u* = {be:+.2%}, prior {args.prior_mean:+.2%} (sd "
        f"{args.prior_sd:.2%}), cost {args.cost:,.0f}.",
        "",
        "| stores per arm | rule | P(GO) at 0 (false GO) | at u* | at 2u* | at 5u* | regret "
        "at 0 | at u* | at 2u* | at 5u* | regret over the prior |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in [int(s) for s in args.sizes.split(",")]:
        fits = []
        for k, y in enumerate(chains):
            sample = placebo_sample(
                y, per_arm=size, weeks=args.test_weeks, pre_weeks=args.pre,
                n_placebos=args.placebos // len(chains), estimator="ratio",
                controls=args.controls, rng=np.random.default_rng([args.seed, size, k]),
            )  # fmt: skip
            fits.append((sample.estimate, sample.se, sample.df))
        x, se, df = (np.concatenate([f[i] for f in fits]) for i in range(3))
        for name, rule in rules.items():
            p_go = {k: go_share(rule, x, se, df, u) for k, u in uplifts.items()}
            regret = {
                k: max(float(econ.profit(u)), 0.0) - p_go[k] * float(econ.profit(u))
                for k, u in uplifts.items()
            }
            over = float(np.mean([
                max(float(econ.profit(u)), 0.0) - go_share(rule, x, se, df, u)
                * float(econ.profit(u)) for u in draws[:100]
            ]))  # fmt: skip
            lines.append(
                f"| {size} | {name} | "
                + " | ".join(f"{p_go[k]:.1%}" for k in uplifts)
                + " | "
                + " | ".join(f"{regret[k]:,.0f}" for k in uplifts)
                + f" | {over:,.0f} |"
            )
    lines.append("")
    lines.append(f"({time.perf_counter() - began:.0f} s)")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
