"""Put a synthetic chain into a workspace: generate, write its files, ingest them.

The generated files go through the same validated ingest as a user's files, so the demo
exercises the real path. The ground truth (the chain's parameters, the injected effects,
each customer's true rates) is kept beside them in ``WORKSPACE/generated``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from datetime import date
from typing import Any

import pandas as pd

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.workspace import DB_NAME, Workspace

DEMO_MARKER = ".loyalty-pilot-demo"


def reset_demo_workspace(workspace: Workspace) -> Workspace:
    """Empty ``workspace`` for a demo run: allowed for a new folder or an earlier demo's.

    A folder that holds anything else is left alone (UserError), so the demo never
    destroys a user's data.
    """
    path = workspace.path
    if path.exists():
        if not path.is_dir():
            raise UserError(f"demo workspace {path} is a file, not a folder")
        entries = list(path.iterdir())
        if entries and not (path / DEMO_MARKER).exists():
            raise UserError(
                f"{path} is not empty and is not a demo workspace; "
                "pass --workspace with a new folder"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / DEMO_MARKER).write_text("created by `loyalty-pilot demo`; replaced at each run\n")
    return workspace


def build_chain(
    workspace: Workspace,
    *,
    stores: int = 48,
    regions: int = 5,
    customers: int = 30_000,
    weeks: int = 104,
    seed: int = 0,
    start: date | None = None,
    effect: dict[str, Any] | None = None,
    effects: list[dict[str, Any]] | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """Generate a chain, write it to ``WORKSPACE/generated`` and ingest it.

    ``until``: ingest only the baskets dated before this day (the history a pilot is
    designed on); :func:`add_pilot_weeks` later adds the weeks from that day on.

    Returns a summary: ``seconds`` (wall time), ``files``, ``parameters``, ``effects``,
    ``ingest`` (the ingest results) and ``chain`` (:func:`panels.chain_summary`).
    """
    from loyalty_pilot.pilots.ingest import ingest
    from loyalty_pilot.pilots.panels import chain_summary
    from loyalty_pilot.pilots.synthetic import Effect, generate

    if workspace.exists():
        con = workspace.connect()
        held = con.execute("SELECT count(*) FROM baskets").fetchone()[0]
        con.close()
        if held:
            raise UserError(
                f"workspace {workspace.path} already holds {held:,} baskets; "
                "generate into a new --workspace"
            )
    t0 = time.perf_counter()
    try:
        wanted = ([effect] if effect is not None else []) + list(effects or [])
        injected = tuple(Effect(**e) for e in wanted)
        kwargs: dict[str, Any] = {}
        if start is not None:
            kwargs["start"] = start
        chain = generate(
            stores=stores,
            regions=regions,
            customers=customers,
            weeks=weeks,
            seed=seed,
            effects=injected,
            **kwargs,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    folder = workspace.path / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "baskets": folder / "baskets.parquet",
        "stores": folder / "stores.csv",
        "customers": folder / "customers.parquet",
        "store_truth": folder / "store_truth.parquet",
        "truth": folder / "truth.json",
    }
    history = chain.baskets
    if until is not None:
        history = history[history["date"] < pd.Timestamp(until)]
    history.to_parquet(files["baskets"], index=False)
    contract = ["store_id", "region", "format", "size_m2", "opened"]
    stores_frame = chain.stores[contract].copy()
    stores_frame["opened"] = stores_frame["opened"].dt.date
    stores_frame.to_csv(files["stores"], index=False)
    chain.stores.to_parquet(files["store_truth"], index=False)
    chain.customers.to_parquet(files["customers"], index=False)
    parameters = {
        "stores": stores,
        "regions": regions,
        "customers": customers,
        "weeks": weeks,
        "seed": seed,
        "start": chain.start.isoformat(),
        "until": None if until is None else until.isoformat(),
    }
    truth = {
        "parameters": parameters,
        "effects": [_effect_dict(e) for e in chain.effects],
        "note": (
            "ground truth of the synthetic chain: per-customer rates in customers.parquet, "
            "store attractiveness and growth in store_truth.parquet"
        ),
    }
    files["truth"].write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    results = ingest(workspace, baskets=files["baskets"], stores=files["stores"])
    con = workspace.connect()
    summary = chain_summary(con)
    con.close()
    seconds = time.perf_counter() - t0
    return {
        "workspace": str(workspace.path),
        "database": str(workspace.path / DB_NAME),
        "seconds": seconds,
        "files": {k: str(v) for k, v in files.items()},
        "parameters": parameters,
        "effects": truth["effects"],
        "ingest": [r.to_dict() for r in results],
        "chain": summary,
    }


def add_pilot_weeks(
    workspace: Workspace,
    parameters: dict[str, Any],
    *,
    start: date,
    end: date,
    effects: list[dict[str, Any]],
) -> dict[str, Any]:
    """Synthesize a pilot's weeks with known effects and ingest them as new data.

    The chain of ``parameters`` (as :func:`build_chain` returns them) is generated again
    with ``effects`` injected from their start; its baskets dated ``start`` to ``end`` are
    written to ``WORKSPACE/generated/pilot_baskets.parquet`` (basket ids prefixed ``P`` so
    they never collide with the history's) and ingested. The history before ``start`` is
    untouched: the design saw exactly the data it was frozen on.
    """
    from loyalty_pilot.pilots.ingest import ingest
    from loyalty_pilot.pilots.synthetic import Effect, generate

    kwargs = {k: parameters[k] for k in ("stores", "regions", "customers", "weeks", "seed")}
    injected = tuple(Effect(**e) for e in effects)
    chain = generate(**kwargs, start=date.fromisoformat(parameters["start"]), effects=injected)
    baskets = chain.baskets
    keep = (baskets["date"] >= pd.Timestamp(start)) & (
        baskets["date"] < pd.Timestamp(end) + pd.Timedelta(days=1)
    )
    pilot = baskets[keep].assign(basket_id="P" + baskets.loc[keep, "basket_id"].astype(str))
    path = workspace.path / "generated" / "pilot_baskets.parquet"
    pilot.to_parquet(path, index=False)
    truth_path = workspace.path / "generated" / "pilot_truth.json"
    truth = {"start": start.isoformat(), "end": end.isoformat(),
             "effects": [_effect_dict(e) for e in injected]}  # fmt: skip
    truth_path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    results = ingest(workspace, baskets=path)
    return {"file": str(path), "ingest": [r.to_dict() for r in results], "truth": truth}


def _effect_dict(effect: Any) -> dict[str, Any]:
    out = asdict(effect)
    out["start"] = effect.start.isoformat()
    out["stores"] = list(effect.stores)
    out["customers"] = list(effect.customers)
    return out
