"""Pins the plan: setups x items x samples -> call specs, and what goes into a cache key."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from harness.config import ModelConfig, load_experiment
from harness.core.errors import UserError
from harness.run.plan import cache_key, make_plan, output_params, response_schema

ROOT = Path(__file__).resolve().parents[2]
GOLD = [
    {
        "id": "r1",
        "text": "Great kettle, boils fast.",
        "annotations": {"a": "positive", "b": "positive"},
    },
    {"id": "r2", "text": "Leaks from the lid.", "annotations": {"a": "negative", "b": "neutral"}},
    {"id": "r3", "text": "It is a mug.", "annotations": {"a": "neutral", "b": "neutral"}},
]
POOL = [
    {"id": "p1", "text": "Love this toaster.", "label": "positive"},
    {"id": "p2", "text": "The zipper broke at once.", "label": "negative"},
    {"id": "p3", "text": "A book about birds.", "label": "neutral"},
]
ZERO = "--- system\nReply with one of: {{ label_names | join(', ') }}.\n--- user\n{{ item.text }}\n"
FEW = (
    "--- system\n{{ guidelines }}\n--- user\n"
    "{% for ex in examples %}{{ ex.text }} -> {{ ex.label }}\n{% endfor %}{{ item.text }} ->"
)
CONFIG = """\
name: t
task:
  labels: [positive, negative, neutral]
  guidelines: Judge the overall opinion.
gold_sets:
  - id: g
    path: gold.jsonl
prompts:
  - id: zero
    template: zero.j2
  - id: few
    template: few.j2
    few_shot: {k: 2, pool: pool.jsonl, strategy: stratified}
models:
  - id: small
    model: local/smollm2-135m
    params: {temperature: 0.7, max_tokens: 16, n_threads: 2}
  - id: remote
    model: openai/gpt-4o-mini
    params: {temperature: 0.2, timeout: 30, num_retries: 5}
  - id: old
    model: replay/old_labels.jsonl
run:
  samples: 2
"""


def write_experiment(folder: Path, config: str = CONFIG, gold=GOLD, pool=POOL) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gold.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gold))
    (folder / "pool.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pool))
    (folder / "zero.j2").write_text(ZERO)
    (folder / "few.j2").write_text(FEW)
    (folder / "old_labels.jsonl").write_text('{"id": "r1", "label": "positive"}\n')
    (folder / "exp.yaml").write_text(config)
    return folder / "exp.yaml"


def plan_for(folder: Path, config: str = CONFIG, **files):
    return make_plan(load_experiment(write_experiment(folder, config, **files)))


@pytest.fixture
def no_model_calls(monkeypatch):
    """Any import of a model backend or construction of a provider fails the test."""
    monkeypatch.setitem(sys.modules, "litellm", None)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)

    def refuse(*args, **kwargs):
        raise AssertionError("make_plan must not create a provider")

    monkeypatch.setattr("harness.providers.local.LocalProvider.__init__", refuse)
    monkeypatch.setattr("harness.providers.litellm_provider.LiteLLMProvider.__init__", refuse)


def test_setups_are_prompts_times_models_and_replays_alone(tmp_path, no_model_calls):
    plan = plan_for(tmp_path)
    assert [(s.id, s.prompt_id, s.model_id) for s in plan.setups] == [
        ("zero@small", "zero", "small"),
        ("few@small", "few", "small"),
        ("zero@remote", "zero", "remote"),
        ("few@remote", "few", "remote"),
        ("old", None, "old"),
    ]
    assert plan.replay_files == {"old": tmp_path / "old_labels.jsonl"}
    assert set(plan.templates) == {"zero", "few"}
    assert [g.id for g in plan.gold_sets] == ["g"]


def test_one_spec_per_setup_item_and_sample(tmp_path, no_model_calls):
    plan = plan_for(tmp_path)
    called_setups = [s.id for s in plan.setups if s.prompt_id is not None]
    assert len(plan.specs) == len(called_setups) * len(GOLD) * 2
    assert {(s.setup_id, s.item_id, s.sample) for s in plan.specs} == {
        (setup, g["id"], sample) for setup in called_setups for g in GOLD for sample in (0, 1)
    }
    assert "old" not in {s.setup_id for s in plan.specs}
    keys = [s.cache_key for s in plan.specs]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)


def test_explicit_setups_are_the_only_setups(tmp_path, no_model_calls):
    config = CONFIG + "setups:\n  - {prompt: few, model: remote}\n  - {model: old}\n"
    plan = plan_for(tmp_path, config)
    assert [s.id for s in plan.setups] == ["few@remote", "old"]
    assert {s.setup_id for s in plan.specs} == {"few@remote"}


def test_spec_contents(tmp_path, no_model_calls):
    plan = plan_for(tmp_path)
    spec = next(s for s in plan.specs if s.setup_id == "zero@small" and s.item_id == "r2")
    assert spec.gold_set_id == "g"
    assert (spec.model_id, spec.model) == ("small", "local/smollm2-135m")
    assert spec.messages == (
        {"role": "system", "content": "Reply with one of: positive, negative, neutral."},
        {"role": "user", "content": "Leaks from the lid."},
    )
    assert dict(spec.params) == {"temperature": 0.7, "max_tokens": 16}  # no n_threads
    assert spec.response_schema == response_schema(["positive", "negative", "neutral"])
    assert spec.top_logprobs == 5  # the local model gives log-probabilities by default
    remote = next(s for s in plan.specs if s.setup_id == "few@remote" and s.item_id == "r2")
    assert dict(remote.params) == {"temperature": 0.2}  # no timeout, no num_retries
    assert remote.response_schema is None
    assert remote.top_logprobs is None
    system, user = remote.messages
    assert system["content"] == "Judge the overall opinion."
    assert user["content"].endswith("Leaks from the lid. ->")
    assert user["content"].count(" ->") == 3  # two examples, then the item


def test_few_shot_examples_come_from_the_pool(tmp_path, no_model_calls):
    plan = plan_for(tmp_path)
    for spec in plan.specs:
        if spec.setup_id.startswith("few@"):
            shown = spec.messages[1]["content"]
            assert sum(p["text"] in shown for p in POOL) == 2


def test_a_prompt_edit_changes_only_that_prompts_keys(tmp_path, no_model_calls):
    before = {(s.setup_id, s.item_id, s.sample): s.cache_key for s in plan_for(tmp_path).specs}
    (tmp_path / "zero.j2").write_text(ZERO.replace("Reply with one of", "Answer with one of"))
    after_plan = make_plan(load_experiment(tmp_path / "exp.yaml"))
    after = {(s.setup_id, s.item_id, s.sample): s.cache_key for s in after_plan.specs}
    assert before.keys() == after.keys()
    for key, value in before.items():
        if key[0].startswith("zero@"):
            assert after[key] != value, key
        else:
            assert after[key] == value, key


def test_plans_of_the_same_input_have_the_same_keys(tmp_path, no_model_calls):
    first = [s.cache_key for s in plan_for(tmp_path / "a").specs]
    second = [s.cache_key for s in plan_for(tmp_path / "b").specs]  # another folder
    assert first == second


def test_a_pool_that_overlaps_the_gold_set_is_refused(tmp_path, no_model_calls):
    pool = [
        *POOL,
        {"id": "r2", "text": "something else", "label": "negative"},
        {"id": "p9", "text": "great KETTLE,  boils fast!", "label": "positive"},
    ]
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, pool=pool)
    messages = [p.message for p in info.value.problems]
    assert messages == [
        "pool example 'r2' is gold item 'r2' of gold set 'g'",
        "pool example 'p9' is gold item 'r1' of gold set 'g'",
    ]
    assert all(p.file == tmp_path / "pool.jsonl" for p in info.value.problems)
    assert "never be gold items" in info.value.hint


def test_a_bad_replay_file_is_found_by_the_plan(tmp_path, no_model_calls):
    path = write_experiment(tmp_path)
    (tmp_path / "old_labels.jsonl").write_text('{"id": "r1", "label": "positive"}\n{oops\n')
    with pytest.raises(UserError) as info:
        make_plan(load_experiment(path))
    assert [(p.file, p.line) for p in info.value.problems] == [(tmp_path / "old_labels.jsonl", 2)]


def test_a_missing_template_is_a_user_error(tmp_path, no_model_calls):
    path = write_experiment(tmp_path)
    (tmp_path / "few.j2").unlink()
    with pytest.raises(UserError, match=r"prompt template .*few\.j2 does not exist") as info:
        make_plan(load_experiment(path))
    (problem,) = info.value.problems
    assert problem.key == "prompts[1].template" and problem.file == path
    assert "few.j2" in path.read_text().splitlines()[problem.line - 1]


def test_demo_config_plans_without_calls(no_model_calls):
    plan = make_plan(load_experiment(ROOT / "configs/demo.yaml"))
    assert [s.id for s in plan.setups] == ["zero_shot@smollm2", "few_shot@smollm2"]
    assert len(plan.specs) == 2 * 130


# --- cache_key ---------------------------------------------------------------------------------

MODEL = ModelConfig(id="m", model="openai/gpt-4o-mini", params={"temperature": 0.0})
MESSAGES = (
    {"role": "system", "content": "Classify."},
    {"role": "user", "content": "Great kettle."},
)
SCHEMA = response_schema(["positive", "negative"])
BASE = {
    "model": MODEL,
    "messages": MESSAGES,
    "params": {"temperature": 0.0, "max_tokens": 8},
    "schema": SCHEMA,
    "top_logprobs": 5,
    "sample": 0,
}


def key(**changes) -> str:
    args = {**BASE, **changes}
    return cache_key(
        args["model"],
        args["messages"],
        args["params"],
        args["schema"],
        args["top_logprobs"],
        args["sample"],
        args.get("model_file"),
    )


def test_cache_key_is_deterministic_and_content_addressed():
    assert key() == key()
    assert re.fullmatch(r"[0-9a-f]{64}", key())
    assert key(params={"max_tokens": 8, "temperature": 0.0}) == key()  # dict order
    assert key(messages=list(MESSAGES)) == key()  # tuple or list
    renamed = ModelConfig(id="another-name", model="openai/gpt-4o-mini")
    assert key(model=renamed) == key()  # the config id is a name, not content


@pytest.mark.parametrize(
    "changes",
    [
        {"model": ModelConfig(id="m", model="openai/gpt-4o")},
        {
            "model": ModelConfig(
                id="m", model="openai/gpt-4o-mini", api_base="http://localhost:8000"
            )
        },
        {"messages": (MESSAGES[0], {"role": "user", "content": "Great kettle!"})},
        {"messages": (MESSAGES[0], {"role": "assistant", "content": "Great kettle."})},
        {"messages": MESSAGES[1:]},
        {"params": {"temperature": 0.7, "max_tokens": 8}},
        {"params": {"temperature": 0.0, "max_tokens": 9}},
        {"params": {"temperature": 0.0, "max_tokens": 8, "seed": 1}},
        {"params": {"temperature": 0.0, "max_tokens": 8, "top_p": 0.9}},
        {"schema": None},
        {"schema": response_schema(["positive", "negative", "neutral"])},
        {"top_logprobs": None},
        {"top_logprobs": 3},
        {"sample": 1},
    ],
    ids=[
        "model",
        "api_base",
        "message_text",
        "message_role",
        "message_count",
        "temperature",
        "max_tokens",
        "seed",
        "top_p",
        "no_schema",
        "schema_labels",
        "no_logprobs",
        "top_logprobs",
        "sample",
    ],
)
def test_cache_key_changes_with_what_determines_the_output(changes):
    assert key(**changes) != key()


@pytest.mark.parametrize(
    "extra",
    [
        {"timeout": 5},
        {"request_timeout": 5},
        {"num_retries": 9},
        {"max_retries": 9},
        {"n_threads": 8},
        {"api_key": "sk-secret"},
        {"api_base": "http://x"},
        {"extra_headers": {"X-Key": "k"}},
        {"metadata": {"run": "a"}},
        {"stream": True},
    ],
)
def test_cache_key_ignores_params_that_do_not_change_the_output(extra):
    base_model = ModelConfig(id="m", model="local/smollm2-135m", params={"temperature": 0.0})
    # model_construct: the config refuses secrets in params, but output_params must drop
    # them too should one ever arrive there.
    noisy = ModelConfig.model_construct(
        id="m", model="local/smollm2-135m", params={"temperature": 0.0, **extra}
    )
    assert output_params(noisy) == output_params(base_model)
    assert key(model=noisy, params=output_params(noisy)) == key(
        model=base_model, params=output_params(base_model)
    )
    assert "sk-secret" not in json.dumps(output_params(noisy))


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        ("openai/gpt-4o-mini", {}, {"temperature": 0.0}),
        ("local/smollm2-135m", {}, {"temperature": 0.0, "max_tokens": 24}),
        (
            "local/smollm2-135m",
            {"temperature": 0.5, "max_tokens": 4},
            {"temperature": 0.5, "max_tokens": 4},
        ),
    ],
)
def test_output_params_defaults(model, params, expected):
    assert output_params(ModelConfig(id="m", model=model, params=params)) == expected


def test_integer_and_float_params_share_a_key():
    assert key(params={"temperature": 0, "max_tokens": 8}) == key()


def test_local_model_key_follows_the_weights_not_the_name(tmp_path):
    from harness.run.plan import model_fingerprint

    weights = tmp_path / "m.gguf"
    weights.write_bytes(b"GGUF" + b"\0" * 4096)
    model = ModelConfig(id="m", model="local/m.gguf")
    first = model_fingerprint(model, tmp_path)
    # The same bytes elsewhere (another machine or checkout) share the fingerprint.
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    (elsewhere / "m.gguf").write_bytes(weights.read_bytes())
    assert model_fingerprint(model, elsewhere) == first
    weights.write_bytes(b"GGUF" + b"\1" * 4096)  # replaced weights: new labels
    assert model_fingerprint(model, tmp_path) != first
    assert key(model_file=first) != key(model_file=model_fingerprint(model, tmp_path))
    assert model_fingerprint(ModelConfig(id="r", model="openai/gpt-4o-mini")) is None


def test_the_same_gguf_under_another_name_shares_keys():
    fp = "f" * 64
    a = ModelConfig(id="a", model="local/models/m.gguf")
    b = ModelConfig(id="b", model="local/../elsewhere/m.gguf")
    assert key(model=a, model_file=fp) == key(model=b, model_file=fp)
    assert key(model=a, model_file=fp) != key(model=a, model_file="e" * 64)
