"""A run read back from its folder: manifest, label records, the config as it was at run
time, its gold sets (checked against the hashes the run recorded), and its state: whether it
finished, and if not, how many of the labels it was to make are missing."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import Experiment, ResolvedExperiment
from harness.core.errors import Problem, UserError
from harness.core.records import GoldSet, LabelRecord, RunManifest, Setup, compact_record
from harness.inputs.goldset import load_gold_set
from harness.run.manifest import process_alive
from harness.run.plan import build_setups
from harness.tasks import task_type
from harness.tasks.labelspace import LabelSpace


def record_key(record: LabelRecord) -> tuple[Any, ...]:
    """What a run holds one label record of: (setup, gold_set, item, sample, swapped)."""
    return (record.setup, record.gold_set, record.item, record.sample, record.swapped)


@dataclass
class RunState:
    """Where a run stands. `status` is the manifest's, except that a "running" run whose
    process is gone is "interrupted" (a kill -9 leaves "running" on disk)."""

    status: str
    # Why, for a run that says "running": "its process (pid 42 on host ci) is gone" when
    # interrupted, else how it runs, e.g. "is still running (pid 42 on host ci)".
    detail: str | None = None
    alive: bool | None = None  # "running": its process lives (None: cannot check here)
    expected: dict[str, int] = field(default_factory=dict)  # labels per setup the plan makes
    present: dict[str, int] = field(default_factory=dict)  # distinct labels in labels.jsonl

    @property
    def missing(self) -> dict[str, int]:
        return {
            s: n - self.present.get(s, 0)
            for s, n in self.expected.items()
            if n > self.present.get(s, 0)
        }

    @property
    def incomplete(self) -> bool:
        return self.status != "complete" or bool(self.missing)


def run_status(manifest: RunManifest) -> RunState:
    """The status of a run as it stands now (no counts); see RunState."""
    if manifest.status != "running":
        return RunState(manifest.status)
    proc = manifest.process or {}
    who = f"pid {proc.get('pid')} on host {proc.get('host')}"
    alive = process_alive(manifest.process)
    if alive is False:
        return RunState("interrupted", f"its process ({who}) is gone", False)
    if alive:
        return RunState("running", f"is still running ({who})", True)
    if not proc:
        return RunState("running", "is marked running, with no process recorded (cannot check)")
    return RunState("running", f"is running on host {proc.get('host')} (cannot check from here)")


def expected_labels(
    experiment: Experiment, gold_sets: list[GoldSet], setups: list[Setup]
) -> dict[str, int]:
    """Label records per setup a complete run holds: items x samples (x 2 for pairwise
    tasks shown in both orders); a replayed setup has one per item."""
    models = {m.id: m for m in experiment.models}
    items = sum(len(g.items) for g in gold_sets)
    orders = task_type(experiment.task.type).presentations(experiment.task)
    return {
        s.id: items
        if not models[s.model_id].kind.called
        else items * experiment.run.samples * orders
        for s in setups
    }


@dataclass
class RunContext:
    run_dir: Path
    manifest: RunManifest
    records: list[LabelRecord]
    experiment: Experiment
    gold_sets: list[GoldSet]
    setups: list[Setup]
    state: RunState


def load_run_context(run_dir: Path) -> RunContext:
    manifest, records = load_run(run_dir)
    # The config as it was at run time (stored in the manifest), not as it is now.
    try:
        experiment = Experiment.model_validate(manifest.config)
    except ValueError as exc:
        raise UserError.at(
            f"the config stored in the manifest no longer validates: {str(exc).splitlines()[0]}",
            file=run_dir / "manifest.json",
            hint="the run was made by another prelabel version; rerun the experiment",
        ) from None
    resolved = ResolvedExperiment(experiment, Path(manifest.config_path), "")
    space = LabelSpace(experiment.task)
    gold_sets = []
    for cfg in experiment.gold_sets:
        gold = load_gold_set(cfg, resolved.resolve(cfg.path), experiment.task.label_names, space)
        if gold.content_hash != manifest.gold_set_hashes.get(cfg.id):
            raise UserError.at(
                f"gold set '{cfg.id}' changed since run {manifest.run_id}",
                file=gold.path,
                hint="rerun the experiment to score the new gold set",
            )
        gold_sets.append(gold)
    setups = build_setups(resolved)
    state = run_status(manifest)
    manifest.status = state.status  # reports show the run as it stands, not as a kill left it
    state.expected = expected_labels(experiment, gold_sets, setups)
    for key in {record_key(r) for r in records}:
        state.present[key[0]] = state.present.get(key[0], 0) + 1
    return RunContext(run_dir, manifest, records, experiment, gold_sets, setups, state)


def resume_command(ctx: RunContext) -> str:
    return shlex.join(["prelabel", "run", ctx.manifest.config_path, "--resume", str(ctx.run_dir)])


def run_status_block(ctx: RunContext) -> dict[str, Any] | None:
    """metrics.json's `run_status` and the console warning, for a run that is not complete
    (None for a complete one): labels missing from it count as failures when scored."""
    st = ctx.state
    if not st.incomplete:
        return None
    expected, missing = sum(st.expected.values()), sum(st.missing.values())
    run = f"run {ctx.manifest.run_id}"
    if st.status == "running":
        head = f"{run} {st.detail}"
    elif st.status == "interrupted":
        head = f"{run} was interrupted" + (f" ({st.detail})" if st.detail else "")
    elif st.status == "complete":
        head = f"{run} is marked complete, but labels.jsonl lacks labels"
    else:
        head = f"{run} stopped short ({st.status})"
    by_setup = ", ".join(f"{s} {n}" for s, n in st.missing.items())
    message = (
        f"{head}: {missing} of {expected} expected labels (setups x items x samples) are "
        "missing" + (f" ({by_setup})" if by_setup else "") + "; scored, each missing label "
        "counts as a failure, as if the model had not answered."
    )
    command = None if st.alive or st.status == "complete" else resume_command(ctx)
    if st.alive:
        message += " Wait for it to finish, then rebuild the report."
    elif st.status == "running":
        message += f" If that process is gone, finish the run on its host with: {command}"
    elif command:
        message += f" Finish it with: {command}"
    return {
        "status": st.status,
        "detail": st.detail,
        "incomplete": True,
        "expected_labels": expected,
        "missing_labels": missing,
        "missing_by_setup": st.missing,
        "resume_command": command,
        "message": message,
    }


def load_run(run_dir: Path) -> tuple[RunManifest, list[LabelRecord]]:
    """Read a run directory back; a torn last line (a killed run) is skipped, not fatal."""
    manifest = read_manifest(run_dir)
    return manifest, [record for _, record in read_labels(run_dir / "labels.jsonl")]


def read_manifest(run_dir: Path) -> RunManifest:
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise UserError.at(
            "not a run directory (no manifest.json)",
            file=run_dir,
            hint="pass a folder under runs/ written by `prelabel run`",
        )
    try:
        manifest = RunManifest.model_validate_json(manifest_path.read_bytes())
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise UserError.at(
            f"unreadable manifest: {str(exc).splitlines()[0]}",
            file=manifest_path,
            hint="manifest.json was edited, truncated, or written by another prelabel version",
        ) from None
    return manifest


def read_labels(labels_path: Path) -> list[tuple[str, LabelRecord]]:
    """Each whole line of labels.jsonl with its record; a torn last line is skipped."""
    records: list[tuple[str, LabelRecord]] = []
    problems: list[Problem] = []
    try:
        text = labels_path.read_text(encoding="utf-8") if labels_path.exists() else ""
    except UnicodeDecodeError as exc:
        raise UserError.at(
            f"labels.jsonl is not UTF-8 (byte {exc.start})",
            file=labels_path,
            hint="labels.jsonl was edited or corrupted",
        ) from None
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # Compact as a new run's records are (harness/core/records.py): a resumed run and
            # `prelabel report` hold them all through scoring.
            records.append((line, compact_record(LabelRecord.model_validate_json(line))))
        except ValueError as exc:
            if lineno == len(lines):
                continue  # the line a kill interrupted
            problems.append(
                Problem(f"unreadable label record: {str(exc).splitlines()[0]}", labels_path, lineno)
            )
    if problems:
        raise UserError(problems, hint="labels.jsonl was edited or corrupted")
    return records
