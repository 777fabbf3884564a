"""A flooding feed end to end: a feed that jumps from 1 to 2,000 matching items costs its
Slack channel ``delivery.max_alerts_per_poll`` single messages and one overflow message,
and another feed's alert for the same channel goes out in the same run."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from tests.conftest import ConfigDir, run_cli
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import SlackEmulator, block_kit_violations

NOW = datetime.now(UTC)
CEILING = 3
FLOOD = [
    Entry(
        f"RCMP update {i}",
        "RCMP news.",
        f"https://news.example/{i}",
        guid=f"flood-{i}",
        published=NOW - timedelta(minutes=i),
    )
    for i in range(2_000)
]
OLD = Entry("Budget tabled in Ottawa", "Nothing to see.", "https://news.example/old")
QUIET = Entry("RCMP opens a new detachment", "RCMP news.", "https://news.example/quiet")


def configure(cfg: ConfigDir, destination: str, flood: str, quiet: str) -> None:
    cfg.write(
        "settings.yaml",
        f"""
        store: sqlite:{cfg.store}
        http: {{timeout: 10s}}
        delivery: {{max_alerts_per_poll: {CEILING}}}
        feeds:
          - {{id: flood, url: '{flood}', title: Flood feed}}
          - {{id: quiet, url: '{quiet}', title: Quiet feed}}
        destinations:
          desk: {destination}
    """,
    )
    cfg.write("rules.yaml", "rules: [{id: rcmp, title: RCMP watch, query: RCMP}]\n")


def outbox_rows(cfg: ConfigDir) -> int:
    conn = sqlite3.connect(cfg.store)
    try:
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        conn.close()


def test_a_flood_costs_the_channel_the_ceiling_plus_one_message(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    flood = feed_server.serve("/flood.xml", rss([FLOOD[-1]]))
    quiet = feed_server.serve("/quiet.xml", rss([OLD]))
    slack_desk = (
        "{type: slack, channel: '#desk', token: '${SLACK_TEST_TOKEN}', "
        f"base_url: '{slack.base_url}'}}"
    )
    configure(config_dir, slack_desk, flood, quiet)
    baseline = run_cli("--config", str(config_dir.path), "once")
    assert baseline.code == 0, baseline.stderr
    assert slack.messages == []

    feed_server.serve("/flood.xml", rss(FLOOD), conditional=False)
    feed_server.serve("/quiet.xml", rss([QUIET, OLD]))
    # At Slack's pace of one message a second, 2,000 messages would outlast this timeout.
    flooded = run_cli("--config", str(config_dir.path), "once", timeout=90)
    assert flooded.code == 0, flooded.stderr
    assert "2003 alerts" not in flooded.stderr and "5 sent, 0 undelivered" in flooded.stderr
    assert flooded.stderr.count("over the ceiling") == 1
    assert "feed flood: 1996 matches for desk over the ceiling of 3" in flooded.stderr

    texts = sorted(m.text for m in slack.messages)
    assert texts == [
        "1996 more matches from Flood feed",
        "RCMP watch: RCMP opens a new detachment (Quiet feed)",
        "RCMP watch: RCMP update 0 (Flood feed)",
        "RCMP watch: RCMP update 1 (Flood feed)",
        "RCMP watch: RCMP update 2 (Flood feed)",
    ]
    (overflow,) = [m for m in slack.messages if "more matches" in m.text]
    assert block_kit_violations(overflow.payload) == []
    listing = overflow.rich_texts()
    assert "RCMP update 3 · RCMP watch" in listing
    assert "link:https://news.example/3" in overflow.entities
    assert listing[-1] == "and 1896 more"
    queued = outbox_rows(config_dir)
    assert queued == 5

    # The same document again, fetched in full and parsed: nothing new is queued or sent.
    replay = run_cli("--config", str(config_dir.path), "once")
    assert replay.code == 0, replay.stderr
    assert "0 alerts, 0 sent" in replay.stderr
    assert outbox_rows(config_dir) == queued
    assert len(slack.messages) == 5


def test_backfill_on_a_first_fetch_is_held_to_the_ceiling_too(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    flood = feed_server.serve("/flood.xml", rss(FLOOD[:50]))
    quiet = feed_server.serve("/quiet.xml", rss([OLD]))
    configure(config_dir, "{type: console}", flood, quiet)
    result = run_cli("--config", str(config_dir.path), "once", "--backfill", "1d")
    assert result.code == 0, result.stderr
    assert "4 alerts, 4 sent" in result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("RCMP update")] == [
        "RCMP update 0",
        "RCMP update 1",
        "RCMP update 2",
    ]
    assert "47 more matches from Flood feed\n" in result.stdout
    assert result.stdout.count("\n- RCMP update ") == 47
