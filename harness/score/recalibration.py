"""Recalibration before and after, cross-fitted (statistics.md section 5).

Each method is fitted twice over: on the other folds for every item (5-fold cross-fit),
which gives the out-of-fold "after" metrics, and on all items, which gives the parameters
to deploy. Reporting the all-items fit on the items it was fitted on would flatter it,
isotonic most of all.

Which confidences to use downstream:

- on the gold set itself (e.g. to fit an auto-accept threshold on it): the out-of-fold
  values, ``metrics.cross_fit.cross_fit(method, conf, correct, folds=block["folds"],
  seed=boot["seed"], clusters=...)``, the same values as the block's "after", so the
  threshold is not fitted on the recalibrator's own training data;
- on new items: :func:`recalibrated_confidence` with the block (or a method's "params"),
  i.e. the recalibrator fitted on all gold items.

The "after" ECE interval resamples items with the recalibrated values held fixed (the
refit on each resample is left out), so it understates the uncertainty of a fitted map.
Before and after use the same bootstrap seed, hence the same resamples. The pooled
out-of-fold AUROC mixes the folds' maps: when they are nearly constant (weak signal, few
items) it mostly reflects fold composition (an item's training folds lack its own label,
which pulls its value against it) and can fall far below 0.5; read it beside "before".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics.calibration import auroc, brier_top_label, ece, log_loss_top_label
from harness.metrics.cross_fit import cluster_folds, cross_fit
from harness.metrics.recalibration import METHODS, Recalibrator, fit_recalibrator
from harness.score.ece import EceIntervals, ece_intervals
from harness.score.json_numbers import num

MIN_ITEMS = 20
FOLDS = 5
ISOTONIC_MIN_ITEMS = 1000
SELECTABLE = ("none", *METHODS)


def _metrics(conf: np.ndarray, correct: np.ndarray, iv: dict[str, Any]) -> dict[str, Any]:
    return {
        "ece": iv,
        "ece_equal_mass": num(ece(conf, correct, n_bins=10, strategy="quantile")),
        "brier": num(brier_top_label(conf, correct)),
        "log_loss": num(log_loss_top_label(conf, correct)),
        "auroc": num(auroc(conf, correct)),
        "mean_confidence": num(conf.mean()),
    }


def _check_consistent(
    conf: np.ndarray,
    correct: np.ndarray,
    probs: np.ndarray,
    pred_idx: np.ndarray | None,
    ref_idx: np.ndarray | None,
) -> None:
    """With pred_idx, conf must be the predicted label's probability and correct must be
    pred == ref: otherwise the multi-class fit would describe other labels than scored."""
    if pred_idx is None:
        return
    pred = np.asarray(pred_idx, dtype=np.int64)
    if pred.shape != conf.shape or pred.min() < 0 or pred.max() >= probs.shape[1]:
        raise ValueError("pred_idx must hold one column index of probs per item")
    if not np.allclose(probs[np.arange(conf.size), pred], conf, rtol=0, atol=1e-4):
        raise ValueError("conf must equal probs[i, pred_idx[i]]")
    if ref_idx is not None and np.any((pred == np.asarray(ref_idx)) != correct.astype(bool)):
        raise ValueError("correct must equal pred_idx == ref_idx")


def recalibration_block(
    conf: np.ndarray,
    correct: np.ndarray,
    selected: str,
    boot: dict[str, Any],
    probs: np.ndarray | None = None,
    pred_idx: np.ndarray | None = None,
    ref_idx: np.ndarray | None = None,
    shared: EceIntervals | None = None,
    within: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """Before/after metrics of the three methods; None below 20 items or with one class.

    ``conf`` and ``correct`` are the answered items with a confidence (nan confidences are
    dropped here too). ``probs`` (n x K label distributions, with ``ref_idx`` and
    optionally ``pred_idx`` for a consistency check) makes temperature scaling
    multi-class. ``boot`` = {"n_boot", "seed", "level"}; its seed also seeds the folds.
    ``selected`` is the configured method ("none" = keep the raw confidence).
    ``shared``: the gold set's ECE intervals, ``within`` marking the gold items ``conf``
    holds (None: its own intervals, over these items). ``clusters``: one id per item of
    ``conf``; the folds then hold whole clusters (``metrics.cross_fit``).
    """
    if selected not in SELECTABLE:
        raise ValueError(f"selected must be one of {SELECTABLE}, got {selected!r}")
    c = np.asarray(conf, dtype=float)
    keep = ~np.isnan(c)
    items = np.ones(c.size, bool) if within is None else np.asarray(within, bool).copy()
    items[np.flatnonzero(items)[~keep]] = False  # the dropped nan confidences
    c, hit = c[keep], np.asarray(correct)[keep].astype(float)
    p = None if probs is None else np.asarray(probs, dtype=float)[keep]
    ref = None if ref_idx is None else np.asarray(ref_idx)[keep]
    groups = None if clusters is None else np.asarray(clusters)[keep]
    if p is not None:
        _check_consistent(c, hit, p, None if pred_idx is None else np.asarray(pred_idx)[keep], ref)
    n = int(c.size)
    if n < MIN_ITEMS or hit.min() == hit.max():
        return None
    seed = int(boot.get("seed", 0))
    folds, codes = cluster_folds(n, FOLDS, groups)
    methods = []
    losses = {}
    oofs = []
    for method in METHODS:
        whole = fit_recalibrator(method, c, hit, p, ref)
        oof, per_fold = cross_fit(
            method,
            c,
            hit,
            folds,
            seed,
            p,
            ref,
            return_recalibrators=True,
            start=whole,
            clusters=codes,
        )
        losses[method] = log_loss_top_label(oof, hit)
        notes = [whole.note] if whole.note else []
        odd = sorted({r.note for r in per_fold if r.note})
        notes += [f"in some training folds: {x}" for x in odd if x != whole.note]
        methods.append(
            {"method": method, "params": whole.to_json(), "note": "; ".join(notes) or None}
        )
        oofs.append(oof)
    # Every ECE interval of these items on one set of resamples (the gold set's, when
    # shared): before, and every method's after.
    with ece_intervals(shared, items.size, boot) as eci:
        before = eci.interval(c, hit, "uniform", within=items)
        for block, oof in zip(methods, oofs, strict=True):
            block["after"] = _metrics(oof, hit, eci.interval(oof, hit, "uniform", within=items))
    out = {
        "n": n,
        "folds": folds,
        "selected": selected,
        "before": _metrics(c, hit, before),
        "methods": methods,
        # Lowest out-of-fold log loss (a proper scoring rule); ties go to the simpler method.
        "best": min(METHODS, key=lambda k: losses[k]),
        "warning": "isotonic overfits below about 1,000 items" if n < ISOTONIC_MIN_ITEMS else None,
    }
    if groups is not None:  # only with cluster_by, so unclustered metrics.json is unchanged
        one = np.unique(groups).size < 2  # a single cluster cannot be held out
        out["folds_by"] = "items (one cluster: it cannot be held out)" if one else "clusters"
    return out


def recalibrated_confidence(
    block_or_params: dict[str, Any] | None, conf: np.ndarray, probs: np.ndarray | None = None
) -> np.ndarray:
    """Apply the deployed recalibrator (fitted on all gold items) to new confidences.

    Takes a block (uses its "selected" method; "none" or a None block return ``conf``
    unchanged) or one method's "params" (``Recalibrator.to_json``). Not for the gold items
    the map was fitted on: use ``cross_fit`` there (see module doc).
    """
    c = np.asarray(conf, dtype=float)
    if block_or_params is None:
        return c.copy()
    params = block_or_params
    if "methods" in block_or_params:
        if block_or_params["selected"] == "none":
            return c.copy()
        by_name = {e["method"]: e["params"] for e in block_or_params["methods"]}
        params = by_name[block_or_params["selected"]]
    return Recalibrator.from_json(params).apply(c, probs)
