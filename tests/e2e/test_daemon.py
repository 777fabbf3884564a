"""`newswatch run` end to end: the daemon as a subprocess, real feed server, Slack emulator, HTTP.

Every wait is a condition polled with a deadline (a log event, a Slack message,
an HTTP answer), never a fixed sleep.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import ConfigDir, run_cli
from tests.peers.daemon import Daemon
from tests.peers.feed_server import FeedServer
from tests.peers.postgres import postgres_dsn, temporary_database
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
METRICS_TOKEN = "metrics-t0ken-never-logged"
HEALTHZ_BOUND = 3.0  # seconds: /healthz not answering by then fails the test
DSN, NO_POSTGRES = postgres_dsn()
POSTGRES = [pytest.mark.postgres, pytest.mark.skipif(DSN is None, reason=NO_POSTGRES)]


def settings(
    cfg: ConfigDir,
    feed_url: str,
    slack: SlackEmulator,
    *,
    channel: str = "#iraq",
    more_destinations: str = "",
    store: str | None = None,
    server: str = "{host: 127.0.0.1, port: 0}",
) -> None:
    """A config polling ``feed_url`` every second into Slack; ``more_destinations`` is YAML."""
    text = textwrap.dedent(f"""
        store: {store or f"sqlite:{cfg.store}"}
        server: {server}
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
        'newswatch_alerts_queued_total{rule="iraq"} 1.0',
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

    config_dir.write("rules.yaml", RULE.format(query="hockey |"))  # loads, with a warning
    daemon.wait_event("rules_reloaded")
    warned = [e["message"] for e in daemon.events() if e.get("event") == "rule_warning"]
    assert warned == [
        f"{config_dir.path / 'rules.yaml'}:4:20: warning: rule 'iraq': query: '|' has no"
        " letters or digits, so it is ignored: write OR for either side, AND for both, NOT to"
        " exclude"
    ]
    feed_server.serve("/news.xml", rss([HOCKEY, MOSUL, OLD]))
    messages = slack.wait_for(2, timeout=20)
    assert "Hockey night" in messages[1].text
    assert daemon.stop()[0] == 0


def test_an_edit_to_a_group_alone_reloads_the_rules_that_use_it(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    settings(config_dir, feed_server.serve("/news.xml", rss([OLD])), slack)
    config_dir.write("rules.yaml", RULE.format(query="@sport AND night"))
    lexicon = config_dir.write("rules/lexicon.yaml", "groups: {sport: [curling]}\n")
    daemon = start(config_dir)
    daemon.wait_event("feed_polled", feed="news")

    lexicon.write_text("groups: {sport: [curling, hockey]}\n", encoding="utf-8")
    daemon.wait_event("rules_reloaded")
    feed_server.serve("/news.xml", rss([HOCKEY, OLD]))
    assert "Hockey night" in slack.wait_for(1, timeout=20)[0].text
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


def test_a_reload_that_cannot_bind_its_port_keeps_the_running_daemon(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    """The new generation is prepared beside the old one; failing to listen drops only it."""
    url = feed_server.serve("/news.xml", rss([OLD]))
    settings(config_dir, url, slack)
    config_dir.write("rules.yaml", RULE.format(query="RCMP"))
    daemon = start(config_dir)
    daemon.wait_event("feed_polled", feed="news")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        settings(
            config_dir,
            url,
            slack,
            channel="#elsewhere",
            server=f"{{host: 127.0.0.1, port: {port}}}",
        )
        daemon.proc.send_signal(signal.SIGHUP)
        failed = daemon.wait_event("reload_failed")

    assert failed["message"] == (
        f"reload failed, keeping the running config: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"
    )
    errors = [e for e in daemon.events() if e.get("level") in ("error", "critical")]
    assert errors == [failed]
    assert daemon.get("/healthz")[0] == 200
    feed_server.serve("/news.xml", rss([MOSUL, OLD]))
    assert slack.wait_for(1, timeout=20)[0].channel == "#iraq"
    assert len([e for e in daemon.events() if e.get("event") == "started"]) == 1
    assert daemon.stop()[0] == 0


def test_metrics_require_the_bearer_token_when_one_is_set(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start
) -> None:
    settings(
        config_dir,
        feed_server.serve("/news.xml", rss([OLD])),
        slack,
        server="{host: 127.0.0.1, port: 0, metrics_token: '${METRICS_TOKEN}'}",
    )
    config_dir.write("rules.yaml", RULE.format(query="RCMP"))
    daemon = start(config_dir, METRICS_TOKEN=METRICS_TOKEN)

    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
    ):
        status, _, body = daemon.get("/metrics", headers=headers)
        assert (status, body) == (401, b"bearer token required\n"), headers
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(daemon.url + "/metrics", timeout=5)
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    status, _, body = daemon.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200 and b"newswatch_fetches_total" in body
    assert daemon.get("/healthz")[0] in (200, 503)  # open to all: no 401
    assert daemon.stop()[0] == 0
    assert METRICS_TOKEN not in daemon.text()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=POSTGRES)])
def test_healthz_answers_503_at_once_while_another_process_locks_the_store(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, start, engine: str
) -> None:
    """The pipeline blocks the daemon's loop on the lock; /healthz still answers, quickly."""
    with ExitStack() as stack:
        store = None
        if engine == "postgres":
            store = stack.enter_context(temporary_database(DSN or ""))
        settings(config_dir, feed_server.serve("/news.xml", rss([OLD])), slack, store=store)
        config_dir.write("rules.yaml", RULE.format(query="RCMP"))
        daemon = start(config_dir)
        daemon.wait_event("feed_polled", feed="news")

        def healthz(status: int, store_ok: bool) -> dict[str, Any] | None:
            got, _, body = daemon.get("/healthz", timeout=HEALTHZ_BOUND)
            health = json.loads(body)
            return health if (got, health["store_ok"]) == (status, store_ok) else None

        with _locked(store or f"sqlite:{config_dir.store}"):
            health = daemon.wait_for("/healthz to say 503", lambda: healthz(503, False))
            assert health["status"] == "unhealthy"
            assert health["reason"] == "store not answering"
        daemon.wait_for("/healthz to recover", lambda: healthz(200, True))
        assert daemon.stop()[0] == 0


@contextmanager
def _locked(store: str) -> Iterator[None]:
    """Another process's transaction holding the store's tables exclusively."""
    if store.startswith("sqlite:"):
        conn = sqlite3.connect(store.removeprefix("sqlite:"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
    else:
        conn = psycopg.connect(store)
        conn.execute("LOCK TABLE feeds, outbox IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_a_taken_port_at_start_is_one_line_naming_the_setting_and_nothing_is_polled(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    url = feed_server.serve("/news.xml", rss([OLD]))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        settings(config_dir, url, slack, server=f"{{host: 127.0.0.1, port: {port}}}")
        config_dir.write("rules.yaml", RULE.format(query="RCMP"))
        result = run_cli("--config", str(config_dir.path), "run", timeout=60)
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "cannot start" in x]
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line
    assert "server.port" in line
    assert feed_server.hits("/news.xml") == 0


def _two_feeds(cfg: ConfigDir, first: str, second: str, extra: str = "") -> None:
    """Two feeds polled every hour (so later ticks find nothing due), console alerts."""
    cfg.write(
        "settings.yaml",
        textwrap.dedent(f"""
            store: sqlite:{cfg.store}
            server: {{host: 127.0.0.1, port: 0{extra}}}
            schedule: {{interval: 1h, jitter: 0s}}
            http: {{timeout: 5s}}
            feeds:
              - {{id: first, url: '{first}'}}
              - {{id: second, url: '{second}'}}
            destinations:
              desk: {{type: console}}
        """).lstrip(),
    )
    cfg.write("rules.yaml", RULE.format(query="RCMP"))


def test_healthz_reports_degraded_and_feeds_warns_when_every_feed_fails(
    config_dir: ConfigDir, feed_server: FeedServer, start
) -> None:
    """A daemon whose feeds all fail still works (200), but says no feed has been read."""
    with socket.socket() as unlistened:  # bound, never listening: connections are refused
        unlistened.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{unlistened.getsockname()[1]}/feed.xml"
        broken = feed_server.serve("/broken.xml", "oops", status=500)
        _two_feeds(config_dir, broken, refused, extra=", degraded_after: 1s")
        daemon = start(config_dir)
        daemon.wait_event("feed_failed", feed="first")
        daemon.wait_event("feed_failed", feed="second")

        def degraded() -> dict[str, Any] | None:
            status, _, body = daemon.get("/healthz")
            health = json.loads(body)
            assert status == 200, health
            return health if health["status"] == "degraded" else None

        health = daemon.wait_for("/healthz to say degraded", degraded)
        assert health["reason"].startswith("no feed has been read for ")
        assert health["last_read"] is not None and health["store_ok"] is True

        result = run_cli("--config", str(config_dir.path), "feeds")
        assert result.code == 0, result.stderr
        assert "warning: no feed has been read for " in result.stderr
        assert "check that the daemon runs and can reach the network" in result.stderr
        assert daemon.stop()[0] == 0


def test_feeds_does_not_warn_while_a_feed_is_read(
    config_dir: ConfigDir, feed_server: FeedServer, start
) -> None:
    _two_feeds(
        config_dir,
        feed_server.serve("/news.xml", rss([OLD])),
        feed_server.serve("/broken.xml", "oops", status=500),
    )
    daemon = start(config_dir)
    daemon.wait_event("cycle_done")
    health = json.loads(daemon.get("/healthz")[2])
    assert (health["status"], health["last_read"] is not None) == ("ok", True)
    result = run_cli("--config", str(config_dir.path), "feeds")
    assert result.code == 0 and "warning" not in result.stderr, result.stderr
    assert daemon.stop()[0] == 0


def test_one_summary_line_per_cycle_that_polled_and_none_for_idle_ticks(
    config_dir: ConfigDir, feed_server: FeedServer, start
) -> None:
    _two_feeds(
        config_dir,
        feed_server.serve("/news.xml", rss([OLD, MOSUL])),
        feed_server.serve("/broken.xml", "oops", status=500),
    )
    daemon = start(config_dir)
    cycle = daemon.wait_event("cycle_done")
    assert (cycle["polled"], cycle["failed"], cycle["alerts"], cycle["first_read"]) == (2, 1, 0, 1)
    wait = datetime.fromisoformat(cycle["next_poll"]) - datetime.fromisoformat(cycle["time"])
    assert timedelta(minutes=59) < wait <= timedelta(hours=1)  # both feeds wait an interval
    assert (cycle["level"], cycle["message"]) == (
        "info",
        f"cycle: 2 feeds polled, 1 failed, {cycle['new_items']} new items, 0 alerts queued;"
        " next poll in 59 min; 1 feed read for the first time: what it serves is marked seen,"
        " not alerted (a feed's `backfill:` alerts its recent items)",
    )

    # Later ticks find nothing due: a rule edit shows one ran, /healthz that it finished.
    config_dir.write("rules.yaml", RULE.format(query="hockey"))
    reloaded = datetime.fromisoformat(daemon.wait_event("rules_reloaded")["time"])

    def polled_since_reload() -> bool:
        last_poll = json.loads(daemon.get("/healthz")[2])["last_poll"]
        return last_poll is not None and datetime.fromisoformat(last_poll) > reloaded

    daemon.wait_for("a poll tick after the rule edit to finish", polled_since_reload)
    assert [e for e in daemon.events() if e.get("event") == "cycle_done"] == [cycle]
    assert daemon.stop()[0] == 0
