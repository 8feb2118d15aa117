"""Versioned assumption sets in the workspace, and programme YAML written with them."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from loyalty_pilot.pilots.assumptions import (
    assumption_history,
    current_response,
    export_assumptions,
    get_assumptions,
    latest_assumptions,
    observation_from_comparison,
    save_assumptions,
    write_programme_yaml,
)
from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.specfile import load_programme
from loyalty_pilot.pilots.workspace import Workspace
from loyalty_pilot.simulator.programme import Programme, Response, SegmentResponse, Uncertain
from loyalty_pilot.simulator.recalibration import Observation, recalibrate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "programmes"


@pytest.fixture
def con(tmp_path):
    connection = Workspace(tmp_path / "ws").connect()
    yield connection
    connection.close()


@pytest.fixture
def cash() -> Programme:
    return load_programme(EXAMPLES / "cash-voucher.yaml")


def rows(con) -> list[tuple]:
    return con.execute("SELECT * FROM assumption_sets ORDER BY programme, version").fetchall()


# ----------------------------------------------------------------------------- versions


def test_save_versions_and_latest(con, cash):
    assert latest_assumptions(con, cash.programme) is None
    assert assumption_history(con, cash.programme) == []
    assert current_response(con, cash) == (None, cash.response)

    first = recalibrate(cash.response, sales=Observation(math.log(1.02), 0.01))
    assert save_assumptions(con, cash.programme, first, "pilot cash-vs-gift v1") == 1
    assert latest_assumptions(con, cash.programme) == (1, first.posterior)
    assert current_response(con, cash) == (1, first.posterior)

    second = recalibrate(first.posterior, churn=Observation(0.1, 0.02))
    assert save_assumptions(con, cash.programme, second, "pilot retention v2") == 2
    assert latest_assumptions(con, cash.programme) == (2, second.posterior)
    assert get_assumptions(con, cash.programme, 1) == first.posterior

    history = assumption_history(con, cash.programme)
    assert [h["version"] for h in history] == [1, 2]
    assert [h["source"] for h in history] == ["pilot cash-vs-gift v1", "pilot retention v2"]
    assert Response.model_validate(history[0]["response"], strict=False) == first.posterior
    assert history[0]["recalibration"]["weight"] == pytest.approx(first.weight)
    assert history[0]["recalibration"]["used"]["sales"]["se"] == 0.01
    assert history[0]["created_at"].endswith("Z")

    # another programme has its own versions
    assert save_assumptions(con, "gift-catalogue", Response(), "programme file") == 1
    assert latest_assumptions(con, cash.programme)[0] == 2


def test_same_response_returns_the_latest_without_writing(con, cash):
    r = recalibrate(cash.response, sales=Observation(0.03, 0.01))
    assert save_assumptions(con, cash.programme, r, "pilot a v1") == 1
    before = rows(con)
    # the same posterior again (another source, or a plain Response): no new version
    assert save_assumptions(con, cash.programme, r, "pilot a v1 again") == 1
    assert save_assumptions(con, cash.programme, r.posterior, "by hand") == 1
    assert rows(con) == before


def test_rows_are_immutable_and_going_back_is_a_new_version(con, cash):
    a = cash.response
    b = recalibrate(a, sales=Observation(0.05, 0.01)).posterior
    assert save_assumptions(con, cash.programme, a, "programme file cash-voucher.yaml") == 1
    snapshot = rows(con)
    assert save_assumptions(con, cash.programme, b, "pilot x v1") == 2
    assert rows(con)[:1] == snapshot  # version 1 untouched
    snapshot = rows(con)
    assert save_assumptions(con, cash.programme, a, "rolled back") == 3
    assert rows(con)[:2] == snapshot  # versions 1 and 2 untouched
    history = assumption_history(con, cash.programme)
    assert [h["version"] for h in history] == [1, 2, 3]
    assert history[0]["recalibration"] is None
    assert get_assumptions(con, cash.programme, 3) == a == get_assumptions(con, cash.programme, 1)


def test_versions_survive_reopening_and_read_only(tmp_path, cash):
    ws = Workspace(tmp_path / "ws")
    con = ws.connect()
    r = recalibrate(cash.response, sales=Observation(0.04, 0.02))
    save_assumptions(con, cash.programme, r, "pilot cash-vs-gift v1")
    con.close()
    con = ws.connect(read_only=True)
    try:
        assert latest_assumptions(con, cash.programme) == (1, r.posterior)
    finally:
        con.close()


def test_old_workspace_without_the_table(tmp_path, cash):
    import duckdb

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    try:
        assert latest_assumptions(con, cash.programme) is None
        assert assumption_history(con, cash.programme) == []
        with pytest.raises(UserError, match="no saved assumption sets"):
            get_assumptions(con, cash.programme, 1)
        # saving creates the table
        assert save_assumptions(con, cash.programme, cash.response, "file") == 1
    finally:
        con.close()


def test_get_unknown_version_names_the_known_ones(con, cash):
    save_assumptions(con, cash.programme, cash.response, "file")
    with pytest.raises(UserError, match=r"no assumption set 7 \(versions: 1\)"):
        get_assumptions(con, cash.programme, 7)


def test_a_changed_row_is_reported(con, cash):
    save_assumptions(con, cash.programme, cash.response, "file")
    con.execute("UPDATE assumption_sets SET response = '{\"visit_uplift\": 3}'")
    with pytest.raises(UserError, match="changed outside loyalty-pilot"):
        latest_assumptions(con, cash.programme)


@pytest.mark.parametrize(
    ("name", "source", "error"),
    [("", "x", ValueError), ("cash", " ", ValueError)],
)
def test_bad_save_arguments(con, cash, name, source, error):
    with pytest.raises(error, match="must"):
        save_assumptions(con, name, cash.response, source)


def test_save_refuses_other_objects(con):
    with pytest.raises(TypeError, match="Recalibration or a Response"):
        save_assumptions(con, "cash", {"visit_uplift": 1}, "x")


def test_failed_insert_leaves_nothing(con, cash, monkeypatch):
    """A failure inside the transaction rolls back: no half-written version."""
    import duckdb

    save_assumptions(con, cash.programme, cash.response, "file")
    calls = []
    real = duckdb.DuckDBPyConnection.execute

    class Boom(Exception):
        pass

    def fake(self, sql, *args):
        if sql.startswith("INSERT INTO assumption_sets"):
            calls.append(sql)
            real(self, sql, *args)
            raise Boom
        return real(self, sql, *args)

    wrapper = _Wrapped(con, fake)
    new = recalibrate(cash.response, sales=Observation(0.1, 0.01))
    with pytest.raises(Boom):
        save_assumptions(wrapper, cash.programme, new, "pilot")
    assert calls
    assert [r[1] for r in rows(con)] == [1]


class _Wrapped:
    """A connection whose execute is replaced (DuckDB's class cannot be monkeypatched)."""

    def __init__(self, con, execute):
        self._con = con
        self._execute = execute

    def execute(self, sql, *args):
        return self._execute(self._con, sql, *args)


# ----------------------------------------------------------------------------- YAML


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_written_yaml_loads_back_equal(tmp_path, path):
    programme = load_programme(path)
    r = recalibrate(programme.response, sales=Observation(math.log(1.013), 0.004))
    target = tmp_path / "out" / path.name
    target.parent.mkdir()
    written = write_programme_yaml(
        programme, r.posterior, target, source_comment="pilot cash-vs-gift v1, assumption set 2"
    )
    assert written == target
    loaded = load_programme(target)
    assert loaded == programme.model_copy(update={"response": r.posterior})
    assert loaded.response == r.posterior
    text = target.read_text()
    assert text.startswith("# pilot cash-vs-gift v1, assumption set 2\n")
    assert not list(target.parent.glob(".*.tmp"))  # no temporary file left


def test_written_yaml_keeps_what_the_file_set(tmp_path, cash):
    target = tmp_path / "cash.yaml"
    write_programme_yaml(cash, cash.response, target, source_comment="same")
    text = target.read_text()
    assert "currency: EUR" in text  # set in the original file although it is the default
    assert "smart:" not in text  # never set: not written
    assert "visit_uplift: {mean: 0.03, sd: 0.015}" in text


def test_written_yaml_quotes_tricky_text_and_keeps_segments(tmp_path):
    spec = {
        "programme": "tricky",
        "description": "1e3",
        "start": "2024-01-01",
        "earn": {"points_per_currency": 1e-05},
        "rewards": [
            {"kind": "gift", "name": "0o17", "points": 10, "retail_value": 2.0, "unit_cost": 1.0}
        ],
        "tiers": [{"name": "yes", "min_spend_12m": 0}],
        "economics": {"gross_margin": 0.3, "budget_share_of_revenue": 0.02},
    }
    programme = Programme.model_validate(spec, strict=False)
    response = Response(
        visit_uplift=Uncertain(mean=-0.01, sd=0.0),
        segments={"champions": SegmentResponse(basket_uplift=Uncertain(mean=0.02, sd=0.01))},
    )
    target = tmp_path / "tricky.yaml"
    write_programme_yaml(programme, response, target, source_comment="line one\n\nline two")
    assert load_programme(target) == programme.model_copy(update={"response": response})
    assert target.read_text().startswith("# line one\n#\n# line two\n")


def test_write_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, cash, monkeypatch):
    import os

    target = tmp_path / "cash.yaml"
    shutil.copy(EXAMPLES / "cash-voucher.yaml", target)
    original = target.read_text()

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    new = recalibrate(cash.response, sales=Observation(0.2, 0.01)).posterior
    with pytest.raises(OSError, match="disk full"):
        write_programme_yaml(cash, new, target, source_comment="x")
    assert target.read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cash.yaml"]


def test_write_into_a_missing_folder_is_a_user_error(tmp_path, cash):
    with pytest.raises(UserError, match="no folder"):
        write_programme_yaml(cash, cash.response, tmp_path / "nope" / "x.yaml", source_comment="")


def test_export_assumptions(con, cash, tmp_path):
    with pytest.raises(UserError, match="no saved assumption sets"):
        export_assumptions(con, cash, tmp_path / "x.yaml")
    r = recalibrate(cash.response, sales=Observation(0.05, 0.01))
    save_assumptions(con, cash.programme, cash.response, "programme file cash-voucher.yaml")
    save_assumptions(con, cash.programme, r, "pilot cash-vs-gift v1")
    version, path = export_assumptions(con, cash, tmp_path / "latest.yaml")
    assert version == 2
    assert load_programme(path).response == r.posterior
    first = path.read_text().splitlines()[0]
    assert "version 2" in first
    assert "pilot cash-vs-gift v1" in first
    version, path = export_assumptions(con, cash, tmp_path / "v1.yaml", version=1)
    assert version == 1
    assert load_programme(path) == cash


# ----------------------------------------------------------------------------- estimates


def test_observation_from_a_log_scale_comparison():
    comparison = {
        "arm": "cash",
        "baseline": "control",
        "metric": "sales",
        "status": "ok",
        "alpha": 0.05,
        "scale": "log",
        "log_estimate": 0.04,
        "log_ci_low": 0.0,
        "log_ci_high": 0.08,
        "se": 0.019,
        "relative": math.expm1(0.04),
        "rel_ci_low": 0.0,
        "rel_ci_high": math.expm1(0.08),
    }
    assert observation_from_comparison(comparison) == Observation(0.04, 0.019)
    without_se = {**comparison, "se": None}
    obs = observation_from_comparison(without_se)
    assert obs.estimate == 0.04
    assert obs.se == pytest.approx(0.04 / 1.959963984540054)
    # the total-sales ratio is on the log scale too: its own se, not its interval's width
    assert observation_from_comparison({**comparison, "scale": "total"}) == Observation(0.04, 0.019)
    level = {k: v for k, v in comparison.items() if not k.startswith("log") and k != "scale"}
    obs = observation_from_comparison(level)
    assert obs.estimate == pytest.approx(0.04)
    assert obs.se == pytest.approx(0.04 / 1.959963984540054)


def test_observation_from_a_comparison_object_and_failures():
    from loyalty_pilot.experiments.results import Comparison

    comparison = Comparison(
        arm="cash",
        baseline="control",
        metric="sales",
        method="did",
        estimate=10.0,
        ci_low=0.0,
        ci_high=20.0,
        relative=0.05,
        rel_ci_low=0.0,
        rel_ci_high=0.1,
        p_value=0.05,
        n_units=8,
    )
    obs = observation_from_comparison(comparison)
    assert obs.estimate == pytest.approx(math.log(1.05))
    failed = {"arm": "gift", "status": "one_unit_per_arm"}
    with pytest.raises(UserError, match=r"gift vs .* no estimate"):
        observation_from_comparison(failed)
    with pytest.raises(UserError, match="no relative uplift"):
        observation_from_comparison({"status": "ok", "relative": None})
