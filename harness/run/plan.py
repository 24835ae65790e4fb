"""Plan: load everything a run needs, expand setups x items x samples into call specs.

Everything that can be wrong with the input is found here, before any model is called and
before anything is written: `prelabel validate` is exactly this station.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.config import (
    ModelConfig,
    PromptConfig,
    ResolvedExperiment,
    TaskConfig,
    load_experiment,
)
from harness.core.errors import Problem, UserError
from harness.core.paths import OUTSIDE_HINT, allowed_roots, outside_message
from harness.core.records import CallSpec, GoldItem, GoldSet, Setup
from harness.inputs.goldset import load_gold_set, load_pool, read_text_file
from harness.inputs.pii import masker_for
from harness.inputs.prompts import (
    FewShotSelector,
    PromptTemplate,
    load_template,
    pool_overlap,
    render,
)
from harness.inputs.replay import read_replay
from harness.inputs.tables import saved_dataset
from harness.run.cache_keys import cache_key, model_fingerprint
from harness.tasks.labelspace import LabelSpace

# Params that change how a call is made, not what it answers: never part of a cache key.
NON_OUTPUT_PARAMS = frozenset(
    {
        "timeout",
        "request_timeout",
        "num_retries",
        "max_retries",
        "stream",
        "metadata",
        "user",
        "api_key",
        "api_base",
        "base_url",
        "extra_headers",
        "headers",
        "mock_response",
        "n_threads",
    }
)
LOCAL_DEFAULT_MAX_TOKENS = 24
CHARS_PER_TOKEN = 4  # rough, for the pre-run estimate only; real counts come from providers


@dataclass
class Plan:
    resolved: ResolvedExperiment
    gold_sets: list[GoldSet]
    setups: list[Setup]
    specs: list[CallSpec]
    templates: dict[str, PromptTemplate] = field(default_factory=dict)
    replay_files: dict[str, Path] = field(default_factory=dict)  # setup id -> labels file
    pii: dict[str, dict[str, Any]] = field(default_factory=dict)  # model id -> masking summary
    builder: SpecBuilder | None = None  # to plan calls for new items (`prelabel label`)

    @property
    def models(self) -> dict[str, ModelConfig]:
        return {m.id: m for m in self.resolved.experiment.models}


def replay_path(model: ModelConfig) -> str:
    """The labels file of a replayed model (`replay/<path>`), as the config wrote it."""
    return model.model.removeprefix(model.kind.prefix)


def build_setups(resolved: ResolvedExperiment) -> list[Setup]:
    exp = resolved.experiment
    models = {m.id: m for m in exp.models}
    pairs: list[tuple[str | None, str, str | None]] = []
    if exp.setups:
        pairs = [(s.prompt, s.model, s.confidence) for s in exp.setups]
    else:
        for m in exp.models:
            if not m.kind.called:
                pairs.append((None, m.id, None))
            else:
                pairs.extend((p.id, m.id, None) for p in exp.prompts)
    setups = []
    for prompt_id, model_id, confidence in pairs:
        source = confidence or models[model_id].confidence
        if not models[model_id].kind.called:
            setups.append(Setup(id=model_id, prompt_id=None, model_id=model_id, confidence=source))
        elif prompt_id is None:
            raise UserError.at(
                f"setup with model '{model_id}' needs a prompt", file=resolved.path, key="setups"
            )
        else:
            setups.append(
                Setup(
                    id=f"{prompt_id}@{model_id}",
                    prompt_id=prompt_id,
                    model_id=model_id,
                    confidence=source,
                )
            )
    seen = [s.id for s in setups]
    dupes = sorted({s for s in seen if seen.count(s) > 1})
    if dupes:
        raise UserError.at(f"setups repeat {dupes}", file=resolved.path, key="setups")
    return setups


def referenced_files(resolved: ResolvedExperiment) -> list[tuple[str, str, Path | str]]:
    """(key path, what, value) of every file the config names, for one existence check."""
    exp = resolved.experiment
    refs: list[tuple[str, str, Path | str]] = [
        (f"gold_sets[{i}].path", "gold set", g.path) for i, g in enumerate(exp.gold_sets)
    ]
    if exp.task.guidelines_file:
        refs.append(("task.guidelines_file", "guidelines file", exp.task.guidelines_file))
    for i, p in enumerate(exp.prompts):
        refs.append((f"prompts[{i}].template", "prompt template", p.template))
        if p.few_shot:
            refs.append((f"prompts[{i}].few_shot.pool", "few-shot pool", p.few_shot.pool))
    for i, m in enumerate(exp.models):
        if not m.kind.called:
            refs.append((f"models[{i}].model", "replay labels file", replay_path(m)))
    return refs


def check_files_exist(resolved: ResolvedExperiment) -> None:
    """Name the config key of every missing file, or file outside the project (core/paths.py),
    at once, before reading any of them."""
    problems, outside = [], []
    roots = allowed_roots(resolved.path)
    for key, what, value in referenced_files(resolved):
        path = resolved.resolve(value)
        message = roots and outside_message(what, value, resolved.base, roots)
        if message:
            outside.append(Problem(message, resolved.path, None, key))
        elif not path.is_file() and not (what == "gold set" and saved_dataset(path)):
            # (a gold set may be a folder: a Hugging Face dataset saved with save_to_disk)
            state = "is a directory" if path.is_dir() else "does not exist"
            problems.append(Problem(f"{what} {path} {state}", resolved.path, None, key))
    if problems or outside:
        lines = resolved.key_lines
        for p in problems + outside:
            p.line = lines.get(p.key)
        hint = "paths in a config are relative to the config file"
        raise UserError(outside + problems, hint=f"{OUTSIDE_HINT}; {hint}" if outside else hint)


def check_models(resolved: ResolvedExperiment) -> None:
    for i, model in enumerate(resolved.experiment.models):
        if model.kind.model_file is None:
            continue
        try:
            model.kind.model_file(model.model, resolved.base)
        except UserError as exc:
            key = f"models[{i}].model"
            raise UserError(
                [
                    Problem(p.message, resolved.path, resolved.key_lines.get(key), key)
                    for p in exc.problems
                ],
                exc.hint,
            ) from None


def prepare(config_path: Path | str) -> Plan:
    """Load and validate everything; raises UserError. This is `prelabel validate`, and
    imports nothing that scores or calls (validate and plan start in well under 2 s)."""
    return make_plan(load_experiment(config_path))


def make_plan(resolved: ResolvedExperiment) -> Plan:
    exp = resolved.experiment
    labels = exp.task.label_names
    check_files_exist(resolved)
    check_models(resolved)
    space = LabelSpace(exp.task)
    gold_sets = [load_gold_set(g, resolved.resolve(g.path), labels, space) for g in exp.gold_sets]
    guidelines = _guidelines(resolved)
    setups = build_setups(resolved)
    templates = {p.id: load_template(resolved.resolve(p.template)) for p in exp.prompts}
    selectors = {p.id: _selector(resolved, p, gold_sets) for p in exp.prompts if p.few_shot}
    models = {m.id: m for m in exp.models}
    label_specs = [lab.model_dump() for lab in exp.task.labels]
    task = {
        "type": exp.task.type,
        "name": exp.task.name,
        "axes": [
            {
                "name": a.name,
                "description": a.description,
                "levels": [lab.model_dump() for lab in a.labels],
            }
            for a in exp.task.axes
        ],
    }

    maskers = {m.id: masker_for(m.mask_pii) for m in exp.models}  # None: sent as written
    builder = SpecBuilder(
        resolved, space, templates, selectors, label_specs, guidelines, task, maskers
    )
    specs: list[CallSpec] = []
    replay_files: dict[str, Path] = {}
    for setup in setups:
        model = models[setup.model_id]
        if not model.kind.called:
            path = resolved.resolve(replay_path(model))
            read_replay(path)  # every bad line is found by `validate`, before any call
            replay_files[setup.id] = path
            continue
        for gold in gold_sets:
            specs += builder.specs(setup, gold)
    pii = {mid: m.summary() for mid, m in maskers.items() if m is not None}
    return Plan(resolved, gold_sets, setups, specs, templates, replay_files, pii, builder)


@dataclass
class SpecBuilder:
    """Everything that turns (setup, item) into the calls to make: also used by
    `prelabel label` on new items, so they are asked exactly as the gold items were."""

    resolved: ResolvedExperiment
    space: LabelSpace
    templates: dict[str, PromptTemplate]
    selectors: dict[str, FewShotSelector]
    label_specs: list[dict[str, Any]]
    guidelines: str
    task: dict[str, Any]
    maskers: dict[str, Any]

    def specs(self, setup: Setup, gold: GoldSet, samples: int | None = None) -> list[CallSpec]:
        exp = self.resolved.experiment
        model = {m.id: m for m in exp.models}[setup.model_id]
        template = self.templates[setup.prompt_id]
        params = output_params(model)
        constrained = wants_schema(model)
        top = model.top_logprobs if wants_logprobs(model) else None
        selector = self.selectors.get(setup.prompt_id)
        fingerprint = model_fingerprint(model, self.resolved.base)
        masker = self.maskers.get(model.id)
        out: list[CallSpec] = []
        # The messages before the last (the system prompt, shared examples) are mostly the
        # same for every item: one copy each, not one per call (~0.4 kB a call). Providers
        # copy messages before sending, so sharing is safe; the memo stays small.
        shared: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
        for item in gold.items:
            examples = selector.select(item) if selector else []
            sent = masker.item(item) if masker else item  # what this model may see
            examples = [masker.item(e, example=True) for e in examples] if masker else examples
            schema = self.space.response_schema(item.fields) if constrained else None
            candidates = (
                self.space.candidate_ids(item.fields) if self.space.task.uses_candidates else None
            )
            for shown, swapped in presentations(exp.task, sent, gold):
                messages = render(
                    template,
                    shown,
                    labels=self.label_specs,
                    guidelines=self.guidelines,
                    examples=examples,
                    task=self.task,
                )
                messages = _shared(messages, shared)
                for sample in range(exp.run.samples if samples is None else samples):
                    key = cache_key(model, messages, params, schema, top, sample, fingerprint)
                    out.append(
                        CallSpec(
                            setup.id,
                            gold.id,
                            item.id,
                            sample,
                            model.id,
                            model.model,
                            messages,
                            params,
                            schema,
                            top,
                            key,
                            swapped,
                            tuple(candidates) if candidates else None,
                        )
                    )
        return out


def _shared(
    messages: tuple[Mapping[str, str], ...], memo: dict[tuple[tuple[str, str], ...], Any]
) -> tuple[Mapping[str, str], ...]:
    """The messages with each but the last replaced by an equal one seen before."""
    out = []
    for m in messages[:-1]:
        key = tuple(m.items())
        if key not in memo and len(memo) < SHARED_MESSAGES:
            memo[key] = m
        out.append(memo.get(key, m))
    return (*out, *messages[-1:])


SHARED_MESSAGES = 1024


def presentations(task: TaskConfig, item: GoldItem, gold: GoldSet) -> list[tuple[GoldItem, bool]]:
    """How an item is shown: as stored, and for pairwise tasks also with A and B swapped."""
    if task.pairwise is None:  # set for pairwise tasks only (the config checks it)
        return [(item, False)]
    a, b = task.pairwise.response_a, task.pairwise.response_b
    missing = [f for f in (a, b) if f not in item.fields]
    if missing:
        raise UserError.at(
            f"pairwise item {item.id!r} lacks the field(s) {missing}",
            file=gold.path,
            line=item.line,
            hint="set task.pairwise.response_a / response_b to its field names",
        )
    if not str(item.fields[a]).strip() or not str(item.fields[b]).strip():
        raise UserError.at(
            f"pairwise item {item.id!r} has an empty response",
            file=gold.path,
            line=item.line,
            hint="remove the pair or fill in both responses",
        )
    if not task.pairwise.swap:
        return [(item, False)]
    fields = {**item.fields, a: item.fields[b], b: item.fields[a]}
    return [(item, False), (replace(item, fields=fields), True)]


def _guidelines(resolved: ResolvedExperiment) -> str:
    task = resolved.experiment.task
    if task.guidelines_file:
        return read_text_file(resolved.resolve(task.guidelines_file), "guidelines file")[1]
    return task.guidelines or ""


def _selector(
    resolved: ResolvedExperiment, prompt: PromptConfig, gold_sets: list[GoldSet]
) -> FewShotSelector:
    fs = prompt.few_shot
    assert fs is not None
    labels = resolved.experiment.task.label_names
    pool_path = resolved.resolve(fs.pool)
    pool = load_pool(pool_path, labels)
    clashes = [(p, g, gs.id) for gs in gold_sets for p, g in pool_overlap(pool, gs.items)]
    if clashes:
        problems = [
            Problem(f"pool example {p!r} is gold item {g!r} of gold set '{gs}'", pool_path)
            for p, g, gs in clashes
        ]
        raise UserError(
            problems,
            hint="few-shot examples must never be gold items: "
            "remove them from the pool (or from the gold set)",
        )
    return FewShotSelector(pool, fs.k, fs.strategy, fs.seed, labels)


def wants_schema(model: ModelConfig) -> bool:
    # `auto` constrains the local model (a llama.cpp grammar always works) but not remote
    # models, whose servers differ in support; the parser handles free text robustly.
    if model.structured_output == "auto":
        return model.kind.in_process
    return model.structured_output == "json_schema"


def wants_logprobs(model: ModelConfig) -> bool:
    return model.logprobs if model.logprobs is not None else model.kind.in_process


def output_params(model: ModelConfig) -> dict[str, Any]:
    params = {k: v for k, v in model.params.items() if k not in NON_OUTPUT_PARAMS}
    params.setdefault("temperature", 0.0)
    if model.kind.in_process:
        params.setdefault("max_tokens", LOCAL_DEFAULT_MAX_TOKENS)
    return params


def response_schema(labels: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(labels)}},
        "required": ["label"],
        "additionalProperties": False,
    }


def estimate_tokens(spec: CallSpec) -> tuple[int, int]:
    """Rough (input, output) tokens of a call, for the estimate printed before a run."""
    chars = sum(len(m["content"]) for m in spec.messages)
    return chars // CHARS_PER_TOKEN + 4 * len(spec.messages), int(spec.params.get("max_tokens", 16))
