"""Shared fixtures of the replay tests: both implementations behind one interface.

pytest runs with ``--import-mode=importlib`` (test modules cannot import their siblings),
so this folder is put on ``sys.path`` for ``reference_replay``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from reference_replay import reference_replay  # noqa: E402


def fast_replay_or_none():
    """The fast replay, or None while ``simulator/replay.py`` does not define it yet."""
    try:
        from loyalty_pilot.simulator.replay import replay
    except ImportError:
        return None
    return replay


def reference_as_result(baskets, programme, **kwargs):
    ledger, customers = reference_replay(baskets, programme, **kwargs)
    return SimpleNamespace(ledger=ledger, customers=customers)


@pytest.fixture(params=["fast", "reference"])
def run(request):
    """``run(baskets, programme, **kwargs)`` -> object with ``.ledger`` and ``.customers``."""
    if request.param == "reference":
        return reference_as_result
    replay = fast_replay_or_none()
    if replay is None:
        pytest.skip("loyalty_pilot.simulator.replay.replay is not implemented yet")
    return replay


@pytest.fixture(scope="session")
def fast():
    replay = fast_replay_or_none()
    if replay is None:
        pytest.skip("loyalty_pilot.simulator.replay.replay is not implemented yet")
    return replay
