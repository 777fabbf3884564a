"""Several replicas on one PostgreSQL, for real: threads and processes, each with its own
connection, started together on a barrier. Nothing is claimed, queued or migrated twice."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bot.model import Alert, Item, Posted, QueuedAlert, Summary
from bot.store import FeedRow, PollOutcome, Store, StorySighting, open_store
from bot.store.postgres import POSTGRES as DIALECT
from bot.store.sql import SqlStore, migrations
from bot.stories.cluster import signature
from tests.peers.postgres import postgres_dsn, temporary_database

DSN, NO_POSTGRES = postgres_dsn()
pytestmark = [pytest.mark.postgres, pytest.mark.skipif(DSN is None, reason=NO_POSTGRES)]

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WORKERS = 8
# Each process forks from a server that has imported this module once: a start costs
# milliseconds, where "spawn" paid a fresh interpreter's imports (~0.7 s here) for every one.
PROCESSES = multiprocessing.get_context("forkserver")
PROCESSES.set_forkserver_preload([__name__])


@pytest.fixture
def url() -> Iterator[str]:
    with temporary_database(DSN or "") as database:
        yield database


def _alert(it: Item, source: str) -> QueuedAlert:
    a = Alert(
        rule_id="r1",
        rule_title="Rule",
        destination="desk",
        feed_id=it.feed_id,
        source=source,
        item_key=it.key,
        title=it.title,
        link=it.link,
        published=None,
        first_seen=T0,
        summary=Summary("text"),
        terms=("t",),
    )
    return QueuedAlert(a, T0)


def _told(items: list[Item], source: str) -> dict[str, StorySighting]:
    return {i.key: StorySighting(signature(i.title, "", i.link), source) for i in items}


def _in_threads(count: int, work: Callable[[int, Store], Any], url: str) -> list[Any]:
    """Run ``work(n, store)`` in ``count`` threads, each with its own connection, released
    together; returns their results in order and re-raises the first failure."""
    stores = [open_store(url) for _ in range(count)]
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = work(n, stores[n])
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for store in stores:
        store.close()
    if errors:
        raise errors[0]
    return results


def _in_processes(count: int, target: Callable[..., None], *args: Any) -> list[Any]:
    """Run ``target(barrier, results, n, *args)`` in ``count`` processes released together."""
    barrier = PROCESSES.Barrier(count)
    results = PROCESSES.Queue()
    procs = [
        PROCESSES.Process(target=target, args=(barrier, results, n, *args)) for n in range(count)
    ]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    failures = [o for o in out if isinstance(o, str) and o.startswith("error")]
    assert not failures, failures
    return out


# -- migrations -------------------------------------------------------------------------
def _first_start(barrier: Any, results: Any, n: int, url: str, feeds: list[FeedRow]) -> None:
    try:
        conn = psycopg.connect(url, autocommit=True)
        store = SqlStore(conn, DIALECT)
        barrier.wait(timeout=60)
        store.migrate()
        store.sync_feeds(feeds, T0)
        store.close()
        results.put("ok")
    except BaseException as err:
        results.put(f"error {n}: {err!r}")


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_first_starts_migrate_once(url: str, round_: int) -> None:
    feeds = [FeedRow(f"f{i:03d}", f"http://x/{i}") for i in range(50)]
    assert _in_processes(6, _first_start, url, feeds) == ["ok"] * 6
    with psycopg.connect(url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        active = conn.execute("SELECT count(*) FROM feeds WHERE active = 1").fetchone()
    assert versions == [v for v, _ in migrations(DIALECT)]
    assert active == (50,)


# -- claims ---------------------------------------------------------------------------
def test_concurrent_workers_claim_every_feed_exactly_once(url: str) -> None:
    setup = open_store(url)
    setup.sync_feeds([FeedRow(f"f{i:04d}", f"http://x/{i}") for i in range(400)], T0)
    setup.close()

    def work(n: int, store: Store) -> list[str]:
        claimed = []
        while states := store.claim_feeds(f"w{n}", T0, 300, 3, due_only=True):
            for s in states:
                record = store.record_poll(
                    PollOutcome(s.feed_id, f"w{n}", T0, T0 + timedelta(hours=1))
                )
                assert record.applied
                claimed.append(s.feed_id)
        return claimed

    per_worker = _in_threads(WORKERS, work, url)
    counts = Counter(f for claimed in per_worker for f in claimed)
    assert len(counts) == 400 and set(counts.values()) == {1}
    assert sum(1 for claimed in per_worker if claimed) > 1  # the work really was shared


def test_a_dead_workers_feeds_come_back_after_its_lease_and_its_late_write_is_dropped(
    url: str,
) -> None:
    setup = open_store(url)
    setup.sync_feeds([FeedRow(f"f{i:02d}", f"http://x/{i}") for i in range(40)], T0)
    dead = {s.feed_id for s in setup.claim_feeds("dead", T0, 60, 10, due_only=True)}
    setup.close()
    later = T0 + timedelta(seconds=61)

    def work(n: int, store: Store) -> list[str]:
        claimed = []
        while states := store.claim_feeds(f"w{n}", later, 300, 2, due_only=True):
            for s in states:
                next_at = later + timedelta(hours=1)
                store.record_poll(PollOutcome(s.feed_id, f"w{n}", later, next_at))
                claimed.append(s.feed_id)
        return claimed

    counts = Counter(f for claimed in _in_threads(4, work, url) for f in claimed)
    assert len(counts) == 40 and set(counts.values()) == {1}
    store = open_store(url)
    try:
        it = Item(sorted(dead)[0], "k", "A story")
        late = store.record_poll(
            PollOutcome(it.feed_id, "dead", later, later, items=[it], alerts=[_alert(it, "x")])
        )
        assert late.applied is False and store.outbox_counts(later).pending == 0
    finally:
        store.close()


def test_concurrent_workers_claim_every_outbox_row_exactly_once(url: str) -> None:
    setup = open_store(url)
    setup.sync_feeds([FeedRow("a", "http://x/a")], T0)
    setup.claim_feeds("setup", T0, 60, 1, due_only=False)
    items = [Item("a", f"k{i:04d}", f"Story {i}") for i in range(1000)]
    setup.record_poll(
        PollOutcome("a", "setup", T0, T0, items=items, alerts=[_alert(i, "A") for i in items])
    )
    setup.close()

    def work(n: int, store: Store) -> list[int]:
        claimed: list[int] = []
        while entries := store.claim_outbox(f"s{n}", T0, 300, 5, due_only=True):
            store.mark_sent([e.id for e in entries], f"s{n}", T0)
            claimed.extend(e.id for e in entries)
        return claimed

    per_worker = _in_threads(WORKERS, work, url)
    counts = Counter(i for claimed in per_worker for i in claimed)
    assert len(counts) == 1000 and set(counts.values()) == {1}
    check = open_store(url)
    assert check.outbox_counts(T0).sent == 1000
    check.close()


# -- stories ----------------------------------------------------------------------------
@pytest.mark.parametrize("round_", range(3))
def test_the_same_stories_recorded_concurrently_from_many_feeds_queue_once(
    url: str, round_: int
) -> None:
    feeds = [f"feed{n}" for n in range(WORKERS)]
    setup = open_store(url)
    setup.sync_feeds([FeedRow(f, f"http://x/{f}") for f in feeds], T0)
    setup.claim_feeds("w", T0, 300, WORKERS, due_only=False)
    setup.close()

    def work(n: int, store: Store) -> tuple[int, int]:
        # Every feed carries the same 60 stories, under its own guids, in its own order.
        stories = list(range(60))
        random.Random(n).shuffle(stories)
        items = [Item(feeds[n], f"{feeds[n]}-{j}", f"Story {j}", f"http://n/{j}") for j in stories]
        record = store.record_poll(
            PollOutcome(
                feeds[n],
                "w",
                T0,
                T0,
                items=items,
                alerts=[_alert(i, feeds[n]) for i in items],
                stories=_told(items, feeds[n]),
            )
        )
        return record.queued, record.duplicates

    results = _in_threads(WORKERS, work, url)
    assert sum(q for q, _ in results) == 60
    assert sum(d for _, d in results) == 60 * (WORKERS - 1)
    store = open_store(url)
    try:
        entries = store.claim_outbox("s", T0, 60, 1000, due_only=True)
        stories = store.recent_stories(T0)
    finally:
        store.close()
    assert sorted(e.alert.title for e in entries if e.alert) == sorted(
        f"Story {j}" for j in range(60)
    )
    for entry in entries:
        assert entry.alert is not None
        assert sorted({entry.alert.source, *entry.also_reported_by}) == feeds
    assert len(stories) == 60 and {len(s.sightings) for s in stories} == {WORKERS}


def _wait_until(what: str, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def _waiting_on_a_lock(pid: int) -> Callable[[], bool]:
    def check() -> bool:
        with psycopg.connect(DSN or "", autocommit=True) as conn:
            row = conn.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
        return row is not None and row[0] == "Lock"

    return check


def test_a_story_a_rival_is_recording_is_joined_once_the_rival_commits(url: str) -> None:
    store = open_store(url)
    store.sync_feeds([FeedRow("a", "http://x/a"), FeedRow("b", "http://x/b")], T0)
    store.claim_feeds("w", T0, 300, 2, due_only=False)
    rival = open_store(url)
    rival_conn: Any = rival._conn  # type: ignore[attr-defined]
    rival_conn.execute("BEGIN")  # the rival's poll, open until committed below
    taken = Item("b", "kb", "Story", "http://n/1")
    rival_record = rival._queue(  # type: ignore[attr-defined]
        [_alert(taken, "Feed B")],
        PollOutcome("b", "w", T0, T0, stories=_told([taken], "Feed B")),
    )
    assert [q.alert.item_key for q in rival_record[0]] == ["kb"]
    it = Item("a", "ka", "Story", "http://n/1")
    outcome: list[Any] = []
    recorder = threading.Thread(
        target=lambda: outcome.append(
            store.record_poll(
                PollOutcome(
                    "a",
                    "w",
                    T0,
                    T0,
                    items=[it],
                    alerts=[_alert(it, "Feed A")],
                    stories=_told([it], "Feed A"),
                )
            )
        )
    )
    recorder.start()
    _wait_until(
        "the recorder waits for the rival's story decisions",
        _waiting_on_a_lock(store._conn.info.backend_pid),  # type: ignore[attr-defined]
    )
    rival_conn.execute("COMMIT")
    recorder.join(timeout=30)
    rival.close()
    (record,) = outcome
    assert (record.new_items, record.queued, record.duplicates) == (1, 0, 1)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT item_key, also_reported_by FROM outbox ORDER BY id").fetchall()
    store.close()
    assert rows == [("kb", '["Feed A"]')]


LATER = T0 + timedelta(hours=73)  # past the story's window
MISSION = "Canada will send up to 20 RCMP officers to Mosul to train Iraqi police"


@pytest.mark.parametrize("round_", range(3))
def test_replicas_sighting_a_closed_story_at_once_queue_it_once(url: str, round_: int) -> None:
    feeds = [f"feed{n}" for n in range(WORKERS)]
    store = open_store(url)
    store.sync_feeds([FeedRow(f, f"http://x/{f}") for f in ["old", *feeds]], T0)
    store.claim_feeds("w", T0, 3 * 86400, len(feeds) + 1, due_only=False)
    first = Item("old", "k0", MISSION)
    store.record_poll(
        PollOutcome(
            "old",
            "w",
            T0,
            T0,
            items=[first],
            alerts=[_alert(first, "Old")],
            stories=_told([first], "Old"),
        )
    )
    store.close()

    def work(n: int, store: Store) -> tuple[int, int]:
        it = Item(feeds[n], f"k{n}", MISSION)
        record = store.record_poll(
            PollOutcome(
                feeds[n],
                "w",
                LATER,
                LATER,
                items=[it],
                alerts=[_alert(it, feeds[n])],
                stories=_told([it], feeds[n]),
            )
        )
        return record.queued, record.duplicates

    results = _in_threads(WORKERS, work, url)
    assert sorted(results) == [(0, 1)] * (WORKERS - 1) + [(1, 0)]
    with psycopg.connect(url) as conn:
        newest = conn.execute(
            "SELECT id, also_reported_by FROM outbox ORDER BY id DESC LIMIT 1"
        ).fetchone()
        stories = conn.execute("SELECT count(*) FROM stories").fetchone()
    assert len(json.loads(newest[1])) == WORKERS - 1
    assert stories == (2,)


def test_three_replicas_send_a_story_once_and_each_sighting_once_after_it(url: str) -> None:
    """Three replicas poll feeds carrying one story, then deliver: one alert, and every later
    sighting exactly once, never before the alert it replies to."""
    feeds = [f"feed{n}" for n in range(9)]
    store = open_store(url)
    store.sync_feeds([FeedRow(f, f"http://x/{f}") for f in feeds], T0)
    store.claim_feeds("w", T0, 3600, 9, due_only=False)
    store.close()
    order: list[tuple[str, int]] = []
    lock = threading.Lock()

    def poll_and_deliver(n: int, store: Store) -> None:
        for step in range(3):  # three poll rounds, each sighting the story from three feeds
            at = T0 + timedelta(minutes=10 * step)
            feed = feeds[3 * step + n]
            it = Item(feed, f"k-{feed}", "Police mission to Iraq", f"http://n/{feed}")
            store.record_poll(
                PollOutcome(
                    feed,
                    "w",
                    at,
                    at,
                    items=[it],
                    alerts=[_alert(it, feed)],
                    stories=_told([it], feed),
                )
            )
            while entries := store.claim_outbox(f"s{n}", at, 3600, 5, due_only=True):
                for e in entries:
                    with lock:
                        order.append(("alert" if e.alert else "sighting", e.id))
                    parent = e.parent
                    assert e.alert is not None or (parent is not None and parent.posted)
                    posted = Posted("C1", f"{e.id}.0") if e.alert else None
                    store.mark_sent([e.id], f"s{n}", at, posted)

    _in_threads(3, poll_and_deliver, url)
    check = open_store(url)
    try:
        # A sighting queued while a rival was sending its alert waits for the next pass.
        for e in check.claim_outbox("last", T0 + timedelta(hours=1), 300, 10, due_only=True):
            assert e.sighting is not None and e.parent is not None and e.parent.posted
            order.append(("sighting", e.id))
            check.mark_sent([e.id], "last", T0)
        counts = Counter(entry_id for _, entry_id in order)
        assert set(counts.values()) == {1}
        kinds = Counter(kind for kind, _ in order)
        (story,) = check.recent_stories(T0)
        assert check.outbox_counts(T0 + timedelta(hours=1)).pending == 0
    finally:
        check.close()
    assert kinds["alert"] == 1
    assert len(story.sightings) == 9
    (desk,) = story.deliveries
    # Sightings recorded while the alert was unsent joined its "also reported by".
    assert desk.sightings == desk.sightings_sent == kinds["sighting"]
