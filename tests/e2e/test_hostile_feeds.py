"""The daemon under attack from the feeds it polls, beside a feed that behaves.

One daemon polls, every second, a normal feed and three hostile ones at once: an
item whose text is built to be quadratic to process (escaped markup repeated in
the title, one word repeated between the terms of a NEAR rule), a brotli
decompression bomb, and a feed whose server asks not to be polled for a year.
The normal feed's new story must still reach Slack within a few poll intervals,
the hostile feeds must fail or be capped (and be polled again), and SIGTERM must
still stop the daemon within 10 s.
"""

from __future__ import annotations

import json
import signal
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import brotli

from tests.conftest import ConfigDir
from tests.peers.daemon import Daemon
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import SlackEmulator

NOW = datetime.now(UTC)
CALM = Entry(
    "Budget tabled in Ottawa",
    "Nothing to see.",
    "https://news.example/old",
    published=NOW - timedelta(days=3),
)
MOSUL = Entry(
    "Canada sends police officers to Mosul",
    "The RCMP will lead the deployment to Iraq.",
    "https://news.example/mosul",
    published=NOW - timedelta(hours=1),
)
RULES = """
    rules:
      - id: iraq
        title: Police in Iraq
        query: 'RCMP NEAR/8 Iraq'
        notify: [desk]
"""


def _brotli_bomb(decoded: int) -> bytes:
    """``decoded`` zero bytes, brotli-compressed to well under a kilobyte per 100 MiB."""
    compressor = brotli.Compressor(quality=5)
    chunk = b"\0" * (1 << 24)
    parts = [compressor.process(chunk) for _ in range(decoded // len(chunk))]
    return b"".join(parts) + compressor.finish()


def _quadratic_feed() -> str:
    """Text that costs quadratic time in a naive HTML stripper or NEAR evaluator."""
    escaped_markup = "<script>" * 30_000  # 240 KB once escaped by rss()
    words = "RCMP " + "mission " * 18_000 + "Iraq"  # 144 KB between the NEAR terms
    return rss([Entry(escaped_markup, words, "https://hostile.example/1"), CALM], title="Hostile")


def test_hostile_feeds_neither_delay_a_normal_feed_nor_stop_the_daemon(
    config_dir: ConfigDir,
    feed_server: FeedServer,
    slack: SlackEmulator,
    start: Callable[..., Daemon],
) -> None:
    normal = feed_server.serve("/normal.xml", rss([CALM]))
    quadratic = feed_server.serve("/quadratic.xml", _quadratic_feed())
    bomb = feed_server.serve(
        "/bomb.xml", _brotli_bomb(512 << 20), headers={"Content-Encoding": "br"}
    )
    year = feed_server.serve(
        "/year.xml",
        rss([CALM]),
        headers={"Cache-Control": "public, max-age=31536000"},
        conditional=False,
    )
    config_dir.write(
        "settings.yaml",
        textwrap.dedent(f"""
        store: sqlite:{config_dir.store}
        server: {{host: 127.0.0.1, port: 0}}
        schedule: {{interval: 1s, jitter: 0s}}
        http: {{timeout: 5s, max_delay: 2s}}
        feeds:
          - {{id: normal, url: '{normal}'}}
          - {{id: quadratic, url: '{quadratic}', backfill: 30d}}
          - {{id: bomb, url: '{bomb}'}}
          - {{id: year, url: '{year}'}}
        destinations:
          desk: {{type: slack, channel: "#iraq", token: "${{SLACK_TEST_TOKEN}}",
                 base_url: {slack.base_url}}}
    """).lstrip(),
    )
    config_dir.write("rules.yaml", RULES)
    daemon = start(config_dir)
    for feed in ("normal", "year"):
        daemon.wait_event("feed_polled", feed=feed)
    # The hostile items were read, cut to size and matched (in vain: RCMP and Iraq are
    # 18,000 words apart), within the same cycles as the others.
    assert daemon.wait_event("feed_polled", feed="quadratic")["new_items"] == 2
    daemon.wait_event("feed_failed", feed="bomb")

    feed_server.serve("/normal.xml", rss([MOSUL, CALM]))
    messages = slack.wait_for(1, timeout=10)
    assert len(messages) == 1 and "Mosul" in messages[0].text

    failures = [e for e in daemon.events() if e.get("event") == "feed_failed"]
    assert {e["reason"] for e in failures if e.get("feed") == "bomb"} == {"too_large"}
    assert not [e for e in failures if e.get("feed") != "bomb"]
    # max-age asked for a year; max_delay (2 s) caps it, so the feed is polled again.
    daemon.wait_for(
        "the year-long max-age feed polled again", lambda: feed_server.hits("/year.xml") >= 2
    )
    status, _, body = daemon.get("/healthz")
    assert status == 200 and json.loads(body)["store_ok"] is True

    code, took = daemon.stop(signal.SIGTERM)
    assert code == 0 and took < 10, daemon.text()
