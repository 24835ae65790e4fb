"""The whole flow, station by station: load -> plan -> call (cached) -> score -> report.

Nothing here computes anything itself; each line is one station. Input is fully validated
before the run directory is created, so bad input never leaves a half-written run behind.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import Experiment, load_experiment
from harness.core.errors import UserError
from harness.core.files import write_json
from harness.core.records import CallSpec, GoldSet, LabelRecord, RunManifest, Setup
from harness.inputs.replay import replay_records
from harness.report.writer import write_reports
from harness.run.cache import LabelCache
from harness.run.calls import Calls, cache_folder, make_providers, run_settings
from harness.run.manifest import build_manifest, new_run_id, now_iso
from harness.run.plan import Plan, make_plan
from harness.run.reply_records import cached_failures
from harness.run.resume import Resume
from harness.run.runner import RunSettings, RunTotals
from harness.run.store import (
    load_run_context,
    read_manifest,
    record_key,
    run_status,
    run_status_block,
)
from harness.score.decision import decide
from harness.score.juries import add_juries
from harness.score.juries import annotate as annotate_juries
from harness.score.metrics_json import score_run
from harness.tasks.labelspace import LabelSpace


@dataclass
class RunResult:
    run_dir: Path
    manifest: RunManifest
    metrics: dict[str, Any] | None
    totals: RunTotals
    # Set by the Python API (harness/api) when the run was logged to MLflow, or why not.
    mlflow_run_id: str | None = None
    tracking_error: UserError | None = None


def prepare(config_path: Path | str) -> Plan:
    """Load and validate everything; raises UserError. This is `prelabel validate`."""
    return make_plan(load_experiment(config_path))


def run_experiment(
    config_path: Path | str,
    *,
    runs_dir: Path | None = None,
    cache_dir: Path | None = None,
    on_record: Callable[[LabelRecord], None] | None = None,
    settings_override: dict[str, Any] | None = None,
    plan: Plan | None = None,
    resume: Resume | None = None,
) -> RunResult:
    """Label, score, report. `plan`: `prepare(config_path)` when the caller has it already
    (a CLI that validates before showing progress), so the input is not loaded, rendered
    and held in memory twice (0.4 s and 230 MB at 100,000 items). `resume`: finish that
    run's folder (`harness.run.resume.open_resume`), making only the labels it lacks."""
    plan = plan or prepare(config_path)
    exp = plan.resolved.experiment
    labels = exp.task.label_names
    replayed = [
        r
        for sid, path in plan.replay_files.items()
        for r in replay_records(sid, path, plan.gold_sets, labels, LabelSpace(exp.task))
    ]
    specs = plan.specs  # what is left to do: all of it, or what a resumed run lacks
    if resume is not None:
        done = resume.done
        specs = [s for s in plan.specs if _spec_key(s) not in done]
        replayed = [r for r in replayed if record_key(r) not in done]

    runs_dir = Path(runs_dir or exp.run.runs_dir)
    cache = LabelCache(cache_folder(cache_dir, exp.run))
    # --retry-failed: cached replies that fail to parse are asked again, so their models
    # need a provider (and its API key checked) too.
    retry_failed = (settings_override or {}).get("retry_failed")
    try:
        refresh = cached_failures(specs, cache, LabelSpace(exp.task)) if retry_failed else {}
        # A missing API key fails before output: no run folder is left behind.
        providers = make_providers(plan, cache, refresh, specs=specs)
        run_dir, manifest = _new_run(plan, runs_dir) if resume is None else _reopen(plan, resume)
    except BaseException:
        cache.close()
        raise
    # Absolute, so that `prelabel report` finds the gold sets from any working directory.
    manifest.config_path = str(plan.resolved.path.resolve())
    write_json(run_dir / "manifest.json", manifest.model_dump(mode="json"))
    if resume is not None:  # after the manifest says who runs the folder now
        resume.rewrite_labels()

    calls = Calls(
        plan,
        specs,
        RunSettings(**run_settings(exp.run), **(settings_override or {})),
        cache=cache,
        labels_file=run_dir / "labels.jsonl",
        on_record=on_record,
        providers=providers,
        prior=resume.records if resume is not None else (),
        replayed=replayed,
    )
    try:
        totals = calls.run()
    except BaseException as exc:
        manifest.status = "interrupted"
        if isinstance(exc, UserError):  # e.g. a provider that never answered: say why
            manifest.error = str(exc)
        manifest.finished_at = now_iso()
        manifest.totals = _totals(_run_totals(calls.totals, resume, calls.records))
        write_json(run_dir / "manifest.json", manifest.model_dump(mode="json"))
        raise
    finally:
        cache.close()
    records = calls.records
    # The calls are made: their specs (rendered messages, ~0.5 kB a call) need not live
    # through scoring, held by whoever holds the plan (the CLI does).
    del calls, specs
    plan.specs = _SpentSpecs()

    manifest.finished_at = now_iso()
    manifest.totals = _totals(_run_totals(totals, resume, records))
    if totals.stopped:
        manifest.status = f"stopped: {totals.stopped}"
        write_json(run_dir / "manifest.json", manifest.model_dump(mode="json"))
        return RunResult(run_dir, manifest, None, totals)
    metrics = score_experiment(exp, plan.gold_sets, plan.setups, records)
    metrics["run_id"] = manifest.run_id
    metrics["experiment"] = exp.name
    manifest.status = "complete"
    write_json(run_dir / "manifest.json", manifest.model_dump(mode="json"))
    write_reports(run_dir, manifest, metrics)
    return RunResult(run_dir, manifest, metrics, totals)


class _SpentSpecs(list):
    """A plan's specs once its run made them: reading them is an error, not an empty plan."""

    def _gone(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this plan's call specs were dropped after its run: prepare it again")

    __len__ = __iter__ = __getitem__ = __contains__ = __bool__ = _gone  # type: ignore[assignment]


def _new_run(plan: Plan, runs_dir: Path) -> tuple[Path, RunManifest]:
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:  # two runs started in the same second may draw the same id: draw again
        run_id = new_run_id(plan.resolved.experiment.name)
        run_dir = runs_dir / run_id
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            continue
    return run_dir, build_manifest(plan, run_id)


def _reopen(plan: Plan, resume: Resume) -> tuple[Path, RunManifest]:
    """This process takes over the run: with the config as it is now (which differs at most
    in how calls are made: harness/run/resume.py), its own pid, and a note of when."""
    # Checked again: another `--resume` may have taken the folder since open_resume.
    if run_status(read_manifest(resume.run_dir)).status == "running":
        raise UserError.at(
            "another process took over this run since it was checked",
            file=resume.run_dir / "manifest.json",
            hint="two processes must not write one run folder; wait for the other to end",
        )
    m, now = resume.manifest, build_manifest(plan, resume.manifest.run_id)
    m.status, m.process, m.finished_at, m.error = "running", now.process, None, None
    m.config, m.config_hash, m.plan_hash = now.config, now.config_hash, now.plan_hash
    m.resumed_at.append(now.started_at)
    return resume.run_dir, m


def _run_totals(session: RunTotals, resume: Resume | None, records: list[LabelRecord]) -> RunTotals:
    """A resumed run's totals are its folder's: labels, cache hits, failures and spend of
    every record in it; requests as counted by each process that could write them down (a
    killed one could not)."""
    if resume is None:
        return session
    t = RunTotals()
    for record in records:
        t.count(record)
    before = resume.manifest.totals
    t.calls = before.get("calls", 0) + session.calls
    t.request_errors = dict(
        Counter(before.get("request_errors") or {}) + Counter(session.request_errors)
    )
    t.stopped, t.limits, t.batches = session.stopped, session.limits, session.batches
    return t


def _spec_key(s: CallSpec) -> tuple[Any, ...]:
    return (s.setup_id, s.gold_set_id, s.item_id, s.sample, s.swapped)


def score_experiment(
    exp: Experiment, gold_sets: list[GoldSet], setups: list[Setup], records: list[LabelRecord]
) -> dict[str, Any]:
    """Every statistic and the recommendation, with the config's report settings."""
    # The labels (a million records at 100,000 items x 10 setups) live through the whole
    # scoring and hold no cycles: out of the collector's sight, its full passes do not walk
    # them again and again while the statistics allocate (seconds at that size).
    gc.freeze()
    try:
        metrics = _score(exp, gold_sets, setups, records)
    finally:
        gc.unfreeze()
    return metrics


def _score(
    exp: Experiment, gold_sets: list[GoldSet], setups: list[Setup], records: list[LabelRecord]
) -> dict[str, Any]:
    # Juries are setups made of their members' labels: added here, before any statistic.
    setups, records, juries = add_juries(
        exp.juries,
        gold_sets,
        setups,
        records,
        exp.task.label_names,
        exp.task.type,
        seed=exp.report.seed,
        reference=exp.report.reference,
    )
    metrics = score_run(
        gold_sets,
        setups,
        records,
        exp.task.label_names,
        n_boot=exp.report.bootstrap,
        task=exp.task,
        target_error=exp.report.target_error,
        delta=exp.report.delta,
        recalibration=exp.report.recalibration,
        alt_test=exp.report.alt_test.model_dump(),
        power=exp.report.power.model_dump(),
        prompt_groups={p.id: p.group for p in exp.prompts if p.group},
        seed=exp.report.seed,
        level=exp.report.level,
        reference=exp.report.reference,
    )
    annotate_juries(metrics, juries)
    return decide(metrics, exp)


def rebuild_report(run_dir: Path) -> dict[str, Any]:
    """`prelabel report RUN_DIR`: recompute metrics and reports from the run's own files,
    scored with the config as it was at run time (stored in the manifest)."""
    ctx = load_run_context(run_dir)
    metrics = score_experiment(ctx.experiment, ctx.gold_sets, ctx.setups, ctx.records)
    metrics["run_id"] = ctx.manifest.run_id
    metrics["experiment"] = ctx.experiment.name
    status = run_status_block(ctx)  # an unfinished run says so, with its missing labels
    if status is not None:
        metrics["run_status"] = status
    write_reports(run_dir, ctx.manifest, metrics)
    return metrics


def _totals(t: RunTotals) -> dict[str, Any]:
    return {
        "labels": t.labels,
        "cached": t.cached,
        "calls": t.calls,
        "failures": dict(t.failures),
        "cost_usd": round(t.cost_usd, 6),
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "stopped": t.stopped,
        "request_errors": dict(sorted(t.request_errors.items())),
        "rate_limits": t.limits,
        # --retry-failed: cached replies that failed to parse, asked again; how many now parse
        **({"retried_failed": t.retried, "retried_recovered": t.recovered} if t.retried else {}),
        **({"batches": t.batches} if t.batches else {}),  # batch mode, per model
    }
