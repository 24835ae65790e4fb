"""The package layout holds (docs/architecture.md): stations import only stations below them,
no module imports itself back through others, modules stay small, and task-type names are
spelled only where task types are defined."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"
# Bottom to top; a module may import its own station and any station before it.
STATIONS = [
    "core",
    "metrics",
    "providers",
    "config",
    "tasks",
    "inputs",
    "score",
    "report",
    "run",
    "gate",
    "deploy",
    "api",
    "cli",
]
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(HARNESS.rglob("*.py")):
        parts = path.relative_to(HARNESS.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every harness import, at any depth, except `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "harness":
                found += [(node.lineno, f"harness.{a.name}") for a in node.names]
            elif node.module.startswith("harness."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("harness.")]
    return found


def station(module: str) -> str:
    return module.split(".")[1]


def test_every_module_lives_in_a_station_and_at_most_three_at_the_top():
    top = [m for m in modules() if m.count(".") == 1 and station(m) not in STATIONS]
    assert len(top) <= 3, top
    unknown = {station(m) for m in modules() if m.count(".") >= 2} - set(STATIONS)
    assert not unknown, f"stations not in the layout: {unknown}"


def test_imports_point_down():
    upward = []
    for name, path in modules().items():
        if name.count(".") < 2:
            continue
        own = STATIONS.index(station(name))
        for line, target in imports(path):
            if station(target) in STATIONS and STATIONS.index(station(target)) > own:
                upward.append(f"{path.relative_to(HARNESS.parent)}:{line} imports {target}")
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_modules():
    mods = modules()
    graph = {
        name: {t for _, t in imports(path) if t in mods and t != name}
        for name, path in mods.items()
    }
    # A package's face importing its own modules is how a package is built, not a cycle.
    graph = {
        n: {t for t in ts if not (mods[n].name == "__init__.py" and t.startswith(n + "."))}
        for n, ts in graph.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            pytest.fail(" -> ".join(cycle))


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(HARNESS.parent)): n
        for p in modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


TYPE_NAMES = re.compile(r"[\"'](classification|ordinal|pairwise|multilabel|ranking|rubric)[\"']")
# Where a task type's name may be spelled: its definition, and the config schema that
# accepts it. Label Studio's <Pairwise> tag and Krippendorff's "ordinal" level are other
# vocabularies that happen to share a word.
ALLOWED = {"tasks", "metrics"}
OTHER_VOCABULARIES = {
    "harness/config/task.py": None,
    "harness/deploy/labelstudio.py": "pairwise",
    "harness/deploy/labelstudio_read.py": "pairwise",
    "harness/score/tasks.py": "ordinal",
}


def test_task_type_names_are_spelled_only_in_tasks_and_the_config_schema():
    found = []
    for name, path in modules().items():
        rel = str(path.relative_to(HARNESS.parent))
        if name.count(".") >= 1 and station(name) in ALLOWED:
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for word in TYPE_NAMES.findall(line):
                if rel in OTHER_VOCABULARIES and OTHER_VOCABULARIES[rel] in (None, word):
                    continue
                found.append(f"{rel}:{lineno}: {line.strip()}")
    assert not found, "\n".join(found)
