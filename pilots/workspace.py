"""The workspace: a folder holding one DuckDB database with baskets, stores and the registry.

Tables (created on first open):

``stores``   store_id VARCHAR, region VARCHAR, format VARCHAR, size_m2 DOUBLE, opened DATE
``baskets``  basket_id VARCHAR, customer_id VARCHAR (NULL = anonymous), store_id VARCHAR,
             ts TIMESTAMP, date DATE, amount DOUBLE (negative = return), margin DOUBLE,
             items BIGINT, ingest_id BIGINT (row of ``ingests`` that loaded it),
             department VARCHAR (optional, for per-department points multipliers)
``ingests``  one row per loaded file: id, kind ('baskets' | 'stores'), path, fingerprint
             (sha256 of the file's bytes), loaded_at, rows_read, loaded, rejected,
             anonymous, returns, rejects_file
``pilot_versions``  the registry (:mod:`loyalty_pilot.pilots.registry`): one row per frozen
             version of a pilot's assignment, key (pilot, version); written once, never
             updated or deleted
``pilot_units``  the units and arms of each frozen version, key (pilot, version, unit)
``assumption_sets``  versioned response assumptions of a programme, recalibrated by pilots
             (:mod:`loyalty_pilot.pilots.assumptions`), key (programme, version); insert-only

DuckDB lets one process at a time open the database file for writing. ``connect`` waits
for another process's lock to go (up to ``LOYALTY_PILOT_LOCK_TIMEOUT`` seconds, default 10),
then fails with a one-line "workspace ... is in use by another process (pid N)".
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyalty_pilot.pilots.errors import UserError

if TYPE_CHECKING:
    import duckdb

DB_NAME = "workspace.duckdb"
DEFAULT_WORKSPACE = "workspace"
MEMORY_LIMIT_ENV = "LOYALTY_PILOT_MEMORY_LIMIT"  # e.g. "4GB": DuckDB spills beyond it
LOCK_TIMEOUT_ENV = "LOYALTY_PILOT_LOCK_TIMEOUT"  # seconds to wait for another process's lock
DEFAULT_LOCK_TIMEOUT = 10.0

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS stores (
        store_id VARCHAR NOT NULL, region VARCHAR NOT NULL, format VARCHAR,
        size_m2 DOUBLE, opened DATE, ingest_id BIGINT)""",
    """CREATE TABLE IF NOT EXISTS baskets (
        basket_id VARCHAR NOT NULL, customer_id VARCHAR, store_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL, date DATE NOT NULL, amount DOUBLE NOT NULL,
        margin DOUBLE, items BIGINT, ingest_id BIGINT, department VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ingests (
        id BIGINT NOT NULL, kind VARCHAR NOT NULL, path VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL, rows_read BIGINT,
        loaded BIGINT, rejected BIGINT, anonymous BIGINT, returns BIGINT,
        rejects_file VARCHAR)""",
    # workspaces made before the department column existed
    "ALTER TABLE baskets ADD COLUMN IF NOT EXISTS department VARCHAR",
    # the registry: frozen pilot assignments, insert-only (pilots/registry.py)
    """CREATE TABLE IF NOT EXISTS pilot_versions (
        pilot VARCHAR NOT NULL, version INTEGER NOT NULL CHECK (version >= 1),
        design_hash VARCHAR NOT NULL, data_fingerprint VARCHAR NOT NULL, seed BIGINT NOT NULL,
        method VARCHAR NOT NULL, unit_kind VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
        spec VARCHAR NOT NULL, units_hash VARCHAR NOT NULL, n_units BIGINT NOT NULL,
        PRIMARY KEY (pilot, version))""",
    """CREATE TABLE IF NOT EXISTS pilot_units (
        pilot VARCHAR NOT NULL, version INTEGER NOT NULL, unit VARCHAR NOT NULL,
        arm VARCHAR NOT NULL, block VARCHAR, region VARCHAR,
        PRIMARY KEY (pilot, version, unit),
        FOREIGN KEY (pilot, version) REFERENCES pilot_versions (pilot, version))""",
    # versioned response assumptions of programmes, insert-only (pilots/assumptions.py)
    """CREATE TABLE IF NOT EXISTS assumption_sets (
        programme VARCHAR NOT NULL, version INTEGER NOT NULL CHECK (version >= 1),
        created_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL, response VARCHAR NOT NULL,
        recalibration VARCHAR, PRIMARY KEY (programme, version))""",
)


@dataclass(frozen=True)
class Workspace:
    """A workspace folder; ``connect()`` opens its DuckDB database (creating the tables)."""

    path: Path

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    def exists(self) -> bool:
        return self.db_path.exists()

    def connect(self, *, create: bool = True, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        import duckdb

        if not self.exists() and not create:
            raise UserError(
                f"no workspace at {self.path} (no {DB_NAME}); run `loyalty-pilot ingest` "
                "or `loyalty-pilot generate` first, or pass --workspace DIR"
            )
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"workspace {self.path} is a file, not a folder")
        os.makedirs(self.path, exist_ok=True)
        con = self._open(duckdb, read_only=read_only and self.exists())
        limit = os.environ.get(MEMORY_LIMIT_ENV)
        if limit:
            try:
                con.execute(f"SET memory_limit = '{limit.replace(chr(39), '')}'")
            except duckdb.Error as exc:
                con.close()
                raise UserError(f"{MEMORY_LIMIT_ENV}={limit!r}: {exc}") from exc
        if not read_only:
            for statement in SCHEMA:
                con.execute(statement)
        return con

    def _open(self, duckdb: Any, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the database file, waiting (bounded) while another process holds its lock.

        While DuckDB opens the file, this process also holds an exclusive ``flock`` on the
        workspace folder: two processes creating a new workspace at once would otherwise
        see each other's half-written file ("not a valid DuckDB database file").
        """
        timeout = lock_timeout()
        deadline = time.monotonic() + timeout
        pause = 0.02
        holder = ""
        while True:
            guard = _lock_folder(self.path)
            if guard is not None:
                try:
                    return duckdb.connect(str(self.db_path), read_only=read_only)
                except duckdb.Error as exc:  # locked by another process, corrupt file
                    if not _is_lock_conflict(exc):
                        raise UserError(
                            f"cannot open workspace database {self.db_path}: {exc}"
                        ) from exc
                    match = re.search(r"\(PID (\d+)\)", str(exc))
                    holder = f" (pid {match.group(1)})" if match else ""
                finally:
                    if guard >= 0:
                        os.close(guard)  # releases the flock
            left = deadline - time.monotonic()
            if left <= 0:
                raise UserError(
                    f"workspace {self.path} is in use by another process{holder}; "
                    f"waited {timeout:g} s: try again when it has finished "
                    f"(or set {LOCK_TIMEOUT_ENV} to wait longer)"
                )
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)


def _lock_folder(path: Path) -> int | None:
    """A descriptor holding an exclusive flock on ``path``; None while another process holds
    it; -1 where folders cannot be locked (no fcntl, a file system without flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: DuckDB's own lock and the retries remain
        return -1
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        return -1
    return fd


def lock_timeout() -> float:
    """Seconds ``connect`` waits for another process's lock (``LOYALTY_PILOT_LOCK_TIMEOUT``)."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise UserError(f"{LOCK_TIMEOUT_ENV}={raw!r}: not a number of seconds (0 or more)")
    return value


def _is_lock_conflict(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def open_workspace(path: str | os.PathLike[str] | None = None) -> Workspace:
    """The workspace at ``path`` (default ``./workspace``)."""
    return Workspace(Path(path if path is not None else DEFAULT_WORKSPACE))
