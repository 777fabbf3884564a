"""`newswatch run` prunes its store: shortly after start, one log line saying what it
removed, counted in /metrics; what its feed still serves stays."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from bot.model import Item
from bot.store import FeedRow, PollOutcome, open_store
from tests.conftest import ConfigDir
from tests.e2e.test_daemon import NOW, OLD, RULE, settings
from tests.integration.test_store import alert
from tests.peers.feed_server import FeedServer
from tests.peers.rss import rss
from tests.peers.slack_emulator import SlackEmulator


def seed(store_url: str, feed_url: str) -> None:
    """Three alerts sent 60 days ago, for items last served 200 days ago."""
    store = open_store(store_url)
    try:
        at = NOW - timedelta(days=200)
        store.sync_feeds([FeedRow("news", feed_url)], at)
        store.claim_feeds("seed", at, 60, 10, due_only=False)
        items = [Item(feed_id="news", key=f"gone{n}", title=f"Story {n}") for n in range(3)]
        store.record_poll(
            PollOutcome(
                "news",
                "seed",
                at,
                at,
                items=items,
                served=[i.key for i in items],
                alerts=[alert(i) for i in items],
            )
        )
        entries = store.claim_outbox("seed", at, 60, 10, due_only=True)
        store.mark_sent([e.id for e in entries], "seed", NOW - timedelta(days=60))
    finally:
        store.close()


def test_the_daemon_prunes_soon_after_start_logs_it_and_counts_it(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    feed_url = feed_server.serve("/news.xml", rss([OLD]))
    settings(config_dir, feed_url, slack)
    config_dir.write("rules.yaml", RULE.format(query="RCMP"))
    seed(f"sqlite:{config_dir.store}", feed_url)
    with sqlite3.connect(config_dir.store) as db:  # a day of stats counted 400+ days ago
        db.execute(
            "INSERT INTO rule_days (rule_id, day, matches, alerts)"
            " VALUES ('iraq', '2020-01-01', 1, 1)"
        )
    db.close()
    daemon = start(config_dir)
    daemon.wait_event("feed_polled", feed="news")
    pruned = daemon.wait_event("pruned")
    assert pruned["rows"] == 3 + 3 + 1  # outbox rows, items, a day
    assert pruned["message"] == (
        "pruned 3 outbox rows, 0 stories, 0 rate slots, 3 items, 0 removed feeds, 1 daily counters"
    )

    def counted() -> str | None:
        text = daemon.get("/metrics")[2].decode()
        return text if 'newswatch_pruned_rows_total{table="outbox"} 3.0' in text else None

    text = daemon.wait_for("the pruned rows counted in /metrics", counted)
    for series in (
        'newswatch_pruned_rows_total{table="outbox"} 3.0',
        'newswatch_pruned_rows_total{table="items"} 3.0',
        'newswatch_pruned_rows_total{table="feeds"} 0.0',
        'newswatch_pruned_rows_total{table="stats"} 1.0',
    ):
        assert series in text, series
    store = open_store(f"sqlite:{config_dir.store}", read_only=True)
    try:
        assert store.seen_keys("news", ["gone0"]) == set()
        (state,) = store.feed_states()
        assert state.item_count == 1  # OLD, which the feed serves
    finally:
        store.close()
