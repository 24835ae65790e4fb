"""The gold-set converters in examples/: mapping functions on hand-made rows, and end to end
on the real LLMFAO and ConvAbuse files in ../shared/golds (skipped where that folder is absent).

Expected counts are recomputed here from the raw CSVs with the csv module, independently of
the converters. The A/B rows named below were checked by hand against the response texts.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness.config import GoldSetConfig
from harness.inputs.goldset import load_gold_set
from harness.inputs.replay import read_replay

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
GOLDS = REPO.parent / "shared" / "golds"
LLMFAO = GOLDS / "llmfao"
CONVABUSE = GOLDS / "convabuse"
PAIRWISE = ["A", "B", "tie"]
SEVERITY = ["not_abusive", "ambiguous", "mild", "strong", "very_strong"]
CODE_TO_LEVEL = dict(zip(["1", "0", "-1", "-2", "-3"], SEVERITY, strict=True))

needs_llmfao = pytest.mark.skipif(
    not (LLMFAO / "crowd-comparisons.csv").is_file(),
    reason=f"real LLMFAO files not found in {LLMFAO} (the shared golds folder beside the repo)",
)
needs_convabuse = pytest.mark.skipif(
    not (CONVABUSE / "ConvAbuseEMNLPtest.csv").is_file(),
    reason=f"real ConvAbuse files not found in {CONVABUSE} (shared golds folder beside the repo)",
)


def load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


llmfao = load_module("llmfao_to_prelabel")
convabuse = load_module("convabuse_to_prelabel")


def run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO.parent,  # the default --golds must not depend on the working directory
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def load(path: Path, labels: list[str]):
    return load_gold_set(GoldSetConfig(id="g", path=path), path, labels)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- LLMFAO: the verdict mapping on hand-made rows ---------------------------------------------


@pytest.mark.parametrize(
    ("winner", "left", "right", "expected"),
    [
        ("left", "m_x", "m_y", "A"),  # the published layout: left is model_x's name
        ("right", "m_x", "m_y", "B"),
        ("tie", "m_x", "m_y", "tie"),
        ("left", "m_y", "m_x", "B"),  # names swapped: left shows model_y, so left -> B
        ("right", "m_y", "m_x", "A"),
        ("tie", "m_y", "m_x", "tie"),
        (" Right ", " m_x", "m_y ", "B"),  # spaces and case around values
    ],
)
def test_map_verdict(winner, left, right, expected):
    assert llmfao.map_verdict(winner, left, right, "m_x", "m_y") == expected


@pytest.mark.parametrize(
    ("winner", "left", "right", "name_b", "reason"),
    [
        ("left", "m_x", "other", "m_y", "names"),
        ("tie", "other", "m_y", "m_y", "names"),  # a tie on the wrong pair is still skipped
        ("both", "m_x", "m_y", "m_y", "unknown winner"),
        ("left", "m_x", "m_x", "m_x", "same name"),
    ],
)
def test_map_verdict_skips(winner, left, right, name_b, reason):
    with pytest.raises(llmfao.SkipRow, match=reason):
        llmfao.map_verdict(winner, left, right, "m_x", name_b)


def hand_pairs():
    pair = llmfao.Pair(7, 1, "Say hi.", "hi", "chat", 10, "hi", 20, "hello there")
    return {7: pair}, {10: "Ten", 20: "Twenty"}


def crowd_row(worker: str, winner: str, left="Ten", right="Twenty", **kw) -> dict[str, str]:
    row = {"id": "7", "prompt": "1", "model_x": "10", "model_y": "20"}
    row.update(worker=worker, winner=winner, left=left, right=right)
    row.update(kw)
    return row


def test_collect_crowd_hand_rows():
    pairs, models = hand_pairs()
    rows = [
        crowd_row("1", "left"),
        crowd_row("2", "right"),
        crowd_row("3", "tie"),
        crowd_row("4", "left", left="Twenty", right="Ten"),  # swapped names -> B
        crowd_row("5", "left"),
        crowd_row("5", "left"),  # same verdict again: kept once
        crowd_row("6", "left"),
        crowd_row("6", "right"),  # contradicts itself: both dropped
        crowd_row("7", "left", model_y="30"),  # not this pair's models
        crowd_row("8", "left", id="99"),  # unknown pair
        crowd_row("", "left"),  # no worker
        crowd_row("9", "maybe"),
    ]
    stats = llmfao.Stats()
    got = llmfao.collect_crowd(rows, pairs, models, stats)
    assert got == {7: {"w1": "A", "w2": "B", "w3": "tie", "w4": "B", "w5": "A"}}
    skipped = stats.skipped
    assert sum(skipped.values()) == 7
    assert skipped["rows: repeated judgment, same verdict (kept once)"] == 1
    assert skipped["rows: worker judged the pair again, verdicts differ (all dropped)"] == 2
    assert skipped["rows: prompt/model_x/model_y differ from pairs-crowd.jsonl"] == 1
    assert skipped["rows: pair id not in pairs-crowd.jsonl"] == 1
    assert skipped["rows: crowd row without a worker"] == 1
    assert skipped["rows: unknown winner 'maybe'"] == 1


def test_gold_line_puts_model_x_in_a():
    pairs, models = hand_pairs()
    line = llmfao.gold_line(pairs[7], models, {"w2": "B", "w10": "A"})
    assert line["id"] == "7"
    assert (line["response_a"], line["response_b"]) == ("hi", "hello there")
    assert (line["model_a"], line["model_b"]) == ("Ten", "Twenty")
    assert list(line["annotations"]) == ["w2", "w10"]  # numeric worker order
    assert line["meta"]["model_a"] == "Ten" and line["meta"]["prompt"] == "hi"


# --- LLMFAO: the real files -----------------------------------------------------------------


def llmfao_expected(min_annotators: int = 2):
    """Pairs, judgments and A/B/tie counts straight from crowd-comparisons.csv."""
    rows = read_rows(LLMFAO / "crowd-comparisons.csv")
    models = {}
    with (LLMFAO / "models.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            m = json.loads(line)
            models[str(m["id"])] = m["name"]
    # the premise of the mapping: `left` is model_x's name and `right` model_y's, every row
    assert all(
        (r["left"], r["right"]) == (models[r["model_x"]], models[r["model_y"]]) for r in rows
    )
    by_pair = defaultdict(dict)
    for r in rows:
        by_pair[r["id"]][r["worker"]] = r["winner"]
    kept = {p: v for p, v in by_pair.items() if len(v) >= min_annotators}
    winners = Counter(w for v in kept.values() for w in v.values())
    return {
        "rows": len(rows),
        "pairs": len(kept),
        "judgments": sum(len(v) for v in kept.values()),
        "workers": len({w for v in kept.values() for w in v}),
        "verdicts": {"A": winners["left"], "B": winners["right"], "tie": winners["tie"]},
        "ids": sorted(kept, key=int),
        "dropped": len(by_pair) - len(kept),
    }


@pytest.fixture(scope="module")
def llmfao_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("llmfao")
    stdout = run("llmfao_to_prelabel.py", "--out", str(out))
    return out, stdout


@needs_llmfao
def test_llmfao_gold_set_loads_with_counts(llmfao_out):
    out, stdout = llmfao_out
    exp = llmfao_expected()
    gold = load(out / "gold.jsonl", PAIRWISE)
    assert len(gold.items) == exp["pairs"] == 2124
    assert sum(len(i.annotations) for i in gold.items) == exp["judgments"] == 8916
    assert len(gold.annotators) == exp["workers"] == 124
    verdicts = Counter(v for i in gold.items for v in i.annotations.values())
    assert dict(verdicts) == exp["verdicts"] == {"A": 2906, "B": 2544, "tie": 3466}
    assert [i.id for i in gold.items] == exp["ids"]
    assert min(len(i.annotations) for i in gold.items) >= 2
    assert f"{exp['dropped']}  pairs: fewer than 2 annotators" in stdout
    item = gold.items[0]
    assert set(item.fields) == {"prompt", "response_a", "response_b", "model_a", "model_b"}
    assert set(item.meta) == {"prompt", "prompt_id", "prompt_type", "model_a", "model_b"}
    text = (out / "gold.jsonl").read_text(encoding="utf-8")
    assert text.startswith("# LLMFAO") and "CC BY 4.0" in text.split("\n{", 1)[0]
    assert "Converter: python examples/llmfao_to_prelabel.py" in text


# Checked by hand (response texts in pairs-crowd.jsonl, verdicts in crowd-comparisons.csv):
# 717: A = Weaver 12k writes a story, B = Claude Instant v1 answers " NIKE"; 5 x right -> B.
# 718: B = Claude v1 answers "NIKE"; 4 x right -> B.
# 724: A = Dolly v2 (12B) answers "NIKE"; 5 x left -> A.
# 725: B = Dolly v2 (3B) answers "Nike"; 4 x right -> B.
# 729: A = GPT 3.5 Turbo answers "NIKE"; 4 x left -> A.
# 12:  B = Dolly v2 (7B) is blank; workers 42, 67, 82, 44 left -> A, worker 41 tie.
# 81:  A = Code Llama Instruct (13B) is blank; 4 x right -> B.
# 0:   workers 14 and 116 right -> B (Weaver 12k), 58 and 83 tie.
HAND_CHECKED = {
    "717": ("Weaver 12k", "Claude Instant v1", {"B": 5}),
    "718": ("Weaver 12k", "Claude v1", {"B": 4}),
    "724": ("Dolly v2 (12B)", "Weaver 12k", {"A": 5}),
    "725": ("Weaver 12k", "Dolly v2 (3B)", {"B": 4}),
    "729": ("GPT 3.5 Turbo", "Weaver 12k", {"A": 4}),
    "12": ("Weaver 12k", "Dolly v2 (7B)", {"A": 4, "tie": 1}),
    "81": ("Code Llama Instruct (13B)", "Falcon Instruct (40B)", {"B": 4}),
}


@needs_llmfao
def test_llmfao_hand_checked_pairs(llmfao_out):
    out, _ = llmfao_out
    items = {i.id: i for i in load(out / "gold.jsonl", PAIRWISE).items}
    for pid, (model_a, model_b, verdicts) in HAND_CHECKED.items():
        item = items[pid]
        assert (item.fields["model_a"], item.fields["model_b"]) == (model_a, model_b), pid
        assert dict(Counter(item.annotations.values())) == verdicts, pid
    for pid in ("717", "718", "725"):
        assert items[pid].fields["response_b"].strip().lower() == "nike"
    for pid in ("724", "729"):
        assert items[pid].fields["response_a"].strip().lower() == "nike"
    assert items["12"].fields["response_b"].strip() == ""
    assert items["81"].fields["response_a"].strip() == ""
    assert items["12"].annotations["w41"] == "tie" and items["12"].annotations["w42"] == "A"
    assert items["0"].annotations == {"w14": "B", "w58": "tie", "w83": "tie", "w116": "B"}


@needs_llmfao
def test_llmfao_replay_files(llmfao_out):
    out, _ = llmfao_out
    gold_ids = {i.id for i in load(out / "gold.jsonl", PAIRWISE).items}
    mapping = {"left": "A", "right": "B", "tie": "tie"}
    for out_name, in_name in llmfao.REPLAY_SOURCES.items():
        replay = read_replay(out / out_name)
        raw = {r["id"]: mapping[r["winner"]] for r in read_rows(LLMFAO / in_name)}
        assert set(replay) == gold_ids
        assert {i: label for i, (label, _) in replay.items()} == {i: raw[i] for i in gold_ids}
        assert all(conf is None for _, conf in replay.values())
    gpt4 = read_replay(out / "gpt4_replay.jsonl")
    gpt3 = read_replay(out / "gpt3_replay.jsonl")
    # raw rows: gpt4 "0,...,left,..." and gpt3 "0,...,right,..."; pair 717 right (NIKE = B)
    assert gpt4["0"][0] == "A" and gpt3["0"][0] == "B"
    assert gpt4["717"][0] == "B" and gpt4["724"][0] == "A" and gpt4["729"][0] == "A"


@needs_llmfao
def test_llmfao_limit_and_min_annotators(tmp_path):
    stdout = run("llmfao_to_prelabel.py", "--out", str(tmp_path), "--limit", "7")
    gold = load(tmp_path / "gold.jsonl", PAIRWISE)
    exp = llmfao_expected()
    assert [i.id for i in gold.items] == exp["ids"][:7]
    assert "pairs written: 7" in stdout
    for name in ("gpt4_replay.jsonl", "gpt3_replay.jsonl"):
        assert set(read_replay(tmp_path / name)) == {i.id for i in gold.items}

    run("llmfao_to_prelabel.py", "--out", str(tmp_path / "k5"), "--min-annotators", "5")
    gold5 = load(tmp_path / "k5" / "gold.jsonl", PAIRWISE)
    assert len(gold5.items) == llmfao_expected(5)["pairs"] == 998
    assert all(len(i.annotations) == 5 for i in gold5.items)

    run("llmfao_to_prelabel.py", "--out", str(tmp_path / "k1"), "--min-annotators", "1")
    assert len(load(tmp_path / "k1" / "gold.jsonl", PAIRWISE).items) == 2139


# --- ConvAbuse: the one-hot check on hand-made cells ------------------------------------------


def cells(*values: str) -> dict[str, str]:
    return dict(zip(convabuse.CODES, values, strict=True))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("1", "0", "0", "0", "0"), ("not_abusive", 1)),
        (("0", "1", "0", "0", "0"), ("ambiguous", 1)),
        (("0", "0", "1", "0", "0"), ("mild", 1)),
        (("0", "0", "0", "1", "0"), ("strong", 1)),
        (("0", "0", "0", "0", "1"), ("very_strong", 1)),
        ((" 0", "0 ", "0", "0", "1"), ("very_strong", 1)),
        (("", "", "", "", ""), (None, 0)),  # did not label the row
        (("0, 0", "0, 0", "0, 0", "1, 1", "0, 0"), ("strong", 2)),  # repeats that agree
        (("1, 1, 1", "0, 0, 0", "0, 0, 0", "0, 0, 0", "0, 0, 0"), ("not_abusive", 3)),
    ],
)
def test_annotator_level(values, expected):
    assert convabuse.annotator_level(cells(*values)) == expected


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (("0", "0", "0", "0", "0"), convabuse.ZERO_SET),
        (("1", "0", "1", "0", "0"), convabuse.SEVERAL_SET),
        (("0, 0", "0, 0", "0, 0", "0, 1", "1, 0"), convabuse.REPEATS_DIFFER),  # test row 65
        (("0, 0", "0, 0", "0, 0", "0, 0", "1, 0"), convabuse.ZERO_SET),  # 2nd repeat empty
        (("1", "", "0", "0", "0"), convabuse.PARTLY_EMPTY),
        (("1, 1", "0", "0", "0", "0"), convabuse.RAGGED),
        (("2", "0", "0", "0", "0"), convabuse.NOT_BINARY),
        (("yes", "0", "0", "0", "0"), convabuse.NOT_BINARY),
    ],
)
def test_annotator_level_skips(values, reason):
    with pytest.raises(convabuse.Skip, match=reason):
        convabuse.annotator_level(cells(*values))


def test_levels_order_and_ids():
    assert list(convabuse.LEVELS) == SEVERITY
    assert convabuse.normalise_id("65.0") == "65"
    assert convabuse.normalise_id("x7") == "x7"


# --- ConvAbuse: the real files --------------------------------------------------------------


def convabuse_expected(splits: list[str]):
    """Items, annotations and level counts straight from the CSVs: an annotator counts when
    a severity cell is non-empty; a level when its column is all 1s ("1", "1, 1") and its
    other four columns all 0s; cells that mix 0 and 1 mean repeats that disagree."""
    items = annotated = disagree = 0
    levels = Counter()
    for split in splits:
        rows = read_rows(CONVABUSE / f"ConvAbuseEMNLP{split}.csv")
        annotators = sorted({k.split("_is_abuse")[0] for k in rows[0] if "_is_abuse." in k})
        for row in rows:
            items += 1
            for a in annotators:
                values = {c: row[f"{a}_is_abuse.{c}"].strip() for c in CODE_TO_LEVEL}
                if not any(values.values()):
                    continue
                annotated += 1
                parts = {c: {p.strip() for p in v.split(",")} for c, v in values.items()}
                if any(p == {"0", "1"} for p in parts.values()):
                    disagree += 1
                    continue
                on = [c for c, p in parts.items() if p == {"1"}]
                assert len(on) == 1 and all(parts[c] == {"0"} for c in parts if c not in on)
                levels[CODE_TO_LEVEL[on[0]]] += 1
    return {"items": items, "annotated": annotated, "disagree": disagree, "levels": levels}


@needs_convabuse
def test_convabuse_test_split(tmp_path):
    stdout = run("convabuse_to_prelabel.py", "--out", str(tmp_path))
    gold = load(tmp_path / "gold.jsonl", SEVERITY)
    exp = convabuse_expected(["test"])
    assert len(gold.items) == exp["items"] == 853
    n_labels = sum(len(i.annotations) for i in gold.items)
    assert n_labels == exp["annotated"] - exp["disagree"] == 2537
    assert exp["disagree"] == 10
    assert f"labelled the row several times, levels differ: {exp['disagree']}" in stdout
    levels = Counter(v for i in gold.items for v in i.annotations.values())
    assert levels == exp["levels"]
    assert dict(levels) == {
        "not_abusive": 2007,
        "ambiguous": 125,
        "mild": 161,
        "strong": 190,
        "very_strong": 54,
    }
    assert {i.meta["split"] for i in gold.items} == {"test"}
    assert {i.meta["bot"] for i in gold.items} == {"E.L.I.Z.A.", "CarbonBot"}
    item = gold.items[0]
    assert set(item.fields) == {"prev_agent", "prev_user", "agent", "user", "conv_id"}
    text = (tmp_path / "gold.jsonl").read_text(encoding="utf-8")
    head = text.split("\n{", 1)[0]
    assert "CONTENT WARNING" in head and "CC BY 4.0" in head and "--splits test" in head

    # Rows checked by hand against the raw cells of ConvAbuseEMNLPtest.csv:
    items = {i.id: i for i in gold.items}
    assert items["267"].annotations == {
        "Annotator2": "not_abusive",
        "Annotator6": "not_abusive",
        "Annotator7": "not_abusive",
    }
    assert items["1344"].annotations == {
        "Annotator2": "not_abusive",
        "Annotator5": "mild",
        "Annotator6": "ambiguous",
    }
    assert items["105"].annotations == {
        "Annotator5": "very_strong",
        "Annotator6": "strong",
        "Annotator8": "strong",
    }
    # 65: Annotator4 has -2 "0, 1" and -3 "1, 0" (repeats differ): dropped, the others kept.
    assert items["65"].annotations == {
        "Annotator3": "strong",
        "Annotator5": "strong",
        "Annotator6": "strong",
    }
    # 1697: Annotator4 "1, 1, 0" / "0, 0, 1" dropped; Annotator5 "1, 1" at -2 merged.
    assert items["1697"].annotations == {"Annotator2": "strong", "Annotator5": "strong"}


@needs_convabuse
def test_convabuse_all_splits_and_limit(tmp_path):
    run("convabuse_to_prelabel.py", "--out", str(tmp_path), "--splits", "train,valid,test")
    gold = load(tmp_path / "gold.jsonl", SEVERITY)
    exp = convabuse_expected(["train", "valid", "test"])
    assert len(gold.items) == exp["items"] == 4185
    n_labels = sum(len(i.annotations) for i in gold.items)
    assert n_labels == exp["annotated"] - exp["disagree"]
    assert Counter(v for i in gold.items for v in i.annotations.values()) == exp["levels"]
    assert Counter(i.meta["split"] for i in gold.items) == {
        "train": 2501,
        "valid": 831,
        "test": 853,
    }

    run("convabuse_to_prelabel.py", "--out", str(tmp_path / "small"), "--limit", "5")
    small = load(tmp_path / "small" / "gold.jsonl", SEVERITY)
    test_ids = [
        convabuse.normalise_id(r["example_id"])
        for r in read_rows(CONVABUSE / "ConvAbuseEMNLPtest.csv")
    ]
    assert [i.id for i in small.items] == test_ids[:5]


@pytest.mark.parametrize("module", [llmfao, convabuse], ids=["llmfao", "convabuse"])
def test_missing_golds_names_the_path_tried_and_the_option(module, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "shared" / "golds" / "gone"
    monkeypatch.setattr(module, "DEFAULT_GOLDS", missing)  # the default, absent
    with pytest.raises(SystemExit) as stop:
        module.main(["--out", str(tmp_path / "o")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"{missing} is not a folder (the default: the shared copy beside the checkout)" in err
    assert "pass their folder with --golds DIR" in err
    given = tmp_path / "mine"
    with pytest.raises(SystemExit):
        module.main(["--golds", str(given), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert f"{given} is not a folder;" in err and "--golds DIR" in err and "default" not in err
    assert not (tmp_path / "o").exists()


def test_bad_arguments_fail_cleanly(tmp_path):
    for script, args in [
        ("llmfao_to_prelabel.py", ["--golds", str(tmp_path / "nope")]),
        ("convabuse_to_prelabel.py", ["--golds", str(tmp_path / "nope")]),
        ("convabuse_to_prelabel.py", ["--splits", "dev"]),
        ("llmfao_to_prelabel.py", ["--limit", "0"]),
    ]:
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / script), *args, "--out", str(tmp_path / "o")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, (script, args, proc.stdout)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
