"""The attention budget: when an alert goes out (priority, quiet hours), which caps it counts
against, and when a rule's coverage is a spike.

Pure: no I/O, ``now`` passed in. Every replica computes the same answers from the same
settings, so the store only has to count.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.alerts.digest import next_digest_at
from bot.config.schema import WEEKDAYS, Cap, Destination, DigestEvery, Quiet, Rule, Spike
from bot.model import CapCount, Folded, Held, Priority, QueuedAlert, SpikeFacts, as_utc

_DAY = DigestEvery(every=86400.0)
BASELINE_DAYS = 14
"""How far back a rule's usual story count is taken from (``spike``)."""
HOUR = 3600
URGENCY: Mapping[Priority, int] = {"urgent": 0, "normal": 1, "digest": 2}
"""Priorities, most urgent first: of the rules matching one item, the most urgent leads."""


@dataclass(frozen=True, slots=True)
class Route:
    """When an alert to one destination goes out: at ``deliver_at``, on its own or (``digest``)
    with the other alerts due then; ``held`` says why one that would have gone at once waits."""

    deliver_at: datetime
    digest: bool
    held: Held | None = None


def route(priority: Priority, destination: Destination, now: datetime) -> Route:
    """Urgent: at once. Normal: at once, or into the destination's digest when it has one,
    held to the end of quiet hours when it falls in them. Digest: into the destination's
    digest, else one at the end of its next quiet hours, else a daily one (UTC midnight)."""
    now = as_utc(now)
    if priority == "urgent":
        return Route(now, False)
    quiet = destination.quiet
    schedule = getattr(destination, "digest", None)
    if priority == "digest":
        if schedule is not None:
            at = next_digest_at(schedule, now)
        elif quiet is not None:
            at = next_quiet_end(quiet, now)
        else:
            at = next_digest_at(_DAY, now)
        return Route(_after_quiet(quiet, at), True)
    if schedule is not None:
        return Route(_after_quiet(quiet, next_digest_at(schedule, now)), True)
    end = quiet_until(quiet, now) if quiet is not None else None
    return Route(now, False) if end is None else Route(end, True, "quiet")


def notified(rule: Rule, destinations: Mapping[str, Destination]) -> list[str]:
    """The destinations the rule's alerts go to (every one when it names none)."""
    return list(rule.notify if rule.notify is not None else destinations)


def caps(rule: Rule, dest_id: str, destination: Destination, now: datetime) -> tuple[CapCount, ...]:
    """The caps an alert of ``rule`` to ``dest_id`` counts against if it goes out on its own:
    the destination's, and the rule's own in that destination."""
    found = []
    if destination.cap is not None:
        found.append(_count(f"destination:{dest_id}", destination.cap, destination.quiet, now))
    if rule.cap is not None:
        found.append(_count(f"rule:{rule.id}:{dest_id}", rule.cap, destination.quiet, now))
    return tuple(found)


def _count(key: str, cap: Cap, quiet: Quiet | None, now: datetime) -> CapCount:
    end = next_digest_at(DigestEvery(every=cap.per), now)
    return CapCount(key, cap.max, end, _after_quiet(quiet, end))


def quiet_until(quiet: Quiet, at: datetime) -> datetime | None:
    """The end (UTC) of the quiet hours ``at`` falls in, through any that follow without a
    break; None when ``at`` is outside them."""
    at = as_utc(at)
    end: datetime | None = None
    for _ in WEEKDAYS:  # quiet every day all day is refused by the schema
        later = next((e for s, e in _periods(quiet, at) if s <= at < e), None)
        if later is None:
            break
        end = at = later
    return end


def next_quiet_end(quiet: Quiet, now: datetime) -> datetime:
    """The end of the quiet hours ``now`` is in, else of the next ones to begin."""
    now = as_utc(now)
    inside = quiet_until(quiet, now)
    if inside is not None:
        return inside
    # two weeks ahead: a week's only quiet hours may fall in an hour the clock skips
    start = min(s for s, _ in _periods(quiet, now, ahead=15) if s > now)
    end = quiet_until(quiet, start)
    assert end is not None, "quiet hours hold their own start"
    return end


def _after_quiet(quiet: Quiet | None, at: datetime) -> datetime:
    end = quiet_until(quiet, at) if quiet is not None else None
    return at if end is None else end


def _periods(quiet: Quiet, at: datetime, ahead: int = 1) -> Iterator[tuple[datetime, datetime]]:
    """Quiet periods (start, end, UTC) that begin on local days around ``at``: from the day
    before to ``ahead`` days after. A local time the clock skips is read with the offset before
    the change (02:30 on a spring-forward night is 03:30); one it repeats is its first."""
    zone = ZoneInfo(quiet.timezone)
    today = at.astimezone(zone).date()
    begin, finish = _clock(quiet.from_), _clock(quiet.to)
    for offset in range(-1, ahead + 1):
        day = today + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in quiet.days:
            continue
        end_day = day if finish > begin else day + timedelta(days=1)
        start, end = _local(day, begin, zone), _local(end_day, finish, zone)
        if start < end:  # none when the clock skips them all (02:30-03:00 spring forward)
            yield start, end


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def hour_of(moment: datetime) -> int:
    """The hour (since the epoch, UTC) a story is counted in for spikes."""
    return int(as_utc(moment).timestamp()) // HOUR


def window_counts(
    hours: Mapping[int, int], now: datetime, window: float, since: int | None = None
) -> tuple[int, list[int]]:
    """A rule's stories in the window ending at ``now``'s hour, and in each earlier window of
    the same length over the past 14 days (those beginning at or after the hour ``since``,
    when the rule's stories began to be counted), from its counts by hour (:func:`hour_of`)."""
    current = hour_of(now)
    width = max(1, round(window / HOUR))

    def total(end: int) -> int:
        return sum(hours.get(h, 0) for h in range(end - width + 1, end + 1))

    ends = [current - i * width for i in range(1, BASELINE_DAYS * 24 // width + 1)]
    earlier = [total(end) for end in ends if since is None or end - width + 1 >= since]
    return total(current), earlier


def usual(counts: list[int]) -> float:
    """The median: one earlier burst does not raise the bar for the next."""
    return float(statistics.median(counts)) if counts else 0.0


def is_spike(count: int, baseline: float, spike: Spike) -> bool:
    """More than ``factor`` times the usual count, and at least ``min``: a quiet rule's
    first few stories are no spike."""
    return count >= spike.min and count > spike.factor * baseline


BASELINE_MIN = 4
"""Earlier windows a rule must have been counted for before its coverage can spike: without
them every busy window of its first days would be one."""


def spike_facts(
    hours: Mapping[int, int], now: datetime, spike: Spike, since: int
) -> SpikeFacts | None:
    """What makes the window ending now a spike for a rule counted since the hour ``since``
    (None when it is none, or the rule has not been counted for :data:`BASELINE_MIN` windows)."""
    count, earlier = window_counts(hours, now, spike.window, since)
    if len(earlier) < BASELINE_MIN:
        return None
    baseline = usual(earlier)
    return SpikeFacts(count, baseline, spike.window) if is_spike(count, baseline, spike) else None


SPIKE_LISTED = 10
"""Top stories a spike alert lists."""


def spike_alert(template: QueuedAlert, facts: SpikeFacts, top: Sequence[Folded]) -> QueuedAlert:
    """The spike alert of ``template`` (the rule's, routed to one destination), saying what
    made the spike and listing the top stories (most outlets first)."""
    return replace(
        template,
        alert=replace(
            template.alert,
            spike=facts,
            folded=tuple(top[:SPIKE_LISTED]),
            folded_count=facts.count,
        ),
    )
