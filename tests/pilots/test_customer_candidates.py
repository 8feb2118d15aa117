"""Customer-randomized candidates beside a store pilot: the workspace's sufficient
statistics against pandas on the raw baskets, the se against the formula and a direct
simulation, the money against pilot_value's parts, the recommendation table, the YAML
key and ``design --json``."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats

from loyalty_pilot.experiments.decision_power import ProfitRule, go_curve
from loyalty_pilot.experiments.value import Economics, Normal, evsi
from loyalty_pilot.pilots.cli import main
from loyalty_pilot.pilots.customer_candidates import (
    candidates_of,
    designs_of,
    window_stats,
    windows_of,
)
from loyalty_pilot.pilots.design_value import (
    RECOMMENDATIONS,
    recommend,
    size_by_value,
    sizing_lines,
)
from loyalty_pilot.pilots.money import WEEKS_PER_MONTH, ArmMoney, Candidate
from loyalty_pilot.pilots.programmes import example_programmes

START = dt.date(2024, 1, 1)
WEEKS = 40
TEST_WEEKS = 4
TEST_START = START + dt.timedelta(weeks=WEEKS - TEST_WEEKS)
PRE_END = TEST_START - dt.timedelta(days=1)
LENGTHS = (4, 8)
PARAMETERS = {"stores": 12, "regions": 3, "customers": 3000, "weeks": WEEKS, "seed": 11}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    from loyalty_pilot.pilots.chain import build_chain
    from loyalty_pilot.pilots.workspace import open_workspace

    folder = tmp_path_factory.mktemp("chain") / "ws"
    build_chain(open_workspace(folder), start=START, until=TEST_START, **PARAMETERS)
    return folder


@pytest.fixture(scope="module")
def con(ws):
    from loyalty_pilot.pilots.workspace import open_workspace

    connection = open_workspace(ws).connect(read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def baskets(con) -> pd.DataFrame:
    frame = con.execute("SELECT customer_id, date, amount FROM baskets").df()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


@pytest.fixture(scope="module")
def windows(con):
    return window_stats(con, START, PRE_END, LENGTHS)


def by_hand(baskets: pd.DataFrame, c_start, y_start, y_end) -> tuple[pd.DataFrame, float]:
    """Per-customer y (window sales) and c (covariate window sales) of the population
    (identified customers with a basket in the covariate window), plainly in pandas."""
    known = baskets[baskets["customer_id"].notna()]
    before = known[(known["date"] >= c_start) & (known["date"] < y_start)]
    during = known[(known["date"] >= y_start) & (known["date"] <= y_end)]
    c = before.groupby("customer_id")["amount"].sum()
    y = during.groupby("customer_id")["amount"].sum().reindex(c.index, fill_value=0.0)
    chain = baskets.loc[(baskets["date"] >= y_start) & (baskets["date"] <= y_end), "amount"]
    return pd.DataFrame({"y": y, "c": c}), float(chain.sum())


def test_windows_end_at_the_pre_period_and_stay_inside_it():
    got = windows_of(START, PRE_END, 8, 4)  # 36 weeks hold three 8 + 8 windows
    assert got[0][2] == PRE_END
    for c_start, start, end in got:
        assert (end - start).days + 1 == 56
        assert (start - c_start).days == 56
        assert c_start >= START
    assert [w[2] for w in got] == [PRE_END - dt.timedelta(weeks=8 * k) for k in range(3)]
    assert len(windows_of(START, PRE_END, 16, 4)) == 1  # 36 weeks hold one 16 + 16
    assert windows_of(START, PRE_END, 20, 4) == []


def test_sql_sufficient_statistics_match_pandas(windows, baskets):
    assert {(w.weeks, w.index) for w in windows} == {(4, k) for k in range(4)} | {
        (8, k) for k in range(3)
    }
    for w in windows:
        c_start = w.start - dt.timedelta(weeks=w.weeks)
        frame, chain = by_hand(baskets, c_start, w.start, w.end)
        y, c = frame["y"].to_numpy(), frame["c"].to_numpy()
        s = w.stats
        assert s.n == len(frame) > 100
        for got, expected in (
            (s.sum_y, y.sum()), (s.sum_y2, (y * y).sum()), (s.sum_c, c.sum()),
            (s.sum_c2, (c * c).sum()), (s.sum_yc, (y * c).sum()), (w.chain_sales, chain),
        ):  # fmt: skip
            assert got == pytest.approx(expected, rel=1e-9)
        assert 0 < w.members_share < 1


def test_se_is_the_pooled_cuped_formula_and_matches_a_simulated_test(windows, baskets):
    designs = {d.weeks: d for d in designs_of(windows)}
    assert set(designs) == set(LENGTHS)
    d = designs[8]
    ratios, weights, ys, chains = [], [], [], []
    for w in d.windows:
        frame, chain = by_hand(baskets, w.start - dt.timedelta(weeks=8), w.start, w.end)
        y, c = frame["y"].to_numpy(), frame["c"].to_numpy()
        theta = np.cov(y, c)[0, 1] / np.var(c, ddof=1)
        ratios.append(np.var(y - theta * c, ddof=1) / y.mean() ** 2)
        weights.append(len(y) - 1)
        ys.append(y.sum())
        chains.append(chain)
    r = np.dot(weights, ratios) / sum(weights)
    share = sum(ys) / sum(chains)
    n = 300
    assert d.members_share == pytest.approx(share, rel=1e-9)
    assert d.se_members(n) == pytest.approx(math.sqrt(2 * r / n), rel=1e-9)
    assert d.se_total(n) == pytest.approx(share * math.sqrt(2 * r / n), rel=1e-9)

    # a direct simulation of the test on the last window's own customers
    last = d.windows[0]
    frame, _ = by_hand(baskets, last.start - dt.timedelta(weeks=8), last.start, last.end)
    y, c = frame["y"].to_numpy(), frame["c"].to_numpy()
    rng = np.random.default_rng(2)
    draws = 2_000
    order = np.argsort(rng.random((draws, len(y))), axis=1)[:, : 2 * n]
    cs = c[order] - c[order].mean(1, keepdims=True)
    theta = (y[order] * cs).sum(1) / (cs * cs).sum(1)
    adjusted = y[order] - theta[:, None] * cs
    x_hat = np.log(adjusted[:, :n].mean(1) / adjusted[:, n:].mean(1))
    assert d.last.se(n) == pytest.approx(x_hat.std(ddof=1), rel=0.08)


def arm(name: str = "cash", mean: float = 0.01, sd: float = 0.01, be: float = 0.005) -> ArmMoney:
    economics = Economics.from_break_even(1e6, be, 1e6, 0.10)
    return ArmMoney(name, economics, Normal.of_uplift(mean, sd), "given", 0.004)


def test_candidates_are_valued_by_pilot_values_parts(windows):
    designs = designs_of(windows)
    money = [arm()]
    rule = ProfitRule(money[0].prior, money[0].economics)
    big = designs[0].population  # more than the population allows with 3 arms
    got, notes = candidates_of(
        designs, [200, 400, big], 3, money, rule, 0.005, alpha=0.05, target=0.8,
        horizon_months=12, seed=1,
    )  # fmt: skip
    assert [(c.units_per_arm, c.weeks) for c in got] == [(200, 4), (400, 4), (200, 8), (400, 8)]
    assert len(notes) == 2
    assert all(f"{big:,} per arm x 3 arms" in n for n in notes)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(400_000)
    econ, prior = money[0].economics, money[0].prior
    for c, d in zip(got, [designs[0]] * 2 + [designs[1]] * 2, strict=True):
        assert (c.unit, c.controls) == ("customer", "randomized")
        assert c.se == pytest.approx(d.members_share * d.variance.se(c.units_per_arm))
        assert c.mde == pytest.approx(
            math.expm1((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * c.se)
        )
        gain = evsi(prior, c.se, econ)
        after = econ.value_of_deciding(prior) + gain
        delay = after * c.weeks / (12 * WEEKS_PER_MONTH)
        assert c.evsi == pytest.approx(gain)
        # the cost per euro of the customers' own sales: chain-wide over their share
        own = 0.004 / d.members_share
        assert c.cost == pytest.approx(own * c.units_per_arm * d.variance.mean + delay)
        assert c.net_value == pytest.approx(c.evsi - c.cost)
        placebos = (c.se * z, np.full(z.size, c.se), np.full(z.size, np.inf))
        simulated = go_curve(rule, *placebos, [0.0, 0.005, 0.01, 0.025])
        assert list(c.p_go.values()) == pytest.approx(simulated, abs=3e-3)


def candidate(unit: str, net: float, per_arm: int = 8, weeks: int = 8) -> Candidate:
    controls = "randomized" if unit == "customer" else "matched"
    p_go = {"0": 0.05, "1x": 0.3, "2x": 0.6, "5x": 0.99}
    return Candidate(
        unit, per_arm, weeks, controls, 0.01, 0.03, 0.02, p_go, 1000.0, 1000.0 - net, net
    )


@pytest.mark.parametrize(
    ("nets", "now", "pilot_unit", "expected"),
    [
        ({"store": 500.0, "customer": 900.0}, 10.0, "store", "customer_test"),
        ({"store": 500.0, "customer": 900.0}, 10.0, "region", "customer_test"),
        ({"store": 900.0, "customer": 500.0}, 10.0, "store", "pilot"),
        ({"store": -5.0, "customer": 1.0}, 0.0, "store", "customer_test"),
        ({"customer": 900.0}, 10.0, "customer", "pilot"),  # a customer pilot's own design
        ({"store": -5.0, "customer": -1.0}, 10.0, "store", "rollout_with_holdout"),
        ({"store": -5.0, "customer": -1.0}, 0.0, "store", "do_not_roll_out"),
        ({}, 10.0, "store", "rollout_with_holdout"),
    ],
)
def test_recommendation_table(nets, now, pilot_unit, expected):
    assert expected in RECOMMENDATIONS
    pool = [candidate(u, n) for u, n in nets.items()]
    pool += [candidate(u, n - 1e6, per_arm=99) for u, n in nets.items()]  # worse designs
    assert recommend(pool, now, pilot_unit) == expected


def test_size_by_value_recommends_the_customer_test_in_plain_words():
    money = [arm(mean=0.004, be=0.005)]
    extra = [candidate("customer", 800.0, per_arm=5000, weeks=12), candidate("customer", -3.0)]
    sizing = size_by_value(
        {}, money, rule="expected_profit", alpha=0.05, target=0.8, chain_weekly_sales=1e5,
        horizon_months=12, extra=extra,
    )  # fmt: skip
    assert sizing.recommendation == "customer_test"
    assert sizing.best is extra[0]
    text = "\n".join(sizing_lines(sizing, "EUR", money))
    assert "a customer-randomized test is worth more: 5000 customers per arm for 12 weeks" in text
    assert "worth EUR 1,000 in a better decision for a cost of EUR 200" in text
    payload = sizing.to_dict()
    assert [c["unit"] for c in payload["candidates"]] == ["customer", "customer"]
    interval = size_by_value(
        {}, money, rule="interval", alpha=0.05, target=0.8, chain_weekly_sales=1e5,
        horizon_months=12, extra=extra[1:],
    )  # fmt: skip
    assert interval.recommendation in ("rollout_with_holdout", "do_not_roll_out")


def write_pilot(folder: Path, prior: str = "assumptions", **power) -> Path:
    programmes = {p.stem: str(p.resolve()) for p in example_programmes()}
    spec = {
        "pilot": "customer-candidates",
        "arms": {"control": None, "cash": programmes["cash-voucher"]},
        "unit": "store",
        "pre_period": {"start": START, "end": PRE_END},
        "test_period": {"start": TEST_START, "weeks": TEST_WEEKS},
        "design": {"method": "matched", "units_per_arm": 3, "seed": 3},
        "power": {"units_per_arm": [2, 4], "weeks": list(LENGTHS), "placebos": 200, **power},
        "decision": {"alpha": 0.05, "min_uplift": "break_even", "prior": prior},
    }
    path = folder / "pilot.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize(
    ("sizes", "index", "message"),
    [([50], 0, "must be at least 100, got 50"), ([400, 200], 1, "must increase: 200 after 400")],
)
def test_customers_per_arm_errors_name_the_key_and_line(ws, tmp_path, sizes, index, message):
    path = write_pilot(tmp_path, customers_per_arm=sizes)
    lines = path.read_text().splitlines()
    key = next(i for i, text in enumerate(lines, 1) if "customers_per_arm" in text)
    assert lines[key + index].strip() == f"- {sizes[index]}"  # block style: one item a line
    result = run("design", path, "--workspace", ws)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    expected = rf"pilot\.yaml:{key + 1 + index}:\d+: power\.customers_per_arm\.{index}: {message}"
    assert re.search(expected, result.output), result.output
    assert len(result.output.strip().splitlines()) == 1


def test_design_json_includes_the_customer_candidates(ws, tmp_path):
    """With the sceptical prior (centred on the break-even) deciding now is worth nothing
    and a test of a few hundred customers beats every store pilot of this small chain."""
    out = tmp_path / "design.json"
    pilot = write_pilot(tmp_path, prior="sceptical", customers_per_arm=[200, 400])
    result = run("design", pilot, "--workspace", ws, "--json", out)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    customers = [c for c in payload["candidates"] if c["unit"] == "customer"]
    assert [(c["units_per_arm"], c["weeks"]) for c in customers] == [
        (200, 4), (400, 4), (200, 8), (400, 8)
    ]  # fmt: skip
    assert {c["controls"] for c in customers} == {"randomized"}
    for c in customers:
        assert c["se"] > 0
        assert c["net_value"] == pytest.approx(c["evsi"] - c["cost"])
    best = max(payload["candidates"], key=lambda c: c["net_value"])
    assert best["unit"] == "customer"
    assert best["net_value"] > 0
    assert payload["recommendation"] == "customer_test"
    assert payload["value_sizing"]["best"] == best
    assert "Recommendation: a customer-randomized test is worth more: " in result.output
    assert f"{best['units_per_arm']} customers per arm for {best['weeks']} weeks" in result.output
    tests = payload["value_sizing"]["customer_tests"]
    assert [d["weeks"] for d in tests["designs"]] == list(LENGTHS)
    assert "customer tests of 8 weeks" in result.output

    without = tmp_path / "without.json"
    plain = run("design", write_pilot(tmp_path), "--workspace", ws, "--json", without)
    assert plain.exit_code == 0, plain.output
    payload = json.loads(without.read_text())
    assert all(c["unit"] == "store" for c in payload["candidates"])
    assert payload["value_sizing"]["customer_tests"] is None
    assert payload["recommendation"] in RECOMMENDATIONS
