"""Destinations: where alerts go. Each kind lives in its own module behind :class:`Notifier`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.config.schema import (
    ConsoleDestination,
    Destination,
    EmailDestination,
    SlackDestination,
)
from bot.model import Alert, Posted, Sighting
from bot.notify.ratelimit import KeyedLimiter, RateLimiter


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outbox rows one send delivers.

    ``check_since`` is set when an earlier send of these rows may have landed
    without its answer coming back (a timeout, a replica killed mid-send): a
    destination that can look up what it received (Slack's channel history)
    checks from then on before sending again; the others send again
    (at-least-once).

    ``part_sent`` is called with the rows of each part of a digest sent in
    several messages as that part lands (blocking until they are recorded), so a
    crash or a failure before the last part does not send the earlier ones again.

    For a digest with sightings, ``outbox_ids`` name the alerts' rows first, then the
    sightings' rows, in the order given to ``send``. A sighting sent on its own
    (``send_sighting``) has its one row.
    """

    outbox_ids: tuple[int, ...]
    check_since: datetime | None = None
    part_sent: Callable[[Sequence[int]], None] | None = None


class Notifier(Protocol):
    """Sends rendered alerts to one destination.

    Calls are blocking (run them in a worker thread from async code). Every
    failure is a :class:`bot.errors.DeliveryError` saying whether a retry can help.

    ``threads`` says whether the destination can reply in an alert's thread and edit
    the alert (Slack with a bot token): only then does ``send`` say where a single
    alert landed, for its story's later sightings.
    """

    destination_id: str
    threads: bool

    def send(
        self,
        alerts: Sequence[Alert],
        attempt: Attempt | None = None,
        sightings: Sequence[Sighting] = (),
    ) -> Posted | None:
        """One alert as its own message, or several as one digest message grouped by rule,
        with ``sightings`` (later tellings of earlier stories) listed after them;
        ``attempt`` names the outbox rows sent (none outside the pipeline).

        Returns where a single alert landed when the destination threads (also when an
        uncertain earlier send is found already posted), else None."""

    def send_sighting(
        self,
        sighting: Sighting,
        parent: Alert,
        posted: Posted | None,
        attempt: Attempt | None = None,
    ) -> None:
        """A later telling of ``parent``'s story. With ``posted`` (a destination that
        threads): a reply in the alert's thread, and the alert edited to count the story's
        outlets. Without: a follow-up is sent as a message of its own, flagged and naming
        the story's earlier title; a plain sighting is not sent (the pipeline records it,
        and a digest lists it), except on the console, which prints every sighting."""

    def send_notice(self, title: str, text: str) -> None:
        """A message that is not an alert: feed failure or recovery, ``send-test``."""

    def close(self) -> None:
        """Release connections."""


def build_notifier(
    destination_id: str, destination: Destination, rate_limiter: RateLimiter | None = None
) -> Notifier:
    """The notifier for one configured destination; imports each kind only when used.

    ``rate_limiter`` paces Slack channels across every process sharing it; without
    one, each process paces its own sends.
    """
    if isinstance(destination, ConsoleDestination):
        from bot.notify.console import ConsoleNotifier

        return ConsoleNotifier(destination_id, destination)
    if isinstance(destination, SlackDestination):
        from bot.notify.slack import SLACK_INTERVAL, SlackNotifier, channel_key

        limiter = (
            KeyedLimiter(rate_limiter, channel_key(destination), SLACK_INTERVAL)
            if rate_limiter is not None
            else None
        )
        return SlackNotifier(destination_id, destination, limiter=limiter)
    if isinstance(destination, EmailDestination):
        from bot.notify.email import EmailNotifier

        return EmailNotifier(destination_id, destination)
    raise TypeError(f"unknown destination type {type(destination).__name__}")


def build_notifiers(
    destinations: Mapping[str, Destination], rate_limiter: RateLimiter | None = None
) -> dict[str, Notifier]:
    return {
        dest_id: build_notifier(dest_id, dest, rate_limiter)
        for dest_id, dest in destinations.items()
    }
