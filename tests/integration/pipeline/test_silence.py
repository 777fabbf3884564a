"""Silent feeds: a feed that still answers (200 or 304) but has published nothing new for much
longer than its usual gap is flagged by the poll, with one notice and one recovery notice, in
the poll's own transaction and under its lease (so two replicas tell it once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.store import FeedState, Store
from tests.integration.pipeline.harness import T0, FakeTime, Harness, rule, settings, url
from tests.peers.rss import Entry

DAY = 86400.0
STEP = 6 * 3600.0  # a poll every six hours
TWO = {"desk": {"type": "console"}, "ops": {"type": "console"}}


@dataclass
class Feed:
    """A feed's published entries, one more on each day in ``days``."""

    id: str
    days: list[float]
    title: str = "Test feed"
    entries: list[Entry] = field(default_factory=list)

    def serve(self, h: Harness, day: float) -> None:
        while self.days and self.days[0] <= day:
            n = self.days.pop(0)
            self.entries.insert(0, Entry(f"{self.id} story {n:g}", link=f"https://n.example/{n}"))
        h.fetcher.serve(url(self.id), self.entries, self.title)


class Replicas:
    """Two pipelines over one store and one clock, taking turns at polling."""

    def __init__(self, store: Store, **config: Any) -> None:
        cfg = settings(feeds=("daily", "weekly"), destinations=TWO, **config)
        time = FakeTime()
        self.all = [
            Harness(store, cfg, [rule("r", "police")], owner=f"replica-{n}", time=time)
            for n in (1, 2)
        ]
        self.store = store
        self.time = time
        self.polls = 0
        self.feeds = [
            Feed("daily", [*(float(d) for d in range(22)), 30.0]),  # quiet from day 21 to 30
            Feed("weekly", [0.0, 7.0, 14.0, 21.0]),
        ]

    @property
    def day(self) -> float:
        return (self.time.now - T0).total_seconds() / DAY

    def until(self, day: float) -> None:
        """Poll every six hours, the replicas in turn, up to ``day`` (included)."""
        while self.day <= day:
            h = self.all[self.polls % 2]
            for feed in self.feeds:
                feed.serve(h, self.day)
            h.poll()
            self.polls += 1
            self.time.skip(STEP)

    def state(self, feed_id: str) -> FeedState:
        return {s.feed_id: s for s in self.store.feed_states()}[feed_id]

    def notices(self) -> list[str]:
        """Every notice delivered so far, by whichever replica sends it."""
        for h in self.all:
            h.deliver(due_only=False)
        return [t for h in self.all for t, _ in h.notifiers["ops"].notices]


def test_a_daily_feed_gone_quiet_is_flagged_once_and_its_return_told(store: Store) -> None:
    r = Replicas(store, on_feed_silence={"after": "3d", "notify": ["ops"]})
    r.until(23.75)  # the last new item came at day 21: 2.75 days of quiet
    assert r.state("daily").status == "ok" and r.notices() == []

    r.until(24)  # three days: twice its one-day gap is under the floor, so the floor
    daily = r.state("daily")
    assert (daily.status, daily.silent_since, daily.usual_gap) == (
        "silent",
        T0 + timedelta(days=24),
        DAY,
    )
    assert daily.last_new_at == T0 + timedelta(days=21)
    assert r.notices() == ["Feed daily has gone silent"]
    (text,) = [t for h in r.all for _, t in h.notifiers["ops"].notices]
    assert text == (
        f"{url('daily')} answers but has published nothing new since 2026-03-23 09:00 UTC"
        " (3d; it usually publishes every 24h)."
    )

    r.until(26)
    r.feeds[0].title = "Daily, renamed"  # a 200 with nothing new is silence too
    r.until(29.75)
    assert r.notices() == ["Feed daily has gone silent"]  # told once, by either replica
    assert r.state("daily").status == "silent"
    # A weekly feed quiet for eight days is not silent: its usual gap is a week.
    weekly = r.state("weekly")
    assert (weekly.status, weekly.silent_since) == ("ok", None)

    r.until(30)  # a new item
    assert r.notices() == ["Feed daily has gone silent", "Feed daily publishes again"]
    daily = r.state("daily")
    assert (daily.status, daily.silent_since, daily.silence_notified) == ("ok", None, False)
    r.until(31)
    assert len(r.notices()) == 2
    assert store.outbox_counts(r.time.now).sent == 2


def test_silence_is_flagged_without_on_feed_silence_but_nobody_is_told(store: Store) -> None:
    r = Replicas(store)
    r.until(24)
    daily = r.state("daily")
    assert (daily.status, daily.silence_notified) == ("silent", False)
    r.until(30)
    assert r.state("daily").status == "ok"
    assert r.notices() == [] and store.outbox_counts(r.time.now).sent == 0


def test_a_feed_is_not_judged_before_it_has_a_history(store: Store) -> None:
    r = Replicas(store, on_feed_silence={"after": "1d", "notify": ["ops"]})
    r.feeds = [Feed("daily", [0.0, 1.0]), Feed("weekly", [0.0])]
    r.until(20)
    assert [r.state(f).status for f in ("daily", "weekly")] == ["ok", "ok"]
    assert r.notices() == []


def test_the_floor_holds_off_a_feed_that_publishes_every_few_hours(store: Store) -> None:
    r = Replicas(store, on_feed_silence={"after": "5d", "notify": ["ops"]})
    r.feeds = [Feed("daily", [n / 4 for n in range(40)]), Feed("weekly", [])]
    r.until(14.5)  # the last item at day 9.75: 4.75 days of quiet, under the floor
    assert r.state("daily").status == "ok"
    r.until(14.75)
    assert r.state("daily").status == "silent"
    assert r.notices() == ["Feed daily has gone silent"]
