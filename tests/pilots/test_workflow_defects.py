"""Workflow defects found on real data (issue #12 item 8), each pinned by the command line.

- the frozen version read is the one the YAML describes (or --version N), said on stderr;
- a guardrail the data cannot measure is refused at design time;
- ``design.units_per_arm: null`` in a stratified design;
- ``decide`` and ``report`` leave the workspace's assumption sets alone.

One small synthetic chain (history up to the test start) per module, copied per test.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from loyalty_pilot.pilots.cli import main
from loyalty_pilot.pilots.programmes import example_programmes

START = dt.date(2024, 1, 1)
WEEKS = 60
TEST_WEEKS = 8
TEST_START = START + dt.timedelta(weeks=WEEKS - TEST_WEEKS)
PROGRAMMES = {p.stem: p.resolve() for p in example_programmes()}
PARAMETERS = {"stores": 18, "regions": 4, "customers": 3000, "weeks": WEEKS, "seed": 4}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    from loyalty_pilot.pilots.chain import build_chain
    from loyalty_pilot.pilots.workspace import open_workspace

    folder = tmp_path_factory.mktemp("chain") / "ws"
    build_chain(open_workspace(folder), start=START, until=TEST_START, **PARAMETERS)
    return folder


@pytest.fixture
def ws(history, tmp_path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(history, target)
    return target


def write_pilot(folder: Path, name: str = "pilot.yaml", **changes) -> Path:
    spec = {
        "pilot": "test-pilot",
        "arms": {
            "control": None,
            "cash": str(PROGRAMMES["cash-voucher"]),
            "gift": str(PROGRAMMES["gift-catalogue"]),
        },
        "unit": "store",
        "pre_period": {"start": START, "end": TEST_START - dt.timedelta(days=1)},
        "test_period": {"start": TEST_START, "weeks": TEST_WEEKS},
        "design": {"method": "complete", "units_per_arm": 4, "seed": 3},
        "power": {"units_per_arm": [2, 4], "weeks": [4, 8], "placebos": 200},
        "decision": {"alpha": 0.05, "min_uplift": 0.05, "min_roi": -1.0},
        "rollout": {"holdout_share": 0.1, "waves": [{"name": "rest"}]},
    }
    for key, value in changes.items():
        if key != "arms" and isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def error_line(result) -> str:
    """The one line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


def add_weeks(ws: Path, arm_of: dict[str, str]) -> None:
    from loyalty_pilot.pilots.chain import add_pilot_weeks
    from loyalty_pilot.pilots.workspace import open_workspace

    stores = tuple(sorted(s for s, a in arm_of.items() if a == "cash"))
    effects = [{"stores": stores, "start": TEST_START, "visit_uplift": 0.3}]
    end = TEST_START + dt.timedelta(weeks=TEST_WEEKS, days=-1)
    params = {**PARAMETERS, "start": START.isoformat()}
    add_pilot_weeks(open_workspace(ws), params, start=TEST_START, end=end, effects=effects)


def frozen_versions(ws: Path) -> dict[int, dict]:
    from loyalty_pilot.pilots.registry import history
    from loyalty_pilot.pilots.workspace import open_workspace

    con = open_workspace(ws).connect(read_only=True)
    try:
        return {row["version"]: row for row in history(con, "test-pilot")}
    finally:
        con.close()


def assumption_rows(ws: Path) -> list[tuple]:
    from loyalty_pilot.pilots.assumptions import TABLE
    from loyalty_pilot.pilots.workspace import open_workspace

    con = open_workspace(ws).connect(read_only=True)
    try:
        return con.execute(f"SELECT * FROM {TABLE} ORDER BY programme, version").fetchall()
    finally:
        con.close()


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# --------------------------------------------------------------------------- 1. versions


@pytest.fixture
def two_versions(ws, tmp_path) -> tuple[Path, Path, Path]:
    """Version 1 from first.yaml (seed 3), version 2 from second.yaml (seed 99)."""
    first = write_pilot(tmp_path, "first.yaml")
    second = write_pilot(tmp_path, "second.yaml", design={"seed": 99})
    assert run("assign", first, "--workspace", ws).exit_code == 0
    made = run("assign", second, "--workspace", ws, "--new-version")
    assert made.exit_code == 0, made.output
    assert "version 2" in made.output
    return ws, first, second


def test_the_version_read_is_the_one_the_yaml_describes(two_versions, tmp_path):
    ws, first, second = two_versions
    versions = frozen_versions(ws)
    # rollout reads version 1 for first.yaml although version 2 is the latest
    out = tmp_path / "r.json"
    result = run("rollout", first, "--workspace", ws, "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["frozen_version"] == 1
    assert (
        f"reading frozen version 1 of pilot test-pilot (design hash "
        f"{versions[1]['design_hash'][:12]}" in result.stderr
    )
    assert "reading frozen version" not in result.stdout  # progress goes to stderr
    result = run("rollout", second, "--workspace", ws, "--json", out)
    assert json.loads(out.read_text())["frozen_version"] == 2
    assert "reading frozen version 2 of pilot test-pilot" in result.stderr
    # --version N reads N when it is the YAML's design
    result = run("rollout", second, "--workspace", ws, "--version", 2, "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["frozen_version"] == 2


def test_versions_that_do_not_exist_or_do_not_match_exit_2(two_versions, tmp_path):
    ws, first, _second = two_versions
    for command in ("evaluate", "recalibrate", "decide", "report", "rollout"):
        missing = error_line(run(command, first, "--workspace", ws, "--version", 7))
        assert missing == (
            "Error: --version 7: pilot test-pilot has no version 7 (versions: 1, 2)"
        ), command
    other = error_line(run("evaluate", first, "--workspace", ws, "--version", 2))
    assert other == (
        f"Error: --version 2: version 2 of pilot test-pilot was frozen from another design "
        f"than {first} (it matches version 1); read it with the YAML it was frozen from"
    )
    third = write_pilot(tmp_path, "third.yaml", design={"seed": 5})
    for command in ("evaluate", "recalibrate", "decide", "report", "rollout"):
        none = error_line(run(command, third, "--workspace", ws))
        assert none == (
            f"Error: {third}: the YAML's design matches no frozen version of pilot "
            f"test-pilot (versions: 1, 2); freeze it with `loyalty-pilot assign {third} "
            "--new-version`, or put back the design a version was frozen with"
        ), command
    # file mode has no frozen versions
    assert "--version reads a frozen pilot" in error_line(
        run("evaluate", "--data", tmp_path / "x.csv", "--version", 1)
    )


def test_null_size_matches_the_version_frozen_with_its_recommendation(ws, tmp_path):
    from loyalty_pilot.pilots.pilot_design import run_design
    from loyalty_pilot.pilots.pilot_freeze import matching_versions, yaml_payload
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.workspace import open_workspace

    pilot = write_pilot(tmp_path, design={"units_per_arm": None})
    assert run("assign", pilot, "--workspace", ws).exit_code == 0
    pf = load_pilot(pilot)
    con = open_workspace(ws).connect(read_only=True)
    try:
        design = run_design(con, pf, with_power=True)
        assert matching_versions(con, pf) == ([1], [1])
    finally:
        con.close()
    # the payload rebuilt from the YAML is the design's own (the registry's design hash)
    assert yaml_payload(pf, design.per_arm) == design.design_payload(pf)
    assert run("rollout", pilot, "--workspace", ws).exit_code == 0


def test_decide_report_recalibrate_read_the_yaml_version_and_only_recalibrate_saves(
    two_versions, tmp_path
):
    ws, first, second = two_versions
    versions = frozen_versions(ws)
    from loyalty_pilot.pilots.registry import get
    from loyalty_pilot.pilots.workspace import open_workspace

    con = open_workspace(ws).connect(read_only=True)
    try:
        arm_of = get(con, "test-pilot", 1).arm_of()
    finally:
        con.close()
    add_weeks(ws, arm_of)
    assert assumption_rows(ws) == []

    out = tmp_path / "e.json"
    evaluated = run("evaluate", first, "--workspace", ws, "--json", out)
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(out.read_text())["pilot"]["version"] == 1
    assert "reading frozen version 1 of pilot test-pilot" in evaluated.stderr

    # the footer: one version's hash with that version's seed (the defect mixed them)
    out = tmp_path / "d.json"
    decided = run("decide", first, "--workspace", ws, "--draws", 200, "--json", out)
    assert decided.exit_code == 0, decided.output
    assert "reading frozen version 1 of pilot test-pilot" in decided.stderr
    footer = json.loads(out.read_text())["reproducibility"]
    assert footer["pilot_version"] == 1
    assert footer["design_hash"] == versions[1]["design_hash"]
    assert footer["data_fingerprint"] == versions[1]["data_fingerprint"]
    assert footer["seed"] == versions[1]["seed"] == 3
    assert assumption_rows(ws) == []  # decide saved nothing

    folder = tmp_path / "report"
    made = run("report", second, "--workspace", ws, "--draws", 200, "--out", folder,
               "--format", "json")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "reading frozen version 2 of pilot test-pilot" in made.stderr
    footer = json.loads((folder / "report.json").read_text())["reproducibility"]
    assert (footer["pilot_version"], footer["seed"]) == (2, 99)
    assert footer["design_hash"] == versions[2]["design_hash"]
    assert assumption_rows(ws) == []  # report saved nothing

    out = tmp_path / "c.json"
    recalibrated = run("recalibrate", first, "--workspace", ws, "--draws", 200, "--json", out)
    assert recalibrated.exit_code == 0, recalibrated.output
    assert "reading frozen version 1 of pilot test-pilot" in recalibrated.stderr
    rows = assumption_rows(ws)
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("cash-voucher", 1, "pilot test-pilot v1"),
        ("gift-catalogue", 1, "pilot test-pilot v1"),
    ]
    arms = json.loads(out.read_text())["arms"]
    assert [a["assumption_set_version"] for a in arms] == [1, 1]
    # decide again: the table is as recalibrate left it
    assert run("decide", first, "--workspace", ws, "--draws", 200).exit_code == 0
    assert assumption_rows(ws) == rows


def test_recalibrate_pilot_with_save_false_writes_nothing(two_versions, tmp_path):
    from loyalty_pilot.pilots.pilot_freeze import require_frozen
    from loyalty_pilot.pilots.pilotspec import load_pilot
    from loyalty_pilot.pilots.recalibrate import recalibrate_pilot, recalibration_lines
    from loyalty_pilot.pilots.workspace import open_workspace

    ws, first, _second = two_versions
    pf = load_pilot(first)
    con = open_workspace(ws).connect()
    try:
        frozen = require_frozen(con, pf, ws)
        assert frozen.version == 1
    finally:
        con.close()
    add_weeks(ws, frozen.arm_of())
    comparisons = [
        {"arm": arm, "baseline": "control", "status": "ok", "scale": "log",
         "log_estimate": 0.05, "se": 0.02, "relative": 0.0513, "rel_ci_low": 0.01,
         "rel_ci_high": 0.09, "alpha": 0.05}
        for arm in ("cash", "gift")
    ]  # fmt: skip
    con = open_workspace(ws).connect()
    try:
        unsaved = recalibrate_pilot(con, pf, frozen, draws=100, comparisons=comparisons,
                                    out=tmp_path / "y", save=False)  # fmt: skip
    finally:
        con.close()
    assert assumption_rows(ws) == []
    assert [r.version for r in unsaved] == [None, None]
    assert (tmp_path / "y" / "cash-voucher.recalibrated.yaml").exists()
    assert "not saved in the workspace" in (tmp_path / "y" / "cash-voucher.recalibrated.yaml"
                                            ).read_text()  # fmt: skip
    lines = recalibration_lines(unsaved)
    assert any("not saved in the workspace (`loyalty-pilot recalibrate` saves it)" in line
               for line in lines)  # fmt: skip
    con = open_workspace(ws).connect()
    try:
        saved = recalibrate_pilot(con, pf, frozen, draws=100, comparisons=comparisons)
    finally:
        con.close()
    assert [r.version for r in saved] == [1, 1]
    assert len(assumption_rows(ws)) == 2
    # the same figures, saved or not
    for a, b in zip(unsaved, saved, strict=True):
        assert a.recalibration.posterior == b.recalibration.posterior
        assert a.after.profit.to_dict() == b.after.profit.to_dict()


# --------------------------------------------------------------------------- 2. guardrails


def test_a_margin_guardrail_without_margins_is_refused_at_design_time(ws, tmp_path):
    from loyalty_pilot.pilots.workspace import open_workspace

    con = open_workspace(ws).connect()
    try:  # the state an ingest of baskets without a margin column leaves
        con.execute("UPDATE baskets SET margin = NULL")
    finally:
        con.close()
    pilot = write_pilot(
        tmp_path,
        metrics={"primary": "sales", "guardrails": [
            {"metric": "visits", "margin": 0.05},
            {"metric": "gross_margin_rate", "margin": 0.01},
        ]},
    )  # fmt: skip
    line = line_of(pilot, "metric: gross_margin_rate")
    column = pilot.read_text().splitlines()[line - 1].index("metric") + 1
    expected = (
        f"Error: {pilot}:{line}:{column}: metrics.guardrails.1.metric: gross_margin_rate "
        f"cannot be measured: the baskets have no margin column (no basket from {START} to "
        f"{TEST_START - dt.timedelta(days=1)} has a margin); ingest baskets with a margin "
        "column or remove this guardrail"
    )
    design = run("design", pilot, "--workspace", ws)
    assert error_line(design) == expected
    assert "Power by placebo pilots" not in design.output  # refused before any work
    assert error_line(run("assign", pilot, "--workspace", ws)) == expected
    assert frozen_versions(ws) == {}  # nothing frozen


def test_store_guardrails_in_a_customer_pilot_are_refused_at_design_time(ws, tmp_path):
    pilot = write_pilot(
        tmp_path,
        unit="customer",
        design={"method": "complete", "units_per_arm": 300},
        power={"units_per_arm": [300], "weeks": [8], "placebos": 200, "scale": "level"},
        metrics={"primary": "sales", "guardrails": [
            {"metric": "visits", "margin": 0.05},
            {"metric": "programme_cost_share", "margin": 0.02},
        ]},
        rollout={"holdout_share": 0.0, "waves": [{"name": "national"}]},
    )  # fmt: skip
    line = line_of(pilot, "metric: programme_cost_share")
    column = pilot.read_text().splitlines()[line - 1].index("metric") + 1
    expected = (
        f"Error: {pilot}:{line}:{column}: metrics.guardrails.1.metric: programme_cost_share "
        "cannot be measured in a customer pilot (unit: customer): the customer-level table "
        "has no programme_cost_share column (it has sales and visits); remove this guardrail "
        "or pilot by store"
    )
    assert error_line(run("design", pilot, "--workspace", ws)) == expected
    assert error_line(run("assign", pilot, "--workspace", ws)) == expected
    assert frozen_versions(ws) == {}
    # the guardrails a customer pilot measures pass
    fine = write_pilot(
        tmp_path, "fine.yaml", unit="customer",
        design={"method": "complete", "units_per_arm": 300},
        power={"units_per_arm": [300], "weeks": [8], "placebos": 200, "scale": "level"},
        metrics={"primary": "sales", "guardrails": [{"metric": "visits", "margin": 0.05}]},
        rollout={"holdout_share": 0.0, "waves": [{"name": "national"}]},
    )  # fmt: skip
    assert run("assign", fine, "--workspace", ws).exit_code == 0


# --------------------------------------------------------------------------- 3. null size


def test_null_size_in_a_stratified_design_takes_what_the_strata_allow(ws, tmp_path):
    from loyalty_pilot.pilots.workspace import open_workspace

    pilot = write_pilot(
        tmp_path,
        arms={"control": None, "cash": str(PROGRAMMES["cash-voucher"])},
        design={"method": "stratified", "stratify_by": ["region"], "units_per_arm": None},
        power={"units_per_arm": [2, 3], "weeks": [4], "placebos": 200},
        decision={"alpha": 0.05, "min_uplift": 0.001},  # no design detects +0.1 %
    )
    con = open_workspace(ws).connect(read_only=True)
    try:
        counts = [n for (n,) in con.execute(
            "SELECT count(*) FROM stores GROUP BY region ORDER BY region").fetchall()]  # fmt: skip
    finally:
        con.close()
    allowed = sum(n // 2 for n in counts)  # two arms: the strata's pairs
    assert allowed < sum(counts) // 2  # the size n // arms cannot be drawn within strata
    out = tmp_path / "d.json"
    result = run("design", pilot, "--workspace", ws, "--json", out)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["recommended"] is None
    assert payload["per_arm"] == allowed
    assert payload["assignment"]["counts"] == {"cash": allowed, "control": allowed}
    note = next(n for n in payload["notes"] if n.startswith("no design of the grid"))
    assert (
        f"Using the largest the stratified design allows within its strata (region), "
        f"{allowed} per arm ({sum(counts)} eligible units for 2 arms would allow "
        f"{sum(counts) // 2}), only to learn." in note
    )
    frozen = run("assign", pilot, "--workspace", ws, "--json", tmp_path / "f.json")
    assert frozen.exit_code == 0, frozen.output
    units = json.loads((tmp_path / "f.json").read_text())["units"]
    assert sum(u["arm"] == "cash" for u in units) == allowed
