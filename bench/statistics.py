"""Statistics: every number of metrics.json for 100,000 items x 10 setups, 1,000 replicates.

A synthetic classification gold set (3 labels, 3 annotators, loaded and validated by
prelabel's own loader) and one label record per item and setup (about 70% right, with a
log-prob confidence and label distribution, as the local model writes them) are built
first, untimed. Timed: `harness.run.pipeline.score_experiment`, the one call `prelabel run`
and `prelabel report` make between the labels and the reports: `score_run` (every metric
with its bootstrap interval, calibration, recalibration, auto-accept, slices, stability,
alt-test, comparisons of all setup pairs) then `decide`. The report files are timed
separately (`--reports`), not against the target.

Target: <= 10 s wall.

    python bench/statistics.py                 # 100,000 items x 10 setups, 1,000 replicates
    python bench/statistics.py --quick         # 10,000 items x 3 setups
    python bench/statistics.py --recalibration temperature   # with a recalibration map
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import time  # noqa: E402

import numpy as np  # noqa: E402

from bench.common import LABELS, Figure, base_parser, load_avg, report, workdir, write_experiment  # noqa: E402

TARGET_S = 10.0


def synthetic_records(gold, setups, seed: int = 0, confidence: bool = True) -> list:
    """One record per item and setup, as a fresh run of a local model would write it
    (without `confidence`: as a model that gives no log-probs, so no calibration)."""
    from harness.core.records import LabelRecord

    rng = np.random.default_rng(seed)
    items = gold.items
    n, k = len(items), len(LABELS)
    truth = np.array(
        [LABELS.index(max(set(v := list(i.annotations.values())), key=v.count)) for i in items]
    )
    records = []
    for s, setup in enumerate(setups):
        skill = 0.6 + 0.02 * s  # setups differ a little
        right = rng.random(n) < skill
        pred = np.where(right, truth, (truth + rng.integers(1, k, n)) % k)
        conf = np.clip(np.where(right, rng.beta(6, 2, n), rng.beta(3, 3, n)), 0.34, 0.999)
        failed = rng.random(n) < 0.01
        latency = rng.gamma(4, 0.05, n)
        for i, item in enumerate(items):
            common = dict(
                setup=setup.id,
                gold_set=gold.id,
                item=item.id,
                input_tokens=40,
                output_tokens=3,
                cost_usd=0.0,
                latency_s=float(latency[i]),
                cached=False,
                attempts=1,
                provider_model="bench",
            )
            if failed[i]:
                records.append(
                    LabelRecord.model_construct(
                        failure="no_label_found", raw="I cannot tell.", **common
                    )
                )
                continue
            label = LABELS[pred[i]]
            c = float(conf[i])
            rest = (1.0 - c) / (k - 1)
            if not confidence:
                c, probs = None, None
            else:
                probs = {x: (c if x == label else rest) for x in LABELS}
            records.append(
                LabelRecord.model_construct(
                    label=label,
                    parse_method="exact",
                    confidence=c,
                    confidence_source="logprobs" if confidence else None,
                    confidences={"logprobs": c} if confidence else None,
                    label_probs=probs,
                    raw=f'{{"label": "{label}"}}',
                    **common,
                )
            )
    return records


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--setups", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--recalibration", default="none", choices=["none", "temperature", "platt", "isotonic"]
    )
    parser.add_argument(
        "--no-confidence",
        dest="confidence",
        action="store_false",
        help="records without confidences: no calibration, recalibration or auto-accept",
    )
    parser.add_argument("--reports", action="store_true", help="also time the report files")
    parser.add_argument("--profile", help="write a cProfile of the timed part here")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.setups = min(args.items, 10_000), min(args.setups, 3)

    from harness.config import load_experiment
    from harness.inputs.goldset import load_gold_set
    from harness.run.pipeline import score_experiment
    from harness.run.plan import build_setups
    from harness.tasks.labelspace import LabelSpace

    with workdir("statistics", args.keep) as tmp:
        t0 = time.perf_counter()
        config = write_experiment(
            tmp,
            args.items,
            prompts=args.setups,
            models=[{"id": "m", "model": "openai/fake-model", "api_base": "http://127.0.0.1:9/v1"}],
            bootstrap=args.bootstrap,
        )
        data = __import__("yaml").safe_load(config.read_text())
        data["report"]["recalibration"] = args.recalibration
        config.write_text(__import__("yaml").safe_dump(data, sort_keys=False))
        resolved = load_experiment(config)
        exp = resolved.experiment
        gold = load_gold_set(
            exp.gold_sets[0],
            resolved.resolve(exp.gold_sets[0].path),
            exp.task.label_names,
            LabelSpace(exp.task),
        )
        setups = build_setups(resolved)
        records = synthetic_records(gold, setups, confidence=args.confidence)
        print(
            f"{len(gold.items):,} items x {len(setups)} setups = {len(records):,} records, "
            f"{args.bootstrap} replicates, recalibration {args.recalibration} "
            f"(built in {time.perf_counter() - t0:.1f} s, untimed); load average {load_avg()}"
        )
        if args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        start = time.perf_counter()
        metrics = score_experiment(exp, [gold], setups, records)
        elapsed = time.perf_counter() - start
        if args.profile:
            prof.disable()
            prof.dump_stats(args.profile)
        load_after = load_avg()
        figures = [
            Figure(
                "score_experiment (score_run + decide)",
                elapsed,
                "s",
                TARGET_S,
                "<=",
                note=f"{args.items:,} items x {args.setups} setups, {args.bootstrap} replicates"
                + ("" if args.confidence else ", no confidences"),
            )
        ]
        details = {"seconds": elapsed, "load_avg_after": load_after}
        if args.reports:
            from harness.report.writer import write_reports
            from harness.run.manifest import build_manifest
            from harness.run.plan import make_plan

            del records
            manifest = build_manifest(make_plan(resolved), "bench")
            start = time.perf_counter()
            write_reports(tmp, manifest, metrics)
            t = time.perf_counter() - start
            details["reports_seconds"] = t
            figures.append(Figure("report files (json, md, html)", t, "s", note="untargeted"))
    return report("statistics", figures, args, details)


if __name__ == "__main__":
    sys.exit(main())
