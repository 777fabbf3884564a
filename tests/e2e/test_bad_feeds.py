"""Broken feeds, all in one cycle beside a good one: each is isolated and reported; the good
feed alerts; the run ends (a stalled or endless feed cannot hold it)."""

from __future__ import annotations

import socket

from tests.conftest import ConfigDir, run_cli
from tests.e2e.test_once import MOSUL, OLD
from tests.peers.feed_server import FeedServer
from tests.peers.rss import rss
from tests.peers.slack_emulator import SlackEmulator


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"


def test_one_cycle_with_every_kind_of_broken_feed(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    s = feed_server
    bad = {
        "error": (s.serve("/500", "oops", status=500), "http_5xx"),
        "gone": (s.serve("/404", "no", status=404), "http_404"),
        "loop": (s.redirect("/loop", "/loop"), "redirect_loop"),
        "endless": (s.endless("/endless"), "too_large"),
        "stalled": (s.stall("/stall", 60), "timeout"),
        "refused": (refused_url(), "refused"),
        "webpage": (
            s.serve("/page", "<html><body>Hi</body></html>", content_type="text/html"),
            "not_a_feed",
        ),
        "garbage": (s.serve("/garbage", b"\x00\x01\x02 not xml {"), "not_a_feed|malformed"),
    }
    good = s.serve("/good.xml", rss([OLD]))
    feeds = ", ".join(f"{{id: {k}, url: '{u}'}}" for k, (u, _) in bad.items())
    # Only the stalled feed may reach the timeout: at 1s, a loaded machine (parallel
    # workers) timed out the redirect loop and the endless body before their own limits.
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        http: {{timeout: 3s, max_bytes: 100KB}}
        feeds: [{feeds}, {{id: good, url: '{good}'}}]
    """,
    )
    config_dir.write("rules.yaml", "rules: [{id: r, title: Watch, query: 'RCMP AND Iraq'}]\n")
    assert run_cli("--config", str(config_dir.path), "once", timeout=60).code == 0
    s.serve("/good.xml", rss([MOSUL, OLD]))

    result = run_cli("--config", str(config_dir.path), "once", timeout=60)
    assert result.code == 0, result.stderr
    assert "liberated Mosul" in result.stdout
    assert "9 feeds polled, 8 failed" in result.stderr
    for feed_id, (_, reasons) in bad.items():
        line = next(x for x in result.stderr.splitlines() if x.strip().startswith(feed_id + ":"))
        assert any(f" {r}" in line for r in reasons.split("|")), line

    table = run_cli("--config", str(config_dir.path), "feeds").stdout
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert "ok" in rows["good"].split()
    assert all("failing" in rows[feed_id] for feed_id in bad)
    assert rows["error"].split()[-1] == "2"  # consecutive failures


def test_feed_failure_and_recovery_are_notified_once_each(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    url = feed_server.serve("/flaky.xml", "down", status=503)
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        feeds: [{{id: flaky, url: '{url}'}}]
        destinations:
          console: {{type: console}}
          ops: {{type: slack, webhook_url: '{slack.webhook_url}'}}
        on_feed_failure: {{after: 0s, notify: [ops]}}
    """,
    )
    config_dir.write("rules.yaml", "rules: [{id: r, title: W, query: x, notify: [console]}]\n")
    for _ in range(2):
        assert run_cli("--config", str(config_dir.path), "once").code == 0
    assert len(slack.messages) == 1
    assert "flaky is failing" in slack.messages[0].text
    assert "HTTP 503" in slack.messages[0].text

    feed_server.serve("/flaky.xml", rss([OLD]))
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    assert [m.text for m in slack.messages][1:] == [slack.messages[1].text]
    assert "flaky has recovered" in slack.messages[1].text
