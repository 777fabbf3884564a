"""The poll and retry schedule: bounds that must hold whatever the random draw."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.timing import (
    DELIVERY_MAX_WAIT,
    MAX_BACKOFF,
    SILENCE_FACTOR,
    Silence,
    due_at,
    next_poll,
    retry_delay,
    server_seconds,
    silence_threshold,
    with_note,
)

DAY = 86400.0
seconds = st.floats(min_value=1, max_value=86400, allow_nan=False)
# What a server can send: any float, a number past a float's range, a year, nonsense.
anything = (
    st.none()
    | st.floats()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from([31536000.0, 1e12, 99999999999999.0, 10**400, math.inf, -1.0, math.nan])
)


def next_poll_delay(interval: float, jitter: float, rng: random.Random, **kwargs: float) -> float:
    return next_poll(interval, jitter, rng, ceiling=10 * DAY, **kwargs).delay


@given(interval=seconds, jitter=st.floats(0, 600), seed=st.integers())
def test_healthy_feeds_wait_their_interval_plus_at_most_the_jitter(
    interval: float, jitter: float, seed: int
) -> None:
    delay = next_poll_delay(interval, jitter, random.Random(seed))
    assert interval <= delay <= interval + jitter


@given(interval=seconds, max_age=seconds, ttl=seconds, seed=st.integers())
def test_server_hints_only_lengthen_the_wait(
    interval: float, max_age: float, ttl: float, seed: int
) -> None:
    delay = next_poll_delay(interval, 0, random.Random(seed), max_age=max_age, ttl=ttl)
    assert delay == max(interval, max_age, ttl)


@given(failures=st.integers(1, 1000), retry_after=st.none() | seconds, seed=st.integers())
def test_failing_feeds_back_off_within_bounds(
    failures: int, retry_after: float | None, seed: int
) -> None:
    delay = next_poll_delay(60, 30, random.Random(seed), failures=failures, retry_after=retry_after)
    assert delay >= 60
    assert delay >= (retry_after or 0)
    assert delay <= max(MAX_BACKOFF, retry_after or 0)


def test_backoff_grows_with_failures() -> None:
    rng = random.Random(1)
    typical = [
        sorted(next_poll_delay(10, 0, rng, failures=n) for _ in range(50))[25]
        for n in (1, 3, 6, 10)
    ]
    assert typical == sorted(typical)
    assert typical[-1] > 10 * typical[0]


@given(attempts=st.integers(0, 100), retry_after=st.none() | seconds, seed=st.integers())
def test_delivery_retries_honour_retry_after_and_stay_bounded(
    attempts: int, retry_after: float | None, seed: int
) -> None:
    delay = retry_delay(attempts, random.Random(seed), retry_after)
    assert delay >= (retry_after or 0)
    assert delay <= max(3600, retry_after or 0)
    assert delay >= 2.5


# ------------------------------------------------------------ what servers ask for, capped


@given(
    interval=seconds,
    jitter=st.floats(0, 600),
    failures=st.integers(0, 50),
    max_age=anything,
    ttl=anything,
    retry_after=anything,
    seed=st.integers(),
)
def test_no_server_hint_pushes_a_poll_past_the_ceiling_or_raises(
    interval: float,
    jitter: float,
    failures: int,
    max_age: float | None,
    ttl: float | None,
    retry_after: float | None,
    seed: int,
) -> None:
    plan = next_poll(
        interval,
        jitter,
        random.Random(seed),
        ceiling=DAY,
        failures=failures,
        max_age=max_age,
        ttl=ttl,
        retry_after=retry_after,
    )
    assert interval <= plan.delay <= max(interval, DAY, MAX_BACKOFF) + jitter
    due = due_at(datetime(2030, 1, 1, tzinfo=UTC), plan.delay)
    assert due <= datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=plan.delay + 1)


@pytest.mark.parametrize(
    ("hints", "note"),
    [
        (
            {"max_age": 31536000},
            "server asked to wait 365d (Cache-Control max-age), capped at 1d",
        ),
        ({"ttl": 60 * 10**12}, "server asked to wait forever (<ttl>), capped at 1d"),
        ({"ttl": 10**400}, "server asked to wait forever (<ttl>), capped at 1d"),
        ({"retry_after": 1e12}, "server asked to wait 31710y (Retry-After), capped at 1d"),
        (
            {"max_age": 99999999999999.0},
            "server asked to wait forever (Cache-Control max-age), capped at 1d",
        ),
        (
            {"max_age": 3 * DAY, "ttl": 2 * DAY},
            "server asked to wait 3d (Cache-Control max-age), capped at 1d",
        ),
    ],
)
def test_a_wish_past_the_ceiling_is_capped_and_says_so(hints: dict[str, float], note: str) -> None:
    plan = next_poll(600, 0, random.Random(1), ceiling=DAY, **hints)
    assert plan.delay == DAY
    assert plan.note == note


def test_a_failing_feeds_retry_after_is_capped_too() -> None:
    plan = next_poll(600, 30, random.Random(1), ceiling=DAY, failures=3, retry_after=1e12)
    assert plan.delay == DAY
    assert plan.note and "(Retry-After)" in plan.note


@pytest.mark.parametrize("hint", [None, -5.0, math.nan, 0.0, 600.0, DAY])
def test_meaningless_or_modest_wishes_leave_no_note(hint: float | None) -> None:
    plan = next_poll(600, 0, random.Random(1), ceiling=DAY, max_age=hint, ttl=hint)
    assert plan.note is None
    assert plan.delay == max(600.0, server_seconds(hint) or 0.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (-1, None),
        (math.nan, None),
        (5, 5.0),
        (10**400, math.inf),
        (math.inf, math.inf),
    ],
)
def test_server_seconds(value: float | None, expected: float | None) -> None:
    assert server_seconds(value) == expected


@pytest.mark.parametrize("delay", [0.0, -1.0, math.nan, 1e12, 1e300, math.inf])
def test_due_at_never_overflows(delay: float) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    due = due_at(now, delay)
    assert now <= due <= now + timedelta(days=365 * 100)


@given(attempts=st.integers(0, 100), retry_after=anything, seed=st.integers())
def test_a_destinations_retry_after_is_capped(
    attempts: int, retry_after: float | None, seed: int
) -> None:
    delay = retry_delay(attempts, random.Random(seed), retry_after)
    assert 2.5 <= delay <= DELIVERY_MAX_WAIT
    assert delay >= min(server_seconds(retry_after) or 0.0, DELIVERY_MAX_WAIT)


@pytest.mark.parametrize(
    ("warning", "note", "expected"),
    [
        (None, None, None),
        ("bad encoding", None, "bad encoding"),
        (
            None,
            "server asked to wait 2d (<ttl>), capped at 1d",
            "server asked to wait 2d (<ttl>), capped at 1d",
        ),
        (
            "bad encoding; server asked to wait 2d (<ttl>), capped at 1d",
            "server asked to wait 3d (Cache-Control max-age), capped at 1d",
            "bad encoding; server asked to wait 3d (Cache-Control max-age), capped at 1d",
        ),
        ("server asked to wait 2d (<ttl>), capped at 1d", None, None),
    ],
)
def test_with_note_replaces_the_previous_polls_note(
    warning: str | None, note: str | None, expected: str | None
) -> None:
    assert with_note(warning, note) == expected


# -- silence -------------------------------------------------------------------
T0 = datetime(2026, 3, 2, tzinfo=UTC)
SILENCE_FLOOR = 3 * DAY  # on_feed_silence.after by default
gaps = st.lists(st.floats(min_value=60, max_value=90 * DAY), min_size=3, max_size=60)


def _sightings(between: list[float]) -> list[datetime]:
    """The times new items were seen, ``between`` seconds apart, from T0."""
    times = [T0]
    for gap in between:
        times.append(times[-1] + timedelta(seconds=gap))
    return times


def test_a_daily_feed_is_silent_after_twice_its_day_or_the_floor() -> None:
    verdict = silence_threshold(_sightings([DAY] * 10), floor=DAY)
    assert verdict == Silence(threshold=2 * DAY, usual_gap=DAY)
    assert silence_threshold(_sightings([DAY] * 10), floor=SILENCE_FLOOR) == Silence(
        SILENCE_FLOOR, DAY
    )


def test_a_weekly_feed_is_given_two_weeks() -> None:
    verdict = silence_threshold(_sightings([7 * DAY] * 4), floor=SILENCE_FLOOR)
    assert verdict is not None and verdict.threshold == 14 * DAY


def test_the_rare_long_gap_sets_the_threshold_not_the_usual_one() -> None:
    # Weekdays daily, a three-day weekend every fifth gap: the weekend is normal.
    verdict = silence_threshold(_sightings([DAY, DAY, DAY, DAY, 3 * DAY] * 4), floor=DAY)
    assert verdict == Silence(threshold=6 * DAY, usual_gap=DAY)


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_too_little_history_gives_no_verdict(count: int) -> None:
    assert (
        silence_threshold(_sightings([DAY] * (count - 1)) if count else [], SILENCE_FLOOR) is None
    )


@given(between=gaps, floor=st.floats(0, 30 * DAY))
def test_the_threshold_is_never_under_the_floor_nor_the_usual_gap(
    between: list[float], floor: float
) -> None:
    verdict = silence_threshold(_sightings(between), floor)
    assert verdict is not None
    assert verdict.threshold >= floor
    assert verdict.threshold >= SILENCE_FACTOR * verdict.usual_gap * (1 - 1e-9)
    assert min(between) * (1 - 1e-9) <= verdict.usual_gap <= max(between) * (1 + 1e-9)


@given(between=gaps, longer=st.floats(1, 10), seed=st.integers())
def test_order_and_repeats_do_not_matter_and_a_longer_gap_never_lowers_it(
    between: list[float], longer: float, seed: int
) -> None:
    times = _sightings(between)
    verdict = silence_threshold(times, DAY)
    shuffled = times + times[: len(times) // 2]
    random.Random(seed).shuffle(shuffled)
    assert silence_threshold(shuffled, DAY) == verdict
    stretched = [*times, times[-1] + timedelta(seconds=max(between) * longer)]
    after = silence_threshold(stretched, DAY)
    assert verdict is not None and after is not None
    assert after.threshold >= verdict.threshold * (1 - 1e-9)
