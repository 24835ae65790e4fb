"""Dawid-Skene (1979): each annotator's confusion matrix and each item's posterior over the
true label, by EM, so that a careful annotator's vote counts for more than a careless one's.

Model: item i has a latent true class z_i ~ Categorical(pi); annotator a, given z_i = c,
answers l with probability theta[a, c, l], independently of the other annotators. Missing
ratings (-1) are simply absent from the likelihood. Classes are nominal: an ordinal scale or
a pairwise verdict (A, B, tie) is fitted as K unordered classes, the tie one of them.

EM starts, as crowd-kit's `DawidSkene` does, from the items' vote shares (soft majority
vote), and stops when no item's posterior moves by more than `tol` in one iteration, or after
`max_iter` iterations (`converged` says which). The M-step is a MAP step under a Dirichlet
prior (`prior` > 0), which keeps every probability strictly inside (0, 1):

- each confusion row gets `prior` pseudo-ratings on its diagonal and `prior` more spread
  evenly over the K - 1 other labels: a row with no evidence (an annotator who never saw a
  class) is then "right half the time", not 0/0, and an annotator with m items of a class
  moves away from that at the rate m / (m + 2 prior);
- the class prior gets `prior` pseudo-items per class.

`prior=0` is plain maximum likelihood, step for step what crowd-kit's `DawidSkene` computes,
including its clip of confusion entries and class prior at 1e-10 (which makes a row with no
evidence uniform and keeps every log finite).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .accuracy import validate_codes

TOL = 1e-7
MAX_ITER = 1000
PRIOR = 1.0
_FLOOR = 1e-10  # crowd-kit's _EPS: probabilities are clipped here before normalising
# Posterior modes within this of the top one are tied (float noise of symmetric data).
_TIE = 1e-9


@dataclass(frozen=True)
class DawidSkeneFit:
    """A fitted model: `posterior` (items x K), `confusion` (annotators x true x given),
    `class_prior` (K), per annotator the ratings given (`n_rated`) and their posterior-weighted
    number of correct ones (`correct`), the iterations run and whether `tol` was reached."""

    posterior: np.ndarray
    confusion: np.ndarray
    class_prior: np.ndarray
    n_rated: np.ndarray
    correct: np.ndarray
    uncertainty: np.ndarray  # per annotator: sum over their items of p(1 - p), p = P(right)
    iterations: int
    converged: bool

    @property
    def accuracy(self) -> np.ndarray:
        """Each annotator's expected share of correct ratings on the items they rated (the
        posterior probability of their own label, averaged); nan for one who rated none."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n_rated > 0, self.correct / np.maximum(self.n_rated, 1), np.nan)


class _Layout:
    """The given ratings in the two orders EM sums them in, so that each step is one gather
    and one segmented sum (np.add.reduceat: sequential, hence deterministic) per order:
    by row for the E-step, by (annotator, label) cell for the M-step.

    Rows are the distinct rating patterns, each weighted by how many items share it: items
    with the same ratings have the same posterior, and a gold set of 100,000 items rated by
    three annotators (and a setup) has at most a few hundred patterns. Exact, not an
    approximation; only the order of the sums changes."""

    def __init__(self, ratings: np.ndarray, k: int):
        n_items, width = ratings.shape
        if width * np.log2(k + 1) < 62:  # a row as one integer in base k + 1: a fast sort
            key = (ratings + 1) @ (k + 1) ** np.arange(width, dtype=np.int64)
            _, self.first, self.inverse, weight = np.unique(
                key, return_index=True, return_inverse=True, return_counts=True
            )
        else:  # a wide crowd: its rows are nearly all distinct anyway
            self.first = self.inverse = np.arange(n_items)
            weight = np.ones(n_items)
        patterns = ratings[self.first]
        self.weight = weight.astype(float)
        self.n, self.n_ann = patterns.shape
        self.k = k
        items, annotators = np.nonzero(patterns >= 0)  # row-major
        self.items, self.annotators, self.labels = items, annotators, patterns[items, annotators]
        self.cell = annotators * k + self.labels
        self.rated, self.item_starts = np.unique(items, return_index=True)
        order = np.argsort(self.cell, kind="stable")
        self.items_by_cell = items[order]
        self.weight_by_cell = self.weight[self.items_by_cell][:, None]
        self.cells, self.cell_starts = np.unique(self.cell[order], return_index=True)


def _prior_counts(k: int, prior: float) -> np.ndarray:
    if k == 1:
        return np.full((1, 1), prior)
    eye = np.eye(k)
    return prior * (eye + (1 - eye) / (k - 1))


def _m_step(post: np.ndarray, lay: _Layout, prior: float) -> tuple[np.ndarray, np.ndarray]:
    """Class prior and confusion matrices from the posteriors (MAP under the Dirichlet)."""
    k = lay.k
    pi = lay.weight @ post + prior
    pi = pi / pi.sum() if pi.sum() > 0 else np.full(k, 1.0 / k)
    # by_cell[a * k + l, c] = sum of P(z_i = c) over annotator a's ratings l
    by_cell = np.zeros((lay.n_ann * k, k))
    if len(lay.cells):
        weighted = post[lay.items_by_cell] * lay.weight_by_cell
        by_cell[lay.cells] = np.add.reduceat(weighted, lay.cell_starts, axis=0)
    counts = by_cell.reshape(lay.n_ann, k, k).transpose(0, 2, 1)  # annotator, true, given
    # The floor changes nothing when prior > 0; at prior=0 it is crowd-kit's clip, which
    # makes a row without evidence uniform and keeps every log finite.
    counts = np.maximum(counts + _prior_counts(k, prior), _FLOOR)
    theta = counts / counts.sum(axis=2, keepdims=True)
    return pi, theta


def _e_step(pi: np.ndarray, theta: np.ndarray, lay: _Layout) -> np.ndarray:
    """Posterior of each item's class, computed in logs and normalised per item."""
    k = lay.k
    log_given = np.log(theta).transpose(0, 2, 1).reshape(lay.n_ann * k, k)  # cell x class
    log_post = np.tile(np.log(np.maximum(pi, _FLOOR)), (lay.n, 1))
    if len(lay.rated):
        log_post[lay.rated] += np.add.reduceat(log_given[lay.cell], lay.item_starts, axis=0)
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)


def dawid_skene(
    ratings: np.ndarray,
    n_classes: int,
    *,
    prior: float = PRIOR,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    init: np.ndarray | None = None,
) -> DawidSkeneFit:
    """Fit Dawid-Skene to a ratings matrix (items x annotators, codes 0..K-1, -1 missing).

    Deterministic: no random start, sums in a fixed order. An item nobody rated gets the
    class prior as its posterior. `init` (items x K) replaces the vote shares as the start,
    e.g. a previous fit's posteriors when one annotator column is added.
    """
    if prior < 0 or not np.isfinite(prior):
        raise ValueError(f"prior must be a finite number >= 0, got {prior}")
    if tol <= 0 or max_iter < 1:
        raise ValueError("tol must be > 0 and max_iter >= 1")
    ratings = validate_codes(ratings, n_classes, "ratings", ndim=2)
    k = int(n_classes)
    lay = _Layout(ratings, k)
    n = lay.n  # rating patterns, not items, from here on
    votes = np.zeros((n, k))
    np.add.at(votes, (lay.items, lay.labels), 1.0)
    per_item = votes.sum(axis=1, keepdims=True)
    post = np.where(per_item > 0, votes / np.maximum(per_item, 1.0), 1.0 / k)
    if init is not None:
        init = np.asarray(init, dtype=float)
        if init.shape != (ratings.shape[0], k) or not np.all(np.isfinite(init)):
            raise ValueError(f"init must be a finite {ratings.shape[0]} x {k} array")
        post = init[lay.first]  # a previous fit gives items of one pattern one posterior
    pi, theta = _m_step(post, lay, prior)
    converged, iterations = False, 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        new = _e_step(pi, theta, lay)
        pi, theta = _m_step(new, lay, prior)
        step = float(np.abs(new - post).max()) if n else 0.0
        post = new
        if step < tol:
            converged = True
            break
    right, w = post[lay.items, lay.labels], lay.weight[lay.items]
    n_rated = np.bincount(lay.annotators, weights=w, minlength=lay.n_ann).astype(np.int64)
    correct = np.bincount(lay.annotators, weights=w * right, minlength=lay.n_ann)
    spread = np.bincount(lay.annotators, weights=w * right * (1 - right), minlength=lay.n_ann)
    posterior = post[lay.inverse] if ratings.shape[0] else np.zeros((0, k))
    return DawidSkeneFit(posterior, theta, pi, n_rated, correct, spread, iterations, converged)


def posterior_mode(posterior: np.ndarray, tie_break: np.ndarray | None = None) -> np.ndarray:
    """The most probable class per item. Classes within 1e-9 of the top are tied: the tie
    goes to `tie_break[i]` (e.g. the majority reference) when it is among them, else to the
    lowest code (the label listed first), as majority vote breaks its ties."""
    post = np.asarray(posterior, dtype=float)
    if post.ndim != 2:
        raise ValueError("posterior must be items x classes")
    if post.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    is_top = post >= post.max(axis=1, keepdims=True) - _TIE
    mode = is_top.argmax(axis=1)
    if tie_break is not None:
        tb = np.asarray(tie_break, dtype=np.int64)
        ok = (tb >= 0) & is_top[np.arange(len(tb)), np.maximum(tb, 0)]
        mode = np.where(ok, tb, mode)
    return mode.astype(np.int64)


def clustered_variance(right: np.ndarray, clusters: np.ndarray) -> float:
    """The cluster-robust variance of an annotator's accuracy a = sum(right) / N, the
    ratio estimator over G clusters: G / (G - 1) * sum_k [(C_k - a M_k)^2 + V_k] / N^2,
    where `right[i]` is the posterior probability that their rating of item i is right,
    C_k and V_k the sums of p and p(1 - p) over cluster k's rated items and M_k their
    number. V_k stands in for the right/wrong indicators' spread around p (unobserved, and
    independent across items given the model), so that with every item its own cluster it
    is a(1 - a) / N times N / (N - 1). nan with fewer than 2 clusters: nothing measures the
    spread between clusters."""
    p = np.asarray(right, dtype=float)
    group = np.unique(np.asarray(clusters), return_inverse=True)[1].ravel()
    g, n = (int(group.max()) + 1 if group.size else 0), p.size
    if g < 2:
        return float("nan")
    a = p.sum() / n
    c_k = np.bincount(group, weights=p, minlength=g)
    m_k = np.bincount(group, minlength=g)
    v_k = np.bincount(group, weights=p * (1 - p), minlength=g)
    return float(g / (g - 1) * np.sum((c_k - a * m_k) ** 2 + v_k) / n**2)


def accuracy_interval(
    correct: float,
    n_rated: int,
    uncertainty: float,
    level: float = 0.95,
    cluster_var: float | None = None,
) -> tuple[float, float, float]:
    """(estimate, low, high) of an annotator's accuracy from a fitted model.

    Two sources of error, added as variances: which items the annotator happened to get
    (binomial, a(1 - a) / n) and which of their ratings are right given the data (the item
    posteriors are probabilities, not truths: sum p(1 - p) / n^2). Their sum sets an
    effective number of items n_eff = a(1 - a) / var, and the interval is the Jeffreys
    Beta interval at a on n_eff items. It takes the fitted confusion matrices as known: see
    docs/statistics.md section 6 for its coverage by simulation. nan for n_rated == 0.
    On clustered items `cluster_var` (``clustered_variance``) replaces the binomial part
    when larger: clustering never adds information; nan or None leaves it binomial.
    """
    if n_rated <= 0:
        return (float("nan"),) * 3
    a = min(max(correct / n_rated, 0.0), 1.0)
    binom = a * (1 - a) / n_rated
    if cluster_var is not None and cluster_var > binom:  # nan > x is False
        binom = cluster_var
    var = binom + max(uncertainty, 0.0) / n_rated**2
    # var >= binom, so n_eff <= n; at a = 0 or 1 every posterior of theirs is 0 or 1 too.
    n_eff = a * (1 - a) / var if binom > 0 else n_rated
    s = a * n_eff
    tail = (1 - level) / 2
    low = 0.0 if s <= 0 else float(stats.beta.ppf(tail, s + 0.5, n_eff - s + 0.5))
    high = 1.0 if s >= n_eff else float(stats.beta.ppf(1 - tail, s + 0.5, n_eff - s + 0.5))
    return a, low, high
