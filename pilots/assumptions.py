"""Versioned response assumptions: recalibrated sets in the workspace, and as YAML files.

A pilot's estimates update a programme's response assumptions
(:mod:`loyalty_pilot.simulator.recalibration`); this module keeps every set of
assumptions a programme has had, in the workspace table ``assumption_sets``::

    programme VARCHAR, version INTEGER (1, 2, ...), created_at TIMESTAMP (UTC),
    source VARCHAR ('pilot cash-vs-gift v1'), response VARCHAR (canonical JSON of the
    Response), recalibration VARCHAR (canonical JSON of Recalibration.to_dict(), NULL
    for a set saved as a plain Response), PRIMARY KEY (programme, version)

Rules
-----
- **Immutable.** Rows are inserted once, never updated or deleted by any code path.
- **Same response, same version.** :func:`save_assumptions` compares the new response with
  the programme's latest version: identical -> that version, nothing written (saving
  twice does not make a new version); otherwise version latest + 1. Only the latest is
  compared: going back to an earlier set makes a new version (history stays in order).
- **One transaction.** Reading the latest version and inserting the next happen in one
  DuckDB transaction; the primary key makes a concurrent duplicate fail at commit, after
  which the save re-reads and decides again.

:func:`write_programme_yaml` writes a programme file with a new response: every key the
original programme set (``model_dump(exclude_unset=True)``), the response in full, a
comment naming where the assumptions come from; written atomically and checked to load
back with :func:`~loyalty_pilot.pilots.specfile.load_programme` as the same model.
:func:`observation_from_comparison` turns an ``evaluate`` comparison into the
:class:`~loyalty_pilot.simulator.recalibration.Observation` a recalibration takes.

Note for callers: recalibrating the *latest* assumptions with the same pilot twice counts
its evidence twice. Recalibrate a programme file's own response (or the version the
pilot was designed with), and name the pilot and its version in ``source``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.registry import canonical_json
from loyalty_pilot.pilots.transaction import retrying
from loyalty_pilot.simulator.programme import Programme, Response
from loyalty_pilot.simulator.recalibration import Observation, Recalibration

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "TABLE",
    "assumption_history",
    "current_response",
    "export_assumptions",
    "get_assumptions",
    "latest_assumptions",
    "observation_from_comparison",
    "save_assumptions",
    "with_response",
    "write_programme_yaml",
]

TABLE = "assumption_sets"
_COMMIT_ATTEMPTS = 3


# --------------------------------------------------------------------------- database


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    """False in a workspace opened read-only before the table existed."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = ? AND table_schema = 'main'",
        [TABLE],
    ).fetchone()
    return bool(found and found[0])


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    from loyalty_pilot.pilots.workspace import SCHEMA

    for statement in SCHEMA:
        if f"EXISTS {TABLE} " in statement:
            con.execute(statement)
            return
    raise AssertionError(f"no {TABLE} in the workspace schema")  # pragma: no cover


def _response_json(response: Response) -> str:
    return canonical_json(response.model_dump(mode="json"))


def _response(programme: str, version: int, text: str) -> Response:
    try:
        return Response.model_validate_json(text, strict=False)
    except ValidationError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(
            f"programme {programme} assumption set {version} is not a valid response "
            f"(the workspace was changed outside loyalty-pilot): {first}"
        ) from None


def save_assumptions(
    con: duckdb.DuckDBPyConnection,
    programme_name: str,
    recalibration: Recalibration | Response,
    source: str,
) -> int:
    """Save the recalibration's posterior response (or a plain Response) as the
    programme's next assumption set; returns its version. The latest version when its
    response is the same (nothing is written). ``source`` says where it comes from
    (``'pilot cash-vs-gift v1'``, ``'programme file cash.yaml'``)."""
    if not isinstance(programme_name, str) or not programme_name.strip():
        raise ValueError(f"programme_name == {programme_name!r}, must be a non-empty name")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"source == {source!r}, must say where the assumptions come from")
    if isinstance(recalibration, Recalibration):
        response = recalibration.posterior
        detail: str | None = canonical_json(recalibration.to_dict())
    elif isinstance(recalibration, Response):
        response, detail = recalibration, None
    else:
        raise TypeError(
            f"recalibration must be a Recalibration or a Response, got "
            f"{type(recalibration).__name__}"
        )
    text = _response_json(response)

    _ensure_table(con)

    def body() -> int:
        row = con.execute(
            f"SELECT version, response FROM {TABLE} WHERE programme = ? "
            "ORDER BY version DESC LIMIT 1",
            [programme_name],
        ).fetchone()
        if row is not None and row[1] == text:
            return int(row[0])
        version = 1 if row is None else int(row[0]) + 1
        created = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        con.execute(
            f"INSERT INTO {TABLE} (programme, version, created_at, source, response, "
            "recalibration) VALUES (?, ?, ?, ?, ?, ?)",
            [programme_name, version, created, source.strip(), text, detail],
        )
        return version

    return retrying(
        con,
        body,
        lambda why: (
            f"programme {programme_name}: another process kept saving assumptions at the "
            f"same time ({why}); re-run"
        ),
        attempts=_COMMIT_ATTEMPTS,
    )


def latest_assumptions(
    con: duckdb.DuckDBPyConnection, programme: str
) -> tuple[int, Response] | None:
    """``(version, response)`` of the programme's latest assumption set; None without one."""
    if not _has_table(con):
        return None
    row = con.execute(
        f"SELECT version, response FROM {TABLE} WHERE programme = ? ORDER BY version DESC LIMIT 1",
        [programme],
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), _response(programme, int(row[0]), row[1])


def get_assumptions(con: duckdb.DuckDBPyConnection, programme: str, version: int) -> Response:
    """One version's response; UserError naming the known versions when it does not exist."""
    row = None
    if _has_table(con):
        row = con.execute(
            f"SELECT response FROM {TABLE} WHERE programme = ? AND version = ?",
            [programme, int(version)],
        ).fetchone()
    if row is not None:
        return _response(programme, int(version), row[0])
    known = [h["version"] for h in assumption_history(con, programme)]
    if not known:
        raise UserError(f"programme {programme} has no saved assumption sets")
    raise UserError(
        f"programme {programme} has no assumption set {version} "
        f"(versions: {', '.join(map(str, known))})"
    )


def current_response(
    con: duckdb.DuckDBPyConnection, programme: Programme
) -> tuple[int | None, Response]:
    """The programme's latest saved assumptions, else its file's own ``(None, response)``."""
    latest = latest_assumptions(con, programme.programme)
    return (None, programme.response) if latest is None else latest


def assumption_history(con: duckdb.DuckDBPyConnection, programme: str) -> list[dict[str, Any]]:
    """One JSON-ready row per version, oldest first; [] without any.

    Keys: programme, version, created_at (ISO 8601, UTC), source, response (dict),
    recalibration (dict, or None for a set saved as a plain Response).
    """
    if not _has_table(con):
        return []
    rows = con.execute(
        f"SELECT version, created_at, source, response, recalibration FROM {TABLE} "
        "WHERE programme = ? ORDER BY version",
        [programme],
    ).fetchall()
    return [
        {
            "programme": programme,
            "version": int(version),
            "created_at": _iso(created),
            "source": source,
            "response": json.loads(response),
            "recalibration": None if detail is None else json.loads(detail),
        }
        for version, created, source, response, detail in rows
    ]


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- YAML


class _Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes text the strict reader would take for a number (YAML 1.2
    floats such as ``1e3``) or report as ambiguous (``0o17``)."""


_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)
_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(
        r"^[-+]?(?:0[0-9]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9][0-9_]*_[0-9_.]*)$"
    ),
    list("-+0123456789"),
)


def with_response(programme: Programme, response: Response) -> Programme:
    """``programme`` with ``response`` (validated: the result is a valid Programme)."""
    if not isinstance(response, Response):
        raise TypeError(f"response must be a Response, got {type(response).__name__}")
    return programme.model_copy(update={"response": response})


def programme_yaml(programme: Programme, response: Response, *, source_comment: str) -> str:
    """The text :func:`write_programme_yaml` writes."""
    updated = with_response(programme, response)
    data = updated.model_dump(mode="python", exclude_unset=True)
    # the response in full, whatever was set: it is the point of the file
    data["response"] = response.model_dump(mode="python", exclude={"segments"})
    if response.segments:
        data["response"]["segments"] = {
            name: seg.model_dump(mode="python", exclude_none=True)
            for name, seg in response.segments.items()
        }
    lines = [line.rstrip() for line in source_comment.strip().splitlines()] or [""]
    header = "".join(f"# {line}\n" if line else "#\n" for line in lines)
    body = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=100,
    )
    return header + body


def write_programme_yaml(
    programme: Programme,
    response: Response,
    path: str | os.PathLike[str],
    *,
    source_comment: str,
) -> Path:
    """Write ``programme`` with ``response`` as a programme YAML file at ``path``.

    The file starts with ``source_comment`` as comment lines (name the pilot and the
    assumption set version), holds every key the original programme set and the response
    in full, loads back with ``load_programme`` as ``programme`` with ``response`` (checked
    before the file is written) and replaces ``path`` atomically (a temporary file in the
    same folder, then a rename): a reader never sees half a file.
    """
    from loyalty_pilot.pilots.specfile import parse_yaml, validate_data

    target = Path(path)
    expected = with_response(programme, response)
    text = programme_yaml(programme, response, source_comment=source_comment)
    data, lines = parse_yaml(text, str(target))
    loaded = validate_data(data, lines, Programme)
    if loaded != expected:  # pragma: no cover - a bug in the dump, not a user's mistake
        raise AssertionError(f"{target}: the written programme would not load back unchanged")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"cannot write {target}: no folder {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def export_assumptions(
    con: duckdb.DuckDBPyConnection,
    programme: Programme,
    path: str | os.PathLike[str],
    *,
    version: int | None = None,
) -> tuple[int, Path]:
    """Write ``programme`` with its saved assumption set ``version`` (default: the latest)
    to ``path``; the file's comment names the set, its source and its creation time."""
    history = {h["version"]: h for h in assumption_history(con, programme.programme)}
    if not history:
        raise UserError(f"programme {programme.programme} has no saved assumption sets")
    chosen = max(history) if version is None else int(version)
    response = get_assumptions(con, programme.programme, chosen)
    row = history[chosen]
    comment = (
        f"{programme.programme}: response assumptions version {chosen} "
        f"({row['source']}, saved {row['created_at']})\n"
        "written by loyalty-pilot from the workspace's assumption sets"
    )
    return chosen, write_programme_yaml(programme, response, path, source_comment=comment)


# --------------------------------------------------------------------------- estimates


def observation_from_comparison(comparison: Any) -> Observation:
    """The :class:`Observation` of an ``evaluate`` comparison (a ``Comparison`` or its
    ``to_dict()``): on a log scale (``log``, or ``total``: the ratio estimator), its
    ``log_estimate`` with the estimator's ``se``
    (else the log interval's half-width over z); on the level scale, from ``relative``
    and its interval (:meth:`Observation.from_relative`). UserError when the comparison
    has no estimate (``status`` other than ``ok``)."""
    data: Mapping[str, Any] = (
        comparison.to_dict() if hasattr(comparison, "to_dict") else dict(comparison)
    )
    status = data.get("status", "ok")
    what = f"{data.get('arm', '?')} vs {data.get('baseline', '?')} on {data.get('metric', '?')}"
    if status != "ok":
        raise UserError(f"{what}: no estimate to recalibrate with ({status})")
    alpha = float(data.get("alpha") or 0.05)
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2))

    def number(key: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None

    try:
        # the log scales: log DiD, and the total-sales ratio (its estimate is log(1 + u))
        if data.get("scale") in ("log", "total") and number("log_estimate") is not None:
            se = number("se")
            low, high = number("log_ci_low"), number("log_ci_high")
            if se is None and low is not None and high is not None:
                se = (high - low) / (2 * z)
            if se is not None:
                return Observation(number("log_estimate"), se)  # type: ignore[arg-type]
        relative, low, high = number("relative"), number("rel_ci_low"), number("rel_ci_high")
        if relative is None or low is None or high is None:
            raise UserError(f"{what}: no relative uplift with an interval to recalibrate with")
        return Observation.from_relative(relative, low, high, alpha=alpha)
    except ValueError as exc:
        raise UserError(f"{what}: {exc}") from None
