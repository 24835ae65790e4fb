"""Start-up (issue 15, item 9): `validate` and `plan` read a config without importing the
model backends or the statistics stack. Importing litellm alone takes seconds (9 s on a
busy 2-core machine); the time itself is a benchmark figure (docs/benchmarks.md), what is
imported is what this test pins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
def report():
    with open(out, "w") as f:
        json.dump(sorted({m.split(".")[0] for m in sys.modules}), f)
atexit.register(report)
from harness.cli.app import main
sys.argv[0] = "prelabel"
main()
"""


def imported(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text()))


def test_validate_imports_no_backend_and_no_statistics(tmp_path: Path) -> None:
    modules = imported(tmp_path, "validate", str(REPO / "configs/demo.yaml"))
    assert {"harness", "yaml", "pydantic"} <= modules  # the probe saw the command run
    assert not modules & {"litellm", "llama_cpp", "openai", "numpy", "scipy"}


def test_plan_of_a_local_model_imports_no_model_backend(tmp_path: Path) -> None:
    """(A remote model's plan does import litellm: its tokenizer and price map are the
    estimate.)"""
    modules = imported(tmp_path, "plan", str(REPO / "configs/demo.yaml"))
    assert "harness" in modules
    assert not modules & {"litellm", "llama_cpp", "openai"}
