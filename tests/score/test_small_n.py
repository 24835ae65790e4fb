"""The small-n notes of a setup block and the debiased ECE block (statistics.md section 4)."""

from __future__ import annotations

import numpy as np

from harness.metrics.intervals import BCA_BELOW
from harness.report import leaderboard_notes as notes
from harness.score.ece import EceIntervals
from harness.score.small_n import ECE_PLUGIN_BELOW, ppi_note, small_n_notes

BOOT = {"n_boot": 300, "seed": 0, "level": 0.95}


def _block(n: int, accuracy: float, calibrated_n: int = 0) -> dict:
    iv = {"estimate": accuracy, "low": 0.0, "high": 1.0, "n": n, "level": 0.95}
    cal = {"n": calibrated_n, "ece": dict(iv, n=calibrated_n)} if calibrated_n else None
    return {
        "setup": "s",
        "accuracy": iv,
        "kappa": dict(iv),
        "macro_f1": dict(iv),
        "calibration": cal,
    }


def test_a_small_gold_set_marks_each_table_figure_as_bca():
    found = small_n_notes(_block(20, 0.7))
    assert [(n["figure"], n["n"], n["interval"]) for n in found] == [
        ("accuracy", 20, "bca"),
        ("kappa", 20, "bca"),
        ("macro_f1", 20, "bca"),
    ]
    assert all(n["keeps_level_from_n"] == BCA_BELOW for n in found)


def test_a_large_gold_set_with_enough_errors_has_no_note():
    assert small_n_notes(_block(130, 0.8)) == []


def test_few_errors_are_noted_at_any_n():
    found = small_n_notes(_block(400, 0.995))  # 2 wrong
    assert {n["figure"] for n in found} == {"accuracy", "kappa", "macro_f1"}
    assert all(n["interval"] == "percentile" and "2 of 400" in n["message"] for n in found)


def test_a_plug_in_ece_below_its_threshold_is_noted_beside_the_figure():
    block = _block(200, 0.8, calibrated_n=200)
    found = small_n_notes(block)
    assert [n["figure"] for n in found] == ["ece"]
    assert small_n_notes(_block(200, 0.8, calibrated_n=ECE_PLUGIN_BELOW)) == []
    block["small_n"] = found
    assert notes.small_n_mark(block, "ece") == " ‡" and notes.small_n_mark(block, "kappa") == ""
    [line] = notes.small_n_notes([block])
    assert line.startswith("‡ `s`: ece: plug-in ECE on 200 items")


def test_ppi_note_below_its_threshold_only():
    assert ppi_note(20)["figure"] == "ppi" and ppi_note(50) is None


def test_debiased_ece_block_is_on_the_l2_scale_and_its_low_can_be_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 60)
    hit = (rng.uniform(size=60) < conf).astype(float)  # calibrated
    eci = EceIntervals(60, BOOT)
    out = eci.interval(conf, hit, "debiased")
    eci.fill()
    squared = out["squared"]
    assert squared["low"] < 0 < squared["high"]
    assert out["low"] == 0.0 and out["high"] == round(np.sqrt(squared["high"]), 6)
    assert out["estimate"] == round(np.sqrt(max(squared["estimate"], 0.0)), 6)
    assert out["n"] == 60 and "Kumar" in out["method"]
