"""Degenerate data never crashes the scorer (property-based, hypothesis).

Whole experiments are generated in memory for every task type, with degenerate cases
weighted heavily: one item, one class used, one annotator, every annotator agreeing, an LLM
identical to one annotator, every answer failed, ties everywhere, one setup, a class never
predicted, items with one rating, several samples, confidences missing / 0 / 1 / all
equal, costs unknown. Label records are built directly (no model is called); the real
`score_experiment` and `write_reports` run on them, and the contract is checked:

- nothing raises;
- metrics.json parses as strict JSON (no NaN / Infinity) and validates against the schema;
- every number in it is finite;
- every null statistic has its reason (the `note` convention of score/json_numbers.py: a block
  whose `estimate` / `value` is null carries a non-empty `note`);
- report.md and report.html are written and show no "nan" / "inf" as a number.
"""

from __future__ import annotations

import json
import math
import os
import re
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from conftest import bare_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import Experiment
from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.report.writer import write_reports
from harness.run.pipeline import score_experiment
from harness.score.json_numbers import NOT_FINITE, finite_tree

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "harness/schemas/metrics.schema.json").read_text())
TASKS = ("classification", "ordinal", "pairwise", "multilabel", "ranking", "rubric")
FAILURES = ("timeout", "no_label_found", "http_500", "not_in_labels")
SETTINGS = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # the same examples on every run and machine: CI never flaps
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# ---------------------------------------------------------------- generated experiments


def _weighted_int(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Mostly the smallest values (the degenerate ones), sometimes anything up to `hi`."""
    return st.one_of(st.just(lo), st.just(min(lo + 1, hi)), st.integers(lo, hi))


@st.composite
def label_space(draw, task_type: str) -> dict[str, Any]:
    """The task config and every value an annotation or a label may take."""
    if task_type in ("classification", "ordinal"):
        k = draw(_weighted_int(2, 5))
        names = list("abcde"[:k]) if task_type == "classification" else [str(i) for i in range(k)]
        return {"task": {"type": task_type, "labels": names}, "values": names}
    if task_type == "pairwise":
        swap = draw(st.booleans())
        return {
            "task": {"type": "pairwise", "pairwise": {"swap": swap}},
            "values": ["A", "B", "tie"],
        }
    if task_type == "multilabel":
        names = list("xyz"[: draw(_weighted_int(2, 3))])
        subsets = [
            [n for j, n in enumerate(names) if mask >> j & 1] for mask in range(2 ** len(names))
        ]
        return {"task": {"type": "multilabel", "labels": names}, "values": subsets}
    if task_type == "ranking":
        ids = list(string.ascii_uppercase[: draw(_weighted_int(2, 3))])
        perms = _permutations(ids)
        return {"task": {"type": "ranking"}, "values": perms, "candidates": ids}
    axes = [
        {"name": f"ax{a}", "labels": [str(i) for i in range(draw(_weighted_int(2, 3)))]}
        for a in range(draw(_weighted_int(1, 2)))
    ]
    values = [
        {ax["name"]: lev for ax, lev in zip(axes, combo, strict=True)}
        for combo in _product([ax["labels"] + [None] for ax in axes])
        if any(v is not None for v in combo)
    ]
    return {"task": {"type": "rubric", "axes": axes}, "values": values}


def _permutations(ids: list[str]) -> list[list[str]]:
    if len(ids) <= 1:
        return [list(ids)]
    return [[x, *rest] for x in ids for rest in _permutations([y for y in ids if y != x])]


def _product(choices: list[list[Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [()]
    for c in choices:
        out = [(*o, x) for o in out for x in c]
    return out


@st.composite
def gold_sets(draw, space: dict[str, Any], gold_id: str = "g") -> GoldSet:
    values = space["values"]
    # Up to 14 items, or 20-30: recalibration needs 20 items with a confidence, auto-accept 10.
    n_items = draw(st.one_of(_weighted_int(1, 14), st.integers(20, 30)))
    n_ann = draw(_weighted_int(1, 4))
    annotators = [f"ann{j}" for j in range(n_ann)]
    # The values the humans use: often one only (one class), sometimes all.
    used = draw(
        st.one_of(
            st.sampled_from(values).map(lambda v: [v]),
            st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique_by=repr),
            st.just(values),
        )
    )
    # all: the annotators agree on every item; split: every item's ratings are tied
    # between two values (no majority anywhere); none / some: drawn freely.
    agree = draw(st.sampled_from(["all", "none", "some", "split"]))
    one_rating = draw(st.sampled_from(["all", "none", "some"]))
    adjudicated = draw(st.booleans())
    meta_mode = draw(st.sampled_from(["none", "one", "two"]))
    fields_base: dict[str, Any] = {"text": "t"}
    if space["task"]["type"] == "pairwise":
        # Equal lengths (every length comparison a tie) or not.
        fields_base |= {"response_a": "aa", "response_b": draw(st.sampled_from(["bb", "bbbb"]))}
    if space["task"]["type"] == "ranking":
        fields_base |= {"candidates": [f"cand {c}" for c in space["candidates"]]}
    items = []
    for i in range(n_items):
        if one_rating == "all" or (one_rating == "some" and draw(st.booleans())):
            who = [draw(st.sampled_from(annotators))]
        else:
            who = draw(st.lists(st.sampled_from(annotators), min_size=1, unique=True)) or annotators
        if agree == "all" or (agree == "some" and draw(st.booleans())):
            v = draw(st.sampled_from(used))
            ann = {a: v for a in sorted(who)}
        elif agree == "split":
            pair = [used[i % len(used)], used[(i + 1) % len(used)]]
            ann = {a: pair[j % 2] for j, a in enumerate(sorted(who))}
        else:
            ann = {a: draw(st.sampled_from(used)) for a in sorted(who)}
        meta = {}
        if meta_mode != "none":
            meta = {"domain": "d0" if meta_mode == "one" or i % 2 else "d1"}
        items.append(
            GoldItem(
                id=f"i{i}",
                fields=dict(fields_base),
                annotations=ann,
                gold=draw(st.sampled_from(used)) if adjudicated and draw(st.booleans()) else None,
                meta=meta,
            )
        )
    groups = None
    if n_ann >= 2 and draw(st.booleans()):
        groups = {"first": (annotators[0],), "rest": tuple(annotators[1:])}
    present = tuple(sorted({a for it in items for a in it.annotations}))
    if groups:
        groups = {g: tuple(a for a in m if a in present) for g, m in groups.items()}
        groups = {g: m for g, m in groups.items() if m} or None
    return GoldSet(gold_id, f"{gold_id}.jsonl", tuple(items), present, "0" * 64, groups)


@st.composite
def confidence_plan(draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(["none", "zero", "one", "equal", "random", "sources"]))
    return {"kind": kind, "equal": draw(st.sampled_from([0.0, 0.5, 1.0]))}


def _confidence(draw, plan: dict[str, Any], label: Any, values: list[Any]) -> dict[str, Any]:
    kind = plan["kind"]
    if label is None or kind == "none":
        return {}
    if kind == "zero":
        c = 0.0
    elif kind == "one":
        c = 1.0
    elif kind == "equal":
        c = plan["equal"]
    else:
        c = draw(st.sampled_from([0.0, 1.0, 0.5, 1e-12, 1 - 1e-12, 0.3, 0.97]))
    out: dict[str, Any] = {"confidence": c, "confidence_source": "replay"}
    if kind == "sources":
        verbal = draw(st.sampled_from([0.0, 1.0, c]))
        out = {
            "confidence": c,
            "confidence_source": "logprobs",
            "confidences": {"logprobs": c, "verbalized": verbal},
        }
        if isinstance(label, str) and draw(st.booleans()):
            # As confidence.label_probabilities writes them: renormalised over the labels
            # (sometimes only the chosen label's entry, as in a hand-edited labels.jsonl).
            rest = [v for v in values if v != label]
            share = (1 - c) / len(rest) if rest else 0.0
            full = draw(st.booleans())
            out["label_probs"] = {label: c} | ({v: share for v in rest} if full else {})
    return out


@st.composite
def setup_records(
    draw, sid: str, gold: GoldSet, space: dict[str, Any], samples: int
) -> list[LabelRecord]:
    """One setup's records: a behaviour (copy an annotator, fail, one constant answer...),
    samples, confidences and costs, all drawn."""
    values = space["values"]
    behaviour = draw(
        st.sampled_from(["copy", "copy", "fail", "constant", "random", "mixed", "none"])
    )
    if behaviour == "none":  # the setup has no label at all on this gold set (not run)
        return []
    copied = draw(st.sampled_from(gold.annotators))
    constant = draw(st.sampled_from(values))
    conf = draw(confidence_plan())
    cost = draw(st.sampled_from([None, 0.0, 0.001]))
    tokens = draw(st.sampled_from([None, 0, 10]))
    latency = draw(st.sampled_from([None, 0.0, 0.5]))
    swap = space["task"].get("pairwise", {}).get("swap", False)
    failure = draw(st.sampled_from(FAILURES))
    records = []
    for item in gold.items:
        for sample in range(samples):
            for swapped in (False, True) if swap else (False,):
                if behaviour == "fail" or (behaviour == "mixed" and draw(st.booleans())):
                    label = None
                elif behaviour == "copy":
                    label = item.annotations.get(copied)
                    if label is None:
                        label = next(iter(item.annotations.values()))
                elif behaviour == "constant":
                    label = constant
                else:
                    label = draw(st.sampled_from(values))
                records.append(
                    LabelRecord(
                        setup=sid,
                        gold_set=gold.id,
                        item=item.id,
                        sample=sample,
                        swapped=swapped,
                        label=label,
                        failure=None if label is not None else failure,
                        cost_usd=cost,
                        input_tokens=tokens,
                        output_tokens=tokens,
                        latency_s=latency,
                        cached=draw(st.booleans()),
                        **_confidence(draw, conf, label, values),
                    )
                )
    if draw(st.booleans()) and records:  # an item the setup never answered at all
        dropped = records[0].item
        records = [r for r in records if r.item != dropped]
    return records


@st.composite
def experiments(draw, task_type: str | None = None):
    task_type = task_type or draw(st.sampled_from(TASKS))
    space = draw(label_space(task_type))
    golds = [draw(gold_sets(space, f"g{i}")) for i in range(draw(st.sampled_from([1, 1, 2])))]
    n_setups = draw(_weighted_int(1, 3))
    samples = draw(st.sampled_from([1, 1, 2, 3]))
    grouped = n_setups > 1 and draw(st.booleans())
    prompts = [
        {"id": f"p{i}", "template": "t.j2", **({"group": "para"} if grouped else {})}
        for i in range(n_setups)
    ]
    source = draw(st.sampled_from(["auto", "auto", "logprobs", "verbalized", "self_consistency"]))
    setups = [Setup(f"p{i}@m", f"p{i}", "m", source) for i in range(n_setups)]
    records = [
        r for g in golds for s in setups for r in draw(setup_records(s.id, g, space, samples))
    ]
    constraints = draw(
        st.sampled_from(
            [
                {},
                {
                    "min_kappa_low": 0.0,
                    "max_ece": 0.2,
                    "min_auto_accept_share": 0.1,
                    "max_cost_per_1k_usd": 10.0,
                    "min_coverage": 0.5,
                },
            ]
        )
    )
    costs = draw(
        st.sampled_from(
            [{}, {"human_label_usd": 0.0, "human_review_usd": 0.0}, {"human_label_usd": 0.1}]
        )
    )
    exp = Experiment.model_validate(
        {
            "name": "degenerate",
            "task": space["task"],
            "gold_sets": [{"id": g.id, "path": g.path} for g in golds],
            "prompts": prompts,
            "models": [{"id": "m", "model": "openai/m", "params": {"temperature": 1.0}}],
            "run": {"samples": samples},
            "report": {
                "bootstrap": 100,  # the least the config allows: enough to exercise intervals
                "level": draw(st.sampled_from([0.95, 0.51, 0.99])),
                # A loose target too, so that some thresholds are found on a few items.
                "target_error": draw(st.sampled_from([0.05, 0.4])),
                "delta": draw(st.sampled_from([0.1, 0.5])),
                "recalibration": draw(
                    st.sampled_from(["none", "temperature", "platt", "isotonic"])
                ),
                "constraints": constraints,
                "alt_test": {"min_items": 5},
                # Both references on every task type: Dawid-Skene on one item, one
                # annotator, a class nobody used must hold the contract too.
                "reference": draw(st.sampled_from(["majority", "dawid_skene"]))
                if space["task"]["type"] != "ranking"  # refused there, with a clear error
                else "majority",
            },
            "costs": costs,
        }
    )
    return exp, golds, setups, records


# ---------------------------------------------------------------- the contract


def _reject_constant(name: str) -> float:
    raise AssertionError(f"metrics.json holds the non-JSON number {name}")


def _walk(value: Any, path: str = "$"):
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")


STAT_KEYS = ("estimate", "value")
# A number rendered as nan or inf in a report: a word on its own, not inside another word.
NON_FINITE_TEXT = re.compile(r"(?<![A-Za-z])[-+]?(nan|inf|infinity)(?![A-Za-z])", re.IGNORECASE)


def check_contract(metrics_path: Path, run_dir: Path) -> dict[str, Any]:
    text = metrics_path.read_text(encoding="utf-8")
    data = json.loads(text, parse_constant=_reject_constant)
    jsonschema.validate(data, SCHEMA)
    for path, value in _walk(data):
        if isinstance(value, float):
            assert math.isfinite(value), f"{path} = {value}"
        if isinstance(value, dict):
            for key in STAT_KEYS:
                if key in value and value[key] is None:
                    assert value.get("note"), f"{path}.{key} is null without a note: {value}"
            note = value.get("note")
            assert note is None or isinstance(note, str), f"{path}.note = {note!r}"
            # The writer's guard (json_numbers.finite_tree) left its mark: a statistic let a
            # non-finite number through, to be fixed where it is computed.
            assert NOT_FINITE not in (note or ""), f"{path}: {note}"
    for name in ("report.md", "report.html"):
        report = (run_dir / name).read_text(encoding="utf-8")
        bad = NON_FINITE_TEXT.search(report)
        assert bad is None, f"{name}: {report[max(0, bad.start() - 80) : bad.end() + 40]!r}"
    return data


def score_and_report(exp, golds, setups, records, run_dir: Path) -> dict[str, Any]:
    metrics = score_experiment(exp, golds, setups, records)
    metrics["run_id"] = "r"
    metrics["experiment"] = exp.name
    run_dir.mkdir(parents=True, exist_ok=True)
    write_reports(run_dir, bare_manifest(), metrics)
    return check_contract(run_dir / "metrics.json", run_dir)


def _fresh_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.mark.parametrize("task_type", TASKS)
@SETTINGS
@given(data=st.data())
def test_degenerate_experiments_score_and_report(task_type, data, tmp_path_factory):
    exp, golds, setups, records = data.draw(experiments(task_type))
    score_and_report(exp, golds, setups, records, _fresh_dir(tmp_path_factory))


# ---------------------------------------------------------------- the bugs found, pinned


def _fixed(task: dict[str, Any], annotations: list[dict[str, Any]], labels: list[Any], **report):
    """One gold set (item i rated `annotations[i]`), one setup answering `labels[i]`."""
    items = tuple(GoldItem(f"i{i}", {"text": "t"}, a) for i, a in enumerate(annotations))
    names = tuple(sorted({n for a in annotations for n in a}))
    gold = GoldSet("g", "g.jsonl", items, names, "0" * 64)
    records = [
        LabelRecord(setup="p@m", gold_set="g", item=f"i{i}", label=lab, **extra)
        for i, (lab, extra) in enumerate(labels)
    ]
    exp = Experiment.model_validate(
        {
            "name": "pinned",
            "task": task,
            "gold_sets": [{"id": "g", "path": "g.jsonl"}],
            "prompts": [{"id": "p", "template": "t.j2"}],
            "models": [{"id": "m", "model": "openai/m"}],
            "report": {"bootstrap": 100, **report},
        }
    )
    return exp, [gold], [Setup("p@m", "p", "m")], records


def test_alt_test_at_zero_variance_has_a_null_t_with_its_reason(tmp_path):
    """Bug: everyone (annotators and LLM) agreeing on every item makes every difference
    d_i = 0, so the alt-test's t is -inf, and metrics.json could not be written."""
    exp, golds, setups, records = _fixed(
        {"type": "classification", "labels": ["a", "b"]},
        [{"x": "a", "y": "a"}] * 5,
        [("a", {})] * 5,
        alt_test={"min_items": 5},
    )
    data = score_and_report(exp, golds, setups, records, tmp_path)
    rows = data["gold_sets"][0]["setups"][0]["alt_test"]["per_annotator"]
    assert [r["t"] for r in rows] == [None, None]
    assert all("zero variance" in r["note"] and r["p_value"] == 0.0 for r in rows)


def test_ordinal_label_probs_over_some_levels_are_renormalised(tmp_path):
    """Bug: label_probs that list only some levels (a hand-edited labels.jsonl) do not sum
    to 1, and the mean expected level raised ValueError."""
    partial = {"confidence": 0.6, "confidence_source": "logprobs", "label_probs": {"1": 0.6}}
    exp, golds, setups, records = _fixed(
        {"type": "ordinal", "labels": ["0", "1", "2"]},
        [{"x": "1"}, {"x": "2"}],
        [("1", partial), ("2", {"label_probs": {"2": 0.25, "1": 0.25}, **_conf(0.25)})],
    )
    data = score_and_report(exp, golds, setups, records, tmp_path)
    level = data["gold_sets"][0]["setups"][0]["ordinal"]["mean_expected_level"]
    assert level == {"value": 1.25, "n": 2}  # item 1: level 1; item 2: 1.5


def _conf(c: float) -> dict[str, Any]:
    return {"confidence": c, "confidence_source": "logprobs"}


def test_one_label_everywhere_gives_null_agreement_with_reasons(tmp_path):
    exp, golds, setups, records = _fixed(
        {"type": "classification", "labels": ["a", "b"]},
        [{"x": "a", "y": "a"}] * 3,
        [("a", {})] * 3,
    )
    data = score_and_report(exp, golds, setups, records, tmp_path)
    humans = data["gold_sets"][0]["humans"]
    assert humans["fleiss_kappa"]["value"] is None
    assert "same label" in humans["fleiss_kappa"]["note"]  # was: a null with note None
    kappa = data["gold_sets"][0]["setups"][0]["kappa"]
    assert kappa["estimate"] is None and "chance agreement is 1" in kappa["note"]
    (never,) = [c for c in data["gold_sets"][0]["setups"][0]["per_class"] if c["label"] == "b"]
    assert never["precision"] is None and "never predicted" in never["note"]


def test_the_writer_turns_a_non_finite_number_into_null_with_a_note(tmp_path, caplog):
    """The last guard: whatever a statistic lets through, metrics.json stays strict JSON
    and says what was dropped (and the run says so on stderr)."""
    exp, golds, setups, records = _fixed(
        {"type": "classification", "labels": ["a", "b"]}, [{"x": "a"}, {"x": "b"}], [("a", {})] * 2
    )
    metrics = score_experiment(exp, golds, setups, records)
    metrics |= {"run_id": "r", "experiment": "pinned"}
    block = metrics["gold_sets"][0]["setups"][0]
    block["kappa"]["low"] = float("-inf")
    block["usage"]["n_records"] = np.int64(2)  # numpy scalars are not JSON either
    write_reports(tmp_path, bare_manifest(), metrics)
    data = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=_reject_constant)
    kappa = data["gold_sets"][0]["setups"][0]["kappa"]
    assert kappa["low"] is None and f"low {NOT_FINITE} (-inf)" in kappa["note"]
    assert data["gold_sets"][0]["setups"][0]["usage"]["n_records"] == 2
    assert "non-finite" in caplog.text and "kappa.low" in caplog.text
    assert finite_tree({"a": [1.0, float("nan")], "b": {"c": float("inf")}}) == ["$.a[1]", "$.b.c"]


# ---------------------------------------------------------------- end to end, through the CLI


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) or "# nothing\n", "utf-8")


# (task, gold rows, {setup: replay rows}): one item with one rating; 25 items on which every
# annotator agrees on one level, confidences all 0; one pair with a split vote.
CLI_CASES = {
    "classification": (
        {"type": "classification", "labels": ["pos", "neg"]},
        [{"id": "only", "text": "t", "annotations": {"ann": "pos"}}],
        {
            "same": [{"id": "only", "label": "pos", "confidence": 1.0}],
            "failed": [],  # every item missing from the replay: all failed
        },
    ),
    "ordinal": (
        {"type": "ordinal", "labels": ["1", "2", "3"]},
        [{"id": f"i{i}", "text": "t", "annotations": {"a": "2", "b": "2"}} for i in range(25)],
        {"same": [{"id": f"i{i}", "label": "2", "confidence": 0.0} for i in range(25)]},
    ),
    "pairwise": (
        {"type": "pairwise"},
        [
            {
                "id": "p",
                "response_a": "x",
                "response_b": "y",
                "annotations": {"a": "A", "b": "B"},
            }
        ],
        {"tie": [{"id": "p", "label": "tie"}]},
    ),
    "rubric": (
        {"type": "rubric", "axes": [{"name": "help", "labels": ["1", "2"]}]},
        [{"id": "r", "text": "t", "annotations": {"a": {"help": "1"}}}],
        {"same": [{"id": "r", "label": {"help": "1"}, "confidence": 0.5}]},
    ),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_prelabel_run_on_a_degenerate_gold_set_exits_0_without_a_traceback(case, tmp_path):
    task, gold, replays = CLI_CASES[case]
    _write_jsonl(tmp_path / "gold.jsonl", gold)
    for sid, rows in replays.items():
        _write_jsonl(tmp_path / f"{sid}.jsonl", rows)
    config = {
        "name": f"degenerate_{case}",
        "task": task,
        "gold_sets": [{"id": "g", "path": "gold.jsonl"}],
        "models": [{"id": sid, "model": f"replay/{sid}.jsonl"} for sid in replays],
        "report": {"bootstrap": 100, "recalibration": "temperature", "alt_test": {"min_items": 5}},
    }
    (tmp_path / "exp.yaml").write_text(json.dumps(config), "utf-8")  # JSON is YAML
    runs = tmp_path / "runs"
    env = {
        **os.environ,
        "PRELABEL_CACHE_DIR": str(tmp_path / "cache"),
        "PRELABEL_PROJECT_ROOT": str(tmp_path),
    }
    command = [sys.executable, "-m", "harness.cli"]
    done = subprocess.run(
        [*command, "run", str(tmp_path / "exp.yaml"), "--runs-dir", str(runs), "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=1800,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    (run_dir,) = runs.iterdir()
    check_contract(run_dir / "metrics.json", run_dir)
    if case != "classification":
        return  # `prelabel report` rescores the same way: once is enough (2-3 s a command)
    rebuilt = subprocess.run(
        [*command, "report", str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=1800,
    )
    assert rebuilt.returncode == 0 and "Traceback" not in rebuilt.stdout + rebuilt.stderr
    check_contract(run_dir / "metrics.json", run_dir)
