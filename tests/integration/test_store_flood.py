"""A folded poll in the store, on every engine: the singles and one overflow are queued,
the overflow reads back whole, and a replay of the same poll queues nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.alerts.flood import fold
from bot.model import Item, QueuedAlert
from bot.store import FeedRow, Store
from tests.integration.test_store import (
    T0,
    _engines,
    alert,
    claim_all,
    item,
    poll,
    raw,
)

pytestmark = pytest.mark.parametrize("store_url", _engines(), indirect=True)


def flood(n: int) -> tuple[list[Item], list[QueuedAlert]]:
    items = [item(f"k{i:04d}", f"http://n/{i}", f"Story {i}") for i in range(n)]
    queued, _ = fold([alert(it) for it in items], 20, T0)
    return items, queued


def test_a_folded_poll_queues_its_singles_and_one_overflow(store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    items, queued = flood(2_000)
    record = poll(store, "a", "w1", items, queued)
    assert (record.new_items, record.queued, record.duplicates) == (2_000, 21, 0)
    entries = store.claim_outbox("s", T0, 60, 100, due_only=True)
    assert len(entries) == 21
    (overflow,) = [e.alert for e in entries if e.alert.is_overflow]
    assert overflow == queued[-1].alert
    assert overflow.folded_count == 1_980 and len(overflow.folded) == 100


def test_replaying_the_same_poll_queues_nothing(store_url: str, store: Store) -> None:
    store.sync_feeds([FeedRow("a", "http://x/a")], T0)
    claim_all(store, "w1")
    items, queued = flood(100)
    assert poll(store, "a", "w1", items, queued).queued == 21
    later = T0 + timedelta(minutes=20)
    claim_all(store, "w2", later)
    replay = poll(store, "a", "w2", items, queued, later)
    assert (replay.applied, replay.new_items, replay.queued) == (True, 0, 0)
    # Even with its items forgotten, the stories of the poll's singles hold; an overflow
    # stands for many items, no one story, and is queued again.
    raw(store_url, "DELETE FROM items")
    claim_all(store, "w3", later + timedelta(minutes=20))
    forgotten = poll(store, "a", "w3", items, queued, later + timedelta(minutes=20))
    assert (forgotten.new_items, forgotten.queued, forgotten.duplicates) == (100, 1, 20)
    assert store.outbox_counts(later).pending == 22
