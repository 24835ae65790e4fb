"""`prelabel plan CONFIG --power`: how many gold items, planned from the latest evaluation
run of the config (its gold sets' stored `power` basis, recomputed with the config's
`report.power` as it is now) or from a pilot's discordance rate (statistics.md section 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.score.power import basis_from_metrics, pilot_basis, power_block

NOTHING_TO_PLAN_FROM = (
    "no complete evaluation run of '{name}' in {runs} and no pilot figure: nothing to plan "
    "from. Either run `prelabel run {config}` first (the plan then uses how often its two "
    "most accurate setups disagree), or give a pilot's figure: `prelabel plan {config} "
    "--power --discordance RATE [--pilot-items N]`, RATE being the share of items on "
    "which exactly one of two setups is right (e.g. 0.2)"
)


def power_from_run(run_dir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """One plan per gold set of the run's metrics.json."""
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError.at(
            f"cannot read the run's metrics: {exc}",
            file=path,
            hint="pass another run with --run, or plan from a pilot with --discordance",
        ) from exc
    plans = []
    for gs in metrics.get("gold_sets") or []:
        basis = basis_from_metrics(gs)
        if basis is None:
            basis = {"refused": "no two setups were compared on this gold set", "n": 0}
        plans.append({"gold_set": gs.get("id"), **power_block(basis, cfg)})
    return {"source": str(run_dir), "run_id": metrics.get("run_id", run_dir.name), "plans": plans}


def power_from_pilot(
    discordance: float, pilot_items: int | None, pairs: int, cfg: dict[str, Any]
) -> dict[str, Any]:
    """The plan from a pilot's discordance rate (and its size, for the detectable
    difference); Holm over the `pairs` of setups the config compares."""
    block = power_block(pilot_basis(discordance, pilot_items, max(1, pairs)), cfg)
    return {"source": "pilot", "run_id": None, "plans": [{"gold_set": None, **block}]}
