"""Same outputs: prove that two versions of prelabel write byte-identical results.

For a refactor meant to change no behaviour: runs recorded experiments with the code of
git revision REV (BEFORE) and of a working tree (AFTER), and compares each run's
`metrics.json` and `labels.jsonl` byte for byte after blanking only the fields that differ
between two runs of one and the same tree (see NORMALISE).

    python bench/same_outputs.py --before HEAD                      # HEAD vs this checkout
    python bench/same_outputs.py --before HEAD~3 --after DIR --cases demo,ranking
    python bench/same_outputs.py --before HEAD --work /tmp/so --raw # keep folders, no blanking

How, and why:
- Each run is a subprocess with PYTHONPATH=<its tree>, in a scratch copy of that tree's
  inputs (configs, prompts, data, examples; never harness/, which would shadow the tree).
  It reports `harness.__file__`; one from elsewhere stops everything with exit 2. The
  `prelabel` entry point is read from each tree's pyproject.toml: a moved CLI is followed.
- Both sides run at the SAME scratch path (renamed away afterwards), so absolute paths in
  the outputs (metrics.json names the gold set's path) are equal without normalising.
- Both sides share ONE label cache per case ($PRELABEL_CACHE_DIR). A BEFORE run that made
  calls was a warm-up filling the cache: BEFORE runs again and that replay is compared with
  AFTER's (a paid run and a replay rightly differ in `cached`, `attempts`, record order and
  metrics' `usage`). AFTER making calls means the cache keys changed: said, still compared.
- Cases: demo (shipped labels imported), llmfao (replayed GPT verdicts), convabuse (the
  local model: 145 calls in the warm-up, 4 minutes on 2 idle cores; all others together
  take about 2), multilabel / ranking / rubric (seeded 40-item gold sets, 3 annotators,
  over real HTTP from tests/fake_openai.py with deterministic, imperfect responders: wrong
  answers and an unparseable one).

Exit 0 when every case is identical, 1 otherwise, 2 on bad usage. Needs the [local,dev]
extras (llama-cpp-python, aiohttp) and the gold sets in ../shared/golds (--golds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from itertools import zip_longest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# bench/statistics.py must not shadow the standard library's `statistics` (bench/common.py)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

CASES = ("demo", "llmfao", "convabuse", "multilabel", "ranking", "rubric")
INPUTS = ("configs", "prompts", "data", "examples")  # what a run reads
# Found by running one tree twice against one filled cache and diffing (--raw shows them):
NORMALISE = {
    # metrics.json: the run folder's name, made of the start time and a random suffix.
    "metrics.json": re.compile(r'(?m)^(  "run_id": )"[^"\n]*"'),
    # labels.jsonl: unix times at which each record was read from the cache in this run.
    # (`latency_s` of a cached record is the recorded call's, so it is equal and kept.)
    "labels.jsonl": re.compile(r'("(?:started_at|finished_at)":)(-?[0-9][0-9.eE+-]*|null)'),
}
# Runs `prelabel` from the tree on PYTHONPATH, after proving that it is that tree's harness.
DRIVER = """
import importlib, os, sys
tree, entry = os.path.realpath(sys.argv[1]), sys.argv[2]
sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
import harness
where = os.path.realpath(harness.__file__)
print("same_outputs: harness from", where, file=sys.stderr, flush=True)
if not where.startswith(tree + os.sep):
    print(f"same_outputs: harness imported from {where}, not from {tree}", file=sys.stderr)
    sys.exit(97)
module, func = entry.split(":")
sys.argv = ["prelabel", *sys.argv[3:]]
sys.exit(getattr(importlib.import_module(module), func)())
"""


class Abort(Exception):
    """The check itself cannot be trusted (bad usage, wrong tree imported): exit 2."""


def entry_point(tree: Path) -> str:
    """`prelabel = "module:func"` from the tree's pyproject.toml (the CLI may move)."""
    text = (tree / "pyproject.toml").read_text()
    found = re.search(r'^prelabel\s*=\s*["\']([\w.]+:\w+)["\']', text, re.M)
    if not found:
        raise Abort(f"no `prelabel` entry point in {tree / 'pyproject.toml'}")
    return found.group(1)


def extract(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True)
    if archive.returncode != 0:
        raise Abort(f"git archive {rev}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


class Side:
    """One version of the code, running one case in the scratch folder."""

    def __init__(self, name: str, tree: Path, scratch: Path, case_dir: Path, golds: Path):
        self.name, self.tree, self.scratch, self.golds = name, tree.resolve(), scratch, golds
        self.log, cache = case_dir / f"{name}.log", case_dir / "cache"
        self.entry = entry_point(self.tree)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRELABEL_")}
        env.update(
            PYTHONPATH=str(self.tree),
            LITELLM_LOCAL_MODEL_COST_MAP="True",  # never fetch the price list
            PRELABEL_CACHE_DIR=str(cache),  # one cache for both sides (all commands read it)
            PRELABEL_PROJECT_ROOT=str(scratch),  # the input boundary a checkout would have
            PYTHONHASHSEED="0",  # set order must not make two runs of one tree differ
        )
        self.env = env

    def python(self, *args: str, what: str) -> None:
        """Run a command in the scratch folder; a failure is this side's result."""
        with self.log.open("a") as log:
            log.write(f"\n$ {what}\n")
            log.flush()
            done = subprocess.run(
                [sys.executable, *args], cwd=self.scratch, env=self.env, stdout=log, stderr=log
            )
        if done.returncode == 97:  # the driver found another tree's harness: stop it all
            raise Abort(f"{self.name}: harness not imported from {self.tree}; see {self.log}")
        if done.returncode != 0:
            tail = self.log.read_text().strip().splitlines()[-3:]
            raise RuntimeError(
                f"{self.name}: `{what}` exited {done.returncode}: {' | '.join(tail)}"
            )

    def prelabel(self, *argv: str) -> None:
        """`prelabel ARGV` through DRIVER, which exits 97 on another tree's harness."""
        what = "prelabel " + " ".join(argv)
        self.python("-c", DRIVER, str(self.tree), self.entry, *argv, what=what)


# ----------------------------------------------------------------------------- cases


def setup_demo(side: Side, server) -> str:
    side.prelabel("cache", "import", "data/demo/labels/demo.jsonl.gz")  # README quick start
    return "configs/demo.yaml"


CONVERTED = {  # examples/<name>_to_prelabel.py arguments, and the worked example's config
    "llmfao": (["--limit", "300"], "configs/examples/llmfao_replay.yaml"),
    "convabuse": ([], "configs/examples/convabuse_ordinal.yaml"),  # the config takes 150 items
}


def setup_converted(side: Side, name: str) -> str:
    """The README's worked example: convert the shared gold set, then run its config."""
    extra, config = CONVERTED[name]
    script, golds = f"examples/{name}_to_prelabel.py", str(side.golds / name)
    side.python(script, "--golds", golds, "--out", f"data/external/{name}", *extra, what=script)
    return config


def crc(text: str) -> int:
    return zlib.crc32(text.encode())  # not hash(): the same in every process


def user_text(request: dict) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


TOPICS = {"food": "tasty", "service": "waiter", "price": "expensive", "ambience": "music"}
AXES = {"helpfulness": ["1", "2", "3", "4", "5"], "clarity": ["low", "medium", "high"]}


def multilabel_gold(rng: random.Random, i: int) -> dict:
    true = [t for t in TOPICS if rng.random() < 0.4]
    words = [TOPICS[t] for t in true] + rng.sample(["nice", "day", "went", "again", "ok"], 2)
    rng.shuffle(words)
    notes = {a: [t for t in TOPICS if (t in true) != (rng.random() < 0.12)] for a in "xyz"}
    return {"id": f"m{i:02d}", "text": f"review {i}: " + " ".join(words), "annotations": notes}


def multilabel_answer(request: dict, attempt: int) -> str:
    text = user_text(request).split("Text: ")[1]
    if text.startswith("review 7:"):
        return "Sorry, I cannot tell."  # the unparseable answer
    tags = [t for t, word in TOPICS.items() if word in text]
    if crc(text) % 5 == 0 and tags:
        tags = tags[1:]  # misses one
    if crc(text) % 7 == 0 and "price" not in tags:
        tags.append("price")  # sees one that is not there
    return json.dumps({"labels": tags})


def ranking_gold(rng: random.Random, i: int) -> dict:
    sizes = rng.sample(range(1, 9), 4)
    cands = [{"id": c, "text": " ".join(["word"] * n)} for c, n in zip("ABCD", sizes, strict=True)]
    best_first = [c["id"] for c in sorted(cands, key=lambda c: -len(c["text"]))]
    notes = {}
    for a in "xyz":
        order = list(best_first)
        if rng.random() < 0.35:  # this annotator swaps two neighbours
            j = rng.randrange(3)
            order[j], order[j + 1] = order[j + 1], order[j]
        notes[a] = order
    return {"id": f"k{i:02d}", "prompt": f"question {i}", "candidates": cands, "annotations": notes}


def ranking_answer(request: dict, attempt: int) -> str:
    text = user_text(request)
    if "question 11\n" in text:
        return "They are all fine."  # the unparseable answer
    cands = re.findall(r"^([A-D]): (.*)$", text, re.M)
    order = [c for c, _ in sorted(cands, key=lambda c: -len(c[1]))]
    if "question 5\n" in text:
        order[1] = order[0]  # not a permutation
    elif crc(text) % 4 == 0:
        order[0], order[1] = order[1], order[0]
    return json.dumps({"ranking": order})


def rubric_truth(text: str) -> dict[str, int]:
    return {axis: crc(axis + text) % len(levels) for axis, levels in AXES.items()}


def rubric_gold(rng: random.Random, i: int) -> dict:
    text = f"answer {i}: " + " ".join(rng.choices(["yes", "no", "maybe", "because"], k=4))
    truth, notes = rubric_truth(text), {}
    for a in "xyz":  # each annotator one level off on an axis, 30% of the time
        moved = {x: t + rng.choice([-1, 0, 0, 0, 0, 0, 1]) for x, t in truth.items()}
        notes[a] = {x: AXES[x][min(max(t, 0), len(AXES[x]) - 1)] for x, t in moved.items()}
    return {"id": f"r{i:02d}", "text": text, "annotations": notes}


def rubric_answer(request: dict, attempt: int) -> str:
    text = user_text(request).split("Answer: ")[1].strip()
    if text.startswith("answer 3:"):
        return "A fine answer overall."  # the unparseable answer
    truth = rubric_truth(text)
    answer = {axis: AXES[axis][truth[axis]] for axis in AXES}
    if crc(text) % 4 == 0:
        answer["helpfulness"] = AXES["helpfulness"][min(truth["helpfulness"] + 1, 4)]
    if text.startswith("answer 9:"):
        answer["clarity"] = "crystal"  # one axis off its scale: the other axis is kept
    return json.dumps(answer)


RUBRIC = {"type": "rubric", "axes": [{"name": a, "labels": v} for a, v in AXES.items()]}
STRUCTURED = {  # task, gold row maker, responder, template
    "multilabel": (
        {"type": "multilabel", "labels": list(TOPICS)},
        multilabel_gold,
        multilabel_answer,
        "Topics: {{ label_names | join(', ') }}\nText: {{ item.text }}",
    ),
    "ranking": (
        {"type": "ranking"},
        ranking_gold,
        ranking_answer,
        "Rank the answers to: {{ item.prompt }}\n"
        "{% for c in item.candidates %}{{ c.id }}: {{ c.text }}\n{% endfor %}",
    ),
    "rubric": (RUBRIC, rubric_gold, rubric_answer, "Rate this answer.\nAnswer: {{ item.text }}"),
}


def setup_structured(name: str):
    task, make_row, _, template = STRUCTURED[name]

    def setup(side: Side, server) -> str:
        rng = random.Random(f"same_outputs/{name}")  # the same 40 items on both sides
        rows = []
        for i in range(40):
            row = make_row(rng, i)
            row["meta"] = {"source": rng.choice(["web", "app", "mail"])}  # slices
            rows.append(json.dumps(row) + "\n")
        folder = side.scratch / "gen"
        folder.mkdir()
        (folder / "gold.jsonl").write_text("".join(rows))
        (folder / "t.j2").write_text("--- user\n" + template + "\n")
        config = {
            "name": name,
            "task": task,
            "gold_sets": [{"id": "g", "path": "gold.jsonl"}],
            "prompts": [{"id": "p", "template": "t.j2"}],
            # One server per case, alive for both sides: api_base is part of a cache key.
            "models": [{"id": "fake", "model": "openai/fake-model", "api_base": server.base_url}],
            "run": {"concurrency": 4, "retries": 0},
            "report": {"bootstrap": 200, "seed": 0},
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        return "gen/config.yaml"

    return setup


SETUPS = {"demo": setup_demo, **{name: setup_structured(name) for name in STRUCTURED}}
SETUPS.update({name: lambda side, server, n=name: setup_converted(side, n) for name in CONVERTED})


# ----------------------------------------------------------------------------- running


def run_side(name: str, tree: Path, case_dir: Path, server, label: str, golds: Path):
    """One `prelabel run` of case `name` with `tree`; returns its run folder and its calls."""
    scratch = case_dir / "scratch"  # the same path for every run of the case
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    for entry in INPUTS:  # not data/external: a checkout's converted data, made anew here
        shutil.copytree(tree / entry, scratch / entry, ignore=shutil.ignore_patterns("external"))
    side = Side(label, tree, scratch, case_dir, golds)
    config = SETUPS[name](side, server)
    side.prelabel("run", config, "--quiet")
    (run_dir,) = (scratch / "runs").iterdir()
    calls = json.loads((run_dir / "manifest.json").read_text())["totals"]["calls"]
    kept = case_dir / label
    shutil.rmtree(kept, ignore_errors=True)
    scratch.rename(kept)
    return kept / "runs" / run_dir.name, calls


def normalised(path: Path, raw: bool) -> bytes:
    text = path.read_text(encoding="utf-8")
    if not raw:
        text = NORMALISE[path.name].sub(r'\1"<normalised>"', text)
    return text.encode("utf-8")


def json_path(a, b, path: str = "$") -> tuple[str, object, object] | None:
    """The first key path where two JSON values differ (1 and 1.0 differ: bytes do)."""
    if type(a) is not type(b) or not isinstance(a, (dict, list)):
        return None if type(a) is type(b) and a == b else (path, a, b)
    keys = (list(a), list(b)) if isinstance(a, dict) else (list(range(len(a))), list(range(len(b))))
    if keys[0] != keys[1]:  # other keys, keys in another order, or another length
        return f"{path} keys", *keys
    step = ".{}" if isinstance(a, dict) else "[{}]"
    for x in keys[0]:
        found = json_path(a[x], b[x], path + step.format(x))
        if found:
            return found
    return None


def first_difference(name: str, a: bytes, b: bytes) -> str:
    """Where the bytes first differ: line, and the JSON key path with both values."""
    la, lb = a.decode().splitlines(), b.decode().splitlines()
    n, x, y = next((i, x, y) for i, (x, y) in enumerate(zip_longest(la, lb), 1) if x != y)
    found, where = None, f"{name} line {n}"
    with contextlib.suppress(ValueError, TypeError, KeyError):  # not JSON: show the lines
        if name == "labels.jsonl":
            ra, rb = json.loads(x), json.loads(y)
            where += f" ({ra['setup']} {ra['item']} sample {ra['sample']})"
            found = json_path(ra, rb) or ("(same JSON, other bytes)", x, y)
        else:
            found = json_path(json.loads(a), json.loads(b)) or ("(same JSON, other bytes)", x, y)
    if found:
        return f"{where} {found[0]}: {json.dumps(found[1])[:80]} != {json.dumps(found[2])[:80]}"
    return f"{where}: {x!r:.90} != {y!r:.90}"


def run_case(name: str, trees: dict[str, Path], work: Path, args) -> tuple[bool, str]:
    case_dir = work / name
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    serve = None
    if name in STRUCTURED:
        from fake_openai import FakeOpenAIServer  # tests/ of this checkout: not code under test

        serve = FakeOpenAIServer(STRUCTURED[name][2])
    with serve or contextlib.nullcontext() as server:

        def side(tree: Path, label: str) -> tuple[Path, int]:
            return run_side(name, tree, case_dir, server, label, args.golds)

        try:
            b_run, b_calls = side(trees["before"], "before")
            warm = ""
            if b_calls:  # that run filled the cache: compare a replay with a replay
                warm = f" (warm-up {b_calls})"
                b_run, b_calls = side(trees["before"], "before-replay")
            a_run, a_calls = side(trees["after"], "after")
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            return False, f"error: {exc!r}"
    calls = f"calls before {b_calls}{warm} / after {a_calls}"
    if b_calls:
        calls += " (BEFORE replay made calls: the cache does not replay deterministically)"
    if a_calls:
        calls += " (AFTER made calls where BEFORE filled the cache: the cache keys changed)"
    for file in ("metrics.json", "labels.jsonl"):
        a, b = normalised(b_run / file, args.raw), normalised(a_run / file, args.raw)
        if a != b:
            return False, f"{calls}  DIFFERENT {first_difference(file, a, b)}"
    return True, f"{calls}  identical"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, metavar="REV", help="git revision of BEFORE")
    parser.add_argument("--after", type=Path, default=ROOT, metavar="DIR", help="[this checkout]")
    parser.add_argument("--work", type=Path, metavar="DIR", help="keep the run folders here")
    parser.add_argument("--cases", default=",".join(CASES), help=f"[{','.join(CASES)}]")
    parser.add_argument("--golds", type=Path, default=ROOT.parent / "shared" / "golds")
    parser.add_argument("--raw", action="store_true", help="compare without normalising")
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown or not cases:
        parser.error(f"unknown case(s) {unknown}; choose from {','.join(CASES)}")
    after = args.after.resolve()
    if not (after / "harness" / "__init__.py").is_file():
        parser.error(f"--after {after} holds no harness/ package")
    needs = [c for c in cases if c in ("llmfao", "convabuse") and not (args.golds / c).is_dir()]
    if needs:
        parser.error(f"cases {needs} need the gold sets in {args.golds} (--golds DIR)")
    sys.path.insert(0, str(ROOT / "tests"))  # fake_openai.py
    work = (args.work or Path(tempfile.mkdtemp(prefix="same-outputs-"))).resolve()
    try:
        shutil.rmtree(work / "before-tree", ignore_errors=True)  # a kept --work folder
        trees = {"before": extract(args.before, work / "before-tree"), "after": after}
        print(
            f"BEFORE {args.before} -> {trees['before']}\nAFTER  {after}\nwork   {work}", flush=True
        )
        results = []
        for name in cases:
            start = time.perf_counter()
            same, line = run_case(name, trees, work, args)
            results.append(same)
            print(f"{name:<11} {line}  [{time.perf_counter() - start:.0f} s]", flush=True)
    except Abort as exc:
        print(f"same_outputs: {exc} (work folder kept: {work})", file=sys.stderr)
        return 2
    if all(results) and args.work is None:
        shutil.rmtree(work)
    else:
        print(f"run folders and logs kept in {work}")
    print("ALL IDENTICAL" if all(results) else "DIFFERENCES FOUND")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
