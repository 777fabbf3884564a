"""The delivery pass over a real store, through crashes: leases kept alive by a heartbeat
while a slow send is in flight, taken over when their owner stalls, and a send whose answer
was lost looked up in Slack (the emulator, through slack-sdk) instead of posted twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.config.schema import Settings, SlackDestination
from bot.errors import DeliveryError
from bot.model import Alert, Item, QueuedAlert, Summary
from bot.notify import Attempt, Notifier
from bot.notify.slack import SlackNotifier
from bot.pipeline.base import Leases
from bot.pipeline.cycle import Pipeline
from bot.store import FeedRow, PollOutcome, Store, open_store
from tests.integration.pipeline.harness import FakeTime
from tests.peers.slack_emulator import TOKEN, Fault, SlackEmulator

T = TypeVar("T")
T0 = datetime.now(UTC).replace(microsecond=0)
LEASE = 30.0


class HeldNotifier:
    """Records what it is asked to send and blocks each send until the test lets it go."""

    destination_id = "desk"

    def __init__(self) -> None:
        self.sent: list[tuple[list[str], Attempt | None]] = []
        self.entered = threading.Semaphore(0)
        self.go = threading.Event()

    def send(self, alerts: Sequence[Alert], attempt: Attempt | None = None) -> None:
        self.entered.release()
        assert self.go.wait(timeout=30)
        self.sent.append(([a.item_key for a in alerts], attempt))

    def send_notice(self, title: str, text: str) -> None:
        raise AssertionError("no notices here")

    def close(self) -> None:
        pass


class NoFetcher:
    async def fetch(self, url: str, **_: Any) -> Any:
        raise AssertionError("delivery fetches nothing")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:{tmp_path / 'store.db'}")
    yield s
    s.close()


def _queue(store: Store, count: int, *, digest: bool = False) -> list[int]:
    """``count`` alerts for destination ``desk``, as a poll queues them (rows of a digest,
    due at once, with ``digest``); returns their row ids."""
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    store.claim_feeds("poller", T0, 60, 1, due_only=False)
    items = [Item("a", f"k{i}", f"Story {i}") for i in range(count)]
    alerts = [
        QueuedAlert(
            Alert(
                rule_id="r",
                rule_title="Rule",
                destination="desk",
                feed_id="a",
                source="A",
                item_key=i.key,
                title=i.title,
                link=None,
                published=None,
                first_seen=T0,
                summary=Summary(i.title),
                terms=("story",),
            ),
            T0,
            digest,
        )
        for i in items
    ]
    store.record_poll(
        PollOutcome("a", "poller", T0, T0 + timedelta(hours=1), items=items, alerts=alerts)
    )
    return [e.id for e in store.claim_outbox("peek", T0, 0, count, due_only=False)]


def _pipeline(store: Store, notifier: Notifier, time: FakeTime, owner: str) -> Pipeline:
    settings = Settings.model_validate({"destinations": {"desk": {"type": "console"}}})
    return Pipeline(
        settings,
        [],
        store,
        NoFetcher(),
        {"desk": notifier},
        owner=owner,
        clock=time.clock,
        leases=Leases(outbox=LEASE),
        sleep=time.sleep,
    )


def _run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


async def _entered(notifier: HeldNotifier) -> None:
    assert await asyncio.to_thread(notifier.entered.acquire, True, 30)


def test_a_slow_send_keeps_its_rows_through_several_lease_periods(store: Store) -> None:
    ids = _queue(store, 2)
    time = FakeTime(T0 + timedelta(seconds=1))  # the peek's zero lease is over
    notifier = HeldNotifier()

    async def main() -> None:
        pipeline = _pipeline(store, notifier, time, "slow")
        delivery = asyncio.create_task(pipeline.deliver())
        await _entered(notifier)
        await time.asleep()
        for _ in range(6):  # two minutes: four leases, each renewed before it ends
            await time.advance(LEASE / 3)
            assert store.claim_outbox("rival", time.now, LEASE, 10, due_only=False) == []
        notifier.go.set()
        report = await delivery
        assert report.sent == 2

    _run(main)
    assert [keys for keys, _ in notifier.sent] == [["k0"], ["k1"]]
    assert [a.outbox_ids for _, a in notifier.sent if a] == [(ids[0],), (ids[1],)]
    assert store.outbox_counts(time.now).sent == 2


def test_rows_taken_over_after_a_stall_are_neither_sent_nor_marked(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _queue(store, 2)
    time = FakeTime(T0 + timedelta(seconds=1))
    notifier = HeldNotifier()

    async def main() -> None:
        pipeline = _pipeline(store, notifier, time, "stalled")
        delivery = asyncio.create_task(pipeline.deliver())
        await _entered(notifier)
        await time.asleep()
        # The process stalls past its lease (no heartbeat ran); another one takes over.
        after = time.now + timedelta(seconds=LEASE + 1)
        taken = store.claim_outbox("rival", after, LEASE, 10, due_only=False)
        assert [(e.id, e.uncertain) for e in taken] == [(ids[0], True), (ids[1], False)]
        await time.advance(LEASE + 1)  # the heartbeat wakes up and finds the lease lost
        notifier.go.set()
        await delivery

    _run(main)
    assert [keys for keys, _ in notifier.sent] == [["k0"]]  # the one in flight, not k1
    assert store.outbox_counts(time.now).sent == 0  # its late mark changed nothing
    assert "lease lost on 2 outbox rows" in caplog.text
    assert store.renew_outbox(ids, "rival", time.now + timedelta(minutes=1)) == set(ids)


@pytest.fixture
def desk(slack: SlackEmulator) -> SlackNotifier:
    destination = SlackDestination(
        type="slack", channel=slack.channel_id("#desk"), token=TOKEN, base_url=slack.base_url
    )
    return SlackNotifier("desk", destination, timeout=1)


def test_a_send_whose_answer_was_lost_is_delivered_once(
    store: Store, slack: SlackEmulator, desk: SlackNotifier
) -> None:
    _queue(store, 1)
    time = FakeTime(datetime.now(UTC))
    pipeline = _pipeline(store, desk, time, "one")
    slack.fail_next(Fault("lost_answer"))
    first = _run(pipeline.deliver)
    assert (first.sent, first.retrying) == (0, 1)
    assert len(slack.in_channel("#desk")) == 1  # it did arrive; its answer did not
    again = _run(lambda: pipeline.deliver(due_only=False))
    assert again.sent == 1
    assert len(slack.in_channel("#desk")) == 1
    assert store.outbox_counts(time.now).sent == 1


def test_a_replica_killed_after_posting_is_not_repeated_by_the_next(
    store: Store, slack: SlackEmulator, desk: SlackNotifier
) -> None:
    ids = _queue(store, 2)
    start = datetime.now(UTC)
    # The replica claims both rows, posts the first, and dies before marking it.
    (first, _) = store.claim_outbox("killed", start, LEASE, 10, due_only=True)
    assert store.start_attempt([first.id], "killed", start) == {first.id}
    desk.send([first.alert], Attempt((first.id,)))
    time = FakeTime(start + timedelta(seconds=LEASE + 1))
    report = _run(_pipeline(store, desk, time, "survivor").deliver)
    assert report.sent == 2
    posted = slack.in_channel("#desk")
    assert [m.metadata["event_payload"]["outbox_ids"] for m in posted] == [[i] for i in ids]
    assert len(slack.history_requests()) == 1  # only the row that was in flight is looked up


class Interrupt:
    """A Slack pacer that paces nothing and, before message number ``at``, runs ``then``:
    the emulator starts failing, or the sending process freezes (as if killed)."""

    def __init__(self, at: int = 0, then: Callable[[], None] = lambda: None) -> None:
        self.at, self.then, self.count = at, then, 0

    def wait(self) -> None:
        self.count += 1
        if self.count == self.at:
            self.then()

    def defer(self, seconds: float) -> None:
        pass


def _digest_desk(slack: SlackEmulator, limiter: Interrupt) -> tuple[Settings, SlackNotifier]:
    """Destination ``desk`` posting its alerts as a digest; a new notifier is a new process."""
    destination = SlackDestination(
        type="slack",
        channel=slack.channel_id("#desk"),
        token=TOKEN,
        base_url=slack.base_url,
        digest={"every": 3600},
    )
    settings = Settings.model_validate({"destinations": {"desk": destination.model_dump()}})
    return settings, SlackNotifier("desk", destination, limiter=limiter, timeout=1)


def _digest_pipeline(
    store: Store, settings: Settings, desk: SlackNotifier, time: FakeTime, owner: str
) -> Pipeline:
    return Pipeline(
        settings,
        [],
        store,
        NoFetcher(),
        {"desk": desk},
        owner=owner,
        clock=time.clock,
        leases=Leases(outbox=LEASE),
        sleep=time.sleep,
    )


@pytest.mark.parametrize("stop", ["slack fails", "process killed", "answer to part 3 lost"])
def test_a_digest_cut_short_after_part_two_of_four_sends_only_what_had_not_landed(
    store: Store, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch, stop: str
) -> None:
    # One claim takes the whole digest, so it goes out as four messages of up to 49 alerts.
    monkeypatch.setattr("bot.pipeline.deliver.DELIVERY_BATCH", 200)
    ids = _queue(store, 150, digest=True)
    frozen, thawed = threading.Event(), threading.Event()

    def freeze() -> None:
        frozen.set()  # the process stops here for good; its rows' lease runs out
        assert thawed.wait(timeout=30)
        raise DeliveryError("killed", "the process was killed", retryable=True)

    def slack_fails() -> None:
        # Part 3 posted but its answer never came: the next deliverer finds it in the history.
        slack.fail_next(Fault("lost_answer" if stop.startswith("answer") else "server_error"))

    if stop == "process killed":
        slack.history_error = "missing_scope"  # no history to look the lost part up in
    then = freeze if stop == "process killed" else slack_fails
    settings, first = _digest_desk(slack, Interrupt(at=3, then=then))
    landed = 3 if stop.startswith("answer") else 2
    start = datetime.now(UTC)

    async def main() -> None:
        cut_short = asyncio.create_task(
            _digest_pipeline(store, settings, first, FakeTime(start), "first").deliver()
        )
        if stop == "process killed":
            assert await asyncio.to_thread(frozen.wait, 30)
        else:
            report = await cut_short
            assert (report.sent, report.retrying) == (98, 52)
        assert len(slack.in_channel("#desk")) == landed
        _, second = _digest_desk(slack, Interrupt())
        later = FakeTime(start + timedelta(seconds=LEASE + 1))
        again = await _digest_pipeline(store, settings, second, later, "second").deliver(
            due_only=False
        )
        assert again.sent == 52
        assert len(slack.in_channel("#desk")) == 4  # only what had not landed was posted
        thawed.set()
        await cut_short

    _run(main)
    posted = slack.in_channel("#desk")
    assert len(posted) == 4
    carried = [i for m in posted for i in m.metadata["event_payload"]["outbox_ids"]]
    assert sorted(carried) == ids  # every alert exactly once
    items = [b for m in posted for b in m.blocks if b["type"] == "rich_text"]
    assert len(items) == 150
    assert [len(m.metadata["event_payload"]["outbox_ids"]) for m in posted] == [49, 49, 49, 3]
    assert store.outbox_counts(datetime.now(UTC) + timedelta(hours=2)).sent == 150


class HeldFetcher:
    """Answers 304 Not Modified once the test lets it; until then the fetch hangs."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def fetch(self, url: str, **_: Any) -> Any:
        self.started.set()
        await self.go.wait()
        return _NotModified(url)


class _NotModified:
    def __init__(self, url: str) -> None:
        self.not_modified, self.body, self.url, self.content_type = True, b"", url, None
        self.etag = self.last_modified = None
        self.max_age = None


def test_a_slow_feed_keeps_its_lease_while_it_is_polled(store: Store) -> None:
    time = FakeTime(T0)
    fetcher = HeldFetcher()
    settings = Settings.model_validate(
        {"feeds": [{"id": "a", "url": "http://x/a"}], "http": {"timeout": "20s"}}
    )
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    pipeline = Pipeline(
        settings, [], store, fetcher, {}, owner="poller", clock=time.clock,
        leases=Leases(outbox=LEASE), sleep=time.sleep,
    )  # fmt: skip

    async def main() -> list[str]:
        poll = asyncio.create_task(pipeline.poll(due_only=True))
        await fetcher.started.wait()
        await time.asleep()
        for _ in range(9):  # three leases of 30 s, each renewed before it ends
            await time.advance(LEASE / 3)
            assert store.claim_feeds("rival", time.now, LEASE, 10, due_only=False) == []
        fetcher.go.set()
        return [f.status for f in (await poll).feeds]

    assert _run(main) == ["not_modified"]
    (state,) = store.feed_states()
    assert state.last_success_at == time.now
