"""The store over any DB-API connection; what differs between engines is a :class:`Dialect`.

Every write is one explicit transaction whose body is a function, so a deadlock
or serialization failure re-runs the whole body. Claims are a single ``UPDATE …
WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``, so two
processes can never claim the same row. Rows are inserted in batches sorted by
key, ``ON CONFLICT DO NOTHING``, so concurrent writers take row locks in one
global order (no deadlock) and never duplicate.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from bot.alerts.attention import (
    BASELINE_DAYS,
    HOUR,
    SPIKE_LISTED,
    hour_of,
    spike_alert,
    spike_facts,
)
from bot.config.schema import SPIKE_WINDOW_MAX
from bot.errors import StoreError
from bot.model import Alert, CapCount, Folded, Posted, QueuedAlert, Sighting
from bot.store import (
    TITLE_KEPT,
    DailyStats,
    DeliveryView,
    DigestHeld,
    FeedDay,
    FeedRow,
    FeedState,
    Notice,
    OutboxCounts,
    OutboxEntry,
    Parent,
    PollOutcome,
    PollRecord,
    PruneReport,
    RuleDay,
    SeenTitle,
    SightingView,
    StorySighting,
    StoryView,
)
from bot.store.codec import (
    alert_from_json,
    alert_to_json,
    from_epoch,
    notice_from_json,
    notice_to_json,
    posted_from_json,
    posted_to_json,
    sighting_from_json,
    sighting_to_json,
    to_epoch,
)
from bot.stories.cluster import Signature, StoryIndex
from bot.stories.followup import follow_up

T = TypeVar("T")

SCHEMA_VERSION = 10
CHUNK = 500  # rows per multi-row statement: 500 x 6 parameters is far below every engine's limit
PRUNE_BATCH = 1000  # rows one pruning transaction deletes at most: short locks on a shared store
# Batches one step of a prune runs at most: a first prune of a large store spreads over several
# runs, and a daemon stopping never waits long for the one in flight.
PRUNE_ROUNDS = 50
# An item's ``last_seen`` is rewritten only once it is this old, so a feed serving the same
# items all day costs one write per item a day; it also bounds what "the latest fetch" means.
REFRESH_AFTER = 86400.0
STATS_DAYS = 400  # days of daily counters kept for ``newswatch stats``: a year and a margin
SLOT_GRACE = 86400.0  # a rate slot this far in the past says nothing more than no row
MAX_ATTEMPTS = 8  # runs of one transaction body before a deadlock is raised
FOLLOW_UP_MEMORY = 64  # a story's latest tellings a follow-up is judged new against
# Hours of spike counts kept: the baseline behind the longest window a spike may have.
RULE_HOURS_KEPT = BASELINE_DAYS * 24 + round(SPIKE_WINDOW_MAX / HOUR) + 1


_ALL = 2**62  # a LIMIT every engine takes for "no limit"


def _never(_: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class Dialect:
    """What one engine spells differently (the defaults are SQLite's)."""

    name: str
    placeholder: str  # "?" or "%s"
    begin_write: str  # how a writing transaction starts
    serial: str  # an auto-incrementing primary key column type
    real: str  # a double-precision column type
    lock_claimed: str  # appended to the claim's sub-select ("" or " FOR UPDATE SKIP LOCKED")
    has_table: str  # counts the tables named ? (0 or 1) where the store's tables live
    migration_lock: str | None = None  # serialises concurrent migrations, where needed
    story_lock: str | None = None  # serialises story decisions to the commit, where needed
    # A primary key whose values are never reused once deleted (ids read in order).
    serial_key: str = "INTEGER PRIMARY KEY AUTOINCREMENT"
    lock_rows: str = ""  # appended to a select whose rows are then updated (" FOR UPDATE")
    greatest: str = "max"  # the scalar maximum of two values ("max" or "GREATEST")
    retryable: Callable[[BaseException], bool] = _never  # deadlocks, serialization failures

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


_FEED_COLUMNS = (
    "feed_id, url, etag, last_modified, next_poll_at, last_success_at, last_attempt_at,"
    " last_error, last_error_detail, consecutive_failures, failing_since, failure_notified,"
    " warning, item_count, title, last_new_at, silent_since, usual_gap, silence_notified"
)


def migrations(d: Dialect) -> list[tuple[int, list[str]]]:
    """Each schema version and the statements that bring the previous one to it."""
    v1 = [
        f"""CREATE TABLE IF NOT EXISTS feeds (
            feed_id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            etag TEXT,
            last_modified TEXT,
            title TEXT,
            next_poll_at {d.real} NOT NULL DEFAULT 0,
            last_success_at {d.real},
            last_attempt_at {d.real},
            last_error TEXT,
            last_error_detail TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            failing_since {d.real},
            failure_notified INTEGER NOT NULL DEFAULT 0,
            warning TEXT,
            item_count INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until {d.real})""",
        f"""CREATE TABLE IF NOT EXISTS items (
            feed_id TEXT NOT NULL,
            item_key TEXT NOT NULL,
            title TEXT,
            link TEXT,
            published {d.real},
            first_seen {d.real} NOT NULL,
            PRIMARY KEY (feed_id, item_key))""",
        f"""CREATE TABLE IF NOT EXISTS outbox (
            id {d.serial} PRIMARY KEY,
            rule_id TEXT NOT NULL,
            destination TEXT NOT NULL,
            feed_id TEXT NOT NULL,
            item_key TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            digest INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at {d.real} NOT NULL,
            next_attempt_at {d.real} NOT NULL,
            last_error TEXT,
            sent_at {d.real},
            lease_owner TEXT,
            lease_until {d.real},
            also_reported_by TEXT NOT NULL DEFAULT '[]')""",
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at)",
        """CREATE TABLE IF NOT EXISTS story_alerts (
            rule_id TEXT NOT NULL,
            destination TEXT NOT NULL,
            story_key TEXT NOT NULL,
            outbox_id BIGINT NOT NULL,
            PRIMARY KEY (rule_id, destination, story_key))""",
    ]
    v2 = [
        # Claims scan these in their ORDER BY instead of sorting every row on each claim.
        "CREATE INDEX IF NOT EXISTS feeds_due ON feeds (next_poll_at, feed_id) WHERE active = 1",
        "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE status = 'pending'",
        f"""CREATE TABLE IF NOT EXISTS rate_slots (
            slot_key TEXT PRIMARY KEY,
            next_at {d.real} NOT NULL)""",
    ]
    v3 = [
        # A send in flight (``sending``) whose outcome never came back makes the row
        # ``uncertain``: before sending it again, a destination that can look up what it
        # received (Slack's history) checks from ``first_attempt_at`` on.
        f"ALTER TABLE outbox ADD COLUMN first_attempt_at {d.real}",
        "ALTER TABLE outbox ADD COLUMN sending INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0",
    ]
    v4 = [
        # Feed failure and recovery notices are outbox rows too (``kind = 'notice'``, the
        # payload their title and text, no rule, item or story), so they are retried and
        # marked like alerts instead of sent once, in passing, from the poll.
        "ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'alert'",
    ]
    v5 = [
        # A feed answering but publishing nothing new for much longer than its usual gap is
        # flagged ``silent_since`` by a poll, which queues its notice (``silence_notified``);
        # ``last_new_at`` is when new items were last seen, as items.first_seen says so far.
        f"ALTER TABLE feeds ADD COLUMN last_new_at {d.real}",
        f"ALTER TABLE feeds ADD COLUMN silent_since {d.real}",
        f"ALTER TABLE feeds ADD COLUMN usual_gap {d.real}",
        "ALTER TABLE feeds ADD COLUMN silence_notified INTEGER NOT NULL DEFAULT 0",
        "UPDATE feeds SET last_new_at ="
        " (SELECT max(first_seen) FROM items WHERE items.feed_id = feeds.feed_id)",
        # A feed's history (its latest sightings) is read from this, not from all its items.
        "CREATE INDEX IF NOT EXISTS items_sightings ON items (feed_id, first_seen)",
    ]
    v6 = [
        # Daily counters for ``newswatch stats``, one row per (rule or feed, UTC day as
        # YYYY-MM-DD), added to by each poll's transaction (so exact across replicas).
        """CREATE TABLE IF NOT EXISTS rule_days (
            rule_id TEXT NOT NULL,
            day TEXT NOT NULL,
            matches INTEGER NOT NULL DEFAULT 0,
            alerts INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (rule_id, day))""",
        """CREATE TABLE IF NOT EXISTS feed_days (
            feed_id TEXT NOT NULL,
            day TEXT NOT NULL,
            items INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (feed_id, day))""",
        # The window read and the prune select by day, not by rule or feed.
        "CREATE INDEX IF NOT EXISTS rule_days_day ON rule_days (day)",
        "CREATE INDEX IF NOT EXISTS feed_days_day ON feed_days (day)",
    ]
    v7 = [
        # Retention: an item's ``last_seen`` is refreshed while its feed serves it, and a
        # feed's ``content_at`` is its latest successful fetch with content (not a 304), so
        # an item in that fetch is never pruned; ``inactive_since`` dates a feed's removal.
        f"ALTER TABLE items ADD COLUMN last_seen {d.real} NOT NULL DEFAULT 0",
        "UPDATE items SET last_seen = first_seen",
        "CREATE INDEX IF NOT EXISTS items_last_seen ON items (feed_id, last_seen)",
        f"ALTER TABLE feeds ADD COLUMN content_at {d.real}",
        f"ALTER TABLE feeds ADD COLUMN inactive_since {d.real}",
        "CREATE INDEX IF NOT EXISTS outbox_finished ON outbox (sent_at) WHERE status <> 'pending'",
        "CREATE INDEX IF NOT EXISTS story_alerts_outbox ON story_alerts (outbox_id)",
    ]
    v8 = [
        # A story takes later sightings only within a window of its alert being queued:
        # ``created_at`` is that time (the outbox row's), so an expired link is replaced.
        f"ALTER TABLE story_alerts ADD COLUMN created_at {d.real} NOT NULL DEFAULT 0",
        "UPDATE story_alerts SET created_at = COALESCE((SELECT o.created_at FROM outbox o"
        " WHERE o.id = story_alerts.outbox_id), 0)",
        # A sketch of an item's text: a guid seen again with another title is a new item
        # when its text changed completely too (an item from before has none: it is not).
        "ALTER TABLE items ADD COLUMN fingerprint TEXT",
    ]
    v9 = [
        # Stories: every matched item is a sighting of one, found by its signature among the
        # stories sighted within the window; a story is alerted once per destination
        # (``story_posts``), and later sightings are outbox rows of kind ``sighting`` whose
        # ``parent_id`` is that alert's row, which keeps where it landed (``posted``).
        f"""CREATE TABLE IF NOT EXISTS stories (
            id {d.serial_key},
            title TEXT NOT NULL,
            created_at {d.real} NOT NULL,
            last_at {d.real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS stories_last ON stories (last_at)",
        f"""CREATE TABLE IF NOT EXISTS sightings (
            id {d.serial_key},
            story_id BIGINT NOT NULL,
            feed_id TEXT NOT NULL,
            item_key TEXT NOT NULL,
            source TEXT NOT NULL,
            title TEXT NOT NULL,
            link TEXT,
            published {d.real},
            language TEXT,
            rules TEXT NOT NULL,
            signature TEXT NOT NULL,
            seen_at {d.real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS sightings_story ON sightings (story_id)",
        "CREATE INDEX IF NOT EXISTS sightings_seen ON sightings (seen_at)",
        """CREATE TABLE IF NOT EXISTS story_posts (
            story_id BIGINT NOT NULL,
            destination TEXT NOT NULL,
            outbox_id BIGINT NOT NULL,
            PRIMARY KEY (story_id, destination))""",
        "CREATE INDEX IF NOT EXISTS story_posts_outbox ON story_posts (outbox_id)",
        "ALTER TABLE outbox ADD COLUMN parent_id BIGINT",
        "ALTER TABLE outbox ADD COLUMN posted TEXT",
        "CREATE INDEX IF NOT EXISTS outbox_parent ON outbox (parent_id)"
        " WHERE parent_id IS NOT NULL",
        # Stories by exact link or title: superseded by ``stories``.
        "DROP TABLE IF EXISTS story_alerts",
    ]
    v10 = [
        # Caps: the alerts counted against each cap in each period (``count`` past the cap's
        # ``max`` folds an alert into the period's "N more"), one atomic upsert per alert.
        f"""CREATE TABLE IF NOT EXISTS cap_counts (
            cap_key TEXT NOT NULL,
            period_end {d.real} NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (cap_key, period_end))""",
        "CREATE INDEX IF NOT EXISTS cap_counts_end ON cap_counts (period_end)",
        # Spikes: each story a spike-watched rule matched, once (``story_rules``), counted in
        # the hour it first did (``rule_hours``, hours since the epoch); ``spikes`` is since
        # when (the hour) each rule's stories are counted, and when its spike alert was last
        # queued (at most one per window).
        """CREATE TABLE IF NOT EXISTS story_rules (
            story_id BIGINT NOT NULL,
            rule_id TEXT NOT NULL,
            PRIMARY KEY (story_id, rule_id))""",
        "CREATE INDEX IF NOT EXISTS story_rules_rule ON story_rules (rule_id)",
        """CREATE TABLE IF NOT EXISTS rule_hours (
            rule_id TEXT NOT NULL,
            hour INTEGER NOT NULL,
            stories INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (rule_id, hour))""",
        "CREATE INDEX IF NOT EXISTS rule_hours_hour ON rule_hours (hour)",
        f"""CREATE TABLE IF NOT EXISTS spikes (
            rule_id TEXT PRIMARY KEY,
            since INTEGER NOT NULL,
            fired_at {d.real})""",
        # What the attention budget did to each rule's alerts, by day (``newswatch stats``).
        "ALTER TABLE rule_days ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE rule_days ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE rule_days ADD COLUMN capped INTEGER NOT NULL DEFAULT 0",
    ]
    return [
        (1, v1),
        (2, v2),
        (3, v3),
        (4, v4),
        (5, v5),
        (6, v6),
        (7, v7),
        (8, v8),
        (9, v9),
        (10, v10),
    ]


def _version_mismatch(current: int) -> str:
    if current > SCHEMA_VERSION:
        return (
            f"schema version {current}, newer than this newswatch's "
            f"({SCHEMA_VERSION}): upgrade newswatch"
        )
    if current == 0:
        return (
            "no newswatch tables (is it the right database?):"
            " `newswatch once` or `run` creates them"
        )
    return (
        f"schema version {current}, older than this newswatch's "
        f"({SCHEMA_VERSION}): `newswatch once` or `run` upgrades it (this command only reads)"
    )


def schema(d: Dialect) -> list[str]:
    """Every statement of the current schema, for a store that is never migrated (read-only)."""
    return [statement for _, statements in migrations(d) for statement in statements]


def _feed_state(row: Sequence[Any]) -> FeedState:
    return FeedState(
        feed_id=row[0],
        url=row[1],
        etag=row[2],
        last_modified=row[3],
        next_poll_at=from_epoch(row[4]),
        last_success_at=from_epoch(row[5]),
        last_attempt_at=from_epoch(row[6]),
        last_error=row[7],
        last_error_detail=row[8],
        consecutive_failures=row[9],
        failing_since=from_epoch(row[10]),
        failure_notified=bool(row[11]),
        warning=row[12],
        item_count=row[13],
        title=row[14],
        last_new_at=from_epoch(row[15]),
        silent_since=from_epoch(row[16]),
        usual_gap=row[17],
        silence_notified=bool(row[18]),
    )


def _outbox_entry(row: Sequence[Any], parents: Mapping[int, Parent]) -> OutboxEntry:
    """An outbox row as claimed: id, payload, attempts, created_at, next_attempt_at,
    also_reported_by, uncertain, first_attempt_at, kind, destination, feed_id, parent_id,
    digest."""
    also = tuple(json.loads(row[5]))
    notice = sighting = None
    if row[8] == "notice":
        title, text = notice_from_json(row[1])
        notice = Notice(row[9], row[10], title, text)
    elif row[8] == "sighting":
        sighting = sighting_from_json(row[1])
    return OutboxEntry(
        id=row[0],
        alert=None if row[8] != "alert" else alert_from_json(row[1], also),
        sighting=sighting,
        parent=None if row[11] is None else parents.get(row[11]),
        attempts=row[2],
        created_at=from_epoch(row[3]),  # type: ignore[arg-type]
        next_attempt_at=from_epoch(row[4]),  # type: ignore[arg-type]
        also_reported_by=also,
        uncertain=bool(row[6]),
        first_attempt_at=from_epoch(row[7]),
        notice=notice,
        digest=bool(row[12]),
    )


def _row_key(q: QueuedAlert) -> tuple[str, str, str]:
    """What identifies an alert row (and orders rows alike in every replica)."""
    return q.alert.rule_id, q.alert.destination, q.alert.item_key


def _chunks(rows: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _values(rows: int, columns: int) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([row] * rows)


@dataclass(frozen=True, slots=True)
class _Post:
    """A story's alert to one destination: its outbox row, and whether it is still unsent and
    not being sent (a sighting then joins its "also reported by")."""

    outbox_id: int
    open: bool = False


@dataclass(frozen=True, slots=True)
class _Told:
    """The story an item told: its id, its outlets so far, and why the item is a follow-up."""

    story_id: int
    title: str  # the story's, as first alerted
    outlets: int
    follow_up: str | None

    def sighting(self, alert: Alert, seen: StorySighting) -> Sighting:
        return Sighting(
            story_id=self.story_id,
            destination=alert.destination,
            source=alert.source,
            title=alert.title,
            link=alert.link,
            published=alert.published,
            first_seen=alert.first_seen,
            rule_titles=(alert.rule_title, *alert.also_matched),
            terms_as_written=alert.shown_terms,
            outlets=self.outlets,
            follow_up=self.follow_up,
            language=seen.language,
            story_title=self.title,
        )


class SqlStore:
    """:class:`bot.store.Store` over one DB-API connection in autocommit mode.

    The connection is shared by the threads of one process (notifiers reserve
    rate-limit slots from worker threads), so every statement and transaction
    holds a lock.
    """

    def __init__(self, conn: Any, dialect: Dialect, *, read_only: bool = False) -> None:
        self._conn = conn
        self._d = dialect
        self._read_only = read_only
        self._lock = threading.RLock()
        self._index: StoryIndex | None = None  # the open stories, synced from the store
        self._index_window = 0.0
        self._synced = 0  # the last sighting id read into the index

    # -- plumbing -----------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._d.sql(sql), tuple(params))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._execute(sql, params).fetchall()

    def _transaction(self, body: Callable[[], T]) -> T:
        """Run ``body`` in one write transaction, re-running all of it after a deadlock,
        or a serialization failure (so it must only touch the store)."""
        if self._read_only:
            raise PermissionError("this store was opened read-only")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self._lock:
                self._conn.execute(self._d.begin_write)
                try:
                    result = body()
                except BaseException as err:
                    self._rollback()
                    if attempt == MAX_ATTEMPTS or not self._d.retryable(err):
                        raise
                else:
                    self._conn.execute("COMMIT")
                    return result
            # Back off outside the lock, with jitter, so the rivals spread out.
            time.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _rollback(self) -> None:
        """Roll back; a failure here (a dead connection) must not hide the error that led here."""
        with suppress(Exception):
            self._conn.execute("ROLLBACK")

    def _in(self, values: Sequence[Any]) -> str:
        return "(" + ", ".join("?" for _ in values) + ")"

    # -- schema -------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION`; concurrent callers apply each step once."""
        self._transaction(self._migrate)

    def _migrate(self) -> None:
        if self._d.migration_lock:
            self._execute(self._d.migration_lock)
        self._execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = self._version()
        if current > SCHEMA_VERSION:
            raise StoreError(_version_mismatch(current))
        for version, statements in migrations(self._d):
            if version > current:
                for statement in statements:
                    self._execute(statement)
                self._execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def check_version(self) -> None:
        """Fail unless the schema is this newswatch's: a read-only store cannot migrate, and
        reading an older schema would fail later on a missing column, less clearly."""
        with self._lock:
            current = self._version()
        if current != SCHEMA_VERSION:
            raise StoreError(_version_mismatch(current))

    def _version(self) -> int:
        (tables,) = self._execute(self._d.has_table, ("schema_version",)).fetchone()
        if not tables:
            return 0
        row = self._execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def ping(self) -> bool:
        try:
            self._query("SELECT 1")
        except Exception:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- feeds --------------------------------------------------------------
    def sync_feeds(self, feeds: Sequence[FeedRow], now: datetime) -> None:
        """Make the active feeds exactly ``feeds``, writing only rows that differ.

        Replicas starting together all run this: unchanged rows are not locked at
        all (claims go on), and changed rows are written in feed-id order, so
        concurrent syncs wait for each other instead of deadlocking.
        """
        wanted = {f.feed_id: f.url for f in feeds}

        def body() -> None:
            known = {
                r[0]: (r[1], bool(r[2]))
                for r in self._execute("SELECT feed_id, url, active FROM feeds").fetchall()
            }
            for feed_id in sorted(wanted.keys() | known.keys()):
                url, (old_url, active) = wanted.get(feed_id), known.get(feed_id, (None, False))
                if url is None:
                    if active:
                        self._execute(
                            "UPDATE feeds SET active = 0, inactive_since = ?"
                            " WHERE feed_id = ? AND active = 1",
                            (to_epoch(now), feed_id),
                        )
                elif not active or url != old_url:
                    self._execute(
                        "INSERT INTO feeds (feed_id, url, next_poll_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (feed_id) DO UPDATE SET active = 1, inactive_since = NULL,"
                        " url = excluded.url,"
                        " etag = CASE WHEN feeds.url = excluded.url THEN feeds.etag END,"
                        " last_modified = CASE WHEN feeds.url = excluded.url"
                        " THEN feeds.last_modified END",
                        (feed_id, url, to_epoch(now)),
                    )

        self._transaction(body)

    def feed_states(self) -> list[FeedState]:
        rows = self._query(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE active = 1 ORDER BY feed_id")
        return [_feed_state(r) for r in rows]

    def claim_feeds(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, due_only: bool
    ) -> list[FeedState]:
        t = to_epoch(now)
        due = " AND next_poll_at <= ?" if due_only else ""
        params: list[Any] = [owner, t + lease_seconds, t] + ([t] if due_only else []) + [limit]
        rows = self._transaction(
            lambda: self._execute(
                "UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE feed_id IN ("
                " SELECT feed_id FROM feeds WHERE active = 1"
                " AND (lease_until IS NULL OR lease_until < ?)" + due + " ORDER BY next_poll_at,"
                " feed_id LIMIT ?" + self._d.lock_claimed + f") RETURNING {_FEED_COLUMNS}",
                params,
            ).fetchall()
        )
        return sorted((_feed_state(r) for r in rows), key=lambda s: s.feed_id)

    def renew_feeds(self, feed_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        return set(
            self._update_held(
                "feeds", "feed_id", "active = 1", feed_ids, owner, "lease_until = ?", until
            )
        )

    def release_feeds(self, feed_ids: Sequence[str], owner: str) -> None:
        def body() -> None:
            for chunk in _chunks(sorted(set(feed_ids))):
                self._execute(
                    "UPDATE feeds SET lease_owner = NULL, lease_until = NULL"
                    f" WHERE lease_owner = ? AND feed_id IN {self._in(chunk)}",
                    (owner, *chunk),
                )

        if feed_ids:
            self._transaction(body)

    def _update_held(
        self,
        table: str,
        key: str,
        alive: str,
        ids: Sequence[Any],
        owner: str,
        sets: str,
        at: datetime,
    ) -> list[Any]:
        """Apply ``sets`` (one ``?``, bound to ``at``) to the ``ids`` ``owner`` still holds;
        returns them (a row taken over by another owner, or finished meanwhile, is left alone)."""

        def body() -> list[Any]:
            held: list[Any] = []
            for chunk in _chunks(sorted(set(ids))):
                rows = self._execute(
                    f"UPDATE {table} SET {sets} WHERE {alive} AND lease_owner = ?"
                    f" AND {key} IN {self._in(chunk)} RETURNING {key}",
                    (to_epoch(at), owner, *chunk),
                ).fetchall()
                held.extend(r[0] for r in rows)
            return held

        return self._transaction(body) if ids else []

    def seen_keys(self, feed_id: str, keys: Sequence[str]) -> set[str]:
        seen: set[str] = set()
        for chunk in _chunks(sorted(set(keys))):
            rows = self._query(
                f"SELECT item_key FROM items WHERE feed_id = ? AND item_key IN {self._in(chunk)}",
                (feed_id, *chunk),
            )
            seen.update(r[0] for r in rows)
        return seen

    def seen_titles(self, feed_id: str, keys: Sequence[str]) -> dict[str, SeenTitle]:
        seen: dict[str, SeenTitle] = {}
        for chunk in _chunks(sorted(set(keys))):
            rows = self._query(
                "SELECT item_key, title, fingerprint, link FROM items WHERE feed_id = ?"
                f" AND item_key IN {self._in(chunk)}",
                (feed_id, *chunk),
            )
            seen.update((key, SeenTitle(title or "", fp, link)) for key, title, fp, link in rows)
        return seen

    def sightings(self, feed_id: str, limit: int) -> list[datetime]:
        rows = self._query(
            "SELECT DISTINCT first_seen FROM items WHERE feed_id = ?"
            " ORDER BY first_seen DESC LIMIT ?",
            (feed_id, limit),
        )
        return [at for (t,) in rows if (at := from_epoch(t)) is not None]

    def record_poll(self, outcome: PollOutcome) -> PollRecord:
        return self._transaction(lambda: self._record_poll(outcome))

    def _record_poll(self, o: PollOutcome) -> PollRecord:
        if not self._update_feed(o):
            return PollRecord(applied=False)
        new = self._insert_items(o)
        if o.error is None and not o.not_modified:
            self._refresh_served(o)
        self._insert_notices(o.notices, o.at)
        wanted = sorted(
            (q for q in o.alerts if q.alert.item_key in new),
            key=_row_key,
        )
        queued, duplicates, gained = self._queue(wanted, o)
        queued += self._spike_alerts(o, gained)
        if new:
            self._execute(
                "UPDATE feeds SET item_count = item_count + ?, last_new_at = ? WHERE feed_id = ?",
                (len(new), to_epoch(o.at), o.feed_id),
            )
        self._count_day(o, new, queued)
        return PollRecord(
            applied=True,
            new_items=len(new),
            queued=len(queued),
            duplicates=duplicates,
            queued_by_rule=dict(Counter(q.alert.rule_id for q in queued)),
            held=dict(Counter((q.alert.destination, q.alert.held) for q in queued if q.alert.held)),
            spikes={q.alert.rule_id: q.alert.spike for q in queued if q.alert.spike is not None},
        )

    def _count_day(self, o: PollOutcome, new: set[str], queued: Sequence[QueuedAlert]) -> None:
        """Add this poll to its UTC day's counters: per rule its matches, and its alert rows
        as queued (how many urgent, held by quiet hours, folded by a cap). Last in the
        transaction, and rules in id order: every poll adds to the same rule rows, so they
        are held as briefly as can be and always taken in one order (no deadlock between
        replicas)."""
        day = o.at.astimezone(UTC).date().isoformat()
        if new and not o.baseline:
            self._execute(
                "INSERT INTO feed_days (feed_id, day, items) VALUES (?, ?, ?)"
                " ON CONFLICT (feed_id, day) DO UPDATE"
                " SET items = feed_days.items + excluded.items",
                (o.feed_id, day, len(new)),
            )
        matches = Counter(rule_id for rule_id, key in set(o.matched) if key in new)
        alerts = Counter(q.alert.rule_id for q in queued)
        urgent = Counter(q.alert.rule_id for q in queued if q.alert.priority == "urgent")
        held = Counter(q.alert.rule_id for q in queued if q.alert.held == "quiet")
        capped = Counter(q.alert.rule_id for q in queued if q.alert.held == "cap")
        rows = [
            (r, day, matches[r], alerts[r], urgent[r], held[r], capped[r])
            for r in sorted(matches.keys() | alerts.keys())
        ]
        for chunk in _chunks(rows):
            self._execute(
                "INSERT INTO rule_days (rule_id, day, matches, alerts, urgent, held, capped)"
                f" VALUES {_values(len(chunk), 7)} ON CONFLICT (rule_id, day) DO UPDATE SET"
                " matches = rule_days.matches + excluded.matches,"
                " alerts = rule_days.alerts + excluded.alerts,"
                " urgent = rule_days.urgent + excluded.urgent,"
                " held = rule_days.held + excluded.held,"
                " capped = rule_days.capped + excluded.capped",
                [v for row in chunk for v in row],
            )

    def _update_feed(self, o: PollOutcome) -> bool:
        t = to_epoch(o.at)
        if o.error is None:
            sets = (
                "last_success_at = ?, last_error = NULL, last_error_detail = NULL,"
                " consecutive_failures = 0, failing_since = NULL, warning = ?"
            )
            params: list[Any] = [t, o.warning]
            if not o.not_modified:
                sets += ", etag = ?, last_modified = ?, title = COALESCE(?, title), content_at = ?"
                params += [o.etag, o.last_modified, o.title, t]
        else:
            sets = (
                "last_error = ?, last_error_detail = ?,"
                " consecutive_failures = consecutive_failures + 1,"
                " failing_since = COALESCE(failing_since, ?)"
            )
            params = [o.error, o.error_detail, t]
        if o.failure_notified is not None:
            sets += ", failure_notified = ?"
            params.append(int(o.failure_notified))
        if o.silence is not None:
            sets += ", silent_since = ?, usual_gap = ?, silence_notified = ?"
            quiet = o.silence
            params += [to_epoch(quiet.since), quiet.usual_gap, int(quiet.notified)]
        cursor = self._execute(
            f"UPDATE feeds SET {sets}, last_attempt_at = ?, next_poll_at = ?,"
            " lease_owner = NULL, lease_until = NULL WHERE feed_id = ? AND lease_owner = ?",
            (*params, t, to_epoch(o.next_poll_at), o.feed_id, o.owner),
        )
        return cursor.rowcount == 1

    def _insert_items(self, o: PollOutcome) -> set[str]:
        """Insert the items not seen yet (multi-row, sorted by key); returns their keys. A
        reused key inserted anew makes its row describe the story it now tells."""
        items = sorted({i.key: i for i in o.items}.values(), key=lambda i: i.key)
        first_seen = to_epoch(o.at)
        new: set[str] = set()
        for chunk in _chunks(items):
            params = [
                value
                for i in chunk
                for value in (
                    o.feed_id,
                    i.key,
                    i.title[:TITLE_KEPT],
                    i.link,
                    to_epoch(i.published),
                    first_seen,
                    first_seen,
                    o.fingerprints.get(i.key),
                )
            ]
            rows = self._execute(
                "INSERT INTO items (feed_id, item_key, title, link, published, first_seen,"
                f" last_seen, fingerprint) VALUES {_values(len(chunk), 8)}"
                " ON CONFLICT DO NOTHING RETURNING item_key",
                params,
            ).fetchall()
            new.update(r[0] for r in rows)
        by_key = {i.key: i for i in items}
        for key in sorted(new & o.reused.keys()):
            told = by_key[key]
            self._execute(
                "UPDATE items SET title = ?, link = ?, fingerprint = ?"
                " WHERE feed_id = ? AND item_key = ?",
                (
                    told.title[:TITLE_KEPT],
                    told.link,
                    o.fingerprints.get(key),
                    o.feed_id,
                    o.reused[key],
                ),
            )
        return new

    def _refresh_served(self, o: PollOutcome) -> None:
        """Note that the feed still serves these items (only rows not noted for a day)."""
        t = to_epoch(o.at)
        keys = sorted(set(o.served) | {i.key for i in o.items})
        for chunk in _chunks(keys):
            self._execute(
                "UPDATE items SET last_seen = ? WHERE feed_id = ? AND last_seen < ?"
                f" AND item_key IN {self._in(chunk)}",
                (t, o.feed_id, t - REFRESH_AFTER, *chunk),
            )

    def _insert_notices(self, notices: Sequence[Notice], now: datetime) -> None:
        t = to_epoch(now)
        for chunk in _chunks(notices):
            params = [
                value
                for n in chunk
                for value in (n.destination, n.feed_id, notice_to_json(n.title, n.text), t, t)
            ]
            self._execute(
                "INSERT INTO outbox (kind, rule_id, item_key, destination, feed_id, payload,"
                " created_at, next_attempt_at) VALUES "
                + ", ".join(["('notice', '', '', ?, ?, ?, ?, ?)"] * len(chunk)),
                params,
            )

    def _queue(
        self, wanted: Sequence[QueuedAlert], o: PollOutcome
    ) -> tuple[list[QueuedAlert], int, set[str]]:
        """Queue ``wanted`` once per story and destination, each new row counted against its
        caps (:meth:`_cap`); returns the alert rows queued (as queued), the sightings of
        stories alerted before (replies, or "also reported by"), and the spike-watched rules
        that matched a story new to them.

        Story decisions read what other polls committed, so they are made under a lock
        that every poll queuing story alerts takes (PostgreSQL: an advisory lock held to
        the commit; SQLite has one writer): two replicas polling two copies of one story
        never both alert it. Overflow alerts stand for many items: they are no story.
        """
        t = to_epoch(o.at)
        told = [q for q in wanted if not q.alert.is_overflow and q.alert.item_key in o.stories]
        new_rows = [q for q in wanted if q.alert.is_overflow or q.alert.item_key not in o.stories]
        if not told:
            rows = self._cap(new_rows)
            self._insert_outbox(rows, {}, o.at)
            return rows, 0, set()
        if self._d.story_lock:
            self._execute(self._d.story_lock)
        stories, gained = self._stories_of(told, o)
        posts = self._posts(
            {(stories[q.alert.item_key].story_id, q.alert.destination) for q in told}, t
        )
        reported: dict[int, list[str]] = defaultdict(list)  # outbox row (or -1 - new row) → sources
        sightings: list[tuple[QueuedAlert, Sighting, int]] = []
        new_posts: dict[tuple[int, str], int] = {}
        for q in told:
            a = q.alert
            story = stories[a.item_key]
            target = (story.story_id, a.destination)
            if target in new_posts:
                reported[-1 - new_posts[target]].append(a.source)
                continue
            post = posts.get(target)
            if post is None:
                new_posts[target] = len(new_rows)
                new_rows.append(replace(q, alert=replace(a, outlets=story.outlets)))
            elif post.open and story.follow_up is None:
                reported[post.outbox_id].append(a.source)
            else:
                sightings.append((q, story.sighting(a, o.stories[a.item_key]), post.outbox_id))
        rows = self._cap(new_rows)
        ids = self._insert_outbox(
            rows, {-1 - n: sources for n, sources in reported.items() if n < 0}, o.at
        )
        self._insert_posts({target: ids[n] for target, n in new_posts.items()})
        self._insert_sightings(sightings, o.at)
        self._note_also_reported({n: sources for n, sources in reported.items() if n >= 0})
        return rows, len(wanted) - len(new_rows), gained

    def _cap(self, rows: Sequence[QueuedAlert]) -> list[QueuedAlert]:
        """``rows`` as they are queued once counted against their caps: a row going out on
        its own now (not a digest row, not urgent, not an overflow) adds one to each of its
        caps' counters, and a row past any cap's ``max`` waits for the latest release of the
        caps it exceeds, as a digest row held by the cap.

        Each counter is one upsert adding all of this poll's rows at once (in key order, so
        replicas lock the counters in one order), atomic without the story lock: the rows
        take the numbers from the old count on, in (rule, destination, item) order."""
        counted = sorted(
            (
                n
                for n, q in enumerate(rows)
                if q.caps
                and not q.digest
                and not q.alert.is_overflow
                and q.alert.priority != "urgent"
            ),
            key=lambda n: _row_key(rows[n]),
        )
        counters: dict[tuple[str, float], list[tuple[int, CapCount]]] = defaultdict(list)
        for n in counted:
            for cap in rows[n].caps:
                counters[cap.key, to_epoch(cap.period_end)].append((n, cap))
        exceeded: dict[int, list[CapCount]] = defaultdict(list)
        for (key, period_end), users in sorted(counters.items()):
            (total,) = self._execute(
                "INSERT INTO cap_counts (cap_key, period_end, count) VALUES (?, ?, ?)"
                " ON CONFLICT (cap_key, period_end) DO UPDATE"
                " SET count = cap_counts.count + excluded.count RETURNING count",
                (key, period_end, len(users)),
            ).fetchone()
            for count, (n, cap) in enumerate(users, int(total) - len(users) + 1):
                if count > cap.max:
                    exceeded[n].append(cap)
        queued = list(rows)
        for n, caps in exceeded.items():
            q = rows[n]
            queued[n] = replace(
                q,
                digest=True,
                deliver_at=max(c.release_at for c in caps),
                alert=replace(q.alert, held="cap"),
            )
        return queued

    def _spike_alerts(self, o: PollOutcome, gained: set[str]) -> list[QueuedAlert]:
        """Queue the spike alerts this poll's stories make: for each watched rule that matched
        a story new to it, its stories in the window against their usual count
        (:func:`bot.alerts.attention.spike_facts`; counted since the rule's first story).
        A rule fires at most once per window across replicas: its firing time is updated
        only when the last firing is a window old, and the update says whether it was."""
        t = to_epoch(o.at)
        now_hour = hour_of(o.at)
        queued: list[QueuedAlert] = []
        for watch in sorted(o.spikes, key=lambda w: w.rule_id):
            if watch.rule_id not in gained or not watch.alerts:
                continue
            window = watch.spike.window
            self._execute(
                "INSERT INTO spikes (rule_id, since) VALUES (?, ?)"
                " ON CONFLICT (rule_id) DO NOTHING",
                (watch.rule_id, now_hour),
            )
            (since,) = self._execute(
                "SELECT since FROM spikes WHERE rule_id = ?", (watch.rule_id,)
            ).fetchone()
            hours = {
                int(hour): int(stories)
                for hour, stories in self._execute(
                    "SELECT hour, stories FROM rule_hours WHERE rule_id = ? AND hour >= ?",
                    (watch.rule_id, now_hour - RULE_HOURS_KEPT),
                ).fetchall()
            }
            facts = spike_facts(hours, o.at, watch.spike, int(since))
            if facts is None:
                continue
            if not self._execute(
                "UPDATE spikes SET fired_at = ? WHERE rule_id = ?"
                " AND (fired_at IS NULL OR fired_at <= ?)",
                (t, watch.rule_id, t - window),
            ).rowcount:
                continue
            top = self._top_stories(watch.rule_id, t - window)
            key = f"spike:{watch.rule_id}:{int(t)}"
            for template in sorted(watch.alerts, key=lambda q: q.alert.destination):
                q = spike_alert(
                    template,
                    facts,
                    [Folded(title, link, (template.alert.rule_title,)) for title, link in top],
                )
                queued.append(replace(q, alert=replace(q.alert, item_key=key)))
        self._insert_outbox(queued, {}, o.at)
        return queued

    def _top_stories(self, rule_id: str, since: float) -> list[tuple[str, str | None]]:
        """The rule's stories sighted since ``since``: (title, link of the first sighting),
        told by the most outlets first, then the latest sighted."""
        rows = self._execute(
            "SELECT s.title, (SELECT f.link FROM sightings f WHERE f.story_id = s.id"
            "  ORDER BY f.seen_at, f.id LIMIT 1),"
            " (SELECT count(DISTINCT g.source) FROM sightings g WHERE g.story_id = s.id) AS outlets"
            " FROM story_rules r JOIN stories s ON s.id = r.story_id"
            " WHERE r.rule_id = ? AND s.last_at >= ?"
            " ORDER BY outlets DESC, s.last_at DESC, s.id DESC LIMIT ?",
            (rule_id, since, SPIKE_LISTED),
        ).fetchall()
        return [(title, link) for title, link, _ in rows]

    def _stories_of(
        self, told: Sequence[QueuedAlert], o: PollOutcome
    ) -> tuple[dict[str, _Told], set[str]]:
        """Each matched item's story: the open story its signature joins, else a new one;
        records the item as a sighting of it. Items go in key order (one order in every
        replica); an item may join a story an earlier item of this poll opened.

        A story is counted once for each spike-watched rule that matched it, in the hour
        of the poll; returns the stories by item key and the rules that gained one."""
        now, t = o.at, to_epoch(o.at)
        index = self._synced_stories(now, o.story_window)
        local = StoryIndex(o.story_window)  # this transaction's: committed, it is synced
        first: dict[str, Alert] = {}
        for q in told:
            first.setdefault(q.alert.item_key, q.alert)
        rules: dict[str, set[str]] = defaultdict(set)
        for rule_id, key in o.matched:
            rules[key].add(rule_id)
        out: dict[str, _Told] = {}
        watched = {w.rule_id for w in o.spikes}
        gained: Counter[str] = Counter()
        for key in sorted(first):
            alert, seen = first[key], o.stories[key]
            matched = rules[key] or {alert.rule_id}
            found = index.find(seen.signature, now) or local.find(seen.signature, now)
            known = self._story(found, t) if found is not None else None
            if known is None:
                (story_id,) = self._execute(
                    "INSERT INTO stories (title, created_at, last_at) VALUES (?, ?, ?)"
                    " RETURNING id",
                    (alert.title[:TITLE_KEPT], t, t),
                ).fetchone()
                title, reason = alert.title[:TITLE_KEPT], None
            else:
                story_id, title, last_at, earlier = known
                reason = follow_up(earlier, last_at, seen.title_terms, now)
            local.add(story_id, seen.signature, now)
            self._execute(
                "INSERT INTO sightings (story_id, feed_id, item_key, source, title, link,"
                " published, language, rules, signature, seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    story_id,
                    o.feed_id,
                    key,
                    seen.source,
                    alert.title[:TITLE_KEPT],
                    alert.link,
                    to_epoch(alert.published),
                    seen.language,
                    json.dumps(sorted(matched)),
                    seen.signature.to_json(),
                    t,
                ),
            )
            (outlets,) = self._execute(
                "SELECT count(DISTINCT source) FROM sightings WHERE story_id = ?", (story_id,)
            ).fetchone()
            out[key] = _Told(story_id, title, int(outlets), reason)
            for rule_id in sorted(matched & watched):
                if self._execute(
                    "INSERT INTO story_rules (story_id, rule_id) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (story_id, rule_id),
                ).rowcount:
                    gained[rule_id] += 1
        hour = hour_of(now)
        for rule_id in sorted(gained):
            self._execute(
                "INSERT INTO rule_hours (rule_id, hour, stories) VALUES (?, ?, ?)"
                " ON CONFLICT (rule_id, hour) DO UPDATE"
                " SET stories = rule_hours.stories + excluded.stories",
                (rule_id, hour, gained[rule_id]),
            )
        return out, set(gained)

    def _story(self, story_id: int, t: float) -> tuple[int, str, datetime, list[Signature]] | None:
        """An open story as a new sighting joins it: its title, its latest sighting and the
        signatures of its latest tellings (what a follow-up is new against); None when it
        was pruned meanwhile (the item then opens a story of its own)."""
        row = self._execute(
            "SELECT title, last_at FROM stories WHERE id = ?", (story_id,)
        ).fetchone()
        if row is None:
            return None
        earlier = [
            Signature.from_json(r[0])
            for r in self._execute(
                "SELECT signature FROM sightings WHERE story_id = ? ORDER BY id DESC LIMIT ?",
                (story_id, FOLLOW_UP_MEMORY),
            ).fetchall()
        ]
        self._execute(
            f"UPDATE stories SET last_at = {self._d.greatest}(last_at, ?) WHERE id = ?",
            (t, story_id),
        )
        return story_id, row[0], from_epoch(row[1]), earlier  # type: ignore[return-value]

    def _synced_stories(self, now: datetime, window: float) -> StoryIndex:
        """The open stories, as committed: read whole once, then only the sightings added
        since (sightings are added under the story lock, so ids commit in order)."""
        if self._index is None or self._index_window != window:
            self._index, self._index_window = StoryIndex(window), window
            (top,) = self._execute("SELECT COALESCE(max(id), 0) FROM sightings").fetchone()
            rows = self._execute(
                "SELECT s.id, s.story_id, s.signature, s.seen_at FROM sightings s"
                " JOIN stories t ON t.id = s.story_id WHERE t.last_at >= ? ORDER BY s.id",
                (to_epoch(now) - window,),
            ).fetchall()
            self._synced = int(top)
        else:
            rows = self._execute(
                "SELECT id, story_id, signature, seen_at FROM sightings WHERE id > ? ORDER BY id",
                (self._synced,),
            ).fetchall()
        for sighting_id, story_id, signature, seen_at in rows:
            self._index.add(story_id, Signature.from_json(signature), from_epoch(seen_at))  # type: ignore[arg-type]
            self._synced = max(self._synced, sighting_id)
        self._index.expire(now)
        return self._index

    def _posts(self, targets: set[tuple[int, str]], t: float) -> dict[tuple[int, str], _Post]:
        """The live alerts already queued for these (story, destination)s: an alert given up
        on (dead) or pruned is none, and the story is alerted to that destination anew.
        The unsent ones nobody is sending are locked until the commit: a sighting is added
        to such an alert's "also reported by", never to one a deliverer may be sending (that
        gets a sighting row, which waits for it)."""
        posts: dict[tuple[int, str], int] = {}
        for story_id, destination in sorted(targets):
            row = self._execute(
                "SELECT p.outbox_id FROM story_posts p"
                " JOIN outbox o ON o.id = p.outbox_id AND o.status <> 'dead'"
                " WHERE p.story_id = ? AND p.destination = ?",
                (story_id, destination),
            ).fetchone()
            if row is not None:
                posts[story_id, destination] = row[0]
        locked: set[int] = set()
        for chunk in _chunks(sorted(set(posts.values()))):
            locked.update(
                r[0]
                for r in self._execute(
                    f"SELECT id FROM outbox WHERE id IN {self._in(chunk)} AND status = 'pending'"
                    " AND sending = 0 AND (lease_until IS NULL OR lease_until < ?)"
                    " ORDER BY id" + self._d.lock_rows,
                    (*chunk, t),
                ).fetchall()
            )
        return {k: _Post(outbox_id, outbox_id in locked) for k, outbox_id in posts.items()}

    def _insert_posts(self, posts: Mapping[tuple[int, str], int]) -> None:
        """Point each (story, destination) at its alert; one that pointed at an alert given
        up on or pruned points at the new one."""
        for (story_id, destination), outbox_id in sorted(posts.items()):
            self._execute(
                "INSERT INTO story_posts (story_id, destination, outbox_id) VALUES (?, ?, ?)"
                " ON CONFLICT (story_id, destination) DO UPDATE SET outbox_id = excluded.outbox_id",
                (story_id, destination, outbox_id),
            )

    def _insert_sightings(
        self, rows: Sequence[tuple[QueuedAlert, Sighting, int]], now: datetime
    ) -> None:
        for q, sighting, parent_id in rows:
            a = q.alert
            self._execute(
                "INSERT INTO outbox (kind, rule_id, destination, feed_id, item_key, payload,"
                " digest, created_at, next_attempt_at, parent_id)"
                " VALUES ('sighting', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    a.rule_id,
                    a.destination,
                    a.feed_id,
                    a.item_key,
                    sighting_to_json(sighting),
                    int(q.digest),
                    to_epoch(now),
                    to_epoch(q.deliver_at),
                    parent_id,
                ),
            )

    def _insert_outbox(
        self, rows: Sequence[QueuedAlert], reported: Mapping[int, list[str]], now: datetime
    ) -> list[int]:
        """Insert ``rows`` (with the also-reported sources of each, by index); returns their
        ids, in order."""
        ids: dict[tuple[str, str, str], int] = {}
        for start, chunk in enumerate(_chunks(rows)):
            params: list[Any] = []
            for n, q in enumerate(chunk, start * CHUNK):
                a = q.alert
                also = list(dict.fromkeys(s for s in reported.get(n, []) if s != a.source))
                params += [
                    a.rule_id,
                    a.destination,
                    a.feed_id,
                    a.item_key,
                    alert_to_json(a),
                    int(q.digest),
                    to_epoch(now),
                    to_epoch(q.deliver_at),
                    json.dumps(also, ensure_ascii=False),
                ]
            # RETURNING order is unspecified: rows are matched back by their unique columns.
            for row in self._execute(
                "INSERT INTO outbox (rule_id, destination, feed_id, item_key, payload, digest,"
                f" created_at, next_attempt_at, also_reported_by) VALUES {_values(len(chunk), 9)}"
                " RETURNING id, rule_id, destination, item_key",
                params,
            ).fetchall():
                ids[row[1], row[2], row[3]] = row[0]
        return [ids[_row_key(q)] for q in rows]

    def _note_also_reported(self, sources_by_id: dict[int, list[str]]) -> None:
        """Add sources to existing outbox rows, locked in id order (no lost update, no deadlock)."""
        for outbox_id in sorted(sources_by_id):
            row = self._execute(
                "SELECT also_reported_by FROM outbox WHERE id = ?" + self._d.lock_rows,
                (outbox_id,),
            ).fetchone()
            if row is None:
                continue
            known = json.loads(row[0])
            added = [s for s in sources_by_id[outbox_id] if s not in known]
            if added:
                self._execute(
                    "UPDATE outbox SET also_reported_by = ? WHERE id = ?",
                    (json.dumps([*known, *added], ensure_ascii=False), outbox_id),
                )

    # -- outbox -------------------------------------------------------------
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
        t = to_epoch(now)
        due = (
            "next_attempt_at <= ?"
            if due_only
            else ("(next_attempt_at <= ? OR NOT (digest = 1 AND attempts = 0))")
        )
        # A row still marked ``sending`` was in flight when its owner stopped answering:
        # whether that send landed is unknown, which the row now remembers.
        claim = (
            "UPDATE outbox SET lease_owner = ?, lease_until = ?,"
            f" uncertain = {self._d.greatest}(uncertain, sending), sending = 0 WHERE id IN ("
            f" SELECT id FROM outbox o WHERE status = 'pending' AND id > ? AND {due}"
            " AND (lease_until IS NULL OR lease_until < ?)"
            # A story's later sighting waits for its alert: it replies to that message.
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.id = o.parent_id"
            " AND p.status = 'pending')"
            + (" AND kind = 'sighting'" if sightings_only else "")
            + " AND digest = ? ORDER BY id LIMIT ?"
            + self._d.lock_claimed
            + ") RETURNING id, payload, attempts, created_at, next_attempt_at,"
            " also_reported_by, uncertain, first_attempt_at, kind, destination, feed_id,"
            " parent_id, digest"
        )

        def body() -> list[Any]:
            # Every due digest row at once, whatever ``limit``: a destination's digest (or what
            # quiet hours or a cap held) goes out as one message, never cut by a batch's size.
            held = self._execute(claim, (owner, t + lease_seconds, 0, t, t, 1, _ALL)).fetchall()
            params = (owner, t + lease_seconds, after_id, t, t, 0, limit)
            return [*held, *self._execute(claim, params).fetchall()]

        rows = self._transaction(body)
        parents = self._parents(sorted({r[11] for r in rows if r[11] is not None}))
        entries = [_outbox_entry(r, parents) for r in rows]
        outlets = self._outlets(sorted({e.sighting.story_id for e in entries if e.sighting}))
        # A sighting tells the story's outlets as of its send, not its queuing: a retried
        # older one never edits the count down.
        return sorted(
            (
                replace(e, sighting=replace(e.sighting, outlets=outlets[e.sighting.story_id]))
                if e.sighting is not None and e.sighting.story_id in outlets
                else e
                for e in entries
            ),
            key=lambda e: e.id,
        )

    def _outlets(self, story_ids: Sequence[int]) -> dict[int, int]:
        """The distinct sources of each story's sightings."""
        counts: dict[int, int] = {}
        for chunk in _chunks(story_ids):
            counts.update(
                (story_id, int(n))
                for story_id, n in self._query(
                    "SELECT story_id, count(DISTINCT source) FROM sightings"
                    f" WHERE story_id IN {self._in(chunk)} GROUP BY story_id",
                    chunk,
                )
            )
        return counts

    def _parents(self, ids: Sequence[int]) -> dict[int, Parent]:
        """The alerts of these rows (sightings' parents), with where each landed."""
        parents: dict[int, Parent] = {}
        for chunk in _chunks(ids):
            for outbox_id, payload, also, posted in self._query(
                "SELECT id, payload, also_reported_by, posted FROM outbox"
                f" WHERE id IN {self._in(chunk)}",
                chunk,
            ):
                parents[outbox_id] = Parent(
                    alert_from_json(payload, tuple(json.loads(also))),
                    posted_from_json(posted) if posted else None,
                )
        return parents

    def renew_outbox(self, entry_ids: Sequence[int], owner: str, until: datetime) -> set[int]:
        return set(
            self._update_held(
                "outbox", "id", "status = 'pending'", entry_ids, owner, "lease_until = ?", until
            )
        )

    def start_attempt(self, entry_ids: Sequence[int], owner: str, now: datetime) -> set[int]:
        """Note that ``owner`` starts sending these rows; returns those it still holds."""
        sets = "sending = 1, first_attempt_at = COALESCE(first_attempt_at, ?)"
        return set(
            self._update_held("outbox", "id", "status = 'pending'", entry_ids, owner, sets, now)
        )

    def _finish(self, ids: Sequence[int], owner: str, sets: str, params: Sequence[Any]) -> None:
        """Apply a mark to the rows ``owner`` still holds; rows whose lease was taken over
        (or already finished) are left alone, so a late writer changes nothing."""

        def body() -> None:
            for chunk in _chunks(sorted(set(ids))):
                self._execute(
                    f"UPDATE outbox SET {sets}, lease_owner = NULL, lease_until = NULL"
                    f" WHERE status = 'pending' AND lease_owner = ? AND id IN {self._in(chunk)}",
                    (*params, owner, *chunk),
                )

        if ids:
            self._transaction(body)

    def mark_sent(
        self, entry_ids: Sequence[int], owner: str, now: datetime, posted: Posted | None = None
    ) -> None:
        sets = "status = 'sent', sent_at = ?, attempts = attempts + 1, sending = 0"
        params: tuple[Any, ...] = (to_epoch(now),)
        if posted is not None:
            sets += ", posted = ?"
            params += (posted_to_json(posted),)
        self._finish(entry_ids, owner, sets, params)

    def mark_retry(
        self,
        entry_ids: Sequence[int],
        owner: str,
        next_attempt_at: datetime,
        error: str,
        *,
        uncertain: bool = False,
    ) -> None:
        self._finish(
            entry_ids,
            owner,
            "attempts = attempts + 1, next_attempt_at = ?, last_error = ?, sending = 0,"
            f" uncertain = {self._d.greatest}(uncertain, ?)",
            (to_epoch(next_attempt_at), error, int(uncertain)),
        )

    def mark_dead(self, entry_ids: Sequence[int], owner: str, now: datetime, error: str) -> None:
        self._finish(
            entry_ids,
            owner,
            "status = 'dead', attempts = attempts + 1, last_error = ?, sent_at = ?, sending = 0",
            (error, to_epoch(now)),
        )

    def release(self, entry_ids: Sequence[int], owner: str) -> None:
        # ``sending`` stays: a send cut short may still land, so the next claim checks first.
        self._finish(entry_ids, owner, "status = status", ())

    def outbox_counts(self, now: datetime) -> OutboxCounts:
        (row,) = self._query(
            "SELECT"
            " COALESCE(SUM(CASE WHEN status = 'pending' AND NOT (digest = 1 AND attempts = 0"
            "   AND next_attempt_at > ?) THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN status = 'pending' AND digest = 1 AND attempts = 0"
            "   AND next_attempt_at > ? THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0)"
            " FROM outbox",
            (to_epoch(now), to_epoch(now)),
        )
        return OutboxCounts(*(int(v) for v in row))

    # -- statistics ---------------------------------------------------------
    def daily_stats(self, since: date) -> DailyStats:
        first = since.isoformat()
        rules = self._query(
            "SELECT rule_id, day, matches, alerts, urgent, held, capped FROM rule_days"
            " WHERE day >= ?"
            " ORDER BY rule_id, day",
            (first,),
        )
        feeds = self._query(
            "SELECT feed_id, day, items FROM feed_days WHERE day >= ? ORDER BY feed_id, day",
            (first,),
        )
        last = self._query(
            "SELECT rule_id, max(day) FROM rule_days WHERE matches > 0 GROUP BY rule_id"
        )
        return DailyStats(
            rules=tuple(
                RuleDay(r[0], date.fromisoformat(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rules
            ),
            feeds=tuple(FeedDay(r[0], date.fromisoformat(r[1]), r[2]) for r in feeds),
            last_match={r[0]: date.fromisoformat(r[1]) for r in last},
        )

    def _prune_stats(self, before: datetime) -> int:
        """Delete the daily counters of the UTC days before ``before``'s."""
        first = before.astimezone(UTC).date().isoformat()

        def body() -> int:
            return sum(
                self._execute(f"DELETE FROM {table} WHERE day < ?", (first,)).rowcount
                for table in ("rule_days", "feed_days")
            )

        return self._transaction(body)

    def _prune_attention(self, now: datetime) -> int:
        """Delete the caps' counters of periods ended and the spike counts older than any
        baseline reads (``spikes`` keeps one row per rule: since when it is counted)."""
        lock = self._d.lock_claimed
        t = to_epoch(now)
        caps = self._delete_batches(
            "DELETE FROM cap_counts WHERE period_end < ? AND (cap_key, period_end) IN"
            f" (SELECT cap_key, period_end FROM cap_counts WHERE period_end < ? LIMIT ?{lock})",
            (t, t),
        )
        first = hour_of(now) - RULE_HOURS_KEPT
        hours = self._delete_batches(
            "DELETE FROM rule_hours WHERE hour < ? AND (rule_id, hour) IN"
            f" (SELECT rule_id, hour FROM rule_hours WHERE hour < ? LIMIT ?{lock})",
            (first, first),
        )
        return caps + hours

    def held_for_digest(self, now: datetime) -> list[DigestHeld]:
        rows = self._query(
            "SELECT destination, COUNT(*), MIN(next_attempt_at) FROM outbox"
            " WHERE status = 'pending' AND digest = 1 AND attempts = 0 AND next_attempt_at > ?"
            " GROUP BY destination ORDER BY destination",
            (to_epoch(now),),
        )
        held = []
        for destination, count, first in rows:
            closes_at = from_epoch(first)
            assert closes_at is not None, "a pending row always has its next attempt"
            held.append(DigestHeld(destination, int(count), closes_at))
        return held

    # -- rate limits --------------------------------------------------------
    def reserve_slot(self, key: str, interval: float, now: datetime) -> float:
        """Take the next free slot of ``key`` (at most one per ``interval`` seconds, across
        every process sharing the store); returns the seconds to wait before using it.

        ``interval`` 0 with a future ``now`` defers the key: no slot before ``now``.
        """
        t = to_epoch(now)
        assert t is not None
        (next_at,) = self._transaction(
            lambda: self._execute(
                "INSERT INTO rate_slots (slot_key, next_at) VALUES (?, ?)"
                " ON CONFLICT (slot_key) DO UPDATE"
                f" SET next_at = {self._d.greatest}(rate_slots.next_at, ?) + ? RETURNING next_at",
                (key, t + interval, t, interval),
            ).fetchone()
        )
        return max(0.0, next_at - interval - t)

    def take_turn(self, key: str, every: float, now: datetime) -> bool:
        """True when this caller takes ``key``'s turn: the first call, or the first once
        ``every`` seconds have passed since the last turn taken; a call that loses changes
        nothing (unlike :meth:`reserve_slot`, which pushes the next slot back)."""
        t = to_epoch(now)
        return self._transaction(
            lambda: (
                self._execute(
                    "INSERT INTO rate_slots (slot_key, next_at) VALUES (?, ?)"
                    " ON CONFLICT (slot_key) DO UPDATE SET next_at = excluded.next_at"
                    " WHERE rate_slots.next_at <= ? RETURNING next_at",
                    (key, t + every, t),
                ).fetchone()
                is not None
            )
        )

    # -- retention ----------------------------------------------------------
    def prune(self, now: datetime, sent_before: datetime, seen_before: datetime) -> PruneReport:
        """Delete what retention lets go, at most :data:`PRUNE_BATCH` rows a transaction.

        Every delete re-checks its condition on the row it deletes, so a row a concurrent
        poll refreshed (an item served again) or a rival pruner took is left alone; two
        pruners at once only share the work.
        """
        t, sent, seen = to_epoch(now), to_epoch(sent_before), to_epoch(seen_before)
        outbox = self._prune_outbox(sent)
        stories = self._prune_stories(seen)
        lock = self._d.lock_claimed
        slots = self._delete_batches(
            "DELETE FROM rate_slots WHERE next_at < ? AND slot_key IN"
            f" (SELECT slot_key FROM rate_slots WHERE next_at < ? LIMIT ?{lock})",
            (t - SLOT_GRACE, t - SLOT_GRACE),
        )
        feeds = self._prune_feeds(t, seen)
        items = 0
        for feed_id, content_at in self._query(
            "SELECT feed_id, content_at FROM feeds WHERE content_at IS NOT NULL ORDER BY feed_id"
        ):
            # Items in the latest content fetch were noted less than a day before it.
            items += self._prune_items(feed_id, min(seen, content_at - REFRESH_AFTER))
        for (feed_id,) in self._query(
            "SELECT DISTINCT feed_id FROM items i"
            " WHERE NOT EXISTS (SELECT 1 FROM feeds f WHERE f.feed_id = i.feed_id)"
        ):
            items += self._prune_items(feed_id, seen, orphan=True)
        stats = self._prune_stats(now - timedelta(days=STATS_DAYS)) + self._prune_attention(now)
        return PruneReport(outbox, stories, slots, items, feeds, stats)

    def _batches(self, batch: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        """Run ``batch`` (one transaction each) until it deletes fewer than a batch, at most
        :data:`PRUNE_ROUNDS` times; returns the sums of its (rows, related rows) counts."""
        rows = related = 0
        for _ in range(PRUNE_ROUNDS):
            deleted, also = self._transaction(batch)
            rows, related = rows + deleted, related + also
            if deleted < PRUNE_BATCH:
                break
        return rows, related

    def _delete_batches(self, statement: str, params: Sequence[Any]) -> int:
        """Run ``statement`` (its last parameter the batch size) until a batch comes short."""
        rows, _ = self._batches(
            lambda: (int(self._execute(statement, (*params, PRUNE_BATCH)).rowcount), 0)
        )
        return rows

    def _prune_outbox(self, sent_before: float | None) -> int:
        """Delete rows sent or dead before ``sent_before``, but an alert whose later sightings
        still wait to reply to it, and the story links to the rows deleted (a SQLite id can
        be given again to a new row: no story may point at it)."""

        def batch() -> tuple[int, int]:
            ids = sorted(
                r[0]
                for r in self._execute(
                    "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o"
                    " WHERE o.status <> 'pending' AND o.sent_at < ? AND NOT EXISTS"
                    " (SELECT 1 FROM outbox s WHERE s.parent_id = o.id AND s.status = 'pending')"
                    f" LIMIT ?{self._d.lock_claimed}) RETURNING id",
                    (sent_before, PRUNE_BATCH),
                ).fetchall()
            )
            for chunk in _chunks(ids):
                self._execute(
                    f"DELETE FROM story_posts WHERE outbox_id IN {self._in(chunk)}", chunk
                )
            return len(ids), 0

        return self._batches(batch)[0]

    def _prune_stories(self, before: float | None) -> int:
        """Delete the stories last sighted before ``before`` (as old as the items they were
        told by), with their sightings and where they were posted."""

        def batch() -> tuple[int, int]:
            ids = sorted(
                r[0]
                for r in self._execute(
                    "DELETE FROM stories WHERE last_at < ? AND id IN (SELECT id FROM stories"
                    f" WHERE last_at < ? LIMIT ?{self._d.lock_claimed}) RETURNING id",
                    (before, before, PRUNE_BATCH),
                ).fetchall()
            )
            for chunk in _chunks(ids):
                for table in ("sightings", "story_posts", "story_rules"):
                    self._execute(f"DELETE FROM {table} WHERE story_id IN {self._in(chunk)}", chunk)
            return len(ids), 0

        return self._batches(batch)[0]

    # -- stories ------------------------------------------------------------
    def recent_stories(self, since: datetime) -> list[StoryView]:
        stories = self._query(
            "SELECT id, title, created_at, last_at FROM stories WHERE last_at >= ?"
            " ORDER BY last_at DESC, id DESC",
            (to_epoch(since),),
        )
        out = []
        for story_id, title, created_at, last_at in stories:
            sightings = tuple(
                SightingView(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    from_epoch(r[4]),  # type: ignore[arg-type]
                    tuple(json.loads(r[5])),
                    r[6],
                )
                for r in self._query(
                    "SELECT feed_id, source, title, link, seen_at, rules, language FROM sightings"
                    " WHERE story_id = ? ORDER BY seen_at, id",
                    (story_id,),
                )
            )
            deliveries = tuple(
                DeliveryView(r[0], r[1] or "pruned", r[2] is not None, int(r[3]), int(r[4]))
                for r in self._query(
                    "SELECT p.destination, o.status, o.posted,"
                    " (SELECT count(*) FROM outbox s WHERE s.parent_id = p.outbox_id),"
                    " (SELECT count(*) FROM outbox s WHERE s.parent_id = p.outbox_id"
                    "  AND s.status = 'sent')"
                    " FROM story_posts p LEFT JOIN outbox o ON o.id = p.outbox_id"
                    " WHERE p.story_id = ? ORDER BY p.destination",
                    (story_id,),
                )
            )
            out.append(
                StoryView(
                    story_id,
                    title,
                    from_epoch(created_at),  # type: ignore[arg-type]
                    from_epoch(last_at),  # type: ignore[arg-type]
                    sightings,
                    deliveries,
                )
            )
        return out

    def _prune_feeds(self, now: float | None, seen_before: float | None) -> int:
        """Delete the feeds removed from the config before ``seen_before`` (their items go as
        orphans), so a feed added again baselines instead of alerting all it serves."""

        def body() -> int:
            # A feed removed before its removal was dated: its window starts now.
            self._execute(
                "UPDATE feeds SET inactive_since = ? WHERE active = 0 AND inactive_since IS NULL",
                (now,),
            )
            return int(
                self._execute(
                    "DELETE FROM feeds WHERE active = 0 AND inactive_since < ?", (seen_before,)
                ).rowcount
            )

        return self._transaction(body)

    def _prune_items(self, feed_id: str, before: float | None, *, orphan: bool = False) -> int:
        """Delete ``feed_id``'s items last served before ``before``, keeping its item count;
        ``orphan``: only while the feed has no row (added again, its items are its own)."""
        lock = self._d.lock_claimed
        alive = " AND NOT EXISTS (SELECT 1 FROM feeds WHERE feed_id = ?)" if orphan else ""

        def batch() -> tuple[int, int]:
            if not orphan:  # the feed row first, in the order a poll takes its locks
                self._execute(
                    "SELECT 1 FROM feeds WHERE feed_id = ?" + self._d.lock_rows, (feed_id,)
                )
            deleted = int(
                self._execute(
                    "DELETE FROM items WHERE feed_id = ? AND last_seen < ? AND item_key IN"
                    " (SELECT item_key FROM items WHERE feed_id = ? AND last_seen < ?"
                    f" LIMIT ?{lock})" + alive,
                    (feed_id, before, feed_id, before, PRUNE_BATCH)
                    + ((feed_id,) if orphan else ()),
                ).rowcount
            )
            if deleted and not orphan:
                self._execute(
                    "UPDATE feeds SET item_count = item_count - ? WHERE feed_id = ?",
                    (deleted, feed_id),
                )
            return deleted, 0

        rows, _ = self._batches(batch)
        return rows
