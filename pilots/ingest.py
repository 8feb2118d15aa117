"""Validated, transactional, idempotent ingest of basket and store files into a workspace.

Files are read by DuckDB (CSV or Parquet), never whole into pandas, so a file larger
than memory loads (DuckDB spills to the workspace's temporary folder). Every input row
ends up either loaded or in a rejects CSV with its line number and reason:

``line``    the line in a CSV file (the header is line 1), the row number (from 1) in Parquet
``reason``  every reason the row was rejected, separated by ``; ``
then the row's raw values (CSV: as text), and for a line the CSV reader could not split
into the header's columns, ``raw_line`` holds the line as read.

Basket rules (columns per the contract; names are matched case-insensitively):

- required columns ``basket_id, customer_id, store_id, date, amount``; optional ``margin``,
  ``items``, ``department`` (for per-department points multipliers); other columns are
  ignored and listed in the result;
- ``date`` an ISO date or timestamp (a time-zone offset is dropped: the local time is kept);
- ``amount`` numeric and finite; a decimal comma (``12,50``) is accepted; negative = a return
  (kept and counted);
- ``customer_id`` empty = an anonymous basket (kept and counted);
- ``basket_id`` unique within the file (the first valid occurrence is loaded, the later ones
  are rejected naming the first line) and not already in the workspace;
- ``store_id`` known when the workspace has a stores table.

Store rules: ``store_id`` and ``region`` required and non-empty; optional ``format``,
``size_m2`` (number >= 0), ``opened`` (date); ``store_id`` unique in the file and new.

One call is one transaction: the stores file and the baskets file load together or, if
anything fails, the workspace is left as it was. A file whose bytes were loaded before
(SHA-256 fingerprint recorded in ``ingests``) loads nothing and says so.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.workspace import MEMORY_LIMIT_ENV, Workspace

if TYPE_CHECKING:
    import duckdb

BASKET_REQUIRED = ("basket_id", "customer_id", "store_id", "date", "amount")
BASKET_OPTIONAL = ("margin", "items", "department")
STORE_REQUIRED = ("store_id", "region")
STORE_OPTIONAL = ("format", "size_m2", "opened")

CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class IngestResult:
    """What one file's ingest did. Counts are rows of this call."""

    kind: str  # 'baskets' | 'stores'
    path: str
    fingerprint: str
    rows_read: int
    loaded: int
    rejected: int
    anonymous: int = 0
    returns: int = 0
    rejects_file: str | None = None
    already_loaded: bool = False
    ignored_columns: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ignored_columns"] = list(self.ignored_columns)
        return out


def scan(path: Path, chunk: int = 1 << 22) -> tuple[str, list[int]]:
    """One streaming pass over the file's bytes (files larger than memory are fine).

    Returns the SHA-256 fingerprint and the numbers of the empty lines (the CSV reader
    skips them, so they are needed to give every row its line number). A gzip file is
    fingerprinted but not searched for empty lines.
    """
    import numpy as np

    digest = hashlib.sha256()
    blanks: list[int] = []
    search = not path.name.lower().endswith(".gz")
    offset = 0  # absolute position of the chunk's first byte
    lines_before = 0  # newlines seen before the chunk
    last_newline = -1  # absolute position of the last newline seen (-1: start of file)
    last_byte = -1
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
            if search:
                data = np.frombuffer(block, dtype=np.uint8)
                newlines = np.flatnonzero(data == 10) + offset
                if newlines.size:
                    starts = np.concatenate(([last_newline], newlines[:-1]))
                    length = newlines - starts - 1
                    before = newlines - offset - 1
                    prev = np.where(before >= 0, data[np.maximum(before, 0)], last_byte)
                    blank = (length == 0) | ((length == 1) & (prev == 13))
                    numbers = lines_before + 1 + np.flatnonzero(blank)
                    blanks.extend(int(n) for n in numbers)
                    lines_before += newlines.size
                    last_newline = int(newlines[-1])
                last_byte = int(data[-1])
            offset += len(block)
    return digest.hexdigest(), blanks


def ingest(
    workspace: Workspace,
    baskets: str | os.PathLike[str] | None = None,
    stores: str | os.PathLike[str] | None = None,
    *,
    rejects_dir: str | os.PathLike[str] | None = None,
    encoding: str = "utf-8",
) -> list[IngestResult]:
    """Load a stores file and/or a baskets file into ``workspace`` in one transaction.

    Returns one :class:`IngestResult` per file (stores first). Raises :class:`UserError`
    (nothing changed in the workspace) when a file is missing or unreadable, lacks a
    required column, or has no row that could be loaded; the rejects file of such a call
    is still written so the user can see why.
    """
    if baskets is None and stores is None:
        raise UserError("nothing to ingest: pass --baskets FILE and/or --stores FILE")
    jobs = [(k, Path(p)) for k, p in (("stores", stores), ("baskets", baskets)) if p is not None]
    for _, path in jobs:
        _check_readable(path)
    out_dir = Path(rejects_dir) if rejects_dir is not None else workspace.path / "rejects"

    con = workspace.connect()
    results: list[IngestResult] = []
    pending: list[tuple[Path, Path]] = []  # (temporary rejects file, final name)
    failure: UserError | None = None
    try:
        con.begin()
        for kind, path in jobs:
            result, tmp = _ingest_file(con, kind, path, out_dir, encoding)
            if tmp is not None and result.rejects_file is not None:
                pending.append((tmp, Path(result.rejects_file)))
            if result.loaded == 0 and not result.already_loaded:
                where = f"; see {result.rejects_file}" if result.rejects_file else ""
                failure = UserError(
                    f"nothing loaded from {path}: {result.rejected} of {result.rows_read} "
                    f"rows rejected{where}; the workspace is unchanged"
                )
                break
            results.append(result)
        if failure is not None:
            con.rollback()
        else:
            con.commit()
    except BaseException:
        con.rollback()
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    for tmp, final in pending:
        os.replace(tmp, final)
    if failure is not None:
        raise failure
    return results


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a file")
    name = path.name.lower()
    if not name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
        raise UserError(
            f"{path}: unknown file type; expected CSV ({', '.join(CSV_SUFFIXES)}) "
            f"or Parquet ({', '.join(PARQUET_SUFFIXES)})"
        )
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")


def _ingest_file(
    con: duckdb.DuckDBPyConnection, kind: str, path: Path, out_dir: Path, encoding: str
) -> tuple[IngestResult, Path | None]:
    fp, blank_lines = scan(path)
    seen = con.execute(
        "SELECT loaded_at FROM ingests WHERE kind = ? AND fingerprint = ? ORDER BY id LIMIT 1",
        [kind, fp],
    ).fetchone()
    if seen is not None:
        result = IngestResult(kind, str(path), fp, 0, 0, 0, already_loaded=True)
        return result, None

    required, optional = (
        (BASKET_REQUIRED, BASKET_OPTIONAL)
        if kind == "baskets"
        else (STORE_REQUIRED, STORE_OPTIONAL)
    )
    columns, ignored = _read_raw(con, path, required, optional, encoding, blank_lines)
    ingest_id = con.execute("SELECT coalesce(max(id), 0) + 1 FROM ingests").fetchone()[0]
    if kind == "baskets":
        _check_baskets(con, columns)
    else:
        _check_stores(con, columns)
    rows_read = _count(con, "SELECT count(*) FROM raw") + _count(
        con, "SELECT count(DISTINCT line) FROM structural"
    )
    loaded = _count(con, "SELECT count(*) FROM checked WHERE reason IS NULL")
    anonymous = returns = 0
    if kind == "baskets":
        anonymous, returns = con.execute(
            "SELECT count(*) FILTER (customer_id IS NULL), count(*) FILTER (amount < 0) "
            "FROM checked WHERE reason IS NULL"
        ).fetchone()
        con.execute(
            "INSERT INTO baskets (basket_id, customer_id, store_id, ts, date, amount, margin, "
            "items, department, ingest_id) SELECT basket_id, customer_id, store_id, ts, "
            "CAST(ts AS DATE), amount, margin, items, department, ? FROM checked "
            "WHERE reason IS NULL ORDER BY line",
            [ingest_id],
        )
    else:
        con.execute(
            "INSERT INTO stores SELECT store_id, region, format, size_m2, opened, ? "
            "FROM checked WHERE reason IS NULL ORDER BY line",
            [ingest_id],
        )
    rejected = rows_read - loaded
    rejects_file: str | None = None
    tmp: Path | None = None
    if rejected:
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / f"{_stem(path)}-{fp[:12]}.rejects.csv"
        tmp = final.with_name(final.name + ".part")
        _write_rejects(con, columns, tmp)
        rejects_file = str(final)
    con.execute(
        "INSERT INTO ingests VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?)",
        [
            ingest_id,
            kind,
            str(path.resolve()),
            fp,
            rows_read,
            loaded,
            rejected,
            anonymous,
            returns,
            rejects_file,
        ],
    )
    for table in ("raw", "structural", "checked"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    result = IngestResult(
        kind,
        str(path),
        fp,
        rows_read,
        loaded,
        rejected,
        anonymous,
        returns,
        rejects_file,
        ignored_columns=tuple(ignored),
    )
    return result, tmp


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name or "file"


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_raw(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    required: Sequence[str],
    optional: Sequence[str],
    encoding: str,
    blank_lines: Sequence[int] = (),
) -> tuple[list[str], list[str]]:
    """Create temp tables ``raw`` (text columns named as the contract + ``line``) and
    ``structural`` (lines the CSV reader could not split: line, reason, raw_line)."""
    import duckdb

    parquet = path.name.lower().endswith(PARQUET_SUFFIXES)
    src = _literal(str(path))
    if parquet:
        source = f"read_parquet({src}, file_row_number = true)"
    else:
        source = (
            f"read_csv({src}, all_varchar = true, header = true, store_rejects = true, "
            f"rejects_table = 'csv_rejects', rejects_scan = 'csv_reject_scans', "
            f"encoding = {_literal(encoding)})"
        )
    for table in (
        "raw",
        "raw_ordered",
        "structural",
        "skipped",
        "checked",
        "csv_rejects",
        "csv_reject_scans",
    ):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    try:
        names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(
            f"{path}: cannot be read as {'Parquet' if parquet else 'CSV'}: {first}"
        ) from exc
    by_key: dict[str, str] = {}
    for name in names:
        key = name.strip().lower().lstrip("\ufeff")
        if parquet and name == "file_row_number":
            continue
        if key in by_key:
            raise UserError(f"{path}: column {key!r} appears twice in the header")
        by_key[key] = name
    missing = [c for c in required if c not in by_key]
    if missing:
        found = ", ".join(by_key) or "none"
        raise UserError(
            f"{path}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (found: {found})"
        )
    columns = [c for c in (*required, *optional) if c in by_key]
    ignored = [by_key[k] for k in by_key if k not in columns]
    select = ", ".join(f"CAST({_quote(by_key[c])} AS VARCHAR) AS {c}" for c in columns)
    try:
        if parquet:
            con.execute(
                f"CREATE TEMP TABLE raw AS SELECT {select}, file_row_number + 1 AS line "
                f"FROM {source}"
            )
            con.execute(
                "CREATE TEMP TABLE structural (line BIGINT, reason VARCHAR, raw_line VARCHAR)"
            )
            return columns, ignored
        con.execute(
            f"CREATE TEMP TABLE raw_ordered AS SELECT {select}, "
            f"row_number() OVER () AS k FROM {source}"
        )
    except duckdb.OutOfMemoryException as exc:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        raise UserError(
            f"{path}: out of memory while reading (DuckDB memory limit {limit}); "
            f"set {MEMORY_LIMIT_ENV} higher"
        ) from exc
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: cannot be read: {first}") from exc
    # Lines the reader could not split: one row per line, all its errors joined.
    con.execute(
        """CREATE TEMP TABLE structural AS
           SELECT line, string_agg(DISTINCT lower(CAST(error_type AS VARCHAR)), '; ') AS reason,
                  ltrim(any_value(csv_line), chr(10) || chr(13)) AS raw_line
           FROM csv_rejects GROUP BY line"""
    )
    # The k-th good row (k from 1; DuckDB keeps the file's order) sits on line
    # k + 1 + (number of skipped lines before it), skipped = rejected or empty lines. The
    # j-th skipped line s_j has g_j = s_j - 1 - j good rows before it, so the good row k
    # comes after the skipped line j iff g_j < k.
    con.execute("CREATE TEMP TABLE skipped (line BIGINT)")
    if blank_lines:
        con.executemany("INSERT INTO skipped VALUES (?)", [[n] for n in blank_lines])
    con.execute(
        """CREATE TEMP TABLE raw AS
           WITH s AS (SELECT DISTINCT line FROM (
                          SELECT line FROM structural UNION ALL SELECT line FROM skipped)),
                numbered AS (SELECT line - 1 - row_number() OVER (ORDER BY line) AS g,
                                    row_number() OVER (ORDER BY line) AS j FROM s),
                rej AS (SELECT g, max(j) AS j FROM numbered GROUP BY g)
           SELECT good.* EXCLUDE (k), good.k + 1 + coalesce(rej.j, 0) AS line
           FROM raw_ordered good ASOF LEFT JOIN rej ON good.k > rej.g"""
    )
    for table in ("raw_ordered", "skipped", "csv_rejects", "csv_reject_scans"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return columns, ignored


_NUMBER = (
    "coalesce(try_cast(trim({c}) AS DOUBLE), CASE WHEN regexp_full_match(trim({c}), "
    "'[-+]?[0-9]+,[0-9]+') THEN try_cast(replace(trim({c}), ',', '.') AS DOUBLE) END)"
)


# A whole number, also written as a float ("2.0", as Parquet files from pandas have it).
_ITEMS = (
    "CASE WHEN try_cast(trim(items) AS DOUBLE) = floor(try_cast(trim(items) AS DOUBLE)) "
    "AND isfinite(try_cast(trim(items) AS DOUBLE)) "
    "THEN CAST(try_cast(trim(items) AS DOUBLE) AS BIGINT) END"
)


def _blank(col: str) -> str:
    return f"(nullif(trim({col}), '') IS NULL)"


def _bad_number(col: str) -> str:
    parsed = _NUMBER.format(c=col)
    return f"(NOT {_blank(col)} AND ({parsed} IS NULL OR NOT isfinite({parsed})))"


def _shown(col: str) -> str:
    return f"'''' || left({col}, 40) || ''''"


def _check_baskets(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> None:
    has_margin = "margin" in columns
    has_items = "items" in columns
    reasons = [
        f"CASE WHEN {_blank('basket_id')} THEN 'empty basket_id' END",
        f"CASE WHEN {_blank('store_id')} THEN 'empty store_id' END",
        f"CASE WHEN {_blank('date')} THEN 'empty date' "
        "WHEN try_cast(trim(date) AS TIMESTAMP) IS NULL "
        f"THEN 'unparseable date ' || {_shown('date')} END",
        f"CASE WHEN {_blank('amount')} THEN 'empty amount' "
        f"WHEN {_bad_number('amount')} THEN 'non-numeric amount ' || {_shown('amount')} END",
    ]
    if has_margin:
        reasons.append(
            f"CASE WHEN {_bad_number('margin')} "
            f"THEN 'non-numeric margin ' || {_shown('margin')} END"
        )
    if has_items:
        reasons.append(
            "CASE WHEN NOT " + _blank("items") + f" AND {_ITEMS} IS NULL "
            f"THEN 'non-integer items ' || {_shown('items')} END"
        )
    has_stores = _count(con, "SELECT count(*) FROM stores") > 0
    known_store = (
        "CASE WHEN NOT {b} AND trim(store_id) NOT IN (SELECT store_id FROM stores) "
        "THEN 'unknown store_id ' || {s} END"
    ).format(b=_blank("store_id"), s=_shown("store_id"))
    if has_stores:
        reasons.append(known_store)
    margin = f"{_NUMBER.format(c='margin')}" if has_margin else "CAST(NULL AS DOUBLE)"
    items = _ITEMS if has_items else "CAST(NULL AS BIGINT)"
    department = (
        "nullif(trim(department), '')" if "department" in columns else "CAST(NULL AS VARCHAR)"
    )
    con.execute(
        f"""CREATE TEMP TABLE checked AS
        WITH parsed AS (
            SELECT line, nullif(trim(basket_id), '') AS basket_id,
                   nullif(trim(customer_id), '') AS customer_id,
                   nullif(trim(store_id), '') AS store_id,
                   try_cast(trim(date) AS TIMESTAMP) AS ts,
                   {_NUMBER.format(c="amount")} AS amount, {margin} AS margin, {items} AS items,
                   {department} AS department,
                   nullif(concat_ws('; ', {", ".join(reasons)}), '') AS own
            FROM raw),
        firsts AS (
            SELECT *, min(line) OVER (PARTITION BY basket_id) AS first_line FROM parsed
            WHERE own IS NULL),
        loaded AS (SELECT DISTINCT basket_id FROM baskets)
        SELECT p.line, p.basket_id, p.customer_id, p.store_id, p.ts, p.amount, p.margin, p.items,
               p.department,
               coalesce(p.own,
                   CASE WHEN f.first_line < p.line
                        THEN 'duplicate basket_id (first at line ' || f.first_line || ')'
                        WHEN l.basket_id IS NOT NULL THEN 'basket_id already loaded' END) AS reason
        FROM parsed p
        LEFT JOIN firsts f ON f.line = p.line
        LEFT JOIN loaded l ON l.basket_id = p.basket_id"""
    )


def _check_stores(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> None:
    reasons = [
        f"CASE WHEN {_blank('store_id')} THEN 'empty store_id' END",
        f"CASE WHEN {_blank('region')} THEN 'empty region' END",
    ]
    size = "CAST(NULL AS DOUBLE)"
    opened = "CAST(NULL AS DATE)"
    fmt = "CAST(NULL AS VARCHAR)"
    if "size_m2" in columns:
        size = _NUMBER.format(c="size_m2")
        reasons.append(
            f"CASE WHEN {_bad_number('size_m2')} "
            f"THEN 'non-numeric size_m2 ' || {_shown('size_m2')} "
            f"WHEN {size} < 0 THEN 'negative size_m2 ' || {_shown('size_m2')} END"
        )
    if "opened" in columns:
        opened = "try_cast(try_cast(trim(opened) AS TIMESTAMP) AS DATE)"
        reasons.append(
            f"CASE WHEN NOT {_blank('opened')} AND {opened} IS NULL "
            f"THEN 'unparseable opened date ' || {_shown('opened')} END"
        )
    if "format" in columns:
        fmt = "nullif(trim(format), '')"
    con.execute(
        f"""CREATE TEMP TABLE checked AS
        WITH parsed AS (
            SELECT line, nullif(trim(store_id), '') AS store_id,
                   nullif(trim(region), '') AS region, {fmt} AS format,
                   {size} AS size_m2, {opened} AS opened,
                   nullif(concat_ws('; ', {", ".join(reasons)}), '') AS own
            FROM raw),
        firsts AS (
            SELECT *, min(line) OVER (PARTITION BY store_id) AS first_line FROM parsed
            WHERE own IS NULL)
        SELECT p.line, p.store_id, p.region, p.format, p.size_m2, p.opened,
               coalesce(p.own,
                   CASE WHEN f.first_line < p.line
                        THEN 'duplicate store_id (first at line ' || f.first_line || ')'
                        WHEN p.store_id IN (SELECT store_id FROM stores)
                        THEN 'store_id already loaded' END) AS reason
        FROM parsed p LEFT JOIN firsts f ON f.line = p.line"""
    )


def _write_rejects(con: duckdb.DuckDBPyConnection, columns: Sequence[str], target: Path) -> None:
    values = ", ".join(f"r.{c}" for c in columns)
    nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in columns)
    con.execute(
        f"""COPY (
            SELECT * FROM (
                SELECT c.line, c.reason, {values}, CAST(NULL AS VARCHAR) AS raw_line
                FROM checked c JOIN raw r ON r.line = c.line WHERE c.reason IS NOT NULL
                UNION ALL
                SELECT line, reason, {nulls}, raw_line FROM structural)
            ORDER BY line) TO {_literal(str(target))} (HEADER, DELIMITER ',')"""
    )
