"""Every use of APScheduler: classic crontab triggers and the daemon's asyncio scheduler.

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

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

__all__ = [
    "EVENT_JOB_ERROR",
    "EVENT_JOB_MISSED",
    "AsyncIOScheduler",
    "JobExecutionEvent",
    "check_cron",
    "cron_trigger",
    "new_scheduler",
    "next_cron_fire",
    "weekday_names",
]

_MICROSECOND = timedelta(microseconds=1)
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def new_scheduler(misfire_grace: float) -> AsyncIOScheduler:
    """The daemon's scheduler: in memory, on the running loop, one instance of a job at a time."""
    return AsyncIOScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": AsyncIOExecutor()},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(misfire_grace),
        },
        timezone=UTC,
    )


def next_cron_fire(expr: str, timezone: str, after: datetime) -> datetime:
    """The first time (UTC) after ``after`` that crontab ``expr`` fires in ``timezone``."""
    trigger = cron_trigger(expr, timezone)
    fire = trigger.get_next_fire_time(None, after + _MICROSECOND)
    while fire is not None and _repeated_wall_time(fire, expr, timezone):
        fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + _MICROSECOND)
    if fire is None:
        raise ValueError(f"cron {expr!r} never fires")
    return fire.astimezone(UTC)


def _repeated_wall_time(fire: datetime, expr: str, timezone: str) -> bool:
    """The second pass through a wall time when clocks go back, for a fixed-time schedule.

    Like cron, a schedule with a fixed minute and hour fires once on that night;
    one with a wildcard minute or hour fires in both passes.
    """
    minute, hour = expr.split()[:2]
    if minute.startswith("*") or hour.startswith("*"):
        return False
    local = fire.astimezone(ZoneInfo(timezone))
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
