"""What bench/mutation.py mutates and which tests it runs for each module.

MODULES names a module's tests by hand where they are known; any other module gets the
test files that import it (or, when none does, its importers' tests): `auto_tests`,
`tests_for`. GROUPS names sets of modules for `--modules`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# module (under harness/) -> the test files that cover it (under tests/); see tests_for()
MODULES = {
    "metrics/compare.py": "metrics/test_compare.py metrics/test_decision_boundaries.py "
    "score/test_compare_holm.py score/test_compare_detectable_clusters.py",
    "score/compare.py": "score/test_compare_holm.py score/test_score.py score/test_clusters.py "
    "score/test_compare_clustered.py score/test_compare_detectable_clusters.py "
    "score/test_compare_mutants.py",
    "score/decision.py": "score/test_decision.py score/test_compare_holm.py",
    "metrics/selective.py": "metrics/test_selective.py metrics/test_decision_boundaries.py "
    "score/test_deploy_recalibrated.py metrics/test_ltt_clusters.py metrics/test_audit.py",
    "metrics/gate.py": "metrics/test_decision_boundaries.py metrics/test_gate.py "
    "metrics/test_gate_undefined_interval.py metrics/test_gate_mutants.py",
    "gate/regression.py": "gate/test_regression_rows.py score/test_clusters.py gate/test_gate.py "
    "gate/test_removed_gold_set.py gate/test_regression_mutants.py",
    "metrics/agreement.py": "metrics/test_agreement.py metrics/test_decision_boundaries.py "
    "metrics/test_agreement_mutants.py",
    "metrics/accuracy.py": "metrics/test_accuracy.py",
    "metrics/calibration.py": "metrics/test_calibration.py metrics/test_small_n.py",
    "metrics/intervals.py": "metrics/test_intervals.py metrics/test_small_n.py "
    "metrics/test_intervals_edges.py",
    "metrics/ppi.py": "metrics/test_ppi.py metrics/test_ppi_clusters.py metrics/test_ppi_edges.py",
    "metrics/alt_test.py": "metrics/test_alt_test.py metrics/test_alt_test_mutants.py "
    "metrics/test_alt_test_clusters.py",
    "metrics/clustered_mcnemar.py": "score/test_cluster_coverage.py score/test_clusters.py "
    "metrics/test_clustered_mcnemar_mutants.py",
    "metrics/cross_fit.py": "metrics/test_cross_fit_clusters.py metrics/test_recalibration.py "
    "score/test_deploy_recalibrated.py metrics/test_cross_fit_mutants.py",
    "metrics/dawid_skene.py": "metrics/test_dawid_skene.py score/test_dawid_skene_clusters.py "
    "metrics/test_dawid_skene_mutants.py",
    "metrics/ece_resampling.py": "metrics/test_ece_blocks.py metrics/test_intervals.py "
    "metrics/test_ece_resampling_mutants.py",
    # Its importers' tests, and its own edge cases (a test importing it directly would
    # otherwise narrow the automatic map to that file alone).
    "metrics/selective_clusters.py": "metrics/test_selective.py "
    "metrics/test_decision_boundaries.py score/test_deploy_recalibrated.py "
    "metrics/test_ltt_clusters.py metrics/test_audit.py metrics/test_selective_clusters_edges.py",
    "metrics/power.py": "cli/test_plan_power.py metrics/test_power.py "
    "metrics/test_verdict_power.py metrics/test_power_mutants.py",
}
MODULES = {k: [f"tests/{t}" for t in v.split()] for k, v in MODULES.items()}
GROUPS = {  # a name for --modules -> its modules and package prefixes
    "decision-path": "metrics/,score/compare.py,score/selection.py,score/decision.py,"
    "score/juries.py,gate/regression.py",
}
DEFAULT = "decision-path"


def expand(spec: str) -> list[str]:
    """Modules (relative to harness/) named by --modules: modules, package prefixes, groups."""
    out: list[str] = []
    for item in (x.strip().removeprefix("harness/") for x in spec.split(",")):
        if item in GROUPS:
            found = expand(GROUPS[item])
        elif item.endswith("/"):  # a package: its modules but __init__.py
            found = [f"{item}{p.name}" for p in sorted((ROOT / "harness" / item).glob("[!_]*.py"))]
        else:
            found = [item] if item else []
        out += [m for m in found if m not in out]
    return out


def _reexports(package: str) -> dict[str, str]:
    """Names harness/<package>/__init__.py imports from its modules -> that module's name."""
    init = ROOT / "harness" / package / "__init__.py"
    if not init.exists():
        return {}
    nodes = ast.walk(ast.parse(init.read_text()))
    found = [n for n in nodes if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module]
    return {a.asname or a.name: n.module for n in found for a in n.names}


def auto_tests(module: str) -> list[str]:
    """The test files that import `module` (harness/<pkg>/<name>.py) or are named after it."""
    pkg, name = module.removesuffix(".py").rsplit("/", 1)
    dotted = re.escape(f"harness.{pkg.replace('/', '.')}")
    direct = re.compile(rf"{dotted}\.{name}\b|harness/{re.escape(module)}")
    via = {name} | {k for k, v in _reexports(pkg).items() if v == name}
    found = {str(p.relative_to(ROOT)) for p in (ROOT / "tests" / pkg).glob(f"test_{name}*.py")}
    for test in sorted((ROOT / "tests").rglob("test_*.py")):
        text = test.read_text()  # `from harness.metrics import (a, b)` or `... import a, b`
        bodies = re.findall(rf"^\s*from {dotted} import (\([^)]*\)|.*)", text, re.M)
        if direct.search(text) or via & set(re.findall(r"\w+", " ".join(bodies))):
            found.add(str(test.relative_to(ROOT)))
    return sorted(found)


def tests_for(module: str) -> list[str]:
    """MODULES', else the importing tests, else its importers' (selective_clusters.py)."""
    if module in MODULES or auto_tests(module):
        return MODULES.get(module) or auto_tests(module)
    pkg, name = module.removesuffix(".py").rsplit("/", 1)
    used = re.compile(rf"^from (harness\.{pkg.replace('/', '.')}\.|\.){name} import", re.M)
    users = [p for p in sorted((ROOT / "harness" / pkg).glob("*.py")) if used.search(p.read_text())]
    found = [t for p in users for t in tests_for(f"{pkg}/{p.name}")]
    return list(dict.fromkeys(found))
