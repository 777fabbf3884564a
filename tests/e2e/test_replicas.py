"""Several replicas on one PostgreSQL, end to end: real processes of the CLI, a loopback
feed server with 30 feeds, the Slack emulator. Every alert is sent once; a replica killed
mid-delivery loses nothing, and the message it had in flight is found in the channel's
history by the replica that takes its work over, not posted again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import REPO, ConfigDir
from tests.peers.daemon import Daemon
from tests.peers.feed_server import FeedServer
from tests.peers.postgres import postgres_dsn, temporary_database
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import TOKEN, SlackEmulator

DSN, NO_POSTGRES = postgres_dsn()
pytestmark = [pytest.mark.postgres, pytest.mark.skipif(DSN is None, reason=NO_POSTGRES)]

NOW = datetime.now(UTC)
FEEDS = 30
OLD = Entry(
    "Budget tabled in Ottawa",
    "Nothing to see.",
    "https://news.example/old",
    published=NOW - timedelta(days=3),
)


LEASE = 5  # seconds (schedule.lease): a short lease keeps the takeover test short


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    env["SLACK_TEST_TOKEN"] = TOKEN
    return env


def _configure(cfg: ConfigDir, store: str, server: FeedServer, slack: SlackEmulator) -> None:
    feeds = "".join(
        f"  - {{id: f{i:02d}, url: '{server.serve(f'/f{i:02d}.xml', rss([OLD]))}'}}\n"
        for i in range(FEEDS)
    )
    cfg.write(
        "settings.yaml",
        textwrap.dedent(f"""
        store: {store}
        server: {{host: 127.0.0.1, port: 0}}
        schedule: {{interval: 1s, jitter: 0s, lease: {LEASE}s}}
        http: {{timeout: 5s}}
        destinations:
          desk:
            type: slack
            channel: {slack.channel_id("#iraq")}
            token: ${{SLACK_TEST_TOKEN}}
            base_url: {slack.base_url}
        feeds:
    """).lstrip()
        + feeds,
    )
    cfg.write(
        "rules.yaml",
        """
        rules:
          - id: iraq
            title: Police in Iraq
            query: 'RCMP AND Iraq'
            notify: [desk]
    """,
    )


def _publish(server: FeedServer, alerting: int, shared: int) -> set[str]:
    """New items in every feed: ``alerting`` feeds get a story of their own that matches,
    the next ``shared`` feeds all carry one matching story (one alert), the rest noise.
    Returns the titles that must each be alerted once."""
    expected = set()
    for i in range(FEEDS):
        if i < alerting:
            title = f"RCMP officers deploy to Iraq, report {i:02d}"
            entry = Entry(
                title, "The RCMP mission in Iraq.", f"https://news.example/own/{i}", published=NOW
            )
            expected.add(title)
        elif i < alerting + shared:
            title = "RCMP and Iraq sign a police training deal"
            entry = Entry(
                title,
                "Reported everywhere.",
                "https://news.example/shared",
                guid=f"shared-{i}",
                published=NOW,
            )
            expected.add(title)
        else:
            entry = Entry(
                f"Hockey night {i}", "The Leafs won.", f"https://news.example/h/{i}", published=NOW
            )
        server.serve(f"/f{i:02d}.xml", rss([entry, OLD]))
    return expected


def _titles(slack: SlackEmulator, expected: set[str]) -> Counter[str]:
    return Counter(title for m in slack.messages for title in expected if title in m.text)


def _wait(what: str, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def _scalar(url: str, sql: str, *params: object) -> Any:
    """The one value ``sql`` selects; None while the replicas have not created the schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            return conn.execute(sql, params).fetchone()[0]  # type: ignore[index]
        except psycopg.errors.UndefinedTable:
            return None


@pytest.fixture
def store_url() -> Iterator[str]:
    with temporary_database(DSN or "") as url:
        yield url


def _once_together(cfg: ConfigDir, n: int = 3) -> list[subprocess.CompletedProcess[str]]:
    """``n`` ``newswatch once`` processes started at the same moment."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(cfg.path), "once"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
            cwd=REPO,
        )
        for _ in range(n)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_three_once_replicas_send_every_alert_exactly_once(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, store_url: str
) -> None:
    _configure(config_dir, store_url, feed_server, slack)
    baseline = _once_together(config_dir)
    assert all(r.returncode == 0 for r in baseline), [r.stderr for r in baseline]
    assert slack.messages == []
    assert (
        _scalar(store_url, "SELECT count(*) FROM feeds WHERE last_success_at IS NOT NULL") == FEEDS
    )

    expected = _publish(feed_server, alerting=10, shared=5)
    runs = _once_together(config_dir)
    # A replica may exit 1 while another still holds claimed alerts ("undelivered").
    assert all(r.returncode in (0, 1) for r in runs), [r.stderr for r in runs]
    assert _titles(slack, expected) == Counter(dict.fromkeys(expected, 1))
    assert len(slack.messages) == len(expected) == 11
    assert _scalar(store_url, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0


def test_three_daemons_one_killed_while_sending_lose_nothing(
    config_dir: ConfigDir,
    feed_server: FeedServer,
    slack: SlackEmulator,
    store_url: str,
    start: Callable[..., Daemon],
    record_property: Callable[[str, object], None],
) -> None:
    _configure(config_dir, store_url, feed_server, slack)
    replicas = [start(config_dir) for _ in range(3)]
    _wait(
        "every feed baselined",
        lambda: (
            _scalar(store_url, "SELECT count(*) FROM feeds WHERE last_success_at IS NOT NULL")
            == FEEDS
        ),
    )

    expected = _publish(feed_server, alerting=12, shared=0)
    victim = _wait(
        "a replica delivering", lambda: next((d for d in replicas if _delivered(d)), None)
    )
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    owner = f"%:{victim.proc.pid}:%"
    held = _scalar(
        store_url,
        "SELECT count(*) FROM outbox WHERE lease_owner LIKE %s AND status = 'pending'",
        owner,
    )
    record_property("held_by_the_killed_replica", held)

    # Its leases end on their own (no heartbeat renews them); the survivors take over.
    _wait("every alert delivered", lambda: set(_titles(slack, expected)) == expected, 90)
    _wait(
        "an empty outbox",
        lambda: (
            _scalar(
                store_url,
                "SELECT count(*) FROM outbox WHERE status <> 'sent' OR lease_owner IS NOT NULL",
            )
            == 0
        ),
    )
    sent = _titles(slack, expected)
    duplicates = sum(sent.values()) - len(expected)
    record_property("duplicates", duplicates)
    # Even the message in flight at the kill is not repeated: the survivor finds it first.
    assert duplicates == 0, sent
    assert all(d.proc.poll() is None for d in replicas if d is not victim)


def _delivered(daemon: Daemon) -> bool:
    return any(e.get("event") == "delivered" for e in daemon.events())
