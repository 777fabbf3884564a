"""The fast path's own reading of strict RFC 822 and W3DTF dates is feedparser's."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

import bot.feeds.parse as fp


def _rfc822(rng: random.Random) -> str:
    weekday = rng.choice(["", "Mon, ", "Sun, ", "Xyz, ", "Tue "])
    day = rng.choice(["1", "06", "29", "30", "31", "00", "123"])
    month = rng.choice(["Jan", "Feb", "Sep", "Oct", "Dec", "jan", "Foo"])
    year = rng.choice(["2026", "1900", "1970", "1969", "2999", "3000", "26", "1899"])
    clock = rng.choice(["04:40:00", "23:59:59", "24:00:00", "12:60:00", "00:00:60", "4:40"])
    zone = rng.choice(["+0000", "-0500", "+0530", "-1459", "+9999", "GMT", "UT", "UTC", "Z", "EST"])
    return f"{weekday}{day} {month} {year} {clock} {zone}"


def _w3dtf(rng: random.Random) -> str:
    date = rng.choice(["2026-01-06", "2024-02-29", "2023-02-29", "1900-12-31", "2026-13-01"])
    clock = rng.choice(["04:47:00", "23:59:59", "24:00:00", "00:00:60", "04:47"])
    fraction = rng.choice(["", ".5", ".999999", ".1234567", "."])
    zone = rng.choice(["Z", "z", "+00:00", "-05:00", "+05:30", "+0530", "-23:59", ""])
    separator = rng.choice(["T", "T", " ", "t"])
    return f"{date}{separator}{clock}{fraction}{zone}"


def test_strict_dates_read_as_feedparser_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    dates = [_rfc822(rng) for _ in range(3000)] + [_w3dtf(rng) for _ in range(3000)]
    fast = [fp._fast_date(raw) for raw in dates]
    assert sum(fp._strict_date(raw) is not None for raw in dates) > 200
    monkeypatch.setattr(fp, "_strict_date", lambda raw: None)
    assert fast == [fp._fast_date(raw) for raw in dates]


@pytest.mark.parametrize(
    ("raw", "moment"),
    [
        ("Tue, 06 Jan 2026 04:40:00 +0000", datetime(2026, 1, 6, 4, 40, tzinfo=UTC)),
        ("6 Jan 2026 04:40:00 -0530", datetime(2026, 1, 6, 10, 10, tzinfo=UTC)),
        ("2026-01-06T04:47:00.75+01:00", datetime(2026, 1, 6, 3, 47, tzinfo=UTC)),
        ("2026-02-30T04:47:00Z", None),
        ("06 Jan 2026", None),
    ],
)
def test_strict_date(raw: str, moment: datetime | None) -> None:
    assert fp._strict_date(raw) == moment
