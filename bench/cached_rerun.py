"""Cached rerun: `prelabel run` a second time, every label from the cache, reports included.

A synthetic experiment (5,000 items x 2 prompts = 10,000 labels, 1,000 bootstrap
replicates; the model gives log-probs, so every section of the report is computed:
calibration, recalibration, auto-accept, ...) is run once against the local fake server
(bench/fake_server.py, no latency), which fills the label cache; then the same command
again, timed as a whole process from start to exit: interpreter start, imports,
validation and plan, 10,000 cache reads, labels.jsonl, scoring, decision, metrics.json,
report.md and report.html. The fake server is stopped before the timed runs, so a label
that was not cached would fail.

Target: <= 3 s wall.

    python bench/cached_rerun.py                # 5,000 items x 2 prompts, 3 timed reruns
    python bench/cached_rerun.py --quick        # 500 items x 2 prompts, 1 rerun
    python bench/cached_rerun.py --profile out.prof   # one more rerun under cProfile
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
import statistics  # noqa: E402

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

TARGET_S = 3.0


def prelabel_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", str(config), "--quiet"]


def last_manifest(runs: Path) -> dict:
    run_dir = sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)[-1]
    return json.loads((run_dir / "manifest.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", help="also run once under cProfile, writing this file")
    parser.add_argument(
        "--no-logprobs",
        dest="logprobs",
        action="store_false",
        help="no confidences (no calibration, recalibration or auto-accept sections)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.repeats = min(args.items, 500), 1
    labels = args.items * args.prompts
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PRELABEL_CACHE_DIR", None)

    with workdir("cached-rerun", args.keep) as tmp:
        with FakeServer(0.0) as server:
            config = write_experiment(
                tmp,
                args.items,
                api_base=server.base_url,
                prompts=args.prompts,
                bootstrap=args.bootstrap,
                logprobs=args.logprobs,
            )
            wall, rss, done = timed_subprocess(prelabel_cmd(config), cwd=tmp, env=env)
            if done.returncode != 0:
                print(done.stderr)
                raise SystemExit(f"first run failed with exit {done.returncode}")
            first = last_manifest(tmp / "runs")["totals"]
            print(
                f"first run: {first['labels']} labels, {first['calls']} calls in {wall:.1f} s "
                f"({rss} MB peak RSS)"
            )
        walls, rsses = [], []
        for r in range(args.repeats):
            load = load_avg()
            wall, rss, done = timed_subprocess(prelabel_cmd(config), cwd=tmp, env=env)
            totals = last_manifest(tmp / "runs")["totals"]
            if done.returncode != 0 or totals["cached"] != labels or totals["calls"] != 0:
                print(done.stderr)
                raise SystemExit(f"rerun was not fully cached: {totals}")
            walls.append(wall)
            rsses.append(rss)
            print(f"rerun {r + 1}: {wall:.2f} s wall, {rss} MB peak RSS (load before {load})")
        if args.profile:
            cmd = prelabel_cmd(config)
            cmd[1:1] = ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
            wall, _, done = timed_subprocess(cmd, cwd=tmp, env=env)
            print(f"profiled rerun: {wall:.2f} s (exit {done.returncode}) -> {args.profile}")
    wall = statistics.median(walls)
    figures = [
        Figure(
            "cached rerun, report included",
            wall,
            "s",
            TARGET_S,
            "<=",
            note=f"{labels:,} labels ({args.items:,} items x {args.prompts} prompts), "
            f"{args.bootstrap} replicates, "
            f"{'log-prob confidences' if args.logprobs else 'no confidences'}; "
            f"median of {args.repeats}",
        ),
        Figure("peak RSS of the rerun", max(rsses), "MB", note="untargeted"),
    ]
    return report("cached_rerun", figures, args, {"walls": walls, "rss_mb": rsses})


if __name__ == "__main__":
    sys.exit(main())
