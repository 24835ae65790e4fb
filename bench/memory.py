"""Peak memory of a 100,000-item run: `prelabel run` in a child process, peak RSS from wait4.

A synthetic experiment of 100,000 items x 1 prompt (1,000 bootstrap replicates; the model
gives log-probs, so every section of the report is computed) is run twice with the real
CLI, each in its own process:

- `calls`: every label called from the local fake server (bench/fake_server.py, no
  latency, in a separate process whose memory is not counted), concurrency 64, then
  scored and reported: the whole run as a user would start it on a fresh cache.
- `cached`: the same command again, every label from the cache (no litellm import).

Target: <= 1 GB (1,024 MB) peak RSS for each.

    python bench/memory.py                   # 100,000 items, both modes (~10 min on 2 cores)
    python bench/memory.py --quick           # 5,000 items
    python bench/memory.py --modes cached    # fill the cache without measuring, then cached
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

from bench.common import (  # noqa: E402
    FakeServer,
    Figure,
    base_parser,
    load_avg,
    report,
    timed_subprocess,
    workdir,
    write_experiment,
)

TARGET_MB = 1024


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--modes", default="calls,cached", help="calls, cached or both")
    args = parser.parse_args(argv)
    if args.quick:
        args.items = min(args.items, 5000)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PRELABEL_CACHE_DIR", None)
    figures, details = [], {}

    with workdir("memory", args.keep) as tmp:
        with FakeServer(0.0) as server:
            config = write_experiment(
                tmp,
                args.items,
                api_base=server.base_url,
                bootstrap=args.bootstrap,
                concurrency=args.concurrency,
                logprobs=True,
            )
            cmd = [sys.executable, "-m", "harness.cli", "run", str(config), "--quiet"]
            load = load_avg()
            wall, rss, done = timed_subprocess(cmd, cwd=tmp, env=env)
            if done.returncode != 0:
                print(done.stderr[-3000:])
                raise SystemExit(f"run failed with exit {done.returncode}")
            totals = json.loads(
                (sorted((tmp / "runs").iterdir())[-1] / "manifest.json").read_text()
            )["totals"]
            print(
                f"calls run: {totals['labels']:,} labels, {totals['calls']:,} calls, "
                f"{wall:.1f} s wall, {rss} MB peak RSS (load before {load})"
            )
            details["calls"] = {"wall_s": wall, "rss_mb": rss, "totals": totals}
            if "calls" in modes:
                figures.append(
                    Figure(
                        "peak RSS, run with calls",
                        rss,
                        "MB",
                        TARGET_MB,
                        "<=",
                        note=f"{args.items:,} items, {totals['calls']:,} calls, {wall:.0f} s wall",
                    )
                )
        if "cached" in modes:
            load = load_avg()
            wall, rss, done = timed_subprocess(cmd, cwd=tmp, env=env)
            runs = sorted((tmp / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
            totals = json.loads((runs[-1] / "manifest.json").read_text())["totals"]
            if done.returncode != 0 or totals["calls"]:
                print(done.stderr[-3000:])
                raise SystemExit(f"cached run failed or made calls: {totals}")
            print(
                f"cached run: {totals['labels']:,} labels, {wall:.1f} s wall, {rss} MB peak RSS "
                f"(load before {load})"
            )
            details["cached"] = {"wall_s": wall, "rss_mb": rss, "totals": totals}
            figures.append(
                Figure(
                    "peak RSS, fully cached run",
                    rss,
                    "MB",
                    TARGET_MB,
                    "<=",
                    note=f"{args.items:,} items, {wall:.0f} s wall",
                )
            )
    return report("memory", figures, args, details)


if __name__ == "__main__":
    sys.exit(main())
