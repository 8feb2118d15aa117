"""Command line: help everywhere, exit codes, ingest and demo end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from loyalty_pilot import __version__
from loyalty_pilot.pilots.cli import main

STORES = "store_id,region\nS1,north\nS2,south\n"
BASKETS = (
    "basket_id,customer_id,store_id,date,amount\n"
    "B1,C1,S1,2025-01-06,10\n"
    "B2,,S2,2025-01-07,20\n"
    "B3,C2,S3,2025-01-07,5\n"
    "B4,C2,S2,2025-01-08,-4\n"
    "B5,C2,S2,not-a-date,5\n"
)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def commands() -> list[str]:
    return sorted(main.commands)


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help_with_an_example(name):
    for flag in ("-h", "--help"):
        result = run(name, flag)
        assert result.exit_code == 0, result.output
        assert "Example:" in result.output
        assert "Usage: main " in result.output or "Usage: loyalty-pilot" in result.output


def test_top_level_help_and_version():
    result = run("-h")
    assert result.exit_code == 0
    for name in ("demo", "generate", "ingest", "panel", "rfm"):
        assert name in result.output
    assert run("--version").output.strip().endswith(__version__)


def test_help_imports_no_heavy_module():
    code = (
        "import sys; import loyalty_pilot.pilots.cli as c; "
        "heavy = [m for m in ('pandas', 'numpy', 'duckdb', 'scipy', 'statsmodels', 'pydantic') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_ingest_cli_counts_json_and_idempotency(tmp_path):
    (tmp_path / "s.csv").write_text(STORES)
    (tmp_path / "b.csv").write_text(BASKETS)
    ws = tmp_path / "ws"
    args = ["ingest", "--stores", str(tmp_path / "s.csv"), "--baskets", str(tmp_path / "b.csv")]
    result = run(*args, "--workspace", str(ws), "--json", str(tmp_path / "out.json"))
    assert result.exit_code == 0, result.output
    assert "loaded 3 / rejected 2 / anonymous 1 / returns 1" in result.output
    payload = json.loads((tmp_path / "out.json").read_text())
    assert {k: payload[k] for k in ("loaded", "rejected", "anonymous", "returns")} == {
        "loaded": 3,
        "rejected": 2,
        "anonymous": 1,
        "returns": 1,
    }
    with open(payload["rejects_file"], encoding="utf-8") as handle:
        rejects = handle.read()
    assert "4,unknown store_id 'S3'" in rejects
    assert "6,unparseable date 'not-a-date'" in rejects
    again = run(*args, "--workspace", str(ws))
    assert again.exit_code == 0
    assert again.output.count("nothing new loaded") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "--baskets", "nope.csv"], "nope.csv: no such file"),
        (["ingest"], "nothing to ingest"),
        (["panel", "--out", "p.csv"], "no workspace at"),
        (["rfm"], "no workspace at"),
        (["generate", "--visit-uplift", "0.1"], "--effect-stores is required"),
        (["generate", "--start", "2024-13-01"], "--start '2024-13-01': not an ISO date"),
        (["demo", "--stores", "0"], "Invalid value for '--stores'"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_column_exits_2_and_changes_nothing(tmp_path):
    (tmp_path / "b.csv").write_text("basket_id,store_id,date\nB1,S1,2025-01-01\n")
    result = CliRunner().invoke(
        main, ["ingest", "--baskets", str(tmp_path / "b.csv"), "--workspace", str(tmp_path / "ws")]
    )
    assert result.exit_code == 2
    assert "missing required columns 'customer_id', 'amount'" in result.output


def test_demo_runs_twice_and_leaves_a_workspace(tmp_path):
    ws = tmp_path / "demo"
    args = ["demo", "--stores", "6", "--regions", "2", "--customers", "800", "--weeks", "12"]
    first = run(*args, "--workspace", str(ws), "--json", str(tmp_path / "d.json"))
    assert first.exit_code == 0, first.output
    assert (ws / "workspace.duckdb").exists()
    payload = json.loads((tmp_path / "d.json").read_text())
    chain = payload["chain"]
    assert chain["stores"] == 6
    assert chain["regions"] == 2
    assert f"stores 6 in 2 regions; customers {chain['customers']:,}" in first.output
    assert payload["ingest"][-1]["rejected"] == 0
    assert sum(row["share"] for row in chain["sales_by_region"]) == pytest.approx(1.0)
    second = run(*args, "--workspace", str(ws), "--json", str(tmp_path / "d2.json"))
    assert second.exit_code == 0, second.output
    assert json.loads((tmp_path / "d2.json").read_text())["chain"] == chain


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("x")
    result = CliRunner().invoke(main, ["demo", "--workspace", str(tmp_path / "mine")])
    assert result.exit_code == 2
    assert "is not a demo workspace" in result.output
    assert (tmp_path / "mine" / "precious.txt").exists()


def test_generate_refuses_a_workspace_with_baskets(tmp_path):
    ws = str(tmp_path / "ws")
    small = ["--stores", "4", "--regions", "2", "--customers", "300", "--weeks", "8"]
    first = run("generate", *small, "--workspace", ws)
    assert first.exit_code == 0, first.output
    result = CliRunner().invoke(main, ["generate", *small, "--workspace", ws])
    assert result.exit_code == 2
    assert "already holds" in result.output


def test_panel_and_rfm_commands(tmp_path):
    ws = str(tmp_path / "ws")
    small = ["--stores", "4", "--regions", "2", "--customers", "400", "--weeks", "10"]
    assert run("generate", *small, "--workspace", ws).exit_code == 0
    out = tmp_path / "panel.csv"
    result = run("panel", "--level", "region", "--out", str(out), "--workspace", ws)
    assert result.exit_code == 0, result.output
    import pandas as pd

    frame = pd.read_csv(out)
    assert len(frame) == 2 * 10
    assert f"{len(frame):,} rows written" in result.output
    result = run("rfm", "--workspace", ws, "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "r.json").read_text())
    assert sum(row["customers"] for row in payload["segments"]) == payload["customers"]


def test_user_facing_error_is_a_click_exception_with_code_2():
    from loyalty_pilot.pilots.cli import UserFacingError

    assert issubclass(UserFacingError, click.ClickException)
    assert UserFacingError("x").exit_code == 2


def test_the_example_files_ingest_as_the_examples_readme_says(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "examples"
    result = run(
        "ingest",
        "--stores",
        str(root / "data" / "stores.csv"),
        "--baskets",
        str(root / "data" / "baskets.csv"),
        "--workspace",
        str(tmp_path / "ws"),
        "--json",
        str(tmp_path / "out.json"),
    )
    assert result.exit_code == 0, result.output
    promised = "baskets loaded 8 / rejected 3 / anonymous 1 / returns 1"
    assert promised in result.output
    assert promised in (root / "README.md").read_text()
    payload = json.loads((tmp_path / "out.json").read_text())
    with open(payload["rejects_file"], encoding="utf-8") as handle:
        lines = [row.split(",")[0] for row in handle.read().splitlines()[1:]]
    assert lines == ["9", "10", "11"]


def test_demo_sizes_freezes_synthesizes_and_evaluates_the_pilot(tmp_path):
    ws = tmp_path / "demo"
    args = ["demo", "--stores", "12", "--regions", "3", "--customers", "3000", "--weeks", "52"]
    result = run(*args, "--workspace", str(ws), "--json", str(tmp_path / "d.json"))
    assert result.exit_code == 0, result.output
    pilot = json.loads((tmp_path / "d.json").read_text())["pilot"]
    assert (ws / "pilot.yaml").exists()
    design = pilot["design"]
    assert design["threshold_source"] == "break-even uplift (simulator)"
    assert design["threshold"] == pytest.approx(min(design["break_even_uplift"].values()))
    assert design["power"]["cells"]
    frozen = pilot["frozen"]
    assert frozen["version"] == 1
    arms = {u["arm"] for u in frozen["units"]}
    assert arms == {"control", "cash", "gift"}
    pairs = [(c["arm"], c["baseline"]) for c in pilot["comparisons"]]
    assert pairs == [("cash", "control"), ("gift", "control"), ("gift", "cash")]
    truth = {**pilot["truth"], "control": 0.0}
    for row in pilot["comparisons"]:
        expected = (1 + truth[row["arm"]]) / (1 + truth[row["baseline"]]) - 1
        assert row["truth_relative"] == pytest.approx(expected)
        assert 0 <= row["p_value"] <= row["p_value_adjusted"] <= 1
    guards = pilot["evaluation"]["guardrails"]
    assert {g["metric"] for g in guards["cash"]} == {"gross_margin_rate", "programme_cost_share"}
    assert set(pilot["evaluation"]["sequential"]) == {"cash", "gift"}
    recalibrated = {r["arm"]: r for r in pilot["recalibration"]}
    assert recalibrated["cash"]["assumption_set_version"] == 1
    assert (ws / "recalibrated" / "cash-voucher.recalibrated.yaml").exists()
    assert "Recalibrated assumptions" in result.output
    assert pilot["decision"]["verdict"] in ("GO", "NO-GO", "EXTEND")
    assert (ws / "report" / "report.html").exists()
    assert json.loads((ws / "report" / "report.json").read_text())["pilot"] == "demo-cash-vs-gift"
    assert f"Report: {ws / 'report' / 'report.html'}" in result.output
    assert "Frozen: pilot demo-cash-vs-gift version 1" in result.output
    assert "truth +6.0%" in result.output
    # the frozen pilot can be evaluated again from the command line
    again = run("evaluate", str(ws / "pilot.yaml"), "--workspace", str(ws))
    assert again.exit_code == 0, again.output
    assert "Frozen version 1" in again.output
