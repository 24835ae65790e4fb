"""Thin commands over the pipeline: run, validate, report, cache.

Exit codes: 0 success, 1 the run stopped short (budget), 2 bad input or usage.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness import cli_deploy, cli_gate, cli_labelstudio
from harness.cli_common import ConfigArg, err, fail, out
from harness.errors import Problem, UserError
from harness.report.markdown_format import by_kappa

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
    from harness.cache import LabelCache
    from harness.pipeline import prepare

    try:
        plan = prepare(config)
    except UserError as exc:
        fail(exc)
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
) -> None:
    """Before anything is spent: calls, cached share, tokens and estimated cost per setup."""
    import json

    from harness.cache import LabelCache
    from harness.estimate import estimate_plan
    from harness.pipeline import prepare

    try:
        plan = prepare(config)
    except UserError as exc:
        fail(exc)
    exp = plan.resolved.experiment
    folder = Path(cache_dir or os.environ.get("PRELABEL_CACHE_DIR") or exp.run.cache_dir)
    cache = LabelCache(folder) if folder.exists() else None  # never creates a cache
    try:
        # As the runner sees it: an entry that does not read as a reply is a miss.
        estimate = estimate_plan(plan, lambda key: cache is not None and cache.get(key) is not None)
    finally:
        if cache is not None:
            cache.close()
    estimate["cache_dir"] = str(folder)
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
        cost = "unknown" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
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
    budget = estimate["budget_usd"]
    if budget is not None and unknown:
        out.print(f"run.budget_usd ${budget}: a run stops after its first call to {unknown}")
    elif budget is not None:
        over = "exceeds it: the run stops there" if total["cost_usd"] > budget else "is within it"
        out.print(f"run.budget_usd ${budget}: the estimate {over}")
    if estimate["max_calls"] is not None and total["to_call"] > estimate["max_calls"]:
        out.print(f"run.max_calls {estimate['max_calls']} < {total['to_call']} calls to make")
    out.print(f"cache: {folder}" + ("" if cache is not None else " (none yet)"), highlight=False)


@app.command()
def run(
    config: ConfigArg,
    runs_dir: Annotated[Path | None, typer.Option(help="where run folders go [runs/]")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="label cache [.prelabel-cache]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Label every gold item with every setup (cached), score, and write the reports."""
    from harness.pipeline import prepare, run_experiment

    try:
        plan = prepare(config)  # validate before any progress bar or run folder appears
    except UserError as exc:
        fail(exc)
    total = len(plan.specs) + sum(len(g.items) for g in plan.gold_sets) * len(plan.replay_files)
    start = time.perf_counter()
    progress, on_record = _progress(total, quiet)
    try:
        with progress or _Null():
            result = run_experiment(
                config, runs_dir=runs_dir, cache_dir=cache_dir, on_record=on_record, plan=plan
            )
    except UserError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print(
            "interrupted: every label received so far is cached; run the same command to resume"
        )
        raise typer.Exit(130) from None
    t = result.totals
    err.print(
        f"{t.labels} labels ({t.cached} from cache, {t.calls} calls, "
        f"{sum(t.failures.values())} failures) in {time.perf_counter() - start:.1f} s; "
        f"spend ${t.cost_usd:.4f}",
        highlight=False,
    )
    for what, counts in (("failures", t.failures), ("failed requests", t.request_errors)):
        if counts:  # each kind: records that ended failed; requests that failed, retried or not
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            err.print(f"{what}: {kinds}", highlight=False)
    if result.metrics is None:
        key = "run.max_calls" if t.stopped == "max_calls" else "run.budget_usd"
        err.print(
            f"[yellow]stopped: {t.stopped}[/] {key} reached; labels so far are cached. "
            f"Raise {key} and run again to continue. ({result.run_dir})"
        )
        raise typer.Exit(1)
    print_leaderboard(result.metrics)
    rec = result.metrics.get("recommendation")
    if rec:
        pick = rec.get("recommended")
        head = f"recommended: {pick}" if pick else "recommended: none"
        out.print(f"{head}. {rec.get('reason', '')}", highlight=False)
    out.print(
        f"reports: {result.run_dir}/report.html, report.md, metrics.json, labels.jsonl, "
        "manifest.json"
    )


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a folder under runs/")]) -> None:
    """Rebuild metrics.json and report.md from a run's labels, without any model call."""
    from harness.pipeline import rebuild_report

    try:
        metrics = rebuild_report(run_dir)
    except UserError as exc:
        fail(exc)
    print_leaderboard(metrics)
    out.print(f"rewrote {run_dir}/metrics.json and report.md")


@cache_app.command("info")
def cache_info(path: Annotated[Path | None, typer.Argument(help=CACHE_HELP)] = None) -> None:
    """How many replies a cache holds and its size on disk."""
    path = path or default_cache_dir()
    from harness.cache import LabelCache

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
) -> None:
    """Delete every cached reply (the next run pays for every label again)."""
    from harness.cache import LabelCache

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


def print_leaderboard(metrics: dict[str, Any]) -> None:
    for gs in metrics["gold_sets"]:
        level = round(metrics["bootstrap"]["level"] * 100)
        table = Table(
            title=f"{gs['id']}: {gs['humans']['n_items']} items, human alpha "
            f"{_f(gs['humans']['krippendorff_alpha']['value'])}",
            title_justify="left",
        )
        for col in (
            "setup",
            "n",
            f"kappa [{level}% CI]",
            f"accuracy [{level}% CI]",
            "macro-F1",
            "coverage",
            "kappa/ceiling",
            "ECE",
        ):
            table.add_column(col, justify="left" if col == "setup" else "right")
        rows = by_kappa(gs["setups"])
        for b in rows:
            cal = b["calibration"]
            table.add_row(
                b["setup"],
                str(b["n_items"]),
                _iv(b["kappa"]),
                _iv(b["accuracy"]),
                _f(b["macro_f1"]["estimate"]),
                _f(b["coverage"]["value"]),
                _f(b["human_ceiling"]["ratio_kappa"], 2),
                _f(cal["ece"]["estimate"]) if cal else "–",
            )
        base = gs.get("baseline")  # structured tasks have one per part, in report.md
        if base:
            table.add_row(
                f"majority class ({base['label']})",
                str(base["n_items"]),
                "0.000",
                _iv(base["accuracy"]),
                _f(base["macro_f1"]["estimate"]),
                "1.000",
                "–",
                "–",
                style="dim",
            )
        out.print(table)


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _iv(iv: dict[str, Any]) -> str:
    if iv["estimate"] is None:
        return "–"
    return f"{iv['estimate']:.3f} [{_f(iv['low'])}, {_f(iv['high'])}]"


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(total: int, quiet: bool) -> tuple[Any, Any]:
    if quiet or not sys.stderr.isatty():
        return None, None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("labeling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
        transient=False,
    )
    task = progress.add_task("label", total=total, status="")
    counts = {"cached": 0, "failed": 0, "cost": 0.0}

    def on_record(record: Any) -> None:
        counts["cached"] += record.cached
        counts["failed"] += record.failure is not None
        counts["cost"] += (record.cost_usd or 0.0) if not record.cached else 0.0
        progress.update(
            task,
            advance=1,
            status=f"cached {counts['cached']} · failed {counts['failed']} · ${counts['cost']:.4f}",
        )

    return progress, on_record


cli_gate.register(app)
cli_deploy.register(app)
cli_labelstudio.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
