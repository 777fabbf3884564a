"""The store awaited from the event loop: every call runs in the store's own worker thread.

A :class:`~bot.store.Store` is one connection behind a lock, and every call is
blocking: a PostgreSQL round trip, an SQLite write waiting for another process's
lock, a transaction backing off after a deadlock. Called from the event loop, each
of those stalls every fetch in flight. :class:`AsyncStore` runs the calls in one
thread of its own, in the order they were made, so the loop goes on fetching and
parsing meanwhile, and a queue of store calls never takes the threads notifiers
send from. The sync protocol stays what the CLI, the rate limiter (called from
send threads) and the health probe use.

Why a thread rather than psycopg's async API and aiosqlite (``bench/storeloop.py``
measures all three): aiosqlite is itself one thread per connection, with more per
call than this executor; psycopg's async connection saves the thread hop (tens of
microseconds) on a call that costs a network round trip and a commit anyway; and
either would need a second, async copy of every query and transaction of the store.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import date, datetime
from typing import ParamSpec, TypeVar

from bot.errors import StoreError
from bot.model import Posted
from bot.store import (
    DailyStats,
    DigestHeld,
    FeedState,
    OutboxCounts,
    OutboxEntry,
    PollOutcome,
    PollRecord,
    PruneReport,
    SeenTitle,
    Store,
    StoryView,
)

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """The pipeline's view of a :class:`Store`: the same calls, awaited.

    ``close`` stops the worker thread once the calls already made have run; the
    store itself belongs to whoever opened it.
    """

    def __init__(self, store: Store) -> None:
        self.sync = store
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newswatch-store")

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the store's thread. Cancelling the wait does not stop
        a call already running (a transaction commits or rolls back as a whole).

        Whatever the call raises is a :class:`StoreError`, so the pipeline can tell a
        failing store (which ends the cycle) from a failing feed (which must not)."""
        return await self._run(self._worker, fn, *args, **kwargs)

    async def _run(
        self, worker: Executor | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`_call` in ``worker`` (None: the loop's default threads)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(worker, functools.partial(fn, *args, **kwargs))
        except StoreError:
            raise
        except Exception as err:
            raise _failed(fn, err) from err

    def mark_sent_blocking(self, entry_ids: Sequence[int], owner: str, now: datetime) -> None:
        """``mark_sent`` from a send thread, waiting until it is committed: each part of a
        digest in several messages is recorded as it lands, before the next is posted."""
        try:
            self._worker.submit(self.sync.mark_sent, entry_ids, owner, now).result()
        except StoreError:
            raise
        except Exception as err:
            raise _failed(self.sync.mark_sent, err) from err

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    async def feed_states(self) -> list[FeedState]:
        return await self._call(self.sync.feed_states)

    async def claim_feeds(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, due_only: bool
    ) -> list[FeedState]:
        return await self._call(
            self.sync.claim_feeds, owner, now, lease_seconds, limit, due_only=due_only
        )

    async def renew_feeds(self, feed_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        return await self._call(self.sync.renew_feeds, feed_ids, owner, until)

    async def release_feeds(self, feed_ids: Sequence[str], owner: str) -> None:
        await self._call(self.sync.release_feeds, feed_ids, owner)

    async def seen_keys(self, feed_id: str, keys: Sequence[str]) -> set[str]:
        return await self._call(self.sync.seen_keys, feed_id, keys)

    async def seen_titles(self, feed_id: str, keys: Sequence[str]) -> dict[str, SeenTitle]:
        return await self._call(self.sync.seen_titles, feed_id, keys)

    async def sightings(self, feed_id: str, limit: int) -> list[datetime]:
        return await self._call(self.sync.sightings, feed_id, limit)

    async def record_poll(self, outcome: PollOutcome) -> PollRecord:
        return await self._call(self.sync.record_poll, outcome)

    async def claim_outbox(
        self,
        owner: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
        *,
        due_only: bool,
        after_id: int = 0,
        sightings_only: bool = False,
    ) -> list[OutboxEntry]:
        return await self._call(
            self.sync.claim_outbox,
            owner,
            now,
            lease_seconds,
            limit,
            due_only=due_only,
            after_id=after_id,
            sightings_only=sightings_only,
        )

    async def renew_outbox(self, entry_ids: Sequence[int], owner: str, until: datetime) -> set[int]:
        return await self._call(self.sync.renew_outbox, entry_ids, owner, until)

    async def start_attempt(self, entry_ids: Sequence[int], owner: str, now: datetime) -> set[int]:
        return await self._call(self.sync.start_attempt, entry_ids, owner, now)

    async def mark_sent(
        self, entry_ids: Sequence[int], owner: str, now: datetime, posted: Posted | None = None
    ) -> None:
        await self._call(self.sync.mark_sent, entry_ids, owner, now, posted)

    async def mark_retry(
        self,
        entry_ids: Sequence[int],
        owner: str,
        next_attempt_at: datetime,
        error: str,
        *,
        uncertain: bool = False,
    ) -> None:
        await self._call(
            self.sync.mark_retry, entry_ids, owner, next_attempt_at, error, uncertain=uncertain
        )

    async def mark_dead(
        self, entry_ids: Sequence[int], owner: str, now: datetime, error: str
    ) -> None:
        await self._call(self.sync.mark_dead, entry_ids, owner, now, error)

    async def release(self, entry_ids: Sequence[int], owner: str) -> None:
        await self._call(self.sync.release, entry_ids, owner)

    async def outbox_counts(self, now: datetime) -> OutboxCounts:
        return await self._call(self.sync.outbox_counts, now)

    async def recent_stories(self, since: datetime) -> list[StoryView]:
        return await self._call(self.sync.recent_stories, since)

    async def daily_stats(self, since: date) -> DailyStats:
        return await self._call(self.sync.daily_stats, since)

    async def take_turn(self, key: str, every: float, now: datetime) -> bool:
        return await self._call(self.sync.take_turn, key, every, now)

    async def prune(
        self, now: datetime, sent_before: datetime, seen_before: datetime
    ) -> PruneReport:
        """In a thread of its own, not the store's: the store is locked per transaction, so
        the pipeline's calls go on between the prune's batches instead of queueing behind
        all of them."""
        return await self._run(None, self.sync.prune, now, sent_before, seen_before)

    async def held_for_digest(self, now: datetime) -> list[DigestHeld]:
        return await self._call(self.sync.held_for_digest, now)


def _failed(fn: Callable[..., object], err: Exception) -> StoreError:
    return StoreError(f"the store failed ({fn.__name__}): {err}")
