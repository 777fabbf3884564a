"""`newswatch once` end to end: real feed server, real Slack emulator, real SQLite, the CLI."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ConfigDir, run_cli
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import Fault, SlackEmulator

NOW = datetime.now(UTC)

OLD = Entry(
    "Budget tabled in Ottawa",
    "Nothing to see.",
    "https://news.example/old",
    published=NOW - timedelta(days=3),
)
MOSUL = Entry(
    "Canada to send officers to Iraq to help establish a police presence in liberated Mosul",
    "Canada will send up to 20 police officers to Iraq. The RCMP will lead the deployment.",
    "https://news.example/mosul?utm_source=rss",
    published=NOW - timedelta(hours=1),
)
SUSPENDED = Entry(
    "Canadian police training mission in Iraq suspended amid turmoil",
    "The RCMP has temporarily called off its police training mission in Iraq.",
    "https://news.example/suspended",
    published=NOW - timedelta(minutes=5),
)
UNRELATED = Entry(
    "Hockey night",
    "The Leafs won again.",
    "https://news.example/hockey",
    published=NOW - timedelta(minutes=1),
)


def configure(cfg: ConfigDir, feeds: dict[str, str], slack: SlackEmulator) -> None:
    feed_list = ", ".join(f"{{id: {fid}, url: '{url}'}}" for fid, url in feeds.items())
    cfg.write(
        "settings.yaml",
        f"""
        store: sqlite:{cfg.store}
        http: {{timeout: 5s}}
        feeds: [{feed_list}]
        destinations:
          desk:
            type: slack
            channel: "#iraq"
            token: ${{SLACK_TEST_TOKEN}}
            base_url: {slack.base_url}
    """,
    )
    cfg.write(
        "rules.yaml",
        """
        rules:
          - id: canada-police-iraq
            title: Canadian police mission in Iraq
            query: '(RCMP OR "Canadian police") AND (Iraq OR Mosul)'
            notify: [desk]
    """,
    )


@pytest.fixture
def setup(config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator):
    url = feed_server.serve("/news.xml", rss([OLD]))
    configure(config_dir, {"news": url}, slack)
    return config_dir, feed_server, slack


def test_first_run_baselines_then_new_items_alert_once(setup) -> None:
    cfg, server, slack = setup
    first = run_cli("--config", str(cfg.path), "once")
    assert first.code == 0, first.stderr
    assert slack.messages == []

    server.serve("/news.xml", rss([MOSUL, UNRELATED, OLD]))
    second = run_cli("--config", str(cfg.path), "once")
    assert second.code == 0, second.stderr
    assert len(slack.messages) == 1
    posted = slack.messages[0]
    assert posted.channel == "#iraq"
    assert "liberated Mosul" in posted.text
    assert posted.payload.get("unfurl_links") is False
    assert "Canadian police mission in Iraq" in str(posted.blocks)

    third = run_cli("--config", str(cfg.path), "once")
    assert third.code == 0, third.stderr
    assert len(slack.messages) == 1


def test_unchanged_feed_is_fetched_conditionally(setup) -> None:
    cfg, server, _ = setup
    assert run_cli("--config", str(cfg.path), "once").code == 0
    assert run_cli("--config", str(cfg.path), "once").code == 0
    second_request = [h for _, p, h in server.requests if p == "/news.xml"][1]
    assert second_request.get("If-None-Match") == server.routes["/news.xml"].etag


def test_dry_run_prints_alerts_and_changes_nothing(setup) -> None:
    cfg, server, slack = setup
    assert run_cli("--config", str(cfg.path), "once").code == 0
    server.serve("/news.xml", rss([SUSPENDED, OLD]))
    before = _dump(cfg)

    dry = run_cli("--config", str(cfg.path), "once", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "suspended amid turmoil" in dry.stdout
    assert slack.messages == []
    assert _dump(cfg) == before

    real = run_cli("--config", str(cfg.path), "once")
    assert real.code == 0, real.stderr
    assert len(slack.messages) == 1


def test_dry_run_on_a_fresh_machine_creates_no_store(setup) -> None:
    cfg, _, slack = setup
    dry = run_cli("--config", str(cfg.path), "once", "--dry-run", "--backfill", "1d")
    assert dry.code == 0, dry.stderr
    assert not cfg.store.exists()
    assert slack.messages == []


def test_a_first_run_says_why_it_alerts_on_nothing_and_when_backfill_is_moot(setup) -> None:
    cfg, server, slack = setup
    server.serve("/news.xml", rss([MOSUL]))
    first = run_cli("--config", str(cfg.path), "once")
    assert first.code == 0, first.stderr
    assert slack.messages == []
    assert "1 feed(s) fetched for the first time: their items are marked seen" in first.stderr
    again = run_cli("--config", str(cfg.path), "once", "--backfill", "24h")
    assert "--backfill had no effect: every feed had been fetched before" in again.stderr
    assert "fetched for the first time" not in again.stderr


def test_backfill_alerts_recent_items_on_first_fetch(setup) -> None:
    cfg, server, slack = setup
    stale = Entry(
        "RCMP officers return from Iraq",
        "RCMP officers came home from Iraq.",
        "https://news.example/stale",
        published=NOW - timedelta(days=5),
    )
    server.serve("/news.xml", rss([MOSUL, stale]))
    result = run_cli("--config", str(cfg.path), "once", "--backfill", "24h")
    assert result.code == 0, result.stderr
    assert [m.text.count("liberated Mosul") > 0 for m in slack.messages] == [True]


def test_a_failing_feed_does_not_stop_the_others(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    good = feed_server.serve("/good.xml", rss([OLD]))
    bad = feed_server.serve("/bad.xml", "", status=500)
    configure(config_dir, {"bad": bad, "good": good}, slack)
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    feed_server.serve("/good.xml", rss([MOSUL, OLD]))

    result = run_cli("--config", str(config_dir.path), "once")
    assert result.code == 0, result.stderr
    assert len(slack.messages) == 1
    assert "bad: http_5xx" in result.stderr

    table = run_cli("--config", str(config_dir.path), "feeds")
    assert table.code == 0, table.stderr
    bad_row = next(line for line in table.stdout.splitlines() if line.startswith("bad "))
    assert "failing" in bad_row and "http_5xx" in bad_row


def test_slack_outage_keeps_the_alert_and_the_next_run_delivers_it(setup) -> None:
    cfg, server, slack = setup
    assert run_cli("--config", str(cfg.path), "once").code == 0
    server.serve("/news.xml", rss([MOSUL, OLD]))
    slack.fail_next(Fault("ratelimited", retry_after=60))

    down = run_cli("--config", str(cfg.path), "once")
    assert down.code == 1, down.stderr
    assert "1 undelivered" in down.stderr
    assert slack.messages == []

    # A run within Slack's 60 s pause keeps the alert and asks nothing of Slack: it
    # neither posts nor sleeps the pause out.
    paused = run_cli("--config", str(cfg.path), "once")
    assert paused.code == 1 and "paused for" in paused.stderr, paused.stderr
    assert len(slack.requests) == 1

    with sqlite3.connect(cfg.store) as db:  # the pause is over
        db.execute("DELETE FROM rate_slots")
    up = run_cli("--config", str(cfg.path), "once")
    assert up.code == 0, up.stderr
    assert len(slack.messages) == 1


def test_short_retry_after_is_honoured_within_the_run(setup) -> None:
    cfg, server, slack = setup
    assert run_cli("--config", str(cfg.path), "once").code == 0
    server.serve("/news.xml", rss([MOSUL, OLD]))
    slack.fail_next(Fault("ratelimited", retry_after=1))

    result = run_cli("--config", str(cfg.path), "once")
    assert result.code == 0, result.stderr
    assert len(slack.messages) == 1
    attempts = [path for path, _ in slack.requests if path.endswith("chat.postMessage")]
    assert len(attempts) == 2  # 429, then accepted after the first backoff (2.5-5 s)
    # Chains of retries and the window's end: tests/integration/pipeline/test_once.py.


def test_permanent_slack_error_is_not_retried(setup) -> None:
    cfg, server, slack = setup
    assert run_cli("--config", str(cfg.path), "once").code == 0
    server.serve("/news.xml", rss([MOSUL, OLD]))
    slack.fail_next(Fault("error", code="channel_not_found"))
    result = run_cli("--config", str(cfg.path), "once")
    assert "channel_not_found" in result.stderr
    assert run_cli("--config", str(cfg.path), "once").code == 0
    assert slack.messages == []
    table = run_cli("--config", str(cfg.path), "feeds")
    assert "1 dead" in table.stdout


def _dump(cfg: ConfigDir) -> list[str]:
    conn = sqlite3.connect(cfg.store)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_many_alerts_are_delivered_in_batches_within_one_run(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/news.xml", rss([OLD]))
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        feeds: [{{id: news, url: '{url}'}}]
        delivery: {{max_alerts_per_poll: 200}}
    """,
    )
    config_dir.write("rules.yaml", "rules: [{id: r, title: RCMP watch, query: RCMP}]\n")
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    many = [
        Entry(f"RCMP update number {n}", "RCMP news.", f"https://news.example/{n}")
        for n in range(120)
    ]
    feed_server.serve("/news.xml", rss([*many, OLD]))
    result = run_cli("--config", str(config_dir.path), "once")
    assert result.code == 0, result.stderr
    assert "120 sent, 0 undelivered" in result.stderr
    assert sorted(
        int(line.rsplit(" ", 1)[1])
        for line in result.stdout.splitlines()
        if line.startswith("RCMP update number")
    ) == list(range(120))


def _pending(cfg: ConfigDir) -> int:
    with sqlite3.connect(cfg.store) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
    return int(count)


def test_slack_down_costs_two_tries_per_alert_summed_up_in_one_line(setup) -> None:
    cfg, server, slack = setup
    assert run_cli("--config", str(cfg.path), "once").code == 0
    server.serve("/news.xml", rss([MOSUL, SUSPENDED, OLD]))
    slack.fail_next(*[Fault("server_error")] * 20)  # down for the whole run

    down = run_cli("--config", str(cfg.path), "once")
    assert down.code == 1, down.stderr
    posts = [path for path, _ in slack.requests if path.endswith("chat.postMessage")]
    assert len(posts) == 4  # each of the two alerts tried twice, then left for the next run
    assert "2 alerts, 0 sent, 2 undelivered" in down.stderr
    summary = [line for line in down.stderr.splitlines() if line.startswith("  desk:")]
    assert summary == [
        "  desk: 2 not delivered after 2 attempt(s), kept for the next run:"
        " http_503: Slack server error"
    ]
    assert "retrying at" not in down.stderr  # no warning per try
    assert _pending(cfg) == 2

    slack.faults.clear()  # Slack is back: nothing was lost
    up = run_cli("--config", str(cfg.path), "once")
    assert up.code == 0, up.stderr
    assert len(slack.messages) == 2 and _pending(cfg) == 0


def test_the_closing_line_says_when_alerts_held_for_a_digest_go_out(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    url = feed_server.serve("/news.xml", rss([OLD]))
    configure(config_dir, {"news": url}, slack)
    settings = (config_dir.path / "settings.yaml").read_text()
    digest = settings.replace("base_url:", 'digest: {cron: "0 9 * * *"}\n    base_url:')
    (config_dir.path / "settings.yaml").write_text(digest)
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    feed_server.serve("/news.xml", rss([MOSUL, SUSPENDED, OLD]))

    before = datetime.now(UTC)
    held = run_cli("--config", str(config_dir.path), "once")
    after = datetime.now(UTC)
    assert held.code == 0, held.stderr  # waiting for a digest is not "undelivered"
    assert slack.requests == []
    closes = {
        (day + timedelta(days=1) if day.hour >= 9 else day).replace(hour=9, minute=0)
        for day in (before, after)
    }
    lines = [
        "2 alerts, 0 sent, 0 undelivered, 2 held for the "
        + ("" if c.date() == before.date() else f"{c:%Y-%m-%d} ")
        + "09:00 UTC digest"
        for c in closes
    ]
    assert any(line in held.stderr for line in lines), held.stderr
    assert _pending(config_dir) == 2


def test_when_every_feed_fails_once_points_at_the_network_not_the_feeds(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    """A newcomer behind a proxy sees every feed fail: one line says where to look first.
    Nothing was pruned, so no prune line either."""
    broken = feed_server.serve("/a.xml", "oops", status=503)
    configure(config_dir, {"a": broken, "b": broken.replace("/a.xml", "/b.xml")}, slack)
    result = run_cli("--config", str(config_dir.path), "once")
    assert result.code == 0, result.stderr
    assert "2 feeds polled, 2 failed, 0 new items, 0 alerts" in result.stderr
    assert "every feed failed: check this machine's network, DNS and proxy" in result.stderr
    assert "pruned" not in result.stderr

    feed_server.serve("/b.xml", rss([OLD]))
    result = run_cli("--config", str(config_dir.path), "once")
    assert "2 feeds polled, 1 failed, 1 new item, 0 alerts" in result.stderr
    assert "every feed failed" not in result.stderr
