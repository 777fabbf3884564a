"""Retention through the pipeline, on a fake clock: pruning keeps the store bounded over a
year of feeds that publish daily, come and go, and never alerts an item twice."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from bot.model import Alert
from bot.pipeline.poll import CycleReport
from bot.store import PruneReport, Store, open_store
from tests.factories import distinct
from tests.integration.pipeline.harness import FakeTime, Harness, rule, run, settings, url
from tests.peers.rss import Entry

DAY = 86400.0
GUARD = 20.0  # seconds before a shut gate gives up: only reached when the prune holds the store
NEWS = rule("news", "news")


def titled(name: str) -> str:
    """The headline of the item ``name``: words of its own, so each item is a story."""
    return f"{name} {distinct(zlib.crc32(name.encode()))}"


def entry(name: str) -> Entry:
    return Entry(
        titled(name), "The news of the day.", "https://news.example/" + name.replace(" ", "-")
    )


def prune(h: Harness) -> None:
    run(lambda: h.pipeline.prune(3600))


def sent(h: Harness) -> list[Alert]:
    return [a for message in h.notifiers["desk"].alerts for a in message]


def test_an_item_its_feed_serves_for_400_days_alerts_once(store: Store) -> None:
    h = Harness(store, settings(), [NEWS])
    keeper = entry("news keeper")
    h.fetcher.serve(url("a"), [entry("news day 0")])
    h.poll()
    for day in range(1, 401):
        h.time.skip(DAY)
        h.fetcher.serve(url("a"), [keeper, entry(f"news day {day}")])
        h.poll()
        h.deliver()
        prune(h)
    titles = Counter(a.title for a in sent(h))
    assert titles[titled("news keeper")] == 1
    assert len(titles) == 401 and set(titles.values()) == {1}
    h.close()


def test_one_of_two_replicas_prunes_a_period(store: Store) -> None:
    time = FakeTime()
    one = Harness(store, settings(), [NEWS], owner="replica-1", time=time)
    two = Harness(store, settings(), [NEWS], owner="replica-2", time=time)
    assert run(lambda: one.pipeline.prune(3600)) is not None
    assert run(lambda: two.pipeline.prune(3600)) is None
    time.skip(1800)
    assert run(lambda: one.pipeline.prune(3600)) is None
    time.skip(1800)
    assert run(lambda: two.pipeline.prune(3600)) is not None
    one.close()
    two.close()


class GatedPrune:
    """The real store, except that a prune waits for the gate the test opens."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.timed_out = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def prune(self, *args: Any) -> PruneReport:
        self.entered.set()
        self.timed_out = not self.gate.wait(GUARD)
        return self._store.prune(*args)


def test_polls_go_on_while_a_prune_runs(store: Store) -> None:
    gated = GatedPrune(store)
    h = Harness(gated, settings(), [NEWS])  # type: ignore[arg-type]
    h.fetcher.serve(url("a"), [entry("news day 0")])

    async def main() -> CycleReport:
        pruning = asyncio.ensure_future(h.pipeline.prune(3600))
        assert await asyncio.to_thread(gated.entered.wait, GUARD)
        report = await h.pipeline.poll(due_only=False)  # the prune is still stuck
        gated.gate.set()
        assert await pruning is not None
        return report

    report = run(main)
    assert not gated.timed_out
    assert [f.status for f in report.feeds] == ["baseline"]
    h.close()


# The year: f0 serves one item from day 1, then answers 304 until day 300 brings a second;
# f1..f7 publish two items a day, serve the last five days' and a keeper (published the day
# after they start) forever; f5 and f6 leave for 30 days (less than the seen window), f7 for
# 100 (more: it is forgotten, and baselines when it comes back), f3 leaves for good on day
# 250 and f8 starts on day 150.
KEEP = {"retention": {"sent": "7d", "seen": "40d"}}
START = {"f8": 150}


def active(day: int) -> list[str]:
    feeds = ["f0", "f1", "f2", "f4"]
    feeds += [] if day >= 250 else ["f3"]
    feeds += [] if 60 <= day < 90 else ["f5", "f6"]
    feeds += [] if 100 <= day < 200 else ["f7"]
    feeds += ["f8"] if day >= START["f8"] else []
    return sorted(feeds)


def served(feed: str, day: int) -> list[Entry]:
    if feed == "f0":
        return (
            [entry("news f0 first")]
            + [entry("news f0 keeper")] * (day >= 1)
            + [entry("news f0 late")] * (day >= 300)
        )
    start = START.get(feed, 0)
    items = [
        entry(f"news {feed} day {d} item {n}")
        for d in range(max(start, day - 4), day + 1)
        for n in (0, 1)
    ]
    return items + [entry(f"news {feed} keeper")] * (day > start)


def rows(path: Path) -> dict[str, int]:
    """Rows per table, read behind the store's back."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("feeds", "items", "outbox", "stories", "sightings")
        }
    finally:
        conn.close()


def test_a_year_of_changing_feeds_keeps_the_store_bounded_and_alerts_each_item_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:{path}")
    time = FakeTime()
    alerts: list[Alert] = []
    peak: Counter[str] = Counter()
    h: Harness | None = None
    feeds: list[str] = []
    for day in range(365):
        if active(day) != feeds:
            if h is not None:
                alerts += sent(h)
                h.close()
            feeds = active(day)
            h = Harness(store, settings(feeds, **KEEP), [NEWS], time=time)
        assert h is not None
        for feed in feeds:
            h.fetcher.serve(url(feed), served(feed, day))
        h.poll()
        h.deliver()
        prune(h)
        if day >= 60:  # past the first windows: what is kept no longer grows
            peak |= Counter(rows(path))
        time.skip(DAY)
    assert h is not None
    alerts += sent(h)
    h.close()
    store.close()

    keys = Counter((a.feed_id, a.item_key) for a in alerts)
    assert [k for k, n in keys.items() if n > 1] == []
    titles = Counter(a.title for a in alerts)
    assert titles[titled("news f0 keeper")] == titles[titled("news f0 late")] == 1
    assert titles[titled("news f7 keeper")] == 1
    assert len(alerts) > 3_000
    # Bounds from the windows, not the days: per feed, two items a day for five days served
    # plus 40 days kept after leaving, and a keeper (9 feeds); alerts 7 days after sending.
    assert peak["items"] <= 9 * (2 * (5 + 40 + 2) + 1)
    assert peak["outbox"] <= 8 * 2 * (7 + 2) + 10
    assert peak["stories"] <= peak["sightings"] <= peak["items"]
    assert peak["feeds"] <= 9
