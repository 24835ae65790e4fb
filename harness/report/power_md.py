"""The "How many gold items?" section of report.md (statistics.md section 8), also printed
by `prelabel plan --power`: every figure with the n it was planned from."""

from __future__ import annotations

from typing import Any

from harness.report.markdown_format import fmt, fmt_iv, table


def power_md(gs: dict[str, Any]) -> list[str]:
    block = gs.get("power")
    if not block:
        return []
    return ["", "### How many gold items?", "", *power_lines(block)]


def _items(x: int | None) -> str:
    return "–" if x is None else f"{x:,}"


def _range(r: list[int | None] | None) -> str:
    return "–" if not r else f"{_items(r[0])} to {_items(r[1])}"


def power_lines(block: dict[str, Any]) -> list[str]:
    """The planning figures as Markdown lines; a refusal says why and what to do."""
    if "refused" in block:
        return [f"Not planned: {block['refused']}."]
    basis, n = block["basis"], block["n"]
    acc, kap = block["accuracy"], block["kappa"]
    disc = acc["discordance"]
    pilot = basis.get("source") == "pilot"
    who = (
        "a pilot's discordance rate"
        if pilot
        else f"`{basis['setups'][0]}` vs `{basis['setups'][1]}`, the two most accurate setups "
        f"(n={n} items; only one of them right on {basis['a_only_right']} / "
        f"{basis['b_only_right']})"
    )
    out = [
        f"Planned from {who}: discordance {fmt_iv(disc)} (share of items exactly one gets "
        f"right{'' if pilot else f', n={n}'}); {round(block['power'] * 100)}% power, "
        f"two-sided alpha {block['alpha']:g}, {block['multiplicity']} "
        f"(alpha per pair {fmt(block['alpha_per_pair'], 4)}). Accuracy: McNemar's exact test, "
        "items needed searched on its exact power (Connor 1987's approximation beside it); "
        "kappa: Wald test with the bootstrap SE of the kappa difference scaled by sqrt(n). "
        f"{block['assumption'][0].upper()}{block['assumption'][1:]}.",
        "",
    ]
    if acc.get("note"):
        out += [f"Accuracy: {acc['note']}.", ""]
    rows = []
    now = f"power now (n={n})" if n else "power now"
    for t in acc.get("targets") or []:
        rows.append(_acc_row("accuracy", t))
    if acc.get("observed"):
        rows.append(_acc_row("accuracy (the observed gap)", acc["observed"]))
    for t in kap.get("targets") or []:
        rows.append(["kappa", fmt(t["difference"]), _items(t["items_needed"]), "–", "–", "–"])
    if rows:
        header = ["measure", "difference", "items needed", "Connor", "range", now]
        out += [table(header, rows), ""]
        ranged = any(t.get("items_needed_range") for t in acc.get("targets") or [])
        notes = "The range spans the discordance's interval (a plan from its ends). " * ranged
        if kap.get("targets"):
            notes += "Kappa's figures hold its per-item spread fixed at the one observed."
        if notes:
            out.append(notes.strip())
    detect = []
    if acc.get("detectable_difference") is not None:
        normal = fmt(acc["detectable_difference_normal"])
        detect.append(
            f"accuracy {fmt(acc['detectable_difference'])} (exact power; the normal "
            f"approximation of the comparisons table gives {normal})"
        )
    elif acc.get("detectable_note"):
        detect.append(f"accuracy: {acc['detectable_note']}")
    if kap.get("detectable_difference") is not None:
        detect.append(
            f"kappa {fmt(kap['detectable_difference'])} (bootstrap SE of the difference "
            f"{fmt(kap['se'])}, {kap.get('n_boot')} replicates)"
        )
    if detect and n:
        out.append(
            f"- Smallest difference this gold set can detect (n={n}, same power and alpha "
            f"per pair): {'; '.join(detect)}."
        )
    if kap.get("note"):
        out.append(f"- Kappa: {kap['note']}.")
    if basis.get("skipped_identical"):
        same = ", ".join(f"`{s}`" for s in basis["skipped_identical"])
        out.append(f"- Not planned from {same}: the same labels as the first on every item.")
    return out


def _acc_row(what: str, t: dict[str, Any]) -> list[str]:
    needed = _items(t.get("items_needed"))
    if t.get("note"):
        needed += f" ({t['note']})"
    return [
        what,
        fmt(t["difference"]),
        needed,
        _items(t.get("items_needed_connor")),
        _range(t.get("items_needed_range")),
        fmt(t.get("power_now"), 2),
    ]
