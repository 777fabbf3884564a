"""``once`` tries each alert at most twice: again when the last retry due within its window
(30 s from its first delivery pass) is due, never for one due later: a Slack pause of a
minute is left in the outbox for the next run."""

from __future__ import annotations

from pathlib import Path

from bot.config.load import Config
from bot.service.app import ONCE_RETRY_WINDOW, OnceResult, Undelivered, run_once
from bot.store import Store
from tests.factories import distinct
from tests.integration.pipeline.harness import (
    FakeNotifier,
    FakeTime,
    Harness,
    retryable,
    rule,
    run,
    settings,
    url,
)
from tests.peers.rss import Entry

OLD = Entry("Budget tabled", "Nothing.", "https://news.example/old")


def _stories(n: int) -> list[Entry]:
    return [
        Entry(f"police story {i} {distinct(i)}", "police", f"https://news.example/{i}")
        for i in range(n)
    ]


class Once:
    """``run_once`` over ``store`` with alerts queued for a fake ``desk``; its waits advance
    the fake clock and are recorded."""

    def __init__(self, store: Store, tmp_path: Path, alerts: int) -> None:
        config = settings(feeds=())
        self.time = FakeTime()
        h = Harness(store, settings(), [rule("r", "police")], time=self.time)
        h.fetcher.serve(url("a"), [OLD])
        h.poll()
        h.fetcher.serve(url("a"), [*_stories(alerts), OLD])
        h.poll()
        h.close()
        self.config = Config(tmp_path, config, (), ())
        self.store = store
        self.desk = FakeNotifier("desk")
        self.waits: list[float] = []

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.time.skip(seconds)

    def __call__(self) -> tuple[int, int]:
        result = self.result()
        return result.sent, result.undelivered

    def result(self) -> OnceResult:
        return run(
            lambda: run_once(
                self.config,
                self.store,
                {"desk": self.desk},
                backfill=None,
                dry_run=False,
                clock=self.time.clock,
                sleep=self._sleep,
            )
        )


def test_a_retry_due_after_the_window_is_left_for_the_next_run(
    store: Store, tmp_path: Path
) -> None:
    once = Once(store, tmp_path, alerts=1)
    once.desk.fail_next(retryable("ratelimited", retry_after=60))
    assert once() == (0, 1)
    assert once.waits == [] and once.desk.calls == 1


def test_the_window_counts_from_the_first_try_not_from_each_retry(
    store: Store, tmp_path: Path
) -> None:
    once = Once(store, tmp_path, alerts=1)
    once.desk.fail_next(*(retryable("ratelimited", retry_after=20) for _ in range(3)))
    assert once() == (0, 1)
    # The first retry (20 s) is within the window, the second (40 s) is not.
    assert once.waits == [20.0] and once.desk.calls == 2
    assert sum(once.waits) <= ONCE_RETRY_WINDOW.total_seconds()


def test_every_retry_due_within_the_window_is_waited_for(store: Store, tmp_path: Path) -> None:
    once = Once(store, tmp_path, alerts=2)
    once.desk.fail_next(
        retryable("ratelimited", retry_after=5), retryable("ratelimited", retry_after=25)
    )
    assert once() == (2, 0)
    assert once.waits == [25.0]  # one retry pass, when the last retry in the window is due
    assert once.desk.calls == 4


def test_a_destination_down_costs_two_tries_per_alert_summed_up_per_destination(
    store: Store, tmp_path: Path
) -> None:
    once = Once(store, tmp_path, alerts=3)
    once.desk.fail_next(*(retryable() for _ in range(20)))
    result = once.result()
    assert (result.sent, result.undelivered) == (0, 3)
    assert once.desk.calls == 6 and len(once.waits) == 1
    assert result.failures == [Undelivered("desk", 3, 2, "http_503: try later")]


def test_once_prunes_too_so_a_cron_of_once_stays_bounded(store: Store, tmp_path: Path) -> None:
    once = Once(store, tmp_path, alerts=2)
    assert once() == (2, 0)
    once.time.skip(31 * 86400)  # past retention.sent (30 d) for the two sent alerts
    once()
    assert store.outbox_counts(once.time.clock()).sent == 0
