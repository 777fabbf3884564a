"""When a digest batch closes: fixed periods since the epoch, or crontab schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config.schema import DigestCron, DigestEvery
from bot.model import as_utc
from bot.schedule import next_cron_fire

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def next_digest_at(digest: DigestEvery | DigestCron, now: datetime) -> datetime:
    """The end (UTC) of the batch that an alert created at ``now`` belongs to; always after ``now``.

    ``every``: the next multiple of the period since the epoch, so every replica and
    every restart agree on the boundaries. ``cron``: the next time the schedule
    fires in its time zone, after ``now``.
    """
    now = as_utc(now)
    if isinstance(digest, DigestEvery):
        period = max(round(digest.every * 1_000_000), 1)
        elapsed = (now - _EPOCH) // _MICROSECOND
        return _EPOCH + _MICROSECOND * ((elapsed // period + 1) * period)
    return next_cron_fire(digest.cron, digest.timezone, now)
