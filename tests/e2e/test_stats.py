"""`newswatch stats` end to end: `once` over a real feed server into a real SQLite store,
then the per-rule and per-feed counts, their sparklines and the rules that never matched."""

from __future__ import annotations

import re
import sqlite3
from datetime import date

from tests.conftest import ConfigDir, run_cli
from tests.e2e.test_once import MOSUL, OLD, SUSPENDED, UNRELATED
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss

OLD_WIRE = Entry("Markets close flat", "Nothing moved.", "https://wire.example/markets")


def configure(cfg: ConfigDir, feeds: dict[str, str]) -> None:
    feed_list = ", ".join(f"{{id: {fid}, url: '{url}'}}" for fid, url in feeds.items())
    cfg.write(
        "settings.yaml",
        f"""
        store: sqlite:{cfg.store}
        http: {{timeout: 5s}}
        feeds: [{feed_list}]
        destinations:
          console: {{type: console}}
    """,
    )
    cfg.write(
        "rules.yaml",
        """
        rules:
          - id: canada-police-iraq
            title: Canadian police mission in Iraq
            query: '(RCMP OR "Canadian police") AND (Iraq OR Mosul)'
          - id: hockey
            title: Hockey
            query: Leafs
          - id: zanzibar
            title: Zanzibar
            query: Zanzibar
    """,
    )


def stats(cfg: ConfigDir, *args: str) -> list[str]:
    result = run_cli("--config", str(cfg.path), "stats", *args)
    assert result.code == 0, result.stderr
    return result.stdout.splitlines()


def last_day(header: str, days: int) -> date:
    """The window's last day, as the report's first line gives it."""
    found = re.fullmatch(rf"Rules, (\S+) – (\S+) UTC \({days}-day window\)", header)
    assert found, header
    return date.fromisoformat(found[2])


def spark(days: int, today: date, counted: date) -> str:
    """The sparkline of a window of ``days`` ending ``today`` with one busy day, ``counted``
    (the run may straddle midnight UTC: the store says which day it counted on)."""
    after = (today - counted).days
    return "▁" * (days - 1 - after) + "█" + "▁" * after


def test_stats_counts_each_rules_matches_and_alerts_and_each_feeds_new_items(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    news = feed_server.serve("/news.xml", rss([OLD]))
    wire = feed_server.serve("/wire.xml", rss([OLD_WIRE]))
    configure(config_dir, {"news": news, "wire": wire})
    assert run_cli("--config", str(config_dir.path), "once").code == 0  # the baseline

    # Mosul in both feeds: two matches, one alert (the story is alerted once per rule).
    feed_server.serve("/news.xml", rss([MOSUL, UNRELATED, OLD]))
    feed_server.serve("/wire.xml", rss([SUSPENDED, MOSUL, OLD_WIRE]))
    second = run_cli("--config", str(config_dir.path), "once")
    assert second.code == 0, second.stderr
    assert "4 new items, 4 alerts" in second.stderr  # the poll's candidates, before dedupe

    lines = stats(config_dir)
    with sqlite3.connect(config_dir.store) as db:
        (counted,) = {date.fromisoformat(d) for (d,) in db.execute("SELECT day FROM rule_days")}
    today = last_day(lines[0], 30)
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows == {
        "canada-police-iraq": [
            "canada-police-iraq",
            "3",
            "2",
            spark(30, today, counted),
            str(counted),
        ],
        "hockey": ["hockey", "1", "1", spark(30, today, counted), str(counted)],
    }
    assert lines[2].startswith("canada-police-iraq")  # the busiest first
    assert lines[4:7] == [
        "",
        "No match in the 30-day window — check their query:",
        "  zanzibar (never matched)",
    ]
    feeds = lines[lines.index("Feeds, new items per day (a feed's first read not counted)") + 1 :]
    assert [line.split() for line in feeds] == [
        ["FEED", "ITEMS", "PER", "DAY"],
        ["news", "2", spark(30, today, counted)],
        ["wire", "2", spark(30, today, counted)],
    ]

    week = stats(config_dir, "--days", "7")
    assert week[2].split()[3] == spark(7, last_day(week[0], 7), counted)


def test_stats_before_any_poll_lists_every_rule_as_never_matched(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    configure(config_dir, {"news": feed_server.serve("/news.xml", rss([OLD]))})
    lines = stats(config_dir)
    assert lines[1] == "  no rule matched"
    assert [line.strip() for line in lines[3:7]] == [
        "No match in the 30-day window — check their query:",
        "canada-police-iraq (never matched)",
        "hockey (never matched)",
        "zanzibar (never matched)",
    ]
    assert not config_dir.store.exists()  # read-only: nothing created


def test_stats_shows_the_attention_budget_settings_of_rules_and_destinations(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    news = feed_server.serve("/news.xml", rss([OLD]))
    configure(config_dir, {"news": news})
    assert "Attention budget settings" not in stats(config_dir)  # none set: as before
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        feeds: [{{id: news, url: '{news}'}}]
        destinations:
          console:
            type: console
            quiet: {{from: "23:00", to: "06:30", timezone: Europe/Paris, days: [sat, sun]}}
            cap: {{per: 30m, max: 5}}
          log: {{type: console}}
        """,
    )
    config_dir.write(
        "rules.yaml",
        """
        rules:
          - id: canada-police-iraq
            title: Canadian police mission in Iraq
            query: '(RCMP OR "Canadian police") AND (Iraq OR Mosul)'
            priority: urgent
            spike: {window: 12h, factor: 2.5, min: 3}
          - id: hockey
            title: Hockey
            query: Leafs
            cap: {per: 1d, max: 2}
          - id: zanzibar
            title: Zanzibar
            query: Zanzibar
        """,
    )
    assert run_cli("--config", str(config_dir.path), "once").code == 0  # the baseline
    feed_server.serve("/news.xml", rss([MOSUL, UNRELATED, OLD]))
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    lines = stats(config_dir)
    assert lines[1].split()[:6] == ["RULE", "MATCHES", "ALERTS", "URGENT", "HELD", "CAPPED"]
    assert lines[2].split()[:6] == ["canada-police-iraq", "1", "2", "2", "0", "0"]  # two consoles
    start = lines.index("Attention budget settings")
    assert lines[start + 1 : start + 5] == [
        "  rule         canada-police-iraq  urgent; spike over 2.5× usual in 12h, at least 3",
        "  rule         hockey              cap 2 per 1d",
        "  destination  console             quiet 23:00–06:30 Europe/Paris, sat sun; cap 5 per 30m",
        "",
    ]
    assert lines[start + 5] == "Feeds, new items per day (a feed's first read not counted)"
