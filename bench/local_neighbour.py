"""Local model under load: the demo's calls with one CPU-bound neighbour process.

llama.cpp's threads meet at a barrier after every operation and spin while they wait, so a
thread count equal to the number of cores collapses when another process wants a core
(the demo went from 104 s to 35 minutes on 2 cores with one busy neighbour). prelabel's
default (`harness.providers.local.default_threads`: one core left free, at most 4) should
degrade gracefully instead.

For each thread count (prelabel's default, and every core as llama-cpp-python would use),
the same demo calls are made through prelabel's local provider idle and then with one
neighbour process spinning on a core, alternating per repeat. The figure is the slowdown
(seconds with the neighbour / seconds idle); target for the default: <= 2.

    python bench/local_neighbour.py                # 40 items, 2 repeats
    python bench/local_neighbour.py --quick        # 10 items, 1 repeat, the default only
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import contextlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from bench.common import Figure, base_parser, load_avg, report, workdir  # noqa: E402
from bench.local_model import write_demo_experiment  # noqa: E402

TARGET = 2.0
SPIN = "while True: pass"


@contextlib.contextmanager
def neighbour() -> Iterator[None]:
    """One process that wants a whole core for as long as the block runs."""
    proc = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.5)  # let the scheduler see it
        yield
    finally:
        proc.kill()
        proc.wait()


def timed_calls(provider, specs) -> float:
    start = time.perf_counter()
    for spec in specs:
        provider._complete_sync(spec)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.repeats = min(args.items, 10), 1

    from harness.providers.local import LocalProvider, default_threads, usable_cpus
    from harness.run.plan import prepare

    cpus = usable_cpus()
    counts = {"prelabel default": default_threads(), "every core": cpus}
    if args.quick:  # a smoke run: the collapse of "every core" alone can take minutes
        del counts["every core"]
    figures: list[Figure] = []
    raw: dict[str, dict[str, list[float]]] = {}
    with workdir("local-neighbour", args.keep) as tmp:
        plan = prepare(write_demo_experiment(tmp, args.items))
        specs = plan.specs
        (model,) = plan.models.values()
        print(
            f"{len(specs)} demo calls, {cpus} usable CPUs, thread counts {counts}; "
            f"load average {load_avg()}"
        )
        for name, threads in counts.items():
            cfg = model.model_copy(update={"params": {**model.params, "n_threads": threads}})
            provider = LocalProvider(cfg, plan.resolved.base)
            timed_calls(provider, specs[:2])  # load the model and warm up
            idle, loaded = [], []
            for r in range(args.repeats):
                idle.append(timed_calls(provider, specs))
                with neighbour():
                    loaded.append(timed_calls(provider, specs))
                print(
                    f"{name} ({threads} threads) repeat {r + 1}: idle {idle[-1]:.2f} s, "
                    f"with a neighbour {loaded[-1]:.2f} s"
                )
            raw[name] = {"idle_s": idle, "neighbour_s": loaded}
            slowdown = statistics.median(b / a for a, b in zip(idle, loaded, strict=True))
            note = f"{threads} threads, {len(specs)} calls, median of {args.repeats}"
            figures += [
                Figure(f"{name}: idle", statistics.median(idle), "s", note=note),
                Figure(f"{name}: one busy neighbour", statistics.median(loaded), "s", note=note),
                Figure(
                    f"{name}: slowdown with a neighbour",
                    slowdown,
                    "x",
                    TARGET if name == "prelabel default" else None,
                    "<=",
                    note=note,
                ),
            ]
    return report("local_neighbour", figures, args, raw)


if __name__ == "__main__":
    sys.exit(main())
