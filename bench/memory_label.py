"""Peak memory of `prelabel label` on pools of new items and of `prelabel run` (issue 18).

One small evaluation (`prelabel run` on a synthetic gold set, log-prob confidences, so the
setup has a threshold) is made first; then `prelabel label` labels pools of each size in
`--sizes`, each in its own child process with a fresh label cache (every item called from
bench/fake_server.py, no latency, in a separate process whose memory is not counted). Peak
RSS is wait4's for the child. Printed: the peak of each size, the per-item cost (MB per
1,000 items, between the smallest and the largest pool) and the largest/smallest ratio.

Then `prelabel run` of a synthetic experiment of each size in `--run-sizes` (1 prompt,
log-prob confidences, 1,000 bootstrap replicates, every label called: bench/memory.py's
`calls` mode), its per-item cost between the two sizes likewise.

Targets: the 500,000-item peak within 1.2x of the 50,000-item one; a 1,000,000-item pool
under 1 GB (1,024 MB); a 100,000-item run under 600 MB.

    python bench/memory_label.py          # label 50,000 and 500,000; run 10,000 and 100,000
    python bench/memory_label.py --sizes 50000,500000,1000000 --run-sizes 0
    python bench/memory_label.py --quick  # label 2,000 and 20,000; run 2,000 and 10,000
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json  # noqa: E402
import random  # noqa: E402

from bench.common import (  # noqa: E402
    NOUNS,
    OPINIONS,
    FakeServer,
    Figure,
    base_parser,
    load_avg,
    report,
    timed_subprocess,
    workdir,
    write_experiment,
)

RATIO_TARGET = 1.2
MILLION_TARGET_MB = 1024
RUN_TARGET_MB = 600  # at 100,000 items


def write_pool(path: Path, n_items: int, seed: int = 1) -> None:
    """New items (no annotations), each text unique, ids unlike the gold set's."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n_items):
            pattern = OPINIONS[rng.randrange(len(OPINIONS))][2]
            text = f"{pattern.format(n=rng.choice(NOUNS))} Ticket {i:07d}."
            f.write(json.dumps({"id": f"p{i:07d}", "text": text}) + "\n")


def evaluation(tmp: Path, server: FakeServer, env: dict, concurrency: int) -> Path:
    """A complete evaluation run of a 500-item gold set: what `label` deploys."""
    config = write_experiment(
        tmp, 500, api_base=server.base_url, bootstrap=200, concurrency=concurrency, logprobs=True
    )
    cmd = [sys.executable, "-m", "harness.cli", "run", str(config), "--quiet"]
    _, _, done = timed_subprocess(cmd, cwd=tmp, env=env)
    if done.returncode != 0:
        print(done.stderr[-3000:])
        raise SystemExit(f"evaluation run failed with exit {done.returncode}")
    return config


def label_rss(tmp: Path, config: Path, n_items: int, env: dict) -> tuple[float, int, dict]:
    pool = tmp / f"pool{n_items}.jsonl"
    write_pool(pool, n_items)
    cache = tmp / f"cache-label-{n_items}"  # fresh: every item is called
    cmd = [sys.executable, "-m", "harness.cli", "label", str(config), "--input", str(pool)]
    cmd += ["--cache-dir", str(cache)]
    wall, rss, done = timed_subprocess(cmd, cwd=tmp, env=env)
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-3000:])
        raise SystemExit(f"label of {n_items:,} items failed with exit {done.returncode}")
    runs = sorted((tmp / "runs").glob("*-label-*"), key=lambda p: p.stat().st_mtime)
    manifest = json.loads((runs[-1] / "manifest.json").read_text())
    pool.unlink()
    return wall, rss, manifest


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--sizes", default="50000,500000", help="pool sizes, comma-separated")
    parser.add_argument("--run-sizes", default="10000,100000", help="`prelabel run` sizes, or 0")
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if int(s or 0))
    run_sizes = sorted(int(s) for s in args.run_sizes.split(",") if int(s or 0))
    if args.quick:
        sizes, run_sizes = [2000, 20000], [2000, 10000]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PRELABEL_CACHE_DIR", None)
    figures, details = [], {}
    with workdir("memory-label", args.keep) as tmp, FakeServer(0.0) as server:
        config = evaluation(tmp, server, env, args.concurrency)
        for n in sizes:
            load = load_avg()
            wall, rss, manifest = label_rss(tmp, config, n, env)
            counts = manifest.get("counts", {})
            print(
                f"label {n:,} items: {rss} MB peak RSS, {wall:.1f} s wall, "
                f"{manifest.get('calls')} calls, {counts} (load before {load})",
                flush=True,
            )
            details[str(n)] = {"wall_s": wall, "rss_mb": rss, "load_before": load}
            target = MILLION_TARGET_MB if n >= 1_000_000 else None
            figures.append(
                Figure(f"peak RSS, label {n:,} items", rss, "MB", target, "<=", f"{wall:.0f} s")
            )
        if len(sizes) >= 2:
            per_k, ratio = per_item(details, sizes)
            figures.append(Figure("per-item cost, label", per_k, "MB/1k items", note=span(sizes)))
            figures.append(
                Figure(f"peak ratio {sizes[-1]:,} / {sizes[0]:,}", ratio, "x", RATIO_TARGET, "<=")
            )
            details["per_1000_items_mb"], details["ratio"] = per_k, ratio
        runs: dict[str, dict] = {}
        for n in run_sizes:
            load = load_avg()
            wall, rss = run_rss(tmp / f"run{n}", n, server, env, 64)  # as bench/memory.py
            print(f"run {n:,} items: {rss} MB peak RSS, {wall:.1f} s wall (load before {load})")
            runs[str(n)] = {"wall_s": wall, "rss_mb": rss, "load_before": load}
            target = RUN_TARGET_MB if n == 100_000 else None
            figures.append(
                Figure(f"peak RSS, run {n:,} items", rss, "MB", target, "<=", f"{wall:.0f} s")
            )
        if len(run_sizes) >= 2:
            per_k, _ = per_item(runs, run_sizes)
            figures.append(Figure("per-item cost, run", per_k, "MB/1k items", note=span(run_sizes)))
        details["run"] = runs
    return report("memory_label", figures, args, details)


def per_item(details: dict, sizes: list[int]) -> tuple[float, float]:
    """MB per 1,000 items between the smallest and the largest size, and their ratio."""
    small, large = details[str(sizes[0])]["rss_mb"], details[str(sizes[-1])]["rss_mb"]
    return (large - small) / ((sizes[-1] - sizes[0]) / 1000), large / small


def span(sizes: list[int]) -> str:
    return f"{sizes[0]:,} -> {sizes[-1]:,}"


def run_rss(
    root: Path, n_items: int, server: FakeServer, env: dict, concurrency: int
) -> tuple[float, int]:
    """`prelabel run` of n items, every label called (a fresh cache), 1,000 replicates."""
    config = write_experiment(
        root, n_items, api_base=server.base_url, concurrency=concurrency, logprobs=True
    )
    cmd = [sys.executable, "-m", "harness.cli", "run", str(config), "--quiet"]
    wall, rss, done = timed_subprocess(cmd, cwd=root, env=env)
    if done.returncode != 0:
        print(done.stderr[-3000:])
        raise SystemExit(f"run of {n_items:,} items failed with exit {done.returncode}")
    return wall, rss


if __name__ == "__main__":
    sys.exit(main())
