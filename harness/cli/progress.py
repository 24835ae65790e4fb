"""Progress of `prelabel run` on stderr.

A terminal gets rich's live bar. A console that is not a terminal (a CI log, a pipe) cannot
redraw a bar in place, and a line per label would flood the log of a 100,000-item run; it
gets one plain line every few seconds instead (done/total, cached, failed, spend, elapsed),
so a two-minute run in CI does not look hung. `--quiet` silences both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from harness.core.money import usd

INTERVAL_S = 5.0  # between two plain lines; CI logs show a timestamp per line anyway


class Tally:
    """What the progress shows; spend counts only labels paid for in this run."""

    def __init__(self) -> None:
        self.done = self.cached = self.failed = 0
        self.cost = 0.0

    def add(self, record: Any) -> None:
        self.done += 1
        self.cached += bool(record.cached)
        self.failed += record.failure is not None
        self.cost += 0.0 if record.cached else (record.cost_usd or 0.0)


class PlainProgress:
    """One line every `interval` seconds of `clock`, written by `write`.

    A line is due when a label arrives after the interval has passed, or, with `heartbeat`,
    from a background thread when no label arrives for that long (a slow model must not
    look like a hung run). Tests pass a fake clock and no heartbeat, and call `on_record`
    and `tick` themselves.
    """

    def __init__(
        self,
        total: int,
        write: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = None,
        heartbeat: bool = True,
    ) -> None:
        self.total, self.write, self.clock = total, write, clock
        self.interval = INTERVAL_S if interval is None else interval
        self.tally = Tally()
        self._lock = threading.Lock()  # records and the heartbeat come from different threads
        self._start = self._last = clock()
        self._stop = threading.Event()
        self._thread = (
            threading.Thread(target=self._beat, name="prelabel-progress", daemon=True)
            if heartbeat
            else None
        )

    def __enter__(self) -> PlainProgress:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()

    def on_record(self, record: Any) -> None:
        with self._lock:
            self.tally.add(record)
        self.tick()

    def tick(self) -> None:
        """Write a line if the interval has passed since the last one (or the start)."""
        with self._lock:
            now = self.clock()
            if now - self._last < self.interval:
                return
            self._last = now
            line = self.line(now)
        self.write(line)

    def line(self, now: float) -> str:
        t = self.tally
        share = f" ({t.done / self.total:.0%})" if self.total else ""
        return (
            f"labeling: {t.done}/{self.total}{share}, cached {t.cached}, failed {t.failed}, "
            f"spend {usd(t.cost)}, elapsed {now - self._start:.0f} s"
        )

    def _beat(self) -> None:
        while not self._stop.wait(max(self.interval, 0.5)):  # an interval of 0: no spin
            self.tick()


def progress_for(
    total: int, quiet: bool, console: Any
) -> tuple[AbstractContextManager[Any] | None, Callable[[Any], None] | None]:
    """(context to run the labelling in, callback per record), or (None, None) when quiet."""
    if quiet:
        return None, None
    if not console.file.isatty():
        plain = PlainProgress(total, lambda s: console.print(s, markup=False, highlight=False))
        return plain, plain.on_record
    return _bar(total, console)


def _bar(total: int, console: Any) -> tuple[Any, Callable[[Any], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("labeling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )
    task = progress.add_task("label", total=total, status="")
    tally = Tally()

    def on_record(record: Any) -> None:
        tally.add(record)
        status = f"cached {tally.cached} · failed {tally.failed} · {usd(tally.cost)}"
        progress.update(task, advance=1, status=status)

    return progress, on_record
