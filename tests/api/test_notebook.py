"""examples/evaluate_llmfao.ipynb runs top to bottom in a real Jupyter kernel (nbclient):
the converter, `harness.evaluate`, the notebook's HTML view, the plot, the recommendation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDS = REPO.parent / "shared" / "golds"


def need(module: str):
    if os.environ.get("CI"):
        return __import__(module)  # CI installs the dev extra: missing is a failure there
    return pytest.importorskip(module, reason=f"{module} (dev extra) is not installed")


@pytest.mark.skipif(not GOLDS.is_dir(), reason=f"the shared gold sets are not at {GOLDS}")
def test_the_llmfao_notebook_runs_and_shows_the_leaderboard(tmp_path, monkeypatch):
    nbformat = need("nbformat")
    nbclient = need("nbclient")
    need("ipykernel")
    need("matplotlib")
    monkeypatch.setenv("PRELABEL_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("PRELABEL_NOTEBOOK_LIMIT", "300")
    monkeypatch.setenv("PRELABEL_ALLOW_PATHS", str(tmp_path))  # data outside the checkout
    nb = nbformat.read(REPO / "examples" / "evaluate_llmfao.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", resources={"metadata": {"path": str(REPO / "examples")}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert html and "<table>" in html[0] and "gpt4" in html[0] and "recommended:" in html[0]
    [run_dir] = (tmp_path / "runs").iterdir()
    assert (run_dir / "leaderboard.png").stat().st_size > 1000
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = nb.cells[-1].outputs[0]["data"]["text/plain"]
    assert repr(metrics["recommendation"]["recommended"]) in last
