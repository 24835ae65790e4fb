"""Commands that compare runs: baseline save, compare, gate, canary.

Exit codes of `gate`: 0 no regression (warnings included), 1 a regression or a baseline
that no longer compares (changed model or gold set), 2 bad input or usage. `compare` decides
nothing: 0 whenever the comparison was made, 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.common import (
    ConfigArg,
    MlflowOpt,
    err,
    fail,
    out,
    say_tracked,
    warn,
    warn_if_no_boundary,
)
from harness.core.errors import UserError
from harness.report.markdown_format import fmt_iv

baseline_app = typer.Typer(no_args_is_help=True, help="Save a run as the baseline to gate on.")

RunDir = Annotated[Path, typer.Argument(help="a folder under runs/")]


def _texts(ctx: Any) -> dict[str, dict[str, str]]:
    """Item text per gold set, for flipped items in summaries."""
    return {
        g.id: {it.id: " / ".join(str(v) for v in it.fields.values()) for it in g.items}
        for g in ctx.gold_sets
    }


def _load(run_dir: Path) -> Any:
    """A run read back; one that did not finish says so on stderr: its missing labels
    count as failures in what follows."""
    from harness.run.store import load_run_context, run_status_block

    ctx = load_run_context(run_dir)
    status = run_status_block(ctx)
    if status is not None:
        warn(status["message"])
    return ctx


def _boot(exp: Any) -> dict[str, Any]:
    return {"n_boot": exp.report.bootstrap, "seed": exp.report.seed, "level": exp.report.level}


@baseline_app.command("save")
def baseline_save(
    run_dir: RunDir,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="[baselines/<experiment>.json]")
    ] = None,
) -> None:
    """Write a small file to commit: each setup's labels, failure rate, cost and hashes."""
    from harness.gate.baseline import save_baseline, snapshot

    try:
        ctx = _load(run_dir)
        data = snapshot(ctx)
    except UserError as exc:
        fail(exc)
    path = output or Path("baselines") / f"{ctx.experiment.name}.json"
    save_baseline(data, path)
    n = sum(len(g["items"]) for g in data["gold_sets"].values())
    out.print(f"baseline: {path} ({len(data['setups'])} setups, {n} gold items)", highlight=False)


def _compare_and_report(
    base: dict[str, Any],
    ctx: Any,
    summary: Path | None,
    junit: Path | None,
    as_json: Path | None,
    compare: bool = False,
) -> dict[str, Any]:
    from harness.gate.baseline import snapshot
    from harness.gate.regression import compare_snapshots
    from harness.report.gate_md import summary_markdown, write_junit

    exp = ctx.experiment
    result = compare_snapshots(base, snapshot(ctx), exp.gate, _boot(exp), _texts(ctx))
    text = summary_markdown(result, compare=compare)
    for path, write in (
        (summary, lambda p: p.write_text(text, encoding="utf-8")),
        (junit, lambda p: write_junit(result, p)),
        (as_json, lambda p: p.write_text(json.dumps(result, indent=1), encoding="utf-8")),
    ):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
    out.print(text, markup=False, highlight=False)
    return result


SummaryOpt = Annotated[Path | None, typer.Option(help="write the Markdown summary here")]
JunitOpt = Annotated[Path | None, typer.Option(help="write JUnit XML here")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="write the comparison as JSON")]


def compare(
    run_a: Annotated[Path, typer.Argument(help="run A: the run folder to compare from")],
    run_b: Annotated[Path, typer.Argument(help="run B: the run folder compared with A")],
    summary: SummaryOpt = None,
    as_json: JsonOpt = None,
) -> None:
    """Per-setup changes from RUN_A to RUN_B with paired intervals, and the flipped items.

    A comparison informs and decides nothing: exit 0 whenever the comparison was made,
    whatever changed (`prelabel gate` exits 1 on a regression); 2 on bad input."""
    from harness.gate.baseline import snapshot

    try:
        base = snapshot(_load(run_a))
        _compare_and_report(base, _load(run_b), summary, None, as_json, compare=True)
    except UserError as exc:
        fail(exc)


def gate(
    config: ConfigArg,
    baseline: Annotated[Path, typer.Option(help="baseline file from `prelabel baseline save`")],
    summary: SummaryOpt = None,
    junit: JunitOpt = None,
    as_json: JsonOpt = None,
    runs_dir: Annotated[Path | None, typer.Option(help="where run folders go [runs/]")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="label cache [.prelabel-cache]")] = None,
    mlflow: MlflowOpt = False,
) -> None:
    """Run what changed, compare with the baseline; exit 1 on a regression.

    Everything unchanged comes from the cache. Exit 0: pass or warn; 1: a regression, or a
    baseline that no longer compares; 2: bad input."""
    from harness import api
    from harness.api.tracking import log_run, mlflow_settings
    from harness.gate.baseline import load_baseline
    from harness.run.store import load_run_context

    try:
        base = load_baseline(baseline)  # a bad baseline fails before anything is spent
        warn_if_no_boundary(config)
        result = api.run(config, runs_dir=runs_dir, cache_dir=cache_dir, track=False)
        t = result.totals
        err.print(
            f"{t.labels} labels ({t.cached} from cache, {t.calls} calls); run {result.run_dir}",
            highlight=False,
        )
        if result.metrics is None:
            err.print(f"[red]gate: the run stopped short ({t.stopped}); nothing to compare[/]")
            raise typer.Exit(1)
        ctx = load_run_context(result.run_dir)
        verdict = _compare_and_report(base, ctx, summary, junit, as_json)["verdict"]
    except UserError as exc:
        fail(exc)
    settings = mlflow_settings(ctx.experiment.tracking.mlflow, mlflow)
    if settings is not None:  # after the verdict, so that MLflow has it as a tag
        run_id, problem = None, None
        try:
            tags = {"prelabel.gate_verdict": str(verdict), "prelabel.baseline": str(baseline)}
            run_id = log_run(
                result.run_dir,
                settings,
                command="gate",
                experiment=ctx.experiment.name,
                tags=tags,
            )
        except UserError as exc:
            problem = exc
        say_tracked(run_id, problem)
    from harness.gate.regression import FAILING

    raise typer.Exit(1 if verdict in FAILING else 0)


def canary(
    config: ConfigArg,
    items: Annotated[
        int | None, typer.Option(help="items per gold set [gate.canary_items]")
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="label cache [.prelabel-cache]")] = None,
    as_json: JsonOpt = None,
) -> None:
    """Re-ask a fixed subset bypassing the cache; exit 1 if labels drifted.

    Drift: a setup's flip rate against its stored labels is above
    gate.canary_max_flip_rate beyond noise (the low end of its Wilson interval)."""
    from harness.gate.canary import run_canary

    try:
        result = run_canary(config, cache_dir, items)
    except UserError as exc:
        fail(exc)
    if as_json:
        as_json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    for r in result["setups"]:
        rate = fmt_iv({"estimate": r["flip_rate"], "low": r["low"], "high": r["high"]})
        out.print(
            f"{r['setup']}: {r['verdict']}; flipped {r['flips']} of {r['n']} ({rate}, "
            f"limit {result['max_flip_rate']}); failed calls {r['failed_calls']}, "
            f"never stored {r['not_stored']}",
            highlight=False,
        )
        for e in r["examples"]:
            out.print(f"  {e['item']}: stored {e['stored']!r}, now {e['now']!r}", highlight=False)
    if result["verdict"] == "no data":
        err.print("[red]canary: nothing could be compared (no stored labels for this subset)[/]")
    raise typer.Exit(0 if result["verdict"] == "ok" else 1)


def register(app: typer.Typer) -> None:
    """Called by harness.cli.app on its own `app` (also when it runs as __main__)."""
    app.add_typer(baseline_app, name="baseline")
    for command in (compare, gate, canary):
        app.command()(command)
