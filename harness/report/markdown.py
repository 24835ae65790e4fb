"""report.md: for people and pull-request comments. Every number carries its n, and an
interval where it is an estimate."""

from __future__ import annotations

from typing import Any

from harness.core.money import usd
from harness.core.records import RunManifest
from harness.report import leaderboard_notes as notes
from harness.report.clusters_md import with_clustering
from harness.report.decision_md import decision_section
from harness.report.deploy_md import deploy_md, groups_humans_lines, prompt_stability_md
from harness.report.juries_md import juries_md
from harness.report.markdown_format import alpha_band, by_kappa, fmt, fmt_iv, kappa_band, table
from harness.report.power_md import power_md
from harness.report.reference_md import dawid_skene_md
from harness.report.task_sections import (
    bias_and_slices,
    comparisons_section,
    humans_section,
    ranking_section,
    selective_line,
    setup_section,
    structured_section,
)
from harness.tasks.ranking import Ranking


def render_markdown(manifest: RunManifest, metrics: dict[str, Any]) -> str:
    level = round(metrics["bootstrap"]["level"] * 100)
    t = manifest.totals
    out = [
        f"# prelabel report: {metrics.get('experiment', '')}",
        "",
        f"Run `{manifest.run_id}` ({manifest.status}), config `{manifest.config_path}` "
        f"(hash {manifest.config_hash[:12]}), git {(manifest.git_commit or 'n/a')[:10]}"
        f"{' (dirty)' if manifest.git_dirty else ''}; {manifest.started_at} to "
        f"{manifest.finished_at}.",
        f"Labels: {t.get('labels', 0)} ({t.get('cached', 0)} from cache), calls made: "
        f"{t.get('calls', 0)}, spend this run: {usd(t.get('cost_usd', 0))}.",
        f"Intervals: {level}% bootstrap percentile over items (BCa below 100 items; "
        "‡: may cover less), "
        f"{metrics['bootstrap']['n_boot']} replicates, seed {metrics['bootstrap']['seed']}.",
    ]
    for gs in metrics["gold_sets"]:
        if "parts" in gs:
            section = structured_section(gs, level, _gold_set) + decision_section(gs)
        elif gs.get(Ranking.name):
            section = ranking_section(gs, level) + decision_section(gs)
        else:
            section = _gold_set(gs, level)
        out += with_clustering(section, gs)
    out += juries_md(metrics)
    return "\n".join(out) + "\n"


def _gold_set(gs: dict[str, Any], level: int) -> list[str]:
    h = gs["humans"]
    out = [
        "",
        f"## Gold set `{gs['id']}`: {h['n_items']} items, {h['n_annotators']} annotators",
        "",
    ]
    out += [
        "### Leaderboard",
        "",
        f"Sorted by Cohen's kappa against the human reference label ({level}% intervals). "
        "The ceiling column is the setup's kappa divided by a typical annotator's kappa "
        "against the others (leave-one-annotator-out): 1.0 means as close to the crowd as "
        "one of its members.",
        "",
    ]
    rows = []
    setups = by_kappa(gs["setups"])
    method = notes.recalibration_method(setups)
    for rank, b in enumerate(setups, start=1):
        cal = b["calibration"]
        usage = b["usage"]
        after = notes.recalibrated_ece(b, method) if method else None
        rows.append(
            [
                str(rank),
                f"`{b['setup']}`",
                str(b["n_items"]),
                fmt_iv(b["kappa"]) + notes.small_n_mark(b, "kappa"),
                fmt_iv(b["accuracy"]) + notes.small_n_mark(b, "accuracy"),
                fmt_iv(b["macro_f1"]) + notes.small_n_mark(b, "macro_f1"),
                f"{fmt(b['coverage']['value'])} ({b['coverage']['answered']}/{b['coverage']['n']})",
                notes.ceiling_text(
                    b["human_ceiling"]["ratio_kappa"], fmt(b["human_ceiling"]["ratio_kappa"], 2)
                ),
                fmt_iv(cal["ece"]) + f" (n={cal['n']})" + notes.small_n_mark(b, "ece")
                if cal
                else "–",
                *([fmt_iv(after) if after else notes.NOT_FITTED if cal else "–"] if method else []),
                usd(usage["cost_usd_per_item"]),
                fmt(usage["latency_s"]["p50"], 2),
            ]
        )
    base = gs["baseline"]
    rows.append(
        [
            "–",
            f"*{base['setup']}* (`{base['label']}`)",
            str(base["n_items"]),
            fmt(0.0),
            fmt_iv(base["accuracy"]),
            fmt_iv(base["macro_f1"]),
            "1.000",
            "–",
            "–",
            *(["–"] if method else []),
            usd(0),
            "–",
        ]
    )
    out.append(
        table(
            [
                "#",
                "setup",
                "n",
                "kappa",
                "accuracy",
                "macro-F1",
                "coverage",
                "kappa / ceiling",
                *(["ECE (raw)", f"ECE (after {method})"] if method else ["ECE"]),
                "$ / item",
                "p50 s",
            ],
            rows,
        )
    )
    if method:
        out += ["", notes.ece_note(method)]
    if notes.any_above_ceiling(setups):
        out += ["", notes.above_ceiling_note(gs)]
    if small := notes.small_n_notes(setups):
        out += ["", *small]
    out += comparisons_section(gs.get("comparisons") or [], level)
    out += power_md(gs)
    out += prompt_stability_md(gs)
    out += decision_section(gs)
    out += ["", "### Human agreement", ""]
    alpha = h["krippendorff_alpha"]["value"]
    fleiss = h["fleiss_kappa"]
    out += [
        f"- Krippendorff's alpha (nominal): {fmt(alpha)} ({alpha_band(alpha)}; "
        f"n={h['krippendorff_alpha']['n_items']} items with >= 2 ratings)",
        f"- Fleiss' kappa: {fmt(fleiss['value'])} ({kappa_band(fleiss['value'])}; "
        f"n={fleiss['n_items']})"
        if fleiss["value"] is not None
        else f"- Fleiss' kappa: {fleiss['note']}",
        f"- Gwet's AC1: {fmt(h['gwet_ac1']['value'])} (n={h['gwet_ac1']['n_items']})",
        f"- Ratings per item: {h['ratings_per_item']['min']}-{h['ratings_per_item']['max']} "
        f"(mean {fmt(h['ratings_per_item']['mean'], 2)})",
        f"- Reference label: {h['reference']['tie_rule']}; items without a majority: "
        f"{h['reference']['n_no_majority']} of {h['reference']['n_items']}",
        "",
        *humans_section(h),
        *groups_humans_lines(h),
        *dawid_skene_md(gs),
        "",
        _pair_kappas(h["pairwise_kappa"]),
        "",
        table(
            ["label", "all human ratings", "reference"],
            [
                [label, str(n), str(h["reference_distribution"][label])]
                for label, n in h["label_distribution"].items()
            ],
        ),
    ]
    for b in setups:
        out += _setup(b)
    return out


def _setup(b: dict[str, Any]) -> list[str]:
    c = b["human_ceiling"]
    out = [
        "",
        f"### Setup `{b['setup']}`",
        "",
        f"- Accuracy: {fmt_iv(b['accuracy'])} end-to-end (failures count as wrong, "
        f"n={b['accuracy']['n']}); {fmt_iv(b['accuracy_answered'])} on answered items "
        f"(n={b['accuracy_answered']['n']})",
        f"- Macro-F1: {fmt_iv(b['macro_f1'])} end-to-end; "
        f"{fmt_iv(b['macro_f1_answered'])} answered",
        f"- Cohen's kappa vs reference: {fmt_iv(b['kappa'])} "
        f"({kappa_band(b['kappa']['estimate'])}); "
        f"mean kappa vs each annotator: {fmt(b['mean_kappa_vs_annotators']['value'])} "
        f"(n={b['mean_kappa_vs_annotators']['n_annotators']} annotators)",
        f"- Human ceiling (leave-one-annotator-out, n={c['n_pairs']} annotator-item pairs): "
        f"humans kappa {fmt(c['human_kappa'])}, LLM {fmt(c['llm_kappa'])}, ratio "
        f"{fmt(c['ratio_kappa'], 2)}; accuracy humans {fmt(c['human_accuracy'])}, "
        f"LLM {fmt(c['llm_accuracy'])}, ratio {fmt(c['ratio_accuracy'], 2)}",
        f"- Krippendorff's alpha, humans: {fmt(b['alpha']['humans'])}; humans + this LLM as "
        f"one more coder: {fmt(b['alpha']['humans_plus_llm'])} (the LLM's failed items count "
        f"as missing ratings; coverage {fmt(b['coverage']['value'])})"
        + (
            " (adding the LLM lowers agreement)"
            if None not in ((a := b["alpha"])["humans"], a["humans_plus_llm"])
            and a["humans_plus_llm"] < a["humans"]
            else ""
        ),
        f"- Failures: {', '.join(f'{k}: {v}' for k, v in b['failures'].items()) or 'none'} "
        f"(of {b['n_items']} items)",
    ]
    cal = b["calibration"]
    if cal:
        out.append(
            f"- Calibration (n={cal['n']}, sources {cal['sources']}): ECE {fmt_iv(cal['ece'])} "
            f"(equal-mass {fmt_iv(cal['ece_equal_mass_interval'])}"
            + (f"; debiased L2 {fmt_iv(cal['ece_debiased'])}" if cal.get("ece_debiased") else "")
            + f"), Brier {fmt(cal['brier'])}, "
            f"log loss {fmt(cal['log_loss'])}, AUROC of confidence for correctness "
            f"{fmt(cal['auroc'])}, "
            f"mean confidence {fmt(cal['mean_confidence'])} vs accuracy {fmt(cal['accuracy'])}"
        )
    else:
        out.append("- Calibration: no confidences for this setup")
    out.append(selective_line(b.get("selective")))
    out += bias_and_slices(b)
    out += deploy_md(b)
    u = b["usage"]
    cost = u["cost_usd_this_run"]
    out.append(
        f"- Usage: {u['n_records']} label records ({u['failed_records']} failed), "
        f"{u['cache_hits']} from cache, "
        f"{u['input_tokens']} input / {u['output_tokens']} output tokens, cost this run "
        f"{usd(cost)}, latency p50 "
        f"{fmt(u['latency_s']['p50'], 2)} s / p95 {fmt(u['latency_s']['p95'], 2)} s "
        f"(n={u['latency_s']['n']})"
    )
    out += [
        "",
        table(
            ["label", "precision", "recall", "F1", "support"],
            [
                [p["label"], fmt(p["precision"]), fmt(p["recall"]), fmt(p["f1"]), str(p["support"])]
                for p in b["per_class"]
            ],
        ),
    ]
    out += setup_section(b)
    conf = b["confusion"]
    out += [
        "",
        "Confusion (rows: reference, columns: setup):",
        "",
        table(
            ["", *conf["columns"]],
            [[r, *map(str, row)] for r, row in zip(conf["rows"], conf["matrix"], strict=True)],
        ),
    ]
    return out


MAX_PAIR_ROWS = 15


def _pair_kappas(pairs: list[dict[str, Any]]) -> str:
    """Every annotator pair for small panels; a summary for crowds (metrics.json has all)."""
    if len(pairs) <= MAX_PAIR_ROWS:
        return table(
            ["annotator pair", "n", "Cohen's kappa"],
            [
                [f"{p['a']} / {p['b']}", str(p["n"]), f"{fmt(p['kappa'])} {kappa_band(p['kappa'])}"]
                for p in pairs
            ],
        )
    usable = sorted(p["kappa"] for p in pairs if p["n"] >= 10 and p["kappa"] is not None)
    if not usable:
        return f"Cohen's kappa per annotator pair: no pair of the {len(pairs)} shares 10 items."
    mid = usable[len(usable) // 2]
    q1, q3 = usable[len(usable) // 4], usable[(3 * len(usable)) // 4]
    return (
        f"Cohen's kappa per annotator pair: median {fmt(mid)} (quartiles {fmt(q1)} to "
        f"{fmt(q3)}) over {len(usable)} pairs sharing >= 10 items, of {len(pairs)} pairs "
        "(all in metrics.json)."
    )
