"""Progress of `prelabel run` on a console that is not a terminal (CI logs, pipes): a plain
line every few seconds, never one per label. Time is a fake clock, never a sleep."""

from __future__ import annotations

import re
from types import SimpleNamespace

from conftest import invoke

from harness.cli import progress as cli_progress
from harness.cli.progress import PlainProgress


def record(cached: bool = False, failed: bool = False, cost: float | None = 7e-06):
    return SimpleNamespace(
        cached=cached, failure="no_label_found" if failed else None, cost_usd=cost
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_not_one_per_label():
    clock, lines = Clock(), []
    with PlainProgress(10, lines.append, clock=clock, interval=5.0, heartbeat=False) as p:
        for _ in range(4):  # four labels within the first 4 s: no line yet
            clock.now += 1
            p.on_record(record())
        assert lines == []
        clock.now += 1  # 5 s after the start
        p.on_record(record(cached=True, cost=None))
        assert lines == ["labeling: 5/10 (50%), cached 1, failed 0, spend $0.000028, elapsed 5 s"]
        for _ in range(3):  # the next line is due 5 s after this one, not after each label
            clock.now += 1
            p.on_record(record(failed=True, cost=0.0))
        assert len(lines) == 1
        clock.now += 7  # no label for a while: the heartbeat's tick still reports
        p.tick()
        assert (
            lines[-1] == "labeling: 8/10 (80%), cached 1, failed 3, spend $0.000028, elapsed 15 s"
        )
        p.tick()  # right after a line: nothing new
        assert len(lines) == 2


def test_a_run_without_a_terminal_prints_plain_progress_lines(srv, experiment, monkeypatch):
    monkeypatch.setattr(cli_progress, "INTERVAL_S", 0.0)  # a line at every label, for the test
    exp = experiment(srv)
    result = invoke("run", str(exp.config))  # CliRunner's stderr is not a terminal
    assert result.exit_code == 0, result.output
    lines = re.findall(
        r"labeling: (\d+)/12 \(\d+%\), cached \d+, failed \d+, spend \$", result.stderr
    )
    assert lines and lines[-1] == "12", result.stderr
    assert "━" not in result.stderr  # no bar drawn into a log

    quiet = invoke("run", str(exp.config), "--quiet")
    assert quiet.exit_code == 0 and "labeling:" not in quiet.stderr
