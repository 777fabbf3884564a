"""A slow store call no longer stalls the fetches in flight: the pipeline awaits the store
in the store's own thread, so the event loop goes on fetching meanwhile.

Real fetches (the Fetcher, a loopback feed server) and a real store; the store call
is made slow by a gate the test holds, opened only once another feed's fetch has
completed. On a pipeline that calls the store on the event loop that fetch cannot
complete while the gate is shut, and the gate's guard times out instead.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from bot.config.schema import Settings
from bot.fetch.client import Fetcher, FetchResult
from bot.pipeline.base import utcnow
from bot.pipeline.cycle import Pipeline
from bot.store import FeedRow, PollOutcome, PollRecord, Store
from tests.integration.pipeline.harness import run
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss

GUARD = 20.0  # seconds before a shut gate gives up: only reached when the loop is blocked


class GatedStore:
    """The real store, except that recording feed ``slow``'s poll waits for the gate."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.timed_out = False
        self.events: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def record_poll(self, outcome: PollOutcome) -> PollRecord:
        if outcome.feed_id == "slow":
            self.events.append("slow: store call started")
            self.entered.set()
            self.timed_out = not self.gate.wait(GUARD)
            self.events.append("slow: store call done")
        return self._store.record_poll(outcome)


class FetchDuringTheStall:
    """The real fetcher; feed ``fast`` is fetched once feed ``slow``'s store call is stuck,
    and opens the gate when that fetch is done."""

    def __init__(self, fetcher: Fetcher, store: GatedStore) -> None:
        self._fetcher = fetcher
        self._store = store

    async def fetch(self, url: str, **conditional: Any) -> FetchResult:
        if not url.endswith("/fast.xml"):
            return await self._fetcher.fetch(url, **conditional)
        assert await asyncio.to_thread(self._store.entered.wait, GUARD)
        result = await self._fetcher.fetch(url, **conditional)
        self._store.events.append("fast: fetched")
        self._store.gate.set()
        return result


def test_a_fetch_completes_while_another_feeds_store_call_is_stuck(
    store: Store, feed_server: FeedServer
) -> None:
    document = rss([Entry("Story", "Text.", "https://news.example/1")])
    feeds = [{"id": f, "url": feed_server.serve(f"/{f}.xml", document)} for f in ("slow", "fast")]
    settings = Settings.model_validate({"feeds": feeds})
    gated = GatedStore(store)
    store.sync_feeds([FeedRow(f["id"], f["url"]) for f in feeds], utcnow())

    async def main() -> list[str]:
        async with Fetcher(settings.http) as fetcher:
            pipeline = Pipeline(settings, [], gated, FetchDuringTheStall(fetcher, gated), {})
            try:
                report = await pipeline.poll(due_only=False)
            finally:
                pipeline.close()
        return [f.status for f in report.feeds]

    assert run(main) == ["baseline", "baseline"]
    assert not gated.timed_out
    assert gated.events == ["slow: store call started", "fast: fetched", "slow: store call done"]
