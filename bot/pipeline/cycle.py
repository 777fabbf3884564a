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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.alerts.digest import next_digest_at
from bot.alerts.flood import fold
from bot.alerts.summarize import summarize
from bot.config.schema import Feed, Rule, Settings
from bot.errors import DeliveryError, FetchError
from bot.feeds.parse import Draft, read_feed
from bot.logs import scrub
from bot.model import Alert, Item, Match, QueuedAlert, Summary
from bot.notify import Attempt, Notifier
from bot.rules.match import RuleSet
from bot.store import FeedState, OutboxEntry, PollOutcome, PollRecord, Store
from bot.timing import NextPoll, due_at, next_poll, retry_delay, with_note

log = logging.getLogger("newswatch.pipeline")

DELIVERY_BATCH = 50
OUTBOX_LEASE = 30.0
FEED_LEASE_CAP = 60.0
LEASE_ENV = "NEWSWATCH_TEST_LEASE"  # internal: lets the end-to-end tests shorten every lease

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Leases:
    """How long a claim on a feed or an outbox row lasts without a heartbeat.

    Work in flight renews its leases every third of their length, so a lease
    only needs to outlive a few missed heartbeats; when a replica dies, its work
    is picked up by another once the lease ends.
    """

    outbox: float = OUTBOX_LEASE
    feed_cap: float = FEED_LEASE_CAP

    def feed(self, fetch_timeout: float) -> float:
        """A bit over one fetch, capped: a slow feed keeps its lease through heartbeats."""
        return min(max(fetch_timeout + 10.0, self.outbox), self.feed_cap)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Leases:
        raw = environ.get(LEASE_ENV)
        return cls(float(raw), float(raw)) if raw else cls()


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_owner() -> str:
    """A name for this process in leases: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class FetchResultLike(Protocol):
    """What the pipeline reads of a fetch (read-only, so a frozen dataclass fits)."""

    @property
    def not_modified(self) -> bool: ...

    @property
    def body(self) -> bytes: ...

    @property
    def url(self) -> str: ...

    @property
    def content_type(self) -> str | None: ...

    @property
    def etag(self) -> str | None: ...

    @property
    def last_modified(self) -> str | None: ...

    @property
    def max_age(self) -> float | None: ...


class PipelineEvents(Protocol):
    """What the pipeline reports as it works (metrics, progress); every method is cheap."""

    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None: ...
    def matched(self, rule_id: str) -> None: ...
    def delivered(self, destination: str, outcome: str, count: int) -> None: ...
    def folded(self, feed_id: str, destination: str, count: int) -> None: ...


class NoEvents:
    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None:
        pass

    def matched(self, rule_id: str) -> None:
        pass

    def delivered(self, destination: str, outcome: str, count: int) -> None:
        pass

    def folded(self, feed_id: str, destination: str, count: int) -> None:
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


def _summarized(queued: Sequence[QueuedAlert], items: Mapping[str, Item]) -> list[QueuedAlert]:
    """``queued`` with the summaries of their items; one per item and terms, overflows as is."""
    summaries: dict[tuple[str, tuple[str, ...]], Summary] = {}
    out = []
    for q in queued:
        alert = q.alert
        if alert.is_overflow:
            out.append(q)
            continue
        key = (alert.item_key, alert.terms)
        if key not in summaries:
            summaries[key] = summarize(items[alert.item_key], alert.terms)
        out.append(replace(q, alert=replace(alert, summary=summaries[key])))
    return out


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
        leases: Leases | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.notifiers = notifiers
        self.owner = owner or new_owner()
        self.clock = clock
        self.rng = rng or random.Random()
        self.events: PipelineEvents = events or NoEvents()
        self.leases = leases or Leases.from_environ(os.environ)
        self.sleep = sleep
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
        lease = self.leases.feed(self.settings.http.timeout)
        if dry_run:
            known = {s.feed_id: s for s in self.store.feed_states()}
            states = [known.get(f.id) or FeedState(f.id, f.url) for f in self.feeds.values()]
        else:
            states = self.store.claim_feeds(
                self.owner, now, lease, max(1, len(self.feeds)), due_only=due_only
            )
            states = [s for s in states if s.feed_id in self.feeds]
        polling: set[str] = set() if dry_run else {s.feed_id for s in states}
        async with self._heartbeat("feeds", polling, lease, self.store.renew_feeds):
            reports = await asyncio.gather(
                *(self._poll_feed(s, polling, backfill=backfill, dry_run=dry_run) for s in states)
            )
        return CycleReport(list(reports))

    async def _poll_feed(
        self, state: FeedState, polling: set[str], *, backfill: float | None, dry_run: bool
    ) -> FeedReport:
        feed = self.feeds[state.feed_id]
        started = time.monotonic()
        report = await self._poll_feed_guarded(feed, state, backfill, dry_run)
        polling.discard(feed.id)
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
        if result.not_modified:
            if not dry_run:
                plan = self._next_poll(feed, max_age=result.max_age)
                self._record(
                    feed.id,
                    now,
                    plan.delay,
                    not_modified=True,
                    warning=with_note(state.warning, plan.note),
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
        plan = self._next_poll(feed, max_age=result.max_age, ttl=parsed.ttl_seconds)
        record = self._record(
            feed.id,
            now,
            plan.delay,
            etag=result.etag,
            last_modified=result.last_modified,
            title=parsed.title,
            warning=with_note(parsed.warning, plan.note),
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
        """The alerts ``items`` raise, at most the flood ceiling of singles per destination.

        Summaries are made last, only for the alerts sent on their own: the matches
        a flood folds away cost no summarizing.
        """
        tags = frozenset(feed.tags)
        queued: list[QueuedAlert] = []
        matched: dict[str, Item] = {}
        for item in items:
            for match in self.ruleset.match(item, tags):
                self.events.matched(match.rule_id)
                matched.setdefault(item.key, item)
                queued.extend(self._queue_match(item, match, source, now))
        queued = self._fold(feed, queued, now)
        return _summarized(queued, matched)

    def _fold(self, feed: Feed, queued: list[QueuedAlert], now: datetime) -> list[QueuedAlert]:
        ceiling = self.settings.delivery.max_alerts_per_poll
        queued, folds = fold(queued, ceiling, now)
        for folded in folds:
            log.warning(
                "feed %s: %d matches for %s over the ceiling of %d alerts per poll,"
                " folded into one message",
                feed.id,
                folded.alerts,
                folded.destination,
                ceiling,
                extra={
                    "feed": feed.id,
                    "destination": folded.destination,
                    "folded": folded.alerts,
                    "event": "alerts_folded",
                },
            )
            self.events.folded(feed.id, folded.destination, folded.alerts)
        return queued

    def _queue_match(
        self, item: Item, match: Match, source: str, now: datetime
    ) -> list[QueuedAlert]:
        """One alert per destination of the rule, its summary still to be made."""
        rule = self.rules[match.rule_id]
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
                summary=Summary(""),
                terms=match.terms,
            )
            deliver_at = next_digest_at(digest, now) if digest is not None else now
            out.append(QueuedAlert(alert, story, deliver_at, digest=digest is not None))
        return out

    def _record_failure(self, feed: Feed, state: FeedState, err: FetchError) -> None:
        now = self.clock()
        plan = self._next_poll(
            feed, failures=state.consecutive_failures + 1, retry_after=err.retry_after
        )
        self._record(
            feed.id,
            now,
            plan.delay,
            error=err.reason,
            error_detail="; ".join(filter(None, (err.detail[:400], plan.note))),
            failure_notified=self._failure_due(feed, state, err, now),
        )

    def _next_poll(self, feed: Feed, **hints: Any) -> NextPoll:
        """When to poll ``feed`` next; a server's wish past ``http.max_delay`` is capped, logged."""
        plan = next_poll(
            self.settings.feed_interval(feed),
            self.settings.schedule.jitter,
            self.rng,
            ceiling=self.settings.http.max_delay,
            **hints,
        )
        if plan.note:
            log.warning(
                "feed %s: %s",
                feed.id,
                plan.note,
                extra={"feed": feed.id, "event": "delay_capped"},
            )
        return plan

    def _record(self, feed_id: str, now: datetime, delay: float, **fields: Any) -> PollRecord:
        """Write one poll's outcome under this process's lease, next poll ``delay`` from now."""
        outcome = PollOutcome(feed_id, self.owner, now, due_at(now, delay), **fields)
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
        """Send a notice, with the secrets the logs hide (a key in a feed URL) hidden too."""
        title, text = scrub(title), scrub(text)
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

    # -- leases ---------------------------------------------------------------
    @asynccontextmanager
    async def _heartbeat(
        self,
        what: str,
        held: set[Any],
        lease: float,
        renew: Callable[[Sequence[Any], str, datetime], set[Any]],
    ) -> AsyncIterator[None]:
        """Keep the leases on ``held`` (work in flight, emptied as it finishes) while the
        body runs, so a short lease never lapses under a slow feed or a long batch."""
        if not held:
            yield
            return
        task = asyncio.create_task(self._renew_every(what, held, lease, renew))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])

    async def _renew_every(
        self,
        what: str,
        held: set[Any],
        lease: float,
        renew: Callable[[Sequence[Any], str, datetime], set[Any]],
    ) -> None:
        while True:
            await self.sleep(lease / 3)
            ids = sorted(held)
            try:
                kept = renew(ids, self.owner, self.clock() + timedelta(seconds=lease))
            except Exception as err:  # the store is down: the next beat tries again
                log.warning("cannot renew %s leases: %s", what, err, extra={"event": "lease"})
                continue
            lost = set(ids) - kept
            if lost:
                # Taken over after a stall: the new owner sends them; our late marks are void.
                held.difference_update(lost)
                log.warning(
                    "lease lost on %d %s; another process has them now",
                    len(lost),
                    what,
                    extra={"event": "lease_lost", "count": len(lost)},
                )

    # -- delivery -----------------------------------------------------------
    async def deliver(self, *, due_only: bool = True) -> DeliveryReport:
        """Send outbox rows once; failures are rescheduled or marked dead.

        Rows are claimed in batches, each after the last one's ids, so a row that
        failed in this pass is not tried twice in it; a heartbeat renews the
        batch's leases while it is sent (a channel takes one message a second).
        ``due_only=False`` also takes rows waiting for a retry (``once``: the run
        itself is the retry). Rows still unsent when the pass is cancelled (a
        shutdown) are handed back at once.
        """
        report = DeliveryReport()
        cursor = 0
        lease = self.leases.outbox
        while entries := self.store.claim_outbox(
            self.owner,
            self.clock(),
            lease,
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
                async with self._heartbeat("outbox rows", unsent, lease, self.store.renew_outbox):
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
        for claimed in batches:
            held = self.store.start_attempt([e.id for e in claimed], self.owner, self.clock())
            unsent.difference_update(e.id for e in claimed if e.id not in held)
            batch = [e for e in claimed if e.id in held]  # the rest was taken over: not ours
            if not batch:
                continue
            try:
                await asyncio.to_thread(notifier.send, [e.alert for e in batch], _attempt(batch))
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
        self.store.mark_retry(ids, self.owner, at, str(err), uncertain=err.maybe_delivered)
        report.retrying += len(batch)
        report.next_retry_at = min(filter(None, (report.next_retry_at, at)))
        return "retry"


def _attempt(batch: Sequence[OutboxEntry]) -> Attempt:
    """What the notifier needs to know of these rows: their ids, and since when to look for
    a message an earlier attempt may have posted without hearing back."""
    uncertain = [e.first_attempt_at or e.created_at for e in batch if e.uncertain]
    return Attempt(tuple(e.id for e in batch), min(uncertain) if uncertain else None)
