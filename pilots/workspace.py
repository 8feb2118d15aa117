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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loyalty_pilot.pilots.errors import UserError

if TYPE_CHECKING:
    import duckdb

DB_NAME = "workspace.duckdb"
DEFAULT_WORKSPACE = "workspace"
MEMORY_LIMIT_ENV = "LOYALTY_PILOT_MEMORY_LIMIT"  # e.g. "4GB": DuckDB spills beyond it

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
        try:
            con = duckdb.connect(str(self.db_path), read_only=read_only and self.exists())
        except duckdb.Error as exc:  # locked by another process, corrupt file
            raise UserError(f"cannot open workspace database {self.db_path}: {exc}") from exc
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


def open_workspace(path: str | os.PathLike[str] | None = None) -> Workspace:
    """The workspace at ``path`` (default ``./workspace``)."""
    return Workspace(Path(path if path is not None else DEFAULT_WORKSPACE))
