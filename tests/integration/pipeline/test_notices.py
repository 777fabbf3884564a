"""Feed failure and recovery notices: queued in the outbox by the poll, in the poll's own
transaction, and sent by delivery with the alerts' retries, give-up and marks."""

from __future__ import annotations

from datetime import timedelta

from bot.store import Notice, PollOutcome, Store
from tests.integration.pipeline.harness import (
    Harness,
    email,
    refused,
    retryable,
    rule,
    settings,
    unreachable,
    url,
)
from tests.peers.rss import Entry

OLD = Entry("Budget tabled", "Nothing.", "https://news.example/old")
WATCHED = {"on_feed_failure": {"after": "0s", "notify": ["ops"]}}
TWO = {"desk": {"type": "console"}, "ops": {"type": "console"}}


def _failing(store: Store, **config: object) -> Harness:
    """Feed ``a`` failing, its failure watched by ``ops``."""
    h = Harness(store, settings(destinations=TWO, **(WATCHED | config)), [rule("r", "police")])
    h.fetcher.fail(url("a"), unreachable())
    return h


def test_a_failure_notice_is_queued_by_the_poll_and_sent_by_delivery(store: Store) -> None:
    h = _failing(store)
    ops = h.notifiers["ops"]
    h.poll()
    assert ops.calls == 0  # the poll sends nothing
    assert store.outbox_counts(h.time.now).pending == 1
    (state,) = store.feed_states()
    assert state.failure_notified

    assert h.deliver().sent == 1
    ((title, text),) = ops.notices
    assert title == "Feed a is failing"
    assert url("a") in text and "HTTP 503" in text
    assert h.notifiers["desk"].calls == 0

    h.time.skip(3600)
    h.poll()  # still failing: told once
    assert h.deliver(due_only=False).sent == 0
    assert len(ops.notices) == 1


def test_a_notice_waits_until_the_feed_has_failed_long_enough(store: Store) -> None:
    h = _failing(store, on_feed_failure={"after": "1h", "notify": ["ops"]})
    h.poll()
    h.time.skip(1800)
    h.poll()
    assert store.outbox_counts(h.time.now).pending == 0
    h.time.skip(1800)
    h.poll()
    assert h.deliver().sent == 1
    assert "2026-03-02 09:00 UTC (3 attempts)" in h.notifiers["ops"].notices[0][1]


def test_a_notice_whose_send_fails_is_retried_and_not_marked_sent(store: Store) -> None:
    h = _failing(store)
    ops = h.notifiers["ops"]
    ops.fail_next(retryable())
    h.poll()
    report = h.deliver()
    assert (report.sent, report.retrying) == (0, 1)
    counts = store.outbox_counts(h.time.now)
    assert (counts.pending, counts.sent) == (1, 0)
    assert report.next_retry_at is not None
    h.time.skip((report.next_retry_at - h.time.now).total_seconds())
    assert h.deliver().sent == 1
    assert [t for t, _ in ops.notices] == ["Feed a is failing"]
    assert ops.calls == 2


def test_a_notice_is_given_up_like_an_alert(store: Store) -> None:
    h = _failing(store, delivery={"retry_for": "1m"})
    ops = h.notifiers["ops"]
    ops.fail_next(refused())
    h.poll()
    assert h.deliver().dead == 1
    assert store.outbox_counts(h.time.now).dead == 1
    assert ops.notices == []


def test_recovery_is_noticed_once_after_the_failure_was(store: Store) -> None:
    h = _failing(store)
    h.poll()
    h.deliver()
    h.fetcher.serve(url("a"), [OLD])
    h.time.skip(600)
    h.poll()
    h.poll()  # answers again (304): nothing more to say
    assert h.deliver().sent == 1
    assert [t for t, _ in h.notifiers["ops"].notices] == [
        "Feed a is failing",
        "Feed a has recovered",
    ]
    (state,) = store.feed_states()
    assert not state.failure_notified


def test_a_recovery_before_any_failure_notice_says_nothing(store: Store) -> None:
    h = _failing(store, on_feed_failure={"after": "1h", "notify": ["ops"]})
    h.poll()
    h.fetcher.serve(url("a"), [OLD])
    h.poll()
    assert h.deliver(due_only=False).sent == 0
    assert h.notifiers["ops"].calls == 0


def test_a_notice_to_a_digest_destination_is_sent_at_once_on_its_own(store: Store) -> None:
    config = {
        "destinations": {"desk": email(digest={"every": "1h"})},
        "on_feed_failure": {"after": "0s", "notify": ["desk"]},
    }
    h = Harness(store, settings(feeds=("a", "b"), **config), [rule("r", "police")])
    h.fetcher.fail(url("a"), unreachable())
    h.fetcher.serve(url("b"), [OLD])
    h.poll()
    h.fetcher.serve(url("b"), [Entry("police report", "police", "https://n.example/p"), OLD])
    h.poll()
    assert h.deliver().sent == 1  # the notice; the alert waits for its batch
    desk = h.notifiers["desk"]
    assert [t for t, _ in desk.notices] == ["Feed a is failing"] and desk.alerts == []
    h.time.skip(3600)
    assert h.deliver().sent == 1
    assert [len(m) for m in desk.alerts] == [1]


def test_a_poll_whose_lease_was_lost_queues_no_notice(store: Store) -> None:
    h = _failing(store)
    lease = h.pipeline.ctx.leases.feed(h.settings.http.timeout)
    assert len(store.claim_feeds("rival", h.time.now, lease, 1, due_only=False)) == 1
    h.time.skip(lease + 1)  # the rival's claim is over: ours goes through
    h.poll()
    assert store.outbox_counts(h.time.now).pending == 1
    # The rival's late record (its lease is gone) writes nothing, no second notice either.
    late = PollOutcome(
        "a",
        "rival",
        h.time.now,
        h.time.now + timedelta(hours=1),
        error="timeout",
        failure_notified=True,
        notices=[Notice("ops", "a", "Feed a is failing", "late")],
    )
    assert not store.record_poll(late).applied
    assert store.outbox_counts(h.time.now).pending == 1
