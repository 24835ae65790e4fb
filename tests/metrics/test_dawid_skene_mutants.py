"""Dawid-Skene reports `converged` only when EM met its tolerance (harness.metrics.
dawid_skene; statistics.md). Mutation testing (bench/mutation.py) found that starting from
`converged = True` went unnoticed: every test either converges or ignores the flag."""

from __future__ import annotations

import numpy as np

from harness.metrics.dawid_skene import dawid_skene

RATINGS = np.array([[0, 0, 1], [1, 1, 0], [2, 1, 2], [0, 2, 0], [1, 1, 1], [2, 0, 2]])


def test_stopping_at_max_iter_is_not_convergence() -> None:
    fit = dawid_skene(RATINGS, 3, tol=1e-300, max_iter=3)
    assert fit.iterations == 3 and not fit.converged
    fit = dawid_skene(RATINGS, 3, tol=1e-6, max_iter=10_000)
    assert fit.converged and fit.iterations < 10_000
