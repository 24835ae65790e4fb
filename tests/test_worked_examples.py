"""The worked examples of README run on a clean clone: converter, then `prelabel run`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.run.pipeline import run_experiment

REPO = Path(__file__).resolve().parents[1]
GOLDS = REPO.parent / "shared" / "golds"
pytestmark = pytest.mark.skipif(
    not GOLDS.is_dir(), reason=f"the shared gold sets are not at {GOLDS} (only beside a checkout)"
)


def convert(script: str, out: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr


def config_copy(name: str, tmp_path: Path, data: Path, extra: str = "") -> Path:
    text = (REPO / "configs" / "examples" / name).read_text()
    text = text.replace("../../data/external/" + data.name, str(data))
    text = text.replace("../../prompts/", f"{REPO}/prompts/")
    path = tmp_path / name
    path.write_text(text + extra)
    return path


def rows(path: Path) -> list[dict]:
    return [
        json.loads(line)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_llmfao_replay_scores_gpt_verdicts_against_the_crowd_without_calls(tmp_path):
    data = tmp_path / "llmfao"
    convert("llmfao_to_prelabel.py", data, "--limit", "300")
    result = run_experiment(
        config_copy("llmfao_replay.yaml", tmp_path, data), runs_dir=tmp_path / "runs"
    )
    assert result.totals.calls == 0
    gold = result.metrics["gold_sets"][0]
    by_setup = {b["setup"]: b for b in gold["setups"]}
    assert set(by_setup) == {"gpt4", "gpt35_instruct"}

    # Independent check of GPT-4's agreement: crowd majority (a split vote is a tie).
    reference = {}
    for item in rows(data / "gold.jsonl"):
        (top, n), *rest = Counter(item["annotations"].values()).most_common()
        reference[item["id"]] = "tie" if rest and rest[0][1] == n else top
    gpt4 = {r["id"]: r["label"] for r in rows(data / "gpt4_replay.jsonl")}
    agree = sum(gpt4[i] == ref for i, ref in reference.items()) / len(reference)
    block = by_setup["gpt4"]
    assert block["n_items"] == len(reference) == 300
    assert block["pairwise"]["agreement_with_ties"]["estimate"] == pytest.approx(agree)
    assert block["coverage"]["value"] == 1.0
    assert block["pairwise"]["both_orders"] is False
    assert "Pairwise view" in (result.run_dir / "report.md").read_text()


def test_convabuse_ordinal_on_the_local_model(tmp_path):
    pytest.importorskip("llama_cpp", reason="needs the [local] extra")
    data = tmp_path / "convabuse"
    convert("convabuse_to_prelabel.py", data, "--limit", "6")
    config = config_copy("convabuse_ordinal.yaml", tmp_path, data)
    result = run_experiment(config, runs_dir=tmp_path / "runs")
    gold = result.metrics["gold_sets"][0]
    assert gold["humans"]["reference"]["method"] == "median"
    (block,) = gold["setups"]
    assert block["coverage"]["value"] == 1.0  # the grammar keeps labels on the scale
    assert block["ordinal"]["within_one"]["n"] == 6
    assert block["calibration"]["sources"] == {"logprobs": 6}
