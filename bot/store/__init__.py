"""Durable state: feeds (with leases), seen items, the outbox. One interface, several engines."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from bot.config.schema import Spike
from bot.errors import StoreError
from bot.model import STORY_WINDOW, Alert, Posted, QueuedAlert, Sighting, SpikeFacts
from bot.stories.cluster import Signature


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
    last_new_at: datetime | None = None
    silent_since: datetime | None = None
    usual_gap: float | None = None
    silence_notified: bool = False

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
        if self.silent_since is not None:
            return "silent"
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
class SilenceState:
    """A feed's silence as a poll judged it: flagged ``since`` then (None: it publishes
    again), its usual gap between new items, and whether a notice was queued (so that
    only then is its recovery told too)."""

    since: datetime | None = None
    usual_gap: float | None = None
    notified: bool = False


@dataclass(frozen=True, slots=True)
class StorySighting:
    """What a matched item tells of its story: its signature (to find the story), the outlet,
    and the matched terms in its title (a term new to the story makes a follow-up)."""

    signature: Signature
    source: str
    title_terms: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True, slots=True)
class SpikeWatch:
    """A rule watched for spikes (its ``spike:``), and its spike alert for each destination
    as :func:`bot.alerts.attention.spike_alert` completes it (routed by the rule's priority)."""

    rule_id: str
    spike: Spike
    alerts: tuple[QueuedAlert, ...]


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """Everything one poll of one feed writes, applied in one transaction.

    ``alerts`` are candidates: the store queues only those whose item it
    inserts now (an item already seen is never alerted again). ``notices`` are
    queued with the poll's record, so ``failure_notified`` and ``silence`` say a
    notice is in the outbox exactly when it is (and none is queued under a lease
    lost). ``silence`` None leaves the feed's silence as it was.

    ``matched`` pairs (rule id, item key) for the daily statistics: like alerts,
    a match counts only if its item is inserted now. A ``baseline`` poll (the
    feed's first successful read) adds its items to no day: they are the feed's
    backlog, and would dwarf every later day of it.

    Each matched item (``stories``, by key) joins the open story it is a near-duplicate
    of, or opens one; a story stays open while it is sighted within ``story_window``
    seconds. A story is alerted once per destination: a later sighting replies to that
    alert (an outbox row of kind ``sighting``) or, while the alert is unsent, is added to
    its "also reported by".
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
    # Keys of every entry a content fetch served, seen before or not: a feed still serving
    # an item keeps it from pruning, however old (``items`` are only the unseen ones).
    served: Sequence[str] = ()
    alerts: Sequence[QueuedAlert] = ()
    notices: Sequence[Notice] = ()
    failure_notified: bool | None = None
    silence: SilenceState | None = None
    matched: Sequence[tuple[str, str]] = ()
    baseline: bool = False
    # Seconds after its latest sighting during which a story takes more sightings.
    story_window: float = STORY_WINDOW
    stories: Mapping[str, StorySighting] = field(default_factory=dict)
    # The fingerprints of ``items``' texts by key (see ``bot.feeds.identity.rewritten``).
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    # Items of ``items`` keyed anew because their guid was reused for another story: their
    # key → the reused key, whose row then describes the new story (its title, fingerprint).
    reused: Mapping[str, str] = field(default_factory=dict)
    # The rules watched for spikes: the store counts their stories by the hour and queues a
    # spike alert when this poll's stories make one.
    spikes: Sequence[SpikeWatch] = ()


TITLE_KEPT = 500  # characters of an item's title the store keeps (to tell a reused guid)


@dataclass(frozen=True, slots=True)
class SeenTitle:
    """What the store knows of an item seen: its title, its link, and its text's fingerprint
    (None for an item recorded before fingerprints were kept)."""

    title: str
    fingerprint: str | None
    link: str | None = None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What recording a poll did."""

    applied: bool
    new_items: int = 0
    queued: int = 0
    duplicates: int = 0
    queued_by_rule: Mapping[str, int] = field(default_factory=dict)
    # Alerts queued to wait instead of going at once, by (destination, why: quiet or cap).
    held: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # The rules whose spike alert this poll queued, with what made the spike.
    spikes: Mapping[str, SpikeFacts] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleDay:
    """One rule's counts on one UTC day: items it matched (new items only), and the
    outbox rows queued for it (after story dedupe, one per destination)."""

    rule_id: str
    day: date
    matches: int
    alerts: int
    urgent: int = 0  # alerts sent at once as urgent
    held: int = 0  # alerts held by quiet hours
    capped: int = 0  # alerts folded into a cap's "N more"


@dataclass(frozen=True, slots=True)
class FeedDay:
    """One feed's new items on one UTC day (its first read, the baseline, not counted)."""

    feed_id: str
    day: date
    items: int


@dataclass(frozen=True, slots=True)
class DailyStats:
    """The daily counters from a day on, and the last day each rule ever matched (kept
    as long as the counters are), so a rule quiet for the whole window still has a date."""

    rules: tuple[RuleDay, ...] = ()
    feeds: tuple[FeedDay, ...] = ()
    last_match: Mapping[str, date] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parent:
    """The top-level alert a sighting belongs to, and where it landed (None: not known, or a
    destination that cannot thread)."""

    alert: Alert
    posted: Posted | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row: an alert, a :class:`Notice`, or a later :class:`Sighting` of a story
    alerted before (with its ``parent``, None when that row is gone)."""

    id: int
    alert: Alert | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    also_reported_by: tuple[str, ...] = field(default=())
    uncertain: bool = False  # an earlier send may have landed: its answer never came back
    first_attempt_at: datetime | None = None
    notice: Notice | None = None
    sighting: Sighting | None = None
    parent: Parent | None = None
    digest: bool = False  # sent with the destination's other digest rows due, as one message

    @property
    def destination(self) -> str:
        message = self.alert or self.notice or self.sighting
        assert message is not None, "an outbox row holds an alert, a notice or a sighting"
        return message.destination


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int = 0
    waiting_digest: int = 0
    sent: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one :meth:`Store.prune` removed, by table."""

    outbox: int = 0
    stories: int = 0
    rate_slots: int = 0
    items: int = 0
    feeds: int = 0
    # Counters: daily ones (of ``newswatch stats``) older than STATS_DAYS, and the attention
    # budget's (caps of periods ended, spike counts and firings no baseline reads any more).
    stats: int = 0

    @property
    def total(self) -> int:
        return self.outbox + self.stories + self.rate_slots + self.items + self.feeds + self.stats


@dataclass(frozen=True, slots=True)
class SightingView:
    """One telling of a story, as ``newswatch stories`` lists it."""

    feed_id: str
    source: str
    title: str
    link: str | None
    seen_at: datetime
    rules: tuple[str, ...]
    language: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A story's alert to one destination, and its later sightings queued there."""

    destination: str
    status: str  # the top-level alert's: pending, sent or dead
    threaded: bool  # the alert's message is known (replies go to its thread)
    sightings: int  # later sightings queued for this destination
    sightings_sent: int


@dataclass(frozen=True, slots=True)
class StoryView:
    id: int
    title: str
    created_at: datetime
    last_at: datetime
    sightings: tuple[SightingView, ...]
    deliveries: tuple[DeliveryView, ...]


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
    def seen_titles(self, feed_id: str, keys: Sequence[str]) -> dict[str, SeenTitle]:
        """The items of ``keys`` already seen, by key, with their titles and fingerprints."""
        ...

    def sightings(self, feed_id: str, limit: int) -> list[datetime]:
        """The latest ``limit`` distinct times new items of ``feed_id`` were first seen,
        latest first: the history its silence is judged by."""
        ...

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
        sightings_only: bool = False,
    ) -> list[OutboxEntry]:
        """Lease up to ``limit`` pending rows with ids above ``after_id``, oldest first.

        ``due_only=False`` also takes rows waiting for a retry, never rows
        waiting for their digest to close. A row whose last send was started and
        never finished (its owner died, or lost its lease) comes back ``uncertain``.
        A story's later sighting is never taken before its alert is sent (or dead);
        ``sightings_only`` takes sightings only.
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

    def mark_sent(
        self, entry_ids: Sequence[int], owner: str, now: datetime, posted: Posted | None = None
    ) -> None:
        """Mark rows sent; ``posted`` is where a single alert landed (its story's thread)."""
        ...

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

    def recent_stories(self, since: datetime) -> list[StoryView]:
        """The stories sighted from ``since`` on, latest first, with their sightings and
        where each story was delivered."""
        ...

    def daily_stats(self, since: date) -> DailyStats:
        """The per-rule and per-feed counters of the UTC days from ``since`` on."""
        ...

    def take_turn(self, key: str, every: float, now: datetime) -> bool:
        """True for one caller per ``every`` s across every process sharing the store: elects
        who runs a periodic chore (a loser does not push the next turn back)."""
        ...

    def prune(self, now: datetime, sent_before: datetime, seen_before: datetime) -> PruneReport:
        """Forget what retention lets go, in short batches (each its own transaction):
        outbox rows sent or dead before ``sent_before`` (never a pending one) and the story
        links to them; rate-limit slots long past; items last served before ``seen_before``
        that their feed's latest content fetch no longer serves; feeds removed from the
        config before ``seen_before``, with their items (added again, they baseline again)."""
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
