"""``loyalty-pilot simulate``: the table and the JSON, pinned to independent computations."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from loyalty_pilot.pilots.chain import build_chain
from loyalty_pilot.pilots.cli import main
from loyalty_pilot.pilots.ingest import ingest
from loyalty_pilot.pilots.panels import customer_rfm
from loyalty_pilot.pilots.programmes import workspace_baskets
from loyalty_pilot.pilots.simulate import ROWS, retention_line
from loyalty_pilot.pilots.specfile import load_programme
from loyalty_pilot.pilots.workspace import open_workspace
from loyalty_pilot.simulator.projection import fit_retention, project
from loyalty_pilot.simulator.replay import replay
from loyalty_pilot.simulator.smart import smart_check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "programmes"
CASH, GIFT = EXAMPLES / "cash-voucher.yaml", EXAMPLES / "gift-catalogue.yaml"


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = open_workspace(tmp_path_factory.mktemp("sim") / "ws")
    build_chain(ws, stores=4, regions=2, customers=800, weeks=60, seed=6)
    return ws


@pytest.fixture(scope="module")
def baskets(workspace):
    con = workspace.connect(read_only=True)
    try:
        return workspace_baskets(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def rfm(workspace):
    con = workspace.connect(read_only=True)
    try:
        table = customer_rfm(con)
    finally:
        con.close()
    return dict(zip(table["customer_id"].astype(str), table["segment"].astype(str), strict=True))


@pytest.fixture(scope="module")
def simulated(workspace, tmp_path_factory):
    out = tmp_path_factory.mktemp("json") / "sim.json"
    result = run("simulate", CASH, GIFT, "--workspace", workspace.path, "--draws", 300,
                 "--seed", 5, "--horizon-months", 10, "--json", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())["variants"]


def cells(output: str, label: str) -> list[str]:
    """The cells of the row ``label``: columns are separated by two or more spaces."""
    line = next(line for line in output.splitlines() if line.startswith(label + "  "))
    return re.split(r"\s{2,}", line[len(label) :].strip())


def test_json_figures_match_the_api_and_independent_sums(simulated, baskets, rfm):
    _, variants = simulated
    assert [v["programme"] for v in variants] == ["cash-voucher", "gift-catalogue"]
    retention = fit_retention(baskets, horizon_months=10, segments=rfm)
    for variant in variants:
        assert variant["retention"] == json.loads(json.dumps(retention.to_dict()))
    for path, variant in zip((CASH, GIFT), variants, strict=True):
        programme = load_programme(path)
        direct = project(baskets, programme, horizon_months=10, draws=300, seed=5,
                         retention=retention)  # fmt: skip
        start, end = direct.baseline.start, direct.baseline.end
        assert (variant["start"], variant["end"]) == (start.isoformat(), end.isoformat())
        # revenue: the baskets' own sum over the horizon, not the replay's
        day = pd.to_datetime(baskets["date"]).dt.date
        inside = (day >= start) & (day <= end)
        assert variant["revenue"] == pytest.approx(baskets.loc[inside, "amount"].sum())
        horizon = replay(baskets, programme, seed=5, start=start, end=end)
        for key in ("rewards_issued", "rewards_value", "rewards_perceived", "breakage",
                    "liability_end"):  # fmt: skip
            assert variant[key] == pytest.approx(horizon.totals[key]), key
        assert variant["cost_replay"] == pytest.approx(horizon.totals["cost"])
        assert variant["cost"] == pytest.approx(direct.cost)
        for key in ("profit", "roi"):
            assert variant[key] == pytest.approx(getattr(direct, key).to_dict()), key
        assert set(variant["profit"]) == {"mean", "p10", "p50", "p90"}
        assert variant["break_even_uplift"] == pytest.approx(direct.break_even_uplift)
        whole = replay(baskets, programme, seed=5)
        assert variant["smart"] == json.loads(json.dumps(smart_check(programme, whole).to_dict()))
        assert variant["attainable"] == pytest.approx(variant["smart"]["A"]["figure"])
    gift = variants[1]
    # a gift costs its unit cost but is perceived at its retail value: both reported
    assert gift["rewards_perceived"] > gift["rewards_value"] > 0


def test_every_printed_cell_is_the_json_figure(simulated):
    output, variants = simulated
    for label, cell in ROWS:
        assert cells(output, label) == [cell(v) for v in variants], label
    cash = variants[0]
    assert cells(output, "cost (replay)")[0] == f"{cash['cost_replay']:,.0f}"
    assert cells(output, "break-even uplift")[0] == f"{cash['break_even_uplift']:.3%}"
    p = cash["profit"]
    assert cells(output, "profit P10/P50/P90")[0] == (
        f"{p['p10']:,.0f} / {p['p50']:,.0f} / {p['p90']:,.0f}"
    )
    assert "Monte Carlo draws" in output  # the progress bar's label


def test_the_retention_baseline_is_printed_with_its_reason(simulated):
    output, variants = simulated
    lines = [line for line in output.splitlines() if line.startswith("retention: ")]
    retention = variants[0]["retention"]
    assert lines == [retention_line(retention)]
    assert {"source", "note"} <= set(retention)
    # the 800-customer, 60-week chain: a model's dropout part is identified
    assert retention["source"] in ("pareto_nbd", "bgnbd")
    name = {"pareto_nbd": "Pareto/NBD", "bgnbd": "BG/NBD"}[retention["source"]]
    assert lines[0].startswith(f"retention: {name} (")
    assert "log-likelihood: " in lines[0]


def test_fallback_prints_empirical_curves_by_rfm_segment(tmp_path):
    """Frequent shoppers over 14 weeks, nobody silent: neither dropout part is
    identifiable; the JSON carries one curve per RFM segment (small ones pooled)."""
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2024-01-01 10:00")
    rows = []
    for i in range(300):
        day = rng.uniform(0, 3)
        while day < 14 * 7:
            rows.append((f"C{i:04d}", start + pd.Timedelta(days=day), rng.uniform(10, 60)))
            day += rng.uniform(1, 4)
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    frame = frame.sort_values("date", ignore_index=True)
    frame.insert(0, "basket_id", [f"B{i:06d}" for i in range(len(frame))])
    frame["store_id"] = "S001"
    frame["margin"] = frame["amount"] * 0.25
    frame["items"] = 3
    frame.to_csv(tmp_path / "baskets.csv", index=False)
    ws = open_workspace(tmp_path / "ws")
    ingest(ws, baskets=tmp_path / "baskets.csv")
    out = tmp_path / "sim.json"
    result = run("simulate", CASH, "--workspace", ws.path, "--draws", 20,
                 "--horizon-months", 2, "--json", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    (variant,) = json.loads(out.read_text())["variants"]
    retention = variant["retention"]
    assert retention["source"] == "empirical_segments"
    assert "dropout not identifiable" in retention["note"]
    (line,) = [line for line in result.output.splitlines() if line.startswith("retention: ")]
    assert line == retention_line(retention)
    assert line.startswith("retention: dropout not identifiable (")
    assert ": empirical curves by RFM segment (" in line
    con = ws.connect(read_only=True)
    try:
        table = customer_rfm(con)
    finally:
        con.close()
    counts = table["segment"].astype(str).value_counts()
    segments = retention["segments"]
    assert len(segments) >= 2
    for name, curve in segments.items():
        assert len(curve["survival"]) == len(retention["weeks"]) == 3
        if name != "other":
            assert counts[name] == curve["customers"] >= 30
    assert sum(c["customers"] for c in segments.values()) == 300


def test_zero_response_costs_exactly_the_replay(workspace, baskets, tmp_path):
    text = CASH.read_text().split("response:")[0]
    path = tmp_path / "no-response.yaml"
    path.write_text(text)
    out = tmp_path / "z.json"
    result = run("simulate", path, "--workspace", workspace.path, "--draws", 20, "--json", out)
    assert result.exit_code == 0, result.output
    (variant,) = json.loads(out.read_text())["variants"]
    programme = load_programme(path)
    start, end = variant["start"], variant["end"]
    horizon = replay(baskets, programme, seed=0, start=pd.Timestamp(start).date(),
                     end=pd.Timestamp(end).date())  # fmt: skip
    assert variant["cost"] == horizon.totals["cost"]
    assert variant["profit"]["p50"] == pytest.approx(-horizon.totals["cost"])
    assert variant["incremental_revenue"] == {"mean": 0.0, "p10": 0.0, "p50": 0.0, "p90": 0.0}


def test_user_mistakes_exit_2_with_one_line(workspace, tmp_path):
    missing = run("simulate", tmp_path / "nope.yaml", "--workspace", workspace.path)
    assert missing.exit_code == 2
    assert "nope.yaml" in missing.output
    assert "Traceback" not in missing.output
    nowhere = run("simulate", CASH, "--workspace", tmp_path / "empty")
    assert nowhere.exit_code == 2
    assert "no workspace" in nowhere.output
    bad = run("simulate", CASH, "--workspace", workspace.path, "--draws", 0)
    assert bad.exit_code == 2


def test_help_has_an_example():
    result = run("simulate", "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "--horizon-months" in result.output


def test_payback_is_read_over_all_draws_with_the_share_paid_back(simulated, baskets, rfm):
    from loyalty_pilot.pilots.simulate import payback_legend

    output, variants = simulated
    retention = fit_retention(baskets, horizon_months=10, segments=rfm)
    for path, variant in zip((CASH, GIFT), variants, strict=True):
        direct = project(baskets, load_programme(path), horizon_months=10, draws=300, seed=5,
                         retention=retention)  # fmt: skip
        months = np.sort(direct.samples["payback"])  # inf: not within the horizon
        payback = variant["payback_month"]
        for key, q in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9)):
            value = months[math.ceil(q * len(months)) - 1]  # the draw at that rank
            assert payback[key] == (None if math.isinf(value) else value), key
        paid = float(np.isfinite(months).mean())
        assert payback["share_paid_back"] == pytest.approx(paid)
        assert payback["share_not_paid_back"] == pytest.approx(1 - paid)
        assert payback["horizon_months"] == 10
        assert f"({paid:.0%} of draws pay back within 10 months)" in payback["text"]
    rows = cells(output, "payback month P10/P50/P90")
    assert rows == [
        " / ".join("beyond 10" if v["payback_month"][k] is None else f"{v['payback_month'][k]:.0f}"
                   for k in ("p10", "p50", "p90"))
        for v in variants
    ]  # fmt: skip
    assert cells(output, "draws paying back") == [
        f"{v['payback_month']['share_paid_back']:.0%}" for v in variants
    ]
    assert payback_legend(variants) in output.splitlines()


@pytest.mark.parametrize(("paid", "p50"), [(53, "1"), (47, "beyond 12")])
def test_no_payback_p50_unless_half_the_draws_pay_back(paid, p50):
    """The defect: 'payback month P50 1' with 53 % of draws paying back, no share shown."""
    from loyalty_pilot.pilots.simulate import payback_summary

    months = np.array([1.0] * paid + [np.inf] * (100 - paid))
    p = {k: np.percentile(months, q, method="inverted_cdf") for k, q in
         (("p10", 10), ("p50", 50), ("p90", 90))}  # fmt: skip
    raw = {k: None if math.isinf(v) else float(v) for k, v in p.items()}
    summary = payback_summary({**raw, "share_paid_back": paid / 100}, 12)
    assert summary["text"] == f"1 / {p50} / beyond 12 ({paid}% of draws pay back within 12 months)"
    assert summary["share_not_paid_back"] == pytest.approx(1 - paid / 100)
    variant = {"horizon_months": 12, "payback_month": summary}
    cell = dict(ROWS)
    assert cell["payback month P10/P50/P90"](variant) == f"1 / {p50} / beyond 12"
    assert cell["draws paying back"](variant) == f"{paid}%"


def test_smart_lines_say_when_attainable_is_annualized_or_why_it_is_not_evaluated():
    from loyalty_pilot.pilots.simulate import smart_lines

    def smart(note: str) -> dict:
        return {"A": {"note": note}}

    short = (
        "no member observed for 12 months nor for 91 days (the longest tenure is 45 days): "
        "not evaluated"
    )
    checks = [
        ("a", smart("120 members observed for 12 months")),  # the plain reading: no line
        ("b", smart("annualized: 7 members observed 91 to 363 days (none for 12 months)")),
        ("c", smart(short)),
    ]
    assert smart_lines(checks) == [
        "SMART b: attainable and time-bound annualized: 7 members observed 91 to 363 days "
        "(none for 12 months)",
        f"SMART c: attainable and time-bound {short}",
    ]
