"""Rate limits on keys (a Slack channel: 1 message/s), in one process or across replicas.

A limit that only one process knows about is broken by the second replica, so
the store-backed limiter keeps each key's next free slot in the shared store and
reserves it with one atomic statement; the local one serves when there is no
store (``send-test``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.errors import DeliveryError


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


class LocalRateLimiter:
    """Turns kept in this process only: for one process, or when there is no store."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_turn(self, key: str, interval: float) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(key, now))
            self._next[key] = slot + interval
        if slot > now:
            self._sleep(slot - now)

    def defer(self, key: str, seconds: float) -> None:
        with self._lock:
            now = self._clock()
            self._next[key] = max(self._next.get(key, now), now + seconds)
