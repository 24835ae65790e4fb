"""Commands that use the chosen pre-labeler: label (and, with Label Studio, export/audit)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import (
    ConfigArg,
    MlflowOpt,
    ParquetOpt,
    err,
    fail,
    out,
    say_tracked,
    warn,
    warn_if_no_boundary,
)
from harness.core.errors import UserError
from harness.report.markdown_format import fmt_iv


def label(
    config: ConfigArg,
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="unlabeled items with an id: JSONL, CSV, Parquet, or a saved HF dataset folder",
        ),
    ],
    setup: Annotated[
        str | None, typer.Option(help="setup id [the evaluation's recommendation]")
    ] = None,
    run: Annotated[
        Path | None, typer.Option("--run", help="evaluation run [the latest of this config]")
    ] = None,
    budget: Annotated[
        int | None, typer.Option(help="put only the N most useful items in the review queue")
    ] = None,
    blind_share: Annotated[
        float, typer.Option(min=0, max=1, help="review items sent without the pre-label")
    ] = 0.1,
    audit_share: Annotated[
        float, typer.Option(min=0, max=1, help="accepted items also sent blind, to audit")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="for the blind and audit samples")] = 0,
    runs_dir: Annotated[Path | None, typer.Option(help="where run folders go [runs/]")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="label cache [.prelabel-cache]")] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="make the calls as Ray tasks: local (a Ray instance on this machine), auto "
            "(this machine's cluster) or a cluster address (ray://head:10001); needs "
            "prelabel[ray]",
        ),
    ] = None,
    parquet: ParquetOpt = False,
    mlflow: MlflowOpt = False,
) -> None:
    """Pre-label new items with the evaluated setup; route each to accept or review."""
    from harness.api.labelled import label as label_items

    warn_if_no_boundary(config)
    try:
        if ray is not None:  # before the run folder: without Ray there is nothing to start
            from harness.deploy.ray_shards import require_ray

            require_ray()
        result = label_items(
            config,
            input_path,
            setup=setup,
            evaluation=run,
            runs_dir=runs_dir,
            cache_dir=cache_dir,
            budget=budget,
            blind_share=blind_share,
            audit_share=audit_share,
            seed=seed,
            on_warning=warn,
            ray=ray,
            parquet=parquet,
            mlflow=mlflow,
        )
    except UserError as exc:
        fail(exc)
    m, c = result.manifest, result.counts
    err.print(f"{c['items']} items ({result.cached} labels from cache, {result.calls} calls)")
    threshold = (
        "none (no threshold met the target)"
        if result.threshold is None
        else f"{result.threshold:.4f}"
    )
    also = " (and .parquet)" if parquet else ""
    out.print(
        f"setup {result.setup} ({m['setup_chosen_by']}, evaluation {m['evaluation_run']}); "
        f"threshold {threshold} on {m['confidence']} confidence\n"
        f"accept {c['accept']}, review {c['review']}; review queue {c['queue']} "
        f"items ({c['blind_in_queue']} blind)\n"
        f"written: {result.run_dir}/prelabels.jsonl, review_queue.jsonl, labels.jsonl{also}, "
        "estimates.json, manifest.json",
        highlight=False,
    )
    if result.mlflow_run_id:
        say_tracked(result.mlflow_run_id, None)
    est = result.estimates
    out.print(
        f"label shares in the pool (n={c['items']}; corrected with gold set "
        f"{est['gold_set']}, prediction-powered inference, 95% intervals):",
        highlight=False,
    )
    for row in est["labels"]:
        p, naive = row["ppi"], row["naive_llm_only"]
        out.print(
            f"  {row['label']}: {fmt_iv(p, bracket='always')} (n_gold={p['n_gold']}); "
            f"LLM alone says {fmt_iv(naive, bracket='always')}",
            highlight=False,
        )
    if est.get("small_n"):
        out.print(f"  note: {est['small_n']['message']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(label)
