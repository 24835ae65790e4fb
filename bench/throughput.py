"""Throughput: prelabel's labels per second against a bare `litellm.acompletion` loop.

Both run in this process, in one event loop, against the same local OpenAI-compatible
server (bench/fake_server.py in its own process, 50 ms per request), at the same
concurrency, on the same prompts (the ones prelabel's plan renders). The bare loop is
`asyncio.Semaphore(concurrency)` + `litellm.acompletion(...)` with prelabel's arguments
(num_retries=0, temperature 0, timeout). prelabel's path is the real one: the plan from a
config, `Runner` with its cache (diskcache, a fresh directory per repeat), rate gate,
retries, parser, and the labels.jsonl sink plus the in-memory record list, exactly as
`harness.run.pipeline.run_experiment` wires them (scoring and reports are not part of it).
Phases alternate (bare, prelabel, bare, prelabel, ...); the ratio is the median over the
repeats of prelabel's rate over the bare rate measured just before it (paired, so a
disturbance of the machine during one repeat moves both sides of that pair).

Target: prelabel / bare >= 0.8.

    python bench/throughput.py                # 5,000 labels, concurrency 64, 5 repeats
    python bench/throughput.py --quick        # 500 labels, 1 repeat
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from bench.common import (  # noqa: E402
    FakeServer,
    Figure,
    base_parser,
    load_avg,
    report,
    workdir,
    write_experiment,
)

TARGET = 0.8


async def bare_loop(litellm, specs, base_url: str, concurrency: int) -> tuple[float, int]:
    """The reference: as little as it takes to make the same calls at the same concurrency."""
    sem = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(spec) -> None:
        nonlocal failures
        async with sem:
            try:
                resp = await litellm.acompletion(
                    model=spec.model,
                    messages=[dict(m) for m in spec.messages],
                    api_base=base_url,
                    api_key="sk-no-key",
                    timeout=60,
                    num_retries=0,
                    max_retries=0,
                    **spec.params,
                )
                resp.choices[0].message.content  # noqa: B018
            except Exception:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(s) for s in specs))
    return time.perf_counter() - start, failures


async def prelabel_run(plan, cache_dir: Path, run_dir: Path, concurrency: int) -> tuple[float, int]:
    """prelabel's labelling station as `run_experiment` wires it (harness/run/pipeline.py)."""
    from harness.run.cache import LabelCache
    from harness.run.pipeline import make_providers
    from harness.run.runner import LabelSink, Runner, RunSettings
    from harness.tasks.labelspace import LabelSpace

    exp = plan.resolved.experiment
    cache = LabelCache(cache_dir)
    providers = make_providers(plan, cache)
    run_dir.mkdir(parents=True)
    sink = LabelSink(run_dir / "labels.jsonl")
    records = []

    def keep(record) -> None:
        sink.write(record)
        records.append(record)

    settings = RunSettings(
        concurrency=concurrency,
        timeout_s=exp.run.timeout_s,
        retries=exp.run.retries,
        budget_usd=exp.run.budget_usd,
        max_calls=exp.run.max_calls,
    )
    runner = Runner(
        plan.specs,
        plan.models,
        plan.resolved.base,
        cache,
        LabelSpace(exp.task),
        settings,
        keep,
        providers,
    )
    start = time.perf_counter()
    try:
        totals = await runner.run()
    finally:
        sink.close()
        cache.close()
    elapsed = time.perf_counter() - start
    assert totals.labels == len(plan.specs), (totals.labels, len(plan.specs))
    assert totals.calls == len(plan.specs), totals.calls
    return elapsed, sum(totals.failures.values())


async def main_async(args, plan, base_url: str, tmp: Path) -> dict:
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    specs = plan.specs
    # Warm up: the first calls of a process set up clients and connection pools.
    await bare_loop(litellm, specs[: args.concurrency * 2], base_url, args.concurrency)
    bare, ours, loads = [], [], []
    for r in range(args.repeats):
        if args.only != "prelabel":
            t, failed = await bare_loop(litellm, specs, base_url, args.concurrency)
            assert not failed, f"{failed} bare calls failed"
            bare.append(len(specs) / t)
            print(f"repeat {r + 1}: bare litellm loop  {bare[-1]:7.1f} calls/s  ({t:.2f} s)")
        if args.only != "bare":
            cache, run = tmp / f"cache{r}", tmp / f"run{r}"
            t, failed = await prelabel_run(plan, cache, run, args.concurrency)
            assert not failed, f"{failed} prelabel labels failed"
            ours.append(len(specs) / t)
            print(f"repeat {r + 1}: prelabel Runner    {ours[-1]:7.1f} labels/s ({t:.2f} s)")
        loads.append(load_avg())
    return {"bare": bare, "prelabel": ours, "load_avg": loads}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--labels", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of the whole run here")
    parser.add_argument(
        "--only", choices=["bare", "prelabel"], help="run one side only (for a profiler)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.labels, args.repeats = min(args.labels, 500), 1

    from harness.run.pipeline import prepare

    with workdir("throughput", args.keep) as tmp, FakeServer(args.latency) as server:
        config = write_experiment(
            tmp / "exp", args.labels, api_base=server.base_url, concurrency=args.concurrency
        )
        plan = prepare(config)
        print(
            f"{len(plan.specs)} labels, concurrency {args.concurrency}, server latency "
            f"{args.latency * 1000:.0f} ms, load average {load_avg()}"
        )
        if args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        res = asyncio.run(main_async(args, plan, server.base_url, tmp))
        if args.profile:
            prof.disable()
            prof.dump_stats(args.profile)
    if args.only:
        return 0
    bare, ours = statistics.median(res["bare"]), statistics.median(res["prelabel"])
    ratio = statistics.median(p / b for p, b in zip(res["prelabel"], res["bare"], strict=True))
    ceiling = args.concurrency / args.latency
    figures = [
        Figure("bare litellm.acompletion loop", bare, "calls/s", note=f"median of {args.repeats}"),
        Figure("prelabel Runner", ours, "labels/s", note=f"median of {args.repeats}"),
        Figure(
            "prelabel / bare",
            ratio,
            "",
            TARGET,
            ">=",
            note=f"median of {args.repeats} paired ratios; {args.labels} labels, "
            f"concurrency {args.concurrency}, "
            f"{args.latency * 1000:.0f} ms latency (latency-bound ceiling {ceiling:.0f}/s)",
        ),
    ]
    return report("throughput", figures, args, res)


if __name__ == "__main__":
    sys.exit(main())
