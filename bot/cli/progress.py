"""A one-line progress bar for ``once`` on a terminal: a :class:`bot.pipeline.base.PipelineEvents`.

It draws only when the stream is a TTY, so cron jobs and pipes get clean
output, and it redraws at most every ``min_interval`` seconds so a thousand
feeds do not mean a thousand writes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 24


class Progress:
    """Counts feeds, new items, matches and sends; writes ``\\r…`` on ``stream`` when a TTY."""

    def __init__(
        self,
        total_feeds: int,
        stream: TextIO | None = None,
        *,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream)
        self.total = max(0, total_feeds)
        self.feeds = self.failed = self.new_items = self.matches = self.sent = 0
        self.min_interval = min_interval
        self.clock = clock
        self._drawn_at: float | None = None
        self._width = 0

    # -- PipelineEvents ------------------------------------------------------
    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None:
        self.feeds += 1
        self.new_items += new_items
        if outcome not in ("ok", "not_modified", "baseline"):
            self.failed += 1
        self._draw(force=self.feeds >= self.total)

    def matched(self, rule_id: str) -> None:
        self.matches += 1

    def queued(self, rule_id: str, count: int) -> None:
        """The summary after the run counts alerts; the bar counts matches and sends."""

    def delivered(self, destination: str, outcome: str, count: int) -> None:
        if outcome == "sent":
            self.sent += count
        self._draw()

    def folded(self, feed_id: str, destination: str, count: int) -> None:
        """The pipeline logs a warning for each fold; the bar has nothing to add."""

    # -- drawing -------------------------------------------------------------
    def line(self) -> str:
        done = min(self.feeds, self.total) if self.total else self.feeds
        filled = WIDTH * done // self.total if self.total else WIDTH
        bar = "#" * filled + "." * (WIDTH - filled)
        text = f"[{bar}] {done}/{self.total} feeds, {self.new_items} new, {self.matches} matches"
        if self.failed:
            text += f", {self.failed} failed"
        if self.sent:
            text += f", {self.sent} sent"
        return text

    def close(self) -> None:
        """Erase the bar, so the summary that follows starts on a clean line."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and self._drawn_at is not None and now - self._drawn_at < self.min_interval:
            return
        self._drawn_at = now
        text = self.line()
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = max(self._width, len(text))


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
