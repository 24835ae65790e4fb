"""Shared fixtures for the HTTP, resume and CLI tests.

- litellm must never fetch its price map: LITELLM_LOCAL_MODEL_COST_MAP is set here, before
  any test module (or harness module) can import litellm.
- Every test gets its own label cache (PRELABEL_CACHE_DIR -> a tmp dir), so no test writes
  into the repository's .prelabel-cache and no test sees another's cached labels.
- `experiment(...)` writes a small experiment (12 gold items x 3 annotators, a template, a
  config) into a tmp dir; `srv` is a FakeOpenAIServer answering by keyword (RULES).
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.records import RunManifest

try:  # tests/ on sys.path (rootdir conftest, no tests/__init__.py)
    from fake_openai import FakeOpenAIServer, Reply, keyword_labeler, last_user_text
except ImportError:  # tests is a package
    from fake_openai import FakeOpenAIServer, Reply, keyword_labeler, last_user_text

__all__ = ["FakeOpenAIServer", "Reply", "keyword_labeler", "last_user_text"]

LABELS = ["positive", "negative", "neutral"]
# The fake model's rule: the first keyword found in the review wins, else "neutral".
RULES = {"great": "positive", "awful": "negative"}
DEFAULT_LABEL = "neutral"

# (id, text, [ann_a, ann_b, ann_c]); the reference label is the majority vote.
GOLD: list[tuple[str, str, list[str]]] = [
    ("g01", "A great blender, it works well.", ["positive", "positive", "positive"]),
    ("g02", "Great sound for the price.", ["positive", "positive", "neutral"]),
    ("g03", "The battery life is great.", ["positive", "neutral", "positive"]),
    ("g04", "Great, it broke after one day.", ["negative", "negative", "negative"]),  # sarcasm
    ("g05", "An awful zipper.", ["negative", "negative", "negative"]),
    ("g06", "Awful smell out of the box.", ["negative", "negative", "neutral"]),
    ("g07", "Awful manual but the kettle is fine.", ["neutral", "negative", "neutral"]),
    ("g08", "The mug holds coffee.", ["neutral", "neutral", "neutral"]),
    ("g09", "It arrived on Tuesday.", ["neutral", "neutral", "positive"]),
    ("g10", "It is a book about trains.", ["neutral", "negative", "neutral"]),
    ("g11", "I love it, best purchase ever.", ["positive", "positive", "positive"]),
    ("g12", "It fits as expected.", ["neutral", "neutral", "neutral"]),
]
TEXT_TO_ID = {text: item_id for item_id, text, _ in GOLD}

TEMPLATE = """\
{# test template: one instruction, then the bare review #}
--- system
You are a sentiment classifier. Reply with one word: {{ label_names | join(", ") }}.
--- user
{{ item.text }}
"""


def rule_label(text: str) -> str:
    low = text.lower()
    return next((lab for kw, lab in RULES.items() if kw in low), DEFAULT_LABEL)


def majority(labels: list[str]) -> str:
    return Counter(labels).most_common(1)[0][0]


def item_of(request_json: dict) -> str:
    """Gold item id of a chat-completion request (the user message is the review text)."""
    return TEXT_TO_ID[last_user_text(request_json).strip()]


def requests_per_item(srv: FakeOpenAIServer) -> Counter[str]:
    return Counter(item_of(r) for r in srv.requests)


def per_item(special: dict[str, Any], default=None):
    """Responder: item id -> Reply (or responder) for some items, `default` for the rest."""
    default = default or keyword_labeler(RULES, DEFAULT_LABEL)

    def responder(request_json: dict, attempt: int):
        r = special.get(item_of(request_json))
        if r is None:
            return default(request_json, attempt)
        return r(request_json, attempt) if callable(r) else r

    return responder


def read_labels(run_dir: Path) -> list[dict]:
    lines = (run_dir / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@dataclass
class Exp:
    root: Path
    config: Path
    gold: Path
    template: Path
    runs_dir: Path
    data: dict

    def run_dirs(self) -> list[Path]:
        return sorted(p for p in self.runs_dir.iterdir()) if self.runs_dir.exists() else []

    def rewrite(self, **run: Any) -> None:
        """Change `run:` settings of the config in place."""
        self.data["run"].update(run)
        self.config.write_text(yaml.safe_dump(self.data, sort_keys=False), encoding="utf-8")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRELABEL_CACHE_DIR", str(tmp_path / "label-cache"))
    return tmp_path / "label-cache"


@pytest.fixture
def cache_dir(_isolated_cache) -> Path:
    return _isolated_cache


@pytest.fixture
def srv():
    with FakeOpenAIServer(keyword_labeler(RULES, DEFAULT_LABEL)) as server:
        yield server


@pytest.fixture
def experiment(tmp_path):
    """Factory: experiment(srv, model={...extra model keys}, run={...}, ...) -> Exp."""

    def make(
        srv: FakeOpenAIServer | None = None,
        *,
        model: dict | None = None,
        models: list[dict] | None = None,
        run: dict | None = None,
        gold: list[tuple[str, str, list[str]]] | None = None,
        extra: dict | None = None,
        name: str = "exp",
    ) -> Exp:
        root = tmp_path / name
        root.mkdir()
        gold_path = root / "gold.jsonl"
        rows = [
            json.dumps(
                {
                    "id": item_id,
                    "text": text,
                    "annotations": dict(zip(["ann_a", "ann_b", "ann_c"], anns, strict=True)),
                    "meta": {"domain": "test"},
                }
            )
            for item_id, text, anns in (gold or GOLD)
        ]
        gold_path.write_text("# test gold set\n" + "\n".join(rows) + "\n", encoding="utf-8")
        template = root / "zero_shot.j2"
        template.write_text(TEMPLATE, encoding="utf-8")
        if models is None:
            m = {"id": "fake", "model": "openai/fake-model"}
            if srv is not None:
                m["api_base"] = srv.base_url
            m.update(model or {})
            models = [m]
        data = {
            "name": name,
            "task": {"type": "classification", "labels": list(LABELS)},
            "gold_sets": [{"id": "g", "path": "gold.jsonl"}],
            "prompts": [{"id": "zs", "template": "zero_shot.j2"}],
            "models": models,
            "run": {
                "concurrency": 4,
                "retries": 2,
                "timeout_s": 10,
                "runs_dir": str(tmp_path / "runs"),
                **(run or {}),
            },
            "report": {"bootstrap": 200, "seed": 0},
        }
        data.update(extra or {})
        config = root / "experiment.yaml"
        config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return Exp(root, config, gold_path, template, tmp_path / "runs", data)

    return make


# ---- shared by the CLI, label and Label Studio tests

SCHEMA = Path(__file__).resolve().parents[1] / "harness" / "schemas" / "metrics.schema.json"


def invoke(*args: str):
    return CliRunner().invoke(app, [*args], catch_exceptions=False)


def floats(obj: Any) -> list[float]:
    """Every float in a JSON-like tree (dicts, lists, tuples), depth first."""
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in floats(v)]
    if isinstance(obj, list | tuple):
        return [x for v in obj for x in floats(v)]
    return [obj] if isinstance(obj, float) else []


def flat(text: str) -> str:
    """The output with line breaks removed: rich may wrap a long message on a narrow console."""
    return re.sub(r"\s*\n\s*", " ", text)


def only_run_dir(exp) -> Path:
    [run_dir] = exp.run_dirs()
    return run_dir


def confident_labeler(request_json: dict, attempt: int) -> str:
    """Keyword rules with a verbalized confidence: sure on a plain keyword, unsure when the
    review hedges ("but", "broke") or has no keyword."""
    text = last_user_text(request_json).lower()
    label = "positive" if "great" in text else "negative" if "awful" in text else "neutral"
    sure = label != "neutral" and "but" not in text and "broke" not in text
    return json.dumps({"label": label, "confidence": 0.97 if sure else 0.4})


NEW = [
    {"id": "n1", "text": "A great toaster."},
    {"id": "n2", "text": "Awful kettle."},
    {"id": "n3", "text": "It is a lamp."},
    {"id": "n4", "text": "Great colour but it broke."},
]


def setup_experiment(srv, experiment, tmp_path):
    srv.responder = confident_labeler
    exp = experiment(
        srv,
        model={"confidence": "verbalized", "structured_output": "off"},
        extra={"report": {"bootstrap": 200, "seed": 0, "target_error": 0.4, "delta": 0.1}},
    )
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    new = tmp_path / "new.jsonl"
    new.write_text("\n".join(json.dumps(r) for r in NEW) + "\n", encoding="utf-8")
    return exp, new


def label_run(exp):
    dirs = [d for d in exp.run_dirs() if "-label-" in d.name]
    return dirs[-1]


def read(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def label_studio_round(
    tasks: list[dict], reviews: dict[str, list[tuple]], control: tuple[str, str, str]
) -> list[dict]:
    """What Label Studio does: import the tasks (ids, prediction objects), let reviewers
    annotate with the control (from_name, to_name, type), export as JSON. `reviews` maps an
    item to (user, result value or None to accept the prediction, cancelled)."""
    exported, ann_id = [], 9000
    for k, task in enumerate(tasks):
        task_id = 4100 + k
        predictions = [
            {
                "id": 700 + k,
                "model_version": p["model_version"],
                "created_ago": "2 hours",
                "score": p.get("score"),
                "result": [dict(r, id=f"pred{k}{j}") for j, r in enumerate(p["result"])],
                "cluster": None,
                "neighbors": None,
                "mislabeling": 0.0,
                "created_at": "2024-06-01T09:00:00.000000Z",
                "updated_at": "2024-06-01T09:00:00.000000Z",
                "model": None,
                "model_run": None,
                "task": task_id,
                "project": 12,
            }
            for p in task.get("predictions", [])
        ]
        annotations = []
        for n, (user, value, cancelled) in enumerate(
            reviews.get(task["data"]["prelabel_item_id"], [])
        ):
            ann_id += 1
            if cancelled:
                result = []
            elif value is None:  # accepted the prediction as shown
                result = [dict(r, origin="prediction") for r in predictions[0]["result"]]
            else:
                from_name, to_name, kind = control
                result = [
                    {
                        "value": value,
                        "id": f"r{ann_id}",
                        "from_name": from_name,
                        "to_name": to_name,
                        "type": kind,
                        "origin": "manual",
                    }
                ]
            annotations.append(
                {
                    "id": ann_id,
                    "completed_by": user,
                    "result": result,
                    "was_cancelled": cancelled,
                    "ground_truth": False,
                    "created_at": f"2024-06-02T10:{n:02d}:00.000000Z",
                    "updated_at": f"2024-06-02T10:{n:02d}:30.000000Z",
                    "lead_time": 8.0 + n,
                    "prediction": predictions[0] if predictions and value is None else {},
                    "result_count": 0,
                    "task": task_id,
                    "project": 12,
                    "parent_prediction": predictions[0]["id"] if predictions else None,
                    "parent_annotation": None,
                }
            )
        exported.append(
            {
                "id": task_id,
                "annotations": annotations,
                "drafts": [],
                "predictions": predictions,
                "data": task["data"],
                "meta": task.get("meta", {}),
                "created_at": "2024-06-01T09:00:00.000000Z",
                "updated_at": "2024-06-02T10:05:00.000000Z",
                "inner_id": k + 1,
                "total_annotations": len(annotations),
                "cancelled_annotations": 0,
                "total_predictions": len(predictions),
                "project": 12,
            }
        )
    return exported


def line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def bare_manifest() -> RunManifest:
    """A complete run's manifest with placeholder provenance: for rendering the reports of
    metrics scored in memory, where no run folder exists."""
    return RunManifest(
        run_id="r",
        status="complete",
        prelabel_version="0",
        config_path="c.yaml",
        config_hash="0",
        config={},
        prompt_hashes={},
        gold_set_hashes={},
        setups=[],
        packages={},
        python="3",
        platform="test",
        git_commit=None,
        git_dirty=None,
        started_at="2025-01-01T00:00:00Z",
    )
