"""Digests end to end: alerts wait for their period, then go out as one message grouped by rule."""

from __future__ import annotations

import sqlite3
import time

from tests.conftest import ConfigDir, run_cli
from tests.e2e.test_once import MOSUL, OLD, SUSPENDED, UNRELATED
from tests.peers.feed_server import FeedServer
from tests.peers.rss import rss
from tests.peers.slack_emulator import SlackEmulator

PERIOD = 20  # seconds; the queueing run and the count after it must fit well within one,
# also on a loaded CI machine (two CLI runs took over 5 s there)


def test_digest_waits_for_its_period_then_sends_one_message(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    url = feed_server.serve("/news.xml", rss([OLD]))
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        feeds: [{{id: news, url: '{url}'}}]
        destinations:
          weekly:
            type: slack
            webhook_url: {slack.webhook_url}
            digest: {{every: {PERIOD}s}}
    """,
    )
    config_dir.write(
        "rules.yaml",
        """
        rules:
          - id: mission
            title: Police mission
            query: 'RCMP AND Iraq'
          - id: mosul
            title: Mosul
            query: Mosul
    """,
    )
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    feed_server.serve("/news.xml", rss([MOSUL, SUSPENDED, UNRELATED, OLD]))

    _wait_for_a_period_to_start()
    queued = run_cli("--config", str(config_dir.path), "once")
    assert queued.code == 0, queued.stderr  # waiting for a digest is not "undelivered"
    assert slack.messages == []
    # Mosul matched both rules: one alert names them both.
    assert "2 waiting for a digest" in run_cli("--config", str(config_dir.path), "feeds").stdout

    _wait_until_digest_closes(config_dir)
    sent = run_cli("--config", str(config_dir.path), "once")
    assert sent.code == 0, sent.stderr
    (digest,) = slack.messages
    assert digest.via == "webhook"
    text = str(digest.blocks)
    assert text.index("Police mission") < text.index("suspended amid turmoil")
    assert "Also matched: Mosul" in text and "liberated Mosul" in text
    assert "0 waiting for a digest" in run_cli("--config", str(config_dir.path), "feeds").stdout


def _wait_for_a_period_to_start() -> None:
    """Periods are aligned to the epoch: start right after a boundary, so the batch cannot
    close while the alerts are being queued and counted (it did on a loaded machine)."""
    time.sleep(PERIOD - time.time() % PERIOD + 0.01)


def _wait_until_digest_closes(cfg: ConfigDir) -> None:
    """The clock has to pass the batch's closing time; read it from the store and wait for it."""
    conn = sqlite3.connect(cfg.store)
    try:
        (closes,) = conn.execute("SELECT max(next_attempt_at) FROM outbox").fetchone()
    finally:
        conn.close()
    time.sleep(max(0.0, closes - time.time()) + 0.05)
