"""The Python API (api station): what the CLI does, as calls a notebook can make.

    import harness
    ev = harness.evaluate("configs/demo.yaml")          # label (cached), score, report
    ev.leaderboard, ev.recommendation, ev.to_pandas()   # in Jupyter `ev` shows as a table
    harness.load_run("runs/20261204-...-demo-1a2b")     # a finished run read back
    harness.label("configs/demo.yaml", items)           # pre-label new items: Labelled
    harness.plan("configs/demo.yaml")                   # calls, tokens and cost, no call made

`config` is a path to a YAML config or a dict of the same shape (its relative paths are
then relative to the current directory); `overrides` is a dict merged into it key by key
(`{"run": {"concurrency": 4}}`). Bad input raises the same `UserError` the CLI prints, with
the file, line or key and a hint; nothing here exits the process. `prelabel run` and
`prelabel plan` are built on these functions.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.api.evaluation import Evaluation, Interval, LeaderboardRow
from harness.api.labelled import Labelled, label
from harness.api.tracking import log_run, mlflow_settings
from harness.core.errors import UserError
from harness.core.records import LabelRecord

__all__ = [
    "Evaluation",
    "Interval",
    "Labelled",
    "LeaderboardRow",
    "UserError",
    "config_file",
    "evaluate",
    "label",
    "load_label",
    "load_run",
    "plan",
    "run",
]

Config = str | os.PathLike[str] | Mapping[str, Any]


def evaluate(
    config: Config,
    *,
    runs_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    mlflow: bool = False,
    parquet: bool = False,
) -> Evaluation:
    """Label every gold item with every setup (through the cache), score, write the
    reports to a new run folder, and return it read back. A run a cap stopped short
    (run.budget_usd, run.max_calls, a batch deadline) raises UserError naming the folder
    and how to finish it. With `tracking.mlflow` in the config or `mlflow=True` the run is
    logged to MLflow (`Evaluation.mlflow_run_id`); if that fails, a warning says why."""
    result = run(
        config,
        runs_dir=runs_dir,
        cache_dir=cache_dir,
        overrides=overrides,
        mlflow=mlflow,
        parquet=parquet,
    )
    if result.tracking_error is not None:
        import warnings

        warnings.warn(str(result.tracking_error), stacklevel=2)
    if result.metrics is None:
        raise UserError.at(
            f"the run stopped short ({result.totals.stopped}); labels so far are cached",
            file=result.run_dir,
            hint="raise the cap and finish it: `prelabel run CONFIG --resume RUN`",
        )
    evaluation = Evaluation(result.run_dir)
    evaluation.mlflow_run_id = result.mlflow_run_id
    return evaluation


def run(
    config: Config,
    *,
    runs_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    on_record: Callable[[LabelRecord], None] | None = None,
    settings_override: dict[str, Any] | None = None,
    plan: Any = None,
    resume: Any = None,
    mlflow: bool = False,
    track: bool = True,
    parquet: bool = False,
) -> Any:
    """`evaluate` one level down, as `prelabel run` uses it: returns the pipeline's
    `RunResult` (run_dir, manifest, metrics or None when stopped short, totals), with the
    hooks the CLI needs (progress, --retry-failed, --resume, a plan it has already made).
    The run is logged to MLflow when the config has `tracking.mlflow` or `mlflow` is true
    (`track=False`: the caller logs it, e.g. `gate` with its verdict); a tracking failure
    does not undo the run: it is in `tracking_error`."""
    from harness.run.pipeline import run_experiment

    if parquet:
        from harness.core.parquet import require_pyarrow

        require_pyarrow()
    with config_file(config, overrides) as path:
        result = run_experiment(
            path,
            runs_dir=Path(runs_dir) if runs_dir is not None else None,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            on_record=on_record,
            settings_override=settings_override,
            plan=plan,
            resume=resume,
        )
    if parquet:  # beside labels.jsonl; a run stopped short has its labels so far
        from harness.core.parquet import write_parquet_copies

        write_parquet_copies(result.run_dir, ("labels.jsonl",))
    exp = result.manifest.config
    settings = mlflow_settings(_tracking(exp), mlflow)
    if settings is not None and track:
        try:
            result.mlflow_run_id = log_run(
                result.run_dir, settings, command="run", experiment=exp["name"]
            )
        except UserError as exc:
            result.tracking_error = exc
    return result


def _tracking(config: dict[str, Any]) -> Any:
    """The config's `tracking.mlflow` block (as stored in the manifest), or None."""
    from harness.config import MlflowConfig

    block = (config.get("tracking") or {}).get("mlflow")
    return None if block is None else MlflowConfig.model_validate(block)


def load_run(path: str | os.PathLike[str]) -> Evaluation:
    """A finished run folder (runs/<id>) read back."""
    return Evaluation(Path(path))


def load_label(path: str | os.PathLike[str]) -> Labelled:
    """A finished label run folder (runs/<id>-label-...) read back."""
    return Labelled(Path(path))


def plan(
    config: Config,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Calls, cached share, tokens and estimated cost per setup before anything is spent:
    the content of `prelabel plan CONFIG --json`. The cache is read, never created."""
    from harness.run.cache import LabelCache
    from harness.run.estimate import estimate_plan
    from harness.run.plan import prepare

    with config_file(config, overrides) as path:
        made = prepare(path)
    exp = made.resolved.experiment
    folder = Path(cache_dir or os.environ.get("PRELABEL_CACHE_DIR") or exp.run.cache_dir)
    cache = LabelCache(folder) if folder.exists() else None
    try:
        # As the runner sees it: an entry that does not read as a reply is a miss.
        estimate = estimate_plan(made, lambda key: cache is not None and cache.get(key) is not None)
    finally:
        if cache is not None:
            cache.close()
    estimate["cache_dir"] = str(folder)
    estimate["cache_exists"] = cache is not None
    return estimate


@contextlib.contextmanager
def config_file(config: Config, overrides: Mapping[str, Any] | None = None) -> Iterator[Path]:
    """A config path as the pipeline reads it. A path without overrides is used as it is.
    A dict, or overrides, become a YAML file for the call's duration: beside the given
    config (so its relative paths still point where they did), or in the current directory
    for a dict (so relative paths are relative to it, as they read in a notebook)."""
    import yaml

    if not isinstance(config, Mapping) and not overrides:
        yield Path(config)
        return
    if isinstance(config, Mapping):
        data, folder = copy.deepcopy(dict(config)), Path.cwd()
    else:
        from harness.config.load import load_experiment

        source = Path(config)
        resolved = load_experiment(source)  # its errors name the user's file and line
        data, folder = yaml.safe_load(resolved.text), source.absolute().parent
    merged = _merge(data, overrides or {})
    fd, name = tempfile.mkstemp(prefix=".prelabel-api-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(merged, f, sort_keys=False, allow_unicode=True)
        _check(Path(name), "the config dict" if isinstance(config, Mapping) else config)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _check(path: Path, given: Any) -> None:
    """Validate the file made from a dict or overrides now, so that an error names what the
    caller gave (and the key), not a temporary file that is gone by the time it is read."""
    from harness.config.load import load_experiment

    try:
        load_experiment(path)
    except UserError as exc:
        where = given if isinstance(given, str) else f"{given} with overrides"
        for problem in exc.problems:
            if problem.file is not None and Path(problem.file) == path:
                problem.file, problem.line = where, None
        raise


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` into `base`, mapping by mapping; any other value (a list too) replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
