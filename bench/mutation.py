"""Mutation testing of the decision path: does a deliberate small bug make a test fail?

    nice -n 19 python bench/mutation.py --max-mutants 12 --json out.json   # decision-path
    python bench/mutation.py --list-mapping --modules metrics/   # each module's tests, no run
    python bench/mutation.py --list --modules metrics/selective.py   # the mutants, no run

--modules: comma-separated modules (metrics/compare.py), packages (metrics/: its modules but
__init__.py) and GROUPS (decision-path, the default: metrics/ and the compare, selection,
decision, jury and regression-gate modules). --max-mutants: per module, evenly spread.
--json is rewritten after each module: a stopped run keeps the modules it finished.

Each mutant is one small change of one module: a comparison's boundary (< to <=, > to >=)
or its negation (== to !=, is to is not, in to not in), an arithmetic or mask operator
(+/-, * and /, & and |), `and`/`or`, a dropped `not`, `~` or unary minus, a constant
tweaked (an int n to n - 1, 0 to 1; 0.05 to 0.5, 0.5 to 0.25, 0.0 to 1.0; True/False),
or a dropped call (`holm(p)` to `p`). A mutant is killed when a test fails (or the tests
run past a time limit); it survives when every test that runs its line still passes.

How, and why:
- The checkout is never touched: the tree is copied to --work (without .git, runs and
  caches) and every mutant is written there. Tests run with PYTHONPATH and the working
  directory at the copy, and the copy's `harness.__file__` is checked before anything runs.
- A module's tests (bench/mutation_targets.py): MODULES if listed there, else the test
  files importing it (`harness.metrics.power`, `from harness.metrics import power` or a
  name __init__.py re-exports from it, a `harness/metrics/power.py` path) and
  tests/metrics/test_power*.py, else its importers' in its package. Targeted, not the
  suite: the score is a lower bound.
- One traced run of those tests records which test executes which line of the module (a
  sys.settrace plugin, only the module's own frames); each mutant then runs only the tests
  that execute its lines, fastest first, stopping at the first failure. A mutant on a line
  no test executes survives unrun ("not covered"). Lines run only while importing
  (defaults, module constants) get every mapped test.
- Tests run in a child forked from a parent that has numpy, scipy, pytest and the other
  heavy imports loaded but never `harness`, so each child imports the mutated module fresh.
Exit 0 when the baseline is green, 2 on bad usage or a tree that is not the copy.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
# Which modules, and which tests cover each: bench/mutation_targets.py, loaded from its
# file because the bench folder is kept off sys.path (its scripts must not shadow modules
# in the forked test children).
_spec = importlib.util.spec_from_file_location(
    "mutation_targets", ROOT / "bench/mutation_targets.py"
)
targets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(targets)
MODULES, DEFAULT, expand, tests_for = (
    targets.MODULES,
    targets.DEFAULT,
    targets.expand,
    targets.tests_for,
)
IGNORE = (".git", "runs", ".prelabel-cache", ".pytest_cache", ".ruff_cache", ".hypothesis")
IGNORE += ("__pycache__", ".benchmarks", "*.egg-info", "mutants")
# Calls whose removal only changes a type or a container: noise, not a bug a test must see.
KEEP_CALLS = {"float", "int", "str", "bool", "list", "tuple", "dict", "set", "frozenset"}
KEEP_CALLS |= {"len", "range", "enumerate", "zip", "isinstance", "repr", "print", "Path"}
KEEP_CALLS |= {"asarray", "array", "ValueError", "TypeError", "UserError", "iter", "next"}
COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
COMPARE |= {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
COMPARE |= {ast.In: ast.NotIn, ast.NotIn: ast.In}
BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
BINOP |= {ast.FloorDiv: ast.Div, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
PRELOAD = ("numpy", "scipy.special", "scipy.stats", "scipy.optimize", "pytest", "hypothesis")
PRELOAD += ("jsonschema", "pydantic", "jinja2", "typer", "yaml", "sklearn.metrics")
PRELOAD += ("statsmodels.api", "krippendorff", "ppi_py")


@dataclass
class Mutant:
    module: str
    line: int
    end_line: int
    start: int  # byte offsets into the module's source
    end: int
    before: str
    after: str
    status: str = "not run"  # killed | survived | not covered | timeout
    tests_run: int = 0

    def where(self) -> str:
        return f"harness/{self.module}:{self.line}"

    def change(self) -> str:
        short = lambda t: " ".join(t.split()) if len(t) < 70 else " ".join(t.split())[:66] + "..."  # noqa: E731
        return f"{short(self.before)} -> {short(self.after)}"


def _swap(node: ast.AST, **changes) -> ast.AST:
    new = type(node)(**{f: getattr(node, f) for f in node._fields})
    for key, value in changes.items():
        setattr(new, key, value)
    return new


def _constant(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return 1 if value == 0 else value - 1
    if not isinstance(value, float):
        return None
    if value in (0.0, 1.0):
        return 1.0 - value
    return value * 10 if 0 < value <= 0.1 else value / 2 if 0 < value < 1 else value + 1


def mutations(node: ast.AST) -> list[ast.AST]:
    """The mutated versions of one expression node (the node itself is left unchanged)."""
    out: list[ast.AST] = []
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in COMPARE:
                ops = list(node.ops)
                ops[i] = COMPARE[type(op)]()
                out.append(_swap(node, ops=ops))
    elif isinstance(node, ast.BinOp) and type(node.op) in BINOP:
        out.append(_swap(node, op=BINOP[type(node.op)]()))
    elif isinstance(node, ast.BoolOp):
        out.append(_swap(node, op=ast.Or() if isinstance(node.op, ast.And) else ast.And()))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert | ast.USub):
        if not (isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)):
            out.append(node.operand)
    elif isinstance(node, ast.Constant):
        new = _constant(node.value)
        if new is not None:
            out.append(ast.Constant(new))
    elif isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name not in KEEP_CALLS and not isinstance(node.args[0], ast.Starred):
            out.append(node.args[0])
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP:
        out.append(_swap(node, op=BINOP[type(node.op)]()))
    return out


def _skipped(tree: ast.AST) -> set[int]:
    """ids of nodes not to mutate: annotations, f-strings, docstrings, raise messages."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        parts: list[ast.AST] = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            parts.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            parts.append(node.returns)
        if isinstance(node, ast.JoinedStr | ast.Raise):
            parts.append(node)
        for part in parts:
            skip.update(id(n) for n in ast.walk(part))
    return skip


def generate(module: str, source: str) -> list[Mutant]:
    raw, tree = source.encode(), ast.parse(source)
    starts, skip = [0] + [i + 1 for i, byte in enumerate(raw) if byte == 10], _skipped(tree)
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skip or not hasattr(node, "end_col_offset"):
            continue
        for new in mutations(node):
            a = starts[node.lineno - 1] + node.col_offset
            b = starts[node.end_lineno - 1] + node.end_col_offset
            text, before = ast.unparse(new), raw[a:b].decode()
            after = text if isinstance(node, ast.stmt) else f"({text})"
            found.append(Mutant(module, node.lineno, node.end_lineno, a, b, before, after))
    return sorted(found, key=lambda m: (m.line, m.start, m.after))


# ------------------------------------------------------------------------- the copy


def make_copy(work: Path) -> None:
    work = work.resolve()
    if work == ROOT or ROOT in work.parents or work in ROOT.parents:
        sys.exit(f"--work {work} must lie outside the checkout {ROOT}")
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(*IGNORE), symlinks=True)
    cmd = [sys.executable, "-c", "import harness; print(harness.__file__)"]
    env = {**os.environ, "PYTHONPATH": str(work)}
    got = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True).stdout.strip()
    if Path(got).resolve() != work / "harness" / "__init__.py":
        sys.exit(f"`import harness` in the copy resolves to {got!r}, not {work}: stopped")
    print(f"copy: {work} (import harness -> {got})")


TRACER = """
import json, os, sys, threading
TARGET = os.environ["MUTATION_TARGET"]
lines, durations, failed, current = {}, {}, [], ["<import>"]
def local(frame, event, arg):
    if event == "line":
        lines.setdefault(frame.f_lineno, set()).add(current[0])
    return local
def tracer(frame, event, arg):
    return local if frame.f_code.co_filename == TARGET else None
sys.settrace(tracer); threading.settrace(tracer)
import pytest
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    current[0] = item.nodeid; yield; current[0] = "<import>"
def pytest_runtest_logreport(report):
    durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration
    if report.failed: failed.append(report.nodeid)
def pytest_sessionfinish(session):
    out = {"lines": {k: sorted(v) for k, v in lines.items()}, "durations": durations,
           "failed": failed, "modules": sorted(sys.modules)}
    with open(os.environ["MUTATION_TRACE_OUT"], "w") as f: json.dump(out, f)
"""


def trace(work: Path, module: str, tests: list[str]) -> dict:
    target = work / "harness" / module
    out = work / f".mutation-trace-{module.replace('/', '-')}.json"
    (work / "_mutation_trace.py").write_text(TRACER)
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(MUTATION_TARGET=str(target), MUTATION_TRACE_OUT=str(out))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p"]
    subprocess.run([*cmd, "_mutation_trace", *tests], cwd=work, env=env, capture_output=True)
    return json.loads(out.read_text())


# ------------------------------------------------------------------------- the runs


def _outside_checkout(entry: str) -> bool:
    path = Path(entry or ".").resolve()
    return path != ROOT and ROOT not in path.parents


def _preload(names: list[str] = ()) -> None:
    """Heavy imports once in the parent (PRELOAD, and the third-party modules the traced run
    loaded), so each forked child only imports `harness` and the tests."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS threads across fork()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import importlib

    own = ("harness", "tests", "conftest", "test_", "fake_openai", "_mutation_trace", "bench")
    names = [n for n in names if not n.startswith(own) and "__main__" not in n]
    for name in [*PRELOAD, *names]:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    if any(name == "harness" or name.startswith("harness.") for name in sys.modules):
        sys.exit("harness was imported by the parent: a child would not see its mutant")


def run_tests(work: Path, nodeids: list[str], limit: float) -> str:
    """'passed', 'failed' or 'timeout': the tests in a forked child, at the first failure."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.chdir(work)
            # Only the copy: never the checkout (nor bench/, whose statistics.py shadows the
            # standard library's and puts the checkout on sys.path when imported).
            sys.path[:] = [str(work)] + [p for p in sys.path if _outside_checkout(p)]
            sys.dont_write_bytecode = True
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import pytest

            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *nodeids])
            used = getattr(sys.modules.get("harness"), "__file__", None)
            if used and Path(used).resolve() != work / "harness" / "__init__.py":
                os._exit(4)  # tested another tree than the mutated copy
            os._exit(0 if code == 0 else 1)
        except BaseException:
            os._exit(3)
    deadline = time.monotonic() + limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            if code == 4:
                sys.exit("a test run imported harness from outside the copy: stopped")
            return "passed" if code == 0 else "failed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.05)


def run_module(work: Path, module: str, tests: list[str], max_mutants: int | None) -> dict:
    path = work / "harness" / module
    source = path.read_bytes()
    mutants = generate(module, source.decode())
    if max_mutants is not None and len(mutants) > max_mutants:  # evenly spread, reproducible
        step = len(mutants) / max_mutants
        mutants = [mutants[int(i * step)] for i in range(max_mutants)]
    t0 = time.monotonic()
    # No mapped test: every mutant survives unrun (pytest without paths would run everything).
    empty = {"failed": [], "modules": [], "lines": {}, "durations": {}}
    traced = trace(work, module, tests) if tests else empty
    if traced["failed"]:
        print(f"  baseline: {len(traced['failed'])} test(s) fail on the unchanged tree; those")
        print("  are left out: " + ", ".join(traced["failed"][:5]))
    _preload(traced["modules"])
    bad = set(traced["failed"])
    every = sorted((t for t in traced["durations"] if t not in bad), key=traced["durations"].get)
    covered = {int(k): set(v) - bad for k, v in traced["lines"].items()}
    cache = path.parent / "__pycache__"
    for i, mut in enumerate(mutants, 1):
        hit = set().union(*(covered.get(n, set()) for n in range(mut.line, mut.end_line + 1)))
        nodeids = every if "<import>" in hit else [t for t in every if t in hit]
        if not nodeids:
            mut.status = "not covered"
            continue
        limit = 30 + 3 * sum(traced["durations"][t] for t in nodeids)
        path.write_bytes(source[: mut.start] + mut.after.encode() + source[mut.end :])
        for pyc in cache.glob(f"{path.stem}.*.pyc"):
            pyc.unlink()
        t1 = time.monotonic()
        try:
            result = run_tests(work, nodeids, limit)
        finally:
            path.write_bytes(source)
        mut.status = {"passed": "survived", "failed": "killed"}.get(result, result)
        mut.tests_run, took = len(nodeids), time.monotonic() - t1
        where = f"  [{i}/{len(mutants)}] {mut.status:8} {mut.where()}: {mut.change()}"
        print(f"{where} ({len(nodeids)} tests, {took:.0f} s)", flush=True)
    killed = sum(m.status in ("killed", "timeout") for m in mutants)
    return {
        "module": f"harness/{module}",
        "tests": tests,
        "mutants": len(mutants),
        "killed": killed,
        "not_covered": sum(m.status == "not covered" for m in mutants),
        "score": round(killed / len(mutants), 3) if mutants else None,
        "seconds": round(time.monotonic() - t0, 1),
        "survivors": [asdict(m) for m in mutants if m.status in ("survived", "not covered")],
    }


def _summary(results: list[dict]) -> None:
    print("\nmodule                          mutants  killed  not covered  score   time")
    for r in results:
        score = "n/a" if r["score"] is None else f"{r['score']:.2f}"
        counts = f"{r['mutants']:7}{r['killed']:8}{r['not_covered']:13}"
        print(f"{r['module']:32}{counts}  {score:6}{r['seconds']:6.0f} s")
    total, killed = sum(r["mutants"] for r in results), sum(r["killed"] for r in results)
    print(f"all: {killed} of {total} killed ({killed / max(total, 1):.2f})")
    print("\nsurvivors (file:line: before -> after [why not run]):")
    for r in results:
        for s in r["survivors"]:
            why = " [no test runs this line]" if s["status"] == "not covered" else ""
            print(f"  {r['module']}:{s['line']}: {Mutant(**s).change()}{why}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    groups = ", ".join(targets.GROUPS)
    known = f"modules under harness/ (e.g. {next(iter(MODULES))}), prefixes, {groups}"
    ap.add_argument("--modules", default=DEFAULT, help=f"comma-separated {known}")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mut-src"), help="the copy's folder")
    ap.add_argument("--max-mutants", type=int, help="at most this many per module (evenly spread)")
    ap.add_argument("--list", action="store_true", help="print the mutants and stop")
    ap.add_argument("--list-mapping", action="store_true", help="print each module's tests")
    ap.add_argument("--json", type=Path, help="also write the results here (after each module)")
    args = ap.parse_args(argv)
    chosen = expand(args.modules)
    unknown = [m for m in chosen if not (ROOT / "harness" / m).is_file()]
    if unknown or not chosen:
        print(f"unknown module(s) {unknown}; give {known}", file=sys.stderr)
        return 2
    if args.list_mapping or args.list:
        for module in chosen:
            how = "MODULES" if module in MODULES else "imports"
            if args.list_mapping:
                print(f"{module} ({how}): {' '.join(tests_for(module)) or '-'}")
                continue
            for mut in generate(module, (ROOT / "harness" / module).read_text()):
                print(f"{mut.where()}: {mut.change()}")
        return 0
    start = {"load_avg": [round(x, 2) for x in os.getloadavg()], "nproc": os.cpu_count()}
    print(f"machine: nproc {start['nproc']}, load average {start['load_avg']}")
    make_copy(args.work)
    _preload()
    results: list[dict] = []
    for module in chosen:
        tests = tests_for(module)
        print(f"{module} (tests: {' '.join(tests) or 'none'})", flush=True)
        results.append(run_module(args.work.resolve(), module, tests, args.max_mutants))
        end = [round(x, 2) for x in os.getloadavg()]
        if args.json:  # after every module: a run stopped midway keeps what it finished
            machine = {**start, "load_avg_end": end, "modules_planned": len(chosen)}
            args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    _summary(results)
    print(f"load average at the end: {end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
