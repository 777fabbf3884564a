"""Delivery: claim due outbox rows → send (in worker threads) → mark sent, retry later, or dead.

Alerts and notices (a feed failing or recovered) go through the same rows,
leases, retries and give-up. Every destination is isolated: one failing or slow
never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.errors import DeliveryError
from bot.model import Posted
from bot.notify import Attempt, Notifier
from bot.pipeline.base import Context, log
from bot.store import OutboxEntry
from bot.timing import retry_delay

DELIVERY_BATCH = 50


@dataclass(frozen=True, slots=True)
class Failed:
    """Why a row's send failed in this pass, and when it is due again."""

    destination: str
    error: str
    retry_at: datetime


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    failed: dict[int, Failed] = field(default_factory=dict)  # the rows to be retried, by id

    @property
    def next_retry_at(self) -> datetime | None:
        return min((f.retry_at for f in self.failed.values()), default=None)


class Deliverer:
    """Sends the outbox to the configured notifiers."""

    def __init__(self, ctx: Context, notifiers: Mapping[str, Notifier]) -> None:
        self.ctx = ctx
        self.notifiers = notifiers

    async def deliver(self, *, due_only: bool = True, log_retries: bool = True) -> DeliveryReport:
        """Send outbox rows once; failures are rescheduled or marked dead.

        Rows are claimed in batches, each after the last one's ids, so a row that
        failed in this pass is not tried twice in it; a heartbeat renews the
        batch's leases while it is sent (a channel takes one message a second).
        ``due_only=False`` also takes rows waiting for a retry (``once``: the run
        itself is the retry). Rows still unsent when the pass is cancelled (a
        shutdown) are handed back at once. ``log_retries=False`` logs each failure to
        be retried at debug level only: the caller sums them up (``once``).
        """
        retry_level = logging.WARNING if log_retries else logging.DEBUG
        report = DeliveryReport()
        tried: set[int] = set()
        await self._pass(report, tried, due_only, retry_level)
        if report.sent:
            # A story's later sightings wait for its alert; those whose alert was sent in
            # this pass go now, in a pass over sightings only.
            await self._pass(report, tried, due_only, retry_level, sightings_only=True)
        return report

    async def _pass(
        self,
        report: DeliveryReport,
        tried: set[int],
        due_only: bool,
        retry_level: int,
        *,
        sightings_only: bool = False,
    ) -> None:
        ctx = self.ctx
        cursor = 0
        lease = ctx.leases.outbox
        while claimed := await ctx.db.claim_outbox(
            ctx.owner,
            ctx.clock(),
            lease,
            DELIVERY_BATCH,
            due_only=due_only,
            after_id=cursor,
            sightings_only=sightings_only,
        ):
            # Due digest rows come whole with the first claim, whatever their ids.
            cursor = max((e.id for e in claimed if not e.digest), default=cursor)
            again = [e.id for e in claimed if e.id in tried]
            if again:
                await ctx.db.release(again, ctx.owner)
            entries = [e for e in claimed if e.id not in tried]
            tried.update(e.id for e in entries)
            unsent = {e.id for e in entries}
            sending: set[int] = set()  # handed to a send thread, which cancelling cannot stop
            by_destination: dict[str, list[OutboxEntry]] = defaultdict(list)
            for entry in entries:
                by_destination[entry.destination].append(entry)
            try:
                async with ctx.heartbeat("outbox rows", unsent, lease, ctx.db.renew_outbox):
                    await asyncio.gather(
                        *(
                            self._deliver_to(dest, group, report, unsent, sending, retry_level)
                            for dest, group in by_destination.items()
                        )
                    )
            except asyncio.CancelledError:
                # A send in flight may still land: its rows keep their lease and their
                # attempt mark, so nobody sends them again before the lease ends.
                await ctx.db.release(sorted(unsent - sending), ctx.owner)
                raise

    async def _deliver_to(
        self,
        dest_id: str,
        entries: list[OutboxEntry],
        report: DeliveryReport,
        unsent: set[int],
        sending: set[int],
        retry_level: int,
    ) -> None:
        notifier = self.notifiers.get(dest_id)
        if notifier is None:
            gone = DeliveryError(
                "unknown_destination",
                f"destination {dest_id!r} is no longer configured",
                retryable=True,
            )
            outcome = await self._fail(entries, gone, report, retry_level)
            self.ctx.events.delivered(dest_id, outcome, len(entries))
            unsent.difference_update(e.id for e in entries)
            return
        for claimed in self._batches(entries):
            held = await self.ctx.db.start_attempt(
                [e.id for e in claimed], self.ctx.owner, self.ctx.clock()
            )
            unsent.difference_update(e.id for e in claimed if e.id not in held)
            batch = [e for e in claimed if e.id in held]  # the rest was taken over: not ours
            if not batch:
                continue
            ids = {e.id for e in batch}
            sending.update(ids)
            landed: set[int] = set()  # rows of the digest parts already posted and recorded
            try:
                posted = await asyncio.to_thread(
                    _send, notifier, batch, self._part_sent(landed, unsent)
                )
            except DeliveryError as err:
                sending.difference_update(ids)
                if landed:
                    self._sent(dest_id, len(landed), "alert(s) of a digest cut short", report)
                if rest := [e for e in batch if e.id not in landed]:
                    outcome = await self._fail(rest, err, report, retry_level)
                    self.ctx.events.delivered(dest_id, outcome, len(rest))
                unsent.difference_update(ids)
                continue
            sending.difference_update(ids)
            await self.ctx.db.mark_sent(
                [e.id for e in batch], self.ctx.owner, self.ctx.clock(), posted
            )
            unsent.difference_update(ids)
            self._sent(dest_id, len(batch), _what(batch), report)

    def _sent(self, dest_id: str, count: int, what: str, report: DeliveryReport) -> None:
        self.ctx.events.delivered(dest_id, "sent", count)
        report.sent += count
        log.info(
            "delivered %d %s to %s",
            count,
            what,
            dest_id,
            extra={"destination": dest_id, "event": "delivered", "count": count},
        )

    def _part_sent(self, landed: set[int], unsent: set[int]) -> Callable[[Sequence[int]], None]:
        """Records a digest part as sent the moment it lands (called from the send thread),
        so a crash or a failure before the last part does not post the earlier ones again;
        the heartbeat stops renewing its rows, which are no longer leased."""
        loop = asyncio.get_running_loop()

        def record(ids: Sequence[int]) -> None:
            self.ctx.db.mark_sent_blocking(ids, self.ctx.owner, self.ctx.clock())
            landed.update(ids)
            loop.call_soon_threadsafe(unsent.difference_update, ids)

        return record

    @staticmethod
    def _batches(entries: list[OutboxEntry]) -> list[list[OutboxEntry]]:
        """What one send takes: the digest rows due (a digest's, or alerts held by quiet hours
        or a cap) all together, every other alert, sighting and notice on its own."""
        notices = [[e] for e in entries if e.notice is not None]
        # A digest lists its alerts, then the sightings (the order its rows are told in).
        held = [e for e in entries if e.digest and e.alert is not None]
        held += [e for e in entries if e.digest and e.sighting is not None]
        singles = [[e] for e in entries if not e.digest and e.notice is None]
        return notices + ([held] if held else []) + singles

    async def _fail(
        self, batch: list[OutboxEntry], err: DeliveryError, report: DeliveryReport, level: int
    ) -> str:
        """Reschedule or bury ``batch``; returns which ("retry" or "dead")."""
        ctx = self.ctx
        now = ctx.clock()
        ids = [e.id for e in batch]
        dest = batch[0].destination
        expired = (
            min(e.created_at for e in batch) + timedelta(seconds=ctx.settings.delivery.retry_for)
            <= now
        )
        if not err.retryable or expired:
            why = "not retryable" if not err.retryable else "retry_for exhausted"
            log.error(
                "delivery to %s failed for good (%s): %s",
                dest,
                why,
                err,
                extra={"destination": dest, "code": err.code, "event": "delivery_dead"},
            )
            await ctx.db.mark_dead(ids, ctx.owner, now, str(err))
            report.dead += len(batch)
            return "dead"
        attempts = max(e.attempts for e in batch)
        at = now + timedelta(seconds=retry_delay(attempts, ctx.rng, err.retry_after))
        log.log(
            level,
            "delivery to %s failed, retrying at %s: %s",
            dest,
            at.isoformat(),
            err,
            extra={"destination": dest, "code": err.code, "event": "delivery_retry"},
        )
        await ctx.db.mark_retry(ids, ctx.owner, at, str(err), uncertain=err.maybe_delivered)
        report.retrying += len(batch)
        report.failed.update((i, Failed(dest, str(err), at)) for i in ids)
        return "retry"


def _send(
    notifier: Notifier, batch: Sequence[OutboxEntry], part_sent: Callable[[Sequence[int]], None]
) -> Posted | None:
    """One blocking send (run in a worker thread): a notice, a sighting, or alerts and
    sightings as one message; returns where a single alert landed, when the destination
    threads."""
    first = batch[0]
    if first.notice is not None:
        notifier.send_notice(first.notice.title, first.notice.text)
        return None
    attempt = _attempt(batch, part_sent)
    alerts = [e.alert for e in batch if e.alert is not None]
    sightings = [e.sighting for e in batch if e.sighting is not None]
    if not sightings:
        return notifier.send(alerts, attempt)
    if first.digest:
        notifier.send(alerts, attempt, sightings=sightings)
        return None
    if first.parent is None:
        log.debug("a sighting of story %d has no alert left to reply to", sightings[0].story_id)
        return None
    notifier.send_sighting(sightings[0], first.parent.alert, first.parent.posted, attempt)
    return None


def _what(batch: Sequence[OutboxEntry]) -> str:
    if batch[0].notice is not None:
        return "notice"
    return "sighting" if len(batch) == 1 and batch[0].sighting is not None else "alert(s)"


def _attempt(batch: Sequence[OutboxEntry], part_sent: Callable[[Sequence[int]], None]) -> Attempt:
    """What the notifier needs to know of these rows: their ids, since when to look for
    a message an earlier attempt may have posted without hearing back, and whom to tell
    of each digest part that lands."""
    uncertain = [e.first_attempt_at or e.created_at for e in batch if e.uncertain]
    return Attempt(tuple(e.id for e in batch), min(uncertain) if uncertain else None, part_sent)
