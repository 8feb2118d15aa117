"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: the command prints ``Error: <message>`` and exits 2."""

    exit_code = 2
