"""Registry: hashes, immutability, versioning, the CSV export and the two-process race."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.pilots import registry
from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.registry import (
    FrozenAssignment,
    design_hash,
    export_csv,
    frame_fingerprint,
    freeze,
    get,
    history,
    latest,
    list_pilots,
)
from loyalty_pilot.pilots.workspace import LOCK_TIMEOUT_ENV, open_workspace

PILOT = "spring-cash-vs-gift"


def units_frame(n: int = 8, *, flip: int | None = None) -> pd.DataFrame:
    arms = ["cash" if i % 2 else "control" for i in range(n)]
    if flip is not None:
        arms[flip] = "control" if arms[flip] == "cash" else "cash"
    return pd.DataFrame(
        {
            "unit": [f"S{i:03d}" for i in range(n)],
            "arm": arms,
            "block": [f"north-{i // 4}" for i in range(n)],
        }
    )


def inputs(**changes) -> dict:
    base = {
        "pilot": PILOT,
        "design_hash": design_hash({"design": "stratified", "arms": ["control", "cash"]}),
        "data_fingerprint": "f" * 64,
        "seed": 7,
        "method": "stratified",
        "unit_kind": "store",
        "units": units_frame(),
        "spec": {"name": PILOT, "start": date(2026, 3, 30), "arms": ("control", "cash")},
    }
    base.update(changes)
    return base


@pytest.fixture
def con(tmp_path):
    connection = open_workspace(tmp_path / "ws").connect()
    yield connection
    connection.close()


def table(con, name: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()


# --------------------------------------------------------------------------- hashes


def test_design_hash_is_sha256_of_canonical_json():
    assert design_hash({"b": 1, "a": [1, 2]}) == hashlib.sha256(b'{"a":[1,2],"b":1}').hexdigest()
    assert design_hash({"a": (1, 2), "b": 1}) == design_hash({"b": 1, "a": [1, 2]})
    assert design_hash({"start": date(2026, 3, 30)}) == design_hash({"start": "2026-03-30"})
    assert design_hash({"seed": np.int64(3)}) == design_hash({"seed": 3})
    assert design_hash({"a": 1}) != design_hash({"a": 2})
    with pytest.raises(ValueError, match="NaN"):
        design_hash({"x": float("nan")})


def test_frame_fingerprint_ignores_order_and_float_noise():
    frame = pd.DataFrame(
        {
            "store": ["S1", "S1", "S2", "S2"],
            "week": pd.to_datetime(["2026-01-05", "2026-01-12"] * 2),
            "sales": [1234.56, 1500.0, 0.1 + 0.2, 99.99],
            "baskets": [10, 12, 3, 4],
        }
    )
    base = frame_fingerprint(frame)
    shuffled = frame.sample(frac=1, random_state=3)[["sales", "week", "baskets", "store"]]
    assert frame_fingerprint(shuffled) == base  # row positions (an unnamed int index) ignored
    assert frame_fingerprint(shuffled.reset_index(drop=True)) == base
    # an index that carries data (unit ids) counts, whatever the row order
    by_store = frame.set_index("store")
    assert frame_fingerprint(by_store) == frame_fingerprint(by_store.iloc[::-1])
    assert frame_fingerprint(by_store) != frame_fingerprint(by_store.reset_index(drop=True))
    relabeled = by_store.rename(index={"S1": "S2", "S2": "S1"})
    assert frame_fingerprint(relabeled) != frame_fingerprint(by_store)
    assert frame_fingerprint(by_store, index=False) == frame_fingerprint(relabeled, index=False)
    noisy = frame.assign(sales=frame["sales"] * (1 + 3e-15))
    assert frame_fingerprint(noisy) == base
    as_floats = frame.assign(baskets=frame["baskets"].astype(float))  # 10 and 10.0 agree
    assert frame_fingerprint(as_floats) == base
    as_dates = frame.assign(week=frame["week"].dt.date.astype(object))
    assert frame_fingerprint(as_dates) == base

    assert frame_fingerprint(frame.assign(sales=frame["sales"] + [0, 0, 0, 0.01])) != base
    assert frame_fingerprint(frame.iloc[:3]) != base
    assert frame_fingerprint(frame.rename(columns={"sales": "revenue"})) != base
    assert frame_fingerprint(frame.assign(store=["1", "1", "2", "2"])) != frame_fingerprint(
        frame.assign(store=[1, 1, 2, 2])
    )
    missing = pd.DataFrame({"x": [1.5, None], "y": ["a", None]})
    assert frame_fingerprint(missing) == frame_fingerprint(
        pd.DataFrame({"x": [1.5, float("nan")], "y": ["a", np.nan]})
    )


def test_frame_fingerprint_compares_values_across_dtypes():
    base = frame_fingerprint(
        pd.DataFrame({"n": pd.array([1, None, 300], dtype="Int64"), "t": ["x", "y", "z"]})
    )
    for n in ([1.0, None, 300.0], [Decimal("1.0"), None, 300], np.array([1, np.nan, 3e2])):
        assert frame_fingerprint(pd.DataFrame({"t": ["x", "y", "z"], "n": n})) == base
    stamps = pd.Series(pd.to_datetime(["2026-01-05 09:30", "2026-01-05 23:00"]))
    paris = stamps.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    assert frame_fingerprint(pd.DataFrame({"t": paris})) == frame_fingerprint(
        pd.DataFrame({"t": stamps})
    )
    # a cent on a million, a second on a timestamp: real changes are seen
    sales = pd.DataFrame({"sales": [1_234_567.89]})
    assert frame_fingerprint(sales) != frame_fingerprint(sales + 0.01)
    assert frame_fingerprint(pd.DataFrame({"t": stamps + pd.Timedelta(seconds=1)})) != (
        frame_fingerprint(pd.DataFrame({"t": stamps}))
    )
    assert frame_fingerprint(pd.DataFrame({"a": []})) != frame_fingerprint(pd.DataFrame())


# --------------------------------------------------------------------------- freezing


def test_freeze_creates_then_confirms(con):
    first = freeze(con, **inputs())
    assert first.status == "created"
    frozen = first.frozen
    assert (frozen.pilot, frozen.version, frozen.seed, frozen.unit_kind) == (PILOT, 1, 7, "store")
    assert frozen.created_at.tzinfo is UTC
    assert list(frozen.units.columns) == ["unit", "arm", "block"]
    assert frozen.spec == {"name": PILOT, "start": "2026-03-30", "arms": ["control", "cash"]}
    assert frozen.arm_of()["S001"] == "cash"
    before = (table(con, "pilot_versions"), table(con, "pilot_units"))

    # same inputs, units in another order and the --new-version flag: confirmed, nothing written
    shuffled = units_frame().sample(frac=1, random_state=1)
    for again in (freeze(con, **inputs(units=shuffled)), freeze(con, **inputs(), new_version=True)):
        assert again.status == "confirmed"
        assert again.frozen == frozen
        assert again.frozen.units.equals(frozen.units)
    assert (table(con, "pilot_versions"), table(con, "pilot_units")) == before

    stored = get(con, PILOT, 1)
    assert stored == frozen
    assert stored.units.equals(frozen.units)
    assert stored.spec == frozen.spec
    assert latest(con, PILOT) == frozen
    assert latest(con, "other") is None
    assert list_pilots(con) == [PILOT]
    json.dumps(frozen.to_dict())  # JSON-ready
    assert frozen.to_dict()["units"][0] == {"unit": "S000", "arm": "control", "block": "north-0"}


def test_different_inputs_refused_naming_what_differs(con):
    freeze(con, **inputs())
    before = (table(con, "pilot_versions"), table(con, "pilot_units"))

    with pytest.raises(UserError) as info:
        freeze(con, **inputs(design_hash="d" * 64))
    message = str(info.value)
    assert message.startswith(f"pilot {PILOT} is frozen (version 1, 20")
    assert "design hash differs (the design or its arms changed)" in message
    assert message.endswith("re-run with --new-version to freeze version 2")
    assert "\n" not in message

    with pytest.raises(UserError, match=r"seed differs \(frozen 7, now 8\)"):
        freeze(con, **inputs(seed=8))
    with pytest.raises(UserError, match="data fingerprint differs"):
        freeze(con, **inputs(data_fingerprint="0" * 64))
    with pytest.raises(UserError, match=r"units or arms differ \(1 unit changed arm\)"):
        freeze(con, **inputs(units=units_frame(flip=2)))
    with pytest.raises(UserError, match=r"\(1 unit added\)"):
        freeze(con, **inputs(units=units_frame(9)))
    with pytest.raises(UserError, match=r"seed differs .*; method differs"):
        freeze(con, **inputs(seed=1, method="complete"))
    # a refusal writes nothing
    assert (table(con, "pilot_versions"), table(con, "pilot_units")) == before


def test_new_version_keeps_every_version(con):
    v1 = freeze(con, **inputs()).frozen
    rows_v1 = (table(con, "pilot_versions"), table(con, "pilot_units"))
    out = freeze(con, **inputs(seed=8, units=units_frame(flip=0)), new_version=True)
    assert (out.status, out.frozen.version) == ("new_version", 2)
    # the same new inputs again: confirmed against version 2
    assert freeze(con, **inputs(seed=8, units=units_frame(flip=0))).status == "confirmed"
    # back to the first inputs: refused (they match version 1), or version 3 with the flag
    with pytest.raises(UserError, match=r"\(they match version 1\); re-run .* version 3"):
        freeze(con, **inputs())
    v3 = freeze(con, **inputs(), new_version=True)
    assert (v3.status, v3.frozen.version) == ("new_version", 3)

    rows = history(con, PILOT)
    assert [r["version"] for r in rows] == [1, 2, 3]
    assert [r["seed"] for r in rows] == [7, 8, 7]
    assert rows[0]["arms"] == {"cash": 4, "control": 4}
    assert rows[1]["arms"] == {"cash": 5, "control": 3}
    assert rows[0]["n_units"] == 8
    assert rows[0]["created_at"].endswith("Z")
    json.dumps(rows)
    # immutability: versions 1 and 2 are exactly as first written
    assert get(con, PILOT, 1) == v1
    assert get(con, PILOT, 1).units.equals(v1.units)
    assert get(con, PILOT, 2).arm_of()["S000"] == "cash"
    assert get(con, PILOT, 3).units.equals(v1.units)
    versions, units = table(con, "pilot_versions"), table(con, "pilot_units")
    assert [r for r in versions if r[1] == 1] == rows_v1[0]
    assert [r for r in units if r[1] == 1] == rows_v1[1]
    assert history(con, "never") == []


def test_get_unknown_versions_and_tampering(con):
    with pytest.raises(UserError, match=r"pilot x was never frozen \(none is frozen yet\)"):
        get(con, "x", 1)
    freeze(con, **inputs())
    with pytest.raises(UserError, match=rf"pilot {PILOT} has no version 4 \(versions: 1\)"):
        get(con, PILOT, 4)
    with pytest.raises(UserError, match=rf"frozen pilots: {PILOT}"):
        get(con, "x", 1)
    # a version changed behind the registry's back is detected, not silently used
    con.execute("UPDATE pilot_units SET arm = 'cash' WHERE unit = 'S000'")
    with pytest.raises(UserError, match="do not match the hash frozen with them"):
        get(con, PILOT, 1)
    # and a version that has units cannot be deleted
    with pytest.raises(duckdb.ConstraintException):
        con.execute("DELETE FROM pilot_versions")


def test_no_code_path_updates_or_deletes_the_registry():
    source = Path(registry.__file__).read_text(encoding="utf-8")
    assert not re.search(r"\b(UPDATE|DELETE|DROP|TRUNCATE|ALTER|REPLACE)\b", source)
    assert source.count("INSERT INTO") == 2  # pilot_versions, pilot_units


class FailingUnitsInsert:
    """A connection whose insert of the units fails: the version row must not stay."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args):
        if sql.startswith("INSERT INTO pilot_units"):
            raise duckdb.IOException("disk full")
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_freeze_is_one_transaction(con):
    with pytest.raises(duckdb.IOException):
        freeze(FailingUnitsInsert(con), **inputs())
    assert table(con, "pilot_versions") == []
    assert table(con, "pilot_units") == []
    assert freeze(con, **inputs()).status == "created"


class CommitLate:
    """A connection that lets ``rival`` freeze the pilot just before its own first COMMIT."""

    def __init__(self, con, rival):
        self._con, self._rival = con, rival

    def execute(self, sql, *args):
        if sql == "COMMIT" and self._rival:
            self._rival.pop()()
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("same", [True, False])
def test_concurrent_connections_one_version(con, same):
    other = con.cursor()
    rival = [lambda: freeze(other, **inputs())]
    mine = inputs() if same else inputs(seed=99)
    if same:
        assert freeze(CommitLate(con.cursor(), rival), **mine).status == "confirmed"
    else:
        with pytest.raises(UserError, match=r"is frozen \(version 1.*seed differs"):
            freeze(CommitLate(con.cursor(), rival), **mine)
    assert con.execute("SELECT pilot, version, seed FROM pilot_versions").fetchall() == [
        (PILOT, 1, 7)
    ]


def test_bad_units_and_inputs(con):
    with pytest.raises(UserError, match="lists units more than once: 'S1'"):
        freeze(con, **inputs(units=pd.DataFrame({"unit": ["S1", "S1"], "arm": ["a", "b"]})))
    with pytest.raises(UserError, match=r"1 row\(s\) with an empty arm"):
        freeze(con, **inputs(units=pd.DataFrame({"unit": ["S1", "S2"], "arm": ["a", None]})))
    with pytest.raises(UserError, match="no units"):
        freeze(con, **inputs(units=pd.DataFrame({"unit": [], "arm": []})))
    with pytest.raises(ValueError, match="unexpected stratum"):
        freeze(con, **inputs(units=units_frame().assign(stratum="x")))
    with pytest.raises(ValueError, match="unit_kind"):
        freeze(con, **inputs(unit_kind="shelf"))
    with pytest.raises(UserError, match="no name"):
        freeze(con, **inputs(pilot=" "))
    assert table(con, "pilot_versions") == []
    # integer unit ids and no block: stored as text, None
    out = freeze(con, **inputs(units=pd.DataFrame({"unit": [3, 1, 2], "arm": ["a", "b", "a"]})))
    assert out.frozen.units.to_dict(orient="list") == {
        "unit": ["1", "2", "3"],
        "arm": ["b", "a", "a"],
        "block": [None, None, None],
    }
    assert get(con, PILOT, 1).units.equals(out.frozen.units)


def test_read_only_workspace_without_registry_tables(tmp_path):
    ws = open_workspace(tmp_path / "old")
    ws.path.mkdir()
    duckdb.connect(str(ws.db_path)).close()  # a database made before the registry existed
    con = ws.connect(read_only=True)
    try:
        assert list_pilots(con) == []
        assert latest(con, PILOT) is None
        assert history(con, PILOT) == []
    finally:
        con.close()


# --------------------------------------------------------------------------- export


EVIL = '=HYPERLINK("http://evil.example","click")'  # a store name a spreadsheet would run


def test_export_csv_for_store_operations(con, tmp_path):
    units = pd.DataFrame(
        {
            "unit": [EVIL, "+S2", "-S3", "@S4", "S5"],
            "arm": ["cash", "control", "cash", "control", "\tgift"],
            "block": [None, "north", "north", "south", "south"],
            "region": ["north", "north", "north", "south", "south"],
        }
    )
    frozen = freeze(con, **inputs(units=units)).frozen
    out = tmp_path / "assignment.csv"
    export_csv(frozen, out)
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["pilot", "version", "unit", "arm", "block", "region"]
    by_unit = {r["unit"]: r for r in rows}
    assert by_unit["'+S2"]["arm"] == "control"
    assert set(by_unit) == {
        "'+S2",
        "'-S3",
        "'" + EVIL,
        "'@S4",
        "S5",
    }
    assert by_unit["S5"]["arm"] == "'\tgift"
    assert by_unit["'+S2"]["block"] == "north"
    assert by_unit["'" + EVIL]["block"] == ""
    assert all(r["pilot"] == PILOT and r["version"] == "1" for r in rows)
    assert not any(c[:1] in "=+-@\t\r" and c for r in rows for c in r.values())
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    with pytest.raises(UserError, match="does not exist"):
        export_csv(frozen, tmp_path / "missing" / "a.csv")


def test_export_csv_keeps_the_previous_file_when_writing_fails(con, tmp_path, monkeypatch):
    frozen = freeze(con, **inputs()).frozen
    out = tmp_path / "assignment.csv"
    out.write_text("previous\n", encoding="utf-8")
    monkeypatch.setattr(registry, "_safe_cell", lambda value: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        export_csv(frozen, out)
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assignment.csv", "ws"]


def test_frozen_assignment_is_immutable(con):
    frozen = freeze(con, **inputs()).frozen
    assert isinstance(frozen, FrozenAssignment)
    with pytest.raises(AttributeError):
        frozen.version = 2  # type: ignore[misc]
    assert frozen.to_dict()["created_at"] == frozen.created_at.isoformat().replace("+00:00", "Z")
    assert frozen.created_at <= datetime.now(UTC)


# --------------------------------------------------------------------------- processes

# Run by the two-process tests with `python -c`: freeze a pilot through Workspace.connect,
# the way the CLI does, and report like the CLI (one "Error:" line, exit 2).
RACER = r"""
import pathlib, sys, time
import pandas as pd
from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.registry import freeze
from loyalty_pilot.pilots.workspace import open_workspace

workspace, variant, ready, go = sys.argv[1:5]
units = pd.DataFrame({"unit": [f"S{i:02d}" for i in range(12)],
                      "arm": ["cash" if i % 2 else "control" for i in range(12)]})
pathlib.Path(ready).touch()
deadline = time.monotonic() + 30
while go != "-" and not pathlib.Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.001)
try:
    con = open_workspace(workspace).connect()
    try:
        outcome = freeze(con, pilot="race", design_hash="design-" + variant,
                         data_fingerprint="data", seed=1, method="complete",
                         unit_kind="store", units=units, spec={"variant": variant})
    finally:
        con.close()
except UserError as exc:
    print(f"Error: {exc}", file=sys.stderr)
    sys.exit(2)
print(outcome.status, outcome.frozen.version, variant)
"""


def racer(workspace: Path, variant: str, ready: Path, go: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RACER, str(workspace), variant, str(ready), go],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    return process.returncode, out.strip(), err.strip()


def frozen_rows(workspace: Path) -> list[tuple]:
    con = duckdb.connect(str(workspace / "workspace.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT v.pilot, v.version, v.design_hash, count(u.unit) FROM pilot_versions v "
            "JOIN pilot_units u USING (pilot, version) GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("variants", [("a", "a"), ("a", "b")], ids=["same", "different"])
def test_two_processes_race_one_frozen_version(tmp_path, variants):
    workspace = tmp_path / "ws"  # no database yet: the two processes also race to create it
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    processes = [racer(workspace, v, r, str(go)) for v, r in zip(variants, ready, strict=True)]
    deadline = time.monotonic() + 30
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both are imported and waiting: release them together
    results = [finish(p) for p in processes]

    winners = [r for r in results if r[1].startswith("created 1")]
    assert len(winners) == 1, results
    winner_variant = winners[0][1].split()[-1]
    assert frozen_rows(workspace) == [("race", 1, f"design-{winner_variant}", 12)]
    (loser,) = (r for r in results if r is not winners[0])
    if variants[0] == variants[1]:
        assert loser[:2] == (0, "confirmed 1 a"), results
    else:
        code, out, err = loser
        assert (code, out) == (2, ""), results
        assert len(err.splitlines()) == 1
        assert err.startswith("Error: pilot race is frozen (version 1, ")
        assert "design hash differs" in err
        assert "--new-version to freeze version 2" in err


HOLDER = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()  # hold the database until told to let go
con.close()
"""


def test_locked_workspace_waits_then_gives_a_clean_error(tmp_path):
    workspace = tmp_path / "ws"
    open_workspace(workspace).connect().close()
    db = str(workspace / "workspace.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        # waits up to 20 s: gets in once the holder has closed the database
        patient = racer(workspace, "a", tmp_path / "ready", "-", **{LOCK_TIMEOUT_ENV: "20"})
        # waits 0.2 s, then one clean line naming the process that holds the lock
        impatient = racer(workspace, "a", tmp_path / "r2", "-", **{LOCK_TIMEOUT_ENV: "0.2"})
        code, out, err = finish(impatient)
        assert (code, out) == (2, "")
        assert err == (
            f"Error: workspace {workspace} is in use by another process (pid {holder.pid}); "
            f"waited 0.2 s: try again when it has finished (or set {LOCK_TIMEOUT_ENV} to "
            "wait longer)"
        )
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the patient one is now waiting for the lock
        assert patient.poll() is None
    finally:
        holder.communicate("\n", timeout=30)
    assert finish(patient) == (0, "created 1 a", "")
    assert frozen_rows(workspace) == [("race", 1, "design-a", 12)]


def test_lock_timeout_must_be_a_number(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(UserError, match=f"{LOCK_TIMEOUT_ENV}='soon': not a number of seconds"):
        open_workspace(tmp_path / "ws").connect()
