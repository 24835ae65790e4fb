"""How many gold items (statistics.md section 8): the `power` block of a gold set in
metrics.json, and the same figures for `prelabel plan --power` from a run or a pilot.

The block has two parts: `basis`, what was measured on the gold set (the two setups with
the highest accuracy, their paired table, the bootstrap SE of their kappa difference), and
the figures planned from it with the `report.power` settings. `plan --power` recomputes
the figures from a stored basis with the config as it is now.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np

from harness.metrics.audit import wilson_interval
from harness.metrics.compare import design_effect, minimum_detectable_difference
from harness.metrics.power import (
    bootstrap_se_differences,
    connor_sample_size,
    mcnemar_detectable_difference,
    mcnemar_exact_power,
    mcnemar_sample_size,
    wald_detectable_difference,
    wald_sample_size,
)
from harness.score.json_numbers import num

DEFAULTS = {
    "power": 0.8,
    "alpha": 0.05,
    "holm": True,
    "accuracy_differences": [0.02, 0.05, 0.1],
    "kappa_differences": [0.05, 0.1],
}
ONE_SETUP = (
    "one setup on this gold set: nothing to compare (add a second setup, or plan from a "
    "pilot with `prelabel plan CONFIG --power --discordance RATE`)"
)
NO_ITEMS = "no item with a reference label: nothing to plan from"
AGREE = (
    "the two setups are right and wrong on the same items (no discordant item): no number "
    "of items tells them apart at this discordance"
)
INDEPENDENT = (
    "items are taken as independent: with clustered items (gold_sets[].cluster_by) more "
    "are needed, by the design effect"
)


def power_basis(
    ref: np.ndarray,
    preds: dict[str, np.ndarray],
    n_classes: int,
    boot: dict[str, Any],
    clusters: np.ndarray | None = None,
) -> dict[str, Any]:
    """What the plan rests on: the top two setups by accuracy on the referenced items;
    with ``clusters`` (one id per item) the SEs come from resampling whole clusters."""
    keep = ref >= 0
    n = int(keep.sum())
    if len(preds) < 2:
        return {"refused": ONE_SETUP, "n": n}
    if n == 0:
        return {"refused": NO_ITEMS, "n": 0}
    r = ref[keep]
    right = {s: p[keep] == r for s, p in preds.items()}
    # Stable: among equal accuracies the first configured setup comes first. The second is
    # the most accurate setup that labels some item differently from the first: a copy
    # (e.g. two juries of the same members) can never be told apart, so planning from it
    # would say nothing about the setups that can.
    ranked = sorted(right, key=lambda s: -int(right[s].sum()))
    a = ranked[0]
    differ = [s for s in ranked[1:] if not np.array_equal(preds[s][keep], preds[a][keep])]
    b = differ[0] if differ else ranked[1]
    se_acc, se_kappa = bootstrap_se_differences(
        ref, preds[a], preds[b], n_classes, boot["n_boot"], boot["seed"], clusters
    )
    only_a, only_b = int((right[a] & ~right[b]).sum()), int((~right[a] & right[b]).sum())
    out = {
        "setups": [a, b],
        "pairs": len(list(combinations(preds, 2))),
        "n": n,
        "a_only_right": only_a,
        "b_only_right": only_b,
        "kappa_difference_se": num(se_kappa),
        "n_boot": int(boot["n_boot"]),
        "level": float(boot["level"]),
        "source": "this gold set",
    }
    copies = ranked[1 : ranked.index(b)]
    if copies:
        out["skipped_identical"] = copies  # same labels as the first on every item
    if clusters is not None:
        # Kish's design effect of the accuracy difference: the cluster bootstrap's variance
        # over the independent-items variance of the same paired table (as in comparisons).
        out["n_clusters"] = int(np.unique(np.asarray(clusters)[keep]).size)
        out["design_effect"] = num(design_effect(se_acc, only_a, only_b, n))
    return out


def basis_from_metrics(gold_set: dict[str, Any]) -> dict[str, Any] | None:
    """The basis of a stored gold set: its `power` block's, else (a run scored before the
    block existed) rebuilt from the comparison of its two most accurate setups, without
    the kappa SE. None when the gold set has no comparisons."""
    stored = (gold_set.get("power") or {}).get("basis")
    if stored:
        return dict(stored)
    rows = gold_set.get("comparisons") or []
    if not rows:
        return None
    acc = {
        s["setup"]: (s.get("accuracy") or {}).get("estimate") or 0.0
        for s in gold_set.get("setups") or []
    }
    top = sorted(acc, key=lambda s: -acc[s])[:2]
    for row in rows:
        if {row["a"], row["b"]} == set(top):
            flip = row["a"] != top[0]
            mc = row["mcnemar"]
            b, c = mc["a_only_right"], mc["b_only_right"]
            return {
                "setups": top,
                "pairs": len(rows),
                "n": row["n"],
                "a_only_right": c if flip else b,
                "b_only_right": b if flip else c,
                "kappa_difference_se": None,
                "level": 0.95,
                "source": "the comparison of the two most accurate setups",
            }
    return None


def pilot_basis(discordance: float, n: int | None, pairs: int = 1) -> dict[str, Any]:
    """A basis from a pilot's discordance rate (share of items exactly one setup gets
    right), with the pilot's size when known (for the detectable difference)."""
    size = n or 0
    half = discordance * size / 2.0
    return {
        "setups": None,
        "pairs": pairs,
        "n": size,
        "discordance": discordance,
        "a_only_right": half,
        "b_only_right": half,
        "kappa_difference_se": None,
        "level": 0.95,
        "source": "pilot",
    }


def _accuracy_target(
    delta: float,
    psi: float,
    psi_iv: tuple[float, float] | None,
    n: int,
    alpha: float,
    power: float,
    inflate: float = 1.0,
) -> dict[str, Any]:
    """One difference: items needed (times the design effect ``inflate`` for clustered
    items) and the power the gold set's n (its ``n`` independent-item equivalent) has."""

    def scaled(x: int | None) -> int | None:
        return None if x is None else math.ceil(x * inflate)

    row: dict[str, Any] = {"difference": num(delta)}
    if psi < delta:
        row["items_needed"] = None
        row["note"] = (
            f"the setups disagree on a share {psi:.3f} of items, less than {delta:g}: "
            "they cannot differ that much at this discordance"
        )
    else:
        needed = mcnemar_sample_size(psi, delta, alpha, power)
        row["items_needed"] = scaled(needed)
        row["items_needed_connor"] = scaled(math.ceil(connor_sample_size(psi, delta, alpha, power)))
        if needed is None:
            row["note"] = "beyond the exact search (200,000 items): Connor's figure only"
    if psi_iv is not None:
        # Items needed grow with the discordance: its interval's ends bound the plan.
        lo, hi = max(psi_iv[0], delta), psi_iv[1]
        row["items_needed_range"] = (
            [
                scaled(mcnemar_sample_size(lo, delta, alpha, power)),
                scaled(mcnemar_sample_size(hi, delta, alpha, power)),
            ]
            if hi >= delta
            else None
        )
    if n > 0 and psi >= delta:
        row["power_now"] = num(mcnemar_exact_power(n, psi, delta, alpha))
    return row


def power_block(basis: dict[str, Any], cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The planned figures from a basis with the `report.power` settings."""
    cfg = {**DEFAULTS, **(cfg or {})}
    if "refused" in basis:
        return {"refused": basis["refused"], "basis": basis}
    n, pairs = int(basis["n"]), int(basis.get("pairs") or 1)
    k = pairs if cfg["holm"] else 1
    alpha, power = float(cfg["alpha"]), float(cfg["power"])
    a_per = alpha / k
    b, c = basis["a_only_right"], basis["b_only_right"]
    psi = basis["discordance"] if "discordance" in basis else ((b + c) / n if n else float("nan"))
    out: dict[str, Any] = {
        "basis": basis,
        "n": n,
        "power": power,
        "alpha": alpha,
        "holm": bool(cfg["holm"]),
        "pairs": pairs,
        "alpha_per_pair": num(a_per),
        "multiplicity": _multiplicity(bool(cfg["holm"]), pairs),
        "assumption": INDEPENDENT,
    }
    deff = basis.get("design_effect")
    # Clustered items carry less information than as many independent ones: every size is
    # multiplied by the design effect (never below 1: a smaller estimate is noise).
    inflate = max(1.0, deff) if deff is not None else 1.0
    n_eff = int(n / inflate)
    if basis.get("n_clusters") is not None:
        out["design_effect"] = deff
        out["assumption"] = (
            f"items come in {basis['n_clusters']} clusters: accuracy sizes are those of "
            f"independent items times the design effect {_show(deff)} (cluster bootstrap "
            f"over independent-items variance of the difference, Kish 1965), the figures at "
            f"this gold set at its {n_eff} independent-item equivalent; kappa's SE is the "
            "cluster bootstrap's, for clusters of the same sizes"
        )
    psi_iv = None
    if n > 0:  # a pilot of known size too: its discordance is an estimate from n items
        w = wilson_interval(round(b + c), n, basis.get("level", 0.95))
        psi_iv = (w.low, w.high)
    acc: dict[str, Any] = {
        "test": "McNemar exact, two-sided (compare_setups)",
        "discordance": {
            "estimate": num(psi),
            "low": num(psi_iv[0]) if psi_iv else None,
            "high": num(psi_iv[1]) if psi_iv else None,
            "n": n,
            "level": basis.get("level", 0.95),
        },
    }
    if math.isnan(psi) or psi == 0.0:
        acc["note"] = (
            AGREE if n else "no gold items: give the pilot's size for the detectable difference"
        )
        if math.isnan(psi):
            acc["discordance"]["note"] = "not computed: no items"
    if n > 0:
        # Exact, the inverse of items_needed; the normal figure is the comparisons table's.
        acc["detectable_difference"] = num(
            mcnemar_detectable_difference(n_eff, psi, a_per, power) if psi > 0 else float("nan")
        )
        acc["detectable_difference_normal"] = num(
            minimum_detectable_difference(b, c, n, a_per, power) * math.sqrt(inflate)
        )
        if acc["detectable_difference"] is None and psi > 0:
            acc["detectable_note"] = (
                f"not even a difference equal to the discordance is detected on {n} items"
            )
    if not math.isnan(psi) and psi > 0.0:
        acc["targets"] = [
            _accuracy_target(d, psi, psi_iv, n_eff, a_per, power, inflate)
            for d in cfg["accuracy_differences"]
        ]
        observed = abs(b - c) / n if n else 0.0
        if observed > 0.0:
            acc["observed"] = _accuracy_target(observed, psi, None, n_eff, a_per, power, inflate)
    out["accuracy"] = acc
    out["kappa"] = _kappa(basis, n, a_per, power, cfg["kappa_differences"])
    return out


def _show(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _multiplicity(holm: bool, pairs: int) -> str:
    if pairs == 1:
        return "one pair of setups: planned at alpha"
    if not holm:
        return f"{pairs} pairs, report.power.holm false: planned at alpha for each pair"
    return (
        f"Holm over {pairs} pairs: planned at alpha / {pairs}, its first step; the power "
        "under Holm is at least this"
    )


def _kappa(
    basis: dict[str, Any], n: int, alpha: float, power: float, differences: list[float]
) -> dict[str, Any]:
    se = basis.get("kappa_difference_se")
    # 0 (no spread over the resamples: the two setups agree wherever it matters) is no SE
    # to plan from: a Wald test with SE 0 would "detect" a difference of 0.
    if se is None or not se > 0 or not math.isfinite(se) or n < 2:
        why = (
            "needs the bootstrap SE of the kappa difference: run `prelabel run` (or "
            "`prelabel report RUN`) on the gold set"
            if basis.get("source") != "this gold set"
            else "undefined: the bootstrap of the kappa difference had no spread"
        )
        return {"se": None, "note": why}
    sd = se * math.sqrt(n)
    return {
        "method": "Wald, bootstrap SE x sqrt(n) held per item",
        "se": num(se),
        "sd_per_item": num(sd),
        "n": n,
        "n_boot": basis.get("n_boot"),
        "detectable_difference": num(wald_detectable_difference(se, alpha, power)),
        "targets": [
            {
                "difference": num(d),
                "items_needed": _ceil(wald_sample_size(sd, d, alpha, power)),
            }
            for d in differences
        ],
    }


def _ceil(x: float) -> int | None:
    return None if math.isnan(x) else math.ceil(x)
