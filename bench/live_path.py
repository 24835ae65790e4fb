"""The live labelling path side by side, in one script run (issue 18 item 2).

One local OpenAI-compatible stub (bench/fake_server.py in its own process, 50 ms per
request), the same calls (the prompts prelabel's plan renders for a synthetic gold set), the
same concurrency. Measured, in this order, each `--repeats` times, alternating:

1. bare `AsyncOpenAI` loop: `asyncio.Semaphore(concurrency)` + `client.chat.completions.create`
   (the reference: as little as it takes to make the calls with the official client);
2. bare `litellm.acompletion` loop, the same calls;
3. prelabel's labelling phase: its `Runner` wired as `prelabel run` wires it (cache, gate,
   retries, parser, labels.jsonl), in this process;
4. `prelabel run CONFIG` end to end in a subprocess (start-up, labels, scoring with its
   bootstrap, reports; a fresh cache each time), labels per second of wall time;
5. `promptfoo eval` end to end in a subprocess on the same stub and calls (the same system
   and user messages, temperature 0, `-j concurrency`, no cache, no sharing, no telemetry),
   if promptfoo is installed (`--promptfoo PATH`, default: `npx --no-install promptfoo`).

Targets: 3 / 1 >= 0.8 and 4 / 5 >= 1.5 (paired per repeat: each ratio is taken between
phases of the same repeat, then the median over repeats).

    python bench/live_path.py                       # 2,000 calls, concurrency 64, 3 repeats
    python bench/live_path.py --quick               # 300 calls, 1 repeat
    python bench/live_path.py --promptfoo /tmp/pf/node_modules/.bin/promptfoo
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
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

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
from bench.throughput import bare_loop, prelabel_run  # noqa: E402


async def openai_loop(specs, base_url: str, concurrency: int) -> tuple[float, int]:
    """The reference: the official client, nothing else."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-no-key", base_url=base_url, max_retries=0)
    sem = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(spec) -> None:
        nonlocal failures
        async with sem:
            try:
                resp = await client.chat.completions.create(
                    model="fake-model",
                    messages=[dict(m) for m in spec.messages],
                    timeout=60,
                    **spec.params,
                )
                resp.choices[0].message.content  # noqa: B018
            except Exception:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(s) for s in specs))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed, failures


def promptfoo_files(root: Path, plan, base_url: str, concurrency: int) -> Path:
    """A promptfoo config asking exactly prelabel's calls: one chat prompt (the plan's
    system message, the item text as the user message), one test per item."""
    import yaml

    system = plan.specs[0].messages[0]["content"]
    assert all(s.messages[0]["content"] == system for s in plan.specs)
    root.mkdir(parents=True, exist_ok=True)
    (root / "prompt.json").write_text(
        json.dumps([{"role": "system", "content": system}, {"role": "user", "content": "{{text}}"}])
    )
    tests = [{"vars": {"text": s.messages[-1]["content"]}} for s in plan.specs]
    (root / "tests.yaml").write_text(yaml.safe_dump(tests))
    config = {
        "description": "prelabel benchmark",
        "prompts": ["file://prompt.json"],
        "providers": [
            {
                "id": "openai:chat:fake-model",
                "config": {"apiBaseUrl": base_url, "apiKey": "sk-no-key", "temperature": 0},
            }
        ],
        "tests": "file://tests.yaml",
        "evaluateOptions": {"maxConcurrency": concurrency, "cache": False},
        "sharing": False,
    }
    path = root / "promptfooconfig.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def promptfoo_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PROMPTFOO_CONFIG_DIR=str(root / "promptfoo-home"),
        PROMPTFOO_DISABLE_TELEMETRY="1",
        PROMPTFOO_DISABLE_UPDATE="1",
        PROMPTFOO_CACHE_ENABLED="false",
        PROMPTFOO_DISABLE_SHARING="1",
        OPENAI_API_KEY="sk-no-key",
        NO_COLOR="1",
    )
    return env


def promptfoo_command(arg: str | None) -> list[str] | None:
    if arg:
        return [arg]
    if shutil.which("promptfoo"):
        return ["promptfoo"]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--labels", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--promptfoo", help="the promptfoo executable (default: on PATH)")
    args = parser.parse_args(argv)
    if args.quick:
        args.labels, args.repeats = min(args.labels, 300), 1

    from harness.run.pipeline import prepare

    promptfoo = promptfoo_command(args.promptfoo)
    rates: dict[str, list[float]] = {
        k: [] for k in ("openai", "litellm", "runner", "run_e2e", "promptfoo", "load")
    }
    with workdir("live_path", args.keep) as tmp, FakeServer(args.latency) as server:
        config = write_experiment(
            tmp / "exp", args.labels, api_base=server.base_url, concurrency=args.concurrency
        )
        plan = prepare(config)
        specs = plan.specs
        pf_config = promptfoo_files(tmp / "pf", plan, server.base_url, args.concurrency)
        print(
            f"{len(specs)} calls, concurrency {args.concurrency}, server latency "
            f"{args.latency * 1000:.0f} ms, load average {load_avg()}, promptfoo: "
            f"{' '.join(promptfoo) if promptfoo else 'not found'}"
        )
        import litellm

        litellm.suppress_debug_info = True
        # One event loop for every in-process phase: litellm keeps its HTTP clients per
        # loop, and a client left to a closed loop only makes noise at exit.
        loop = asyncio.new_event_loop()
        run = loop.run_until_complete
        warm = specs[: args.concurrency * 2]
        run(openai_loop(warm, server.base_url, args.concurrency))
        run(bare_loop(litellm, warm, server.base_url, args.concurrency))
        for r in range(args.repeats):
            t, failed = run(openai_loop(specs, server.base_url, args.concurrency))
            assert not failed, f"{failed} bare openai calls failed"
            rates["openai"].append(len(specs) / t)
            t, failed = run(bare_loop(litellm, specs, server.base_url, args.concurrency))
            assert not failed, f"{failed} bare litellm calls failed"
            rates["litellm"].append(len(specs) / t)
            t, failed = run(
                prelabel_run(plan, tmp / f"cache{r}", tmp / f"run{r}", args.concurrency)
            )
            assert not failed, f"{failed} prelabel labels failed"
            rates["runner"].append(len(specs) / t)
            env = dict(os.environ, PRELABEL_CACHE_DIR=str(tmp / f"e2e-cache{r}"))
            wall, _, done = timed_subprocess(
                [sys.executable, "-m", "harness.cli", "run", str(config), "--quiet"], env=env
            )
            assert done.returncode == 0, done.stderr[-2000:]
            rates["run_e2e"].append(len(specs) / wall)
            if promptfoo:
                wall, _, done = timed_subprocess(
                    [
                        *promptfoo,
                        "eval",
                        "-c",
                        str(pf_config),
                        "--no-cache",
                        "--no-table",
                        "--no-write",
                        "-j",
                        str(args.concurrency),
                    ],
                    env=promptfoo_env(tmp / "pf"),
                    cwd=tmp / "pf",
                )
                if done.returncode not in (0, 100):  # 100: "some tests failed" (no asserts)
                    print(done.stdout[-2000:], done.stderr[-2000:])
                    raise SystemExit(f"promptfoo failed with {done.returncode}")
                rates["promptfoo"].append(len(specs) / wall)
            rates["load"].append(load_avg())
            line = ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items() if v and k != "load")
            print(f"repeat {r + 1}: {line} (per second); load {rates['load'][-1]}")

    med = {k: statistics.median(v) for k, v in rates.items() if v}

    def paired(a: str, b: str) -> float | None:
        if not rates[a] or not rates[b]:
            return None
        return statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))

    note = f"median of {args.repeats}; {len(specs)} calls, concurrency {args.concurrency}"
    figures = [
        Figure("bare AsyncOpenAI loop", med["openai"], "calls/s", note=note),
        Figure("bare litellm.acompletion loop", med["litellm"], "calls/s", note=note),
        Figure("prelabel labelling phase (Runner)", med["runner"], "labels/s", note=note),
        Figure("prelabel run, end to end", med["run_e2e"], "labels/s", note=note),
        Figure(
            "prelabel labelling / bare AsyncOpenAI",
            paired("runner", "openai"),
            "",
            0.8,
            ">=",
            note="paired per repeat",
        ),
        Figure("prelabel labelling / bare litellm", paired("runner", "litellm"), "", note=""),
    ]
    if rates["promptfoo"]:
        figures += [
            Figure("promptfoo eval, end to end", med["promptfoo"], "calls/s", note=note),
            Figure(
                "prelabel run / promptfoo, end to end",
                paired("run_e2e", "promptfoo"),
                "",
                1.5,
                ">=",
                note="paired per repeat",
            ),
        ]
    return report("live_path", figures, args, rates)


if __name__ == "__main__":
    sys.exit(main())
