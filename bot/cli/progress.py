"""A one-line progress bar for ``once`` on a terminal: a :class:`bot.pipeline.base.PipelineEvents`.

It draws only when the stream is a TTY, so cron jobs and pipes get clean
output, and it redraws at most every ``min_interval`` seconds so a thousand
feeds do not mean a thousand writes. Used as a context manager, it makes log
records written to its stream erase the bar first and redraw it after
(:func:`bot.logs.live_line`), so a warning mid-run is one whole line.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import TextIO

from bot.logs import live_line

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
        # Records come from worker threads too: a draw and a record's erase-write-redraw
        # must not interleave.
        self._lock = threading.RLock()
        self._attached = ExitStack()

    def __enter__(self) -> Progress:
        if self.enabled:
            self._attached.enter_context(live_line(self, self.stream))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._attached.close()
        self.close()

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

    def held(self, destination: str, reason: str, count: int) -> None:
        """``once`` names what is held in its closing line."""

    def spiked(self, rule_id: str) -> None:
        """The pipeline logs each spike."""

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
        with self._lock:
            self._erase()

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Erase the bar for what is written inside (a log record), then draw it again below."""
        with self._lock:
            shown = self._erase()
            yield
            if shown:
                self._write(self.line())

    def _draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = self.clock()
            if (
                not force
                and self._drawn_at is not None
                and now - self._drawn_at < self.min_interval
            ):
                return
            self._drawn_at = now
            self._write(self.line())

    def _write(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = max(self._width, len(text))

    def _erase(self) -> bool:
        """Blank the bar's line and return to its start; whether there was a bar."""
        if not (self.enabled and self._width):
            return False
        self.stream.write("\r" + " " * self._width + "\r")
        self.stream.flush()
        self._width = 0
        return True


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
