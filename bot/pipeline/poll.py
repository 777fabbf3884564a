"""Polling: claim feeds → conditional GET → parse → keep unseen items → match → record the
items, queue their alerts and any feed-health notice, in one transaction per feed.

Every feed is isolated: one failing (or raising a bug) never stops or slows the
others, and every store call is awaited off the event loop, so a slow write for
one feed never holds up the fetches of the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.alerts.attention import URGENCY, caps, notified, route
from bot.alerts.flood import fold
from bot.alerts.summarize import as_written, summarize
from bot.config.schema import Feed, Rule
from bot.config.units import format_duration
from bot.errors import FetchError, StoreError
from bot.feeds.identity import retitled, reused_key, rewritten, text_fingerprint
from bot.feeds.parse import Draft, read_feed
from bot.logs import scrub
from bot.model import Alert, Item, Match, QueuedAlert, Summary
from bot.pipeline.base import Context, log
from bot.rules.match import RuleSet
from bot.store import (
    TITLE_KEPT,
    FeedState,
    Notice,
    PollOutcome,
    PollRecord,
    SilenceState,
    SpikeWatch,
    StorySighting,
)
from bot.stories.cluster import signature
from bot.timing import (
    SILENCE_HISTORY,
    NextPoll,
    due_at,
    next_poll,
    rough,
    silence_threshold,
    with_note,
)

# Characters of an item's summary (or content, without one) that stand for its lead: a story is
# judged by how it is told first, and a signature costs in proportion to its text.
LEAD_CHARS = 300


@dataclass(frozen=True, slots=True)
class Retired:
    """A story a reused guid told before, recorded as seen under a key of its own."""

    key: str
    title: str
    link: str | None
    published: datetime | None = None


class FetchResultLike(Protocol):
    """What the poll reads of a fetch (read-only: a frozen result satisfies it)."""

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


def _summarized(queued: Sequence[QueuedAlert], items: Mapping[str, Item]) -> list[QueuedAlert]:
    """``queued`` with the summaries of their items and their terms as the items write them;
    one per item and terms, overflows as is."""
    summaries: dict[tuple[str, tuple[str, ...]], tuple[Summary, tuple[str, ...]]] = {}
    out = []
    for q in queued:
        alert = q.alert
        if alert.is_overflow:
            out.append(q)
            continue
        key = (alert.item_key, alert.terms)
        if key not in summaries:
            item = items[alert.item_key]
            summaries[key] = summarize(item, alert.terms), as_written(item, alert.terms)
        summary, written = summaries[key]
        out.append(replace(q, alert=replace(alert, summary=summary, terms_as_written=written)))
    return out


class Poller:
    """Polls the configured feeds and queues what they raise."""

    def __init__(self, ctx: Context, rules: Sequence[Rule], fetcher: FeedFetcher) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.fetcher = fetcher
        self.feeds = {f.id: f for f in ctx.settings.feeds if f.enabled}
        self.set_rules(rules)

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Swap the rule set (a reload); applies from the next feed processed."""
        self.rules = {r.id: r for r in rules}
        self.ruleset = RuleSet(rules)

    async def poll(
        self, *, due_only: bool, backfill: float | None = None, dry_run: bool = False
    ) -> CycleReport:
        """Polls feeds (all, or those due) and queues their alerts; ``dry_run`` writes nothing."""
        ctx = self.ctx
        now = ctx.clock()
        lease = ctx.leases.feed(self.settings.http.timeout)
        if dry_run:
            known = {s.feed_id: s for s in await ctx.db.feed_states()}
            states = [known.get(f.id) or FeedState(f.id, f.url) for f in self.feeds.values()]
        else:
            states = await ctx.db.claim_feeds(
                ctx.owner, now, lease, max(1, len(self.feeds)), due_only=due_only
            )
            states = [s for s in states if s.feed_id in self.feeds]
        polling: set[str] = set() if dry_run else {s.feed_id for s in states}
        # From its answer until its outcome is recorded, behind the store's one thread, a
        # feed holds a slot: at most ``http.concurrency`` feeds are parsed and waiting for
        # the store at once, or a store slower than fetching and parsing would pile up
        # every changed feed's entries. (Answers waiting for a slot hold their body only.)
        room = asyncio.Semaphore(self.settings.http.concurrency)
        async with ctx.heartbeat("feeds", polling, lease, ctx.db.renew_feeds):
            tasks = [
                asyncio.ensure_future(
                    self._poll_feed(s, polling, room, backfill=backfill, dry_run=dry_run)
                )
                for s in states
            ]
            try:
                reports = await asyncio.gather(*tasks)
            except BaseException:  # a failing store ends the cycle: no feed goes on unwatched
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self._hand_back(polling)
                raise
        return CycleReport(list(reports))

    async def _hand_back(self, polling: set[str]) -> None:
        """Release the feeds of a cycle cut short (cancelled by a reload's or a shutdown's
        drain, or ended by a failing store) that were claimed and never recorded: the next
        cycle polls them at once instead of leaving them unwatched until their lease ends.
        A store that cannot do it leaves them to the lease."""
        try:
            await self.ctx.db.release_feeds(sorted(polling), self.ctx.owner)
        except StoreError as err:
            log.warning("cannot release %d feed lease(s): %s", len(polling), err)

    async def _poll_feed(
        self,
        state: FeedState,
        polling: set[str],
        room: asyncio.Semaphore,
        *,
        backfill: float | None,
        dry_run: bool,
    ) -> FeedReport:
        feed = self.feeds[state.feed_id]
        started = time.monotonic()
        report = await self._poll_feed_guarded(feed, state, room, backfill, dry_run)
        polling.discard(feed.id)
        self.ctx.events.feed_done(
            feed.id, report.status, time.monotonic() - started, report.new_items
        )
        return report

    async def _poll_feed_guarded(
        self,
        feed: Feed,
        state: FeedState,
        room: asyncio.Semaphore,
        backfill: float | None,
        dry_run: bool,
    ) -> FeedReport:
        try:
            return await self._poll_feed_unguarded(feed, state, room, backfill, dry_run)
        except FetchError as err:
            log.warning(
                "feed %s failed: %s",
                feed.id,
                err,
                extra={"feed": feed.id, "reason": err.reason, "event": "feed_failed"},
            )
            if not dry_run:
                await self._record_failure(feed, state, err)
            return FeedReport(feed.id, err.reason, detail=err.detail)
        except StoreError:
            raise
        except Exception as err:  # a bug on one feed must not stop the others
            log.exception("feed %s: internal error", feed.id, extra={"feed": feed.id})
            if not dry_run:
                await self._record_failure(feed, state, FetchError("internal", repr(err)))
            return FeedReport(feed.id, "internal", detail=repr(err))

    async def _poll_feed_unguarded(
        self,
        feed: Feed,
        state: FeedState,
        room: asyncio.Semaphore,
        backfill: float | None,
        dry_run: bool,
    ) -> FeedReport:
        result = await self.fetcher.fetch(
            feed.url, etag=state.etag, last_modified=state.last_modified
        )
        async with room:
            return await self._read_and_record(feed, state, result, backfill, dry_run)

    async def _read_and_record(
        self,
        feed: Feed,
        state: FeedState,
        result: FetchResultLike,
        backfill: float | None,
        dry_run: bool,
    ) -> FeedReport:
        now = self.ctx.clock()
        if result.not_modified:
            if not dry_run:
                plan = self._next_poll(feed, max_age=result.max_age)
                await self._record(
                    feed.id,
                    now,
                    plan.delay,
                    not_modified=True,
                    warning=with_note(state.warning, plan.note),
                    **await self._health(feed, state, now, published=False),
                )
            return FeedReport(feed.id, "not_modified")
        parsed = read_feed(
            result.body,
            feed_id=feed.id,
            url=result.url,
            content_type=result.content_type,
            text_limit=self.settings.limits.text,
        )
        items, reused, retired = await self._unseen(feed.id, parsed.entries)
        window = backfill if backfill is not None else feed.backfill
        if not state.baselined:
            cutoff = now - timedelta(seconds=window or 0)
            candidates = [i for i in items if window and (i.published or now) >= cutoff]
        else:
            candidates = items
        source = feed.title or parsed.title or feed.id
        converted = {draft.key: draft.item() for draft in candidates}
        queued, matched, stories = self._alerts(list(converted.values()), feed, source, now)
        report = FeedReport(
            feed.id, "ok" if state.baselined else "baseline", len(items), [q.alert for q in queued]
        )
        if dry_run:
            return report
        plan = self._next_poll(feed, max_age=result.max_age, ttl=parsed.ttl_seconds)
        record = await self._record(
            feed.id,
            now,
            plan.delay,
            etag=result.etag,
            last_modified=result.last_modified,
            title=parsed.title,
            warning=with_note(parsed.warning, plan.note),
            items=[*items, *retired],
            served=[draft.key for draft in parsed.entries],
            alerts=queued,
            matched=matched,
            baseline=not state.baselined,
            story_window=self.settings.stories.window,
            stories=stories,
            # Each text converted once: a candidate's from its item, the rest's here.
            fingerprints={
                d.key: text_fingerprint(converted[d.key]) if d.key in converted else d.fingerprint()
                for d in items
            },
            reused=reused,
            spikes=self._spike_watches(matched, now),
            **await self._health(feed, state, now, published=bool(items)),
        )
        if not record.applied:
            log.warning("feed %s: lease lost, result dropped", feed.id, extra={"feed": feed.id})
            return FeedReport(feed.id, "lease_lost")
        for rule_id, count in record.queued_by_rule.items():
            self.ctx.events.queued(rule_id, count)
        self._held(feed.id, record)
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

    def _held(self, feed_id: str, record: PollRecord) -> None:
        """Tell of the alerts held by quiet hours or caps, and of spikes."""
        for (destination, reason), count in record.held.items():
            self.ctx.events.held(destination, reason, count)
            log.info(
                "feed %s: %d alerts to %s held (%s)",
                feed_id,
                count,
                destination,
                "quiet hours" if reason == "quiet" else "cap reached",
                extra={
                    "feed": feed_id,
                    "destination": destination,
                    "reason": reason,
                    "count": count,
                    "event": "alerts_held",
                },
            )
        for rule_id, spike in record.spikes.items():
            self.ctx.events.spiked(rule_id)
            log.info(
                "rule %s: spike, %d stories in %s (usually %g)",
                rule_id,
                spike.count,
                format_duration(spike.window),
                spike.usual,
                extra={"rule": rule_id, "stories": spike.count, "event": "spike"},
            )

    async def _unseen(
        self, feed_id: str, drafts: Sequence[Draft]
    ) -> tuple[list[Draft], dict[str, str], list[Retired]]:
        """The entries not seen before: the only ones whose text is ever converted, with a
        seen one whose guid now tells another story keyed anew; those new keys → the reused
        ones; and the stories the reused guids told before, to record as seen.

        Only an entry whose guid is known but whose title changed completely has its text
        compared with the one seen (a typo fixed or a lead updated keeps it seen).
        """
        seen = await self.ctx.db.seen_titles(feed_id, [d.key for d in drafts])
        unseen = [d for d in drafts if d.key not in seen]
        retold: dict[str, Draft] = {}
        retired: dict[str, Retired] = {}
        for d in drafts:
            known = seen.get(d.key)
            title = d.title[:TITLE_KEPT]  # as the store kept it
            if known is None or not retitled(d.key, known.title, title, known.link, d.link):
                continue
            text = d.fingerprint()
            if rewritten(known.fingerprint, text):
                key = reused_key(d.key, d.title, text)
                retold[key] = d
                # The story the guid told before, seen under a key of its own: should the
                # guid go back to it, it is known, not a new item.
                old = reused_key(d.key, known.title, known.fingerprint or "")
                retired[key] = Retired(old, known.title, known.link)
        again = await self.ctx.db.seen_keys(feed_id, list(retold)) if retold else set()
        reused: dict[str, str] = {}
        retiring: list[Retired] = []
        for key, draft in sorted(retold.items()):
            if key in again:
                continue
            log.info(
                "feed %s: guid %s reused for a different story",
                feed_id,
                draft.key.removeprefix("guid:"),
                extra={"feed": feed_id, "event": "guid_reused"},
            )
            unseen.append(replace(draft, key=key))
            reused[key] = draft.key
            retiring.append(retired[key])
        return unseen, reused, retiring

    def _alerts(
        self, items: Sequence[Item], feed: Feed, source: str, now: datetime
    ) -> tuple[list[QueuedAlert], list[tuple[str, str]], dict[str, StorySighting]]:
        """The alerts ``items`` raise, at most the flood ceiling of singles per destination;
        the (rule id, item key) pairs matched, for the store's daily counts; and what each
        matched item tells of its story.

        Summaries are made last, only for the alerts sent on their own: the matches
        a flood folds away cost no summarizing.
        """
        tags = frozenset(feed.tags)
        queued: list[QueuedAlert] = []
        matched: dict[str, Item] = {}
        pairs: list[tuple[str, str]] = []
        stories: dict[str, StorySighting] = {}
        for item in items:
            matches = self.ruleset.match(item, tags)
            if not matches:
                continue
            for match in matches:
                self.ctx.events.matched(match.rule_id)
                pairs.append((match.rule_id, item.key))
            matched[item.key] = item
            queued.extend(self._queue_item(item, matches, source, now))
            lead = (item.summary or item.content)[:LEAD_CHARS]
            stories[item.key] = StorySighting(
                signature(
                    item.title,
                    lead,
                    item.link,
                    item.language,
                    item.feed_id,
                    item.published or now,
                    (h.term for m in matches for h in m.hits),
                ),
                source,
                tuple(h.term for m in matches for h in m.hits if h.field == "title"),
                item.language,
            )
        queued = self._fold(feed, queued, now)
        return _summarized(queued, matched), pairs, stories

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
            self.ctx.events.folded(feed.id, folded.destination, folded.alerts)
        return queued

    def _queue_item(
        self, item: Item, matches: Sequence[Match], source: str, now: datetime
    ) -> list[QueuedAlert]:
        """One alert per destination of the rules ``item`` matched, naming each rule that
        notifies it (the most urgent, then the first in rule order, leads: its priority routes
        the alert), its summary still to be made; it names the item's language when that is
        not the destination's."""
        by_destination: dict[str, list[Match]] = {}
        for match in matches:
            rule = self.rules[match.rule_id]
            for dest_id in notified(rule, self.settings.destinations):
                by_destination.setdefault(dest_id, []).append(match)
        out = []
        for dest_id, found in by_destination.items():
            found = sorted(found, key=lambda m: URGENCY[self.rules[m.rule_id].priority])
            lead = self.rules[found[0].rule_id]
            destination = self.settings.destinations[dest_id]
            plan = route(lead.priority, destination, now)
            alert = Alert(
                rule_id=lead.id,
                rule_title=lead.title,
                destination=dest_id,
                feed_id=item.feed_id,
                source=source,
                item_key=item.key,
                title=item.title,
                link=item.link,
                published=item.published,
                first_seen=now,
                summary=Summary(""),
                terms=tuple(dict.fromkeys(t for m in found for t in m.terms)),
                also_matched=tuple(self.rules[m.rule_id].title for m in found[1:]),
                language=None if item.language == destination.language else item.language,
                priority=lead.priority,
                held=plan.held,
            )
            counted = () if plan.digest else caps(lead, dest_id, destination, now)
            out.append(QueuedAlert(alert, plan.deliver_at, plan.digest, counted))
        return out

    def _spike_watches(self, matched: Sequence[tuple[str, str]], now: datetime) -> list[SpikeWatch]:
        """The rules this poll matched that are watched for spikes, each with its spike alert
        routed to every destination it notifies (the store fills in what the spike is)."""
        watches = []
        for rule_id in dict.fromkeys(rule_id for rule_id, _ in matched):
            rule = self.rules[rule_id]
            if rule.spike is None:
                continue
            templates = []
            for dest_id in notified(rule, self.settings.destinations):
                plan = route(rule.priority, self.settings.destinations[dest_id], now)
                alert = Alert(
                    rule_id=rule.id,
                    rule_title=rule.title,
                    destination=dest_id,
                    feed_id="",
                    source="newswatch",
                    item_key="",
                    title=f"Spike: {rule.title}",
                    link=None,
                    published=None,
                    first_seen=now,
                    summary=Summary(""),
                    terms=(),
                    priority=rule.priority,
                    held=plan.held,
                )
                templates.append(QueuedAlert(alert, plan.deliver_at, plan.digest))
            watches.append(SpikeWatch(rule.id, rule.spike, tuple(templates)))
        return watches

    async def _record_failure(self, feed: Feed, state: FeedState, err: FetchError) -> None:
        now = self.ctx.clock()
        plan = self._next_poll(
            feed, failures=state.consecutive_failures + 1, retry_after=err.retry_after
        )
        await self._record(
            feed.id,
            now,
            plan.delay,
            error=err.reason,
            error_detail="; ".join(filter(None, (err.detail[:400], plan.note))),
            **self._failure(feed, state, err, now),
        )

    def _next_poll(self, feed: Feed, **hints: Any) -> NextPoll:
        """When to poll ``feed`` next; a server's wish past ``http.max_delay`` is capped, logged."""
        plan = next_poll(
            self.settings.feed_interval(feed),
            self.settings.schedule.jitter,
            self.ctx.rng,
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

    async def _record(self, feed_id: str, now: datetime, delay: float, **fields: Any) -> PollRecord:
        """Write one poll's outcome under this process's lease, next poll ``delay`` from now."""
        outcome = PollOutcome(feed_id, self.ctx.owner, now, due_at(now, delay), **fields)
        return await self.ctx.db.record_poll(outcome)

    # -- feed health notices ------------------------------------------------
    def _failure(
        self, feed: Feed, state: FeedState, err: FetchError, now: datetime
    ) -> dict[str, Any]:
        """The notice to queue once a feed has failed for long enough (on_feed_failure)."""
        policy = self.settings.on_feed_failure
        since = state.failing_since or now
        if (
            policy is None
            or state.failure_notified
            or now - since < timedelta(seconds=policy.after)
        ):
            return {}
        return {
            "failure_notified": True,
            "notices": self._notices(
                policy.notify,
                feed,
                f"Feed {feed.id} is failing",
                f"{feed.url} has failed since {since:%Y-%m-%d %H:%M} UTC "
                f"({state.consecutive_failures + 1} attempts); last error: {err}",
            ),
        }

    async def _health(
        self, feed: Feed, state: FeedState, now: datetime, *, published: bool
    ) -> dict[str, Any]:
        """What a poll that got an answer (``published``: with new items) writes of the feed's
        health: a failure over, a silence begun or over, and the notices they queue."""
        recovery = self._recovery(feed, state)
        silence = await self._silence(feed, state, now, published=published)
        notices = [*recovery.pop("notices", ()), *silence.pop("notices", ())]
        return recovery | silence | ({"notices": notices} if notices else {})

    async def _silence(
        self, feed: Feed, state: FeedState, now: datetime, *, published: bool
    ) -> dict[str, Any]:
        """A feed answering with nothing new for much longer than its usual gap (learned from
        its history, never under ``on_feed_silence.after``) is flagged silent, with one notice
        when ``on_feed_silence.notify`` is set; publishing again ends it, and a notified
        silence is told over. The history is read only once the floor has passed."""
        policy = self.settings.on_feed_silence
        last = state.last_new_at
        if published:
            if state.silent_since is None:
                return {}
            if not state.silence_notified:
                return {"silence": SilenceState()}
            before = last or state.silent_since
            return {
                "silence": SilenceState(),
                "notices": self._notices(
                    policy.notify,
                    feed,
                    f"Feed {feed.id} publishes again",
                    f"{feed.url} has new items, the first since {before:%Y-%m-%d %H:%M} UTC.",
                ),
            }
        if last is None or state.silent_since is not None:
            return {}
        quiet = (now - last).total_seconds()
        if quiet < policy.after:
            return {}
        verdict = silence_threshold(
            await self.ctx.db.sightings(feed.id, SILENCE_HISTORY), policy.after
        )
        if verdict is None or quiet < verdict.threshold:
            return {}
        log.warning(
            "feed %s: nothing new for %s (usually every %s)",
            feed.id,
            rough(quiet),
            rough(verdict.usual_gap),
            extra={"feed": feed.id, "silent_seconds": quiet, "event": "feed_silent"},
        )
        notices = self._notices(
            policy.notify,
            feed,
            f"Feed {feed.id} has gone silent",
            f"{feed.url} answers but has published nothing new since {last:%Y-%m-%d %H:%M} UTC"
            f" ({rough(quiet)}; it usually publishes every {rough(verdict.usual_gap)}).",
        )
        return {
            "silence": SilenceState(now, verdict.usual_gap, notified=bool(notices)),
            "notices": notices,
        }

    def _recovery(self, feed: Feed, state: FeedState) -> dict[str, Any]:
        """The notice to queue when a feed whose failure was notified answers again."""
        policy = self.settings.on_feed_failure
        if policy is None or not state.failure_notified:
            return {}
        return {
            "failure_notified": False,
            "notices": self._notices(
                policy.notify, feed, f"Feed {feed.id} has recovered", f"{feed.url} answers again."
            ),
        }

    @staticmethod
    def _notices(destinations: Sequence[str], feed: Feed, title: str, text: str) -> list[Notice]:
        """One notice per destination, with the secrets the logs hide (a key in a feed URL)
        hidden before it is stored."""
        title, text = scrub(title), scrub(text)
        return [Notice(dest_id, feed.id, title, text) for dest_id in destinations]
