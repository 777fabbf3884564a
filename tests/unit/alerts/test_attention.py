"""The attention budget's pure core: quiet hours in any time zone and across clock changes,
where each priority's alert goes, which caps it counts against, and when coverage is a spike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.alerts.attention import (
    BASELINE_DAYS,
    SPIKE_LISTED,
    Route,
    caps,
    hour_of,
    is_spike,
    next_quiet_end,
    quiet_until,
    route,
    spike_alert,
    spike_facts,
    usual,
    window_counts,
)
from bot.config.schema import (
    WEEKDAYS,
    Cap,
    ConsoleDestination,
    Destination,
    DigestCron,
    DigestEvery,
    Quiet,
    Rule,
    SlackDestination,
    Spike,
)
from bot.model import CapCount, Folded, Priority, QueuedAlert, SpikeFacts
from tests.factories import sample_alert

HOUR = timedelta(hours=1)
ZONES = ("America/Toronto", "Asia/Baghdad", "Europe/Paris", "Australia/Sydney", "UTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone``; ``fold=1`` is the second of a repeated hour."""
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)


def quiet(start: str, end: str, zone: str = "UTC", days: tuple[str, ...] = WEEKDAYS) -> Quiet:
    return Quiet.model_validate({"from": start, "to": end, "timezone": zone, "days": days})


TORONTO_NIGHTS = quiet("22:00", "07:00", "America/Toronto")
TORONTO_DAYS = quiet("09:00", "17:00", "America/Toronto")
FRIDAY_NIGHT = quiet("22:00", "07:00", "America/Toronto", ("fri",))
WEEKEND = quiet("00:00", "00:00", "America/Toronto", ("sat", "sun"))
BAGHDAD_NIGHTS = quiet("22:00", "07:00", "Asia/Baghdad")
PARIS_DAYS = quiet("09:00", "17:00", "Europe/Paris")
PARIS_NIGHTS = quiet("22:00", "07:00", "Europe/Paris")
SYDNEY_NIGHTS = quiet("22:00", "07:00", "Australia/Sydney")
UTC_NIGHTS = quiet("22:00", "07:00")
MONDAYS = quiet("08:00", "08:00", days=("mon",))
ALL_BUT_WEDNESDAY = quiet("00:00", "00:00", days=("thu", "fri", "sat", "sun", "mon", "tue"))
# quiet hours beginning or ending in the hour Toronto skips (8 March) or repeats (1 November)
END_SKIPPED = quiet("22:00", "02:30", "America/Toronto")
START_SKIPPED = quiet("02:30", "07:00", "America/Toronto")
ALL_SKIPPED = quiet("02:30", "03:00", "America/Toronto")
END_REPEATED = quiet("22:00", "01:30", "America/Toronto")
START_REPEATED = quiet("01:30", "07:00", "America/Toronto")


def toronto(*args: int, fold: int = 0) -> datetime:
    return local("America/Toronto", *args, fold=fold)


# 2026: 5 June is a Friday. Toronto changes clocks on 8 March (02:00 -> 03:00) and 1 November
# (02:00 -> 01:00), Paris on 29 March and 25 October, Sydney (southern) on 5 April (03:00 ->
# 02:00) and 4 October (02:00 -> 03:00); Baghdad keeps +03:00 all year.
QUIET_UNTIL = [
    # overnight, Toronto summer (EDT, -04:00); exactly at from is quiet, exactly at to is not
    ("fri-late", TORONTO_NIGHTS, toronto(2026, 6, 5, 23), utc(2026, 6, 6, 11)),
    ("fri-early", TORONTO_NIGHTS, toronto(2026, 6, 5, 3), utc(2026, 6, 5, 11)),
    ("at-from", TORONTO_NIGHTS, toronto(2026, 6, 5, 22), utc(2026, 6, 6, 11)),
    ("at-to", TORONTO_NIGHTS, toronto(2026, 6, 6, 7), None),
    ("before-from", TORONTO_NIGHTS, toronto(2026, 6, 5, 21, 59), None),
    ("midday", TORONTO_NIGHTS, toronto(2026, 6, 5, 12), None),
    # winter (EST, -05:00): the same wall clock is an hour later in UTC
    ("winter", TORONTO_NIGHTS, toronto(2026, 1, 16, 23), utc(2026, 1, 17, 12)),
    # same day
    ("day-at-from", TORONTO_DAYS, toronto(2026, 6, 5, 9), utc(2026, 6, 5, 21)),
    ("day-inside", TORONTO_DAYS, toronto(2026, 6, 5, 16, 59), utc(2026, 6, 5, 21)),
    ("day-at-to", TORONTO_DAYS, toronto(2026, 6, 5, 17), None),
    ("day-before", TORONTO_DAYS, toronto(2026, 6, 5, 8, 59), None),
    ("day-evening", TORONTO_DAYS, toronto(2026, 6, 5, 23), None),
    # Baghdad: +03:00 in summer and winter alike
    ("baghdad-june", BAGHDAD_NIGHTS, utc(2026, 6, 5, 19), utc(2026, 6, 6, 4)),
    ("baghdad-january", BAGHDAD_NIGHTS, utc(2026, 1, 16, 19), utc(2026, 1, 17, 4)),
    ("baghdad-before", BAGHDAD_NIGHTS, utc(2026, 1, 16, 18, 59), None),
    # Paris: +02:00 in summer, +01:00 in winter, and both changes overnight
    ("paris-summer", PARIS_DAYS, utc(2026, 6, 5, 7), utc(2026, 6, 5, 15)),
    ("paris-winter", PARIS_DAYS, utc(2026, 1, 16, 8), utc(2026, 1, 16, 16)),
    ("paris-winter-early", PARIS_DAYS, utc(2026, 1, 16, 7, 30), None),
    ("paris-spring", PARIS_NIGHTS, utc(2026, 3, 28, 21), utc(2026, 3, 29, 5)),
    ("paris-autumn", PARIS_NIGHTS, utc(2026, 10, 24, 20), utc(2026, 10, 25, 6)),
    # Sydney: summer (+11:00) is January, winter (+10:00) June
    ("sydney-june", SYDNEY_NIGHTS, utc(2026, 6, 5, 12), utc(2026, 6, 5, 21)),
    ("sydney-january", SYDNEY_NIGHTS, utc(2026, 1, 16, 11), utc(2026, 1, 16, 20)),
    ("sydney-dst-ends", SYDNEY_NIGHTS, local("Australia/Sydney", 2026, 4, 4, 22),
     utc(2026, 4, 4, 21)),
    ("sydney-dst-starts", SYDNEY_NIGHTS, local("Australia/Sydney", 2026, 10, 3, 22),
     utc(2026, 10, 3, 20)),
    ("utc", UTC_NIGHTS, utc(2026, 6, 5, 22), utc(2026, 6, 6, 7)),
    ("utc-after", UTC_NIGHTS, utc(2026, 6, 6, 7), None),
    # from == to: 24 hours from the chosen day's start
    ("24h-start", MONDAYS, utc(2026, 6, 8, 8), utc(2026, 6, 9, 8)),
    ("24h-next-day", MONDAYS, utc(2026, 6, 9, 7, 59), utc(2026, 6, 9, 8)),
    ("24h-over", MONDAYS, utc(2026, 6, 9, 8), None),
    ("24h-before", MONDAYS, utc(2026, 6, 8, 7, 59), None),
    # days name the day quiet hours begin on
    ("fri-only-sat-3am", FRIDAY_NIGHT, toronto(2026, 6, 6, 3), toronto(2026, 6, 6, 7)),
    ("fri-only-fri-3am", FRIDAY_NIGHT, toronto(2026, 6, 5, 3), None),
    ("fri-only-fri-late", FRIDAY_NIGHT, toronto(2026, 6, 5, 23), toronto(2026, 6, 6, 7)),
    ("fri-only-sat-late", FRIDAY_NIGHT, toronto(2026, 6, 6, 23), None),
    # periods that touch are one: the weekend ends Monday 00:00
    ("weekend-sat", WEEKEND, toronto(2026, 6, 6, 10), toronto(2026, 6, 8)),
    ("weekend-sun", WEEKEND, toronto(2026, 6, 7, 23, 59), toronto(2026, 6, 8)),
    ("weekend-mon", WEEKEND, toronto(2026, 6, 8), None),
    ("weekend-fri", WEEKEND, toronto(2026, 6, 5, 23, 59), None),
    ("six-days", ALL_BUT_WEDNESDAY, utc(2026, 6, 4), utc(2026, 6, 10)),
    # Toronto spring forward, Sunday 8 March: 07:00 EDT is 11:00 UTC
    ("spring-night", TORONTO_NIGHTS, toronto(2026, 3, 7, 22), utc(2026, 3, 8, 11)),
    ("spring-after-change", TORONTO_NIGHTS, utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 11)),
    ("spring-old-to", TORONTO_NIGHTS, utc(2026, 3, 8, 10, 59), utc(2026, 3, 8, 11)),
    ("spring-at-to", TORONTO_NIGHTS, utc(2026, 3, 8, 11), None),
    # fall back, Sunday 1 November: 07:00 EST is 12:00 UTC
    ("fall-night", TORONTO_NIGHTS, toronto(2026, 10, 31, 22), utc(2026, 11, 1, 12)),
    ("fall-repeated", TORONTO_NIGHTS, toronto(2026, 11, 1, 1, 30, fold=1), utc(2026, 11, 1, 12)),
    ("fall-at-old-to", TORONTO_NIGHTS, utc(2026, 11, 1, 11), utc(2026, 11, 1, 12)),
    ("fall-at-to", TORONTO_NIGHTS, utc(2026, 11, 1, 12), None),
    # an end in the skipped hour is read with the offset before the change: 02:30 is 03:30 EDT
    ("end-skipped", END_SKIPPED, utc(2026, 3, 8, 3), utc(2026, 3, 8, 7, 30)),
    ("end-skipped-03:15", END_SKIPPED, utc(2026, 3, 8, 7, 15), utc(2026, 3, 8, 7, 30)),
    ("end-skipped-over", END_SKIPPED, utc(2026, 3, 8, 7, 30), None),
    # so is a start in it
    ("start-skipped-03:00", START_SKIPPED, utc(2026, 3, 8, 7), None),
    ("start-skipped", START_SKIPPED, utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 11)),
    # hours the clock skips entirely are no quiet hours that night
    ("all-skipped", ALL_SKIPPED, utc(2026, 3, 8, 7, 15), None),
    ("all-skipped-day-before", ALL_SKIPPED, utc(2026, 3, 7, 7, 45), utc(2026, 3, 7, 8)),
    # an end in the repeated hour is its first 01:30 (EDT, 05:30 UTC)
    ("end-repeated", END_REPEATED, utc(2026, 11, 1, 5, 15), utc(2026, 11, 1, 5, 30)),
    ("end-repeated-second", END_REPEATED, toronto(2026, 11, 1, 1, 15, fold=1), None),
    # and so is a start in it
    ("start-repeated-before", START_REPEATED, utc(2026, 11, 1, 5, 29), None),
    ("start-repeated", START_REPEATED, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 12)),
    ("start-repeated-second", START_REPEATED, toronto(2026, 11, 1, 1, 15, fold=1),
     utc(2026, 11, 1, 12)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("hours", "at", "end"),
    [pytest.param(*case[1:], id=case[0]) for case in QUIET_UNTIL],
)
def test_quiet_until_is_the_end_of_the_quiet_hours_a_moment_falls_in(
    hours: Quiet, at: datetime, end: datetime | None
) -> None:
    found = quiet_until(hours, at)
    assert found == end
    assert found is None or found.tzinfo is UTC


def test_naive_moments_are_utc() -> None:
    hours = quiet("22:00", "07:00")
    assert quiet_until(hours, datetime(2026, 6, 5, 23)) == utc(2026, 6, 6, 7)
    assert next_quiet_end(hours, datetime(2026, 6, 5, 12)) == utc(2026, 6, 6, 7)


NEXT_QUIET_END = [
    ("before", TORONTO_NIGHTS, toronto(2026, 6, 5, 12), utc(2026, 6, 6, 11)),
    ("inside", TORONTO_NIGHTS, toronto(2026, 6, 6, 3), utc(2026, 6, 6, 11)),
    ("at-to", TORONTO_NIGHTS, toronto(2026, 6, 6, 7), utc(2026, 6, 7, 11)),
    ("a-week-on", FRIDAY_NIGHT, toronto(2026, 6, 6, 7), toronto(2026, 6, 13, 7)),
    ("weekend", WEEKEND, toronto(2026, 6, 3, 12), toronto(2026, 6, 8)),
    ("sydney-saturday", quiet("22:00", "07:00", "Australia/Sydney", ("sat",)), utc(2026, 10, 1),
     utc(2026, 10, 3, 20)),
    ("spring", TORONTO_NIGHTS, toronto(2026, 3, 7, 12), utc(2026, 3, 8, 11)),
    ("fall", TORONTO_NIGHTS, toronto(2026, 10, 31, 12), utc(2026, 11, 1, 12)),
    # the night's quiet hours are all skipped: the next night's
    ("skipped", ALL_SKIPPED, utc(2026, 3, 8, 4), utc(2026, 3, 9, 7)),
    # a week's only quiet hours are skipped: the next week's
    ("skipped-week", quiet("02:00", "03:00", "America/Toronto", ("sun",)), utc(2026, 3, 1, 9),
     utc(2026, 3, 15, 7)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("hours", "now", "end"), [pytest.param(*case[1:], id=case[0]) for case in NEXT_QUIET_END]
)
def test_next_quiet_end_is_the_end_of_these_or_the_next_quiet_hours(
    hours: Quiet, now: datetime, end: datetime
) -> None:
    assert next_quiet_end(hours, now) == end


# Routing: quiet 22:00-07:00 in Toronto. 5 June 2026 16:20 UTC is 12:20 there (not quiet);
# 6 June 03:30 UTC is 23:30 (quiet until 11:00 UTC).
DAY_TIME, NIGHT_TIME = utc(2026, 6, 5, 16, 20), utc(2026, 6, 6, 3, 30)
MORNING = utc(2026, 6, 6, 11)
HOURLY = DigestEvery(every=3600)


def console(**fields: Any) -> ConsoleDestination:
    return ConsoleDestination(type="console", **fields)


def slack(**fields: Any) -> SlackDestination:
    return SlackDestination(type="slack", webhook_url="https://hooks.example/x", **fields)


PLAIN = console()
QUIET = console(quiet=TORONTO_NIGHTS)
DIGEST = slack(digest=HOURLY)
DIGEST_QUIET = slack(digest=HOURLY, quiet=TORONTO_NIGHTS)
DESTINATIONS: dict[str, Destination] = {
    "plain": PLAIN,
    "quiet": QUIET,
    "digest": DIGEST,
    "digest+quiet": DIGEST_QUIET,
}

ROUTES = [
    ("normal", "plain", DAY_TIME, Route(DAY_TIME, False)),
    ("normal", "plain", NIGHT_TIME, Route(NIGHT_TIME, False)),
    ("normal", "quiet", DAY_TIME, Route(DAY_TIME, False)),
    ("normal", "quiet", NIGHT_TIME, Route(MORNING, True, "quiet")),
    ("normal", "digest", DAY_TIME, Route(utc(2026, 6, 5, 17), True)),
    ("normal", "digest", NIGHT_TIME, Route(utc(2026, 6, 6, 4), True)),
    ("normal", "digest+quiet", DAY_TIME, Route(utc(2026, 6, 5, 17), True)),
    # the hourly digest closing at 04:00 UTC, in quiet hours, goes out when they end
    ("normal", "digest+quiet", NIGHT_TIME, Route(MORNING, True)),
    # one closing exactly as quiet hours begin (02:00 UTC = 22:00 in Toronto) waits too
    ("normal", "digest+quiet", utc(2026, 6, 6, 1, 30), Route(MORNING, True)),
    ("digest", "plain", DAY_TIME, Route(utc(2026, 6, 6), True)),
    ("digest", "plain", NIGHT_TIME, Route(utc(2026, 6, 7), True)),
    ("digest", "quiet", DAY_TIME, Route(MORNING, True)),
    ("digest", "quiet", NIGHT_TIME, Route(MORNING, True)),
    ("digest", "digest", DAY_TIME, Route(utc(2026, 6, 5, 17), True)),
    ("digest", "digest", NIGHT_TIME, Route(utc(2026, 6, 6, 4), True)),
    ("digest", "digest+quiet", DAY_TIME, Route(utc(2026, 6, 5, 17), True)),
    ("digest", "digest+quiet", NIGHT_TIME, Route(MORNING, True)),
] + [
    ("urgent", name, now, Route(now, False))
    for name in DESTINATIONS
    for now in (DAY_TIME, NIGHT_TIME)
]


@pytest.mark.parametrize(
    ("priority", "destination", "now", "expected"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}-{case[2]:%H%M}") for case in ROUTES],
)
def test_route_by_priority_digest_and_quiet_hours(
    priority: Priority, destination: str, now: datetime, expected: Route
) -> None:
    assert route(priority, DESTINATIONS[destination], now) == expected


def test_a_normal_alert_held_by_quiet_hours_across_a_clock_change() -> None:
    held = route("normal", QUIET, toronto(2026, 3, 8, 1, 30))
    assert held == Route(utc(2026, 3, 8, 11), True, "quiet")
    held = route("normal", QUIET, toronto(2026, 11, 1, 1, 30, fold=1))
    assert held == Route(utc(2026, 11, 1, 12), True, "quiet")


def test_digest_priority_skips_quiet_hours_the_clock_skips() -> None:
    """02:30-03:00 does not exist on 8 March in Toronto: the next quiet hours end on the 9th."""
    destination = console(quiet=ALL_SKIPPED)
    assert route("digest", destination, utc(2026, 3, 8, 4)) == Route(utc(2026, 3, 9, 7), True)


def test_a_cron_digest_closing_after_quiet_hours_keeps_its_time() -> None:
    morning = DigestCron(cron="0 8 * * *", timezone="America/Toronto")
    destination = slack(digest=morning, quiet=TORONTO_NIGHTS)
    expected = Route(toronto(2026, 6, 6, 8), True)
    assert route("normal", destination, NIGHT_TIME) == expected


# Caps
RULE = Rule(id="watch", title="Watch", query="police")


def cap(per: str, most: int) -> Cap:
    return Cap.model_validate({"per": per, "max": most})


def test_caps_are_the_destinations_and_the_rules_own_in_it() -> None:
    now = utc(2026, 6, 5, 10, 20)
    assert caps(RULE, "desk", PLAIN, now) == ()
    capped = console(cap=cap("1h", 10))
    capped_rule = RULE.model_copy(update={"cap": cap("30m", 3)})
    end = utc(2026, 6, 5, 11)
    assert caps(RULE, "desk", capped, now) == (CapCount("destination:desk", 10, end, end),)
    half = utc(2026, 6, 5, 10, 30)
    assert caps(capped_rule, "desk", PLAIN, now) == (CapCount("rule:watch:desk", 3, half, half),)
    assert caps(capped_rule, "desk", capped, now) == (
        CapCount("destination:desk", 10, end, end),
        CapCount("rule:watch:desk", 3, half, half),
    )


@pytest.mark.parametrize(
    ("per", "now", "end"),
    [
        ("1h", utc(2026, 6, 5, 10, 20), utc(2026, 6, 5, 11)),
        ("1h", utc(2026, 6, 5, 10), utc(2026, 6, 5, 11)),  # a period's start is in it
        ("1h", utc(2026, 6, 5, 10, 59, 59), utc(2026, 6, 5, 11)),
        ("30m", utc(2026, 6, 5, 10, 20), utc(2026, 6, 5, 10, 30)),
        ("30m", utc(2026, 6, 5, 10, 40), utc(2026, 6, 5, 11)),
        ("1d", utc(2026, 6, 5, 23, 59), utc(2026, 6, 6)),  # UTC midnight, not Toronto's
        ("1d", toronto(2026, 6, 5, 19, 59), utc(2026, 6, 6)),
        ("1d", toronto(2026, 6, 5, 20), utc(2026, 6, 7)),
    ],
)
def test_cap_periods_are_aligned_on_the_epoch_in_utc(
    per: str, now: datetime, end: datetime
) -> None:
    destination = console(cap=cap(per, 5))
    assert caps(RULE, "desk", destination, now) == (CapCount("destination:desk", 5, end, end),)


@pytest.mark.parametrize(
    ("now", "period_end", "release_at"),
    [
        (utc(2026, 6, 6, 2, 20), utc(2026, 6, 6, 3), MORNING),  # ends at 23:00 in Toronto
        (utc(2026, 6, 6, 1, 20), utc(2026, 6, 6, 2), MORNING),  # ends at 22:00: quiet
        (utc(2026, 6, 6, 10, 20), MORNING, MORNING),  # ends at 07:00: quiet hours are over
        (utc(2026, 6, 5, 16, 20), utc(2026, 6, 5, 17), utc(2026, 6, 5, 17)),
    ],
)
def test_a_cap_ending_in_quiet_hours_releases_at_their_end(
    now: datetime, period_end: datetime, release_at: datetime
) -> None:
    destination = console(quiet=TORONTO_NIGHTS, cap=cap("1h", 10))
    [counted] = caps(RULE, "desk", destination, now)
    assert (counted.period_end, counted.release_at) == (period_end, release_at)


# Properties over any quiet hours and moments, clock changes included
def _clock(minutes: int) -> str:
    return f"{minutes // 60:02}:{minutes % 60:02}"


clocks = st.one_of(
    st.sampled_from([0, 60, 90, 120, 150, 180, 420, 540, 1020, 1320]),
    st.integers(0, 24 * 60 - 1),
).map(_clock)
weekdays = st.sets(st.sampled_from(WEEKDAYS), min_size=1).map(tuple)


def _quiet_or_none(start: str, end: str, zone: str, days: tuple[str, ...]) -> Quiet | None:
    """None for the quiet hours the schema refuses: all day every day."""
    return None if start == end and len(days) == len(WEEKDAYS) else quiet(start, end, zone, days)


quiets = st.builds(_quiet_or_none, clocks, clocks, st.sampled_from(ZONES), weekdays).filter(
    lambda q: q is not None
)
CHANGES = {
    "America/Toronto": (utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)),
    "Europe/Paris": (utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)),
    "Australia/Sydney": (utc(2026, 4, 4, 16), utc(2026, 10, 3, 16)),
}
anytime = st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31)).map(
    lambda t: t.replace(tzinfo=UTC)
)


def _near(changes: tuple[datetime, ...]) -> st.SearchStrategy[datetime]:
    """Moments within a day and a half of a clock change."""
    return st.builds(
        lambda change, minutes: change + timedelta(minutes=minutes),
        st.sampled_from(changes),
        st.integers(-36 * 60, 36 * 60),
    )


moments = anytime | _near(sum(CHANGES.values(), ()))


@st.composite
def quiet_moments(draw: st.DrawFn) -> tuple[Quiet, datetime]:
    """Quiet hours and a moment; often a moment near a clock change of their time zone, and
    quiet hours beginning within 90 minutes of it (in or around the hour skipped or repeated)
    and lasting up to an hour."""
    hours = draw(quiets)
    changes = CHANGES.get(hours.timezone)
    if not changes or draw(st.booleans()):
        return hours, draw(anytime)
    change = draw(st.sampled_from(changes))
    if draw(st.booleans()):
        before = (change - timedelta(minutes=1)).astimezone(ZoneInfo(hours.timezone))
        start = before.hour * 60 + before.minute + 1 + draw(st.integers(-90, 90))
        end = start + draw(st.integers(1, 60))
        hours = quiet(_clock(start % 1440), _clock(end % 1440), hours.timezone, draw(weekdays))
    minutes = st.integers(-36 * 60, 36 * 60) | st.integers(-5 * 60, 60)  # or hours before it
    return hours, change + timedelta(minutes=draw(minutes))


@settings(max_examples=500)
@given(quiet_moments())
def test_quiet_hours_end_after_the_moment_and_their_end_is_not_quiet(
    case: tuple[Quiet, datetime],
) -> None:
    hours, at = case
    end = quiet_until(hours, at)
    assert end is None or end > at
    if end is not None:
        assert quiet_until(hours, end) is None
    following = next_quiet_end(hours, at)
    assert following > at
    assert quiet_until(hours, following) is None
    assert end is None or following == end


def _wall_clock_quiet(hours: Quiet, at: datetime) -> bool:
    """Quiet by the local clock alone: true away from clock changes."""
    moment = at.astimezone(ZoneInfo(hours.timezone))
    now = moment.time().replace(tzinfo=None)
    start, end = time.fromisoformat(hours.from_), time.fromisoformat(hours.to)
    today = WEEKDAYS[moment.weekday()] in hours.days
    yesterday = WEEKDAYS[(moment.weekday() - 1) % 7] in hours.days
    if start < end:
        return today and start <= now < end
    return (today and now >= start) or (yesterday and now < end)


@given(quiets, anytime)
def test_away_from_clock_changes_quiet_hours_follow_the_local_clock(
    hours: Quiet, at: datetime
) -> None:
    zone = ZoneInfo(hours.timezone)
    assume(
        (at - 26 * HOUR).astimezone(zone).utcoffset()
        == (at + 26 * HOUR).astimezone(zone).utcoffset()
    )
    assert (quiet_until(hours, at) is not None) == _wall_clock_quiet(hours, at)


destinations = st.builds(
    lambda digest, hours, capped: slack(digest=digest, quiet=hours, cap=capped),
    st.sampled_from([None, HOURLY, DigestEvery(every=86400), DigestCron(cron="0 8 * * 1-5")]),
    st.none() | quiets,
    st.none() | st.just(cap("1h", 3)),
)


@given(st.sampled_from(["urgent", "normal", "digest"]), destinations, moments)
def test_routes_never_deliver_before_now_nor_into_quiet_hours(
    priority: Priority, destination: SlackDestination, now: datetime
) -> None:
    chosen = route(priority, destination, now)
    assert chosen.deliver_at >= now
    if priority == "urgent":
        assert chosen == Route(now, False)
        return
    assert chosen.digest or chosen.deliver_at == now
    if priority == "digest":
        assert chosen.digest
    held_until = quiet_until(destination.quiet, now) if destination.quiet is not None else None
    if priority == "normal" and destination.digest is None and held_until is not None:
        assert chosen == Route(held_until, True, "quiet")
    else:
        assert chosen.held is None
    if destination.quiet is not None:
        assert quiet_until(destination.quiet, chosen.deliver_at) is None
    for counted in caps(RULE, "desk", destination, now):
        assert now < counted.period_end <= counted.release_at
        assert (
            destination.quiet is None or quiet_until(destination.quiet, counted.release_at) is None
        )


# Spikes
def test_hour_of_counts_utc_hours_since_the_epoch() -> None:
    assert hour_of(utc(1970, 1, 1, 1, 59)) == 1
    assert hour_of(utc(2026, 6, 5, 10, 20)) == hour_of(utc(2026, 6, 5, 10)) == 494626
    assert hour_of(datetime(2026, 6, 5, 10, 20)) == 494626
    assert hour_of(toronto(2026, 6, 5, 6, 20)) == 494626


NOW = utc(2026, 6, 5, 10, 20)
H = hour_of(NOW)


@pytest.mark.parametrize(
    ("window", "earlier"), [(3600, 336), (6 * 3600, 56), (5 * 3600, 67), (72 * 3600, 4)]
)
def test_window_counts_cover_fourteen_days_of_earlier_windows(window: float, earlier: int) -> None:
    assert window_counts({}, NOW, window) == (0, [0] * earlier)
    assert BASELINE_DAYS == 14


def test_window_counts_sum_the_hours_of_each_window() -> None:
    # a 6-hour window ending in now's hour: hours H-5..H; the one before it H-11..H-6; the
    # 56th and last H-341..H-336, 14 days before the current one; later hours do not count
    hours = {H + 1: 100, H: 1, H - 5: 2, H - 6: 4, H - 11: 8, H - 12: 16, H - 341: 32, H - 342: 64}
    current, earlier = window_counts(hours, NOW, 6 * 3600)
    assert current == 3
    assert earlier[:2] == [12, 16]
    assert earlier[-1] == 32
    assert sum(earlier) == 12 + 16 + 32


@given(
    st.lists(st.datetimes(datetime(2026, 5, 1), datetime(2026, 6, 10)), max_size=60),
    st.sampled_from([3600, 2 * 3600, 6 * 3600, 5 * 3600, 72 * 3600]),
)
def test_window_counts_agree_with_counting_the_story_times(
    stories: list[datetime], window: int
) -> None:
    by_hour: dict[int, int] = {}
    for moment in stories:
        by_hour[hour_of(moment)] = by_hour.get(hour_of(moment), 0) + 1
    end = NOW.replace(minute=0, second=0, microsecond=0) + HOUR
    span = timedelta(seconds=window)

    def brute(i: int) -> int:
        high = end - i * span
        return sum(high - span <= t.replace(tzinfo=UTC) < high for t in stories)

    current, earlier = window_counts(by_hour, NOW, window)
    assert current == brute(0)
    assert earlier == [brute(i) for i in range(1, len(earlier) + 1)]
    assert len(earlier) * span <= timedelta(days=14) < (len(earlier) + 1) * span


@pytest.mark.parametrize(
    ("counts", "median"),
    [([], 0.0), ([0] * 50 + [10] * 6, 0.0), ([1, 2, 3, 4], 2.5), ([3, 1, 2], 2.0), ([7], 7.0)],
)
def test_usual_is_the_median_missing_hours_counting_as_none(
    counts: list[int], median: float
) -> None:
    assert usual(counts) == median


def test_one_earlier_burst_does_not_raise_the_usual_count() -> None:
    hours = {H - 6 * i: 2 for i in range(1, 57)} | {H - 30: 200}
    current, earlier = window_counts(hours | {H: 7}, NOW, 6 * 3600)
    assert (current, usual(earlier)) == (7, 2.0)
    assert is_spike(current, usual(earlier), Spike())


@pytest.mark.parametrize(
    ("count", "baseline", "factor", "least", "spike"),
    [
        (15, 5.0, 3, 5, False),  # exactly factor times usual: not more
        (16, 5.0, 3, 5, True),
        (5, 0.0, 3, 5, True),  # a rule usually silent: min decides
        (4, 0.0, 3, 5, False),
        (6, 2.0, 3, 5, False),
        (7, 2.0, 3, 5, True),
        (5, 2.0, 2.5, 5, False),
        (6, 2.0, 2.5, 5, True),
        (30, 1.5, 3, 30, True),  # exactly min: enough
        (29, 1.5, 3, 30, False),
        (1, 0.0, 3, 1, True),
    ],
)
def test_a_spike_is_more_than_factor_times_usual_and_at_least_min(
    count: int, baseline: float, factor: float, least: int, spike: bool
) -> None:
    assert is_spike(count, baseline, Spike(factor=factor, min=least)) is spike


@pytest.mark.parametrize(
    ("counted_for", "now_count", "spike"),
    [
        (3, 9, False),  # three earlier windows counted: the usual count is not known yet
        (4, 9, True),
        (4, 2, False),  # under min
        (56, 9, True),
    ],
)
def test_spike_facts_need_four_earlier_windows_of_counting(
    counted_for: int, now_count: int, spike: bool
) -> None:
    width = 6
    current = hour_of(NOW)
    since = current - width * counted_for - (width - 1)
    hours = {current: now_count, since: 1}
    facts = spike_facts(hours, NOW, Spike(window=width * 3600.0, factor=3, min=3), since)
    assert (facts is not None) is spike
    if facts is not None:
        assert (facts.count, facts.usual, facts.window) == (now_count, 0.0, width * 3600.0)


def test_a_spike_alert_is_the_template_with_its_facts_and_top_stories() -> None:
    template = QueuedAlert(sample_alert(priority="urgent"), deliver_at=NOW, digest=True, caps=())
    top = [Folded(f"Story {n}", f"https://news.example/{n}", ("Watch",)) for n in range(12)]
    facts = SpikeFacts(count=12, usual=2.0, window=6 * 3600)
    queued = spike_alert(template, facts, top)
    assert queued.alert == replace(
        template.alert,
        spike=facts,
        folded=tuple(top[:SPIKE_LISTED]),
        folded_count=12,
    )
    assert (queued.deliver_at, queued.digest, queued.caps) == (NOW, True, ())
    assert SPIKE_LISTED == 10 and not queued.alert.is_overflow
    one = spike_alert(template, SpikeFacts(count=5, usual=0.0, window=3600), top[:2])
    assert (one.alert.title, one.alert.folded, one.alert.folded_count) == (
        template.alert.title,
        tuple(top[:2]),
        5,
    )
