"""The pipeline of one process: polling (:mod:`bot.pipeline.poll`) and delivery
(:mod:`bot.pipeline.deliver`) over one store, one clock and one owner name.

Every store call is awaited in the store's own thread (:class:`AsyncStore`), every
send runs in a worker thread: the event loop only fetches, parses and matches.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from datetime import timedelta

from bot.config.schema import Rule, Settings
from bot.notify import Notifier
from bot.pipeline.base import (
    Clock,
    Context,
    Leases,
    NoEvents,
    PipelineEvents,
    Sleep,
    log,
    new_owner,
    utcnow,
)
from bot.pipeline.deliver import Deliverer, DeliveryReport
from bot.pipeline.poll import CycleReport, FeedFetcher, Poller
from bot.store import PruneReport, Store
from bot.store.aio import AsyncStore

PRUNE_TURN = "turn:prune"  # the store key electing the replica that prunes
PRUNE_EVERY = 3600.0  # how often the store is pruned, by the daemon and by ``once``


class Pipeline:
    """Polls and delivers for one process; everything it touches comes in through arguments.

    ``store`` is a :class:`Store`, awaited through a worker thread the pipeline
    owns (``close`` ends it), or an :class:`AsyncStore` its caller owns.
    """

    def __init__(
        self,
        settings: Settings,
        rules: Sequence[Rule],
        store: Store | AsyncStore,
        fetcher: FeedFetcher,
        notifiers: Mapping[str, Notifier],
        *,
        owner: str | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        events: PipelineEvents | None = None,
        leases: Leases | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._owns_db = not isinstance(store, AsyncStore)
        db = store if isinstance(store, AsyncStore) else AsyncStore(store)
        self.ctx = Context(
            settings=settings,
            db=db,
            owner=owner or new_owner(),
            clock=clock,
            rng=rng or random.Random(),
            events=events or NoEvents(),
            leases=leases or Leases.of(settings),
            sleep=sleep,
        )
        self.poller = Poller(self.ctx, rules, fetcher)
        self.deliverer = Deliverer(self.ctx, notifiers)

    @property
    def db(self) -> AsyncStore:
        return self.ctx.db

    @property
    def rules(self) -> Mapping[str, Rule]:
        return self.poller.rules

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Swap the rule set (a reload); applies from the next feed processed."""
        self.poller.set_rules(rules)

    async def poll(
        self, *, due_only: bool, backfill: float | None = None, dry_run: bool = False
    ) -> CycleReport:
        """Polls feeds (all, or those due) and queues their alerts; ``dry_run`` writes nothing."""
        return await self.poller.poll(due_only=due_only, backfill=backfill, dry_run=dry_run)

    async def deliver(self, *, due_only: bool = True, log_retries: bool = True) -> DeliveryReport:
        """Sends the outbox rows due (``due_only=False``: those waiting for a retry too);
        ``log_retries=False``: the caller sums up the failures instead of a warning each."""
        return await self.deliverer.deliver(due_only=due_only, log_retries=log_retries)

    async def prune(self, every: float = PRUNE_EVERY) -> PruneReport | None:
        """Forget what ``retention`` lets go, when this process takes the turn (one process
        per ``every`` s across the replicas sharing the store); None when another had it.
        The turn is a tenth shorter than ``every``, so a job ticking a little late never
        loses its turn."""
        now = self.ctx.clock()
        if not await self.db.take_turn(PRUNE_TURN, every * 0.9, now):
            return None
        keep = self.ctx.settings.retention
        report = await self.db.prune(
            now, now - timedelta(seconds=keep.sent), now - timedelta(seconds=keep.seen)
        )
        log.log(
            logging.INFO if report.total else logging.DEBUG,  # a `once` from cron stays quiet
            "pruned %d outbox rows, %d stories, %d rate slots, %d items, %d removed feeds,"
            " %d daily counters",
            report.outbox,
            report.stories,
            report.rate_slots,
            report.items,
            report.feeds,
            report.stats,
            extra={"event": "pruned", "rows": report.total},
        )
        return report

    def close(self) -> None:
        """End the store's worker thread, once the calls made have run (when it is ours)."""
        if self._owns_db:
            self.ctx.db.close()
