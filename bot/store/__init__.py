"""Durable state: feeds (with leases), seen items, the outbox. One interface, several engines."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.errors import StoreError
from bot.model import Alert, QueuedAlert


class SeenItem(Protocol):
    """What the store keeps of an item: an :class:`~bot.model.Item`, or a parser's draft of one
    (an item recorded as seen need not have its text converted)."""

    @property
    def key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def link(self) -> str | None: ...
    @property
    def published(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed as configured, to be synced into the store."""

    feed_id: str
    url: str


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store knows of a feed: caching headers, schedule, health."""

    feed_id: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    next_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    last_error_detail: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    failure_notified: bool = False
    warning: str | None = None
    item_count: int = 0
    title: str | None = None

    @property
    def baselined(self) -> bool:
        """Whether a fetch ever succeeded: until then, items are marked seen, not alerted."""
        return self.last_success_at is not None

    @property
    def status(self) -> str:
        if self.last_error:
            return "failing"
        if self.last_success_at is None:
            return "new"
        return "warning" if self.warning else "ok"


@dataclass(frozen=True, slots=True)
class Notice:
    """A message that is not an alert (a feed failing, or recovered), queued in the outbox
    like one so it is retried, given up on and marked sent by the same rules."""

    destination: str
    feed_id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """Everything one poll of one feed writes, applied in one transaction.

    ``alerts`` are candidates: the store queues only those whose item it
    inserts now (an item already seen is never alerted again). ``notices`` are
    queued with the poll's record, so ``failure_notified`` says a notice is in
    the outbox exactly when it is (and none is queued under a lease lost).
    """

    feed_id: str
    owner: str
    at: datetime
    next_poll_at: datetime
    error: str | None = None
    error_detail: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None
    warning: str | None = None
    not_modified: bool = False
    items: Sequence[SeenItem] = ()
    alerts: Sequence[QueuedAlert] = ()
    notices: Sequence[Notice] = ()
    failure_notified: bool | None = None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What recording a poll did."""

    applied: bool
    new_items: int = 0
    queued: int = 0
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row: an alert, or (``alert`` None) a :class:`Notice`."""

    id: int
    alert: Alert | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    also_reported_by: tuple[str, ...] = field(default=())
    uncertain: bool = False  # an earlier send may have landed: its answer never came back
    first_attempt_at: datetime | None = None
    notice: Notice | None = None

    @property
    def destination(self) -> str:
        message = self.alert or self.notice
        assert message is not None, "an outbox row holds an alert or a notice"
        return message.destination


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int = 0
    waiting_digest: int = 0
    sent: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class DigestHeld:
    """Alerts of one destination waiting for their digest to close, and the first close."""

    destination: str
    count: int
    closes_at: datetime


class Store(Protocol):
    """The durable state newswatch needs; every write is one short transaction.

    Feeds and outbox rows are *claimed* with a lease (owner, expiry) so several
    processes can share a store: a claimed row is invisible to others until the
    lease ends, and a write by an owner whose lease was taken over changes nothing.
    """

    def migrate(self) -> None: ...
    def sync_feeds(self, feeds: Sequence[FeedRow], now: datetime) -> None: ...
    def feed_states(self) -> list[FeedState]: ...
    def claim_feeds(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, due_only: bool
    ) -> list[FeedState]: ...
    def renew_feeds(self, feed_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        """Extend ``owner``'s leases on feeds being polled to ``until`` (a heartbeat);
        returns the feeds it still holds."""
        ...

    def release_feeds(self, feed_ids: Sequence[str], owner: str) -> None:
        """Hand back feeds ``owner`` claimed and will not poll (its poll was cancelled), so
        the next claim takes them at once rather than when their lease ends."""
        ...

    def seen_keys(self, feed_id: str, keys: Sequence[str]) -> set[str]: ...
    def record_poll(self, outcome: PollOutcome) -> PollRecord: ...
    def claim_outbox(
        self,
        owner: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
        *,
        due_only: bool,
        after_id: int = 0,
    ) -> list[OutboxEntry]:
        """Lease up to ``limit`` pending rows with ids above ``after_id``, oldest first.

        ``due_only=False`` also takes rows waiting for a retry, never rows
        waiting for their digest to close. A row whose last send was started and
        never finished (its owner died, or lost its lease) comes back ``uncertain``.
        """
        ...

    def renew_outbox(self, entry_ids: Sequence[int], owner: str, until: datetime) -> set[int]:
        """Extend ``owner``'s leases on rows being sent to ``until`` (a heartbeat); returns
        the rows it still holds (not taken over by another owner, not finished)."""
        ...

    def start_attempt(self, entry_ids: Sequence[int], owner: str, now: datetime) -> set[int]:
        """Note that ``owner`` is about to send these rows, so that if it never says how that
        went, the next claim knows the send may have landed; returns the rows it still holds
        (send only those)."""
        ...

    def mark_sent(self, entry_ids: Sequence[int], owner: str, now: datetime) -> None: ...
    def mark_retry(
        self,
        entry_ids: Sequence[int],
        owner: str,
        next_attempt_at: datetime,
        error: str,
        *,
        uncertain: bool = False,
    ) -> None:
        """Try again at ``next_attempt_at``; ``uncertain``: the failed send may have landed
        (a timeout), and a row once uncertain stays so."""
        ...

    def mark_dead(
        self, entry_ids: Sequence[int], owner: str, now: datetime, error: str
    ) -> None: ...
    def release(self, entry_ids: Sequence[int], owner: str) -> None: ...
    def outbox_counts(self, now: datetime) -> OutboxCounts: ...
    def held_for_digest(self, now: datetime) -> list[DigestHeld]:
        """Per destination (by name), the alerts waiting at ``now`` for a digest to close."""
        ...

    def reserve_slot(self, key: str, interval: float, now: datetime) -> float:
        """Reserve the next slot of ``key`` (one per ``interval`` s across every process sharing
        the store); returns the seconds to wait before it."""
        ...

    def ping(self) -> bool: ...
    def close(self) -> None: ...


def open_store(url: str, *, read_only: bool = False) -> Store:
    """The store for ``url`` (``sqlite:PATH`` or ``postgresql://…``).

    ``read_only`` never creates or changes anything (``--dry-run``); a missing
    SQLite file then reads as an empty store.
    """
    if url.startswith("sqlite:"):
        from bot.store.sqlite import open_sqlite

        return open_sqlite(url, read_only=read_only)
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import open_postgres

        return open_postgres(url, read_only=read_only)
    raise ValueError(f"unsupported store URL {url!r}")


def store_error(url: str, err: BaseException) -> StoreError | None:
    """``err`` as the :class:`StoreError` a user sees when it is a database failure of the
    store at ``url`` (a file locked or made read-only, a server gone mid-command); else None."""
    if isinstance(err, StoreError):
        return err
    if url.startswith("sqlite:") and isinstance(err, sqlite3.Error):
        from bot.store.sqlite import sqlite_error, sqlite_path

        return sqlite_error(sqlite_path(url), err)
    psycopg = sys.modules.get("psycopg")  # loaded only when a PostgreSQL store was opened
    if psycopg is not None and isinstance(err, psycopg.Error):
        from bot.store.postgres import postgres_error

        return postgres_error(url, err)
    return None
