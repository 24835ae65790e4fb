"""report.md sections that only ordinal and pairwise tasks have."""

from __future__ import annotations

from typing import Any

from harness.report.markdown_format import fmt, fmt_iv, table


def _rate(r: dict[str, Any] | None, digits: int = 3) -> str:
    return "–" if not r or r["value"] is None else f"{fmt(r['value'], digits)} (n={r['n']})"


def humans_section(h: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "ordinal" in h:
        o = h["ordinal"]
        out += [
            f"- Ordinal scale (low to high): {', '.join(o['scale'])}",
            f"- Krippendorff's alpha, ordinal: {fmt(o['krippendorff_alpha_ordinal'])}, interval: "
            f"{fmt(o['krippendorff_alpha_interval'])} (n={o['n_items']} items with >= 2 ratings)",
        ]
    if "pairwise" in h:
        p = h["pairwise"]
        out += [
            f"- Tie rate of the human ratings: {_rate(p['tie_rate_ratings'])}; of the reference "
            f"verdicts: {_rate(p['tie_rate_reference'])}",
            "- Length bias of the human reference (pairs whose lengths differ by > 30 "
            f"characters, non-tie): the longer response preferred in "
            f"{_rate(p['length_bias_reference'])}",
        ]
    return out


def setup_section(b: dict[str, Any]) -> list[str]:
    if "ordinal" in b:
        return _ordinal(b["ordinal"])
    if "pairwise" in b:
        return _pairwise(b["pairwise"])
    return []


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
