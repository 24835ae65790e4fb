"""`prelabel plan CONFIG --power`: how many gold items to tell setups apart (statistics.md
section 8), from the latest evaluation run of the config or from a pilot's figures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.common import fail, out
from harness.core.errors import UserError

# The options `prelabel plan` takes for --power (declared here to keep app.py short).
PowerFlag = Annotated[
    bool,
    typer.Option(
        "--power",
        help="how many gold items to tell setups apart (accuracy: McNemar; kappa), from the "
        "latest run of this config, or from a pilot's --discordance",
    ),
]
Discordance = Annotated[
    float | None,
    typer.Option(help="--power from a pilot: share of items exactly one setup gets right"),
]
PilotItems = Annotated[int | None, typer.Option(help="--power: the pilot's size")]
Differences = Annotated[
    list[float] | None, typer.Option(help="--power: accuracy difference(s) to tell apart")
]
KappaDifferences = Annotated[
    list[float] | None, typer.Option(help="--power: kappa difference(s) to tell apart")
]
RunsDir = Annotated[Path | None, typer.Option(help="--power: run folders [runs/]")]
RunDir = Annotated[Path | None, typer.Option("--run", help="--power: this run, not the latest")]


def _check_options(
    discordance: float | None,
    pilot_items: int | None,
    differences: list[float] | None,
    kappa_differences: list[float] | None,
) -> None:
    problems = []
    if discordance is not None and not (0.0 < discordance <= 1.0):
        problems.append(f"--discordance must be in (0, 1], got {discordance}")
    if pilot_items is not None and discordance is None:
        problems.append("--pilot-items goes with --discordance (the pilot's size)")
    if pilot_items is not None and pilot_items < 1:
        problems.append(f"--pilot-items must be >= 1, got {pilot_items}")
    for name, values in (("--difference", differences), ("--kappa-difference", kappa_differences)):
        bad = [v for v in values or [] if not (0.0 < v < 1.0) or math.isnan(v)]
        if bad:
            problems.append(f"{name} must be between 0 and 1 (exclusive), got {bad}")
    if problems:
        fail(
            UserError.at(
                "; ".join(problems),
                key="plan --power",
                hint="e.g. `prelabel plan CONFIG --power --discordance 0.2 --difference 0.05`",
            )
        )


def plan_power(
    config: Path,
    *,
    runs_dir: Path | None,
    run_dir: Path | None,
    discordance: float | None,
    pilot_items: int | None,
    differences: list[float] | None,
    kappa_differences: list[float] | None,
    as_json: bool,
) -> None:
    """Print the plan; a missing run with no pilot is explained (exit 0), bad options exit 2."""
    # Imported here, as every command does: `prelabel --help` and `validate` start fast.
    from harness.deploy.routing import latest_evaluation
    from harness.run.plan import prepare
    from harness.run.power import NOTHING_TO_PLAN_FROM, power_from_pilot, power_from_run

    _check_options(discordance, pilot_items, differences, kappa_differences)
    try:
        plan = prepare(config)
    except UserError as exc:
        fail(exc)
    exp = plan.resolved.experiment
    cfg = exp.report.power.model_dump()
    if differences:
        cfg["accuracy_differences"] = differences
    if kappa_differences:
        cfg["kappa_differences"] = kappa_differences
    n_setups = len(plan.setups)
    result: dict[str, Any] | None
    try:
        if discordance is not None:
            result = power_from_pilot(discordance, pilot_items, n_setups * (n_setups - 1) // 2, cfg)
        else:
            runs = Path(runs_dir or exp.run.runs_dir)
            if run_dir is None:
                try:
                    run_dir = latest_evaluation(runs, exp.name)
                except UserError:
                    run_dir = None
            result = power_from_run(run_dir, cfg) if run_dir is not None else None
    except UserError as exc:
        fail(exc)
    if result is None:
        why = NOTHING_TO_PLAN_FROM.format(name=exp.name, runs=runs, config=config)
        if as_json:
            typer.echo(json.dumps({"power": None, "reason": why}, indent=2))
        else:
            out.print(why, highlight=False, markup=False)
        return
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    from harness.report.power_md import power_lines

    source = "a pilot" if result["source"] == "pilot" else f"run {result['run_id']}"
    out.print(f"How many gold items, planned from {source}:", highlight=False, markup=False)
    for p in result["plans"]:
        out.print("", markup=False)
        if p.get("gold_set"):
            out.print(f"gold set {p['gold_set']}", style="bold", highlight=False, markup=False)
        for line in power_lines(p):
            out.print(line, highlight=False, markup=False)
