"""A finished run read back from its folder: manifest, label records, the config as it was at
run time, and its gold sets (checked against the hashes the run recorded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config import Experiment, ResolvedExperiment
from harness.errors import UserError
from harness.goldset import load_gold_set
from harness.labelspace import LabelSpace
from harness.plan import build_setups
from harness.records import GoldSet, LabelRecord, RunManifest, Setup


@dataclass
class RunContext:
    run_dir: Path
    manifest: RunManifest
    records: list[LabelRecord]
    experiment: Experiment
    gold_sets: list[GoldSet]
    setups: list[Setup]


def load_run_context(run_dir: Path) -> RunContext:
    from harness.report import load_run

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
    return RunContext(run_dir, manifest, records, experiment, gold_sets, build_setups(resolved))
