"""`newswatch stories` end to end: copies of one story in several real feeds, alerted once
to the console; a later copy is a sighting printed under it; `stories` lists them all."""

from __future__ import annotations

from dataclasses import replace

from tests.conftest import ConfigDir, run_cli
from tests.e2e.test_once import MOSUL, OLD, SUSPENDED
from tests.e2e.test_stats import configure
from tests.peers.feed_server import FeedServer
from tests.peers.rss import rss


def test_a_story_told_by_three_feeds_alerts_once_and_stories_lists_every_telling(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    urls = {f: feed_server.serve(f"/{f}.xml", rss([OLD])) for f in ("news", "wire", "late")}
    configure(config_dir, urls)
    cli = ("--config", str(config_dir.path))
    assert run_cli(*cli, "once").code == 0  # the baseline
    wire_copy = replace(MOSUL, link="https://wire.example/canada-police-mosul")
    feed_server.serve("/news.xml", rss([MOSUL, OLD], "News"))
    feed_server.serve("/wire.xml", rss([wire_copy, SUSPENDED, OLD], "Wire"))
    first = run_cli(*cli, "once")
    assert first.code == 0, first.stderr
    assert first.stdout.count(MOSUL.title) == 1  # one alert, "also reported by" the other
    late_copy = replace(MOSUL, link="https://late.example/mosul")
    feed_server.serve("/late.xml", rss([late_copy, OLD], "Late"))
    later = run_cli(*cli, "once")
    assert later.code == 0, later.stderr
    (reply,) = [line for line in later.stdout.splitlines() if MOSUL.title in line]
    assert reply.startswith("↳ Late: ") and "late.example" in reply

    listed = run_cli(*cli, "stories")
    assert listed.code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    heads = [line for line in lines if line.startswith("story ")]
    assert len(heads) == 2  # Mosul, and the suspension
    mosul = lines.index(next(h for h in heads if MOSUL.title[:40] in h))
    assert "3 sightings, 3 outlets" in lines[mosul]
    tellings = lines[mosul + 1 : mosul + 4]
    sources = [t.split()[3] for t in tellings]  # news and wire were polled at once
    assert sorted(sources[:2]) == ["News", "Wire"] and sources[2] == "Late"
    assert all("rules: canada-police-iraq" in t for t in tellings)
    assert lines[mosul + 4] == "  → console: alert sent, not threaded, 1/1 later sightings sent"
