"""report.md sections that only ordinal and pairwise tasks have."""

from __future__ import annotations

from typing import Any

from harness.report.markdown_format import by_kappa, fmt, fmt_iv, table
from harness.tasks import TASKS
from harness.tasks.ranking import Ranking


def _rate(r: dict[str, Any] | None, digits: int = 3) -> str:
    return "–" if not r or r["value"] is None else f"{fmt(r['value'], digits)} (n={r['n']})"


def _levels_humans(o: dict[str, Any]) -> list[str]:
    return [
        f"- Ordinal scale (low to high): {', '.join(o['scale'])}",
        f"- Krippendorff's alpha, ordinal: {fmt(o['krippendorff_alpha_ordinal'])}, interval: "
        f"{fmt(o['krippendorff_alpha_interval'])} (n={o['n_items']} items with >= 2 ratings)",
    ]


def _pairs_humans(p: dict[str, Any]) -> list[str]:
    return [
        f"- Tie rate of the human ratings: {_rate(p['tie_rate_ratings'])}; of the reference "
        f"verdicts: {_rate(p['tie_rate_reference'])}",
        "- Length bias of the human reference (pairs whose lengths differ by > 30 "
        f"characters, non-tie): the longer response preferred in "
        f"{_rate(p['length_bias_reference'])}",
    ]


def _sections(block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(section, its metrics) of the task types whose section (harness/tasks) is in a block:
    score/ writes a task type's section under the type's name."""
    return [(t.section, block[t.name]) for t in TASKS.values() if t.section and t.name in block]


def humans_section(h: dict[str, Any]) -> list[str]:
    renderers = {"levels": _levels_humans, "pairs": _pairs_humans}
    return [line for section, data in _sections(h) for line in renderers[section](data)]


def setup_section(b: dict[str, Any]) -> list[str]:
    renderers = {"levels": _ordinal, "pairs": _pairwise}
    return [line for section, data in _sections(b) for line in renderers[section](data)]


def _ordinal(o: dict[str, Any]) -> list[str]:
    c = o["human_ceiling"]
    a = o["alpha"]
    rows = [
        [
            "exact",
            fmt_iv(o["exact"]),
            fmt(c["human_exact"]),
            fmt(c["llm_exact"]),
            fmt(c["ratio_exact"], 2),
        ],
        [
            "within one level",
            fmt_iv(o["within_one"]),
            fmt(c["human_within_one"]),
            fmt(c["llm_within_one"]),
            fmt(c["ratio_within_one"], 2),
        ],
        [
            "MAE (levels, answered)",
            fmt_iv(o["mae"]),
            fmt(c["human_mae"]),
            fmt(c["llm_mae"]),
            fmt(c["ratio_mae"], 2) + " (human/LLM)",
        ],
        ["kappa, linear weights", fmt_iv(o["kappa_linear"]), "–", "–", "–"],
        [
            "kappa, quadratic weights",
            fmt_iv(o["kappa_quadratic"]),
            fmt(c["human_kappa_quadratic"]),
            fmt(c["llm_kappa_quadratic"]),
            fmt(c["ratio_kappa_quadratic"], 2),
        ],
    ]
    out = [
        "",
        f"Ordinal view (reference: median; n={o['exact']['n']}; ceiling: "
        f"leave-one-annotator-out against the others' lower median, "
        f"n={c['n_pairs']} annotator-item pairs):",
        "",
        table(["metric", "vs reference [CI]", "human ceiling", "LLM, same items", "ratio"], rows),
        "",
        f"Krippendorff's alpha: ordinal humans {fmt(a['ordinal_humans'])} -> with the LLM "
        f"{fmt(a['ordinal_humans_plus_llm'])}; interval humans {fmt(a['interval_humans'])} "
        f"-> with the LLM {fmt(a['interval_humans_plus_llm'])}.",
    ]
    if o.get("mean_expected_level"):
        e = o["mean_expected_level"]
        out.append(
            f"Mean expected level under the label distribution (0 = "
            f"{o['scale'][0]}): {fmt(e['value'], 2)} (n={e['n']} items)."
        )
    return out


def _pairwise(p: dict[str, Any]) -> list[str]:
    out = [
        "",
        "Pairwise view:",
        "",
        f"- Agreement with the human reference, ties included: "
        f"{fmt_iv(p['agreement_with_ties'])} (n={p['agreement_with_ties']['n']}); "
        f"on pairs where neither says tie: {fmt_iv(p['agreement_without_ties'])} "
        f"(n={p['agreement_without_ties']['n']})",
        f"- Tie rate: {_rate(p['tie_rate'])}",
        f"- Length bias (longer response preferred, pairs differing by > 30 characters): "
        f"this setup {_rate(p['length_bias'])}, humans {_rate(p['length_bias_humans'])}",
    ]
    if p["both_orders"]:
        out += [
            f"- Position consistency (same verdict in both orders): "
            f"{_rate(p['position_consistency'])}",
            f"- First-position preference among non-tie verdicts as shown (0.5 = no "
            f"position bias): {_rate(p['first_position_rate'])}",
        ]
    else:
        out.append(
            "- Asked in one order only: position bias not measured "
            "(replayed labels, or task.pairwise.swap: false)"
        )
    return out


def structured_section(gs: dict[str, Any], level: int, gold_set_section: Any) -> list[str]:
    """Multi-label and rubric tasks: a combined leaderboard, then every label or axis as a
    task of its own (its leaderboard, human agreement and per-setup details)."""
    h = gs["humans"]
    out = [
        "",
        f"## Gold set `{gs['id']}`: {h['n_items']} items, {h['n_annotators']} annotators",
        "",
        "### Combined leaderboard",
        "",
        f"Means over the {len(gs['parts'])} parts (each part's own intervals are in its "
        f"section); set-level metrics with {level}% intervals.",
        "",
    ]
    rows = []
    ordered = by_kappa(gs["setups"])
    for rank, b in enumerate(ordered, start=1):
        extra = (
            f"micro-F1 {fmt_iv(b['micro_f1'])}, Jaccard {fmt_iv(b['jaccard'])}"
            if "jaccard" in b
            else f"within one {fmt(b['within_one']['estimate'])}, quadratic kappa "
            f"{fmt(b['kappa_quadratic']['estimate'])}"
        )
        rows.append(
            [
                str(rank),
                f"`{b['setup']}`",
                str(b["n_items"]),
                fmt(b["kappa"]["estimate"]),
                fmt_iv(b["accuracy"]),
                fmt_iv(b["macro_f1"]),
                f"{fmt(b['coverage']['value'])} ({b['coverage']['answered']}/{b['coverage']['n']})",
                extra,
            ]
        )
    label = "exact match" if "jaccard" in (gs["setups"] or [{}])[0] else "mean exact"
    out.append(
        table(["#", "setup", "n", "mean kappa", label, "macro-F1", "coverage", "more"], rows)
    )
    for part in gs["parts"]:
        section = gold_set_section(part, level)
        section[1] = f"## Part `{part['name']}` of `{gs['id']}` ({part['type']})"
        out += section
    return out


def ranking_section(gs: dict[str, Any], level: int) -> list[str]:
    """Best-of-N ranking: agreement with the Borda consensus and with each annotator."""
    h = gs["humans"]
    out = [
        "",
        f"## Gold set `{gs['id']}`: {h['n_items']} items, {h['n_annotators']} "
        f"annotators, {h['n_candidates']} candidates each",
        "",
        f"Against the Borda consensus of the annotators ({level}% intervals); the ceiling "
        "compares each annotator and the LLM with the Borda ranking of the other "
        "annotators on the same items.",
        "",
    ]
    rows = []
    for b in by_kappa(gs["setups"]):
        r, c = b[Ranking.name], b["human_ceiling"]
        rows.append(
            [
                f"`{b['setup']}`",
                str(b["n_items"]),
                fmt_iv(r["top1"]),
                fmt_iv(r["tau"]),
                fmt_iv(r["rho"]),
                f"{fmt(r['against_annotators']['tau'])} (n={r['against_annotators']['n_pairs']})",
                f"{fmt(c['human_tau'])} / {fmt(c['llm_tau'])} ({fmt(c['ratio_kappa'], 2)})",
                f"{fmt(b['coverage']['value'])} ({b['coverage']['answered']}/{b['coverage']['n']})",
                ", ".join(f"{k}: {v}" for k, v in b["failures"].items()) or "none",
            ]
        )
    out.append(
        table(
            [
                "setup",
                "n",
                "top-1",
                "Kendall tau",
                "Spearman rho",
                "tau vs each annotator",
                "ceiling tau: humans / LLM (ratio)",
                "coverage",
                "failures",
            ],
            rows,
        )
    )
    return out


def comparisons_section(rows: list[dict[str, Any]], level: int) -> list[str]:
    """Every pair of setups on the same items: is the difference real or noise?"""
    if not rows:
        return []
    return [
        "",
        "### Can the setups be told apart?",
        "",
        f"Paired on the same items: accuracy difference (first minus second) with its "
        f"{level}% paired bootstrap interval, McNemar's exact test on the items only one "
        "of them got right (Holm-corrected over the pairs), and the smallest difference "
        "this gold set could detect (80% power, 5% level).",
        "",
        table(
            [
                "pair",
                "n",
                "accuracy difference",
                "only first / only second right",
                "p (Holm)",
                "detectable",
                "verdict",
            ],
            [
                [
                    f"`{r['a']}` vs `{r['b']}`",
                    str(r["n"]),
                    fmt_iv(r["accuracy_difference"]),
                    f"{r['mcnemar']['a_only_right']} / {r['mcnemar']['b_only_right']}",
                    fmt(r["mcnemar"]["p_holm"]),
                    fmt(r["minimum_detectable_difference"]),
                    r["verdict"],
                ]
                for r in rows
            ],
        ),
    ]


def selective_line(s: dict[str, Any] | None) -> str:
    if not s:
        return "- Auto-accept: needs a confidence on at least 10 answered items"
    head = (
        f"- Auto-accept at <= {s['target_error']:.0%} error with {1 - s['delta']:.0%} "
        f"confidence (Learn then Test, n={s['n']}, "
        f"{s.get('confidence', 'raw')} confidence): "
    )
    if s["threshold"] is None:
        head += "no threshold qualifies; every item needs a human"
    else:
        head += (
            f"confidence >= {fmt(s['threshold'])} accepts {fmt(s['auto_accept_share'])} "
            f"of items ({s['auto_accepted']}, {s['errors_among_accepted']} of them wrong)"
        )
    c = s["cross_fit"]
    check = (
        f"fitted on {c['fit_n']} items, the other {c['check_n']} accept "
        f"{c['check_accepted']} with error {fmt(c['check_error_rate'])}"
        if c["threshold"] is not None
        else "no threshold on the fit half"
    )
    return f"{head}; cross-fit check: {check}; AURC {fmt(s['aurc'])}"


def bias_and_slices(b: dict[str, Any]) -> list[str]:
    out = []
    bias = b.get("label_bias") or []
    leaning = [x for x in bias if x["excess"]]
    if leaning:
        parts = [
            f"{x['label']} {x['excess']:+d} ({x['predicted']} vs {x['reference']})"
            for x in sorted(leaning, key=lambda x: -abs(x["excess"]))
        ]
        out.append(
            f"- Label counts against the reference (answered items, n={bias[0]['n']}): "
            + ", ".join(parts)
        )
    for field, rows in (b.get("slices") or {}).items():
        cells = [
            f"{r['value']} {fmt_iv(r['accuracy'])} (n={r['n']})"
            if "accuracy" in r
            else f"{r['value']} (n={r['n']}, too few to score)"
            for r in rows
        ]
        out.append(f"- Accuracy by `{field}`: " + "; ".join(cells))
    return out
