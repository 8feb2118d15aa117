"""check, schema and the demo's programme comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from loyalty_pilot.pilots.chain import build_chain
from loyalty_pilot.pilots.cli import main
from loyalty_pilot.pilots.programmes import example_programmes, workspace_baskets
from loyalty_pilot.pilots.specfile import load_programme
from loyalty_pilot.pilots.workspace import open_workspace
from loyalty_pilot.simulator.replay import replay
from loyalty_pilot.simulator.smart import smart_check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "programmes"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_shipped_examples_are_the_repository_examples():
    shipped = {p.name: p.read_text() for p in example_programmes()}
    here = {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml")}
    assert shipped == here
    assert set(shipped) == {
        "cash-voucher.yaml",
        "gift-catalogue.yaml",
        "tiered-card.yaml",
        "fixed-discount-card.yaml",
        "progressive-discount.yaml",
    }


def test_check_without_workspace_validates_and_checks_s_and_m(tmp_path):
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    result = run("check", *files, "--workspace", str(tmp_path / "none"), "--json",
                 str(tmp_path / "c.json"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("valid programme") == 5
    assert "need the chain's baskets" in result.output or "need " in result.output
    variants = json.loads((tmp_path / "c.json").read_text())["variants"]
    assert [v["smart"]["A"]["pass"] for v in variants] == [None] * 5
    assert all(v["smart"]["S"]["pass"] in (True, False) for v in variants)


@pytest.fixture(scope="module")
def small_workspace(tmp_path_factory):
    ws = open_workspace(tmp_path_factory.mktemp("chain") / "ws")
    build_chain(ws, stores=6, regions=2, customers=1500, weeks=70, seed=4)
    return ws


def test_check_with_workspace_matches_the_api(small_workspace, tmp_path):
    path = EXAMPLES / "tiered-card.yaml"
    out = tmp_path / "c.json"
    result = run("check", str(path), "--workspace", str(small_workspace.path), "--seed", "3",
                 "--json", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    (variant,) = json.loads(out.read_text())["variants"]
    con = small_workspace.connect(read_only=True)
    baskets = workspace_baskets(con)
    con.close()
    programme = load_programme(path)
    direct = replay(baskets, programme, seed=3)
    expected = smart_check(programme, direct).to_dict()
    assert variant["smart"] == json.loads(json.dumps(expected))
    assert variant["cost"] == pytest.approx(direct.totals["cost"])
    assert variant["rewards_issued"] == direct.totals["rewards_issued"]
    assert variant["liability_end"] == pytest.approx(direct.totals["liability_end"])
    assert f"{direct.totals['rewards_issued']:,}" in result.output


def test_check_reports_every_mistake_of_every_file(tmp_path):
    good = (EXAMPLES / "cash-voucher.yaml").read_text()
    (tmp_path / "a.yaml").write_text(good.replace("points: 500", "points: 0"))
    (tmp_path / "b.yaml").write_text(good.replace("gross_margin: 0.30", "gross_margin: high"))
    result = run("check", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
                 "--workspace", str(tmp_path / "none"))  # fmt: skip
    assert result.exit_code == 2
    assert "a.yaml:" in result.output
    assert "b.yaml:" in result.output
    assert "Traceback" not in result.output


def test_check_rejects_two_files_with_one_name(tmp_path):
    text = (EXAMPLES / "cash-voucher.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    result = run("check", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
                 "--workspace", str(tmp_path / "none"))  # fmt: skip
    assert result.exit_code == 2
    assert "used by two files" in result.output


def test_schema_is_json_for_the_programme(tmp_path):
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert {"programme", "rewards", "economics", "tiers"} <= set(schema["properties"])
    assert "programme" in schema["required"]
    result = run("schema", "--out", str(tmp_path / "s.json"))
    assert json.loads((tmp_path / "s.json").read_text()) == schema


def test_demo_compares_the_example_programmes(tmp_path):
    out = tmp_path / "d.json"
    result = run("demo", "--stores", "5", "--regions", "2", "--customers", "1200", "--weeks",
                 "60", "--workspace", str(tmp_path / "demo"), "--json", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    variants = json.loads(out.read_text())["variants"]
    assert [v["programme"] for v in variants] == [
        "cash-voucher",
        "fixed-discount-card",
        "gift-catalogue",
        "progressive-discount",
        "tiered-card",
    ]
    gift = variants[2]
    assert gift["rewards_perceived"] > gift["rewards_value"]  # perceived above cost
    assert "SMART verdict" in result.output
    projected = json.loads(out.read_text())["projection"]
    assert [v["programme"] for v in projected] == ["cash-voucher", "gift-catalogue"]
    for v in projected:
        assert v["break_even_uplift"] > 0
        assert v["profit"]["p10"] <= v["profit"]["p50"] <= v["profit"]["p90"]
    assert "Cash vs gift, projected" in result.output


def test_schema_of_a_pilot_file(tmp_path):
    result = run("schema", "--pilot", "--out", str(tmp_path / "p.json"))
    assert result.exit_code == 0
    schema = json.loads((tmp_path / "p.json").read_text())
    assert {"pilot", "arms", "pre_period", "test_period", "design", "rollout"} <= set(
        schema["properties"]
    )


def test_check_on_52_weeks_annualizes_attainable_and_says_so(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    build_chain(ws, stores=3, regions=1, customers=600, weeks=52, seed=2)
    path = EXAMPLES / "cash-voucher.yaml"
    out = tmp_path / "c.json"
    result = run("check", str(path), "--workspace", str(ws.path), "--json", str(out))
    assert result.exit_code == 0, result.output
    (variant,) = json.loads(out.read_text())["variants"]
    smart = variant["smart"]
    assert smart["verdict"] != "incomplete"
    assert smart["A"]["pass"] is not None
    assert smart["T"]["pass"] is not None
    assert smart["A"]["note"].startswith("annualized: ")
    line = f"SMART cash-voucher: attainable and time-bound {smart['A']['note']}"
    assert line in result.output.splitlines()
    con = ws.connect(read_only=True)
    try:
        baskets = workspace_baskets(con)
    finally:
        con.close()
    programme = load_programme(path)
    assert smart == json.loads(
        json.dumps(smart_check(programme, replay(baskets, programme)).to_dict())
    )
