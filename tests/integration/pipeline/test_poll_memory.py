"""A feed's document and entries wait for the store's thread from the answer to the recorded
outcome: at most ``http.concurrency`` feeds hold theirs at once, however slow the store.

The fake fetcher answers without yielding, so without a bound every feed of the cycle is
fetched and parsed before the loop hears back from the store about any of them; the count
does not depend on how fast the store's thread is.
"""

from __future__ import annotations

from typing import Any

import pytest

import bot.pipeline.poll as poll_module
from bot.store import PollOutcome, PollRecord, Store
from tests.integration.pipeline.harness import Harness, settings, url
from tests.peers.rss import Entry


class CountingStore:
    """The real store, counting the feeds read but not yet recorded (the most at once)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.reading: set[str] = set()
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read(self, feed_id: str) -> None:
        self.reading.add(feed_id)
        self.most = max(self.most, len(self.reading))

    def record_poll(self, outcome: PollOutcome) -> PollRecord:
        record = self._store.record_poll(outcome)
        self.reading.discard(outcome.feed_id)
        return record


def test_at_most_http_concurrency_feeds_hold_their_documents(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = [f"f{i}" for i in range(12)]
    counting = CountingStore(store)
    h = Harness(counting, settings(feeds, http={"concurrency": 3}), [])  # type: ignore[arg-type]
    for f in feeds:
        h.fetcher.serve(url(f), [Entry(f"Story of {f}", "Text.", f"https://news.example/{f}")])
    read_feed = poll_module.read_feed

    def counted(body: bytes, **kw: Any) -> Any:
        counting.read(kw["feed_id"])
        return read_feed(body, **kw)

    monkeypatch.setattr(poll_module, "read_feed", counted)
    report = h.poll()
    assert [f.status for f in report.feeds] == ["baseline"] * len(feeds)
    assert counting.reading == set()
    assert counting.most <= 3
    h.close()
