"""The poll and retry schedule: bounds that must hold whatever the random draw."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from bot.polling import MAX_BACKOFF, next_poll_delay, retry_delay

seconds = st.floats(min_value=1, max_value=86400, allow_nan=False)


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
