"""Ingest speed, and a file larger than DuckDB's memory limit.

Writes a baskets CSV of N rows (1 % bad rows, 20 % anonymous, 1 % returns), then times

- the reference: DuckDB reading the same CSV into a table, no validation
  (``CREATE TABLE t AS SELECT * FROM read_csv(...)``);
- ``loyalty_pilot.pilots.ingest.ingest`` with full validation, line numbers and rejects,
  under ``LOYALTY_PILOT_MEMORY_LIMIT`` set below the file's size.

Run:  python benchmarks/bench_ingest.py [--rows 5000000] [--memory-limit 200MB]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from loyalty_pilot.pilots.ingest import ingest
from loyalty_pilot.pilots.workspace import MEMORY_LIMIT_ENV, open_workspace


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    customer = rng.integers(0, 200_000, rows)
    anonymous = rng.random(rows) < 0.2
    amount = np.round(rng.gamma(2.0, 20.0, rows), 2)
    amount[rng.random(rows) < 0.01] *= -1
    amount_text = amount.astype(str)
    amount_text[rng.random(rows) < 0.01] = "n/a"
    day = rng.integers(0, 730, rows)
    import pandas as pd

    frame = pd.DataFrame(
        {
            "basket_id": np.char.add("B", np.arange(rows).astype(str)),
            "customer_id": np.where(anonymous, "", np.char.add("C", customer.astype(str))),
            "store_id": np.char.add("S", rng.integers(1, 49, rows).astype(str)),
            "date": (np.datetime64("2024-01-01") + day).astype(str),
            "amount": amount_text,
        }
    )
    con.register("frame", frame)
    con.execute(f"COPY frame TO '{path}' (HEADER)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--memory-limit", default="200MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baskets.csv"
        write_csv(path, args.rows)
        size_mb = path.stat().st_size / 1e6

        con = duckdb.connect(str(Path(tmp) / "ref.duckdb"))
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', all_varchar = true)")
        reference = time.perf_counter() - t0
        con.close()

        os.environ[MEMORY_LIMIT_ENV] = args.memory_limit
        t0 = time.perf_counter()
        (result,) = ingest(open_workspace(Path(tmp) / "ws"), baskets=path)
        seconds = time.perf_counter() - t0
    print(f"rows {args.rows:,}  file {size_mb:,.0f} MB  DuckDB memory limit {args.memory_limit}")
    print(f"loaded {result.loaded:,}  rejected {result.rejected:,}  anonymous {result.anonymous:,}")
    print(f"reference read_csv into a table: {reference:.2f} s")
    print(
        f"validated ingest: {seconds:.2f} s  ({args.rows / seconds:,.0f} rows/s, "
        f"{seconds / reference:.1f}x the plain read)"
    )


if __name__ == "__main__":
    main()
