"""The attention budget in the store, on every engine: caps counted at queue time (exact
across replicas), the day counters of what priority, quiet hours and caps did, spike
counts and spike alerts (once per window across replicas), their pruning and migration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.config.schema import Spike
from bot.model import CapCount, Item, QueuedAlert
from bot.store import (
    FeedRow,
    OutboxEntry,
    PollOutcome,
    PollRecord,
    RuleDay,
    SpikeWatch,
    Store,
    open_store,
)
from bot.store.postgres import POSTGRES as POSTGRES_DIALECT
from bot.store.sql import migrations
from bot.store.sqlite import SQLITE
from tests.factories import distinct
from tests.integration.test_postgres_concurrency import _in_threads
from tests.integration.test_store import T0, _engines, alert, item, raw, told

pytestmark = pytest.mark.parametrize("store_url", _engines(), indirect=True)

HOUR = timedelta(hours=1)
END = T0 + HOUR  # the end of the cap period T0 is in (caps of 1h)
WINDOW = 6 * 3600.0


def story(n: int, feed: str = "a") -> Item:
    """An item telling story ``n`` (a story of its own: no other ``n`` clusters with it)."""
    return item(f"{feed}-{n}", f"http://n/{n}", f"Story {distinct(n)}", feed=feed)


def cap(key: str, most: int, end: datetime = END, release: datetime | None = None) -> CapCount:
    return CapCount(key, most, end, release or end)


def capped(q: QueuedAlert, *caps: CapCount) -> QueuedAlert:
    return replace(q, caps=caps)


def poll(
    store: Store,
    feed: str,
    items: Sequence[Item],
    alerts: Sequence[QueuedAlert],
    *,
    at: datetime = T0,
    owner: str = "w1",
    stories: bool = True,
    spikes: Sequence[SpikeWatch] = (),
) -> PollRecord:
    """Claim ``feed`` and record one poll of it at ``at``; ``stories``: the alerts tell
    stories (else they are queued as they are, like overflow rows)."""
    store.claim_feeds(owner, at + timedelta(days=1), 60, 100, due_only=False)
    record = store.record_poll(
        PollOutcome(
            feed,
            owner,
            at,
            at + timedelta(minutes=10),
            items=items,
            alerts=alerts,
            matched=[(q.alert.rule_id, q.alert.item_key) for q in alerts],
            stories=told(list(alerts)) if stories else {},
            spikes=spikes,
        )
    )
    assert record.applied
    return record


def claim(store: Store, at: datetime) -> list[OutboxEntry]:
    """Every row due at ``at``, marked sent (so the next claim sees only what came since)."""
    entries = store.claim_outbox("d", at, 60, 1000, due_only=True)
    store.mark_sent([e.id for e in entries], "d", at)
    return entries


def rows(entries: Sequence[OutboxEntry]) -> list[tuple[str, bool, str | None]]:
    return sorted(
        (e.alert.item_key, e.digest, e.alert.held) for e in entries if e.alert is not None
    )


@pytest.mark.parametrize("stories", [True, False], ids=["stories", "plain"])
def test_alerts_past_a_cap_wait_for_its_release_as_one_digest(store: Store, stories: bool) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    later = END + 2 * HOUR  # the destination's quiet hours end then
    items = [story(n) for n in range(1, 5)]
    record = poll(
        store,
        "a",
        items,
        [capped(alert(i), cap("destination:desk", 2, release=later)) for i in items],
        stories=stories,
    )
    assert record.queued == 4
    assert rows(claim(store, T0)) == [("a-1", False, None), ("a-2", False, None)]
    (held,) = store.held_for_digest(T0)
    assert (held.destination, held.count, held.closes_at) == ("desk", 2, later)
    assert claim(store, END) == []
    assert rows(claim(store, later)) == [("a-3", True, "cap"), ("a-4", True, "cap")]
    (day,) = store.daily_stats(T0.date()).rules
    assert (day.alerts, day.capped, day.held, day.urgent) == (4, 2, 0, 0)


def test_a_row_waits_for_the_caps_it_exceeds_only_and_a_new_period_starts_afresh(
    store: Store,
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    late, later = END + HOUR, END + 3 * HOUR
    desk = cap("destination:desk", 3, release=later)
    rule = cap("rule:r1:desk", 1, release=late)
    first = [story(1), story(2)]
    poll(store, "a", first, [capped(alert(i), desk, rule) for i in first])
    # The second row is past the rule's cap only: it waits for that cap's release.
    assert rows(claim(store, T0)) == [("a-1", False, None)]
    assert rows(claim(store, late)) == [("a-2", True, "cap")]
    # Both rows counted against the destination's cap (3): one more goes out on its own.
    other = [story(3), story(4)]
    poll(store, "a", other, [capped(alert(i, rule="r2"), desk) for i in other])
    assert rows(claim(store, T0)) == [("a-3", False, None)]
    # The next period counts from zero.
    nxt = [story(5), story(6)]
    poll(
        store,
        "a",
        nxt,
        [
            capped(
                alert(i), cap("destination:desk", 3, END + HOUR), cap("rule:r1:desk", 1, END + HOUR)
            )
            for i in nxt
        ],
        at=END,
    )
    assert rows(claim(store, END)) == [("a-5", False, None)]
    assert rows(claim(store, later)) == [("a-4", True, "cap"), ("a-6", True, "cap")]


def test_urgent_digest_and_overflow_rows_neither_count_nor_fold(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    one = cap("destination:desk", 1)
    urgent, digest, overflow, normal, past = (story(n) for n in range(1, 6))
    queued = [
        capped(replace(alert(urgent), alert=replace(alert(urgent).alert, priority="urgent")), one),
        capped(replace(alert(digest), digest=True, deliver_at=END), one),
        capped(replace(alert(overflow), alert=replace(alert(overflow).alert, folded_count=9)), one),
        capped(alert(normal), one),
        capped(alert(past), one),
    ]
    poll(store, "a", [urgent, digest, overflow, normal, past], queued)
    assert rows(claim(store, T0)) == [
        ("a-1", False, None),
        ("a-3", False, None),
        ("a-4", False, None),
    ]
    assert rows(claim(store, END)) == [("a-2", True, None), ("a-5", True, "cap")]
    (day,) = store.daily_stats(T0.date()).rules
    assert (day.alerts, day.urgent, day.capped) == (5, 1, 1)


def test_day_counters_say_what_priority_quiet_hours_and_caps_did(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    items = [story(n) for n in range(1, 6)]
    one = cap("destination:desk", 1)
    quiet = replace(alert(items[2]), digest=True, deliver_at=END)
    queued = [
        replace(alert(items[0]), alert=replace(alert(items[0]).alert, priority="urgent")),
        capped(alert(items[1]), one),
        replace(quiet, alert=replace(quiet.alert, held="quiet")),
        capped(alert(items[3]), one),
        capped(alert(items[4], rule="r2"), one),
    ]
    poll(store, "a", items, queued)
    assert store.daily_stats(T0.date()).rules == (
        RuleDay("r1", T0.date(), 4, 4, urgent=1, held=1, capped=1),
        RuleDay("r2", T0.date(), 1, 1, urgent=0, held=0, capped=1),
    )


def _replica_polls(feeds: int, items: int, most: int) -> Callable[[int, Store], int]:
    """Work for replica ``n``: poll its feeds, each serving ``items`` stories, every alert
    counted against one cap of ``most``; even feeds tell stories, odd ones do not."""

    def work(n: int, store: Store) -> int:
        for f in range(feeds):
            feed = f"f{n}{f}"
            its = [story(1000 * n + 100 * f + k, feed) for k in range(items)]
            store.claim_feeds(f"w{n}", T0, 300, 100, due_only=False)
            store.record_poll(
                PollOutcome(
                    feed,
                    f"w{n}",
                    T0,
                    T0 + HOUR,
                    items=its,
                    alerts=[
                        capped(alert(i, source=feed), cap("destination:desk", most)) for i in its
                    ],
                    stories=told([alert(i, source=feed) for i in its]) if f % 2 == 0 else {},
                )
            )
        return feeds

    return work


def test_replicas_queuing_together_send_exactly_a_caps_worth_on_their_own(
    store_url: str, store: Store
) -> None:
    replicas, feeds, items, most = 3, 4, 5, 7
    store.sync_feeds(
        [FeedRow(f"f{n}{f}", f"http://x/{n}/{f}") for n in range(replicas) for f in range(feeds)],
        T0,
    )
    for n in range(replicas):  # each replica its own feeds, claimed beforehand
        for f in range(feeds):
            (claimed,) = store.claim_feeds(f"w{n}", T0, 300, 1, due_only=False)
            assert claimed.feed_id == f"f{n}{f}"
    assert _in_threads(replicas, _replica_polls(feeds, items, most), store_url) == [feeds] * 3
    alone = claim(store, T0)
    assert len(alone) == most and not any(e.digest for e in alone)
    folded = claim(store, END)
    assert len(folded) == replicas * feeds * items - most
    assert all(e.digest and e.alert is not None and e.alert.held == "cap" for e in folded)


# -- spikes -------------------------------------------------------------------------------
def watch(*destinations: str, most: int = 3) -> SpikeWatch:
    """Rule r1 watched for spikes of 6 hours, 3 times the usual, at least ``most``."""
    templates = tuple(
        replace(alert(Item("", "", "r1 spike"), dest=d), caps=(cap(f"destination:{d}", 1),))
        for d in destinations
    )
    return SpikeWatch("r1", Spike(window=WINDOW, factor=3.0, min=most), templates)


def stories_at(
    store: Store,
    ns: Sequence[int],
    at: datetime,
    feed: str = "a",
    spikes: Sequence[SpikeWatch] = (),
) -> PollRecord:
    its = [story(n, feed) for n in ns]
    return poll(
        store,
        feed,
        its,
        [alert(i, source=feed) for i in its],
        at=at,
        spikes=spikes or [watch("desk", "mail")],
    )


def spike_rows(entries: Sequence[OutboxEntry]) -> list[OutboxEntry]:
    return sorted(
        (e for e in entries if e.alert is not None and e.alert.spike is not None),
        key=lambda e: e.destination,
    )


def test_a_spike_fires_once_per_window_past_the_usual_count(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    start = T0 - timedelta(days=14)
    for w in range(14 * 4):  # one story in every 6-hour window of the past 14 days
        stories_at(store, [w], start + w * timedelta(seconds=WINDOW))
    claim(store, T0)
    # 3 stories in the window: not more than 3 times the usual 1.
    assert stories_at(store, [101, 102, 103], T0).queued == 3
    assert stories_at(store, [101], T0 + HOUR, feed="b").queued == 0  # an outlet more: no story
    assert spike_rows(claim(store, T0 + HOUR)) == []
    record = stories_at(store, [104], T0 + 2 * HOUR)
    assert record.queued == 3 and record.queued_by_rule == {"r1": 3}
    desk, mail = spike_rows(claim(store, T0 + 2 * HOUR))
    for entry in (desk, mail):
        a = entry.alert
        assert a is not None and a.spike is not None
        assert (a.spike.count, a.spike.usual, a.spike.window) == (4, 1.0, WINDOW)
        assert a.folded_count == 4 and a.held is None and not entry.digest
        assert a.item_key == f"spike:r1:{int((T0 + 2 * HOUR).timestamp())}"
        # Most outlets first, then the latest sighted; the older story is out of the window.
        assert [f.title for f in a.folded] == [story(n).title for n in (101, 104, 103, 102)]
        assert a.folded[0].link == "http://n/101" and a.folded[0].rule_titles == ("Rule",)
    assert [desk.destination, mail.destination] == ["desk", "mail"]
    # More stories within the window: no second spike.
    assert stories_at(store, [105, 106], T0 + 5 * HOUR).queued == 2
    assert spike_rows(claim(store, T0 + 5 * HOUR)) == []
    # A window after the first, the spike fires again (the first burst is one earlier window
    # of 56: the usual count stays 1).
    assert stories_at(store, [107, 108, 109, 110], T0 + 8 * HOUR).queued == 6
    again = spike_rows(claim(store, T0 + 8 * HOUR))
    assert [e.destination for e in again] == ["desk", "mail"]
    assert again[0].alert is not None and again[0].alert.spike is not None
    assert again[0].alert.spike.count == 6


def test_a_rule_counted_for_less_than_four_windows_never_spikes(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    # Counted for a day: three whole windows before this one, too few to know the usual.
    start = T0 - 4 * timedelta(seconds=WINDOW)
    stories_at(store, [0], start, spikes=[watch("desk", most=3)])
    stories_at(store, [1, 2, 3, 4, 5], T0, spikes=[watch("desk", most=3)])
    assert spike_rows(claim(store, T0)) == []
    stories_at(store, [6], T0 + timedelta(seconds=WINDOW), spikes=[watch("desk", most=1)])
    (spike,) = spike_rows(claim(store, T0 + timedelta(seconds=WINDOW)))  # the fourth is there
    assert spike.alert is not None and spike.alert.spike is not None
    assert spike.alert.spike.usual == 0.0


def test_a_spike_needs_its_minimum_and_counts_only_watched_rules(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    stories_at(store, [0], T0 - timedelta(days=2), spikes=[watch("desk", most=3)])  # counted since
    stories_at(store, [1, 2], T0, spikes=[watch("desk", most=3)])
    assert spike_rows(claim(store, T0)) == []
    other = replace(watch("desk", most=1), rule_id="r9")  # r9 matches nothing here
    stories_at(store, [3], T0, spikes=[watch("desk", most=3), other])
    (spike,) = spike_rows(claim(store, T0))
    assert spike.alert is not None and spike.alert.rule_id == "r1"


def test_replicas_seeing_a_spike_together_alert_it_once_per_destination(
    store_url: str, store: Store
) -> None:
    replicas = 3
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    stories_at(store, [99], T0 - timedelta(days=2), spikes=[watch("desk", "mail", most=5)])
    store.sync_feeds([FeedRow(f"f{n}", f"http://x/{n}") for n in range(replicas)], T0)
    for n in range(replicas):
        (claimed,) = store.claim_feeds(f"w{n}", T0, 300, 1, due_only=False)
        assert claimed.feed_id == f"f{n}"

    def work(n: int, replica: Store) -> int:
        its = [story(10 * n + k, f"f{n}") for k in range(3)]
        replica.record_poll(
            PollOutcome(
                f"f{n}",
                f"w{n}",
                T0,
                T0 + HOUR,
                items=its,
                alerts=[alert(i, source=f"f{n}") for i in its],
                matched=[("r1", i.key) for i in its],
                stories=told([alert(i, source=f"f{n}") for i in its]),
                spikes=[watch("desk", "mail", most=5)],
            )
        )
        return n

    assert _in_threads(replicas, work, store_url) == list(range(replicas))
    spikes = spike_rows(claim(store, T0))
    assert [e.destination for e in spikes] == ["desk", "mail"]
    # The replica whose stories made 6 of the 5 needed fired; the next one found it fired.
    assert all(e.alert is not None and e.alert.folded_count == 6 for e in spikes)


# -- retention and migration --------------------------------------------------------------
def count(url: str, table: str) -> int:
    ((n,),) = raw(url, f"SELECT count(*) FROM {table}")
    return int(n)


def test_prune_lets_attention_counters_go_when_nothing_reads_them(
    store_url: str, store: Store
) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    items = [story(n) for n in range(1, 6)]
    poll(
        store,
        "a",
        items,
        [capped(alert(i), cap("destination:desk", 10)) for i in items],
        spikes=[watch("desk")],
    )
    tables = ("cap_counts", "rule_hours", "story_rules", "spikes")
    assert [count(store_url, t) for t in tables] == [1, 1, 5, 1]
    # A day on: the cap's period is over; the spike counts are still read.
    report = store.prune(T0 + timedelta(days=1), T0 - timedelta(days=1), T0 - timedelta(days=1))
    assert report.stats == 1
    assert [count(store_url, t) for t in tables] == [0, 1, 5, 1]
    # Eighteen days on: the hour is past every baseline, and the stories are pruned with
    # what they counted for; the rule's row (since when it is counted) stays.
    late = T0 + timedelta(days=18)
    report = store.prune(late, late, late)
    assert report.stats == 1 and report.stories == 5
    assert [count(store_url, t) for t in tables] == [0, 0, 0, 1]


def test_a_version_9_store_is_upgraded_and_keeps_its_day_counters(store_url: str) -> None:
    dialect = SQLITE if store_url.startswith("sqlite:") else POSTGRES_DIALECT
    raw(
        store_url,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        *(s for version, steps in migrations(dialect) if version <= 9 for s in steps),
        "INSERT INTO schema_version VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9)",
        f"INSERT INTO rule_days (rule_id, day, matches, alerts) VALUES ('r1', '{T0.date()}', 3, 2)",
    )
    store = open_store(store_url)
    try:
        store.sync_feeds([FeedRow("a", "http://x/a")], T0)
        items = [story(1), story(2)]
        poll(store, "a", items, [capped(alert(i), cap("destination:desk", 1)) for i in items])
        assert store.daily_stats(T0.date()).rules == (
            RuleDay("r1", T0.date(), 5, 4, urgent=0, held=0, capped=1),
        )
    finally:
        store.close()
