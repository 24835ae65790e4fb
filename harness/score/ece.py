"""The ECE intervals of one gold set's report, bootstrapped together.

Blocks ask for an ECE interval as they are built and get its metrics.json dict at once,
with the estimate and n; ``fill`` adds low and high once every setup has asked, all on
one set of resamples of the gold items (``metrics.ece_intervals.EceBatch``): at 100,000
items x 10 setups that is one draw of the resamples instead of one per interval. With
``background=True`` (three or more setups) ``start`` after each setup hands its asks to a
second core, so that most of the work is done by the time ``fill`` is called.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from harness.metrics.ece_intervals import EceBatch
from harness.metrics.ece_resampling import DEBIASED
from harness.score.json_numbers import interval, num

N_BINS = 10


class EceIntervals:
    def __init__(
        self,
        n_items: int,
        boot: dict[str, Any],
        background: bool = False,
        clusters: np.ndarray | None = None,
    ):
        """``clusters``: one per gold item; resamples then draw whole clusters."""
        self.n_items = n_items
        self.batch = EceBatch(
            n_items, boot["n_boot"], boot["seed"], boot["level"], clusters, N_BINS, background
        )
        self.pending: list[tuple[int, dict[str, Any]]] = []

    def interval(
        self,
        confidence: np.ndarray,
        correct: np.ndarray,
        strategy: str = "uniform",
        within: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The interval dict of ``confidence``/``correct`` (one value per item of the mask
        ``within`` over the gold items; None = all); low and high are null until ``fill``."""
        ticket = self.batch.ask(confidence, correct, strategy, within)
        out = {
            "estimate": num(self.batch.estimates[ticket]),
            "low": None,
            "high": None,
            "n": int(np.asarray(confidence).size),
            "level": self.batch.level,
        }
        if strategy == DEBIASED:
            out = _debiased(out)
        self.pending.append((ticket, out))
        return out

    def start(self) -> None:
        """Evaluate the intervals asked so far in the background (see ``EceBatch.start``)."""
        self.batch.start()

    def close(self) -> None:
        """Give up: stop background work (``fill`` closes by itself)."""
        self.batch.close()

    def fill(self) -> None:
        resolved = self.batch.resolve()
        for ticket, out in self.pending:
            filled = interval(resolved[ticket], empty="not computed: no item has a confidence")
            if "squared" in out:
                out["squared"].update(filled)
                out.update(_debiased(out["squared"]))
            else:
                out.update(filled)
        self.pending.clear()


def _debiased(squared: dict[str, Any]) -> dict[str, Any]:
    """The debiased L2 calibration error block from the signed squared one (Kumar et al.
    2019): estimate and bounds through sqrt(max(x, 0)), which keeps a percentile interval's
    promise (the map is monotone), so its low is 0 whenever the squared interval holds 0.
    The signed values stay under ``squared``: a negative estimate says the gaps are smaller
    than chance alone would make them."""
    out = {k: (_root(v) if k in ("estimate", "low", "high") else v) for k, v in squared.items()}
    out["squared"] = squared
    out["method"] = DEBIASED_METHOD
    return out


def _root(x: float | None) -> float | None:
    return None if x is None else num(math.sqrt(max(x, 0.0)))


DEBIASED_METHOD = (
    "debiased L2 calibration error, 10 equal-width bins (Kumar, Liang & Ma 2019): each bin's "
    "squared gap minus its sampling variance acc (1 - acc) / (n_bin - 1); percentile bootstrap"
)


@contextmanager
def ece_intervals(
    shared: EceIntervals | None, n_items: int, boot: dict[str, Any]
) -> Iterator[EceIntervals]:
    """``shared`` (filled by its owner, later), or one of the block's own, filled on exit."""
    if shared is not None:
        yield shared
        return
    own = EceIntervals(n_items, boot)
    yield own
    own.fill()
