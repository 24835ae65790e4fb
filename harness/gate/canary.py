"""Drift canary: ask a small fixed subset again, bypassing the cache, and compare with the
labels stored when they were first paid for. A provider that changes the model behind a
name shows up as labels that flip at temperature 0.

The subset is fixed (the first N items by a hash of their id), so successive canaries
re-ask the same items and stay comparable. The shared cache is never written: fresh
replies go to a scratch cache, so the canary cannot replace a label somebody paid for.
A fresh call that fails (timeout, rate limit) is not drift: it is counted apart.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.records import LabelRecord
from harness.run.cache import LabelCache
from harness.run.calls import Calls, cache_folder, run_settings
from harness.run.pipeline import prepare
from harness.run.runner import RunSettings, to_record
from harness.tasks.labelspace import LabelSpace


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion: sensible at k = 0 and small n."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _subset(item_ids: list[str], n: int) -> set[str]:
    return set(sorted(item_ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())[:n])


def run_canary(
    config: Path, cache_dir: Path | None = None, items: int | None = None
) -> dict[str, Any]:
    plan = prepare(config)
    exp = plan.resolved.experiment
    n_items = exp.gate.canary_items if items is None else items
    subset = {g.id: _subset([it.id for it in g.items], n_items) for g in plan.gold_sets}
    specs = [s for s in plan.specs if s.sample == 0 and s.item_id in subset[s.gold_set_id]]
    folder = cache_folder(cache_dir, exp.run)
    if not folder.exists():
        raise UserError.at(
            "no label cache to compare with",
            file=folder,
            hint=f"run `prelabel run {config}` first; the canary compares with its stored labels",
        )
    cache = LabelCache(folder)
    try:
        stored = {s.cache_key: cache.get(s.cache_key) for s in specs}
    finally:
        cache.close()
    asked = [s for s in specs if stored[s.cache_key] is not None]
    space = LabelSpace(exp.task)
    fresh: list[LabelRecord] = []
    if asked:
        # cache=None: asked again, never read from the shared cache nor written to it.
        # caps=False: run.budget_usd and run.max_calls bound a full run; the canary's subset
        # is small and fixed (gate.canary_items per gold set).
        # A UserError (e.g. a provider that never answered) is raised: no drift verdict.
        calls = Calls(plan, asked, RunSettings(**run_settings(exp.run, caps=False)), cache=None)
        calls.run()
        fresh = calls.records
    by_key = {r.cache_key: r for r in fresh}
    rows = []
    for setup in plan.setups:
        mine = [s for s in asked if s.setup_id == setup.id]
        if not mine and not any(s.setup_id == setup.id for s in specs):
            continue  # replayed labels: no provider to ask again
        flips, failed, compared, examples = 0, 0, 0, []
        for spec in mine:
            new = by_key.get(spec.cache_key)
            if new is None or (new.failure is not None and new.raw is None):
                failed += 1  # no reply at all (timeout, outage...): not drift; parse failures are
                continue
            old = to_record(
                spec, stored[spec.cache_key], space, cached=True, attempts=0, started=0.0
            )
            compared += 1
            if new.label != old.label:
                flips += 1
                if len(examples) < 10:
                    examples.append({"item": spec.item_id, "stored": old.label, "now": new.label})
        low, high = wilson(flips, compared)
        limit = exp.gate.canary_max_flip_rate
        rows.append(
            {
                "setup": setup.id,
                "n": compared,
                "flips": flips,
                "flip_rate": flips / compared if compared else None,
                "low": None if math.isnan(low) else low,
                "high": None if math.isnan(high) else high,
                "failed_calls": failed,
                "not_stored": sum(1 for s in specs if s.setup_id == setup.id) - len(mine),
                "verdict": "drift"
                if compared and low > limit
                else ("ok" if compared else "no data"),
                "examples": examples,
            }
        )
    return {
        "config": str(config),
        "items_per_gold_set": n_items,
        "max_flip_rate": exp.gate.canary_max_flip_rate,
        "calls": len(asked),
        "setups": rows,
        # Nothing compared is no evidence of health: say so, and exit 1 like drift.
        "verdict": "drift"
        if any(r["verdict"] == "drift" for r in rows)
        else ("ok" if any(r["verdict"] == "ok" for r in rows) else "no data"),
    }
