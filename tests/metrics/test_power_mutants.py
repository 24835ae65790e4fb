"""The exact McNemar power at the edges of its rates (harness.metrics.power.
mcnemar_exact_power; statistics.md). Mutation testing (bench/mutation.py) found both edges
untested: |difference| = discordance (every discordant item favours one setup) refused as
invalid, and discordance 0 or 1 sent down the wrong branch (power 0 with every item
discordant, a math domain error with none)."""

from __future__ import annotations

import pytest

from harness.metrics.power import mcnemar_exact_power


@pytest.mark.parametrize("difference", [0.3, -0.3])
def test_a_difference_as_large_as_the_discordance_is_valid(difference) -> None:
    # 30 discordant items expected, all for one side: the exact test rejects (k_m >= 0
    # from m = 6 at alpha 0.05), so the power is P(m >= 6), near 1.
    assert mcnemar_exact_power(100, 0.3, difference) > 0.999
    with pytest.raises(ValueError, match="cannot exceed"):
        mcnemar_exact_power(100, 0.3, difference * 1.01)


def test_no_discordance_has_no_power_and_full_discordance_has_all() -> None:
    assert mcnemar_exact_power(50, 0.0, 0.0) == 0.0
    # Every item discordant and for A: m = 20 items all one way, p = 2 / 2**20.
    assert mcnemar_exact_power(20, 1.0, 1.0) == 1.0
