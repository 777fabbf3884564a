"""One poll cycle and one delivery pass, over the edges' interfaces.

Polling: claim feeds → conditional GET → parse → keep unseen items → match →
record items and queue alerts in one transaction per feed. Delivery: claim due
outbox rows → send → mark sent, retry later, or dead. Every feed and every
destination is isolated: one failing never stops or slows the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.digest import next_digest_at
from bot.errors import DeliveryError, FetchError
from bot.feedparse import Draft, read_feed
from bot.matcher import RuleSet
from bot.model import Alert, Item, Match
from bot.notify import Notifier
from bot.polling import next_poll_delay, retry_delay
from bot.settings import Feed, Rule, Settings
from bot.store import FeedState, OutboxEntry, PollOutcome, PollRecord, QueuedAlert, Store
from bot.summarize import summarize

log = logging.getLogger("newswatch.pipeline")

DELIVERY_BATCH = 50
DELIVERY_LEASE = 300.0

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_owner() -> str:
    """A name for this process in leases: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class FetchResultLike(Protocol):
    not_modified: bool
    body: bytes
    url: str
    content_type: str | None
    etag: str | None
    last_modified: str | None
    max_age: float | None


class PipelineEvents(Protocol):
    """What the pipeline reports as it works (metrics, progress); every method is cheap."""

    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None: ...
    def matched(self, rule_id: str) -> None: ...
    def delivered(self, destination: str, outcome: str, count: int) -> None: ...


class NoEvents:
    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None:
        pass

    def matched(self, rule_id: str) -> None:
        pass

    def delivered(self, destination: str, outcome: str, count: int) -> None:
        pass


class FeedFetcher(Protocol):
    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResultLike: ...


@dataclass
class FeedReport:
    feed_id: str
    status: str  # "ok", "not_modified", "baseline", or an error reason
    new_items: int = 0
    alerts: list[Alert] = field(default_factory=list)
    detail: str = ""


@dataclass
class CycleReport:
    feeds: list[FeedReport] = field(default_factory=list)

    @property
    def alerts(self) -> list[Alert]:
        return [a for f in self.feeds for a in f.alerts]

    @property
    def failed(self) -> list[FeedReport]:
        return [f for f in self.feeds if f.status not in ("ok", "not_modified", "baseline")]


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    next_retry_at: datetime | None = None


class Pipeline:
    """Polls and delivers for one process; everything it touches comes in through arguments."""

    def __init__(
        self,
        settings: Settings,
        rules: Sequence[Rule],
        store: Store,
        fetcher: FeedFetcher,
        notifiers: Mapping[str, Notifier],
        *,
        owner: str | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        events: PipelineEvents | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.notifiers = notifiers
        self.owner = owner or new_owner()
        self.clock = clock
        self.rng = rng or random.Random()
        self.events: PipelineEvents = events or NoEvents()
        self.feeds = {f.id: f for f in settings.feeds if f.enabled}
        self.set_rules(rules)

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Swap the rule set (a reload); applies from the next feed processed."""
        self.rules = {r.id: r for r in rules}
        self.ruleset = RuleSet(rules)

    # -- polling ------------------------------------------------------------
    async def poll(
        self, *, due_only: bool, backfill: float | None = None, dry_run: bool = False
    ) -> CycleReport:
        """Polls feeds (all, or those due) and queues their alerts; ``dry_run`` writes nothing."""
        now = self.clock()
        if dry_run:
            known = {s.feed_id: s for s in self.store.feed_states()}
            states = [known.get(f.id) or FeedState(f.id, f.url) for f in self.feeds.values()]
        else:
            lease = 2 * self.settings.http.timeout + 60
            states = self.store.claim_feeds(
                self.owner, now, lease, max(1, len(self.feeds)), due_only=due_only
            )
            states = [s for s in states if s.feed_id in self.feeds]
        reports = await asyncio.gather(
            *(self._poll_feed(s, backfill=backfill, dry_run=dry_run) for s in states)
        )
        return CycleReport(list(reports))

    async def _poll_feed(
        self, state: FeedState, *, backfill: float | None, dry_run: bool
    ) -> FeedReport:
        feed = self.feeds[state.feed_id]
        started = time.monotonic()
        report = await self._poll_feed_guarded(feed, state, backfill, dry_run)
        self.events.feed_done(feed.id, report.status, time.monotonic() - started, report.new_items)
        return report

    async def _poll_feed_guarded(
        self, feed: Feed, state: FeedState, backfill: float | None, dry_run: bool
    ) -> FeedReport:
        try:
            return await self._poll_feed_unguarded(feed, state, backfill, dry_run)
        except FetchError as err:
            log.warning(
                "feed %s failed: %s",
                feed.id,
                err,
                extra={"feed": feed.id, "reason": err.reason, "event": "feed_failed"},
            )
            if not dry_run:
                self._record_failure(feed, state, err)
            return FeedReport(feed.id, err.reason, detail=err.detail)
        except Exception as err:  # a bug on one feed must not stop the others
            log.exception("feed %s: internal error", feed.id, extra={"feed": feed.id})
            if not dry_run:
                self._record_failure(feed, state, FetchError("internal", repr(err)))
            return FeedReport(feed.id, "internal", detail=repr(err))

    async def _poll_feed_unguarded(
        self, feed: Feed, state: FeedState, backfill: float | None, dry_run: bool
    ) -> FeedReport:
        result = await self.fetcher.fetch(
            feed.url, etag=state.etag, last_modified=state.last_modified
        )
        now = self.clock()
        interval = self.settings.feed_interval(feed)
        jitter = self.settings.schedule.jitter
        if result.not_modified:
            if not dry_run:
                delay = next_poll_delay(interval, jitter, self.rng, max_age=result.max_age)
                self._record(
                    feed.id,
                    now,
                    delay,
                    not_modified=True,
                    warning=state.warning,
                    failure_notified=self._recovered(feed, state),
                )
            return FeedReport(feed.id, "not_modified")
        parsed = read_feed(
            result.body,
            feed_id=feed.id,
            url=result.url,
            content_type=result.content_type,
            text_limit=self.settings.limits.text,
        )
        items = self._unseen(feed.id, parsed.entries)
        window = backfill if backfill is not None else feed.backfill
        if not state.baselined:
            cutoff = now - timedelta(seconds=window or 0)
            candidates = [i for i in items if window and (i.published or now) >= cutoff]
        else:
            candidates = items
        source = feed.title or parsed.title or feed.id
        queued = self._alerts([draft.item() for draft in candidates], feed, source, now)
        report = FeedReport(
            feed.id, "ok" if state.baselined else "baseline", len(items), [q.alert for q in queued]
        )
        if dry_run:
            return report
        delay = next_poll_delay(
            interval, jitter, self.rng, max_age=result.max_age, ttl=parsed.ttl_seconds
        )
        record = self._record(
            feed.id,
            now,
            delay,
            etag=result.etag,
            last_modified=result.last_modified,
            title=parsed.title,
            warning=parsed.warning,
            items=items,
            alerts=queued,
            failure_notified=self._recovered(feed, state),
        )
        if not record.applied:
            log.warning("feed %s: lease lost, result dropped", feed.id, extra={"feed": feed.id})
            return FeedReport(feed.id, "lease_lost")
        log.info(
            "feed %s: %d new items, %d alerts queued",
            feed.id,
            record.new_items,
            record.queued,
            extra={
                "feed": feed.id,
                "new_items": record.new_items,
                "queued": record.queued,
                "event": "feed_polled",
            },
        )
        return report

    def _unseen(self, feed_id: str, drafts: Sequence[Draft]) -> list[Draft]:
        """The entries not seen before: the only ones whose text is ever converted."""
        seen = self.store.seen_keys(feed_id, [d.key for d in drafts])
        return [d for d in drafts if d.key not in seen]

    def _alerts(
        self, items: Sequence[Item], feed: Feed, source: str, now: datetime
    ) -> list[QueuedAlert]:
        tags = frozenset(feed.tags)
        queued: list[QueuedAlert] = []
        for item in items:
            for match in self.ruleset.match(item, tags):
                self.events.matched(match.rule_id)
                queued.extend(self._queue_match(item, match, source, now))
        return queued

    def _queue_match(
        self, item: Item, match: Match, source: str, now: datetime
    ) -> list[QueuedAlert]:
        rule = self.rules[match.rule_id]
        summary = summarize(item, match.terms)
        story = item.story_keys or (f"item:{item.feed_id}:{item.key}",)
        out = []
        for dest_id in rule.notify if rule.notify is not None else self.settings.destinations:
            digest = getattr(self.settings.destinations[dest_id], "digest", None)
            alert = Alert(
                rule_id=rule.id,
                rule_title=rule.title,
                destination=dest_id,
                feed_id=item.feed_id,
                source=source,
                item_key=item.key,
                title=item.title,
                link=item.link,
                published=item.published,
                first_seen=now,
                summary=summary,
                terms=match.terms,
            )
            deliver_at = next_digest_at(digest, now) if digest is not None else now
            out.append(QueuedAlert(alert, story, deliver_at, digest=digest is not None))
        return out

    def _record_failure(self, feed: Feed, state: FeedState, err: FetchError) -> None:
        now = self.clock()
        delay = next_poll_delay(
            self.settings.feed_interval(feed),
            self.settings.schedule.jitter,
            self.rng,
            failures=state.consecutive_failures + 1,
            retry_after=err.retry_after,
        )
        self._record(
            feed.id,
            now,
            delay,
            error=err.reason,
            error_detail=err.detail[:500],
            failure_notified=self._failure_due(feed, state, err, now),
        )

    def _record(self, feed_id: str, now: datetime, delay: float, **fields: Any) -> PollRecord:
        """Write one poll's outcome under this process's lease, next poll ``delay`` from now."""
        outcome = PollOutcome(feed_id, self.owner, now, now + timedelta(seconds=delay), **fields)
        return self.store.record_poll(outcome)

    # -- feed health notices ------------------------------------------------
    def _failure_due(
        self, feed: Feed, state: FeedState, err: FetchError, now: datetime
    ) -> bool | None:
        """Tell the on_feed_failure destinations once a feed has failed for long enough."""
        policy = self.settings.on_feed_failure
        since = state.failing_since or now
        if (
            policy is None
            or state.failure_notified
            or now - since < timedelta(seconds=policy.after)
        ):
            return None
        self._notice(
            policy.notify,
            f"Feed {feed.id} is failing",
            f"{feed.url} has failed since {since:%Y-%m-%d %H:%M} UTC "
            f"({state.consecutive_failures + 1} attempts); last error: {err}",
        )
        return True

    def _recovered(self, feed: Feed, state: FeedState) -> bool | None:
        policy = self.settings.on_feed_failure
        if policy is None or not state.failure_notified:
            return None
        self._notice(policy.notify, f"Feed {feed.id} has recovered", f"{feed.url} answers again.")
        return False

    def _notice(self, destinations: Sequence[str], title: str, text: str) -> None:
        for dest_id in destinations:
            try:
                self.notifiers[dest_id].send_notice(title, text)
            except DeliveryError as err:
                log.warning(
                    "notice to %s failed: %s",
                    dest_id,
                    err.code,
                    extra={"destination": dest_id, "code": err.code},
                )

    # -- delivery -----------------------------------------------------------
    async def deliver(self, *, due_only: bool = True) -> DeliveryReport:
        """Send outbox rows once; failures are rescheduled or marked dead.

        Rows are claimed in batches small enough to be sent well within their
        lease (a channel takes one message a second), each batch after the last
        one's ids, so a row that failed in this pass is not tried twice in it.
        ``due_only=False`` also takes rows waiting for a retry (``once``: the run
        itself is the retry). Rows still unsent when the pass is cancelled (a
        shutdown) are handed back at once.
        """
        report = DeliveryReport()
        cursor = 0
        while entries := self.store.claim_outbox(
            self.owner,
            self.clock(),
            DELIVERY_LEASE,
            DELIVERY_BATCH,
            due_only=due_only,
            after_id=cursor,
        ):
            cursor = entries[-1].id
            unsent = {e.id for e in entries}
            by_destination: dict[str, list[OutboxEntry]] = defaultdict(list)
            for entry in entries:
                by_destination[entry.alert.destination].append(entry)
            try:
                await asyncio.gather(
                    *(
                        self._deliver_to(dest, group, report, unsent)
                        for dest, group in by_destination.items()
                    )
                )
            except asyncio.CancelledError:
                self.store.release(sorted(unsent), self.owner)
                raise
        return report

    async def _deliver_to(
        self, dest_id: str, entries: list[OutboxEntry], report: DeliveryReport, unsent: set[int]
    ) -> None:
        notifier = self.notifiers.get(dest_id)
        if notifier is None:
            gone = DeliveryError(
                "unknown_destination",
                f"destination {dest_id!r} is no longer configured",
                retryable=True,
            )
            self.events.delivered(dest_id, self._fail(entries, gone, report), len(entries))
            unsent.difference_update(e.id for e in entries)
            return
        digest = getattr(self.settings.destinations.get(dest_id), "digest", None)
        batches = [entries] if digest is not None else [[e] for e in entries]
        for batch in batches:
            try:
                await asyncio.to_thread(notifier.send, [e.alert for e in batch])
            except DeliveryError as err:
                self.events.delivered(dest_id, self._fail(batch, err, report), len(batch))
                unsent.difference_update(e.id for e in batch)
                continue
            self.store.mark_sent([e.id for e in batch], self.owner, self.clock())
            unsent.difference_update(e.id for e in batch)
            self.events.delivered(dest_id, "sent", len(batch))
            report.sent += len(batch)
            log.info(
                "delivered %d alert(s) to %s",
                len(batch),
                dest_id,
                extra={"destination": dest_id, "event": "delivered", "count": len(batch)},
            )

    def _fail(self, batch: list[OutboxEntry], err: DeliveryError, report: DeliveryReport) -> str:
        """Reschedule or bury ``batch``; returns which ("retry" or "dead")."""
        now = self.clock()
        ids = [e.id for e in batch]
        dest = batch[0].alert.destination
        expired = (
            min(e.created_at for e in batch) + timedelta(seconds=self.settings.delivery.retry_for)
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
            self.store.mark_dead(ids, self.owner, now, str(err))
            report.dead += len(batch)
            return "dead"
        attempts = max(e.attempts for e in batch)
        at = now + timedelta(seconds=retry_delay(attempts, self.rng, err.retry_after))
        log.warning(
            "delivery to %s failed, retrying at %s: %s",
            dest,
            at.isoformat(),
            err,
            extra={"destination": dest, "code": err.code, "event": "delivery_retry"},
        )
        self.store.mark_retry(ids, self.owner, at, str(err))
        report.retrying += len(batch)
        report.next_retry_at = min(filter(None, (report.next_retry_at, at)))
        return "retry"
