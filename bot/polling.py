"""When to poll a feed next: pure policy, so it can be tested without a clock."""

from __future__ import annotations

import random

MAX_BACKOFF = 6 * 3600.0
MIN_BACKOFF = 60.0


def next_poll_delay(
    interval: float,
    jitter: float,
    rng: random.Random,
    *,
    failures: int = 0,
    retry_after: float | None = None,
    max_age: float | None = None,
    ttl: float | None = None,
) -> float:
    """Seconds until the next poll.

    Healthy feeds wait their interval, or longer when the server asks for it
    (``Cache-Control: max-age``, ``<ttl>``), plus up to ``jitter`` so feeds do not
    move in lockstep. Failing feeds back off exponentially from a minute up to
    six hours (never sooner than the interval would, nor than ``Retry-After``),
    with full jitter on the backoff so a broken host is not hit by every
    replica at once.
    """
    if failures > 0:
        backoff = min(MAX_BACKOFF, MIN_BACKOFF * 2 ** min(failures - 1, 20))
        delay = max(interval, rng.uniform(backoff / 2, backoff))
        return max(delay, retry_after or 0.0)
    delay = max(interval, max_age or 0.0, ttl or 0.0, retry_after or 0.0)
    return delay + (rng.uniform(0, jitter) if jitter > 0 else 0.0)


def retry_delay(attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
    """Seconds before a failed delivery is tried again: 5 s doubling to an hour, with jitter."""
    backoff = min(3600.0, 5.0 * 2 ** min(attempts, 20))
    return max(retry_after or 0.0, rng.uniform(backoff / 2, backoff))
