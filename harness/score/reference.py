"""Score, the Dawid-Skene side of the reference: the humans' model (each annotator's estimated
accuracy, the posterior-mode reference and how it differs from the task's own rule), and each
setup fitted as one more annotator in the same model (statistics.md section 6).

Classes are nominal in the model: an ordinal scale's levels and a pairwise verdict's A, B and
tie are K unordered classes. Multi-label and rubric tasks are scored part by part, so each
part (a yes/no label, a rubric axis) gets its own model; a ranking has no class to be right
or wrong about, and gets none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from harness import metrics as m
from harness.metrics import dawid_skene as ds
from harness.score.json_numbers import num
from harness.tasks import task_type

if TYPE_CHECKING:
    from harness.score.predictions import CodedGoldSet

REFERENCES = ("majority", "dawid_skene")
N_EXAMPLES = 5
NOMINAL = (
    "classes are nominal: an ordinal scale's levels, or a pairwise verdict's A, B and tie, "
    "are fitted as unordered classes"
)
NO_RATINGS = "not computed: rated no item"
ALONE = (
    "not estimable: shares no item with another rater, so the model has nothing to check "
    "their labels against (their own labels would be the truth)"
)


def fit_humans(ratings: np.ndarray, n_classes: int) -> ds.DawidSkeneFit:
    return ds.dawid_skene(ratings, n_classes)


def reference_codes(coded: CodedGoldSet) -> np.ndarray:
    """The Dawid-Skene reference: each item's posterior mode; a tie goes to the task rule's
    reference label when it is among the tied, and an item nobody rated stays -1."""
    mode = ds.posterior_mode(coded.dawid_skene.posterior, coded.rule_reference)
    return np.where(coded.rule_reference >= 0, mode, -1).astype(np.int64)


def _shared(ratings: np.ndarray) -> np.ndarray:
    """Per rater: how many of their items someone else also rated."""
    given = ratings >= 0
    others = given.sum(axis=1, keepdims=True) - given
    return (given & (others > 0)).sum(axis=0)


def _cluster_var(
    fit: ds.DawidSkeneFit, ratings: np.ndarray, j: int, clusters: np.ndarray | None
) -> float | None:
    """Rater j's cluster-robust accuracy variance (None without clusters), from the posterior
    probability that each of their ratings is right."""
    if clusters is None:
        return None
    rated = np.flatnonzero(ratings[:, j] >= 0)
    right = fit.posterior[rated, ratings[rated, j]]
    return ds.clustered_variance(right, np.asarray(clusters)[rated])


def _accuracy(
    fit: ds.DawidSkeneFit, j: int, shared: int, level: float, cluster_var: float | None = None
) -> dict[str, Any]:
    n = int(fit.n_rated[j])
    out: dict[str, Any] = {"estimate": None, "low": None, "high": None, "n": n, "level": level}
    if n == 0:
        out["note"] = NO_RATINGS
    elif shared == 0:
        out["note"] = ALONE
    else:
        est, low, high = ds.accuracy_interval(
            float(fit.correct[j]), n, float(fit.uncertainty[j]), level, cluster_var
        )
        out.update(estimate=num(est), low=num(low), high=num(high))
        out["n_shared"] = shared
    return out


def _model(fit: ds.DawidSkeneFit) -> dict[str, Any]:
    return {
        "prior": ds.PRIOR,
        "tol": ds.TOL,
        "max_iter": ds.MAX_ITER,
        "iterations": fit.iterations,
        "converged": fit.converged,
    }


def humans_block(coded: CodedGoldSet, level: float) -> dict[str, Any]:
    """Both references, which one is scored against, where they differ; each annotator's
    estimated accuracy with its interval."""
    fit = coded.dawid_skene
    labels = coded.labels
    rule, dawid = coded.rule_reference, reference_codes(coded)
    changed = np.flatnonzero(rule != dawid)
    shared = _shared(coded.ratings)
    clusters = coded.clusters
    counts = {
        name: dict(zip(labels, map(int, m.label_distribution(codes, len(labels))), strict=True))
        for name, codes in (("majority", rule), ("dawid_skene", dawid))
    }
    return {
        "reference_used": coded.reference_used,
        "majority_rule": task_type(coded.task_type).reference_method,
        "n_items": len(coded.item_ids),
        "n_changed": len(changed),
        "changed_examples": [
            {
                "item": coded.item_ids[i],
                "majority": labels[rule[i]] if rule[i] >= 0 else None,
                "dawid_skene": labels[dawid[i]] if dawid[i] >= 0 else None,
            }
            for i in changed[:N_EXAMPLES]
        ],
        "reference_distribution": counts,
        "classes": NOMINAL,
        "accuracy_method": (
            "posterior-weighted share of the annotator's ratings that are right; Jeffreys "
            "Beta interval on an effective n that adds the posteriors' uncertainty to the "
            "binomial one (on clustered items the cluster-robust one when larger), the "
            "fitted confusion matrices taken as known"
        ),
        "model": _model(fit),
        "annotators": [
            {
                "annotator": name,
                "accuracy": _accuracy(
                    fit, j, int(shared[j]), level, _cluster_var(fit, coded.ratings, j, clusters)
                ),
            }
            for j, name in enumerate(coded.gold.annotators)
        ],
    }


def llm_block(coded: CodedGoldSet, pred: np.ndarray, level: float) -> dict[str, Any]:
    """The setup as one more annotator (its failed answers missing): its estimated accuracy
    next to the humans' in the same fit. EM starts from the humans' posteriors, which is
    where the vote-share start led them, so it runs a few iterations, not a few hundred."""
    ratings = np.column_stack([coded.ratings, np.asarray(pred, dtype=np.int64)])
    fit = ds.dawid_skene(ratings, len(coded.labels), init=coded.dawid_skene.posterior)
    j = ratings.shape[1] - 1
    cluster_var = _cluster_var(fit, ratings, j, coded.clusters)
    out = _accuracy(fit, j, int(_shared(ratings)[j]), level, cluster_var)
    if out["n"] == 0:
        out["note"] = "not computed: no item was answered"
    return {"accuracy": out, "model": _model(fit)}
