"""The leaderboards (report.md, report.html, the console) say what two easily misread figures
mean: a kappa / ceiling ratio above 1, and which ECE is raw and which is after the
recalibration that the `max_ece` constraint uses."""

from __future__ import annotations

import re

import pytest

from harness.cli.leaderboard import print_leaderboard
from harness.core.records import Setup
from harness.report.html import render_html
from harness.report.leaderboard_notes import ABOVE_CEILING_NOTE
from harness.report.markdown import render_markdown
from harness.score.metrics_json import score_run

from .test_html_report import LABELS, _gold, _manifest, _records

SETUPS = [Setup("sharp@fake", "sharp", "fake"), Setup("dull@fake", "dull", "fake")]


def scored(recalibration: str):
    """60 items, three annotators each right 80% of the time; `sharp` gets 97% of the
    reference right (above a typical annotator), `dull` 60% (below)."""
    gold = _gold()
    records = _records(gold, SETUPS[0].id, 0.97, 1) + _records(gold, SETUPS[1].id, 0.6, 2)
    metrics = score_run([gold], SETUPS, records, LABELS, n_boot=200, recalibration=recalibration)
    metrics.update(run_id="20260101-000000-notes", experiment="notes")
    return _manifest(metrics), metrics


@pytest.fixture(scope="module")
def recalibrated():
    return scored("temperature")


def leaderboard_md(md: str) -> str:
    return md[md.index("### Leaderboard") : md.index("### Human agreement")]


def leaderboard_html(html: str) -> str:
    """The leaderboard table and its notes, up to the plots that follow it."""
    start = html.index('<table class="leaderboard"')
    return html[start : html.index('<div class="plots">', start)]


def console(metrics, capsys) -> str:
    print_leaderboard(metrics)
    return re.sub(r"\s+", " ", capsys.readouterr().out)


def test_a_kappa_above_the_human_ceiling_is_said_so_beside_the_figure(recalibrated, capsys):
    manifest, metrics = recalibrated
    ratio = {
        b["setup"]: b["human_ceiling"]["ratio_kappa"] for b in metrics["gold_sets"][0]["setups"]
    }
    assert ratio["sharp@fake"] > 1 > ratio["dull@fake"]
    md = leaderboard_md(render_markdown(manifest, metrics))
    [sharp] = [x for x in md.splitlines() if re.match(r"\| \d \| `sharp@fake`", x)]
    [dull] = [x for x in md.splitlines() if re.match(r"\| \d \| `dull@fake`", x)]
    assert f"| {ratio['sharp@fake']:.2f} (above the human ceiling†) |" in sharp
    assert "above the human ceiling" not in dull
    assert ABOVE_CEILING_NOTE in md and "the reference is the humans' majority" in md

    board = leaderboard_html(render_html(manifest, metrics))
    rows = re.findall(r'<tr class="setup-row.*?</tr>', board, re.S)
    assert "above the human ceiling†" in rows[0] and "sharp@fake" in rows[0]
    assert "above the human ceiling" not in rows[1]
    assert ABOVE_CEILING_NOTE.replace("'", "&#39;") in board

    text = console(metrics, capsys)
    assert f"{ratio['sharp@fake']:.2f} above ceiling† │" in text
    assert f"{ratio['dull@fake']:.2f} │" in text
    assert ABOVE_CEILING_NOTE in text


def test_raw_and_recalibrated_ece_are_each_named(recalibrated, capsys):
    manifest, metrics = recalibrated
    blocks = metrics["gold_sets"][0]["setups"]
    after = {
        b["setup"]: next(m for m in b["recalibration"]["methods"] if m["method"] == "temperature")[
            "after"
        ]["ece"]["estimate"]
        for b in blocks
    }
    md = leaderboard_md(render_markdown(manifest, metrics))
    header = next(x for x in md.splitlines() if x.startswith("| # |"))
    assert "| ECE (raw) | ECE (after temperature) |" in header
    [sharp] = [x for x in md.splitlines() if re.match(r"\| \d \| `sharp@fake`", x)]
    assert f"{after['sharp@fake']:.3f} [" in sharp
    assert "is the figure the `max_ece` constraint checks" in md

    board = leaderboard_html(render_html(manifest, metrics))
    assert (
        '<th class="num">ECE (raw) [CI]</th><th class="num">ECE (after temperature) [CI]</th>'
        in board
    )
    assert "<code>max_ece</code> constraint checks" in board
    row = re.findall(r'<tr class="setup-row.*?</tr>', board, re.S)[0]
    assert f'class="est">{after["sharp@fake"]:.3f}</span>' in row

    text = console(metrics, capsys)
    assert "ECE (raw)" in text and "ECE (after temperature)" in text
    assert "is the figure the `max_ece` constraint checks" in text


def test_without_recalibration_there_is_one_ece_and_no_note(capsys):
    manifest, metrics = scored("none")
    md = leaderboard_md(render_markdown(manifest, metrics))
    assert "| ECE |" in md and "ECE (raw)" not in md and "max_ece" not in md
    html = render_html(manifest, metrics)
    assert "ECE (after" not in html and '<th class="num">ECE [CI]</th>' in html
    text = console(metrics, capsys)
    assert "ECE (raw)" not in text and "max_ece" not in text


def test_the_ceiling_note_names_the_dawid_skene_reference_when_it_is_used(capsys):
    """`report.reference: dawid_skene`: the reference is no majority vote, and the note under
    every leaderboard says what it is instead."""
    gold = _gold()
    records = _records(gold, SETUPS[0].id, 0.97, 1) + _records(gold, SETUPS[1].id, 0.6, 2)
    metrics = score_run([gold], SETUPS, records, LABELS, n_boot=200, reference="dawid_skene")
    metrics.update(run_id="20260101-000000-ds", experiment="notes")
    assert metrics["gold_sets"][0]["humans"]["reference"]["used"] == "dawid_skene"
    md = leaderboard_md(render_markdown(_manifest(metrics), metrics))
    html = leaderboard_html(render_html(_manifest(metrics), metrics))
    text = console(metrics, capsys)
    for shown in (md, html, text):
        assert "humans' majority" not in shown and "humans&#39; majority" not in shown
        assert "Dawid-Skene: each annotator weighted by their estimated accuracy" in shown
