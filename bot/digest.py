"""When a digest batch closes: fixed periods since the epoch, or crontab schedules.

Crontab expressions follow classic cron semantics; APScheduler 3's triggers do the
time-zone and DST arithmetic. Two of its deviations from cron are corrected here:
it numbers weekdays from Monday (cron: 0 and 7 are Sunday), and it requires both
day of month and day of week to match (cron: either, when both are restricted).
Like cron, a fixed-time schedule fires once when a wall time repeats (DST ends).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from bot.settings import DigestCron, DigestEvery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def next_digest_at(digest: DigestEvery | DigestCron, now: datetime) -> datetime:
    """The end (UTC) of the batch that an alert created at ``now`` belongs to; always after ``now``.

    ``every``: the next multiple of the period since the epoch, so every replica and
    every restart agree on the boundaries. ``cron``: the next time the schedule
    fires in its time zone, after ``now``.
    """
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    if isinstance(digest, DigestEvery):
        period = max(round(digest.every * 1_000_000), 1)
        elapsed = (now - _EPOCH) // _MICROSECOND
        return _EPOCH + _MICROSECOND * ((elapsed // period + 1) * period)
    trigger = cron_trigger(digest.cron, digest.timezone)
    fire = trigger.get_next_fire_time(None, now + _MICROSECOND)
    while fire is not None and _repeated_wall_time(fire, digest):
        fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + _MICROSECOND)
    if fire is None:
        raise ValueError(f"cron {digest.cron!r} never fires")
    return fire.astimezone(UTC)


def _repeated_wall_time(fire: datetime, digest: DigestCron) -> bool:
    """The second pass through a wall time when clocks go back, for a fixed-time schedule.

    Like cron, a schedule with a fixed minute and hour fires once on that night;
    one with a wildcard minute or hour fires in both passes.
    """
    minute, hour = digest.cron.split()[:2]
    if minute.startswith("*") or hour.startswith("*"):
        return False
    local = fire.astimezone(ZoneInfo(digest.timezone))
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def check_cron(expr: str, timezone: str = "UTC") -> str:
    """``expr`` when it is a valid 5-field crontab that fires at least once; ValueError otherwise.

    Meant for settings validation, so a bad digest schedule is a config error.
    """
    now = datetime.now(UTC)
    if cron_trigger(expr, timezone).get_next_fire_time(None, now) is None:
        raise ValueError(f"cron {expr!r} never fires")
    return expr


@lru_cache(maxsize=64)
def cron_trigger(expr: str, timezone: str = "UTC") -> BaseTrigger:
    """An APScheduler trigger with classic crontab semantics for ``expr``."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expr!r} needs 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    minute, hour, day, month, weekday = fields
    zone = ZoneInfo(timezone)
    days = weekday_names(weekday)

    def trigger(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=zone
        )

    if day.startswith("*") or weekday.startswith("*"):
        return trigger(day, days)
    return OrTrigger([trigger(day, "*"), trigger("*", days)])


def weekday_names(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday; lists, ranges, steps, names) as day names."""
    days: set[int] = set()
    for item in field.lower().split(","):
        base, slash, step_text = item.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"weekday step must be a positive number in {field!r}")
        step = int(step_text) if slash else 1
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, last = base.split("-", 1)
            low, high = _weekday(first), _weekday(last)
        else:
            low = _weekday(base)
            high = 7 if slash else low
        if low > high:
            raise ValueError(f"weekday range {base!r} runs backwards in {field!r}")
        days.update(day % 7 for day in range(low, high + 1, step))
    return "*" if len(days) == 7 else ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday(text: str) -> int:
    if text[:3] in _WEEKDAYS and len(text) == 3:
        return _WEEKDAYS.index(text)
    if text.isdigit() and int(text) <= 7:
        return int(text)
    raise ValueError(f"{text!r} is not a weekday (0-7 or sun-sat)")
