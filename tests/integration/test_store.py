"""The store contract, run against every engine: SQLite always, PostgreSQL when
``NEWSWATCH_TEST_POSTGRES`` names a server (``.ci/run`` always sets it)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bot.errors import StoreError
from bot.model import Alert, Item, Posted, QueuedAlert, Summary
from bot.store import (
    DigestHeld,
    FeedRow,
    Notice,
    OutboxCounts,
    PollOutcome,
    SeenTitle,
    SilenceState,
    Store,
    StorySighting,
    open_store,
)
from bot.store.codec import alert_to_json
from bot.store.postgres import POSTGRES as POSTGRES_DIALECT
from bot.store.sql import SCHEMA_VERSION, migrations
from bot.store.sqlite import SQLITE, sqlite_path
from bot.stories.cluster import signature
from tests.peers.postgres import postgres_dsn

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POSTGRES, NO_POSTGRES = postgres_dsn()
VERSIONS = [v for v, _ in migrations(SQLITE)]


def _engines() -> list[object]:
    marks = [pytest.mark.postgres]
    if POSTGRES is None:
        marks.append(pytest.mark.skip(reason=NO_POSTGRES))
    return ["sqlite", pytest.param("postgresql", marks=marks)]


pytestmark = pytest.mark.parametrize("store_url", _engines(), indirect=True)


def item(key: str, link: str | None = None, title: str = "A story", feed: str = "a") -> Item:
    return Item(feed_id=feed, key=key, title=title, link=link)


def alert(it: Item, dest: str = "desk", rule: str = "r1", source: str = "Feed A") -> QueuedAlert:
    a = Alert(
        rule_id=rule,
        rule_title="Rule",
        destination=dest,
        feed_id=it.feed_id,
        source=source,
        item_key=it.key,
        title=it.title,
        link=it.link,
        published=None,
        first_seen=T0,
        summary=Summary("text", ((0, 4),)),
        terms=("rcmp",),
    )
    return QueuedAlert(a, T0)


def poll(
    store: Store,
    feed: str,
    owner: str,
    items: list[Item],
    alerts: list[QueuedAlert],
    at: datetime = T0,
) -> object:
    return store.record_poll(
        PollOutcome(
            feed,
            owner,
            at,
            at + timedelta(minutes=10),
            items=items,
            alerts=alerts,
            stories=told(alerts),
        )
    )


def told(alerts: list[QueuedAlert]) -> dict[str, StorySighting]:
    """What each alerted item tells of its story, from its title and link."""
    return {
        q.alert.item_key: StorySighting(signature(q.alert.title, "", q.alert.link), q.alert.source)
        for q in alerts
    }


def claim_all(store: Store, owner: str, at: datetime = T0) -> list[str]:
    return [s.feed_id for s in store.claim_feeds(owner, at, 60, 100, due_only=False)]


def raw(url: str, *statements: str) -> list[Any]:
    """Run SQL on the store's database behind its back; returns the last statement's rows."""
    rows: list[Any] = []
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            for statement in statements:
                rows = conn.execute(statement).fetchall()
        finally:
            conn.close()
        return rows
    with psycopg.connect(url, autocommit=True) as pg:
        for statement in statements:
            cursor = pg.execute(statement)  # type: ignore[arg-type]
            rows = cursor.fetchall() if cursor.description else []
    return rows


def test_migrate_is_idempotent(store_url: str, store: Store) -> None:
    store.migrate()
    store.migrate()
    assert store.ping()
    assert VERSIONS[-1] == SCHEMA_VERSION
    versions = raw(store_url, "SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in versions] == VERSIONS


def test_a_version_1_store_is_upgraded_in_place(store_url: str) -> None:
    dialect = SQLITE if store_url.startswith("sqlite:") else POSTGRES_DIALECT
    (_, v1), *_ = migrations(dialect)
    raw(
        store_url,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        *v1,
        "INSERT INTO schema_version VALUES (1)",
        "INSERT INTO feeds (feed_id, url, etag) VALUES ('old', 'http://x/old', 'e')",
    )
    store = open_store(store_url)
    try:
        assert [(s.feed_id, s.etag) for s in store.feed_states()] == [("old", "e")]
        assert store.reserve_slot("k", 1.0, T0) == 0.0
    finally:
        store.close()
    versions = raw(store_url, "SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in versions] == VERSIONS


def test_a_version_3_store_is_upgraded_and_its_queued_alerts_still_go_out(store_url: str) -> None:
    dialect = SQLITE if store_url.startswith("sqlite:") else POSTGRES_DIALECT
    payload = alert_to_json(alert(item("k1")).alert).replace("'", "''")
    raw(
        store_url,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        *(
            statement
            for version, steps in migrations(dialect)
            if version <= 3
            for statement in steps
        ),
        "INSERT INTO schema_version VALUES (1), (2), (3)",
        "INSERT INTO outbox (rule_id, destination, feed_id, item_key, payload, created_at,"
        f" next_attempt_at) VALUES ('r1', 'desk', 'a', 'k1', '{payload}', 0, 0)",
    )
    store = open_store(store_url)
    try:
        (entry,) = store.claim_outbox("w", T0, 60, 10, due_only=True)
        assert entry.alert is not None and entry.notice is None
        assert (entry.destination, entry.alert.item_key) == ("desk", "k1")
        store.mark_sent([entry.id], "w", T0)
        assert store.outbox_counts(T0) == OutboxCounts(sent=1)
    finally:
        store.close()
    versions = raw(store_url, "SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in versions] == VERSIONS


def test_a_version_4_store_learns_when_its_feeds_last_had_new_items(store_url: str) -> None:
    dialect = SQLITE if store_url.startswith("sqlite:") else POSTGRES_DIALECT
    raw(
        store_url,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        *(s for version, steps in migrations(dialect) if version <= 4 for s in steps),
        "INSERT INTO schema_version VALUES (1), (2), (3), (4)",
        "INSERT INTO feeds (feed_id, url) VALUES ('a', 'http://x/a'), ('b', 'http://x/b')",
        "INSERT INTO items (feed_id, item_key, first_seen) VALUES ('a', 'k1', 1000),"
        " ('a', 'k2', 5000), ('a', 'k3', 5000), ('a', 'k4', 3000)",
    )
    store = open_store(store_url)
    try:
        a, b = store.feed_states()
        assert a.last_new_at == datetime.fromtimestamp(5000, UTC) and b.last_new_at is None
        assert (a.status, a.silent_since, a.silence_notified) == ("new", None, False)
        assert store.sightings("a", 10) == [
            datetime.fromtimestamp(t, UTC) for t in (5000, 3000, 1000)
        ]
    finally:
        store.close()


def test_silence_is_written_with_the_poll_under_its_lease_only(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    day = timedelta(days=1)
    for n, keys in enumerate([["k1", "k2"], ["k3"], ["k3"], ["k4"]]):
        claim_all(store, "w1", T0 + n * day)
        poll(store, "a", "w1", [item(k) for k in keys], [], at=T0 + n * day)
    assert store.sightings("a", 10) == [T0 + 3 * day, T0 + day, T0]  # k3 again is no sighting
    assert store.sightings("a", 2) == [T0 + 3 * day, T0 + day]
    assert store.sightings("b", 2) == []
    (state,) = store.feed_states()
    assert state.last_new_at == T0 + 3 * day and state.status == "ok"

    silent = SilenceState(T0 + 9 * day, 86400.0, notified=True)
    notice = Notice("ops", "a", "Feed a is silent", "nothing new")
    late = PollOutcome("a", "w1", T0 + 9 * day, T0 + 10 * day, silence=silent, notices=[notice])
    assert not store.record_poll(late).applied  # not claimed
    claim_all(store, "w1", T0 + 9 * day)
    assert store.record_poll(late).applied
    (state,) = store.feed_states()
    assert (state.silent_since, state.usual_gap, state.silence_notified) == (
        T0 + 9 * day,
        86400.0,
        True,
    )
    assert state.status == "silent" and state.last_new_at == T0 + 3 * day
    assert store.outbox_counts(T0 + 9 * day).pending == 1

    claim_all(store, "w1", T0 + 10 * day)
    store.record_poll(PollOutcome("a", "w1", T0 + 10 * day, T0 + 11 * day, not_modified=True))
    assert store.feed_states()[0].silent_since == T0 + 9 * day  # no verdict: unchanged
    claim_all(store, "w1", T0 + 11 * day)
    at = T0 + 11 * day
    store.record_poll(PollOutcome("a", "w1", at, at, items=[item("k5")], silence=SilenceState()))
    (state,) = store.feed_states()
    assert (state.silent_since, state.silence_notified, state.status) == (None, False, "ok")
    assert state.last_new_at == at


def test_notices_are_queued_with_the_poll_under_its_lease_only(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    notice = Notice("ops", "a", "Feed a is failing", "http://x/a: timeout 'quoted'")
    failing = PollOutcome(
        "a", "w1", T0, T0 + timedelta(minutes=10), error="timeout", notices=[notice]
    )
    assert not store.record_poll(failing).applied  # not claimed: no notice either
    assert store.outbox_counts(T0).pending == 0
    claim_all(store, "w1")
    assert store.record_poll(failing).applied
    (entry,) = store.claim_outbox("s", T0, 60, 10, due_only=False)
    assert (entry.alert, entry.notice, entry.destination) == (None, notice, "ops")
    store.mark_retry([entry.id], "s", T0 + timedelta(seconds=5), "later")
    (again,) = store.claim_outbox("s", T0 + timedelta(seconds=5), 60, 10, due_only=True)
    assert (again.notice, again.attempts) == (notice, 1)
    store.mark_sent([again.id], "s", T0 + timedelta(seconds=5))
    assert store.outbox_counts(T0) == OutboxCounts(sent=1)


def test_a_store_newer_than_the_code_is_refused(store_url: str, store: Store) -> None:
    raw(store_url, f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1})")
    with pytest.raises(StoreError, match="upgrade newswatch"):
        store.migrate()


def test_sync_adds_deactivates_and_resets_caching_on_url_change(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    assert [s.feed_id for s in store.feed_states()] == ["a", "b"]
    assert claim_all(store, "w1") == ["a", "b"]
    store.record_poll(PollOutcome("a", "w1", T0, T0, etag='"e1"', last_modified="lm"))
    store.sync_feeds([FeedRow("a", "http://x/a2")], T0)
    (state,) = store.feed_states()
    assert (state.feed_id, state.url, state.etag, state.last_modified) == (
        "a",
        "http://x/a2",
        None,
        None,
    )


def test_sync_is_idempotent_and_reactivation_keeps_caching(store: Store) -> None:
    feeds = [FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")]
    store.sync_feeds(feeds, T0)
    claim_all(store, "w1")
    store.record_poll(PollOutcome("a", "w1", T0, T0 + timedelta(hours=1), etag='"e1"'))
    before = store.feed_states()
    store.sync_feeds(list(reversed(feeds)), T0 + timedelta(days=1))
    assert store.feed_states() == before
    store.sync_feeds(feeds[1:], T0)
    assert [s.feed_id for s in store.feed_states()] == ["b"]
    store.sync_feeds(feeds, T0 + timedelta(days=2))
    assert store.feed_states() == before


def test_a_claimed_feed_is_invisible_to_others_until_its_lease_ends(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    first = store.claim_feeds("w1", T0, 60, 1, due_only=True)
    second = store.claim_feeds("w2", T0, 60, 5, due_only=True)
    assert len(first) == 1 and len(second) == 1
    assert first[0].feed_id != second[0].feed_id
    assert store.claim_feeds("w3", T0 + timedelta(seconds=30), 60, 5, due_only=False) == []
    later = store.claim_feeds("w3", T0 + timedelta(seconds=61), 60, 5, due_only=False)
    assert sorted(s.feed_id for s in later) == ["a", "b"]


def test_released_feeds_are_claimable_at_once_but_only_by_their_owner(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    assert claim_all(store, "w1") == ["a", "b"]
    store.release_feeds(["a", "b"], "w2")  # not w2's: nothing changes
    assert store.claim_feeds("w2", T0, 60, 5, due_only=True) == []
    store.release_feeds(["a"], "w1")
    assert [s.feed_id for s in store.claim_feeds("w2", T0, 60, 5, due_only=True)] == ["a"]


def test_due_only_respects_the_next_poll_time(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    assert claim_all(store, "w1") == ["a"]
    poll(store, "a", "w1", [], [])
    assert store.claim_feeds("w1", T0 + timedelta(minutes=5), 60, 5, due_only=True) == []
    due = store.claim_feeds("w1", T0 + timedelta(minutes=11), 60, 5, due_only=True)
    assert [s.feed_id for s in due] == ["a"]


def test_a_write_after_the_lease_was_taken_over_changes_nothing(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    assert claim_all(store, "w1") == ["a"]
    assert claim_all(store, "w2", T0 + timedelta(seconds=61)) == ["a"]
    it = item("k1", "http://n/1")
    late = poll(store, "a", "w1", [it], [alert(it)])
    assert late.applied is False
    assert store.seen_keys("a", ["k1"]) == set()
    assert store.outbox_counts(T0).pending == 0


def test_late_outbox_marks_by_a_replica_whose_lease_was_taken_over_change_nothing(
    store: Store,
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    its = [item(f"k{i}", f"http://n/{i}", f"Story {i}") for i in range(4)]
    poll(store, "a", "w1", its, [alert(i) for i in its])
    stale = store.claim_outbox("dead", T0, 60, 10, due_only=True)
    assert len(stale) == 4
    later = T0 + timedelta(seconds=61)
    fresh = store.claim_outbox("alive", later, 60, 10, due_only=True)
    assert [e.id for e in fresh] == [e.id for e in stale]
    ids = [e.id for e in stale]
    store.mark_sent(ids[:1], "alive", later)  # the new owner finishes one row...
    # ...then the old owner wakes up: none of its marks may land.
    store.mark_sent(ids, "dead", later)
    store.mark_retry(ids, "dead", later, "late")
    store.mark_dead(ids, "dead", later, "late")
    store.release(ids, "dead")
    assert store.outbox_counts(later) == OutboxCounts(pending=3, sent=1)
    assert store.claim_outbox("third", later, 60, 10, due_only=False) == []  # still alive's
    store.mark_retry(ids[1:2], "alive", later, "boom")
    store.mark_dead(ids[2:3], "alive", later, "gone")
    store.mark_sent(ids[3:], "alive", later)
    counts = store.outbox_counts(later + timedelta(hours=1))
    assert (counts.pending, counts.sent, counts.dead) == (1, 2, 1)
    store.mark_dead(ids[:1], "alive", later, "twice")  # a finished row stays finished
    assert store.outbox_counts(later).sent == 2


def test_an_expired_lease_nobody_took_over_still_lets_its_owner_finish(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    late = T0 + timedelta(minutes=5)
    it = item("k1", "http://n/1")
    assert poll(store, "a", "w1", [it], [alert(it)], late).applied is True
    (entry,) = store.claim_outbox("s1", late, 60, 10, due_only=True)
    store.mark_sent([entry.id], "s1", late + timedelta(minutes=5))
    assert store.outbox_counts(late).sent == 1


def test_many_items_are_inserted_in_batches_once_each(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    its = [item(f"k{i:05d}", f"http://n/{i}", f"Story {i}") for i in range(1234)]
    alerts = [alert(i) for i in its[::100]]
    record = poll(store, "a", "w1", [*its, its[0]], alerts)
    assert (record.new_items, record.queued, record.duplicates) == (1234, 13, 0)
    assert store.seen_keys("a", [i.key for i in its]) == {i.key for i in its}
    claim_all(store, "w1", T0 + timedelta(hours=1))
    more = [item(f"z{i}", f"http://n/z{i}", f"Zed {i}") for i in range(3)]
    again = poll(
        store, "a", "w1", [*its, *more], [alert(i) for i in [*its, *more]], T0 + timedelta(hours=1)
    )
    assert (again.new_items, again.queued) == (3, 3)
    assert store.feed_states()[0].item_count == 1237


def test_copies_of_a_story_in_one_poll_alert_once(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    first = item("k1", "http://n/story", "Police mission")
    same_link = item("k2", "http://n/story", "Police mission, updated")
    same_title = item("k3", "http://n/other", "Police mission, updated")
    record = poll(
        store,
        "a",
        "w1",
        [first, same_link, same_title],
        [alert(first), alert(same_link, source="Wire"), alert(same_title, source="AP")],
    )
    assert (record.queued, record.duplicates) == (1, 2)
    (entry,) = store.claim_outbox("s", T0, 60, 10, due_only=True)
    assert entry.alert is not None and entry.alert.item_key == "k1"
    assert entry.also_reported_by == ("Wire", "AP")


def _later(store: Store, it: Item, hours: float, source: str, dest: str = "desk") -> Any:
    """Record ``it`` (of feed b) ``hours`` after T0, alerted by rule r1 to ``dest``."""
    at = T0 + timedelta(hours=hours)
    claim_all(store, "w1", at)
    return poll(store, "b", "w1", [it], [alert(it, dest=dest, source=source)], at)


def test_a_story_stays_open_while_it_is_sighted_within_its_window(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    claim_all(store, "w1")
    first = item("k1", "http://n/1", "Police mission")
    assert poll(store, "a", "w1", [first], [alert(first)]).queued == 1
    inside = _later(store, item("k2", "http://n/2", "Police mission"), 71, "Inside")
    assert (inside.queued, inside.duplicates) == (0, 1)
    # 73 h after the first sighting, but 2 h after the latest: the story is still open.
    still = _later(store, item("k3", "http://n/3", "Police mission"), 73, "Still")
    assert (still.queued, still.duplicates) == (0, 1)
    after = _later(store, item("k4", "http://n/4", "Police mission"), 73 + 73, "After")
    assert (after.queued, after.duplicates) == (1, 0)
    entries = store.claim_outbox("s", T0 + timedelta(days=7), 60, 10, due_only=True)
    # "Inside" came after a day of quiet: a follow-up, which replies once the alert is out.
    assert [(e.alert.item_key, e.also_reported_by) for e in entries if e.alert] == [
        ("k1", ("Still",)),
        ("k4", ()),
    ]
    assert [e for e in entries if e.sighting] == []
    store.mark_sent([e.id for e in entries], "s", T0 + timedelta(days=7))
    (reply,) = store.claim_outbox("s", T0 + timedelta(days=7), 60, 10, due_only=True)
    assert reply.sighting is not None and reply.sighting.source == "Inside"
    assert reply.sighting.follow_up == "first report in 3d"


def test_a_story_window_is_the_polls(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    claim_all(store, "w1")
    first = item("k1", "http://n/1", "Police mission")
    assert poll(store, "a", "w1", [first], [alert(first)]).queued == 1
    at = T0 + timedelta(hours=2)
    claim_all(store, "w1", at)
    late = item("k2", "http://n/2", "Police mission")
    record = store.record_poll(
        PollOutcome(
            "b",
            "w1",
            at,
            at,
            items=[late],
            alerts=[alert(late)],
            stories=told([alert(late)]),
            story_window=3600.0,
        )
    )
    assert (record.queued, record.duplicates) == (1, 0)


def test_a_sighting_of_an_alert_being_sent_waits_for_it_and_finds_its_thread(
    store: Store,
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    claim_all(store, "w1")
    first = item("k1", "http://n/1", "Police mission")
    assert poll(store, "a", "w1", [first], [alert(first)]).queued == 1
    (parent,) = store.claim_outbox("s", T0, 3600, 10, due_only=True)  # being sent
    later = _later(store, item("k2", "http://n/2", "Police mission"), 1, "Wire")
    assert (later.queued, later.duplicates) == (0, 1)
    at = T0 + timedelta(hours=1)
    assert store.claim_outbox("t", at, 60, 10, due_only=True, after_id=parent.id) == []
    store.mark_sent([parent.id], "s", at, Posted("C1", "1.000100"))
    (reply,) = store.claim_outbox("t", at, 60, 10, due_only=True, sightings_only=True)
    assert reply.sighting is not None and reply.parent is not None
    assert (reply.sighting.title, reply.sighting.source, reply.sighting.outlets) == (
        "Police mission",
        "Wire",
        2,
    )
    assert reply.sighting.follow_up is None
    assert reply.parent.posted == Posted("C1", "1.000100")
    assert reply.parent.alert.item_key == "k1"
    assert reply.destination == "desk"


def test_a_sighting_with_a_new_matched_title_term_is_a_follow_up(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    claim_all(store, "w1")
    first = item("k1", "http://n/1", "Police mission")
    poll(store, "a", "w1", [first], [alert(first)])
    (parent,) = store.claim_outbox("s", T0, 60, 10, due_only=True)
    store.mark_sent([parent.id], "s", T0)
    at = T0 + timedelta(hours=2)
    claim_all(store, "w1", at)
    it = item("k2", "http://n/1", "Police mission suspended")
    queued = alert(it, source="Wire")
    store.record_poll(
        PollOutcome(
            "b",
            "w1",
            at,
            at,
            items=[it],
            alerts=[queued],
            stories={"k2": StorySighting(signature(it.title, "", it.link), "Wire", ("suspended",))},
        )
    )
    (reply,) = store.claim_outbox("t", at, 60, 10, due_only=True)
    assert reply.sighting is not None
    assert reply.sighting.follow_up == "new in the title: suspended"
    assert reply.parent is not None and reply.parent.posted is None


def test_a_story_alerts_each_destination_once(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    claim_all(store, "w1")
    in_a = item("k1", "http://n/story", "Police mission", feed="a")
    assert poll(store, "a", "w1", [in_a], [alert(in_a)]).queued == 1
    # The same story later, to the desk (a sighting) and to a destination not told yet.
    in_b = item("other-guid", "http://n/story", "Police mission (updated)", feed="b")
    at = T0 + timedelta(minutes=5)
    claim_all(store, "w1", at)
    record = poll(
        store, "b", "w1", [in_b], [alert(in_b, source="B"), alert(in_b, "mail", source="B")], at
    )
    assert (record.queued, record.duplicates) == (1, 1)
    entries = store.claim_outbox("s", at, 60, 10, due_only=True)
    assert [(e.destination, e.also_reported_by) for e in entries] == [
        ("desk", ("B",)),
        ("mail", ()),
    ]
    assert entries[1].alert is not None and entries[1].alert.outlets == 2
    (story,) = store.recent_stories(T0)
    assert [s.source for s in story.sightings] == ["Feed A", "B"]
    assert [(d.destination, d.status, d.threaded) for d in story.deliveries] == [
        ("desk", "pending", False),
        ("mail", "pending", False),
    ]


def test_a_version_8_store_is_upgraded_and_its_queued_alerts_still_go_out(
    store_url: str,
) -> None:
    dialect = SQLITE if store_url.startswith("sqlite:") else POSTGRES_DIALECT
    payload = alert_to_json(alert(item("k1")).alert).replace("'", "''")
    raw(
        store_url,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        *(s for version, steps in migrations(dialect) if version <= 8 for s in steps),
        "INSERT INTO schema_version VALUES (1), (2), (3), (4), (5), (6), (7), (8)",
        "INSERT INTO outbox (rule_id, destination, feed_id, item_key, payload, created_at,"
        f" next_attempt_at) VALUES ('r1', 'desk', 'a', 'k1', '{payload}', 0, 0)",
        "INSERT INTO story_alerts SELECT 'r1', 'desk', 'title:A story', id, 0 FROM outbox",
    )
    store = open_store(store_url)
    try:
        (entry,) = store.claim_outbox("s", T0, 60, 10, due_only=True)
        assert entry.alert is not None and entry.alert.item_key == "k1"
        assert entry.alert.outlets == 1 and entry.alert.also_matched == ()
    finally:
        store.close()


def test_seen_titles_and_a_reused_key_taking_its_new_story(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    old, plain = item("guid:g1", None, "Budget tabled"), item("guid:g2", None, "Hockey")
    store.record_poll(
        PollOutcome("a", "w1", T0, T0, items=[old, plain], fingerprints={"guid:g1": "0000aaaa"})
    )
    assert store.seen_titles("a", ["guid:g1", "guid:g2", "guid:g3"]) == {
        "guid:g1": SeenTitle("Budget tabled", "0000aaaa"),
        "guid:g2": SeenTitle("Hockey", None),
    }
    at = T0 + timedelta(minutes=20)
    claim_all(store, "w1", at)
    retold = item("guid:g1#abc", None, "Officers head to Mosul")
    record = store.record_poll(
        PollOutcome(
            "a",
            "w1",
            at,
            at,
            items=[retold],
            alerts=[alert(retold)],
            fingerprints={"guid:g1#abc": "0000bbbb"},
            reused={"guid:g1#abc": "guid:g1"},
        )
    )
    assert (record.new_items, record.queued) == (1, 1)
    assert store.seen_titles("a", ["guid:g1", "guid:g1#abc"]) == {
        "guid:g1": SeenTitle("Officers head to Mosul", "0000bbbb"),
        "guid:g1#abc": SeenTitle("Officers head to Mosul", "0000bbbb"),
    }


def test_reserve_slot_spaces_turns_and_honours_a_deferral(store: Store) -> None:
    waits = [store.reserve_slot("slack #a", 1.0, T0) for _ in range(3)]
    assert waits == pytest.approx([0.0, 1.0, 2.0])
    assert store.reserve_slot("slack #b", 1.0, T0) == 0.0  # keys are independent
    assert store.reserve_slot("slack #a", 1.0, T0 + timedelta(seconds=10)) == 0.0
    store.reserve_slot("slack #b", 0.0, T0 + timedelta(seconds=30))  # Retry-After: 30
    assert store.reserve_slot("slack #b", 1.0, T0 + timedelta(seconds=1)) == pytest.approx(29.0)


def test_items_are_recorded_once_and_only_new_items_queue_alerts(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    one, two = item("k1", "http://n/1", "One"), item("k2", "http://n/2", "Two")
    record = poll(store, "a", "w1", [one, two], [alert(one)])
    assert (record.applied, record.new_items, record.queued) == (True, 2, 1)
    assert store.seen_keys("a", ["k1", "k2", "k3"]) == {"k1", "k2"}
    claim_all(store, "w1", T0 + timedelta(minutes=20))
    again = poll(store, "a", "w1", [one, two], [alert(one), alert(two)], T0 + timedelta(minutes=20))
    assert (again.new_items, again.queued) == (0, 0)
    assert store.feed_states()[0].item_count == 2


def test_outbox_claims_leases_retries_and_counts(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    its = [item(f"k{i}", f"http://n/{i}", f"Story {i}") for i in range(3)]
    digest = alert(its[2], dest="digest")
    digest = QueuedAlert(digest.alert, T0 + timedelta(hours=1), digest=True)
    poll(store, "a", "w1", its, [alert(its[0]), alert(its[1]), digest])
    assert store.outbox_counts(T0).pending == 2
    assert store.outbox_counts(T0).waiting_digest == 1
    assert store.held_for_digest(T0) == [DigestHeld("digest", 1, T0 + timedelta(hours=1))]
    assert store.held_for_digest(T0 + timedelta(hours=1)) == []  # closed: due now

    claimed = store.claim_outbox("s1", T0, 60, 10, due_only=True)
    assert [e.alert.item_key for e in claimed] == ["k0", "k1"]
    assert store.claim_outbox("s2", T0, 60, 10, due_only=False) == []

    store.mark_sent([claimed[0].id], "s1", T0)
    store.mark_retry([claimed[1].id], "s1", T0 + timedelta(minutes=5), "boom")
    store.mark_sent([claimed[1].id], "intruder", T0)  # not the owner any more: ignored
    counts = store.outbox_counts(T0)
    assert (counts.pending, counts.sent) == (1, 1)
    assert store.claim_outbox("s2", T0, 60, 10, due_only=True) == []
    retry = store.claim_outbox("s2", T0, 60, 10, due_only=False)
    assert [(e.alert.item_key, e.attempts) for e in retry] == [("k1", 1)]
    store.mark_dead([retry[0].id], "s2", T0, "gave up")
    assert store.outbox_counts(T0).dead == 1

    at_digest = store.claim_outbox("s3", T0 + timedelta(hours=1), 60, 10, due_only=True)
    assert [e.alert.destination for e in at_digest] == ["digest"]
    store.release([at_digest[0].id], "s3")
    assert len(store.claim_outbox("s4", T0 + timedelta(hours=1), 60, 10, due_only=True)) == 1


def test_failures_are_counted_and_cleared_by_a_success(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    for minute in (0, 20):
        at = T0 + timedelta(minutes=minute)
        claim_all(store, "w1", at)
        store.record_poll(PollOutcome("a", "w1", at, at, error="timeout", error_detail="slow"))
    (state,) = store.feed_states()
    assert (state.status, state.last_error, state.consecutive_failures) == ("failing", "timeout", 2)
    assert state.failing_since == T0
    claim_all(store, "w1", T0 + timedelta(hours=1))
    poll(store, "a", "w1", [], [], T0 + timedelta(hours=1))
    (state,) = store.feed_states()
    assert (state.status, state.consecutive_failures, state.failing_since) == ("ok", 0, None)


def test_read_only_store_refuses_writes(store_url: str, store: Store) -> None:
    reader = open_store(store_url, read_only=True)
    try:
        with pytest.raises(PermissionError):
            reader.sync_feeds([FeedRow("a", "http://x/a")], T0)
        with pytest.raises(PermissionError):
            reader.reserve_slot("k", 1.0, T0)
        assert reader.feed_states() == []
    finally:
        reader.close()


def test_outbox_claims_continue_after_a_cursor(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    its = [item(f"k{i}", f"http://n/{i}", f"Story {i}") for i in range(5)]
    poll(store, "a", "w1", its, [alert(i) for i in its])
    first = store.claim_outbox("s", T0, 60, 2, due_only=True)
    store.mark_retry([first[0].id], "s", T0 + timedelta(minutes=5), "later")
    rest = store.claim_outbox("s", T0, 60, 10, due_only=False, after_id=first[-1].id)
    assert [e.alert.item_key for e in rest] == ["k2", "k3", "k4"]
    assert store.claim_outbox("s", T0, 60, 10, due_only=False, after_id=rest[-1].id) == []


def _queued(store: Store, count: int) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    its = [item(f"k{i}", f"http://n/{i}", f"Story {i}") for i in range(count)]
    poll(store, "a", "w1", its, [alert(i) for i in its])


def test_a_renewed_outbox_lease_keeps_others_out_past_its_first_expiry(store: Store) -> None:
    _queued(store, 3)
    ids = [e.id for e in store.claim_outbox("w1", T0, 30, 10, due_only=True)]
    assert store.renew_outbox(ids, "w1", T0 + timedelta(seconds=50)) == set(ids)
    assert store.claim_outbox("w2", T0 + timedelta(seconds=40), 30, 10, due_only=True) == []
    store.mark_sent(ids[:1], "w1", T0 + timedelta(seconds=45))
    # A finished row is not "held" any more, and renewing changes nothing for it.
    assert store.renew_outbox(ids, "w1", T0 + timedelta(seconds=60)) == set(ids[1:])
    taken = store.claim_outbox("w2", T0 + timedelta(seconds=61), 30, 10, due_only=True)
    assert [e.id for e in taken] == ids[1:]
    # The old owner's heartbeat now finds its lease lost, and its marks change nothing.
    assert store.renew_outbox(ids, "w1", T0 + timedelta(seconds=90)) == set()
    store.mark_sent(ids, "w1", T0 + timedelta(seconds=62))
    assert store.outbox_counts(T0).sent == 1
    assert store.renew_outbox(ids, "w2", T0 + timedelta(seconds=120)) == set(ids[1:])


def test_a_renewed_feed_lease_keeps_others_out_past_its_first_expiry(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    assert [s.feed_id for s in store.claim_feeds("w1", T0, 30, 10, due_only=True)] == ["a", "b"]
    assert store.renew_feeds(["a", "b"], "w1", T0 + timedelta(seconds=50)) == {"a", "b"}
    assert store.claim_feeds("w2", T0 + timedelta(seconds=40), 30, 10, due_only=True) == []
    assert store.record_poll(PollOutcome("a", "w1", T0, T0 + timedelta(hours=1))).applied
    assert store.renew_feeds(["a", "b"], "w1", T0 + timedelta(seconds=60)) == {"b"}
    taken = store.claim_feeds("w2", T0 + timedelta(seconds=61), 30, 10, due_only=True)
    assert [s.feed_id for s in taken] == ["b"]
    assert store.renew_feeds(["b"], "w1", T0 + timedelta(seconds=90)) == set()
    late = store.record_poll(PollOutcome("b", "w1", T0, T0 + timedelta(hours=1)))
    assert late.applied is False


def test_a_send_that_never_reported_back_is_claimed_again_as_uncertain(store: Store) -> None:
    _queued(store, 3)
    first = [e.id for e in store.claim_outbox("w1", T0, 30, 10, due_only=True)]
    started = T0 + timedelta(seconds=1)
    assert store.start_attempt(first[:1], "w1", started) == set(first[:1])
    assert store.start_attempt(first, "intruder", started) == set()
    # w1 dies mid-send; once its lease is over, the row it had in flight comes back uncertain.
    later = T0 + timedelta(seconds=31)
    again = store.claim_outbox("w2", later, 30, 10, due_only=True)
    assert [(e.id, e.uncertain) for e in again] == [
        (first[0], True),
        (first[1], False),
        (first[2], False),
    ]
    assert again[0].first_attempt_at == started and again[1].first_attempt_at is None
    # A later attempt that fails for sure does not make the earlier one certain...
    store.start_attempt(first, "w2", later)
    store.mark_retry(first[:1], "w2", later, "ratelimited")
    store.mark_retry(first[1:2], "w2", later, "timeout", uncertain=True)
    store.release(first[2:], "w2")  # ...and a send cut short by a shutdown may still land.
    retried = store.claim_outbox("w3", later, 30, 10, due_only=False)
    assert [(e.id, e.uncertain) for e in retried] == [(i, True) for i in first]
    assert retried[0].first_attempt_at == started and retried[1].first_attempt_at == later
    store.mark_sent(first, "w3", later)
    assert store.outbox_counts(later).sent == 3


@pytest.mark.parametrize("version", [0, 4, SCHEMA_VERSION + 1])
def test_a_read_only_store_of_another_schema_is_refused_in_one_line(
    store_url: str, version: int
) -> None:
    """A read-only command (``feeds``, ``stats``, ``once --dry-run``) cannot migrate: after an
    upgrade of newswatch it says what to run instead of failing later on a missing column."""
    dialect = SQLITE if store_url.startswith("sqlite:") else POSTGRES_DIALECT
    steps = [s for v, statements in migrations(dialect) if v <= version for s in statements]
    raw(
        store_url,
        *steps,
        *(
            ["CREATE TABLE schema_version (version INTEGER NOT NULL)"]
            + [f"INSERT INTO schema_version VALUES ({v})" for v in range(1, version + 1)]
            if version
            else ["CREATE TABLE unrelated (x INTEGER)"]
        ),
    )
    with pytest.raises(StoreError) as caught:
        open_store(store_url, read_only=True)
    message = str(caught.value)
    assert message.startswith(("SQLite store ", "PostgreSQL store ")) and "\n" not in message
    expected = {
        0: "no newswatch tables (is it the right database?): `newswatch once` or `run`",
        4: f"schema version 4, older than this newswatch's ({SCHEMA_VERSION}): `newswatch once`",
        SCHEMA_VERSION + 1: f"schema version {SCHEMA_VERSION + 1}, newer than this newswatch's",
    }[version]
    assert expected in message
    if version == SCHEMA_VERSION + 1:
        with pytest.raises(StoreError, match="upgrade newswatch"):
            open_store(store_url)
    else:
        open_store(store_url).close()  # a writable open migrates it
        open_store(store_url, read_only=True).close()
