"""ECE with a bootstrap interval (statistics.md sections 4-5): one ECE or several of the
same items on one set of resamples, the resamples being those of
``intervals.bootstrap_items`` (same seed, same draws)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from .calibration import ece, ece_resampled_many
from .intervals import Interval, _check_common, _cluster_ids, _percentile, _replicates


def ece_ci(
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int = 10,
    strategy: str = "uniform",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """ECE (``calibration.ece``) with a percentile bootstrap interval over items.

    The resamples are the ones ``bootstrap_items`` draws, evaluated all at once
    (``calibration.ece_resampled``: the same values as ``ece`` on each resample). A report
    asks for the same interval several times (calibration, confidence sources,
    recalibration "before"): the last few results are kept, keyed by the inputs' bytes.
    """
    asks = [(confidence, correct, strategy)]
    return ece_ci_many(asks, n_bins, n_boot, seed, level, clusters)[0]


def ece_ci_many(
    asks: list[tuple[np.ndarray, np.ndarray, str]],
    n_bins: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> list[Interval]:
    """``ece_ci`` of several (confidence, correct, strategy) of the same items, in order.

    Same intervals as separate ``ece_ci`` calls (same seed, so the same resamples; up to
    the order of summation), but the resamples are drawn once for all, and every
    equal-width ECE is one matrix product on them: at 100,000 items drawing 1,000
    resamples costs more than evaluating one ECE on them.
    """
    keyed = []
    for confidence, correct, strategy in asks:
        conf, hit = np.asarray(confidence, dtype=float), np.asarray(correct)
        ece(conf, hit, n_bins, strategy)  # validate once before resampling
        digest = hashlib.blake2b(conf.tobytes(), digest_size=16)
        digest.update(hit.astype(float).tobytes())
        if clusters is not None:
            digest.update(repr(np.asarray(clusters).tolist()).encode())
        key = (digest.hexdigest(), conf.size, n_bins, strategy, n_boot, seed, level)
        keyed.append((key, conf, hit, strategy))
    sizes = {conf.size for _, conf, _, _ in keyed}
    if len(sizes) > 1:
        raise ValueError(f"every pair must hold the same items, got sizes {sorted(sizes)}")
    todo = {key: (conf, hit, strategy) for key, conf, hit, strategy in keyed}
    todo = {key: ask for key, ask in todo.items() if key not in _ECE_MEMO}
    if todo:
        n = sizes.pop()
        _check_common(n_boot, level)

        asked = list(todo.values())

        def evaluate(index: np.ndarray) -> np.ndarray:
            return ece_resampled_many(asked, index, n_bins)

        if n == 0:
            _cluster_ids(clusters, n)
            for key in todo:
                _ECE_MEMO[key] = Interval(float("nan"), float("nan"), float("nan"), 0, 0, level)
        else:
            estimate, replicates = _replicates(evaluate, n, n_boot, seed, clusters)
            for j, key in enumerate(todo):
                _ECE_MEMO[key] = _percentile(float(estimate[j]), replicates[:, j], n, level)
    out = []
    for key, *_ in keyed:
        _ECE_MEMO.move_to_end(key)
        out.append(_ECE_MEMO[key])
    while len(_ECE_MEMO) > _ECE_MEMO_SIZE:
        _ECE_MEMO.popitem(last=False)
    return out


_ECE_MEMO: OrderedDict[tuple, Interval] = OrderedDict()
_ECE_MEMO_SIZE = 16
