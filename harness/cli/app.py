"""Thin commands over the pipeline: run, validate, report, cache.

Exit codes: 0 success, 1 the run stopped short (budget), 2 bad input or usage.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli import cache as cli_cache
from harness.cli import deploy as cli_deploy
from harness.cli import gate as cli_gate
from harness.cli import labelstudio as cli_labelstudio
from harness.cli import power as cli_power
from harness.cli import progress as cli_progress
from harness.cli.common import (
    ConfigArg,
    MlflowOpt,
    ParquetOpt,
    err,
    fail,
    out,
    run_overrides,
    say_tracked,
    stopped_advice,
    warn,
    warn_grouped,
    warn_if_no_boundary,
)
from harness.cli.leaderboard import print_leaderboard
from harness.core.errors import Problem, UserError
from harness.core.money import usd

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Which LLM pre-labeling setup to deploy, with evidence.",
)
cache_app = typer.Typer(no_args_is_help=True, help="Inspect or clear the label cache.")
app.add_typer(cache_app, name="cache")

CACHE_HELP = "cache folder [$PRELABEL_CACHE_DIR, else .prelabel-cache]"


def default_cache_dir() -> Path:
    """The cache `run` uses without --cache-dir or run.cache_dir."""
    return Path(os.environ.get("PRELABEL_CACHE_DIR") or ".prelabel-cache")


@app.command()
def validate(config: ConfigArg) -> None:
    """Check a config, its gold sets, templates and few-shot pools without calling a model."""
    from harness.run.cache import LabelCache
    from harness.run.plan import prepare

    try:
        plan = prepare(config)
    except UserError as exc:
        fail(exc)
    warn_if_no_boundary(config)
    warn_grouped(plan.gold_sets)
    exp = plan.resolved.experiment
    cache_dir = Path(os.environ.get("PRELABEL_CACHE_DIR") or exp.run.cache_dir)
    uncached = plan.specs
    if cache_dir.exists():
        cache = LabelCache(cache_dir)
        uncached = [s for s in plan.specs if not cache.contains(s.cache_key)]
        cache.close()
    cached = len(plan.specs) - len(uncached)
    # `run` would need these keys for the calls it still has to make.
    needed = {s.model_id for s in uncached}
    missing = [
        Problem(
            f"${m.api_key_env} is not set; model '{m.id}' has calls to make",
            plan.resolved.path,
            plan.resolved.key_lines.get(f"models[{i}].api_key_env"),
            f"models[{i}].api_key_env",
        )
        for i, m in enumerate(exp.models)
        if m.id in needed and m.api_key_env and not os.environ.get(m.api_key_env)
    ]
    if missing:
        fail(UserError(missing, hint="export the variable (keys never go in the config)"))
    items = sum(len(g.items) for g in plan.gold_sets)
    out.print(
        f"OK {config}: {len(plan.gold_sets)} gold set(s), {items} items, "
        f"{len(plan.setups)} setup(s), {len(plan.specs)} calls "
        f"({cached} cached, {len(plan.specs) - cached} to make)"
        + (f", {len(plan.replay_files)} replayed" if plan.replay_files else "")
    )


@app.command("plan")
def plan_command(
    config: ConfigArg,
    cache_dir: Annotated[Path | None, typer.Option(help="label cache [.prelabel-cache]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead")] = False,
    power: cli_power.PowerFlag = False,
    discordance: cli_power.Discordance = None,
    pilot_items: cli_power.PilotItems = None,
    difference: cli_power.Differences = None,
    kappa_difference: cli_power.KappaDifferences = None,
    runs_dir: cli_power.RunsDir = None,
    run_dir: cli_power.RunDir = None,
) -> None:
    """Before anything is spent: calls, cached share, tokens and estimated cost per setup;
    with --power, how many gold items are needed (statistics.md section 8)."""
    import json

    if power:
        return cli_power.plan_power(
            config,
            runs_dir=runs_dir,
            run_dir=run_dir,
            discordance=discordance,
            pilot_items=pilot_items,
            differences=difference,
            kappa_differences=kappa_difference,
            as_json=as_json,
        )

    from harness import api

    try:
        estimate = api.plan(config, cache_dir=cache_dir)  # never creates a cache
    except UserError as exc:
        fail(exc)
    warn_if_no_boundary(config)
    folder = Path(estimate["cache_dir"])
    if as_json:
        typer.echo(json.dumps(estimate, indent=2))
        return
    table = Table(title=f"plan: {config}", title_justify="left")
    cols = ("setup", "calls", "cached", "to call", "input tokens", "output tokens", "cost", "price")
    for col in cols:
        table.add_column(col, justify="left" if col in ("setup", "price") else "right")
    total = estimate["total"]
    unknown = ", ".join(total["cost_unknown_for"])
    for r in [*estimate["setups"], {**total, "setup": "total"}]:
        cost = usd(r["cost_usd"])
        if r["setup"] == "total" and unknown:
            cost += " + unknown"  # the known part, plus what nobody can price
        share = "–" if r["cached_share"] is None else f"{r['cached_share']:.0%}"
        table.add_row(
            r["setup"],
            str(r["calls"]),
            f"{r['cached']} ({share})",
            str(r["to_call"]) + (f" (+{r['shared']} shared)" if r["shared"] else ""),
            f"{r['input_tokens']:,}",
            f"{r['output_tokens']:,}",
            cost if r["to_call"] else "–",
            r.get("price_source") or ("replayed" if r.get("replayed") else ""),
            style="bold" if r["setup"] == "total" else None,
        )
    out.print(table)
    for what, how in estimate["method"].items():
        out.print(f"{what.replace('_', ' ')}: {how}", highlight=False)
    if unknown:
        out.print(f"price unknown for {unknown}", highlight=False)
    for r in estimate["setups"]:
        if r.get("batch") and r["to_call"]:
            live = "unknown" if r["live_cost_usd"] is None else usd(r["live_cost_usd"])
            saving = "unknown" if r["saving_usd"] is None else usd(r["saving_usd"])
            out.print(
                f"batch mode {r['setup']}: {usd(r['cost_usd'])} instead of {live} live, "
                f"saving {saving}; answered within 24 h (run.batch_deadline_h)",
                highlight=False,
            )
    budget = estimate["budget_usd"]
    if budget is not None and unknown:
        out.print(f"run.budget_usd ${budget}: a run stops after its first call to {unknown}")
    elif budget is not None:
        over = "exceeds it: the run stops there" if total["cost_usd"] > budget else "is within it"
        out.print(f"run.budget_usd ${budget}: the estimate {over}")
    if estimate["max_calls"] is not None and total["to_call"] > estimate["max_calls"]:
        out.print(f"run.max_calls {estimate['max_calls']} < {total['to_call']} calls to make")
    none_yet = "" if estimate["cache_exists"] else " (none yet)"
    out.print(f"cache: {folder}{none_yet}", highlight=False)


@app.command()
def run(
    config: ConfigArg,
    runs_dir: Annotated[Path | None, typer.Option(help="where run folders go [runs/]")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="label cache [.prelabel-cache]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress on stderr")] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="ask again the calls whose cached answer fails to parse with this config's "
            "labels (empty answers are never cached: every run asks them again); each new "
            "record keeps the old answer as previous_raw, and the new answer replaces it in "
            "the cache",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="finish an interrupted or stopped run in its own folder instead of starting "
            "a new one: RUN, else the newest such run of this experiment",
        ),
    ] = False,
    resume_run: Annotated[
        Path | None, typer.Argument(metavar="RUN", help="with --resume: the run folder")
    ] = None,
    mlflow: MlflowOpt = False,
    parquet: ParquetOpt = False,
) -> None:
    """Label every gold item with every setup (cached), score, and write the reports."""
    from harness import api
    from harness.run.pipeline import prepare
    from harness.run.resume import open_resume

    try:
        plan = prepare(config)  # validate before any progress bar or run folder appears
        if resume_run is not None and not resume:
            raise UserError.at(
                "a run folder was given without --resume",
                file=resume_run,
                hint=f"finish that run with `prelabel run {config} --resume {resume_run}`",
            )
        runs = Path(runs_dir or plan.resolved.experiment.run.runs_dir)
        resumed = open_resume(plan, runs, resume_run) if resume else None
    except UserError as exc:
        fail(exc)
    warn_if_no_boundary(config)
    warn_grouped(plan.gold_sets)
    total = len(plan.specs) + sum(len(g.items) for g in plan.gold_sets) * len(plan.replay_files)
    total -= len(resumed.records) if resumed else 0  # already in the folder
    start = time.perf_counter()
    progress, on_record = cli_progress.progress_for(total, quiet, err)
    try:
        with progress or _Null():
            result = api.run(
                config,
                runs_dir=runs_dir,
                cache_dir=cache_dir,
                on_record=on_record,
                plan=plan,
                settings_override=run_overrides(retry_failed, quiet),
                resume=resumed,
                mlflow=mlflow,
                parquet=parquet,
            )
    except UserError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print(
            "interrupted: every label received so far is cached; finish this run with "
            f"`prelabel run {config} --resume`",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(130) from None
    say_tracked(result.mlflow_run_id, result.tracking_error)
    t = result.totals
    if resumed:
        err.print(
            f"resumed {result.run_dir}: it had {len(resumed.records)} labels", highlight=False
        )
    err.print(
        f"{t.labels} labels ({t.cached} from cache, {t.calls} calls, "
        f"{sum(t.failures.values())} failures) in {time.perf_counter() - start:.1f} s; "
        f"spend {usd(t.cost_usd)}",
        highlight=False,
    )
    for what, counts in (("failures", t.failures), ("failed requests", t.request_errors)):
        if counts:  # each kind: records that ended failed; requests that failed, retried or not
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            err.print(f"{what}: {kinds}", highlight=False)
    if retry_failed:
        err.print(
            f"--retry-failed: asked {t.retried} failed answers again, {t.recovered} now parse",
            highlight=False,
        )
    if result.metrics is None:
        err.print(
            f"[yellow]stopped: {t.stopped}[/] {stopped_advice(t.stopped)} and continue this "
            f"run: prelabel run {config} --resume {result.run_dir}",
            highlight=False,
        )
        raise typer.Exit(1)
    print_leaderboard(result.metrics)
    rec = result.metrics.get("recommendation")
    if rec:
        pick = rec.get("recommended")
        head = f"recommended: {pick}" if pick else "recommended: none"
        out.print(f"{head}. {rec.get('reason', '')}", highlight=False)
    out.print(
        f"reports: {result.run_dir}/report.html, report.md, metrics.json, labels.jsonl"
        f"{' (and .parquet)' if parquet else ''}, manifest.json"
    )


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a folder under runs/")]) -> None:
    """Rebuild metrics.json, report.md and report.html from a run's labels, without any model
    call."""
    from harness.run.pipeline import rebuild_report

    try:
        metrics = rebuild_report(run_dir)
    except UserError as exc:
        fail(exc)
    print_leaderboard(metrics)
    if "run_status" in metrics:  # not finished: missing labels were scored as failures
        warn(metrics["run_status"]["message"])
    out.print(f"rewrote {run_dir}/metrics.json, report.md and report.html", highlight=False)


@cache_app.command("info")
def cache_info(path: Annotated[Path | None, typer.Argument(help=CACHE_HELP)] = None) -> None:
    """How many replies a cache holds and its size on disk."""
    path = path or default_cache_dir()
    from harness.run.cache import LabelCache

    if not path.exists():
        out.print(f"{path}: no cache")
        return
    cache = LabelCache(path)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    out.print(f"{path}: {len(cache)} cached replies, {size / 1e6:.1f} MB")
    cache.close()


@cache_app.command("clear")
def cache_clear(
    path: Annotated[Path | None, typer.Argument(help=CACHE_HELP)] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed",
            help="remove only the replies to CONFIG's calls that fail to parse with its "
            "labels (needs --config); every reply that parses, and every other entry, stays",
        ),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="with --failed: the experiment YAML")
    ] = None,
) -> None:
    """Delete every cached reply (the next run pays for every label again), or with
    --failed --config CONFIG only the answers that CONFIG cannot parse (what `run
    --retry-failed` would ask again)."""
    from harness.run.cache import LabelCache

    if failed or config:
        from harness.cli.clear import clear_failed

        clear_failed(path, config, yes, failed)
        return
    path = path or default_cache_dir()
    if not path.exists():
        out.print(f"{path}: no cache")
        return
    if not yes and not typer.confirm(f"delete every cached label in {path}?"):
        raise typer.Exit(1)
    cache = LabelCache(path)
    n = cache.clear()
    cache.close()
    out.print(f"removed {n} cached replies")


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


cli_gate.register(app)
cli_cache.register(cache_app)
cli_deploy.register(app)
cli_labelstudio.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
