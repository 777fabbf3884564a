"""The daily counters on every engine: written with the poll, exact across replicas, read by
window, pruned by age."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bot.model import Item, QueuedAlert
from bot.store import (
    DailyStats,
    FeedDay,
    FeedRow,
    PollOutcome,
    PollRecord,
    RuleDay,
    Store,
)
from bot.store.sql import STATS_DAYS
from tests.factories import distinct
from tests.integration.test_postgres_concurrency import _in_threads
from tests.integration.test_store import T0, _engines, alert, claim_all, item, told

pytestmark = pytest.mark.parametrize("store_url", _engines(), indirect=True)

DAY = T0.date()


def record(
    store: Store,
    feed: str,
    items: list[Item],
    matched: list[tuple[str, str]],
    alerts: list[QueuedAlert] = [],  # noqa: B006 - never mutated
    *,
    at: datetime = T0,
    owner: str = "w1",
    baseline: bool = False,
) -> PollRecord:
    """Claim ``feed`` and record one poll of it."""
    store.claim_feeds(owner, at + timedelta(days=1), 60, 100, due_only=False)
    return store.record_poll(
        PollOutcome(
            feed,
            owner,
            at,
            at + timedelta(minutes=10),
            items=items,
            alerts=alerts,
            matched=matched,
            baseline=baseline,
            stories=told(alerts),
        )
    )


def by_rule(stats: DailyStats) -> dict[tuple[str, date], tuple[int, int]]:
    return {(r.rule_id, r.day): (r.matches, r.alerts) for r in stats.rules}


def by_feed(stats: DailyStats) -> dict[tuple[str, date], int]:
    return {(f.feed_id, f.day): f.items for f in stats.feeds}


def test_a_poll_counts_new_items_their_matches_and_the_alerts_it_queued(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    one, two, three = (
        item("k1", "http://n/1", "One"),
        item("k2", "http://n/2", "Two"),
        item("k3", title="Three"),
    )
    got = record(
        store,
        "a",
        [one, two, three],
        [("r1", "k1"), ("r1", "k2"), ("r2", "k2")],
        [alert(one), alert(two), alert(two, dest="mail", rule="r2")],
    )
    assert got.queued_by_rule == {"r1": 2, "r2": 1}
    # Later that day: k1 again (seen: neither its match nor its alert counts), k4 new.
    four = item("k4", "http://n/4", "Four")
    later = T0 + timedelta(hours=3)
    record(
        store, "a", [one, four], [("r1", "k1"), ("r1", "k4")], [alert(one), alert(four)], at=later
    )
    # Feed b reports k1's story: a new item and a match, but no second alert for r1.
    again = item("b1", "http://n/1", "One, again", feed="b")
    record(store, "b", [again], [("r1", "b1")], [alert(again, source="Feed B")], at=later)
    stats = store.daily_stats(DAY)
    assert by_rule(stats) == {("r1", DAY): (4, 3), ("r2", DAY): (1, 1)}
    assert by_feed(stats) == {("a", DAY): 4, ("b", DAY): 1}
    assert stats.last_match == {"r1": DAY, "r2": DAY}


def test_days_are_utc_days(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    late = datetime(2026, 1, 1, 23, 59, tzinfo=UTC)
    record(store, "a", [item("k1")], [("r1", "k1")], at=late)
    # 00:30 in UTC+05:00 is still 19:30 on the 1st in UTC; 00:01 UTC is the 2nd.
    record(
        store, "a", [item("k2")], [("r1", "k2")], at=late.astimezone(timezone(timedelta(hours=5)))
    )
    record(store, "a", [item("k3")], [("r1", "k3")], at=late + timedelta(minutes=2))
    stats = store.daily_stats(date(2026, 1, 1))
    assert stats.rules == (
        RuleDay("r1", date(2026, 1, 1), 2, 0),
        RuleDay("r1", date(2026, 1, 2), 1, 0),
    )
    assert stats.feeds == (FeedDay("a", date(2026, 1, 1), 2), FeedDay("a", date(2026, 1, 2), 1))


def test_a_baseline_counts_matches_not_items_and_a_lost_lease_counts_nothing(
    store: Store,
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    backlog = [item(f"k{n}") for n in range(50)]
    got = record(store, "a", backlog, [("r1", "k1")], [alert(backlog[1])], baseline=True)
    assert got.applied
    claim_all(store, "w1", T0 + timedelta(days=1))
    lost = store.record_poll(
        PollOutcome(
            "b",
            "someone-else",
            T0,
            T0,
            items=[item("x", feed="b")],
            alerts=[alert(item("x", feed="b"))],
            matched=[("r1", "x")],
        )
    )
    assert not lost.applied and lost.queued_by_rule == {}
    stats = store.daily_stats(DAY)
    assert by_rule(stats) == {("r1", DAY): (1, 1)}
    assert by_feed(stats) == {}


def test_the_window_reads_from_its_first_day_and_the_last_match_from_any_day(
    store: Store,
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    record(store, "a", [item("k1")], [("old", "k1"), ("r1", "k1")])
    later = T0 + timedelta(days=40)
    record(store, "a", [item("k2")], [("r1", "k2")], at=later)
    stats = store.daily_stats(later.date() - timedelta(days=29))
    assert by_rule(stats) == {("r1", later.date()): (1, 0)}
    assert by_feed(stats) == {("a", later.date()): 1}
    assert stats.last_match == {"old": DAY, "r1": later.date()}


def test_prune_deletes_the_days_before_the_given_ones(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    for n in range(3):
        at = T0 + timedelta(days=n)
        record(store, "a", [item(f"k{n}")], [("r1", f"k{n}"), ("r2", f"k{n}")], at=at)
    assert prune_stats(store, T0 + timedelta(days=1, hours=5)) == 3  # two rules and a feed
    stats = store.daily_stats(date(2000, 1, 1))
    assert sorted({r.day for r in stats.rules} | {f.day for f in stats.feeds}) == [
        DAY + timedelta(days=1),
        DAY + timedelta(days=2),
    ]
    assert prune_stats(store, T0 + timedelta(days=1)) == 0


def prune_stats(store: Store, before: datetime) -> int:
    """Prune as retention does on the day the counters before ``before``'s day expire."""
    now = before + timedelta(days=STATS_DAYS)
    return store.prune(now, now - timedelta(days=30), now - timedelta(days=180)).stats


FEEDS, ITEMS = 20, 10


def _replica(n: int, store: Store) -> int:
    """Record a poll of each feed replica ``n`` holds: ten items, all matched by r1 (to the
    desk) and the even ones by r2 (to mail); the first item of every feed is the same story."""
    polled = 0
    for feed in [f"f{k:02d}" for k in range(n, FEEDS, 2)]:
        items = [item(f"{feed}-0", "http://n/shared", "Shared story", feed=feed)] + [
            item(
                f"{feed}-{i}",
                title=f"{feed} story {i} {distinct(100 * int(feed[1:]) + i)}",
                feed=feed,
            )
            for i in range(1, ITEMS)
        ]
        matched = [("r1", i.key) for i in items] + [("r2", i.key) for i in items[::2]]
        alerts = [alert(i, rule="r1", source=feed) for i in items] + [
            alert(i, dest="mail", rule="r2", source=feed) for i in items[::2]
        ]
        outcome = PollOutcome(
            feed,
            f"w{n}",
            T0,
            T0 + timedelta(hours=1),
            items=items,
            alerts=alerts,
            matched=matched,
            stories=told(alerts),
        )
        assert store.record_poll(outcome).applied
        polled += 1
    return polled


def test_replicas_polling_together_count_every_match_and_alert_once(
    store_url: str, store: Store
) -> None:
    store.sync_feeds([FeedRow(f"f{n:02d}", f"http://x/{n}") for n in range(FEEDS)], T0)
    for k in range(FEEDS):  # in feed order: the even feeds to w0, the odd ones to w1
        (claimed,) = store.claim_feeds(f"w{k % 2}", T0, 300, 1, due_only=False)
        assert claimed.feed_id == f"f{k:02d}"
    assert _in_threads(2, _replica, store_url) == [FEEDS // 2, FEEDS // 2]
    stats = store.daily_stats(DAY)
    # The shared story alerts each destination once, whichever replica queued it first.
    assert by_rule(stats) == {
        ("r1", DAY): (FEEDS * ITEMS, FEEDS * (ITEMS - 1) + 1),
        ("r2", DAY): (FEEDS * ITEMS // 2, FEEDS * (ITEMS // 2 - 1) + 1),
    }
    assert by_feed(stats) == {(f"f{n:02d}", DAY): ITEMS for n in range(FEEDS)}
