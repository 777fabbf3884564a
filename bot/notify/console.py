"""The console destination: alerts printed to stdout, the default and ``--dry-run`` output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from bot.alerts.render import (
    clean_text,
    digest_title,
    is_single,
    one_line,
    text_digest,
    text_message,
    text_sighting,
)
from bot.config.schema import ConsoleDestination
from bot.model import Alert, Posted, Sighting
from bot.notify import Attempt


class ConsoleNotifier:
    """Prints each alert as a plain-text block, blocks separated by a blank line, and each
    later sighting of a story as one ``↳`` line. An urgent alert starts ``[URGENT]``; a
    digest held for a cap or for quiet hours starts with a line saying so."""

    threads = False

    def __init__(
        self,
        destination_id: str,
        destination: ConsoleDestination | None = None,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.destination_id = destination_id
        self._stream = stream
        self._clock = clock

    def send(
        self,
        alerts: Sequence[Alert],
        attempt: Attempt | None = None,
        sightings: Sequence[Sighting] = (),
    ) -> Posted | None:
        """Prints the alerts; stdout cannot be asked what it showed, so a resend repeats them."""
        now = self._clock()
        title = None if is_single(alerts, sightings) else digest_title(alerts)
        text = f"{title}\n\n" if title else ""
        text += "".join(text_message(alert, now) + "\n\n" for alert in alerts)
        if sightings:
            text += text_digest((), now, sightings) + "\n\n"
        self._write(text)
        return None

    def send_sighting(
        self,
        sighting: Sighting,
        parent: Alert,
        posted: Posted | None,
        attempt: Attempt | None = None,
    ) -> None:
        """Every sighting, follow-up or not, as one line naming the story: printing costs
        nothing, and the default destination should show what a story does."""
        self._write(text_sighting(sighting, self._clock(), story=parent.title) + "\n\n")

    def send_notice(self, title: str, text: str) -> None:
        self._write(f"{one_line(title)}\n{clean_text(text)}\n\n")

    def close(self) -> None:
        """Nothing to release: stdout belongs to the process."""

    def _write(self, text: str) -> None:
        # Looked up at write time so pytest's capsys and redirections see the output.
        stream = self._stream or sys.stdout
        stream.write(text)
        stream.flush()

    def __repr__(self) -> str:
        return f"ConsoleNotifier({self.destination_id!r})"
