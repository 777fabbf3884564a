"""`newswatch run` end to end: the daemon as a subprocess, real feed server, Slack emulator, HTTP.

Every wait is a condition polled with a deadline (a log event, a Slack message,
an HTTP answer), never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, ConfigDir
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import TOKEN, WEBHOOK_PATH, Fault, SlackEmulator

NOW = datetime.now(UTC)
OLD = Entry(
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
HOCKEY = Entry(
    "Hockey night",
    "The Leafs won again.",
    "https://news.example/hockey",
    published=NOW - timedelta(minutes=1),
)
RULE = """
    rules:
      - id: iraq
        title: Police in Iraq
        query: '{query}'
        notify: [desk]
"""
SMTP_SECRET = "smtp-pa55word-never-logged"


def settings(
    cfg: ConfigDir,
    feed_url: str,
    slack: SlackEmulator,
    *,
    channel: str = "#iraq",
    more_destinations: str = "",
) -> None:
    """A config polling ``feed_url`` every second into Slack; ``more_destinations`` is YAML."""
    text = textwrap.dedent(f"""
        store: sqlite:{cfg.store}
        server: {{host: 127.0.0.1, port: 0}}
        schedule: {{interval: 1s, jitter: 0s}}
        http: {{timeout: 5s}}
        feeds:
          - {{id: news, url: '{feed_url}'}}
        destinations:
          desk:
            type: slack
            channel: "{channel}"
            token: ${{SLACK_TEST_TOKEN}}
            base_url: {slack.base_url}
    """).lstrip()
    cfg.write("settings.yaml", text + textwrap.indent(textwrap.dedent(more_destinations), "  "))


class Daemon:
    """``python -m bot run`` with JSON logs in a file (a pipe could fill up and block it)."""

    def __init__(self, cfg: ConfigDir, log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
        environment.update({"SLACK_TEST_TOKEN": TOKEN, **env})
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(cfg.path),
                "--log-format",
                "json",
                "-v",
                "run",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=environment,
            cwd=REPO,
        )
        listening = self.wait_event("listening")
        self.url = f"http://127.0.0.1:{listening['port']}"

    def text(self) -> str:
        return self.log_path.read_text()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"message": line})
        return out

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.text()}")

    def wait_event(self, event: str, count: int = 1, **fields: object) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            hits = [
                e
                for e in self.events()
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            ]
            return hits[count - 1] if len(hits) >= count else None

        return self.wait_for(f"log event {event} x{count} {fields}", found)

    def get(self, path: str) -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers["Content-Type"], err.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    daemons: list[Daemon] = []

    def starter(cfg: ConfigDir, **env: str) -> Daemon:
        daemon = Daemon(cfg, tmp_path / f"daemon{len(daemons)}.log", env)
        daemons.append(daemon)
        return daemon

    yield starter
    for daemon in daemons:
        daemon.close()


def test_polls_delivers_serves_health_and_metrics_and_stops_on_sigterm(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    settings(config_dir, feed_server.serve("/news.xml", rss([OLD])), slack)
    config_dir.write("rules.yaml", RULE.format(query="RCMP AND (Iraq OR Mosul)"))
    daemon = start(config_dir)
    daemon.wait_event("feed_polled", feed="news")

    feed_server.serve("/news.xml", rss([MOSUL, OLD]))
    messages = slack.wait_for(1, timeout=20)
    assert len(messages) == 1 and "Mosul" in messages[0].text

    def marked_sent() -> dict[str, Any] | None:
        status, ctype, body = daemon.get("/healthz")
        assert (status, ctype) == (200, "application/json")
        health = json.loads(body)
        return health if health["outbox"] == {"pending": 0, "dead": 0} else None

    health = daemon.wait_for("/healthz to show the alert sent", marked_sent)
    assert health["status"] == "ok" and health["store_ok"] is True
    assert health["last_poll"] is not None

    def sent_counted() -> str | None:
        text = daemon.get("/metrics")[2].decode()
        sent = 'newswatch_alerts_total{destination="desk",outcome="sent"} 1.0'
        return text if sent in text else None

    text = daemon.wait_for("the sent alert counted in /metrics", sent_counted)
    for series in (
        'newswatch_fetches_total{outcome="ok"}',
        "newswatch_fetch_duration_seconds",
        "newswatch_items_new_total",
        'newswatch_matches_total{rule="iraq"} 1.0',
        "newswatch_outbox_pending 0.0",
        "newswatch_outbox_dead 0.0",
        "newswatch_cycle_duration_seconds",
        "newswatch_store_up 1.0",
    ):
        assert series in text, series
    assert daemon.get("/nothing")[0] == 404

    code, took = daemon.stop(signal.SIGTERM)
    assert code == 0 and took < 10, daemon.text()
    assert daemon.wait_event("stopped")


def test_rule_edits_apply_next_cycle_and_invalid_edits_keep_the_old_rules(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    settings(config_dir, feed_server.serve("/news.xml", rss([OLD])), slack)
    config_dir.write("rules.yaml", RULE.format(query="RCMP AND (Iraq OR Mosul)"))
    daemon = start(config_dir)
    daemon.wait_event("feed_polled", feed="news")

    config_dir.write("rules.yaml", RULE.format(query="RCMP AND (Iraq"))
    rejected = daemon.wait_event("rules_rejected")
    located = [e["message"] for e in daemon.events() if e.get("event") == "rules_invalid"]
    assert located and located[0].startswith(f"{config_dir.path / 'rules.yaml'}:4: ")
    assert "rule 'iraq'" in located[0] and "column" in located[0]
    assert "1 active rules" in rejected["message"]

    feed_server.serve("/news.xml", rss([MOSUL, OLD]))
    assert "Mosul" in slack.wait_for(1, timeout=20)[0].text

    config_dir.write("rules.yaml", RULE.format(query="hockey"))
    daemon.wait_event("rules_reloaded")
    feed_server.serve("/news.xml", rss([HOCKEY, MOSUL, OLD]))
    messages = slack.wait_for(2, timeout=20)
    assert "Hockey night" in messages[1].text
    assert daemon.stop()[0] == 0


def test_sighup_reloads_settings_and_keeps_running_on_an_invalid_one(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    url = feed_server.serve("/news.xml", rss([OLD]))
    settings(config_dir, url, slack)
    config_dir.write("rules.yaml", RULE.format(query="RCMP"))
    daemon = start(config_dir)
    daemon.wait_event("feed_polled", feed="news")

    good = (config_dir.path / "settings.yaml").read_text()
    config_dir.write("settings.yaml", good + "unknown_key: 1\n")
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_event("reload_failed")
    assert any(
        "unknown_key: unknown key" in e["message"]
        for e in daemon.events()
        if e.get("event") == "config_invalid"
    )

    settings(config_dir, url, slack, channel="#elsewhere")
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_event("started", count=2)
    feed_server.serve("/news.xml", rss([MOSUL, OLD]))
    assert slack.wait_for(1, timeout=20)[0].channel == "#elsewhere"
    status, _, _ = daemon.get("/healthz")
    assert status == 200
    assert daemon.stop(signal.SIGINT)[0] == 0


def test_slack_secrets_never_reach_the_logs_even_when_sends_fail(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    _secrets_stay_out_of_logs(
        config_dir,
        feed_server,
        slack,
        start,
        destinations="""
        hook:
          type: slack
          webhook_url: ${HOOK_URL}
    """,
        notify="[desk, hook]",
        faults=[Fault("error", code="invalid_auth"), Fault("server_error")],
    )


def test_smtp_password_never_reaches_the_logs_even_when_sends_fail(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    pytest.importorskip("bot.notify.email")
    _secrets_stay_out_of_logs(
        config_dir,
        feed_server,
        slack,
        start,
        destinations=f"""
        mail:
          type: email
          to: [desk@example.org]
          from: bot@example.org
          smtp: {{host: 127.0.0.1, port: {_closed_port()}, security: ssl, username: bot,
                  password: "${{SMTP_PASSWORD}}", timeout: 2s}}
    """,
        notify="[desk, mail]",
        faults=[Fault("error", code="invalid_auth")],
        more_failures=1,
    )


def _secrets_stay_out_of_logs(
    cfg: ConfigDir,
    feed_server: FeedServer,
    slack: SlackEmulator,
    start: Callable[..., Daemon],
    *,
    destinations: str,
    notify: str,
    faults: list[Fault],
    more_failures: int = 0,
) -> None:
    """Sends fail (Slack faults, an SMTP port nobody listens on); no secret is ever logged."""
    settings(cfg, feed_server.serve("/news.xml", rss([OLD])), slack, more_destinations=destinations)
    cfg.write(
        "rules.yaml",
        f"""
        rules:
          - {{id: all, title: Everything, query: 'RCMP', notify: {notify}}}
    """,
    )
    daemon = start(cfg, SMTP_PASSWORD=SMTP_SECRET, HOOK_URL=slack.webhook_url)
    daemon.wait_event("feed_polled", feed="news")
    slack.fail_next(*faults)
    failures = len(faults) + more_failures

    feed_server.serve("/news.xml", rss([MOSUL, OLD]))
    daemon.wait_for(
        f"{failures} failed sends",
        lambda: (
            len(
                [
                    e
                    for e in daemon.events()
                    if e.get("event") in ("delivery_retry", "delivery_dead")
                ]
            )
            >= failures
        ),
        timeout=30,
    )
    assert daemon.stop()[0] == 0
    logs = daemon.text()
    for secret in (TOKEN, SMTP_SECRET, WEBHOOK_PATH.rsplit("/", 1)[1]):
        assert secret not in logs


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
