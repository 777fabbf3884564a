"""The composition root: turns a validated config into the running parts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from bot.config.load import Config
from bot.config.schema import EmailDestination, secret_values
from bot.fetch.client import Fetcher
from bot.notify import Notifier, build_notifiers
from bot.notify.email import auth_strings
from bot.notify.ratelimit import StoreRateLimiter
from bot.pipeline.cycle import CycleReport, Pipeline, PipelineEvents, utcnow
from bot.store import FeedRow, Store, open_store

log = logging.getLogger("newswatch.app")

ONCE_RETRY_WINDOW = timedelta(seconds=30)


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


@dataclass
class OnceResult:
    cycle: CycleReport
    sent: int
    undelivered: int


@asynccontextmanager
async def running_pipeline(
    config: Config,
    store: Store,
    notifiers: dict[str, Notifier],
    events: PipelineEvents | None = None,
) -> AsyncIterator[Pipeline]:
    async with Fetcher(config.settings.http) as fetcher:
        yield Pipeline(config.settings, config.rules, store, fetcher, notifiers, events=events)


async def run_once(
    config: Config,
    store: Store,
    notifiers: dict[str, Notifier],
    *,
    backfill: float | None,
    dry_run: bool,
    events: PipelineEvents | None = None,
) -> OnceResult:
    """Polls every feed, then tries every pending alert (retrying while the wait is short)."""
    async with running_pipeline(config, store, notifiers, events) as pipeline:
        cycle = await pipeline.poll(due_only=False, backfill=backfill, dry_run=dry_run)
        if dry_run:
            return OnceResult(cycle, 0, 0)
        report = await pipeline.deliver(due_only=False)
        sent = report.sent
        while report.next_retry_at is not None and (
            report.next_retry_at - utcnow() < ONCE_RETRY_WINDOW
        ):
            await asyncio.sleep(max(0.0, (report.next_retry_at - utcnow()).total_seconds()))
            report = await pipeline.deliver()
            sent += report.sent
        counts = store.outbox_counts(utcnow())
        return OnceResult(cycle, sent, counts.pending)


def close_all(store: Store, notifiers: dict[str, Notifier]) -> None:
    for notifier in notifiers.values():
        notifier.close()
    store.close()


__all__ = [
    "OnceResult",
    "close_all",
    "config_secrets",
    "open_notifiers",
    "open_synced_store",
    "run_once",
    "sync_feeds",
]
