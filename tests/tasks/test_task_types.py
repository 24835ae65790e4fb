"""Ordinal and pairwise tasks end to end: YAML -> real HTTP through litellm -> metrics.json.

The fake server plays models with known behaviour, so the expected numbers follow from the
responder rules by hand: a position-biased judge (always "A") must come out as never
consistent across orders and always preferring the first position; a content judge as
fully consistent; an ordinal rater one level too severe as within-one 1.0, exact 0.0.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.core.errors import UserError
from harness.run.pipeline import prepare, run_experiment

try:
    from fake_openai import FakeOpenAIServer, last_user_text
except ImportError:
    from fake_openai import FakeOpenAIServer, last_user_text

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "harness/schemas/metrics.schema.json").read_text())

PAIR_TEMPLATE = """\
--- system
Which response answers the prompt better? Reply with A, B or tie.
--- user
Prompt: {{ item.prompt }}
Response A: {{ item.response_a }}
Response B: {{ item.response_b }}
"""
# (id, response_a, response_b, annotations): the good answer contains "good".
PAIRS = [
    ("p1", "a good answer", "a bad answer", ["A", "A", "B"]),
    ("p2", "a poor text", "a good text", ["B", "B", "B"]),
    ("p3", "a good answer here", "nothing", ["A", "A", "A"]),
    ("p4", "nothing at all", "a good one", ["B", "tie", "B"]),
    ("p5", "a bad reply", "a good reply", ["B", "A", "tie"]),  # split: reference tie
]


def write_pairwise(tmp_path: Path, srv: FakeOpenAIServer, swap: bool = True) -> Path:
    (tmp_path / "pair.j2").write_text(PAIR_TEMPLATE)
    with (tmp_path / "pairs.jsonl").open("w") as f:
        for pid, a, b, anns in PAIRS:
            f.write(
                json.dumps(
                    {
                        "id": pid,
                        "prompt": "Say something good.",
                        "response_a": a,
                        "response_b": b,
                        "annotations": dict(zip("xyz", anns, strict=True)),
                    }
                )
                + "\n"
            )
    config = {
        "name": "pairs",
        "task": {"type": "pairwise", "pairwise": {"swap": swap}},
        "gold_sets": [{"id": "pairs", "path": "pairs.jsonl"}],
        "prompts": [{"id": "judge", "template": "pair.j2"}],
        "models": [{"id": "fake", "model": "openai/fake-model", "api_base": srv.base_url}],
        "run": {"concurrency": 4, "retries": 0},
        "report": {"bootstrap": 200},
    }
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def shown(request_json: dict) -> tuple[str, str]:
    text = last_user_text(request_json)
    a = text.split("Response A: ")[1].split("\n")[0]
    b = text.split("Response B: ")[1].split("\n")[0]
    return a, b


def pairwise_block(tmp_path: Path, responder, swap: bool = True) -> tuple[dict, list[dict]]:
    with FakeOpenAIServer(responder) as srv:
        result = run_experiment(write_pairwise(tmp_path, srv, swap), runs_dir=tmp_path / "runs")
        requests = srv.count
    jsonschema.validate(result.metrics, SCHEMA)
    labels = [json.loads(x) for x in (result.run_dir / "labels.jsonl").read_text().splitlines()]
    assert requests == len(PAIRS) * (2 if swap else 1)
    return result.metrics["gold_sets"][0], labels


def test_position_biased_judge_is_never_consistent_and_always_first(tmp_path):
    gold, labels = pairwise_block(tmp_path, lambda req, attempt: "A")
    block = gold["setups"][0]["pairwise"]
    # Original order says A; the swapped call also says A, which maps back to B.
    assert {r["label"] for r in labels if not r["swapped"]} == {"A"}
    assert {r["label"] for r in labels if r["swapped"]} == {"B"}
    assert block["position_consistency"] == {"value": 0.0, "n": 5}
    assert block["first_position_rate"] == {"value": 1.0, "n": 10}
    # Conflicting orders combine to a tie for every pair.
    assert gold["setups"][0]["label_distribution"] == {"A": 0, "B": 0, "tie": 5}
    assert block["tie_rate"] == {"value": 1.0, "n": 5}


def test_content_judge_is_consistent_and_agrees_with_the_crowd(tmp_path):
    def judge(req, attempt):
        a, b = shown(req)
        return "A" if "good" in a else "B" if "good" in b else "tie"

    gold, _ = pairwise_block(tmp_path, judge)
    block = gold["setups"][0]["pairwise"]
    assert block["position_consistency"] == {"value": 1.0, "n": 5}
    # Verdicts as shown: A, B, A, B, B (original) and B, A, B, A, A (swapped): 5 of 10 first.
    assert block["first_position_rate"] == {"value": 0.5, "n": 10}
    # Reference: A, B, A, B, tie (p5 is split 1-1-1). Judge: A, B, A, B, B.
    assert gold["humans"]["reference_distribution"] == {"A": 2, "B": 2, "tie": 1}
    assert block["agreement_with_ties"]["estimate"] == pytest.approx(4 / 5)
    assert block["agreement_without_ties"]["estimate"] == 1.0
    assert block["agreement_without_ties"]["n"] == 4


def test_without_swap_each_pair_is_asked_once(tmp_path):
    gold, labels = pairwise_block(tmp_path, lambda req, attempt: "B", swap=False)
    block = gold["setups"][0]["pairwise"]
    assert not any(r["swapped"] for r in labels)
    assert block["both_orders"] is False and "position_consistency" not in block


def test_pairwise_config_and_item_errors(tmp_path):
    with FakeOpenAIServer(lambda req, attempt: "A") as srv:
        path = write_pairwise(tmp_path, srv)
    config = yaml.safe_load(path.read_text())
    config["task"]["labels"] = ["B", "A", "tie"]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match=r"exactly \['A', 'B', 'tie'\]"):
        prepare(path)
    config["task"].pop("labels")
    path.write_text(yaml.safe_dump(config))
    lines = (tmp_path / "pairs.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    row["response_b"] = "  "
    lines[2] = json.dumps(row)
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as info:
        prepare(path)
    (problem,) = info.value.problems
    assert problem.line == 3 and "empty response" in problem.message


SCALE = ["1", "2", "3", "4", "5"]
ORDINAL_ITEMS = [  # (id, text, annotations): the reference is the lower median
    ("o1", "level 2", ["2", "2", "3"]),
    ("o2", "level 4", ["4", "5", "4"]),
    ("o3", "level 1", ["1", "1", "2"]),
    ("o4", "level 3", ["3", "2", "4"]),
]


def test_ordinal_rater_one_level_too_severe(tmp_path):
    (tmp_path / "t.j2").write_text("--- user\nRate 1-5: {{ item.text }}\n")
    with (tmp_path / "g.jsonl").open("w") as f:
        for iid, text, anns in ORDINAL_ITEMS:
            f.write(
                json.dumps(
                    {"id": iid, "text": text, "annotations": dict(zip("xyz", anns, strict=True))}
                )
                + "\n"
            )

    def one_up(req, attempt):  # reads the true level from the text and adds one
        return str(min(5, int(last_user_text(req).rsplit(" ", 1)[1]) + 1))

    with FakeOpenAIServer(one_up) as srv:
        config = {
            "name": "ordinal",
            "task": {"type": "ordinal", "labels": SCALE},
            "gold_sets": [{"id": "g", "path": "g.jsonl"}],
            "prompts": [{"id": "p", "template": "t.j2"}],
            "models": [{"id": "fake", "model": "openai/fake-model", "api_base": srv.base_url}],
            "report": {"bootstrap": 200},
        }
        (tmp_path / "o.yaml").write_text(yaml.safe_dump(config))
        result = run_experiment(tmp_path / "o.yaml", runs_dir=tmp_path / "runs")
    jsonschema.validate(result.metrics, SCHEMA)
    gold = result.metrics["gold_sets"][0]
    assert gold["humans"]["reference"]["method"] == "median"
    assert gold["humans"]["reference_distribution"] == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 0}
    o = gold["setups"][0]["ordinal"]
    assert o["exact"]["estimate"] == 0.0
    assert o["within_one"]["estimate"] == 1.0
    assert o["mae"]["estimate"] == pytest.approx(1.0)
    assert "humans_plus_llm" in gold["setups"][0]["alpha"]
    report = (result.run_dir / "report.md").read_text()
    assert "Ordinal view" in report and "within one level" in report


# ------------------------------------------------------------------ multilabel, rubric, ranking


def run_task(tmp_path: Path, task: dict, rows: list[dict], responder, template: str) -> dict:
    (tmp_path / "t.j2").write_text(template)
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeOpenAIServer(responder) as srv:
        config = {
            "name": "structured",
            "task": task,
            "gold_sets": [{"id": "g", "path": "g.jsonl"}],
            "prompts": [{"id": "p", "template": "t.j2"}],
            "models": [{"id": "fake", "model": "openai/fake-model", "api_base": srv.base_url}],
            "run": {"retries": 0},
            "report": {"bootstrap": 200},
        }
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        result = run_experiment(tmp_path / "c.yaml", runs_dir=tmp_path / "runs")
    jsonschema.validate(result.metrics, SCHEMA)
    return {"metrics": result.metrics, "dir": result.run_dir}


TOPICS = ["food", "service", "price"]


def test_multilabel_end_to_end(tmp_path):
    rows = [  # the reference is the per-label majority: i1 {food}, i2 {service, price}, i3 {}
        {"id": "i1", "text": "food", "annotations": {"x": ["food"], "y": ["food"], "z": []}},
        {
            "id": "i2",
            "text": "service price",
            "annotations": {"x": ["service", "price"], "y": ["price", "service"], "z": ["price"]},
        },
        {"id": "i3", "text": "nothing", "annotations": {"x": [], "y": ["food"], "z": []}},
    ]

    def tagger(req, attempt):  # tags every topic word it sees; misses nothing, adds nothing
        text = last_user_text(req)
        return json.dumps({"labels": [t for t in TOPICS if t in text.split("Text: ")[1]]})

    out = run_task(
        tmp_path,
        {"type": "multilabel", "labels": TOPICS},
        rows,
        tagger,
        "--- user\nTopics of this text: {{ label_names | join(', ') }}\nText: {{ item.text }}\n",
    )
    gold = out["metrics"]["gold_sets"][0]
    (combined,) = gold["setups"]
    assert combined["accuracy"]["estimate"] == 1.0  # exact match on all three items
    assert combined["jaccard"]["estimate"] == 1.0
    assert [p["name"] for p in gold["parts"]] == TOPICS
    food = gold["parts"][0]
    assert food["labels"] == ["no", "yes"] and food["setups"][0]["accuracy"]["estimate"] == 1.0
    assert "Part `service`" in (out["dir"] / "report.md").read_text()


def test_rubric_keeps_the_axes_that_parsed(tmp_path):
    axes = [
        {"name": "helpfulness", "labels": ["1", "2", "3"]},
        {"name": "clarity", "labels": ["1", "2", "3"]},
    ]
    rows = [
        {
            "id": f"r{i}",
            "text": f"answer {i}",
            "annotations": {
                "x": {"helpfulness": str(i), "clarity": "2"},
                "y": {"helpfulness": str(i), "clarity": "3"},
            },
        }
        for i in (1, 2, 3)
    ]

    def rater(req, attempt):  # right on helpfulness, nonsense on clarity
        level = last_user_text(req).rsplit(" ", 1)[1]
        return json.dumps({"helpfulness": level, "clarity": "very clear"})

    out = run_task(
        tmp_path, {"type": "rubric", "axes": axes}, rows, rater, "--- user\nRate {{ item.text }}\n"
    )
    parts = {p["name"]: p for p in out["metrics"]["gold_sets"][0]["parts"]}
    help_block, clarity_block = parts["helpfulness"]["setups"][0], parts["clarity"]["setups"][0]
    assert help_block["coverage"]["answered"] == 3
    assert help_block["ordinal"]["exact"]["estimate"] == 1.0
    assert clarity_block["coverage"]["answered"] == 0
    assert sum(clarity_block["failures"].values()) == 3
    labels = [json.loads(x) for x in (out["dir"] / "labels.jsonl").read_text().splitlines()]
    assert all(r["label"]["helpfulness"] and r["label"]["clarity"] is None for r in labels)


def test_ranking_end_to_end_and_not_a_permutation(tmp_path):
    cands = [
        {"id": "A", "text": "short"},
        {"id": "B", "text": "longest answer here"},
        {"id": "C", "text": "medium one"},
    ]
    rows = [
        {
            "id": f"k{i}",
            "prompt": f"q{i}",
            "candidates": cands,
            "annotations": {"x": ["B", "C", "A"], "y": ["B", "A", "C"]},
        }
        for i in range(4)
    ]

    def ranker(req, attempt):  # by length, longest first; item k3 gets a broken answer
        if "q3" in last_user_text(req):
            return json.dumps({"ranking": ["B", "B", "A"]})
        return json.dumps({"ranking": ["B", "C", "A"]})

    out = run_task(
        tmp_path,
        {"type": "ranking"},
        rows,
        ranker,
        "--- user\n{{ item.prompt }}\n{% for c in item.candidates %}{{ c.id }}: "
        "{{ c.text }}\n{% endfor %}",
    )
    (block,) = out["metrics"]["gold_sets"][0]["setups"]
    assert block["coverage"]["answered"] == 3
    assert block["failures"] == {"not_a_permutation": 1}
    # Borda: B 4 points, C 1, A 1 -> B, A, C (tie to the lower index). Top-1 B on 3 of 4.
    assert block["ranking"]["top1"]["estimate"] == pytest.approx(3 / 4)
    # Predicted B, C, A vs reference B, A, C: one discordant pair of three -> tau 1/3.
    assert block["ranking"]["tau"]["estimate"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("task", "row", "message"),
    [
        (
            {"type": "multilabel", "labels": TOPICS},
            {"id": "a", "text": "t", "annotations": {"x": ["food", "wine"]}},
            "unknown labels",
        ),
        (
            {"type": "ranking"},
            {"id": "a", "candidates": ["p", "q"], "annotations": {"x": ["A", "A"]}},
            "not a permutation",
        ),
        (
            {"type": "rubric", "axes": [{"name": "h", "labels": ["1", "2"]}]},
            {"id": "a", "text": "t", "annotations": {"x": {"h": "5"}}},
            "is not one of",
        ),
    ],
)
def test_structured_gold_errors_name_the_line(tmp_path, task, row, message):
    (tmp_path / "t.j2").write_text("--- user\nx\n")
    (tmp_path / "g.jsonl").write_text("# header\n" + json.dumps(row) + "\n")
    config = {
        "name": "bad",
        "task": task,
        "gold_sets": [{"id": "g", "path": "g.jsonl"}],
        "prompts": [{"id": "p", "template": "t.j2"}],
        "models": [{"id": "m", "model": "openai/x", "api_base": "http://127.0.0.1:9"}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError) as info:
        prepare(tmp_path / "c.yaml")
    (problem,) = info.value.problems
    assert problem.line == 2 and message in problem.message
