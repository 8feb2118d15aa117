"""One write transaction on the workspace, retried when another connection wins a race.

The registry and the assumption sets are insert-only tables with primary keys: when two
connections add the same key, the second COMMIT fails. The body then runs again in a
new transaction (it re-reads what the winner wrote and decides again), up to
``attempts`` times; any other error rolls back and propagates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from loyalty_pilot.pilots.errors import UserError

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")
ATTEMPTS = 3


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK, ignoring the error of a transaction a failed COMMIT has already ended."""
    import duckdb

    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def retrying(
    con: duckdb.DuckDBPyConnection,
    body: Callable[[], T],
    conflict: Callable[[str], str],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """``body()`` inside BEGIN ... COMMIT; on a key conflict, again (``attempts`` in all),
    then a UserError with ``conflict(first line of the database's message)``."""
    import duckdb

    for attempt in range(attempts):
        con.execute("BEGIN TRANSACTION")
        try:
            out = body()
            con.execute("COMMIT")
            return out
        except (duckdb.ConstraintException, duckdb.TransactionException) as exc:
            rollback(con)
            if attempt + 1 == attempts:
                raise UserError(conflict(str(exc).splitlines()[0])) from None
        except BaseException:
            rollback(con)
            raise
    raise AssertionError("unreachable")  # pragma: no cover
