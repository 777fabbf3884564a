"""What polling and delivery share: the store, this process's name, the clock, leases and
their heartbeat, and the events reported to metrics and progress bars."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from bot.config.schema import Settings
from bot.store.aio import AsyncStore

log = logging.getLogger("newswatch.pipeline")

K = TypeVar("K", str, int)
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
Renew = Callable[[Sequence[K], str, datetime], Awaitable[set[K]]]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_owner() -> str:
    """A name for this process in leases: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Leases:
    """How long a claim on a feed or an outbox row lasts without a heartbeat.

    Work in flight renews its leases every third of their length, so a lease
    only needs to outlive a few missed heartbeats; when a replica dies, its work
    is picked up by another once the lease ends (``schedule.lease``).
    """

    outbox: float = 30.0
    feed_cap: float = 60.0

    def feed(self, fetch_timeout: float) -> float:
        """A bit over one fetch, capped: a slow feed keeps its lease through heartbeats."""
        return min(max(fetch_timeout + 10.0, self.outbox), self.feed_cap)

    @classmethod
    def of(cls, settings: Settings) -> Leases:
        return cls(outbox=settings.schedule.lease, feed_cap=2 * settings.schedule.lease)


class PipelineEvents(Protocol):
    """What the pipeline reports as it works (metrics, progress); every method is cheap."""

    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None: ...
    def matched(self, rule_id: str) -> None: ...
    def queued(self, rule_id: str, count: int) -> None:
        """``count`` alerts of ``rule_id`` entered the outbox (story duplicates not counted)."""
        ...

    def delivered(self, destination: str, outcome: str, count: int) -> None: ...
    def folded(self, feed_id: str, destination: str, count: int) -> None: ...
    def held(self, destination: str, reason: str, count: int) -> None:
        """``count`` alerts to ``destination`` wait for quiet hours or a cap to end."""
        ...

    def spiked(self, rule_id: str) -> None: ...


class NoEvents:
    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None:
        pass

    def matched(self, rule_id: str) -> None:
        pass

    def queued(self, rule_id: str, count: int) -> None:
        pass

    def delivered(self, destination: str, outcome: str, count: int) -> None:
        pass

    def folded(self, feed_id: str, destination: str, count: int) -> None:
        pass

    def held(self, destination: str, reason: str, count: int) -> None:
        pass

    def spiked(self, rule_id: str) -> None:
        pass


@dataclass(frozen=True)
class Context:
    """One process's share of the work: its store, name, clock, randomness and leases."""

    settings: Settings
    db: AsyncStore
    owner: str
    clock: Clock
    rng: random.Random
    events: PipelineEvents
    leases: Leases
    sleep: Sleep

    @asynccontextmanager
    async def heartbeat(
        self, what: str, held: set[K], lease: float, renew: Renew[K]
    ) -> AsyncIterator[None]:
        """Keep the leases on ``held`` (work in flight, emptied as it finishes) while the
        body runs, so a short lease never lapses under a slow feed or a long batch."""
        if not held:
            yield
            return
        task = asyncio.create_task(self._renew_every(what, held, lease, renew))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])

    async def _renew_every(self, what: str, held: set[K], lease: float, renew: Renew[K]) -> None:
        while True:
            await self.sleep(lease / 3)
            ids = sorted(held)
            try:
                kept = await renew(ids, self.owner, self.clock() + timedelta(seconds=lease))
            except Exception as err:  # the store is down: the next beat tries again
                log.warning("cannot renew %s leases: %s", what, err, extra={"event": "lease"})
                continue
            lost = set(ids) - kept
            if lost:
                # Taken over after a stall: the new owner sends them; our late marks are void.
                held.difference_update(lost)
                log.warning(
                    "lease lost on %d %s; another process has them now",
                    len(lost),
                    what,
                    extra={"event": "lease_lost", "count": len(lost)},
                )
