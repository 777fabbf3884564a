"""When to poll a feed next: pure policy, so it can be tested without a clock.

Servers take part in the schedule (``Cache-Control: max-age``, ``<ttl>``,
``Retry-After``), and a server can ask for anything: a CDN's year-long max-age,
a date in 9999, a number past what a datetime holds. Every such wish is honoured
up to a ceiling (``http.max_delay``), a capped one says so in a note shown with the
feed, and a meaningless one (negative, NaN) is ignored: none of them can raise.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from bot.config.units import format_duration

MAX_BACKOFF = 6 * 3600.0
MIN_BACKOFF = 60.0
DELIVERY_MAX_WAIT = 86400.0
"""Ceiling on a destination's Retry-After (Slack's): a day, past any real rate limit."""

CAPPED = "server asked to wait"
"""How every note about a capped server delay begins (see :func:`with_note`)."""

SILENCE_FACTOR = 2.0
SILENCE_PERCENTILE = 0.9
SILENCE_MIN_GAPS = 3
"""Gaps a feed's history needs before its silence is judged at all."""
SILENCE_HISTORY = 50
"""The latest sightings of new items that make a feed's history: its habits may change."""

_LATEST = 100 * 365 * 86400.0  # no schedule reaches further: far inside datetime's range
_YEAR = 365 * 86400.0


@dataclass(frozen=True, slots=True)
class NextPoll:
    """Seconds until the next poll; ``note`` says when a server's wish was capped."""

    delay: float
    note: str | None = None


def next_poll(
    interval: float,
    jitter: float,
    rng: random.Random,
    *,
    ceiling: float,
    failures: int = 0,
    retry_after: float | None = None,
    max_age: float | None = None,
    ttl: float | None = None,
) -> NextPoll:
    """When to poll next.

    Healthy feeds wait their interval, or longer when the server asks for it
    (``Cache-Control: max-age``, ``<ttl>``, ``Retry-After``) up to ``ceiling``,
    plus up to ``jitter`` so feeds do not move in lockstep. Failing feeds back off
    exponentially from a minute up to six hours (never sooner than the interval
    would, nor than ``Retry-After`` up to ``ceiling``), with full jitter on the
    backoff so a broken host is not hit by every replica at once.
    """
    hints = {"Retry-After": retry_after}
    if failures == 0:
        hints |= {"Cache-Control max-age": max_age, "<ttl>": ttl}
    wish, source = max(
        ((s, name) for name, value in hints.items() if (s := server_seconds(value)) is not None),
        default=(0.0, ""),
    )
    granted = min(wish, ceiling)
    note = (
        f"{CAPPED} {rough(wish)} ({source}), capped at {format_duration(ceiling)}"
        if wish > ceiling
        else None
    )
    if failures > 0:
        backoff = min(MAX_BACKOFF, MIN_BACKOFF * 2 ** min(failures - 1, 20))
        return NextPoll(max(interval, rng.uniform(backoff / 2, backoff), granted), note)
    delay = max(interval, granted) + (rng.uniform(0, jitter) if jitter > 0 else 0.0)
    return NextPoll(delay, note)


def retry_delay(
    attempts: int,
    rng: random.Random,
    retry_after: float | None = None,
    ceiling: float = DELIVERY_MAX_WAIT,
) -> float:
    """Seconds before a failed delivery is tried again: 5 s doubling to an hour, with jitter,
    or the destination's ``Retry-After`` up to ``ceiling``."""
    backoff = min(3600.0, 5.0 * 2 ** min(attempts, 20))
    asked = min(server_seconds(retry_after) or 0.0, ceiling)
    return max(asked, rng.uniform(backoff / 2, backoff))


def server_seconds(value: float | None) -> float | None:
    """A server's number of seconds as a float (``inf`` past a float's range), or None when
    it means nothing (missing, NaN, negative)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int with hundreds of digits (a <ttl> of 10**400 minutes)
        return math.inf
    return None if math.isnan(seconds) or seconds < 0 else seconds


def due_at(now: datetime, delay: float) -> datetime:
    """``now`` plus ``delay`` seconds, held within a century so it can never overflow."""
    return now + timedelta(seconds=min(delay, _LATEST) if delay >= 0 else 0.0)


def with_note(warning: str | None, note: str | None) -> str | None:
    """``warning`` with its capped-delay note, if any, replaced by ``note``: a 304 keeps
    the parse warnings of the last full fetch, but the note is this poll's."""
    parts = [p for p in (warning or "").split("; ") if p and not p.startswith(CAPPED)]
    return "; ".join([*parts, note] if note else parts) or None


@dataclass(frozen=True, slots=True)
class Silence:
    """How long a feed may publish nothing new before it counts as silent, from its history."""

    threshold: float  # seconds since the last new item
    usual_gap: float  # the median gap between new items, shown beside the alarm


def silence_threshold(sightings: Iterable[datetime], floor: float) -> Silence | None:
    """When a feed that last published at the latest of ``sightings`` (the times its new
    items were first seen) has been quiet for too long; None before it has a history.

    The threshold is ``SILENCE_FACTOR`` times the 90th percentile (nearest rank) of the
    gaps between sightings, never under ``floor``: a feed that publishes daily with
    long weekends is silent after about a week, a weekly one after two, and one that
    publishes every few minutes after ``floor``. A feed with fewer than
    ``SILENCE_MIN_GAPS`` gaps is not judged: with the floor alone, every weekly or
    monthly feed would raise a false alarm days after it was added.
    """
    times = sorted(set(sightings))
    gaps = sorted((b - a).total_seconds() for a, b in pairwise(times))
    if len(gaps) < SILENCE_MIN_GAPS:
        return None
    high = gaps[math.ceil(SILENCE_PERCENTILE * len(gaps)) - 1]
    return Silence(max(floor, SILENCE_FACTOR * high), statistics.median(gaps))


def rough(seconds: float) -> str:
    """A wait at a glance: ``36h``, ``365d``, ``31710y``."""
    if seconds >= 1e6 * _YEAR:
        return "forever"
    for unit, size in (("y", _YEAR), ("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
