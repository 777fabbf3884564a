"""The attention budget end to end, on a clock the test holds: what ``newswatch once`` runs
(config files read as a user writes them, feeds over real HTTP, the Slack emulator through
slack-sdk, a SQLite file or PostgreSQL), at chosen instants across time zones and the night
Toronto's clocks spring forward. Every run opens the store and the notifiers afresh, as a
restarted process does, so alerts held across runs are held in the store alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config.load import load_config
from bot.service.app import OnceResult, close_all, open_notifiers, open_synced_store, run_once
from tests.conftest import ConfigDir, run_cli
from tests.factories import distinct
from tests.peers.feed_server import FeedServer
from tests.peers.postgres import postgres_dsn, temporary_database
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import TOKEN, Posted, SlackEmulator

DSN, NO_POSTGRES = postgres_dsn()
ON_POSTGRES = pytest.mark.skipif(DSN is None, reason=NO_POSTGRES)

# Saturday 7 March 2026, 15:00 in Toronto (EST, UTC-5), 23:00 in Baghdad (UTC+3).
SATURDAY = datetime(2026, 3, 7, 20, 0, tzinfo=UTC)
# 23:00 EST in Toronto: its quiet hours (22:00-07:00) have begun; 07:00 in Baghdad, whose
# quiet hours (00:00-06:00) are over.
NIGHT = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
# Toronto springs forward at 02:00 on 8 March: 07:00 local is 11:00 UTC that morning, not 12:00.
MORNING = datetime(2026, 3, 8, 11, 0, tzinfo=UTC)
OLD = Entry("Budget tabled in Ottawa", "Nothing to see.", "https://news.example/old")


def story(n: int, words: str, at: datetime) -> Entry:
    """A story of its own (clustering tells it from the others) that rules match by ``words``."""
    return Entry(
        f"{words} {distinct(n)}",
        f"Report {distinct(n)} on {words}.",
        f"https://news.example/{n}",
        published=at - timedelta(minutes=5),
    )


class Desk:
    """A config directory, its feed and its Slack workspace; ``once(at)`` runs newswatch once
    with the clock at ``at`` (``replicas`` at the same time, sharing the store)."""

    def __init__(self, cfg: ConfigDir, server: FeedServer, slack: SlackEmulator, store: str):
        self.cfg, self.server, self.slack = cfg, server, slack
        self.url = server.serve("/news.xml", rss([OLD]))
        self.store = store

    def configure(self, destinations: str, rules: str) -> None:
        """Settings with ``destinations`` (YAML lines; ``SLACK`` stands for the emulator's
        type, token and address) and the rules file ``rules``."""
        slack = f"type: slack, token: '${{SLACK_TEST_TOKEN}}', base_url: '{self.slack.base_url}',"
        self.cfg.write(
            "settings.yaml",
            f"store: {self.store}\n"
            f"feeds: [{{id: news, url: '{self.url}', title: Wire}}]\n"
            "destinations:\n" + destinations.replace("SLACK", slack),
        )
        self.cfg.write("rules.yaml", rules)

    def serve(self, *entries: Entry) -> None:
        self.server.serve("/news.xml", rss([OLD, *entries]))

    def once(self, at: datetime, replicas: int = 1) -> list[OnceResult]:
        with ThreadPoolExecutor(replicas) as pool:
            return list(pool.map(lambda _: self._once(at), range(replicas)))

    def _once(self, at: datetime) -> OnceResult:
        config = load_config(self.cfg.path, {"SLACK_TEST_TOKEN": TOKEN})
        store = open_synced_store(config)
        notifiers = open_notifiers(config, store)
        try:
            return asyncio.run(
                run_once(config, store, notifiers, backfill=None, dry_run=False, clock=lambda: at)
            )
        finally:
            close_all(store, notifiers)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=ON_POSTGRES)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'state.db'}"
        return
    assert DSN is not None
    with temporary_database(DSN) as url:
        yield url


@pytest.fixture
def desk(config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator, store: str) -> Desk:
    return Desk(config_dir, feed_server, slack, store)


QUIET_DESKS = """
  toronto: {SLACK channel: '#toronto', mention: '@here',
            quiet: {from: '22:00', to: '07:00', timezone: America/Toronto}}
  baghdad: {SLACK channel: '#baghdad',
            quiet: {from: '00:00', to: '06:00', timezone: Asia/Baghdad}}
"""
PRIORITY_RULES = """
rules:
  - id: suspended
    title: Mission suspended
    query: suspended
    priority: urgent
  - id: mosul
    title: Mosul
    query: Mosul
"""


def titles(messages: list[Posted]) -> str:
    return "\n".join(m.text + str(m.blocks) for m in messages)


def _quiet_night(desk: Desk, replicas: int) -> None:
    desk.configure(QUIET_DESKS, PRIORITY_RULES)
    slack = desk.slack
    assert desk.once(SATURDAY, replicas)  # the first read: the feed's backlog alerts nothing
    urgent = story(1, "Police mission suspended", NIGHT)
    first, second = story(2, "Mosul", NIGHT), story(3, "Mosul", NIGHT)
    desk.serve(urgent, first, second)
    desk.once(NIGHT, replicas)

    (alarm,) = slack.top_level("#toronto")  # the urgent one, at once, in quiet hours
    assert urgent.title in alarm.text and "<!here>" in alarm.text
    # Baghdad's morning: no quiet hours there, every alert at once, and no mention configured.
    assert len(slack.top_level("#baghdad")) == 3
    assert "<!here>" not in titles(slack.top_level("#baghdad"))

    # A later story in quiet hours, read by a new process: held with the others.
    late = story(4, "Mosul", MORNING - timedelta(hours=2))
    desk.serve(urgent, first, second, late)
    desk.once(MORNING - timedelta(minutes=1), replicas)  # 06:59 EDT: still quiet
    assert len(slack.top_level("#toronto")) == 1

    desk.once(MORNING, replicas)  # 07:00 EDT, an hour earlier in UTC than the day before
    alarm, digest = slack.top_level("#toronto")
    for held in (first, second, late):
        assert held.title in titles([digest])
    assert urgent.title not in titles([digest])
    assert len(slack.top_level("#baghdad")) == 4
    desk.once(MORNING + timedelta(hours=1), replicas)
    assert len(slack.top_level("#toronto")) == 2  # sent once, never again


def test_quiet_hours_hold_normal_alerts_until_they_end_and_urgent_ones_go_at_once(
    desk: Desk,
) -> None:
    _quiet_night(desk, replicas=1)


@ON_POSTGRES
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_three_replicas_deliver_the_night_exactly_once(desk: Desk) -> None:
    _quiet_night(desk, replicas=3)


def test_a_story_held_alone_goes_as_its_own_alert_and_later_tellings_reply_in_its_thread(
    desk: Desk,
) -> None:
    desk.configure(QUIET_DESKS, PRIORITY_RULES)
    desk.once(SATURDAY)
    held = story(5, "Mosul", NIGHT)
    desk.serve(held)
    desk.once(NIGHT)
    assert desk.slack.top_level("#toronto") == []
    desk.once(MORNING)
    (alert,) = desk.slack.top_level("#toronto")
    assert held.title in alert.text
    retold = Entry(held.title + " again", held.summary, "https://news.example/5-again")
    desk.serve(held, retold)
    desk.once(MORNING + timedelta(minutes=30))
    assert len(desk.slack.top_level("#toronto")) == 1
    (reply,) = desk.slack.replies(alert.ts)
    assert "https://news.example/5-again" in titles([reply])


CAPPED = """
  desk: {SLACK channel: '#desk', cap: {per: 1h, max: 2}}
"""
MOSUL_RULE = """
rules:
  - id: mosul
    title: Mosul
    query: Mosul
"""
AFTERNOON = datetime(2026, 3, 9, 14, 10, tzinfo=UTC)


def _burst(desk: Desk, replicas: int) -> None:
    desk.configure(CAPPED, MOSUL_RULE)
    desk.once(AFTERNOON - timedelta(hours=1), replicas)
    burst = [story(10 + n, "Mosul", AFTERNOON) for n in range(5)]
    desk.serve(*burst)
    desk.once(AFTERNOON, replicas)
    assert len(desk.slack.top_level("#desk")) == 2
    desk.once(AFTERNOON + timedelta(minutes=49), replicas)  # 14:59: the hour is not over
    assert len(desk.slack.top_level("#desk")) == 2

    desk.once(AFTERNOON + timedelta(minutes=50), replicas)  # 15:00
    one, two, more = desk.slack.top_level("#desk")
    listed = [e for e in burst if e.title in titles([more])]
    assert len(listed) == 3 and "3 more" in titles([more])
    for entry in listed:
        assert entry.link is not None and entry.link in titles([more])
    assert {e.title for e in burst} == {
        e.title for e in burst if e.title in titles([one, two, more])
    }


def test_a_burst_past_the_cap_becomes_one_message_listing_the_rest(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="newswatch")
    _burst(desk, replicas=1)
    (held,) = [r for r in caplog.records if getattr(r, "event", None) == "alerts_held"]
    assert (held.destination, held.reason, held.count) == ("desk", "cap", 3)  # type: ignore[attr-defined]


@ON_POSTGRES
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_three_replicas_hold_one_cap(desk: Desk) -> None:
    _burst(desk, replicas=3)


SPIKY = """
rules:
  - id: mosul
    title: Mosul
    query: Mosul
    spike: {window: 1h, factor: 3, min: 3}
"""


def _spike(desk: Desk, replicas: int) -> None:
    desk.configure("  desk: {SLACK channel: '#desk'}\n", SPIKY)
    desk.once(AFTERNOON - timedelta(days=1, hours=1), replicas)
    # A story a day before: the rule's stories are counted from then on, a day of quiet hours.
    served = [story(29, "Mosul", AFTERNOON - timedelta(days=1))]
    desk.serve(*served)
    desk.once(AFTERNOON - timedelta(days=1), replicas)
    for minute, count in ((0, 2), (15, 2), (30, 2)):
        at = AFTERNOON + timedelta(minutes=minute)
        served += [story(30 + len(served) + n, "Mosul", at) for n in range(count)]
        desk.serve(*served)
        desk.once(at, replicas)
    spikes = [m for m in desk.slack.top_level("#desk") if "Spike" in titles([m])]
    (spike,) = spikes  # at the second poll (4 stories, at least 3), not again in the hour
    assert "4 stories" in titles([spike])
    assert len(desk.slack.top_level("#desk")) == 1 + 6 + 1


def test_a_spike_fires_once_per_window(desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="newswatch")
    _spike(desk, replicas=1)
    (spike,) = [r for r in caplog.records if getattr(r, "event", None) == "spike"]
    assert spike.getMessage() == "rule mosul: spike, 4 stories in 1h (usually 0)"


@ON_POSTGRES
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_three_replicas_send_one_spike(desk: Desk) -> None:
    _spike(desk, replicas=3)


def test_once_says_until_when_quiet_hours_hold_alerts(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    now = datetime.now(UTC)
    begin, end = now - timedelta(hours=2), now + timedelta(hours=2)
    url = feed_server.serve("/news.xml", rss([OLD]))
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        feeds: [{{id: news, url: '{url}'}}]
        destinations:
          desk: {{type: console, quiet: {{from: '{begin:%H:%M}', to: '{end:%H:%M}'}}}}
        """,
    )
    config_dir.write("rules.yaml", MOSUL_RULE)
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    feed_server.serve("/news.xml", rss([OLD, story(1, "Mosul", now)]))
    held = run_cli("--config", str(config_dir.path), "once")
    assert held.code == 0, held.stderr  # held is not undelivered
    assert "Mosul" not in held.stdout
    assert "1 held until " in held.stderr and f"{end:%H:%M} UTC" in held.stderr
