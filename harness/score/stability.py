"""Stability and the Alternative Annotator Test (statistics.md sections 9 and 11).

- Intra-prompt: a setup sampled k times (run.samples > 1, temperature > 0): alpha across the
  samples and the share of items whose label flips between them.
- Inter-prompt: paraphrased prompt variants (prompts sharing a `group`) on one model: alpha
  across the variants, flip rate, and how far their accuracies spread.
- Alt-test: may this setup replace one of the annotators? (Calderon et al., ACL 2025)
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from harness.core.records import LabelRecord, Setup
from harness.metrics.alt_test import CLUSTERED_T_TEST, EPSILON, AltTestRow, alt_test
from harness.metrics.stability import RunAgreement, inter_prompt_stability, intra_prompt_stability
from harness.score.json_numbers import interval, num, with_note
from harness.score.predictions import CodedGoldSet
from harness.tasks import task_type


def _level(coded: CodedGoldSet) -> str:
    return task_type(coded.task_type).alpha_level


RUNS_ALPHA_UNDEFINED = "undefined: every answer is the same label (no variation to agree on)"


def _agreement(a: RunAgreement) -> dict[str, Any]:
    alpha = interval(a.alpha_ci) | {"estimate": num(a.alpha)}
    alpha.pop("note", None)  # the interval's own note was about its resampled estimate
    no_pairs = "not computed: no item has two answered runs"
    with_note(alpha, no_pairs if a.n_alpha == 0 else RUNS_ALPHA_UNDEFINED)
    return {
        "alpha": alpha,
        "flip_rate": num(a.flip_rate),
        "disagreement_rate": num(a.disagreement_rate),
        "failure_rate": num(a.failure_rate),
        "n_items": a.n_items,
        "n_alpha": a.n_alpha,
        "runs": a.n_runs,
        "level": a.level,
        **({"note": f"flip and disagreement rates {no_pairs}"} if a.n_alpha == 0 else {}),
    }


def samples_matrix(coded: CodedGoldSet, records: Iterable[LabelRecord]) -> np.ndarray | None:
    """(items x samples) label codes of the unswapped samples; None with fewer than 2."""
    records = list(records)
    if not any(r.sample for r in records):  # one sample per item (most runs): nothing to do
        return None
    rows: dict[int, dict[int, int]] = defaultdict(dict)
    for r in records:
        if r.swapped or r.item not in coded.index:
            continue
        rows[coded.index[r.item]][r.sample] = (
            coded.code.get(r.label, -1) if isinstance(r.label, str) else -1
        )
    k = max((max(s) + 1 for s in rows.values() if s), default=0)
    if k < 2:
        return None
    out = np.full((len(coded.item_ids), k), -1, dtype=np.int64)
    for i, samples in rows.items():
        for s, c in samples.items():
            out[i, s] = c
    return out


def intra_prompt_block(
    coded: CodedGoldSet, records: Sequence[LabelRecord], boot: dict[str, Any]
) -> dict[str, Any] | None:
    samples = samples_matrix(coded, records)
    if samples is None:
        return None
    a = intra_prompt_stability(
        samples,
        len(coded.labels),
        _level(coded),
        boot["n_boot"],
        boot["seed"],
        boot["level"],
        clusters=coded.clusters,
    )
    return _agreement(a)


def inter_prompt_blocks(
    coded: CodedGoldSet,
    setups: Sequence[Setup],
    predictions: dict[str, np.ndarray],
    prompt_groups: dict[str, str],
    boot: dict[str, Any],
) -> list[dict[str, Any]]:
    """One block per (prompt group, model) with at least two variants."""
    families: dict[tuple[str, str], list[Setup]] = defaultdict(list)
    for s in setups:
        group = prompt_groups.get(s.prompt_id or "")
        if group:
            families[(group, s.model_id)].append(s)
    out = []
    for (group, model), members in sorted(families.items()):
        if len(members) < 2:
            continue
        variants = np.column_stack([predictions[s.id] for s in members])
        st = inter_prompt_stability(
            variants,
            coded.reference,
            len(coded.labels),
            _level(coded),
            boot["n_boot"],
            boot["seed"],
            boot["level"],
            clusters=coded.clusters,
        )
        out.append(
            {
                "group": group,
                "model": model,
                "setups": [s.id for s in members],
                **_agreement(st.agreement),
                "accuracy": [
                    {"setup": members[v.variant].id, "accuracy": num(v.accuracy), "n": v.n}
                    for v in st.per_variant
                ],
                "accuracy_range": num(st.accuracy_range),
                "accuracy_std": num(st.accuracy_std),
            }
        )
    return out


def alt_test_block(coded: CodedGoldSet, pred: np.ndarray, cfg: dict[str, Any]) -> dict[str, Any]:
    """The test's result, or why it cannot be run on this gold set (a refusal is an answer)."""
    epsilon = cfg.get("epsilon") or EPSILON[cfg.get("annotators", "skilled")]
    scoring = _level(coded)
    names = coded.gold.annotators
    failures = cfg.get("failures", "worst")
    convention = alt_failures(failures, coded, pred)
    try:
        r = alt_test(
            coded.ratings,
            pred,
            len(coded.labels),
            epsilon,
            scoring=scoring,
            q=cfg.get("q", 0.05),
            min_items=cfg.get("min_items", 30),
            failures=failures,
            # Turns of one conversation are not independent (statistics.md 3): the
            # per-annotator t-tests then use the cluster-robust standard error.
            clusters=coded.clusters,
        )
    except ValueError as exc:
        # The statistic numbers annotators by column; the report names them.
        reason = re.sub(
            r"annotator (\d+)", lambda m: f"annotator {names[int(m.group(1))]}", str(exc)
        )
        return {"refused": reason, "epsilon": epsilon, "scoring": scoring, **convention}
    return {
        **convention,
        "passed": r.passed,
        "winning_rate": num(r.winning_rate),
        "advantage_probability": num(r.advantage_probability),
        "epsilon": r.epsilon,
        "epsilon_basis": "config"
        if cfg.get("epsilon")
        else f"default for {cfg.get('annotators', 'skilled')} annotators",
        "q": r.q,
        "scoring": r.scoring,
        "min_items": r.min_items,
        "warning": r.warning,
        "skipped": [{"annotator": names[a], "n": n} for a, n in r.skipped],
        "per_annotator": [_alt_row(row, names) for row in r.per_annotator],
        # Stated only when clustered, so an unclustered metrics.json is unchanged.
        **({"test": CLUSTERED_T_TEST} if r.clustered else {}),
    }


def alt_failures(failures: str, coded: CodedGoldSet, pred: np.ndarray) -> dict[str, Any]:
    """The convention for failed LLM answers, stated beside the result: the authors' code
    drops those items, prelabel's default scores them worst, so the two differ whenever
    the LLM fails (statistics.md section 5)."""
    n = int((((coded.ratings >= 0).sum(axis=1) >= 2) & (pred < 0)).sum())
    if failures == "drop":
        how = f"{n} item(s) the LLM failed on left out, as the authors' code does"
    else:
        how = (
            f"{n} item(s) the LLM failed on scored as the worst answer "
            "(the authors' code drops them)"
        )
    return {"failures": failures, "n_failed_items": n, "failures_note": how}


def _alt_row(row: AltTestRow, names: Sequence[str]) -> dict[str, Any]:
    """One annotator's test; a zero-variance t (+-inf, or nan at mean = epsilon: the
    statistic decides those by the mean alone) is null with its note, and so is the t of
    items that all lie in one cluster (no degree of freedom: p = 1)."""
    out = {k: num(v) if isinstance(v, float) else v for k, v in asdict(row).items()}
    out["annotator"] = names[row.annotator]
    if row.n_clusters is None:
        del out["n_clusters"]  # independent items: the row is as it always was
    if row.n_clusters == 1:
        out["t"] = None
        out["note"] = (
            f"t not computed: all {row.n} items are in one cluster, which leaves the "
            f"cluster-robust test no degree of freedom (p = {row.p_value:g}: the LLM is not "
            "shown to beat this annotator)"
        )
    elif not math.isfinite(row.t):
        out["t"] = None
        spread = (
            f"every item's difference is {row.mean_difference:g} (zero variance)"
            if row.n_clusters is None
            else f"every cluster's mean difference is {row.mean_difference:g} (zero "
            "cluster-robust variance)"
        )
        out["note"] = f"t not computed: {spread}, so the mean alone decides (p = {row.p_value:g})"
    return out
