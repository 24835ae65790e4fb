"""What every command module shares: the consoles, the config argument, the exit-2 path."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.core.errors import UserError
from harness.core.paths import no_boundary_warning

# soft_wrap: never break a message inside a path (`file:line` must stay greppable in CI logs).
# Without a terminal (CI logs, pipes) rich assumes 80 columns and squeezes the leaderboard;
# a log has no width limit, so give tables room there.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)
out = Console(soft_wrap=True, width=_WIDTH)

ConfigArg = Annotated[Path, typer.Argument(help="experiment YAML, e.g. configs/demo.yaml")]


def warn(message: str) -> None:
    """On stderr, like an error, but the command goes on (e.g. a run that did not finish)."""
    err.print("[bold yellow]warning[/]", end=": ")
    err.print(message, markup=False, highlight=False)


def warn_if_no_boundary(config: Path) -> None:
    """Once per command that reads a config's files (run, validate, plan, gate, label): a
    config outside any git work tree may read any file, which its owner should know."""
    message = no_boundary_warning(config) if config.is_file() else None
    if message:
        warn(message)


def fail(exc: UserError) -> None:
    err.print("[bold red]error[/]", end=": ")
    err.print(str(exc), markup=False, highlight=False)
    raise typer.Exit(2)


STOPPED = {
    "budget": "run.budget_usd reached; labels so far are cached. Raise run.budget_usd",
    "max_calls": "run.max_calls reached; labels so far are cached. Raise run.max_calls",
    "batch_deadline": "run.batch_deadline_h passed while batches were still running at the "
    "provider; their ids are kept beside the cache, and nothing is sent twice. Later",
}


def stopped_advice(reason: str | None) -> str:
    """What a run stopped short by `reason` means, ending where "continue this run" fits."""
    return STOPPED.get(reason or "", "labels so far are cached. When the cause is fixed")


MlflowOpt = Annotated[
    bool,
    typer.Option(
        "--mlflow",
        help="log this run to MLflow (tracking.mlflow in the config, else $MLFLOW_TRACKING_URI "
        "and the config's name as the experiment)",
    ),
]


ParquetOpt = Annotated[
    bool,
    typer.Option(
        "--parquet", help="also write the labels (and a label run's prelabels) as Parquet"
    ),
]


def warn_grouped(gold_sets: list) -> None:
    """Gold sets whose items look grouped while no cluster_by is set (statistics.md 3)."""
    for gold in gold_sets:
        if gold.grouping_warning:
            warn(gold.grouping_warning)


def say_tracked(run_id: str | None, error: UserError | None) -> None:
    """The MLflow run a command logged, or why logging failed (the run itself stands)."""
    if run_id:
        err.print(f"mlflow: logged as run {run_id}", highlight=False)
    if error is not None:
        warn(str(error))


def run_overrides(retry_failed: bool, quiet: bool) -> dict | None:
    """RunSettings fields from `run`'s options; --quiet silences batch progress lines too."""
    out: dict = {"retry_failed": True} if retry_failed else {}
    if quiet:
        out["progress"] = lambda line: None
    return out or None
