"""`prelabel cache clear --failed --config CONFIG`: remove only the answers that fail to parse.

"Failed" is decided with the config's task (its labels), the same way `run --retry-failed`
decides what to ask again: a reply is text, and whether it holds a label depends on the
label space. Only the keys of CONFIG's calls are looked at, and a reply that parses is never
removed.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import typer

from harness.cli.common import fail, out
from harness.core.errors import UserError


def clear_failed(path: Path | None, config: Path | None, yes: bool, failed: bool) -> None:
    """Whether an answer failed depends on the task's labels, so a config decides."""
    from harness.run.cache import LabelCache
    from harness.run.pipeline import prepare
    from harness.run.reply_records import cached_failures
    from harness.tasks.labelspace import LabelSpace

    if not failed:  # never read as "clear this config's entries": that is not what it does
        fail(
            UserError.at(
                "--config only goes with --failed",
                key="--config",
                hint="prelabel cache clear --failed --config CONFIG",
            )
        )
    if config is None:
        fail(
            UserError.at(
                "--failed needs --config CONFIG: whether an answer failed to parse depends "
                "on the task's labels",
                key="--config",
                hint="prelabel cache clear --failed --config configs/demo.yaml",
            )
        )
    try:
        plan = prepare(config)
    except UserError as exc:
        fail(exc)
    exp = plan.resolved.experiment
    path = path or Path(os.environ.get("PRELABEL_CACHE_DIR") or exp.run.cache_dir)
    if not path.exists():
        out.print(f"{path}: no cache")
        return
    cache = LabelCache(path)
    try:
        keys = cached_failures(plan.specs, cache, LabelSpace(exp.task))
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(Counter(keys.values()).items()))
        ask = f"delete {len(keys)} cached answers that {config} cannot parse ({kinds}) from {path}?"
        if keys and not yes and not typer.confirm(ask):
            raise typer.Exit(1)
        n = sum(cache.delete(key) for key in keys)
    finally:
        cache.close()
    out.print(
        f"removed {n} cached answers that fail to parse" + (f" ({kinds})" if n else ""),
        highlight=False,
    )
