"""Commands that use the chosen pre-labeler: label (and, with Label Studio, export/audit)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import ConfigArg, err, fail, out, warn, warn_if_no_boundary
from harness.core.errors import UserError
from harness.report.markdown_format import fmt_iv


def label(
    config: ConfigArg,
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="unlabeled items, JSONL or CSV with an id")
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
) -> None:
    """Pre-label new items with the evaluated setup; route each to accept or review."""
    from harness.deploy.label import run_label

    warn_if_no_boundary(config)
    try:
        if ray is not None:  # before the run folder: without Ray there is nothing to start
            from harness.deploy.ray_shards import require_ray

            require_ray()
        result = run_label(
            config,
            input_path,
            setup=setup,
            evaluation_dir=run,
            runs_dir=runs_dir,
            cache_dir=cache_dir,
            budget=budget,
            blind_share=blind_share,
            audit_share=audit_share,
            seed=seed,
            on_warning=warn,
            ray=ray,
        )
    except UserError as exc:
        fail(exc)
    ev, rows = result.evaluation, result.rows
    accepted = sum(r["route"] == "accept" for r in rows)
    err.print(f"{len(rows)} items ({result.cached} labels from cache, {result.calls} calls)")
    threshold = (
        "none (no threshold met the target)" if ev.threshold is None else f"{ev.threshold:.4f}"
    )
    out.print(
        f"setup {ev.setup} ({ev.why}, evaluation {ev.run_id}); threshold {threshold} on "
        f"{ev.confidence_kind} confidence\n"
        f"accept {accepted}, review {len(rows) - accepted}; review queue {len(result.queue)} "
        f"items ({sum(q['blind'] for q in result.queue)} blind)\n"
        f"written: {result.run_dir}/prelabels.jsonl, review_queue.jsonl, estimates.json, "
        "labels.jsonl, manifest.json",
        highlight=False,
    )
    est = result.estimates
    out.print(
        f"label shares in the pool (n={len(rows)}; corrected with gold set "
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
