"""A value substituted from the environment is hidden wherever newswatch writes text.

An API key in a feed URL is not a "secret field", yet it must stay out of logs,
command output and feed-failure notices like a token does.
"""

from __future__ import annotations

from tests.conftest import ConfigDir, Result, run_cli
from tests.peers.feed_server import FeedServer

KEY = "k3y-0a1b2c3d4e5f"


def configure(cfg: ConfigDir, feed_server: FeedServer) -> None:
    cfg.write(
        "settings.yaml",
        f"""
        store: sqlite:{cfg.store}
        feeds:
          - id: news
            url: {feed_server.url}/feed?key=${{FEED_KEY}}
        destinations:
          console: {{type: console}}
        on_feed_failure: {{after: 0s, notify: [console]}}
        """,
    )
    cfg.write("rules.yaml", "rules: [{id: r, title: W, query: police}]\n")


def run(cfg: ConfigDir, *args: str) -> Result:
    return run_cli("--config", str(cfg.path), "-v", *args, env={"FEED_KEY": KEY})


def test_a_key_in_a_feed_url_never_shows(config_dir: ConfigDir, feed_server: FeedServer) -> None:
    path = f"/feed?key={KEY}"
    feed_server.redirect(path, path)  # a loop: the failure quotes the URL
    configure(config_dir, feed_server)

    dry = run(config_dir, "--log-format", "json", "once", "--dry-run")
    once = run(config_dir, "once")
    feeds = run(config_dir, "feeds")

    assert feed_server.hits(path) == 2  # the key was used, twice
    assert "news: redirect_loop" in once.stderr
    assert "Feed news is failing" in once.stdout  # the notice, printed by the console
    assert f"{feed_server.url}/feed?key=***" in once.stdout
    assert "news" in feeds.stdout
    for result in (dry, once, feeds):
        assert KEY not in result.stdout + result.stderr
