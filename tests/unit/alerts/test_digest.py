"""Digest schedules: epoch-aligned periods and crontab with classic cron semantics across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.alerts.digest import next_digest_at
from bot.config.schema import DigestCron, DigestEvery
from bot.schedule import check_cron, weekday_names


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cron(expr: str, timezone: str = "UTC") -> DigestCron:
    return DigestCron(cron=expr, timezone=timezone)


def test_every_closes_at_the_next_multiple_of_the_period_since_the_epoch() -> None:
    hourly = DigestEvery(every=3600)
    assert next_digest_at(hourly, utc(2024, 1, 1, 10, 0, 1)) == utc(2024, 1, 1, 11)
    assert next_digest_at(hourly, utc(2024, 1, 1, 10, 59, 59)) == utc(2024, 1, 1, 11)
    assert next_digest_at(hourly, utc(2024, 1, 1, 10)) == utc(2024, 1, 1, 11)  # always after now
    assert next_digest_at(DigestEvery(every=86400), utc(2024, 1, 1, 23)) == utc(2024, 1, 2)
    ninety = DigestEvery(every=90)
    assert next_digest_at(ninety, utc(2024, 1, 1, 0, 0, 10)) == utc(2024, 1, 1, 0, 1, 30)


def test_every_treats_naive_and_other_zones_as_the_same_instant() -> None:
    hourly = DigestEvery(every=3600)
    toronto = datetime(2024, 1, 1, 5, 30, tzinfo=ZoneInfo("America/Toronto"))
    assert next_digest_at(hourly, toronto) == utc(2024, 1, 1, 11)
    assert next_digest_at(hourly, datetime(2024, 1, 1, 10, 30)) == utc(2024, 1, 1, 11)


def test_cron_weekdays_follow_crontab_numbering() -> None:
    weekdays = cron("0 8 * * 1-5")
    # Friday 2024-03-08 09:00 UTC: next is Monday 08:00, not Saturday.
    assert next_digest_at(weekdays, utc(2024, 3, 8, 9)) == utc(2024, 3, 11, 8)
    assert next_digest_at(cron("0 8 * * 0"), utc(2024, 3, 8, 9)) == utc(2024, 3, 10, 8)  # Sunday
    assert next_digest_at(cron("0 8 * * 7"), utc(2024, 3, 8, 9)) == utc(2024, 3, 10, 8)


def test_weekday_fields() -> None:
    assert weekday_names("1-5") == "mon,tue,wed,thu,fri"
    assert weekday_names("0,7") == "sun"
    assert weekday_names("*/2") == "sun,tue,thu,sat"
    assert weekday_names("5-7") == "sun,fri,sat"
    assert weekday_names("MON,fri") == "mon,fri"
    assert weekday_names("0-6") == "*"
    for bad in ("8", "5-1", "*/0", "funday", "1/x"):
        with pytest.raises(ValueError):
            weekday_names(bad)


def test_day_of_month_or_weekday_when_both_are_restricted() -> None:
    # Cron fires on the 13th OR on Fridays; 2024-01-05 is a Friday.
    assert next_digest_at(cron("0 0 13 * 5"), utc(2024, 1, 1)) == utc(2024, 1, 5)
    assert next_digest_at(cron("0 0 13 * 5"), utc(2024, 1, 12, 1)) == utc(2024, 1, 13)
    # With a wildcard day of month, only the weekday counts.
    assert next_digest_at(cron("0 0 * * 5"), utc(2024, 1, 6)) == utc(2024, 1, 12)


def test_lists_ranges_steps_and_names() -> None:
    assert next_digest_at(cron("*/15 * * * *"), utc(2024, 1, 1, 10, 7)) == utc(2024, 1, 1, 10, 15)
    assert next_digest_at(cron("0 9,17 * * *"), utc(2024, 1, 1, 10)) == utc(2024, 1, 1, 17)
    assert next_digest_at(cron("0 0 1 jan-mar *"), utc(2024, 4, 1, 1)) == utc(2025, 1, 1)


def test_cron_in_a_time_zone_across_dst() -> None:
    toronto = cron("0 8 * * *", "America/Toronto")
    assert next_digest_at(toronto, utc(2024, 3, 9, 14)) == utc(2024, 3, 10, 12)  # EST -> EDT
    assert next_digest_at(toronto, utc(2024, 3, 10, 12)) == utc(2024, 3, 11, 12)
    assert next_digest_at(toronto, utc(2024, 11, 2, 13)) == utc(2024, 11, 3, 13)  # EDT -> EST


def test_cron_in_the_skipped_hour_still_fires_that_day() -> None:
    # 02:30 does not exist in Toronto on 2024-03-10: the digest still closes that night.
    at = next_digest_at(cron("30 2 * * *", "America/Toronto"), utc(2024, 3, 10, 5))
    assert utc(2024, 3, 10, 6) < at <= utc(2024, 3, 10, 8)


def test_cron_fixed_time_fires_once_when_the_wall_time_repeats() -> None:
    nightly = cron("30 1 * * *", "America/Toronto")
    first = next_digest_at(nightly, utc(2024, 11, 3, 4))
    assert first == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    assert next_digest_at(nightly, first) == utc(2024, 11, 4, 6, 30)  # not 01:30 EST again
    hourly = cron("0 * * * *", "America/Toronto")
    assert next_digest_at(hourly, utc(2024, 11, 3, 5, 30)) == utc(2024, 11, 3, 6)  # both passes


def test_invalid_cron_expressions() -> None:
    assert check_cron("0 8 * * 1-5", "Europe/Paris") == "0 8 * * 1-5"
    for bad in ("0 8 * *", "0 8 * * * *", "61 * * * *", "0 25 * * *", "0 0 31 2 *", "@daily"):
        with pytest.raises(ValueError):
            check_cron(bad)
