"""Rate limits on keys (a Slack channel: 1 message/s), in one process or across replicas.

A limit that only one process knows about is broken by the second replica, so
the store-backed limiter keeps each key's next free slot in the shared store and
reserves it with one atomic statement. Without a store (``send-test``) the
notifier's own in-process pacing applies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.errors import DeliveryError

MAX_PACING_WAIT = 10.0
"""Longest a send sleeps for its turn; a longer pause (a Slack Retry-After) fails the send
as retryable, so the outbox reschedules it instead of a thread sleeping through shutdown."""


def paused(wait: float) -> DeliveryError:
    """The error for a turn further off than :data:`MAX_PACING_WAIT`."""
    return DeliveryError(
        "ratelimited", f"paused for {wait:.0f}s more", retryable=True, retry_after=wait
    )


class RateLimiter(Protocol):
    """At most one turn per ``interval`` seconds on each key."""

    def wait_turn(self, key: str, interval: float) -> None:
        """Block until this caller's turn on ``key``; concurrent callers queue up."""
        ...

    def defer(self, key: str, seconds: float) -> None:
        """The far end asked for a pause (Retry-After): no turn on ``key`` for ``seconds``."""
        ...


class SlotStore(Protocol):
    def reserve_slot(self, key: str, interval: float, now: datetime) -> float: ...


class StoreRateLimiter:
    """Turns reserved in the store, so the limit holds across every replica sharing it."""

    def __init__(
        self,
        store: SlotStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep

    def wait_turn(self, key: str, interval: float) -> None:
        wait = self._reserve(key, interval, self._clock())
        if wait > MAX_PACING_WAIT:
            raise paused(wait)
        if wait > 0:
            self._sleep(wait)

    def defer(self, key: str, seconds: float) -> None:
        self._reserve(key, 0.0, self._clock() + timedelta(seconds=seconds))

    def _reserve(self, key: str, interval: float, now: datetime) -> float:
        """A store that does not answer must not let a send through unlimited: the send
        fails as retryable, and the outbox tries it again later."""
        try:
            return self._store.reserve_slot(key, interval, now)
        except Exception as err:
            raise DeliveryError(
                "rate_limit_unavailable", f"cannot reserve a send slot: {err}", retryable=True
            ) from err


class KeyedLimiter:
    """One key of a :class:`RateLimiter`, in the shape a notifier paces itself with."""

    def __init__(self, limiter: RateLimiter, key: str, interval: float) -> None:
        self._limiter = limiter
        self._key = key
        self._interval = interval

    def wait(self) -> None:
        self._limiter.wait_turn(self._key, self._interval)

    def defer(self, seconds: float) -> None:
        self._limiter.defer(self._key, seconds)
