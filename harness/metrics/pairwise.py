"""Pairwise preference: position bias, order combination, ties, agreement, length bias.

Outcomes are integer codes about the pair *as stored*: 0 = A (the first response as
stored) wins, 1 = B wins, 2 = tie, -1 = missing (not asked, or a failed output). A judge
asked on the swapped presentation (B shown first) answers in presentation terms: its raw
0 means "the response shown first", i.e. B; :func:`unswap` maps such verdicts back.
Sources: statistics.md section 10; Zheng et al. (NeurIPS 2023), "Judging LLM-as-a-Judge
with MT-Bench and Chatbot Arena", arXiv 2306.05685 (position bias, the two-order rule,
agreement with and without ties). Every rate is a share in [0, 1] returned with the
number n it is computed over; nan with n = 0.
"""

from __future__ import annotations

import numpy as np

from .accuracy import validate_codes
from .intervals import Interval, bootstrap_table_stat

A, B, TIE, MISSING = 0, 1, 2, -1
PAIRWISE_METRICS = ("agreement_with_ties", "agreement_without_ties")
_N_OUTCOMES = 3


def _outcomes(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as int64 codes, checked to lie in -1..2 (any shape)."""
    return validate_codes(values, _N_OUTCOMES, name)


def _two(x: np.ndarray, y: np.ndarray, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a = validate_codes(x, _N_OUTCOMES, names[0], ndim=1)
    b = validate_codes(y, _N_OUTCOMES, names[1], ndim=1)
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {a.shape} vs {b.shape}")
    return a, b


def _rate(hits: np.ndarray, eligible: np.ndarray) -> tuple[float, int]:
    n = int(eligible.sum())
    return (float(hits[eligible].sum() / n) if n else float("nan")), n


def unswap(outcome: np.ndarray) -> np.ndarray:
    """Map verdicts given on the swapped presentation back to stored A/B terms.

    0 <-> 1 (the first shown was B), 2 (tie) and -1 (missing) unchanged. Any shape;
    returns int64. ``unswap(unswap(x)) == x``.
    """
    x = _outcomes(outcome, "outcome")
    return np.array([B, A, TIE, MISSING], dtype=np.int64)[x]  # index -1 -> last entry


def combine_orders(
    original: np.ndarray, swapped_mapped_back: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Final verdict per pair from the two presentation orders, and a consistency mask.

    MT-Bench rule (Zheng et al. 2023, "swapping positions": declare a win only when
    it is preferred in both orders, otherwise a tie; FastChat's llm_judge scores an
    "inconsistent" pair as a tie): both present and equal -> that verdict; both
    present and different -> tie (2), also for (A, tie) or (tie, B); one missing ->
    the other; both missing -> -1. Both inputs are in stored terms (apply
    :func:`unswap` to the swapped run first). Returns ``(final, consistent)``: int64
    codes and a bool mask, True where both are present and equal (False wherever
    either is missing).
    """
    first, second = _two(original, swapped_mapped_back, ("original", "swapped_mapped_back"))
    both = (first >= 0) & (second >= 0)
    consistent = both & (first == second)
    final = np.where(first >= 0, first, second)
    final = np.where(both & ~consistent, TIE, final)
    return final.astype(np.int64), consistent


def position_consistency(
    original: np.ndarray, swapped_mapped_back: np.ndarray
) -> tuple[float, int]:
    """Share of pairs, among those answered in both orders, with the same verdict.

    Ties count: (tie, tie) is consistent, (A, tie) is not. Inputs in stored terms.
    Zheng et al. 2023 report GPT-4 consistent on 65% of swapped MT-Bench pairs.
    Returns ``(share, n)`` with n = pairs answered in both orders.
    """
    first, second = _two(original, swapped_mapped_back, ("original", "swapped_mapped_back"))
    return _rate(first == second, (first >= 0) & (second >= 0))


def first_position_rate(original: np.ndarray, swapped_raw: np.ndarray) -> tuple[float, int]:
    """Share of non-tie verdicts that picked the response shown first; 0.5 = no bias.

    Verdicts are taken as shown: ``original`` (A shown first) and ``swapped_raw``, the
    swapped run *before* :func:`unswap` (B shown first), so in both a 0 picks the first
    shown. The two runs' non-tie, non-missing verdicts are pooled, so with both orders
    asked the true quality of A and B cancels out. Returns ``(share, n)`` with n =
    pooled verdicts (up to 2 per pair), not pairs.
    """
    first, second = _two(original, swapped_raw, ("original", "swapped_raw"))
    shown = np.concatenate([first, second])
    return _rate(shown == A, (shown == A) | (shown == B))


def tie_rate(outcomes: np.ndarray) -> tuple[float, int]:
    """Share of ties among answered outcomes (any shape); ``(share, n answered)``."""
    x = _outcomes(outcomes, "outcomes")
    return _rate(x == TIE, x >= 0)


def agreement(ref: np.ndarray, pred: np.ndarray, with_ties: bool) -> tuple[float, int]:
    """Share of pairs on which ``pred`` gives the same outcome as ``ref``.

    ``with_ties=True``: over pairs where both answered (a tie must match a tie).
    ``with_ties=False``: over pairs where both chose A or B (a tie on either side drops
    the pair). Zheng et al. 2023 report both views (GPT-4 vs human 66% with ties on
    MT-Bench, human vs human 63%). Missing/failed outcomes are excluded, not counted as
    wrong: report coverage (``n`` against the number of pairs) beside the share.
    Returns ``(share, n)``.
    """
    r, p = _two(ref, pred, ("ref", "pred"))
    eligible = (r >= 0) & (p >= 0) if with_ties else np.isin(r, (A, B)) & np.isin(p, (A, B))
    return _rate(r == p, eligible)


def length_bias(
    len_a: np.ndarray, len_b: np.ndarray, outcomes: np.ndarray, min_diff: float = 30
) -> tuple[float, int]:
    """Share of decided pairs in which the preferred response is the longer one.

    Over pairs whose lengths (characters) differ by more than ``min_diff`` (strictly)
    and whose outcome is A or B (statistics.md section 10: > 30 characters). 0.5 = no
    preference for length; compare humans and the LLM side by side. Returns
    ``(share, n)``; nan with n = 0 when no pair qualifies.
    """
    la, lb = np.asarray(len_a, dtype=float), np.asarray(len_b, dtype=float)
    x = _outcomes(outcomes, "outcomes")
    if la.ndim != 1 or la.shape != lb.shape or la.shape != x.shape:
        raise ValueError(f"need 1-D arrays of equal length, got {la.shape}, {lb.shape}, {x.shape}")
    if la.size and (not np.all(np.isfinite(la + lb)) or min(la.min(), lb.min()) < 0):
        raise ValueError("lengths must be finite and >= 0")
    if min_diff < 0:
        raise ValueError(f"min_diff must be >= 0, got {min_diff}")
    eligible = (np.abs(la - lb) > min_diff) & np.isin(x, (A, B))
    longer_won = ((x == A) & (la > lb)) | ((x == B) & (lb > la))
    return _rate(longer_won, eligible)


def pairwise_ci(
    ref: np.ndarray,
    pred: np.ndarray,
    metric: str = "agreement_with_ties",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap interval of :func:`agreement` over pairs.

    ``metric`` "agreement_with_ties" | "agreement_without_ties". The pairs that
    :func:`agreement` counts are kept (so ``Interval.n`` is its n) and their
    (ref, pred) cells of a 3 x 3 table are resampled with
    ``intervals.bootstrap_table_stat`` (whole clusters with ``clusters``). Passing
    (original, unswap(swapped)) with "agreement_with_ties" gives the interval of
    :func:`position_consistency`.
    """
    if metric not in PAIRWISE_METRICS:
        raise ValueError(f"metric must be one of {PAIRWISE_METRICS}, got {metric!r}")
    r, p = _two(ref, pred, ("ref", "pred"))
    if metric == "agreement_with_ties":
        keep = (r >= 0) & (p >= 0)
    else:
        keep = np.isin(r, (A, B)) & np.isin(p, (A, B))
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != r.shape:
            raise ValueError(f"clusters must have one entry per pair, got {clusters.shape}")
        clusters = clusters[keep]
    cells = r[keep] * _N_OUTCOMES + p[keep]
    diagonal = [c * _N_OUTCOMES + c for c in range(_N_OUTCOMES)]

    def share_equal(tables: np.ndarray) -> np.ndarray:
        total = tables.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, tables[:, diagonal].sum(axis=1) / total, np.nan)

    return bootstrap_table_stat(
        cells, _N_OUTCOMES**2, share_equal, n_boot, seed, level, clusters=clusters
    )
