"""Dollar amounts: one format everywhere (harness.core.money.usd), small costs as decimals, never
`$7e-06` (Python's `g`) nor `$0.0000` (a fixed `.4f` that reads as free)."""

from __future__ import annotations

import re

import pytest
from conftest import flat, invoke, only_run_dir

from harness.core.money import usd

# Scientific notation after a dollar sign, or a tiny amount flattened to zeros.
BAD = re.compile(r"\$-?\d(\.\d+)?e-?\d|\$0\.0000(?!\d)")


@pytest.mark.parametrize(
    ("x", "shown"),
    [
        (7e-06, "$0.000007"),
        (7.1234e-06, "$0.00000712"),
        (4e-05, "$0.00004"),
        (0.0123, "$0.0123"),
        (0.5, "$0.50"),
        (0.9996, "$1.00"),
        (0, "$0.00"),
        (28, "$28.00"),
        (1234.5, "$1,234.50"),
        (-0.003, "-$0.003"),
        (None, "unknown"),
        (float("nan"), "unknown"),
    ],
)
def test_usd(x, shown):
    assert usd(x) == shown


def test_tiny_costs_read_as_decimals_in_every_output(srv, experiment, tmp_path):
    # $0.10 per million tokens: about 40 tokens an item, a few millionths of a dollar each.
    exp = experiment(srv, model={"input_cost_per_mtok": 0.1, "output_cost_per_mtok": 0.1})
    plan = invoke("plan", str(exp.config))
    assert plan.exit_code == 0, plan.output
    run = invoke("run", str(exp.config), "--quiet")
    assert run.exit_code == 0, run.output
    run_dir = only_run_dir(exp)
    baseline = tmp_path / "baseline.json"
    assert invoke("baseline", "save", str(run_dir), "-o", str(baseline)).exit_code == 0
    summary = tmp_path / "gate.md"
    gate = invoke("gate", str(exp.config), "--baseline", str(baseline), "--summary", str(summary))
    assert gate.exit_code == 0, gate.output
    outputs = {
        "plan": flat(plan.stdout),
        "run console": flat(run.output),
        "report.md": (run_dir / "report.md").read_text(encoding="utf-8"),
        "report.html": (run_dir / "report.html").read_text(encoding="utf-8"),
        "gate summary": summary.read_text(encoding="utf-8"),
    }
    for where, text in outputs.items():
        bad = [m.group(0) for m in BAD.finditer(text)]
        assert not bad, (where, bad)
        assert re.search(r"\$0\.0000\d*[1-9]", text), where  # the figure itself is shown
    assert re.search(r"spend \$0\.0000\d+", outputs["run console"])
    md_row = next(x for x in outputs["report.md"].splitlines() if x.startswith("| 1 | `zs@fake`"))
    assert re.search(r"\| \$0\.00000\d+ \|", md_row), md_row
    assert re.search(
        r"cost_usd_per_item \| \$0\.00000\d+ -> \$0\.00000\d+", outputs["gate summary"]
    )
