"""Pins the config loader: valid YAML -> Experiment; errors name file, line, key and a fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.config import load_experiment
from harness.core.errors import UserError

VALID = """\
# A config shaped like configs/demo.yaml.
name: demo
description: Sentiment of short product reviews.
task:
  type: classification
  name: review sentiment
  labels:
    - name: positive
      description: the reviewer is satisfied overall
    - name: negative
    - name: neutral
  guidelines: Judge the reviewer's overall opinion.
gold_sets:
  - id: reviews
    path: data/gold.jsonl
prompts:
  - id: zero_shot
    template: prompts/zero.j2
  - id: few_shot
    template: ../shared/few.j2
    few_shot:
      k: 3
      pool: data/pool.jsonl
      strategy: stratified
      seed: 7
models:
  - id: small
    model: local/smollm2-135m
    params:
      temperature: 0
      max_tokens: 16
  - id: remote
    model: openai/gpt-4o-mini
    api_key_env: OPENAI_API_KEY
run:
  concurrency: 4
  samples: 1
"""


def write(folder: Path, text: str | bytes, name: str = "exp.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, snippet: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line containing `snippet`."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return hits[occurrence - 1]


def load_error(path: Path) -> UserError:
    with pytest.raises(UserError) as info:
        load_experiment(path)
    return info.value


# --- valid configs ------------------------------------------------------------------------------


def test_valid_config_loads_into_typed_models(tmp_path):
    resolved = load_experiment(write(tmp_path, VALID))
    exp = resolved.experiment
    assert exp.name == "demo"
    assert exp.task.label_names == ["positive", "negative", "neutral"]
    assert exp.task.labels[0].description == "the reviewer is satisfied overall"
    assert exp.task.labels[1].description is None
    assert [p.id for p in exp.prompts] == ["zero_shot", "few_shot"]
    assert exp.prompts[1].few_shot.strategy == "stratified"
    assert exp.prompts[1].few_shot.seed == 7
    assert [(m.id, m.provider) for m in exp.models] == [("small", "local"), ("remote", "litellm")]
    assert exp.models[0].params == {"temperature": 0, "max_tokens": 16}
    assert exp.run.samples == 1
    assert exp.run.retries == 4  # default where the config is silent
    assert resolved.path == tmp_path / "exp.yaml"
    assert resolved.text == VALID


def test_demo_config_loads():
    root = Path(__file__).resolve().parents[2]
    exp = load_experiment(root / "configs" / "demo.yaml").experiment
    assert exp.task.label_names == ["positive", "negative", "neutral"]
    assert [p.id for p in exp.prompts] == ["zero_shot", "few_shot"]


@pytest.mark.parametrize(
    ("labels_yaml", "names"),
    [
        ("[positive, negative]", ["positive", "negative"]),
        ("[1, 2, 3]", ["1", "2", "3"]),
        ("\n    - positive\n    - name: negative\n      description: unhappy", None),
    ],
)
def test_label_short_form(tmp_path, labels_yaml, names):
    text = VALID.replace(
        VALID[VALID.index("  labels:\n") : VALID.index("  guidelines:")],
        f"  labels: {labels_yaml}\n",
    )
    task = load_experiment(write(tmp_path, text)).experiment.task
    if names is None:  # short and long forms mixed in one list
        assert task.label_names == ["positive", "negative"]
        assert [label.description for label in task.labels] == [None, "unhappy"]
    else:
        assert task.label_names == names
        assert all(label.description is None for label in task.labels)


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    write(tmp_path / "configs", VALID)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    resolved = load_experiment("configs/exp.yaml")  # a relative config path, too
    monkeypatch.chdir(tmp_path / "elsewhere")  # where the process is must not matter
    exp = resolved.experiment
    assert resolved.resolve(exp.gold_sets[0].path) == tmp_path / "configs/data/gold.jsonl"
    assert resolved.resolve(exp.prompts[1].template) == tmp_path / "shared/few.j2"
    assert resolved.resolve(exp.prompts[1].few_shot.pool) == tmp_path / "configs/data/pool.jsonl"
    absolute = tmp_path / "abs.jsonl"
    assert resolved.resolve(absolute) == absolute


def test_config_hash_ignores_key_order_comments_and_layout(tmp_path):
    reordered = """\
run: {samples: 1, concurrency: 4}
models:
  - model: local/smollm2-135m
    id: small
    params: {max_tokens: 16, temperature: 0}
  - api_key_env: OPENAI_API_KEY
    model: openai/gpt-4o-mini
    id: remote
prompts:
  - template: prompts/zero.j2
    id: zero_shot
  - few_shot: {seed: 7, strategy: stratified, pool: data/pool.jsonl, k: 3}
    id: few_shot
    template: ../shared/few.j2
gold_sets: [{path: data/gold.jsonl, id: reviews}]
task:
  guidelines: Judge the reviewer's overall opinion.
  labels:
    - {description: the reviewer is satisfied overall, name: positive}
    - name: negative
    - name: neutral
  name: review sentiment
  type: classification
description: Sentiment of short product reviews.   # a comment
name: demo
"""
    first = load_experiment(write(tmp_path / "a", VALID)).config_hash
    second = load_experiment(write(tmp_path / "b", reordered)).config_hash
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first == second


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("temperature: 0", "temperature: 0.7"),
        ("max_tokens: 16", "max_tokens: 17"),
        ("concurrency: 4", "concurrency: 5"),
        ("seed: 7", "seed: 8"),
        ("- name: neutral", "- name: mixed"),
        ("description: the reviewer is satisfied overall", "description: happy"),
        ("path: data/gold.jsonl", "path: data/gold2.jsonl"),
        ("model: openai/gpt-4o-mini", "model: openai/gpt-4o"),
    ],
)
def test_config_hash_changes_when_a_value_changes(tmp_path, old, new):
    assert VALID.count(old) == 1
    before = load_experiment(write(tmp_path / "a", VALID)).config_hash
    after = load_experiment(write(tmp_path / "b", VALID.replace(old, new))).config_hash
    assert before != after


# --- validation errors: file + line + key path + what to do -------------------------------------


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert text.count(old) == 1, old
        return text.replace(old, new)

    return edit


def _append(extra: str):
    return lambda text: text + extra


# (case id, edit of VALID, snippet on the expected line (occurrence), key path, message fragment)
VALIDATION_CASES = [
    (
        "unknown_top_level",
        _append("modelz: []\n"),
        ("modelz:", 1),
        "modelz",
        "unknown key 'modelz'",
    ),
    (
        "unknown_nested",
        _replace("      max_tokens: 16\n", "      max_tokens: 16\n    paramz: {}\n"),
        ("paramz:", 1),
        "models[0].paramz",
        "unknown key 'paramz'",
    ),
    (
        "unknown_deep",
        _replace("      seed: 7", "      stratgy: similar"),
        ("stratgy", 1),
        "prompts[1].few_shot.stratgy",
        "check its spelling",
    ),
    (
        "unknown_in_run",
        _append("  concurency: 3\n"),
        ("concurency", 1),
        "run.concurency",
        "unknown key",
    ),
    (
        "wrong_type_int",
        _replace("concurrency: 4", "concurrency: many"),
        ("concurrency: many", 1),
        "run.concurrency",
        "integer",
    ),
    (
        "wrong_type_list",
        _replace("gold_sets:\n  - id: reviews\n    path: data/gold.jsonl", "gold_sets: reviews"),
        ("gold_sets:", 1),
        "gold_sets",
        "list",
    ),
    (
        "wrong_type_mapping",
        _replace("    params:\n      temperature: 0\n      max_tokens: 16\n", "    params: hot\n"),
        ("params: hot", 1),
        "models[0].params",
        "dictionary",
    ),
    ("out_of_range", _replace("k: 3", "k: 0"), ("k: 0", 1), "prompts[1].few_shot.k", "1"),
    (
        "bad_enum",
        _replace("strategy: stratified", "strategy: random"),
        ("strategy: random", 1),
        "prompts[1].few_shot.strategy",
        "fixed",
    ),
    ("bad_id", _replace("id: small", "id: my model"), ("id: my model", 1), "models[0].id", "match"),
    (
        "missing_model",
        _replace("    model: openai/gpt-4o-mini\n", ""),
        ("- id: remote", 1),
        "models[1].model",
        "required key is missing",
    ),
    (
        "missing_gold_path",
        _replace("    path: data/gold.jsonl\n", ""),
        ("- id: reviews", 1),
        "gold_sets[0].path",
        "required key is missing",
    ),
    (
        "duplicate_model_id",
        _replace("id: remote", "id: small"),
        ("id: small", 2),
        "models[1].id",
        "duplicate models id 'small'",
    ),
    (
        "duplicate_prompt_id",
        _replace("id: few_shot", "id: zero_shot"),
        ("id: zero_shot", 2),
        "prompts[1].id",
        "duplicate prompts id 'zero_shot'",
    ),
    (
        "duplicate_gold_set_id",
        _replace(
            "    path: data/gold.jsonl\n",
            "    path: data/gold.jsonl\n  - id: reviews\n    path: b\n",
        ),
        ("id: reviews", 2),
        "gold_sets[1].id",
        "duplicate gold_sets id 'reviews'",
    ),
    (
        "setup_unknown_model",
        _append("setups:\n  - prompt: zero_shot\n    model: nope\n"),
        ("model: nope", 1),
        "setups[0].model",
        "setup names model 'nope'",
    ),
    (
        "setup_unknown_prompt",
        _append(
            "setups:\n  - prompt: zero_shot\n    model: small\n  - prompt: typo\n    model: small\n"
        ),
        ("prompt: typo", 1),
        "setups[1].prompt",
        "setup names prompt 'typo'",
    ),
    (
        "duplicate_label",
        _replace("    - name: neutral", "    - name: positive"),
        ("- name: positive", 2),
        "task.labels[2]",
        "duplicate label 'positive'",
    ),
    (
        "duplicate_label_short_form",
        _replace(
            "    - name: positive\n      description: the reviewer is satisfied overall\n"
            "    - name: negative\n    - name: neutral\n",
            "    [pos, neg,\n     pos]\n",
        ),
        ("pos]", 1),
        "task.labels[2]",
        "duplicate label 'pos'",
    ),
    (
        "one_label",
        _replace(
            "    - name: negative\n    - name: neutral\n",
            "",
        ),
        ("labels:", 1),
        "task.labels",
        "at least two labels",
    ),
    (
        "guidelines_twice",
        _replace("  guidelines: J", "  guidelines_file: g.md\n  guidelines: J"),
        ("guidelines_file", 1),
        "task.guidelines_file",
        "not both",
    ),
    (
        "boolean_label",
        _replace(
            "    - name: positive\n      description: the reviewer is satisfied overall\n"
            "    - name: negative\n    - name: neutral\n",
            "    - maybe\n    - yes\n",
        ),
        ("- yes", 1),
        "task.labels[1]",
        "YAML boolean",
    ),
    (
        "duplicate_yaml_key",
        _append("name: other\n"),
        ("name: other", 1),
        "name",
        "duplicate key",
    ),
    (
        "called_model_without_prompts",
        _replace(
            VALID[VALID.index("prompts:") : VALID.index("models:")],
            "",
        ),
        ("model: local/smollm2-135m", 1),
        "models[0].model",
        "at least one entry under 'prompts'",
    ),
]


@pytest.mark.parametrize(
    ("edit", "where", "key", "fragment"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_validation_error_names_file_line_key_and_fix(tmp_path, edit, where, key, fragment):
    text = edit(VALID)
    path = write(tmp_path, text)
    err = load_error(path)
    matching = [p for p in err.problems if p.key == key]
    assert matching, [str(p) for p in err.problems]
    problem = matching[0]
    expected_line = line_of(text, *where)
    assert problem.file == path
    assert problem.line == expected_line
    assert fragment in problem.message
    assert err.hint  # says what to do
    shown = str(err)
    assert f"{path}:{expected_line}" in shown
    assert f"key '{key}'" in shown


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("api_key", "sk-123"),
        ("API_KEY", "sk-123"),
        ("Authorization", "Bearer x"),
        ("headers", "{X-Key: abc}"),
        ("extra_headers", "{X-Key: abc}"),
        ("key", "abc"),
    ],
)
def test_secrets_in_params_are_rejected(tmp_path, param, value):
    text = VALID.replace(
        "      max_tokens: 16\n", f"      max_tokens: 16\n      {param}: {value}\n"
    )
    path = write(tmp_path, text)
    err = load_error(path)
    (problem,) = err.problems
    assert problem.key == "models[0].params"
    assert problem.line == line_of(text, "params:")
    assert f"'{param}' must not be in params" in problem.message
    assert "api_key_env" in problem.message  # what to do instead
    assert "sk-123" not in str(err) and "Bearer" not in str(err)  # the secret is not echoed


def test_every_validation_problem_is_reported_at_once(tmp_path):
    text = VALID.replace("concurrency: 4", "concurrency: many").replace(
        "    api_key_env", "    paramz: 1\n    api_key_env"
    )
    err = load_error(write(tmp_path, text))
    assert {p.key for p in err.problems} == {"run.concurrency", "models[1].paramz"}


# --- file-level errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("name: demo\ntask:\n\tlabels: [a, b]\n", 3, "'\\t'"),
        ("name: demo\ndescription: a: b\n", 2, "mapping values are not allowed"),
        ("name: demo\ntask:\n  labels: [a, b]\n bad: 1\n", 4, "expected <block end>"),
        ("name: demo\nrun: *anchor\n", 2, "undefined alias"),
        ("name: demo\n---\nname: two\n", 2, "another document"),
    ],
    ids=["tab", "colon", "indent", "alias", "two_documents"],
)
def test_yaml_syntax_error_names_the_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    err = load_error(path)
    (problem,) = err.problems
    assert problem.message.startswith("YAML syntax error")
    assert fragment in problem.message
    assert (problem.file, problem.line) == (path, line)
    assert err.hint


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
    ],
)
def test_yaml_python_tags_are_an_error_and_never_run(tmp_path, tag):
    marker = tmp_path / "pwned"
    text = VALID.replace(
        "description: Sentiment of short product reviews.",
        "description: " + tag.format(marker=marker),
    )
    path = write(tmp_path, text)
    err = load_error(path)
    (problem,) = err.problems
    assert problem.line == line_of(text, "description: !!python")
    assert "constructor" in problem.message
    assert not marker.exists()


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "- name: demo\n- task: x\n", "just a string\n", "42\n", "null\n"],
    ids=["empty", "comment_only", "list", "string", "number", "null"],
)
def test_a_document_that_is_not_a_mapping_is_rejected(tmp_path, text):
    path = write(tmp_path, text)
    err = load_error(path)
    (problem,) = err.problems
    assert problem.file == path
    assert "must be a YAML mapping" in problem.message
    assert "configs/demo.yaml" in err.hint


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    err = load_error(path)
    (problem,) = err.problems
    assert problem.file == path
    assert "not found" in problem.message
    assert err.hint


def test_directory_instead_of_file(tmp_path):
    err = load_error(tmp_path)
    (problem,) = err.problems
    assert problem.file == tmp_path
    assert "cannot read config" in problem.message


def test_non_utf8_file_names_the_line(tmp_path):
    path = write(tmp_path, b"name: demo\ndescription: caf\xe9 latte\n")
    err = load_error(path)
    (problem,) = err.problems
    assert (problem.file, problem.line) == (path, 2)
    assert "UTF-8" in problem.message
    assert "UTF-8" in err.hint


def test_samples_above_one_need_a_temperature_above_zero(tmp_path):
    path = write(tmp_path, VALID.replace("  samples: 1\n", "  samples: 3\n"))
    err = load_error(path)
    (problem,) = err.problems
    assert problem.key == "models[0].params" and "temperature 0" in problem.message
    ok = (
        VALID.replace("  samples: 1\n", "  samples: 3\n")
        .replace("      temperature: 0\n", "      temperature: 0.8\n")
        .replace(
            "    api_key_env: OPENAI_API_KEY\n",
            "    api_key_env: OPENAI_API_KEY\n    params: {temperature: 1.0}\n",
        )
    )
    assert load_experiment(write(tmp_path, ok)).experiment.run.samples == 3
