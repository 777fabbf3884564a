"""A feed that still answers but has stopped publishing, through the CLI: `once` flags it and
tells Slack once, `feeds` shows it, and its next new item is told too. A weekly feed quiet for
four days is left alone. The store is given each feed's past (its sightings of new items, days
ago) first: the CLI runs on the real clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.feeds.parse import read_feed
from bot.model import Item
from bot.store import FeedRow, PollOutcome, SeenItem, open_store
from tests.conftest import ConfigDir, run_cli
from tests.peers.daemon import Daemon
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import SlackEmulator

DAILY = [Entry("Council meets", link="https://n.example/council")]
WEEKLY = [Entry("Weekly digest", link="https://n.example/week")]


def _seed(store: Path, feeds: dict[str, tuple[str, str, list[float]]]) -> None:
    """Give each feed (id → url, body served, days ago its new items were seen) its past: the
    items it serves now were new at its latest sighting."""
    now = datetime.now(UTC)
    db = open_store(f"sqlite:{store}")
    try:
        db.sync_feeds([FeedRow(f, u) for f, (u, _, _) in feeds.items()], now - timedelta(days=60))
        polls = []
        for feed_id, (url, body, days) in feeds.items():
            served = read_feed(body.encode(), feed_id=feed_id, url=url).entries
            for n, ago in enumerate(sorted(days, reverse=True)):
                items: list[SeenItem] = [Item(feed_id, f"old-{n}", f"Old story {n}")]
                polls.append((now - timedelta(days=ago), feed_id, items))
            polls[-1][2].extend(served)
        for at, feed_id, items in sorted(polls, key=lambda p: p[0]):
            db.claim_feeds("seed", at, 60, 10, due_only=False)
            due = at + timedelta(minutes=1)
            assert db.record_poll(PollOutcome(feed_id, "seed", at, due, items=items)).applied
    finally:
        db.close()


def _table(config_dir: ConfigDir) -> dict[str, str]:
    result = run_cli("--config", str(config_dir.path), "feeds")
    assert result.code == 0, result.stderr
    return {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}


def _daily_gone_quiet(config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator) -> None:
    """A daily feed quiet for nine days and a weekly one for four, the silence told to Slack."""
    daily = feed_server.serve("/daily.xml", rss(DAILY))
    weekly = feed_server.serve("/weekly.xml", rss(WEEKLY))
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        server: {{host: 127.0.0.1, port: 0}}
        feeds: [{{id: daily, url: '{daily}'}}, {{id: weekly, url: '{weekly}'}}]
        destinations:
          console: {{type: console}}
          ops: {{type: slack, webhook_url: '{slack.webhook_url}'}}
        on_feed_silence: {{after: 3d, notify: [ops]}}
    """,
    )
    config_dir.write("rules.yaml", "rules: [{id: r, title: W, query: x, notify: [console]}]\n")
    _seed(
        config_dir.store,
        {
            "daily": (daily, rss(DAILY), [float(d) for d in range(9, 21)]),
            "weekly": (weekly, rss(WEEKLY), [25.0, 18.0, 11.0, 4.0]),
        },
    )


def test_a_silent_feed_is_flagged_told_once_shown_and_its_return_told(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    _daily_gone_quiet(config_dir, feed_server, slack)
    for _ in range(2):  # a 200 with nothing new, then a 304
        result = run_cli("--config", str(config_dir.path), "once")
        assert result.code == 0, result.stderr
    assert [m.text for m in slack.messages] == [slack.messages[0].text]
    assert "daily has gone silent" in slack.messages[0].text
    assert "it usually publishes every 24h" in slack.messages[0].text
    rows = _table(config_dir)
    assert "silent 9d (usual gap 24h)" in rows["daily"]
    assert rows["weekly"].split()[1] == "ok"

    feed_server.serve("/daily.xml", rss([Entry("Council votes", link="https://n.example/v")]))
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    assert len(slack.messages) == 2
    assert "daily publishes again" in slack.messages[1].text
    assert _table(config_dir)["daily"].split()[1] == "ok"


def test_the_daemon_shows_each_feeds_silence_in_metrics(
    config_dir: ConfigDir,
    feed_server: FeedServer,
    slack: SlackEmulator,
    start: Callable[..., Daemon],
) -> None:
    _daily_gone_quiet(config_dir, feed_server, slack)
    daemon = start(config_dir)
    daemon.wait_event("feed_silent", feed="daily")

    def silent() -> dict[str, float] | None:
        text = daemon.get("/metrics")[2].decode()
        gauges = {
            s.labels["feed"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "newswatch_feed_silent_seconds"
        }
        return gauges if gauges.get("daily") else None

    gauges = daemon.wait_for("the silent feed in /metrics", silent)
    assert 9 * 86400 <= gauges["daily"] < 10 * 86400
    assert gauges["weekly"] == 0
    assert len(slack.wait_for(1, timeout=20)) == 1
