"""Servers that ask for absurd waits: `once` ends normally, every next poll is at most
`http.max_delay` away, and `newswatch feeds` says which server asked for what."""

from __future__ import annotations

import sqlite3

from tests.conftest import ConfigDir, run_cli
from tests.e2e.test_once import OLD
from tests.peers.feed_server import FeedServer
from tests.peers.rss import rss

MAX_DELAY = 7200.0


def with_ttl(minutes: str) -> str:
    return rss([OLD]).replace("<description>test</description>", f"<ttl>{minutes}</ttl>", 1)


def test_absurd_server_delays_are_capped_and_shown(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    s = feed_server
    feeds = {
        "cdn": s.serve("/cdn.xml", rss([OLD]), headers={"Cache-Control": "max-age=31536000"}),
        "eon": s.serve("/eon.xml", rss([OLD]), headers={"Cache-Control": "max-age=99999999999999"}),
        "ttl": s.serve("/ttl.xml", with_ttl("9" * 30)),
        "dated": s.serve(
            "/dated.xml", "", status=503, headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}
        ),
        "huge": s.serve("/huge.xml", "", status=429, headers={"Retry-After": "1000000000000"}),
        "junk": s.serve("/junk.xml", "", status=429, headers={"Retry-After": "²"}),
        "plain": s.serve("/plain.xml", rss([OLD])),
    }
    listed = ", ".join(f"{{id: {fid}, url: '{url}'}}" for fid, url in feeds.items())
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        schedule: {{interval: 10m, jitter: 0s}}
        http: {{timeout: 5s, max_delay: 2h}}
        feeds: [{listed}]
        """,
    )
    config_dir.write("rules.yaml", "rules: [{id: r, title: Watch, query: 'RCMP AND Iraq'}]\n")

    result = run_cli("--config", str(config_dir.path), "once", timeout=60)
    assert result.code == 0, result.stderr
    assert "7 feeds polled, 3 failed" in result.stderr
    assert "server asked to wait 31710y (Retry-After), capped at 2h" in result.stderr

    waits = _next_poll_waits(config_dir)
    assert all(wait <= MAX_DELAY for wait in waits.values()), waits
    for capped in ("cdn", "eon", "ttl", "dated", "huge"):
        assert waits[capped] == MAX_DELAY, capped
    assert waits["plain"] == 600.0
    assert 60.0 <= waits["junk"] <= 600.0  # an unreadable Retry-After is ignored

    table = run_cli("--config", str(config_dir.path), "feeds").stdout
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert "server asked to wait 365d (Cache-Control max-age), capped at 2h" in rows["cdn"]
    assert "server asked to wait forever (Cache-Control max-age), capped at 2h" in rows["eon"]
    assert "server asked to wait forever (<ttl>), capped at 2h" in rows["ttl"]
    for capped in ("cdn", "eon", "ttl"):
        assert rows[capped].split()[1] == "warning"
    assert rows["plain"].split()[1] == "ok"


def test_the_note_goes_once_the_server_asks_for_less(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    """A 304 keeps the last fetch's parse warnings but carries this poll's note, or none."""
    url = feed_server.serve("/cdn.xml", rss([OLD]), headers={"Cache-Control": "max-age=31536000"})
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        http: {{timeout: 5s, max_delay: 2h}}
        feeds: [{{id: cdn, url: '{url}'}}]
        """,
    )
    config_dir.write("rules.yaml", "rules: [{id: r, title: Watch, query: 'RCMP AND Iraq'}]\n")
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    assert "capped at 2h" in run_cli("--config", str(config_dir.path), "feeds").stdout

    feed_server.routes["/cdn.xml"].headers = {"Cache-Control": "max-age=60"}
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    assert feed_server.requests[-1][2].get("If-None-Match")  # answered 304
    table = run_cli("--config", str(config_dir.path), "feeds").stdout
    assert "capped" not in table
    assert " ok " in table


def _next_poll_waits(config_dir: ConfigDir) -> dict[str, float]:
    """Seconds from each feed's last attempt to its next poll, as stored."""
    conn = sqlite3.connect(config_dir.store)
    try:
        rows = conn.execute("SELECT feed_id, next_poll_at - last_attempt_at FROM feeds").fetchall()
    finally:
        conn.close()
    return {feed_id: round(wait, 3) for feed_id, wait in rows}
