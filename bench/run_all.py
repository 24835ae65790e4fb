"""Run every benchmark, one process each, and print one table of figures against targets.

    python bench/run_all.py                 # full sizes (about 25 minutes on 2 cores)
    python bench/run_all.py --quick         # smoke run (about 3 minutes)
    python bench/run_all.py --only throughput,statistics
    python bench/run_all.py --markdown out.md   # also the table as Markdown (docs/benchmarks.md)

Exit status 0 when every benchmark ran (whatever its verdict), 1 when one failed to run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.common import fmt_value, load_avg, machine, print_table  # noqa: E402

BENCHMARKS = (
    "throughput",
    "cached_rerun",
    "statistics",
    "memory",
    "local_model",
    "local_neighbour",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--markdown", help="also write the table as Markdown to this file")
    parser.add_argument("--json", help="also write every figure as JSON to this file")
    args = parser.parse_args(argv)
    chosen = [b.strip() for b in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; known: {', '.join(BENCHMARKS)}")

    results, failed = [], []
    with tempfile.TemporaryDirectory(prefix="prelabel-bench-all-") as tmp:
        for name in chosen:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--json", str(out)]
            if args.quick:
                cmd.append("--quick")
            print(f"\n### {name} (load average {load_avg()})", flush=True)
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=ROOT)
            if done.returncode != 0 or not out.exists():
                failed.append(name)
                print(f"{name} failed (exit {done.returncode})")
                continue
            result = json.loads(out.read_text())
            result["seconds"] = round(time.perf_counter() - start, 1)
            results.append(result)

    rows = []
    for r in results:
        for f in r["figures"]:
            value = fmt_value(f["value"], f["unit"])
            target = "" if f["target"] is None else f"{f['op']} {f['target']:g}"
            rows.append([r["benchmark"], f["name"], value, target, f["verdict"], f["note"]])
    info = machine()
    print(f"\n== all benchmarks ({info['date']})")
    print(
        f"machine: {info['nproc']} cores, {info['cpu']}, {info['ram_gb']} GB RAM, "
        f"Python {info['python']}; load average {info['load_avg']}"
    )
    print_table(rows, ["benchmark", "figure", "value", "target", "", "note"])
    for r in results:
        print(f"{r['benchmark']}: {r['command']}  ({r['seconds']} s)")
    if failed:
        print(f"failed to run: {', '.join(failed)}")
    if args.markdown:
        lines = [
            "| benchmark | figure | value | target | verdict | command |",
            "|---|---|---|---|---|---|",
        ]
        for r in results:
            for f in r["figures"]:
                value = fmt_value(f["value"], f["unit"])
                target = "" if f["target"] is None else f"{f['op']} {f['target']:g}"
                lines.append(
                    f"| {r['benchmark']} | {f['name']} | {value} | {target} | {f['verdict']} "
                    f"| `{r['command']}` |"
                )
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "results": results}, indent=2) + "\n", encoding="utf-8"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
