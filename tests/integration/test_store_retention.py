"""Retention in the store, on every engine: what :meth:`Store.prune` deletes, what it must
keep (an item its feed still serves, however old; a 304 feed's items; pending alerts), and
two pruners at once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from bot.store import FeedRow, PollOutcome, PollRecord, PruneReport, Store, open_store
from bot.store.codec import to_epoch
from bot.store.postgres import POSTGRES as POSTGRES_DIALECT
from bot.store.sql import migrations
from bot.store.sqlite import SQLITE
from tests.integration.test_store import T0, _engines, alert, item, raw, told

pytestmark = pytest.mark.parametrize("store_url", _engines(), indirect=True)

DAY = timedelta(days=1)
SENT, SEEN = 30 * DAY, 180 * DAY


def fetch(
    store: Store, feed: str, at: datetime, served: Sequence[str] = (), *, not_modified: bool = False
) -> PollRecord:
    """One successful poll of ``feed`` at ``at``: a 304, or a fetch serving ``served``
    (the keys not seen yet as new items, as the poll passes them)."""
    store.claim_feeds("w", at, 60, 100, due_only=False)
    new = [item(k, feed=feed) for k in sorted(set(served) - store.seen_keys(feed, served))]
    return store.record_poll(
        PollOutcome(
            feed,
            "w",
            at,
            at + timedelta(minutes=10),
            not_modified=not_modified,
            items=() if not_modified else new,
            served=() if not_modified else served,
        )
    )


def prune(store: Store, at: datetime) -> PruneReport:
    return store.prune(at, at - SENT, at - SEEN)


def kept(store: Store, feed: str, *keys: str) -> set[str]:
    return store.seen_keys(feed, keys)


def count(url: str, table: str) -> int:
    ((n,),) = raw(url, f"SELECT count(*) FROM {table}")
    return int(n)


def test_an_item_still_served_after_400_days_is_kept_and_never_queued_again(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    fetch(store, "a", T0, ["old"])
    for day in range(50, 401, 50):
        fetch(store, "a", T0 + day * DAY, ["old", f"new{day}"])
    # Each newN was served once: those last served over 180 days ago go; "old" stays.
    assert prune(store, T0 + 400 * DAY).items == 4
    assert kept(store, "a", "old", "new200", "new250") == {"old", "new250"}
    store.claim_feeds("w", T0 + 401 * DAY, 60, 10, due_only=False)
    again = store.record_poll(
        PollOutcome(
            "a",
            "w",
            T0 + 401 * DAY,
            T0 + 402 * DAY,
            items=[item("old")],
            served=["old"],
            alerts=[alert(item("old"))],
        )
    )
    assert (again.applied, again.new_items, again.queued) == (True, 0, 0)


def test_a_feed_answering_304_for_months_keeps_its_items(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    fetch(store, "a", T0, ["k1", "k2"])
    for day in range(10, 301, 10):
        fetch(store, "a", T0 + day * DAY, not_modified=True)
    assert prune(store, T0 + 300 * DAY) == PruneReport()
    assert kept(store, "a", "k1", "k2") == {"k1", "k2"}


def test_an_item_that_left_its_feed_goes_once_older_than_the_window(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    fetch(store, "a", T0, ["gone", "stays"])
    fetch(store, "a", T0 + 10 * DAY, ["stays"])  # "gone" left; then 304s only
    fetch(store, "a", T0 + 170 * DAY, not_modified=True)
    assert prune(store, T0 + 179 * DAY).items == 0
    assert kept(store, "a", "gone", "stays") == {"gone", "stays"}
    fetch(store, "a", T0 + 181 * DAY, not_modified=True)
    assert prune(store, T0 + 181 * DAY).items == 1
    assert kept(store, "a", "gone", "stays") == {"stays"}
    (state,) = store.feed_states()
    assert state.item_count == 1


def test_finished_alerts_go_after_the_sent_window_pending_ones_stay(
    store_url: str, store: Store
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    store.claim_feeds("w", T0, 60, 10, due_only=False)
    items = [item(f"k{n}", f"http://n/{n}", f"Story {n}") for n in range(4)]
    store.record_poll(
        PollOutcome(
            "a",
            "w",
            T0,
            T0,
            items=items,
            served=[i.key for i in items],
            alerts=[alert(i) for i in items],
        )
    )
    ids = {
        e.alert.item_key: e.id
        for e in store.claim_outbox("s", T0, 60, 10, due_only=True)
        if e.alert
    }
    store.mark_sent([ids["k0"]], "s", T0 + DAY)
    store.mark_dead([ids["k1"]], "s", T0 + DAY, "refused")
    store.mark_sent([ids["k2"]], "s", T0 + 25 * DAY)  # queued long ago, sent recently
    store.release([ids["k3"]], "s")  # still pending, however old
    report = prune(store, T0 + 40 * DAY)
    assert report.outbox == 2
    assert sorted(k for (k,) in raw(store_url, "SELECT item_key FROM outbox")) == ["k2", "k3"]


def test_stories_go_with_their_items_once_last_sighted_before_the_window(
    store_url: str, store: Store
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    for n, at in enumerate((T0, T0 + 100 * DAY)):
        store.claim_feeds("w", at, 60, 10, due_only=False)
        it = item(f"k{n}", f"http://n/{n}", f"Story {n}")
        store.record_poll(
            PollOutcome(
                "a",
                "w",
                at,
                at,
                items=[it],
                served=[it.key],
                alerts=[alert(it)],
                stories=told([alert(it)]),
            )
        )
    assert count(store_url, "sightings") == 2
    report = prune(store, T0 + SEEN + 50 * DAY)
    assert report.stories == 1
    assert [t for (t,) in raw(store_url, "SELECT title FROM stories")] == ["Story 1"]
    assert count(store_url, "sightings") == count(store_url, "story_posts") == 1


def test_rate_slots_long_past_go_and_a_turn_to_come_stays(store_url: str, store: Store) -> None:
    store.reserve_slot("slack:old", 1.0, T0)
    assert store.take_turn("turn:x", 3600, T0 + 2 * DAY)
    assert prune(store, T0 + 2 * DAY).rate_slots == 1
    assert [k for (k,) in raw(store_url, "SELECT slot_key FROM rate_slots")] == ["turn:x"]


def test_a_feed_removed_longer_than_the_window_goes_with_its_items(
    store_url: str, store: Store
) -> None:
    a, b = FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")
    store.sync_feeds([a, b], T0)
    fetch(store, "a", T0, ["a1"])
    fetch(store, "b", T0, ["b1", "b2"])
    store.sync_feeds([a], T0 + DAY)
    assert prune(store, T0 + 100 * DAY).feeds == 0
    store.sync_feeds([a, b], T0 + 100 * DAY)  # back within the window: still baselined
    assert [s.baselined for s in store.feed_states()] == [True, True]
    store.sync_feeds([a], T0 + 101 * DAY)
    fetch(store, "a", T0 + 200 * DAY, ["a1"])
    assert prune(store, T0 + 280 * DAY) == PruneReport()
    report = prune(store, T0 + 282 * DAY)
    assert (report.feeds, report.items) == (1, 2)
    assert count(store_url, "items") == 1
    store.sync_feeds([a, b], T0 + 283 * DAY)
    assert [(s.feed_id, s.baselined) for s in store.feed_states()] == [("a", True), ("b", False)]


def test_two_pruners_at_once_share_the_work(store_url: str, store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    old = [f"k{n:05d}" for n in range(2_500)]
    store.claim_feeds("w", T0, 60, 10, due_only=False)
    items = [item(k, f"http://n/{k}", f"Story {k}") for k in old]
    store.record_poll(
        PollOutcome("a", "w", T0, T0, items=items, served=old, alerts=[alert(i) for i in items])
    )
    entries = store.claim_outbox("s", T0, 60, 5_000, due_only=True)
    store.mark_sent([e.id for e in entries[:2_400]], "s", T0)
    store.release([e.id for e in entries[2_400:]], "s")
    fetch(store, "a", T0 + 190 * DAY, ["fresh"])
    other = open_store(store_url)
    start = threading.Barrier(2)
    reports: list[PruneReport] = []

    def run(s: Store) -> None:
        start.wait()
        reports.append(prune(s, T0 + 190 * DAY))

    try:
        threads = [threading.Thread(target=run, args=(s,)) for s in (store, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert sum(r.outbox for r in reports) == 2_400
    assert sum(r.items for r in reports) == 2_500
    assert count(store_url, "outbox") == 100
    assert kept(store, "a", "fresh", *old) == {"fresh"}


def test_a_version_4_store_keeps_its_items_for_a_window_from_when_they_were_first_seen(
    store_url: str,
) -> None:
    dialect = SQLITE if store_url.startswith("sqlite:") else POSTGRES_DIALECT
    recent, old = to_epoch(T0 + 190 * DAY), to_epoch(T0)
    raw(
        store_url,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        *(s for version, steps in migrations(dialect) if version <= 4 for s in steps),
        "INSERT INTO schema_version VALUES (1), (2), (3), (4)",
        "INSERT INTO feeds (feed_id, url, last_success_at) VALUES ('a', 'http://x/a', 0)",
        "INSERT INTO items (feed_id, item_key, first_seen) VALUES"
        f" ('a', 'recent', {recent}), ('a', 'old', {old}), ('a', 'served', {old})",
    )
    store = open_store(store_url)
    try:
        fetch(store, "a", T0 + 200 * DAY, ["served"])
        assert prune(store, T0 + 200 * DAY).items == 1
        assert kept(store, "a", "recent", "old", "served") == {"recent", "served"}
    finally:
        store.close()


def test_one_replica_takes_each_turn_and_a_loser_does_not_delay_the_next(
    store_url: str, store: Store
) -> None:
    other = open_store(store_url)
    try:
        assert store.take_turn("turn:prune", 3600, T0)
        assert not other.take_turn("turn:prune", 3600, T0)
        assert not other.take_turn("turn:prune", 3600, T0 + timedelta(minutes=59))
        assert other.take_turn("turn:prune", 3600, T0 + timedelta(minutes=60))
        assert not store.take_turn("turn:prune", 3600, T0 + timedelta(minutes=61))
    finally:
        other.close()
