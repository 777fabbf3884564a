"""The composition root: turns a validated config into the running parts."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from bot.config.load import Config
from bot.config.schema import EmailDestination, secret_values
from bot.fetch.client import Fetcher
from bot.notify import Notifier, build_notifiers
from bot.notify.email import auth_strings
from bot.notify.ratelimit import StoreRateLimiter
from bot.pipeline.base import Clock, PipelineEvents, Sleep, utcnow
from bot.pipeline.cycle import Pipeline
from bot.pipeline.deliver import Failed
from bot.pipeline.poll import CycleReport
from bot.store import DigestHeld, FeedRow, Store, open_store

log = logging.getLogger("newswatch.app")

ONCE_RETRY_WINDOW = timedelta(seconds=30)
"""How long ``once`` waits, from its first delivery pass, for failed sends to come due again;
a retry due later (a Slack pause of a minute) stays in the outbox for the next run."""
ONCE_ATTEMPTS = 2
"""Tries of one alert in one ``once`` run: a destination that is down costs a run two sends
per alert and the window, at most; the alerts stay in the outbox for the next run."""


def config_secrets(config: Config) -> Iterator[str]:
    """Every value logs, command output and notices must hide: the secret fields, the base64
    forms SMTP AUTH sends them in, and the values ``${VAR}`` took from the environment."""
    yield from secret_values(config.settings)
    for destination in config.settings.destinations.values():
        if isinstance(destination, EmailDestination):
            yield from auth_strings(destination.smtp)
    yield from config.secrets


def open_synced_store(config: Config, *, read_only: bool = False) -> Store:
    """The configured store, migrated, with the configured feeds synced into it."""
    store = open_store(config.settings.store, read_only=read_only)
    if not read_only:
        sync_feeds(config, store)
    return store


def sync_feeds(config: Config, store: Store) -> None:
    """Make the store's active feeds the configured ones (one transaction)."""
    store.sync_feeds([FeedRow(f.id, f.url) for f in config.settings.feeds if f.enabled], utcnow())


def open_notifiers(config: Config, store: Store) -> dict[str, Notifier]:
    """The configured destinations, Slack channels paced through ``store``.

    Pacing through the store holds Slack's one message a second per channel
    across every process that shares it (replicas, overlapping ``once``). Sends
    run in worker threads; the store serialises its transactions.
    """
    limiter = StoreRateLimiter(store)
    return build_notifiers(config.settings.destinations, limiter)


@dataclass(frozen=True)
class Undelivered:
    """The alerts of one destination that ``once`` could not send and kept for the next run."""

    destination: str
    count: int
    attempts: int  # the most any of them was tried in this run
    error: str  # the last failure


@dataclass
class OnceResult:
    cycle: CycleReport
    sent: int
    undelivered: int
    failures: list[Undelivered] = field(default_factory=list)
    held: list[DigestHeld] = field(default_factory=list)


@asynccontextmanager
async def running_pipeline(
    config: Config,
    store: Store,
    notifiers: dict[str, Notifier],
    events: PipelineEvents | None = None,
    clock: Clock = utcnow,
) -> AsyncIterator[Pipeline]:
    async with Fetcher(config.settings.http) as fetcher:
        pipeline = Pipeline(
            config.settings, config.rules, store, fetcher, notifiers, events=events, clock=clock
        )
        try:
            yield pipeline
        finally:
            await asyncio.to_thread(pipeline.close)  # waits for the store's last call


async def run_once(
    config: Config,
    store: Store,
    notifiers: dict[str, Notifier],
    *,
    backfill: float | None,
    dry_run: bool,
    events: PipelineEvents | None = None,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
) -> OnceResult:
    """Polls every feed, then tries every pending alert, each at most :data:`ONCE_ATTEMPTS`
    times: a failed one again once the last retry due within :data:`ONCE_RETRY_WINDOW` of
    the first try is due. What still fails is summed up per destination, not logged per try."""
    async with running_pipeline(config, store, notifiers, events, clock) as pipeline:
        cycle = await pipeline.poll(due_only=False, backfill=backfill, dry_run=dry_run)
        if dry_run:
            return OnceResult(cycle, 0, 0)
        deadline = clock() + ONCE_RETRY_WINDOW
        report = await pipeline.deliver(due_only=False, log_retries=False)
        sent, failing, tries = report.sent, report.failed, Counter(report.failed.keys())
        for _ in range(ONCE_ATTEMPTS - 1):
            due = [f.retry_at for f in failing.values() if f.retry_at <= deadline]
            if not due:
                break
            await sleep(max(0.0, (max(due) - clock()).total_seconds()))
            now = clock()
            report = await pipeline.deliver(log_retries=False)  # every row due by now
            sent += report.sent
            failing = {i: f for i, f in failing.items() if f.retry_at > now} | report.failed
            tries.update(report.failed.keys())
        await pipeline.prune()  # at most hourly across runs: a cron of `once` stays bounded too
        now = clock()
        counts = await pipeline.db.outbox_counts(now)
        held = await pipeline.db.held_for_digest(now)
        return OnceResult(cycle, sent, counts.pending, _undelivered(failing, tries), held)


def _undelivered(failing: Mapping[int, Failed], tries: Counter[int]) -> list[Undelivered]:
    by_destination: dict[str, list[int]] = {}
    for row, failed in failing.items():
        by_destination.setdefault(failed.destination, []).append(row)
    return [
        Undelivered(
            destination,
            len(rows),
            max(tries[r] for r in rows),
            failing[max(rows, key=lambda r: failing[r].retry_at)].error,
        )
        for destination, rows in sorted(by_destination.items())
    ]


def close_all(store: Store, notifiers: dict[str, Notifier]) -> None:
    for notifier in notifiers.values():
        notifier.close()
    store.close()


__all__ = [
    "OnceResult",
    "Undelivered",
    "close_all",
    "config_secrets",
    "open_notifiers",
    "open_synced_store",
    "run_once",
    "sync_feeds",
]
