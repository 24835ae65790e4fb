"""`prelabel run CONFIG --resume [RUN]`: finish an interrupted or stopped run in its own folder.

Which folder: RUN, else the newest interrupted or stopped run of this experiment under the
runs folder. Refused (a UserError, exit 2, before anything is written) when the run is
complete, when its process still runs (or ran on another host, which this machine cannot
check), or when anything that decides its labels changed since it started: the config
(apart from the settings that only say how to call: concurrency, timeout, retries, limits,
prices, the key's variable, where runs and the cache live), a prompt template, a gold set,
or the calls themselves (few-shot pools, guidelines, replay files: `plan_hash`). Labels made
with other inputs must not be scored together with these.

What the folder already holds is kept: the first record of each (setup, gold_set, item,
sample, swapped), whole lines only (a kill may have torn the last one), except a failure
that has no answer (the provider never replied: a resume is the time to ask again; an
answer that did not parse is kept, `--retry-failed` re-asks those); the pipeline makes the
rest through the cache (harness/run/pipeline.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.files import write_text
from harness.core.records import LabelRecord, RunManifest
from harness.run.manifest import plan_hash
from harness.run.plan import Plan
from harness.run.store import read_labels, read_manifest, record_key, run_status

# Settings that change how calls are made, never what a model answers or how it is scored.
RUN_KEYS = {
    "concurrency",
    "timeout_s",
    "retries",
    "budget_usd",
    "max_calls",
    "cache_dir",
    "runs_dir",
}
MODEL_KEYS = {"rpm", "tpm", "api_key_env", "input_cost_per_mtok", "output_cost_per_mtok"}


@dataclass
class Resume:
    run_dir: Path
    manifest: RunManifest
    lines: list[str]  # the lines of labels.jsonl kept, in order
    records: list[LabelRecord]  # their records

    @property
    def done(self) -> set[tuple[Any, ...]]:
        return {record_key(r) for r in self.records}

    def rewrite_labels(self) -> None:
        """labels.jsonl with the kept lines only, each whole (temp file + rename: a kill now
        leaves the old file or the new one): a torn last line would otherwise glue onto the
        first record appended."""
        text = "".join(line + "\n" for line in self.lines)
        write_text(self.run_dir / "labels.jsonl", text, fsync=True)


def open_resume(plan: Plan, runs_dir: Path, run_dir: Path | None) -> Resume:
    """The run to finish, checked; raises UserError naming the file and what to do."""
    exp = plan.resolved.experiment
    run_dir = run_dir or latest_resumable(runs_dir, exp.name)
    manifest = read_manifest(run_dir)
    where = run_dir / "manifest.json"
    state = run_status(manifest)
    new_run = f"prelabel run {plan.resolved.path}"
    if state.status == "complete":
        raise UserError.at(
            f"run {manifest.run_id} is complete: nothing to resume",
            file=where,
            hint=f"`prelabel report {run_dir}` rebuilds its reports; `{new_run}` starts a new run",
        )
    if state.status == "running":
        raise UserError.at(
            f"run {manifest.run_id} {state.detail}",
            file=where,
            hint="wait for it to finish or stop it first (two processes must not write one "
            "run folder)"
            + ("; resume it on its own host" if state.alive is None and manifest.process else ""),
        )
    _check_inputs(plan, manifest, where)
    seen: set[tuple[Any, ...]] = set()
    lines, records = [], []
    for line, record in read_labels(run_dir / "labels.jsonl"):
        if record.failure and record.raw is None and record.setup not in plan.replay_files:
            continue  # no answer ever arrived (connection, timeout, 5xx...): ask again
        key = record_key(record)
        if key not in seen:  # a record twice (never written so, but cheap to be sure): once
            seen.add(key)
            lines.append(line)
            records.append(record)
    return Resume(run_dir, manifest, lines, records)


def latest_resumable(runs_dir: Path, name: str) -> Path:
    """The newest interrupted or stopped run of experiment `name` (ids start with a time)."""
    for d in sorted(runs_dir.glob(f"*-{name}-*"), reverse=True):
        try:
            manifest = read_manifest(d)
        except UserError:
            continue  # not an evaluation run folder (a label run, a stray folder)
        # The glob also matches "<name>-v2" runs: the manifest says whose run it is.
        status = run_status(manifest).status
        if manifest.config.get("name") == name and (
            status == "interrupted" or status.startswith("stopped")
        ):
            return d
    raise UserError.at(
        f"no interrupted or stopped run of experiment '{name}' to resume",
        file=runs_dir,
        hint="name the run folder (--resume runs/<run-id>), or run without --resume to "
        "start a new run (labels already cached cost nothing)",
    )


def _check_inputs(plan: Plan, manifest: RunManifest, where: Path) -> None:
    resolved = plan.resolved
    hint = (
        f"a resumed run keeps the labels it has, so its inputs must not change; start a new "
        f"run instead: `prelabel run {resolved.path}` (labels already cached cost nothing)"
    )
    then = _decisive(manifest.config)
    now = _decisive(resolved.experiment.model_dump(mode="json"))
    changed = [
        k for k in sorted(then.keys() | now.keys()) if _canon(then.get(k)) != _canon(now.get(k))
    ]
    if changed:
        raise UserError.at(
            f"the config changed since run {manifest.run_id}: {', '.join(changed[:5])}",
            file=resolved.path,
            line=resolved.key_lines.get(changed[0]),
            key=changed[0],
            hint=hint,
        )
    for pid, template in plan.templates.items():
        if manifest.prompt_hashes.get(pid) != template.content_hash:
            raise UserError.at(
                f"prompt '{pid}' changed since run {manifest.run_id}",
                file=template.path,
                hint=hint,
            )
    for gold in plan.gold_sets:
        if manifest.gold_set_hashes.get(gold.id) != gold.content_hash:
            raise UserError.at(
                f"gold set '{gold.id}' changed since run {manifest.run_id}",
                file=gold.path,
                hint=hint,
            )
    if manifest.plan_hash and manifest.plan_hash != plan_hash(plan):
        raise UserError.at(
            f"the calls this config makes changed since run {manifest.run_id} (a few-shot "
            "pool, the guidelines, a replay file or a local model's weights)",
            file=resolved.path,
            hint=hint,
        )


def _decisive(config: dict[str, Any]) -> dict[str, Any]:
    """The config as leaf keys ("task.labels", "models[0].params.temperature") without the
    settings that only say how calls are made (RUN_KEYS, MODEL_KEYS)."""
    flat: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        else:
            flat[path] = value

    walk(config, "")
    return {k: v for k, v in flat.items() if not _operational(k)}


def _operational(key: str) -> bool:
    m = re.fullmatch(r"run\.(\w+)|models\[\d+\]\.(\w+)", key)
    return m is not None and (m[1] in RUN_KEYS if m[1] else m[2] in MODEL_KEYS)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
