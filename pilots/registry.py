"""The registry: frozen pilot assignments in the workspace database, immutable and versioned.

``loyalty-pilot assign PILOT.yaml`` freezes a pilot's assignment (which unit gets which arm)
with everything needed to reproduce and audit it: the design hash, the fingerprint of the
data the design used, the seed, the method, the units and arms, and the creation time.

Rules
-----
- **Frozen means immutable.** Rows of ``pilot_versions`` and ``pilot_units`` are inserted
  once and never updated or deleted by any code path (a foreign key also stops the deletion
  of a version that has units). :func:`get` checks the stored units against the hash
  written with them, so a version changed behind the registry's back is reported.
- **Same inputs confirm, different inputs refuse.** :func:`freeze` compares the inputs with
  the pilot's latest version: identical (design hash, data fingerprint, seed, method, unit
  kind, units with their arms, blocks and regions) -> ``"confirmed"``, nothing written;
  different -> :class:`UserError` naming what differs, unless ``new_version=True``, which
  writes version latest + 1. Every version stays in :func:`history`. The spec snapshot is
  not compared: the design hash is the identity of the design.
- **One transaction.** Reading the latest version and writing the new one happen in one
  DuckDB transaction; the primary keys (pilot, version) and (pilot, version, unit) make a
  concurrent duplicate fail at commit. Two connections of one process racing on a pilot:
  the loser re-reads and confirms or refuses. Two *processes*: DuckDB lets one process
  open the file for writing; :meth:`Workspace.connect` makes the other wait for the lock
  (``LOYALTY_PILOT_LOCK_TIMEOUT`` seconds, default 10), after which it sees the winner's
  version and confirms or refuses, or it gives up with a one-line "in use" error.

Hashes
------
:func:`design_hash` is the sha256 of canonical JSON (sorted keys, no whitespace, dates and
times ISO 8601, tuples and sets as lists). :func:`frame_fingerprint` is the sha256 of an
order-independent serialization of a data frame; see its docstring for the rounding of
floats.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.transaction import retrying

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "UNIT_KINDS",
    "FreezeOutcome",
    "FrozenAssignment",
    "canonical_json",
    "design_hash",
    "export_csv",
    "frame_fingerprint",
    "freeze",
    "get",
    "history",
    "latest",
    "list_pilots",
]

UNIT_KINDS = ("store", "region", "customer")
UNIT_COLUMNS = ("unit", "arm", "block", "region")  # region: optional, for store operations
FINGERPRINT_DIGITS = 10  # significant digits kept of a float in frame_fingerprint
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet formula triggers
_COMMIT_ATTEMPTS = 3


# --------------------------------------------------------------------------- hashes


def _jsonable(value: Any) -> Any:
    """``value`` as JSON-native types, deterministically (see :func:`canonical_json`)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"canonical JSON has no {number!r} (NaN or infinity)")
        return number
    if isinstance(value, pd.Timestamp | datetime):
        if value is pd.NaT:
            return None
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):  # pydantic models
        return _jsonable(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    raise TypeError(f"cannot write {type(value).__name__} as canonical JSON: {value!r}")


def canonical_json(payload: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 text, dates and times ISO 8601.

    Mapping keys become strings; tuples and sets become lists (sets sorted); numpy
    scalars their Python values; pydantic models and dataclasses their fields. NaN and
    infinities are refused (``ValueError``): they have no JSON spelling.
    """
    return json.dumps(
        _jsonable(payload),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def design_hash(payload: Mapping) -> str:
    """sha256 (hex) of the canonical JSON of ``payload`` (see :func:`canonical_json`)."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _normalized(mantissa: np.ndarray, exponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, e) with m * 10**e unchanged and m not a multiple of 10 (0 stays 0e0)."""
    for _ in range(20):
        step = (mantissa % 10 == 0) & (mantissa != 0)
        if not step.any():
            break
        mantissa = np.where(step, mantissa // 10, mantissa)
        exponent = np.where(step, exponent + 1, exponent)
    return mantissa, exponent


def _number_strings(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    mantissa, exponent = _normalized(mantissa.astype(np.int64), exponent.astype(np.int64))
    text = "n:" + pd.Series(mantissa).astype(str) + "e" + pd.Series(exponent).astype(str)
    return text.to_numpy(dtype=object)


def _float_tokens(values: np.ndarray, digits: int) -> np.ndarray:
    """Tokens of float64 values rounded to ``digits`` significant digits; None for NaN."""
    out = np.full(values.shape, None, dtype=object)
    out[np.isposinf(values)] = "n:inf"
    out[np.isneginf(values)] = "n:-inf"
    out[values == 0] = "n:0e0"  # also -0.0
    pick = np.isfinite(values) & (values != 0)
    x = values[pick]
    if not x.size:
        return out
    with np.errstate(all="ignore"):
        shift = digits - 1 - np.floor(np.log10(np.abs(x))).astype(np.int64)
        for _ in range(2):  # log10 can be one off next to a power of ten
            half = shift // 2  # two factors: 10**shift alone overflows for tiny x
            scaled = np.abs(x) * np.power(10.0, half) * np.power(10.0, shift - half)
            shift = np.where(scaled >= 10.0**digits, shift - 1, shift)
            shift = np.where(scaled < 10.0 ** (digits - 1), shift + 1, shift)
        half = shift // 2
        mantissa = np.rint(np.abs(x) * np.power(10.0, half) * np.power(10.0, shift - half))
    carry = mantissa >= 10.0**digits  # 9.99...95 rounds up to 10**digits
    mantissa = np.where(carry, mantissa / 10, mantissa)
    shift = np.where(carry, shift - 1, shift)
    out[pick] = _number_strings(np.sign(x) * mantissa, -shift)
    return out


def _int_tokens(values: np.ndarray) -> np.ndarray:
    return _number_strings(values.astype(np.int64), np.zeros(len(values), dtype=np.int64))


def _int_token(value: int) -> str:
    exponent = 0
    while value and value % 10 == 0:
        value //= 10
        exponent += 1
    return f"n:{value}e{exponent}"


def _time_tokens(values: np.ndarray) -> np.ndarray:
    """Tokens of naive UTC datetime64[us] values: d:DATE at midnight, else t:ISO; None for NaT."""
    out = np.full(values.shape, None, dtype=object)
    known = ~np.isnat(values)
    moments = values[known]
    days = moments.astype("datetime64[D]")
    midnight = moments == days
    tokens = np.empty(moments.shape, dtype=object)
    tokens[midnight] = np.char.add("d:", np.datetime_as_string(days[midnight]))
    tokens[~midnight] = np.char.add("t:", np.datetime_as_string(moments[~midnight], unit="us"))
    out[known] = tokens
    return out


def _as_utc_moment(value: Any) -> np.datetime64:
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[us]")
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return np.datetime64(value.replace(tzinfo=None), "us")
    return np.datetime64(value, "D").astype("datetime64[us]")  # a date


def _object_tokens(values: list[Any], digits: int) -> np.ndarray:
    """Tokens of a column of Python objects, each cell by its own type."""
    out = np.full(len(values), None, dtype=object)
    floats: list[int] = []
    times: list[int] = []
    for i, value in enumerate(values):
        if value is None or value is pd.NA or value is pd.NaT:
            continue
        if isinstance(value, bool | np.bool_):
            out[i] = "b:true" if value else "b:false"
        elif isinstance(value, int | np.integer):
            out[i] = _int_token(int(value))
        elif isinstance(value, float | np.floating | Decimal):
            floats.append(i)
        elif isinstance(value, str):
            out[i] = "s:" + value
        elif isinstance(value, datetime | date | np.datetime64):
            if not (isinstance(value, np.datetime64) and np.isnat(value)):
                times.append(i)
        elif isinstance(value, bytes):
            out[i] = "x:" + value.hex()
        else:
            out[i] = "s:" + str(value)
    if floats:
        numbers = np.array([float(values[i]) for i in floats], dtype=float)
        out[floats] = _float_tokens(numbers, digits)
    if times:
        moments = np.array([_as_utc_moment(values[i]) for i in times], dtype="datetime64[us]")
        out[times] = _time_tokens(moments)
    return out


def _column_tokens(series: pd.Series, digits: int) -> np.ndarray:
    """One token per cell (None when missing), the same for equal values of any dtype."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) and not series.hasnans:
        return np.where(series.to_numpy(dtype=bool), "b:true", "b:false").astype(object)
    if pd.api.types.is_signed_integer_dtype(dtype) and not series.hasnans:
        return _int_tokens(series.to_numpy(dtype=np.int64))
    if pd.api.types.is_float_dtype(dtype):
        return _float_tokens(series.to_numpy(dtype=float, na_value=np.nan), digits)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return _time_tokens(series.to_numpy(dtype="datetime64[us]"))
    return _object_tokens(series.astype(object).tolist(), digits)


def _encoded(tokens: np.ndarray) -> pd.Series:
    """Each token as LENGTH:TOKEN, a missing value as ~: rows of them read back unambiguously."""
    cells = pd.Series(tokens, dtype=object)
    present = cells.notna().to_numpy()
    out = pd.Series(["~"] * len(cells), dtype=object)
    if present.any():
        text = cells[present].astype(str)
        out[present] = (text.str.len().astype(str) + ":" + text).to_numpy(dtype=object)
    return out


def _index_counts(index: pd.Index) -> bool:
    """Whether an index carries data: named, or labels that are not plain integers."""
    if any(name is not None for name in index.names):
        return True
    return not all(pd.api.types.is_integer_dtype(level.dtype) for level in _levels(index))


def _levels(index: pd.Index) -> list[pd.Index]:
    if isinstance(index, pd.MultiIndex):
        return [index.get_level_values(i) for i in range(index.nlevels)]
    return [index]


def frame_fingerprint(
    frame: pd.DataFrame, *, digits: int = FINGERPRINT_DIGITS, index: bool | None = None
) -> str:
    """sha256 (hex) of a data frame's content, whatever the order of its rows and columns.

    Serialization: columns sorted by name; each cell becomes a typed token (``s:`` text,
    ``n:`` number as mantissa and power of ten, ``b:`` boolean, ``d:`` / ``t:`` date /
    date-time in ISO 8601, ``~`` for a missing value: None, NaN, NaT, NA) written as
    LENGTH:TOKEN; a row is its cells in column order; rows are sorted; the hash covers the
    column names, the number of rows, then the sorted rows.

    The index: ``index=None`` (default) includes it, as columns named ``index:NAME``, when
    it carries data (a named level, or labels that are not integers: unit ids, weeks), and
    leaves out an unnamed integer index (row positions, which shuffling or filtering
    renumbers). ``index=True`` / ``False`` forces it in or out.

    Numbers: integers are exact. Floats are rounded to ``digits`` significant digits (10 by
    default, i.e. a relative 5e-11), so the noise of float arithmetic (a sum accumulated in
    another order, another thread count) does not change the fingerprint, while any real
    change of the data (a basket added or removed, a cent changed on a store-week's sales)
    does. Numbers are compared by value: 3, 3.0 and Decimal("3") agree, so a column read
    as integers from one file and floats from another gives the same fingerprint (up to
    10 significant digits). Text is exact (``"001"`` is not ``1``). Dates agree with
    midnight timestamps; time-zone-aware times are compared in UTC, to the microsecond.

    Limit: rounding puts a boundary between two neighbouring rounded values; a float lying
    within its noise of such a boundary (odds about 1 in 10^5 per value for last-bit
    noise) can still flip the fingerprint. Build the panel with a deterministic query when
    the fingerprint has to be stable across machines.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame_fingerprint takes a pandas DataFrame, not {type(frame).__name__}")
    if not 1 <= digits <= 15:
        raise ValueError(f"digits={digits}: between 1 and 15 (a float64 holds 15 to 17)")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"frame_fingerprint: duplicate column names in {names}")
    series = [frame.iloc[:, i].reset_index(drop=True) for i in range(len(names))]
    if index if index is not None else _index_counts(frame.index):
        for k, level in enumerate(_levels(frame.index)):
            name = frame.index.names[k]
            names.append(f"index:{name if name is not None else k}")
            series.append(pd.Series(level, dtype=level.dtype).reset_index(drop=True))
    order = sorted(range(len(names)), key=lambda i: names[i])
    rows = pd.Series([""] * len(frame), dtype=object)
    for i in order:
        rows = rows + _encoded(_column_tokens(series[i], digits))
    digest = hashlib.sha256()
    digest.update(json.dumps([names[i] for i in order], ensure_ascii=False).encode("utf-8"))
    digest.update(f"\n{len(frame)}\n".encode())
    digest.update("\n".join(sorted(rows.tolist())).encode("utf-8"))
    return digest.hexdigest()


# --------------------------------------------------------------------------- frozen assignments


@dataclass(frozen=True)
class FrozenAssignment:
    """One frozen version of a pilot's assignment, as stored in the registry.

    ``units`` has the columns unit, arm, block (text or None) and, when any unit has one,
    region; one row per unit, sorted by unit. ``created_at`` is in UTC. ``spec`` is the
    JSON-ready snapshot of the pilot spec and design stored with the version.
    """

    pilot: str
    version: int
    design_hash: str
    data_fingerprint: str
    seed: int
    method: str
    unit_kind: str
    created_at: datetime
    units: pd.DataFrame = field(compare=False, repr=False)
    spec: dict = field(compare=False, repr=False)

    @property
    def units_hash(self) -> str:
        """sha256 of the units, arms, blocks and regions (stored with the version)."""
        return _units_hash(self.units)

    @property
    def arms(self) -> dict[str, int]:
        """Number of units per arm, arms in order of name."""
        counts = self.units["arm"].value_counts()
        return {str(arm): int(counts[arm]) for arm in sorted(counts.index)}

    def arm_of(self) -> dict[str, str]:
        """unit -> arm."""
        return dict(zip(self.units["unit"], self.units["arm"], strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, the arm counts and the units as a list of records."""
        return {
            "pilot": self.pilot,
            "version": self.version,
            "design_hash": self.design_hash,
            "data_fingerprint": self.data_fingerprint,
            "seed": self.seed,
            "method": self.method,
            "unit_kind": self.unit_kind,
            "created_at": _iso(self.created_at),
            "n_units": len(self.units),
            "arms": self.arms,
            "spec": self.spec,
            "units": [
                {k: (None if _missing(v) else str(v)) for k, v in record.items()}
                for record in self.units.to_dict(orient="records")
            ],
        }


@dataclass(frozen=True)
class FreezeOutcome:
    """What :func:`freeze` did: ``"created"``, ``"confirmed"`` or ``"new_version"``."""

    status: str
    frozen: FrozenAssignment


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _text_or_none(value: Any) -> str | None:
    if _missing(value) or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _normalize_units(units: pd.DataFrame) -> pd.DataFrame:
    """unit, arm, block[, region] as text (block/region may be None), sorted by unit."""
    if not isinstance(units, pd.DataFrame):
        raise TypeError(f"units must be a pandas DataFrame, not {type(units).__name__}")
    columns = [str(c) for c in units.columns]
    missing = [c for c in ("unit", "arm") if c not in columns]
    extra = [c for c in columns if c not in UNIT_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"units: columns {columns}; expected unit, arm and optionally block, region"
            + (f" (missing {', '.join(missing)})" if missing else "")
            + (f" (unexpected {', '.join(extra)})" if extra else "")
        )
    if units.empty:
        raise UserError("the assignment has no units: nothing to freeze")
    out: dict[str, list[str | None]] = {}
    for name in UNIT_COLUMNS:
        values = units[name].tolist() if name in units.columns else [None] * len(units)
        out[name] = [_text_or_none(v) for v in values]
    for name in ("unit", "arm"):
        blank = sum(v is None or not v.strip() for v in out[name])
        if blank:
            raise UserError(f"the assignment has {blank} row(s) with an empty {name}")
    for name in ("block", "region"):  # an empty block is no block
        out[name] = [v if v else None for v in out[name]]
    frame = pd.DataFrame(out, dtype=object)
    duplicated = frame.loc[frame["unit"].duplicated(), "unit"].unique().tolist()
    if duplicated:
        shown = ", ".join(repr(u) for u in sorted(duplicated)[:5])
        raise UserError(f"the assignment lists units more than once: {shown}")
    return _tidy(frame)


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by unit, drop an all-empty region column, object columns with None."""
    frame = frame.sort_values("unit", kind="stable", key=lambda s: s.map(str)).reset_index(
        drop=True
    )
    if "region" in frame.columns and frame["region"].map(_missing).all():
        frame = frame.drop(columns="region")
    frame = frame.astype(object)
    return frame.where(frame.notna(), None)


def _units_rows(units: pd.DataFrame) -> list[list[str | None]]:
    regions = units["region"] if "region" in units.columns else [None] * len(units)
    return [
        [u, a, _text_or_none(b), _text_or_none(r)]
        for u, a, b, r in zip(units["unit"], units["arm"], units["block"], regions, strict=True)
    ]


def _units_hash(units: pd.DataFrame) -> str:
    rows = sorted(_units_rows(units), key=lambda row: row[0])
    return hashlib.sha256(canonical_json(rows).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- reading


_VERSION_COLUMNS = (
    "pilot, version, design_hash, data_fingerprint, seed, method, unit_kind, created_at, spec, "
    "units_hash"
)


def _has_registry(con: duckdb.DuckDBPyConnection) -> bool:
    """False in a workspace opened read-only before the registry tables existed."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name IN ('pilot_versions', 'pilot_units') AND table_schema = 'main'"
    ).fetchone()
    return bool(found and found[0] == 2)


def _assignment(con: duckdb.DuckDBPyConnection, row: tuple) -> FrozenAssignment:
    pilot, version, d_hash, fingerprint, seed, method, kind, created, spec, units_hash = row
    records = con.execute(
        "SELECT unit, arm, block, region FROM pilot_units WHERE pilot = ? AND version = ? "
        "ORDER BY unit",
        [pilot, version],
    ).fetchall()
    units = _tidy(pd.DataFrame(records, columns=list(UNIT_COLUMNS), dtype=object))
    if _units_hash(units) != units_hash:
        raise UserError(
            f"pilot {pilot} version {version}: its stored units do not match the hash frozen "
            "with them (the registry was changed outside loyalty-pilot)"
        )
    return FrozenAssignment(
        pilot=pilot,
        version=int(version),
        design_hash=d_hash,
        data_fingerprint=fingerprint,
        seed=int(seed),
        method=method,
        unit_kind=kind,
        created_at=created.replace(tzinfo=UTC),
        units=units,
        spec=json.loads(spec),
    )


def latest(con: duckdb.DuckDBPyConnection, pilot: str) -> FrozenAssignment | None:
    """The pilot's highest version, or None when it was never frozen."""
    if not _has_registry(con):
        return None
    row = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM pilot_versions WHERE pilot = ? "
        "ORDER BY version DESC LIMIT 1",
        [pilot],
    ).fetchone()
    return None if row is None else _assignment(con, row)


def get(con: duckdb.DuckDBPyConnection, pilot: str, version: int) -> FrozenAssignment:
    """One version of a pilot; UserError naming the known versions when it does not exist."""
    row = None
    if _has_registry(con):
        row = con.execute(
            f"SELECT {_VERSION_COLUMNS} FROM pilot_versions WHERE pilot = ? AND version = ?",
            [pilot, int(version)],
        ).fetchone()
    if row is not None:
        return _assignment(con, row)
    known = [h["version"] for h in history(con, pilot)]
    if not known:
        pilots = list_pilots(con)
        listed = f" (frozen pilots: {', '.join(pilots)})" if pilots else " (none is frozen yet)"
        raise UserError(f"pilot {pilot} was never frozen{listed}")
    raise UserError(
        f"pilot {pilot} has no version {version} (versions: {', '.join(map(str, known))})"
    )


def history(con: duckdb.DuckDBPyConnection, pilot: str) -> list[dict[str, Any]]:
    """One JSON-ready row per version, oldest first; [] when the pilot was never frozen.

    Keys: version, created_at (ISO 8601, UTC), design_hash, data_fingerprint, seed, method,
    unit_kind, n_units, arms (units per arm).
    """
    if not _has_registry(con):
        return []
    versions = con.execute(
        "SELECT version, created_at, design_hash, data_fingerprint, seed, method, unit_kind, "
        "n_units FROM pilot_versions WHERE pilot = ? ORDER BY version",
        [pilot],
    ).fetchall()
    counts: dict[int, dict[str, int]] = {}
    for version, arm, n in con.execute(
        "SELECT version, arm, count(*) FROM pilot_units WHERE pilot = ? "
        "GROUP BY version, arm ORDER BY version, arm",
        [pilot],
    ).fetchall():
        counts.setdefault(int(version), {})[arm] = int(n)
    return [
        {
            "version": int(version),
            "created_at": _iso(created.replace(tzinfo=UTC)),
            "design_hash": d_hash,
            "data_fingerprint": fingerprint,
            "seed": int(seed),
            "method": method,
            "unit_kind": kind,
            "n_units": int(n_units),
            "arms": counts.get(int(version), {}),
        }
        for version, created, d_hash, fingerprint, seed, method, kind, n_units in versions
    ]


def list_pilots(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the frozen pilots, sorted."""
    if not _has_registry(con):
        return []
    rows = con.execute("SELECT DISTINCT pilot FROM pilot_versions ORDER BY pilot").fetchall()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- freezing


def _check_inputs(pilot: str, seed: int, method: str, unit_kind: str, **hashes: str) -> int:
    if not isinstance(pilot, str) or not pilot.strip():
        raise UserError("the pilot has no name: nothing to freeze it under")
    if pilot != pilot.strip() or any(ord(c) < 32 for c in pilot):
        raise UserError(f"pilot name {pilot!r}: no leading/trailing spaces or control characters")
    if unit_kind not in UNIT_KINDS:
        raise ValueError(f"unit_kind {unit_kind!r}: one of {', '.join(UNIT_KINDS)}")
    if not isinstance(method, str) or not method:
        raise ValueError("method: a non-empty name of the randomization method")
    for name, value in hashes.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}: a non-empty text (a hash)")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed {seed!r}: an integer")
    seed = int(seed)
    if not -(2**63) <= seed < 2**63:
        raise UserError(f"seed {seed}: out of range (a 64-bit integer)")
    return seed


def _unit_differences(frozen: pd.DataFrame, new: pd.DataFrame) -> str:
    old = {row[0]: row[1:] for row in _units_rows(frozen)}
    now = {row[0]: row[1:] for row in _units_rows(new)}
    added = len(now.keys() - old.keys())
    removed = len(old.keys() - now.keys())
    common = now.keys() & old.keys()
    arm = sum(old[u][0] != now[u][0] for u in common)
    block = sum(old[u][1] != now[u][1] for u in common)
    region = sum(old[u][2] != now[u][2] for u in common)
    parts = [
        f"{n} unit{'s' if n != 1 else ''} {what}"
        for n, what in (
            (added, "added"),
            (removed, "removed"),
            (arm, "changed arm"),
            (block, "changed block"),
            (region, "changed region"),
        )
        if n
    ]
    return "units or arms differ (" + ", ".join(parts) + ")"


def _differences(
    frozen: FrozenAssignment,
    *,
    design_hash: str,
    data_fingerprint: str,
    seed: int,
    method: str,
    unit_kind: str,
    units: pd.DataFrame,
    units_hash: str,
) -> list[str]:
    out = []
    if frozen.design_hash != design_hash:
        out.append("design hash differs (the design or its arms changed)")
    if frozen.data_fingerprint != data_fingerprint:
        out.append("data fingerprint differs (the data the design used changed)")
    if frozen.seed != seed:
        out.append(f"seed differs (frozen {frozen.seed}, now {seed})")
    if frozen.method != method:
        out.append(f"method differs (frozen {frozen.method}, now {method})")
    if frozen.unit_kind != unit_kind:
        out.append(f"unit kind differs (frozen {frozen.unit_kind}, now {unit_kind})")
    if frozen.units_hash != units_hash:
        out.append(_unit_differences(frozen.units, units))
    return out


def _matching_version(
    con: duckdb.DuckDBPyConnection, pilot: str, key: tuple, skip: int
) -> int | None:
    row = con.execute(
        "SELECT max(version) FROM pilot_versions WHERE pilot = ? AND version <> ? "
        "AND design_hash = ? AND data_fingerprint = ? AND seed = ? AND method = ? "
        "AND unit_kind = ? AND units_hash = ?",
        [pilot, skip, *key],
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def freeze(
    con: duckdb.DuckDBPyConnection,
    *,
    pilot: str,
    design_hash: str,
    data_fingerprint: str,
    seed: int,
    method: str,
    unit_kind: str,
    units: pd.DataFrame,
    spec: Mapping,
    new_version: bool = False,
) -> FreezeOutcome:
    """Freeze a pilot's assignment, or confirm it, in one transaction.

    - the pilot has no version yet -> version 1, status ``"created"``;
    - the latest version has the same design hash, data fingerprint, seed, method, unit
      kind and units (arms, blocks, regions) -> ``"confirmed"``, nothing written (also
      with ``new_version=True``: no duplicate version);
    - otherwise UserError naming what differs, or with ``new_version=True`` version
      latest + 1, status ``"new_version"``.

    ``units``: a frame with the columns unit and arm, optionally block and region (any
    other column is a ValueError). ``spec``: the pilot spec/design, stored as canonical
    JSON. Rows once written are never changed. A concurrent freeze of the same pilot on
    another connection that commits first makes this one re-read and decide again.
    """
    seed = _check_inputs(
        pilot, seed, method, unit_kind, design_hash=design_hash, data_fingerprint=data_fingerprint
    )
    frame = _normalize_units(units)
    units_hash = _units_hash(frame)
    spec_json = canonical_json(spec)
    key = (design_hash, data_fingerprint, seed, method, unit_kind, units_hash)

    return retrying(
        con,
        lambda: _freeze_in_transaction(con, pilot, key, frame, spec_json, new_version=new_version),
        lambda why: (
            f"pilot {pilot}: another process kept freezing it at the same time ({why}); "
            "re-run to confirm or compare"
        ),
        attempts=_COMMIT_ATTEMPTS,
    )


def _freeze_in_transaction(
    con: duckdb.DuckDBPyConnection,
    pilot: str,
    key: tuple,
    frame: pd.DataFrame,
    spec_json: str,
    *,
    new_version: bool,
) -> FreezeOutcome:
    d_hash, fingerprint, seed, method, unit_kind, units_hash = key
    current = latest(con, pilot)
    if current is not None:
        differences = _differences(
            current,
            design_hash=d_hash,
            data_fingerprint=fingerprint,
            seed=seed,
            method=method,
            unit_kind=unit_kind,
            units=frame,
            units_hash=units_hash,
        )
        if not differences:
            return FreezeOutcome("confirmed", current)
        if not new_version:
            earlier = _matching_version(con, pilot, key, current.version)
            also = f" (they match version {earlier})" if earlier else ""
            raise UserError(
                f"pilot {pilot} is frozen (version {current.version}, "
                f"{current.created_at:%Y-%m-%d %H:%M} UTC): {'; '.join(differences)}{also}; "
                f"re-run with --new-version to freeze version {current.version + 1}"
            )
    version = 1 if current is None else current.version + 1
    created = datetime.now(UTC).replace(microsecond=0)
    con.execute(
        "INSERT INTO pilot_versions (pilot, version, design_hash, data_fingerprint, seed, "
        "method, unit_kind, created_at, spec, units_hash, n_units) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            pilot,
            version,
            d_hash,
            fingerprint,
            seed,
            method,
            unit_kind,
            created.replace(tzinfo=None),
            spec_json,
            units_hash,
            len(frame),
        ],
    )
    rows = frame.reindex(columns=list(UNIT_COLUMNS)).astype(object)
    staged = pd.DataFrame(
        {
            "pilot": pd.Series([pilot] * len(rows), dtype=object),
            "version": np.full(len(rows), version, dtype=np.int32),
            **{c: rows[c].where(rows[c].notna(), None) for c in UNIT_COLUMNS},
        }
    )
    view = f"_registry_units_{os.getpid()}_{id(staged)}"
    con.register(view, staged)
    try:
        con.execute(
            "INSERT INTO pilot_units (pilot, version, unit, arm, block, region) "
            f"SELECT pilot, version, unit, arm, block, region FROM {view}"
        )
    finally:
        con.unregister(view)
    frozen = FrozenAssignment(
        pilot=pilot,
        version=version,
        design_hash=d_hash,
        data_fingerprint=fingerprint,
        seed=seed,
        method=method,
        unit_kind=unit_kind,
        created_at=created,
        units=frame,
        spec=json.loads(spec_json),
    )
    return FreezeOutcome("created" if version == 1 else "new_version", frozen)


# --------------------------------------------------------------------------- export


def _safe_cell(value: Any) -> str:
    """Text for a spreadsheet: a leading = + - @ tab or CR gets a ' (no formula, CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def export_csv(frozen: FrozenAssignment, path: Path) -> None:
    """Write the assignment for store operations: pilot, version, unit, arm, block[, region].

    UTF-8, one row per unit sorted by unit, an empty cell for no block. Every text cell
    that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
    return) is written with a leading single quote. The file appears whole or not at all
    (written to a temporary file in the same folder, then renamed).
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"{path}: folder {folder} does not exist")
    columns = ["unit", "arm", "block"] + (["region"] if "region" in frozen.units.columns else [])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["pilot", "version", *columns])
            for record in frozen.units[columns].itertuples(index=False, name=None):
                writer.writerow(
                    [_safe_cell(frozen.pilot), frozen.version, *map(_safe_cell, record)]
                )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
