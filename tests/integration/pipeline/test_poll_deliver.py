"""Poll → match → enqueue → deliver in-process, over the real store: baseline, routing,
stories, retries, give-up, digests, flood folding and leases."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from bot.errors import StoreError
from bot.model import Alert
from bot.notify import Attempt
from bot.store import PollOutcome, PollRecord, Store
from tests.factories import distinct
from tests.integration.pipeline.harness import (
    T0,
    Harness,
    email,
    refused,
    retryable,
    rule,
    run,
    settings,
    unreachable,
    url,
)
from tests.peers.rss import Entry

OLD = Entry("RCMP budget tabled", "RCMP spending.", "https://news.example/old", published=T0)
MOSUL = Entry(
    "RCMP officers head to Mosul",
    "The RCMP will lead a police mission in Iraq.",
    "https://news.example/mosul",
    published=T0,
)
HOCKEY = Entry("Hockey night", "The Leafs won.", "https://news.example/hockey", published=T0)
POLICE = rule("police", "RCMP")


def _stories(n: int, word: str = "RCMP") -> list[Entry]:
    return [
        Entry(f"{word} story {i} {distinct(i)}", f"{word} news.", f"https://news.example/{i}")
        for i in range(n)
    ]


def test_the_first_fetch_marks_items_seen_and_only_later_items_alert(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [OLD])
    first = h.poll()
    assert [(f.status, f.new_items) for f in first.feeds] == [("baseline", 1)]
    assert first.alerts == [] and store.outbox_counts(h.time.now).pending == 0

    h.fetcher.serve(url("a"), [MOSUL, HOCKEY, OLD])
    second = h.poll()
    assert [(f.status, f.new_items) for f in second.feeds] == [("ok", 2)]
    assert [a.title for a in second.alerts] == [MOSUL.title]
    assert h.deliver().sent == 1
    (message,) = h.notifiers["desk"].alerts
    assert [a.title for a in message] == [MOSUL.title]
    assert "RCMP" in message[0].summary.text  # summarized before it was queued

    again = h.poll()  # the same document: nothing new, and a conditional GET
    assert [f.status for f in again.feeds] == ["not_modified"]
    assert h.fetcher.requests[-1][1] is not None
    assert h.deliver().sent == 0
    assert h.notifiers["desk"].calls == 1


def test_an_alert_shows_its_terms_as_written_and_no_made_up_date(store: Store) -> None:
    h = Harness(store, settings(), [rule("iraq", "iraq OR mosul")])
    h.fetcher.serve(url("a"), [OLD])
    h.poll()
    undated = Entry("Officers head to MOSUL", "A police mission in Iraq.", "https://n.example/u")
    h.fetcher.serve(url("a"), [undated, OLD])
    h.poll()
    assert h.deliver().sent == 1
    ((sent,),) = h.notifiers["desk"].alerts  # through the outbox: stored and read back
    assert sent.terms == ("iraq", "mosul")  # the key summaries are made from
    assert sent.shown_terms == ("Iraq", "MOSUL")  # what a reader sees
    assert sent.published is None and sent.first_seen == h.time.now


def test_backfill_alerts_the_recent_items_of_a_first_fetch(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    stale = Entry(
        "RCMP history", "RCMP.", "https://news.example/stale", published=T0 - timedelta(days=3)
    )
    h.fetcher.serve(url("a"), [MOSUL, stale])
    report = h.poll(backfill=86400)
    assert [f.status for f in report.feeds] == ["baseline"]
    assert [a.title for a in report.alerts] == [MOSUL.title]


def test_each_rule_alerts_its_own_destinations(store: Store) -> None:
    config = settings(destinations={"desk": {"type": "console"}, "ops": {"type": "console"}})
    h = Harness(store, config, [rule("police", "RCMP", notify=["desk"]), rule("iraq", "Iraq")])
    h.fetcher.serve(url("a"), [OLD])
    h.poll()
    h.fetcher.serve(url("a"), [MOSUL, OLD])
    h.poll()
    assert h.deliver().sent == 2  # one message per destination, naming every rule
    desk, ops = h.notifiers["desk"], h.notifiers["ops"]
    assert [(m[0].rule_id, m[0].also_matched) for m in desk.alerts] == [("police", ("Rule iraq",))]
    assert [(m[0].rule_id, m[0].also_matched) for m in ops.alerts] == [("iraq", ())]


def test_one_story_in_two_feeds_alerts_once_naming_both(store: Store) -> None:
    h = Harness(store, settings(feeds=("a", "b")), [POLICE])
    for feed in ("a", "b"):
        h.fetcher.serve(url(feed), [OLD], title=f"Feed {feed}")
    h.poll()
    for feed in ("a", "b"):
        h.fetcher.serve(url(feed), [MOSUL, OLD], title=f"Feed {feed}")
    report = h.poll()
    assert len(report.alerts) == 2  # each feed matched...
    assert h.deliver().sent == 1  # ...one message went out
    (message,) = h.notifiers["desk"].alerts
    assert sorted([message[0].source, *message[0].also_reported_by]) == ["Feed a", "Feed b"]


def test_a_failing_feed_backs_off_and_the_others_go_on(store: Store) -> None:
    h = Harness(store, settings(feeds=("a", "b")), [POLICE])
    h.fetcher.fail(url("a"), unreachable())
    h.fetcher.serve(url("b"), [OLD])
    h.poll()
    h.fetcher.serve(url("b"), [MOSUL, OLD])
    report = h.poll()
    assert [(f.feed_id, f.status) for f in report.failed] == [("a", "http_5xx")]
    assert h.deliver().sent == 1
    a = next(s for s in store.feed_states() if s.feed_id == "a")
    assert (a.status, a.consecutive_failures, a.failing_since) == ("failing", 2, T0)
    assert a.next_poll_at is not None and a.next_poll_at >= T0 + timedelta(minutes=10)


def _queued(h: Harness, entries: list[Entry]) -> None:
    """Baseline feed ``a``, then publish ``entries`` and poll them into the outbox."""
    h.fetcher.serve(url("a"), [OLD])
    h.poll()
    h.fetcher.serve(url("a"), [*entries, OLD])
    h.poll()


def test_a_failed_send_is_retried_after_its_backoff(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    _queued(h, [MOSUL])
    desk = h.notifiers["desk"]
    desk.fail_next(retryable())
    first = h.deliver()
    assert (first.sent, first.retrying) == (0, 1)
    assert first.next_retry_at is not None
    wait = (first.next_retry_at - h.time.now).total_seconds()
    assert 2.5 <= wait <= 5  # the first backoff: 5 s, jittered down to half
    assert h.deliver().sent == 0  # not due yet
    h.time.skip(wait)
    assert h.deliver().sent == 1
    assert desk.calls == 2 and desk.titles == [[MOSUL.title]]


def test_a_retry_after_from_the_destination_is_honoured(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    _queued(h, [MOSUL])
    h.notifiers["desk"].fail_next(retryable("ratelimited", retry_after=120))
    report = h.deliver()
    assert report.next_retry_at == h.time.now + timedelta(seconds=120)
    h.time.skip(119)
    assert h.deliver().sent == 0
    h.time.skip(1)
    assert h.deliver().sent == 1


def test_a_refused_send_is_buried_at_once(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    _queued(h, [MOSUL])
    h.notifiers["desk"].fail_next(refused())
    assert h.deliver().dead == 1
    h.time.skip(3600)
    assert h.deliver(due_only=False).sent == 0
    counts = store.outbox_counts(h.time.now)
    assert (counts.pending, counts.dead) == (0, 1)
    assert h.notifiers["desk"].calls == 1


def test_retries_give_up_once_retry_for_has_passed(store: Store) -> None:
    h = Harness(store, settings(delivery={"retry_for": "1m"}), [POLICE])
    _queued(h, [MOSUL])
    desk = h.notifiers["desk"]
    desk.fail_next(*(retryable() for _ in range(100)))
    queued_at = h.time.now
    outcomes = []
    while True:
        report = h.deliver(due_only=False)
        outcomes.append((h.time.now - queued_at < timedelta(minutes=1), report.dead))
        if report.next_retry_at is None:
            break
        h.time.skip((report.next_retry_at - h.time.now).total_seconds())
    # Retried while younger than a minute, buried at the first failure after that.
    assert all(dead == 0 for young, dead in outcomes if young)
    assert outcomes[-1] == (False, 1)
    assert len(outcomes) >= 4 and desk.calls == len(outcomes)


def test_a_destination_no_longer_configured_keeps_its_alerts(store: Store) -> None:
    config = settings(destinations={"desk": {"type": "console"}, "ops": {"type": "console"}})
    h = Harness(store, config, [POLICE])
    _queued(h, [MOSUL])
    del h.notifiers["ops"]
    report = h.deliver()
    assert (report.sent, report.retrying) == (1, 1)
    assert store.outbox_counts(h.time.now).pending == 1


def test_digest_alerts_wait_for_their_batch_and_go_as_one_message(store: Store) -> None:
    config = settings(destinations={"digest": email(digest={"every": "1h"})})
    h = Harness(store, config, [POLICE])
    _queued(h, [MOSUL, *_stories(2)])
    assert h.deliver(due_only=False).sent == 0  # waiting for the batch, even for ``once``
    assert store.outbox_counts(h.time.now).waiting_digest == 3
    h.time.skip(3600)  # T0 is on the hour: the batch closes an hour later
    assert h.deliver().sent == 3
    (message,) = h.notifiers["digest"].alerts
    assert sorted(a.title for a in message) == sorted(
        [MOSUL.title, *(e.title for e in _stories(2))]
    )


def test_every_alert_held_by_quiet_hours_goes_in_one_message_however_many(store: Store) -> None:
    # Quiet 08:00-10:00 UTC; T0 is 09:00. Two destinations' held rows interleave in the outbox,
    # and there are more of them than one delivery batch takes.
    quiet = {"from": "08:00", "to": "10:00"}
    config = settings(
        destinations={"desk": {"type": "console", "quiet": quiet}, "mail": email(quiet=quiet)},
        delivery={"max_alerts_per_poll": 200},
    )
    h = Harness(store, config, [POLICE])
    _queued(h, _stories(70))
    assert h.deliver(due_only=False).sent == 0
    h.time.skip(3599)
    assert h.deliver().sent == 0  # 09:59:59: still quiet
    h.time.skip(1)
    assert h.deliver().sent == 140
    for destination in ("desk", "mail"):
        (message,) = h.notifiers[destination].alerts
        assert len(message) == 70 and {a.held for a in message} == {"quiet"}


def test_a_flood_is_folded_into_one_overflow_message(store: Store) -> None:
    h = Harness(store, settings(delivery={"max_alerts_per_poll": 3}), [POLICE])
    _queued(h, _stories(10))
    assert h.deliver().sent == 4
    messages = [m for (m,) in h.notifiers["desk"].alerts]
    (overflow,) = [m for m in messages if m.is_overflow]
    assert overflow.folded_count == 7
    assert len({m.item_key for m in messages if not m.is_overflow}) == 3


def test_a_poll_whose_lease_was_taken_over_is_dropped(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [MOSUL])
    lease = h.pipeline.ctx.leases.feed(h.settings.http.timeout)

    async def main() -> list[str]:
        go = h.fetcher.hold(url("a"))
        poll = asyncio.create_task(h.pipeline.poll(due_only=False))
        await h.time.asleep()  # claimed, fetching, the heartbeat waiting to beat
        # The process stalls past its lease (no heartbeat ran); another one takes over.
        later = h.time.now + timedelta(seconds=lease + 1)
        assert [
            s.feed_id for s in store.claim_feeds("rival", later, lease, 10, due_only=False)
        ] == ["a"]
        go.set()
        return [f.status for f in (await poll).feeds]

    assert run(main) == ["lease_lost"]
    assert store.seen_keys("a", [MOSUL.link or ""]) == set()  # nothing of it was written
    (state,) = store.feed_states()
    assert state.last_success_at is None


def test_a_renewed_lease_keeps_a_slow_feed_from_other_replicas(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [MOSUL])
    lease = h.pipeline.ctx.leases.feed(h.settings.http.timeout)

    async def main() -> list[str]:
        go = h.fetcher.hold(url("a"))
        poll = asyncio.create_task(h.pipeline.poll(due_only=False))
        await h.time.asleep()
        for _ in range(6):  # two leases' time, renewed every third of one
            await h.time.advance(lease / 3)
            assert (
                await asyncio.to_thread(
                    store.claim_feeds, "rival", h.time.now, lease, 10, due_only=False
                )
                == []
            )
        go.set()
        return [f.status for f in (await poll).feeds]

    assert run(main) == ["baseline"]


def test_a_cancelled_poll_hands_back_the_feeds_it_had_not_polled(store: Store) -> None:
    """A reload cancels a poll still running after the drain time: the feeds it claimed and
    never recorded are released at once, so the next generation (same owner) polls them on
    its first tick instead of after the lease, and a feed it finished keeps its schedule."""
    h = Harness(store, settings(feeds=("a", "b")), [POLICE])
    h.fetcher.serve(url("a"), [MOSUL])
    h.fetcher.serve(url("b"), [MOSUL])

    async def cancel_mid_poll() -> list[str]:
        h.fetcher.hold(url("a"))  # never answers: the poll is cancelled waiting for it
        poll = asyncio.create_task(h.pipeline.poll(due_only=False))
        await h.time.asleep()  # both claimed, the heartbeat waiting to beat
        for _ in range(100_000):  # until b answered and was recorded
            if store.feed_states()[1].last_success_at is not None:
                break
            await asyncio.sleep(0)
        else:
            pytest.fail("feed b was never recorded while a was held")
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        claimed = store.claim_feeds("replica-1", h.time.now, 30.0, 10, due_only=True)
        return [s.feed_id for s in claimed]

    assert run(cancel_mid_poll) == ["a"]  # due and free; b is not due until its next poll
    h.close()


def test_a_cancelled_delivery_keeps_the_lease_of_the_send_in_flight(store: Store) -> None:
    """Cancelling cannot stop a send thread: its row stays leased (nobody sends it again
    before the lease ends), while the rows not yet handed to a send are released at once."""
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [OLD])
    h.poll()
    h.fetcher.serve(url("a"), [*_stories(2), OLD])
    assert len(h.poll().alerts) == 2
    started, go = threading.Event(), threading.Event()
    notifier = h.notifiers["desk"]

    def held_send(alerts: Sequence[Alert], attempt: Attempt | None = None) -> None:
        started.set()
        go.wait(30)

    notifier.send = held_send  # type: ignore[method-assign]

    async def cancel_mid_send() -> list[int]:
        task = asyncio.create_task(h.pipeline.deliver(due_only=False))
        assert await asyncio.to_thread(started.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        free = store.claim_outbox("replica-2", h.time.now, 30.0, 10, due_only=False)
        go.set()
        return [e.id for e in free]

    free = run(cancel_mid_send)
    assert len(free) == 1  # the second alert, released; the first is still being sent
    h.close()


class _FailingWrites:
    """The real store, except that recording a poll fails as a locked database does."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def record_poll(self, outcome: PollOutcome) -> PollRecord:
        raise sqlite3.OperationalError("database is locked")


def test_a_failing_store_ends_the_cycle_as_a_store_error(store: Store) -> None:
    """Not one "internal error" per feed, each recorded into the same failing store: the
    cycle stops with a StoreError (which the daemon's health reports) and no feed is failed."""
    failing = _FailingWrites(store)
    h = Harness(failing, settings(["a", "b"]), [POLICE])  # type: ignore[arg-type]
    for feed in ("a", "b"):
        h.fetcher.serve(url(feed), [OLD])
    with pytest.raises(StoreError, match="database is locked"):
        h.poll()
    assert all(s.last_error is None for s in store.feed_states())
    h.close()
