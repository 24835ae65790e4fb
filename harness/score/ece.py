"""The ECE intervals of one gold set's report, bootstrapped together.

Blocks ask for an ECE interval as they are built and get its metrics.json dict at once,
with the estimate and n; ``fill`` adds low and high once every setup has asked, all on
one set of resamples of the gold items (``metrics.ece_intervals.EceBatch``): at 100,000
items x 10 setups that is one draw of the resamples instead of one per interval. With
``background=True`` (three or more setups) ``start`` after each setup hands its asks to a
second core, so that most of the work is done by the time ``fill`` is called.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from harness.metrics.ece_intervals import EceBatch
from harness.score.json_numbers import interval, num

N_BINS = 10


class EceIntervals:
    def __init__(self, n_items: int, boot: dict[str, Any], background: bool = False):
        self.n_items = n_items
        self.batch = EceBatch(
            n_items, boot["n_boot"], boot["seed"], boot["level"], None, N_BINS, background
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
            out.update(interval(resolved[ticket], empty="not computed: no item has a confidence"))
        self.pending.clear()


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
