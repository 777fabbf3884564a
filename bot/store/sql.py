"""The store over any DB-API connection; what differs between engines is a :class:`Dialect`.

Every write is one explicit transaction. Claims are a single ``UPDATE … WHERE id
IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``, so two processes can
never claim the same row. Rows are inserted in key order, ``ON CONFLICT DO
NOTHING``, so concurrent writers neither deadlock nor duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.store import (
    FeedRow,
    FeedState,
    OutboxCounts,
    OutboxEntry,
    PollOutcome,
    PollRecord,
    QueuedAlert,
)
from bot.store.codec import alert_from_json, alert_to_json, from_epoch, to_epoch

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Dialect:
    """What one engine spells differently."""

    name: str
    placeholder: str  # "?" or "%s"
    begin_write: str  # how a writing transaction starts
    serial: str  # an auto-incrementing primary key column type
    real: str  # a double-precision column type
    lock_claimed: str  # appended to the claim's sub-select ("" or " FOR UPDATE SKIP LOCKED")
    migration_lock: str | None = None  # serialises concurrent migrations, where needed

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


_FEED_COLUMNS = (
    "feed_id, url, etag, last_modified, next_poll_at, last_success_at, last_attempt_at,"
    " last_error, last_error_detail, consecutive_failures, failing_since, failure_notified,"
    " warning, item_count, title"
)


def schema(d: Dialect) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
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
    )


class SqlStore:
    """:class:`bot.store.Store` over one DB-API connection in autocommit mode."""

    def __init__(self, conn: Any, dialect: Dialect, *, read_only: bool = False) -> None:
        self._conn = conn
        self._d = dialect
        self._read_only = read_only

    # -- plumbing -----------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._d.sql(sql), tuple(params))

    @contextmanager
    def _write(self) -> Iterator[None]:
        if self._read_only:
            raise PermissionError("this store was opened read-only")
        self._conn.execute(self._d.begin_write)
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _in(self, values: Sequence[Any]) -> str:
        return "(" + ", ".join("?" for _ in values) + ")"

    # -- schema -------------------------------------------------------------
    def migrate(self) -> None:
        with self._write():
            if self._d.migration_lock:
                self._execute(self._d.migration_lock)
            for statement in schema(self._d):
                self._execute(statement)
            row = self._execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the store has schema version {current}, newer than this newswatch "
                    f"({SCHEMA_VERSION}): upgrade newswatch"
                )
            if current < SCHEMA_VERSION:
                self._execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def ping(self) -> bool:
        try:
            self._execute("SELECT 1").fetchone()
        except Exception:
            return False
        return True

    def close(self) -> None:
        self._conn.close()

    # -- feeds --------------------------------------------------------------
    def sync_feeds(self, feeds: Sequence[FeedRow], now: datetime) -> None:
        with self._write():
            self._execute("UPDATE feeds SET active = 0")
            for feed in sorted(feeds, key=lambda f: f.feed_id):
                self._execute(
                    "INSERT INTO feeds (feed_id, url, next_poll_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (feed_id) DO UPDATE SET active = 1",
                    (feed.feed_id, feed.url, to_epoch(now)),
                )
                self._execute(
                    "UPDATE feeds SET url = ?, etag = NULL, last_modified = NULL"
                    " WHERE feed_id = ? AND url <> ?",
                    (feed.url, feed.feed_id, feed.url),
                )

    def feed_states(self) -> list[FeedState]:
        rows = self._execute(
            f"SELECT {_FEED_COLUMNS} FROM feeds WHERE active = 1 ORDER BY feed_id"
        ).fetchall()
        return [_feed_state(r) for r in rows]

    def claim_feeds(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, due_only: bool
    ) -> list[FeedState]:
        t = to_epoch(now)
        due = " AND next_poll_at <= ?" if due_only else ""
        params: list[Any] = [owner, t + lease_seconds, t] + ([t] if due_only else []) + [limit]
        with self._write():
            rows = self._execute(
                "UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE feed_id IN ("
                " SELECT feed_id FROM feeds WHERE active = 1"
                " AND (lease_until IS NULL OR lease_until < ?)" + due + " ORDER BY next_poll_at,"
                " feed_id LIMIT ?" + self._d.lock_claimed + f") RETURNING {_FEED_COLUMNS}",
                params,
            ).fetchall()
        return sorted((_feed_state(r) for r in rows), key=lambda s: s.feed_id)

    def seen_keys(self, feed_id: str, keys: Sequence[str]) -> set[str]:
        seen: set[str] = set()
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self._execute(
                f"SELECT item_key FROM items WHERE feed_id = ? AND item_key IN {self._in(chunk)}",
                (feed_id, *chunk),
            ).fetchall()
            seen.update(r[0] for r in rows)
        return seen

    def record_poll(self, outcome: PollOutcome) -> PollRecord:
        with self._write():
            if not self._update_feed(outcome):
                return PollRecord(applied=False)
            new = self._insert_items(outcome)
            queued = duplicates = 0
            wanted = sorted(
                (q for q in outcome.alerts if q.alert.item_key in new),
                key=lambda q: (q.alert.rule_id, q.alert.destination, q.story_keys),
            )
            for queued_alert in wanted:
                if self._queue(queued_alert, outcome.at):
                    queued += 1
                else:
                    duplicates += 1
            if new:
                self._execute(
                    "UPDATE feeds SET item_count = item_count + ? WHERE feed_id = ?",
                    (len(new), outcome.feed_id),
                )
        return PollRecord(applied=True, new_items=len(new), queued=queued, duplicates=duplicates)

    def _update_feed(self, o: PollOutcome) -> bool:
        t = to_epoch(o.at)
        if o.error is None:
            sets = (
                "last_success_at = ?, last_error = NULL, last_error_detail = NULL,"
                " consecutive_failures = 0, failing_since = NULL, warning = ?"
            )
            params: list[Any] = [t, o.warning]
            if not o.not_modified:
                sets += ", etag = ?, last_modified = ?, title = COALESCE(?, title)"
                params += [o.etag, o.last_modified, o.title]
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
        cursor = self._execute(
            f"UPDATE feeds SET {sets}, last_attempt_at = ?, next_poll_at = ?,"
            " lease_owner = NULL, lease_until = NULL WHERE feed_id = ? AND lease_owner = ?",
            (*params, t, to_epoch(o.next_poll_at), o.feed_id, o.owner),
        )
        return cursor.rowcount == 1

    def _insert_items(self, o: PollOutcome) -> set[str]:
        new: set[str] = set()
        for item in sorted({i.key: i for i in o.items}.values(), key=lambda i: i.key):
            row = self._execute(
                "INSERT INTO items (feed_id, item_key, title, link, published, first_seen)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING item_key",
                (o.feed_id, item.key, item.title[:500], item.link, to_epoch(item.published),
                 to_epoch(o.at)),
            ).fetchone()
            if row is not None:
                new.add(row[0])
        return new

    def _queue(self, q: QueuedAlert, now: datetime) -> bool:
        """Queue ``q`` unless the same story already went to the same destination for the rule."""
        a = q.alert
        keys = sorted(set(q.story_keys))
        existing = self._execute(
            "SELECT outbox_id FROM story_alerts WHERE rule_id = ? AND destination = ?"
            f" AND story_key IN {self._in(keys)} ORDER BY outbox_id LIMIT 1",
            (a.rule_id, a.destination, *keys),
        ).fetchone()
        if existing is not None:
            self._note_also_reported(existing[0], a.source)
            self._link_keys(a, keys, existing[0])
            return False
        outbox_id = self._execute(
            "INSERT INTO outbox (rule_id, destination, feed_id, item_key, payload, digest,"
            " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (a.rule_id, a.destination, a.feed_id, a.item_key, alert_to_json(a), int(q.digest),
             to_epoch(now), to_epoch(q.deliver_at)),
        ).fetchone()[0]
        if self._link_keys(a, keys, outbox_id) == len(keys):
            return True
        # Another writer queued the same story between our look and our insert.
        self._execute("DELETE FROM story_alerts WHERE outbox_id = ?", (outbox_id,))
        self._execute("DELETE FROM outbox WHERE id = ?", (outbox_id,))
        return False

    def _link_keys(self, a: Any, keys: Sequence[str], outbox_id: int) -> int:
        linked = 0
        for key in keys:
            row = self._execute(
                "INSERT INTO story_alerts (rule_id, destination, story_key, outbox_id)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING outbox_id",
                (a.rule_id, a.destination, key, outbox_id),
            ).fetchone()
            linked += row is not None
        return linked

    def _note_also_reported(self, outbox_id: int, source: str) -> None:
        row = self._execute(
            "SELECT also_reported_by FROM outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        if row is None:
            return
        sources = json.loads(row[0])
        if source not in sources:
            self._execute(
                "UPDATE outbox SET also_reported_by = ? WHERE id = ?",
                (json.dumps([*sources, source], ensure_ascii=False), outbox_id),
            )

    # -- outbox -------------------------------------------------------------
    def claim_outbox(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, due_only: bool
    ) -> list[OutboxEntry]:
        t = to_epoch(now)
        due = "next_attempt_at <= ?" if due_only else (
            "(next_attempt_at <= ? OR NOT (digest = 1 AND attempts = 0))"
        )
        with self._write():
            rows = self._execute(
                "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ("
                f" SELECT id FROM outbox WHERE status = 'pending' AND {due}"
                " AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?"
                + self._d.lock_claimed
                + ") RETURNING id, payload, attempts, created_at, next_attempt_at,"
                " also_reported_by",
                (owner, t + lease_seconds, t, t, limit),
            ).fetchall()
        entries = [
            OutboxEntry(
                id=r[0],
                alert=alert_from_json(r[1], tuple(json.loads(r[5]))),
                attempts=r[2],
                created_at=from_epoch(r[3]),  # type: ignore[arg-type]
                next_attempt_at=from_epoch(r[4]),  # type: ignore[arg-type]
                also_reported_by=tuple(json.loads(r[5])),
            )
            for r in rows
        ]
        return sorted(entries, key=lambda e: e.id)

    def _finish(self, ids: Sequence[int], owner: str, sets: str, params: Sequence[Any]) -> None:
        if not ids:
            return
        with self._write():
            self._execute(
                f"UPDATE outbox SET {sets}, lease_owner = NULL, lease_until = NULL"
                f" WHERE lease_owner = ? AND id IN {self._in(ids)}",
                (*params, owner, *sorted(ids)),
            )

    def mark_sent(self, entry_ids: Sequence[int], owner: str, now: datetime) -> None:
        self._finish(
            entry_ids, owner, "status = 'sent', sent_at = ?, attempts = attempts + 1",
            (to_epoch(now),),
        )

    def mark_retry(
        self, entry_ids: Sequence[int], owner: str, next_attempt_at: datetime, error: str
    ) -> None:
        self._finish(
            entry_ids, owner, "attempts = attempts + 1, next_attempt_at = ?, last_error = ?",
            (to_epoch(next_attempt_at), error),
        )

    def mark_dead(self, entry_ids: Sequence[int], owner: str, now: datetime, error: str) -> None:
        self._finish(
            entry_ids, owner,
            "status = 'dead', attempts = attempts + 1, last_error = ?, sent_at = ?",
            (error, to_epoch(now)),
        )

    def release(self, entry_ids: Sequence[int], owner: str) -> None:
        self._finish(entry_ids, owner, "status = status", ())

    def outbox_counts(self, now: datetime) -> OutboxCounts:
        row = self._execute(
            "SELECT"
            " COALESCE(SUM(CASE WHEN status = 'pending' AND NOT (digest = 1 AND attempts = 0"
            "   AND next_attempt_at > ?) THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN status = 'pending' AND digest = 1 AND attempts = 0"
            "   AND next_attempt_at > ? THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0)"
            " FROM outbox",
            (to_epoch(now), to_epoch(now)),
        ).fetchone()
        return OutboxCounts(*(int(v) for v in row))
