"""The pipeline in-process: a real store (SQLite in memory), and a fetcher, notifiers and a
clock the test controls, so every path of poll and delivery runs in milliseconds."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.config.schema import Rule, Settings
from bot.errors import DeliveryError, FetchError
from bot.fetch.client import FetchResult
from bot.model import Alert, Posted, Sighting
from bot.notify import Attempt
from bot.pipeline.cycle import Pipeline
from bot.pipeline.deliver import DeliveryReport
from bot.pipeline.poll import CycleReport
from bot.store import FeedRow, Store
from tests.peers.rss import Entry, rss

T = TypeVar("T")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeTime:
    """A clock and an asyncio sleep that move only when the test advances them."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.naps = 0
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.naps += 1
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + timedelta(seconds=seconds), wake))
        await wake

    async def asleep(self) -> None:
        """Until something sleeps on this clock (the heartbeat has started)."""
        for _ in range(10_000):
            if self._sleepers:
                return
            await asyncio.sleep(0)
        raise AssertionError("nothing sleeps on this clock")

    async def advance(self, seconds: float) -> None:
        """Move time on; every sleeper due runs until it sleeps again."""
        self.now += timedelta(seconds=seconds)
        due = [wake for at, wake in self._sleepers if at <= self.now]
        self._sleepers = [(at, wake) for at, wake in self._sleepers if at > self.now]
        naps = self.naps
        for wake in due:
            wake.set_result(None)
        while self.naps < naps + len(due):
            await asyncio.sleep(0)

    def skip(self, seconds: float) -> None:
        """Move time on with nothing running (between passes): no sleeper is woken."""
        self.now += timedelta(seconds=seconds)


class FakeFetcher:
    """Serves RSS documents by URL with an ETag (answering 304 to it), or raises a
    :class:`FetchError`; a URL can be held until the test lets its fetch finish."""

    def __init__(self) -> None:
        self._answers: dict[str, str | FetchError] = {}
        self.held: dict[str, asyncio.Event] = {}
        self.requests: list[tuple[str, str | None]] = []

    def serve(self, url: str, entries: list[Entry], title: str = "Test feed") -> None:
        self._answers[url] = rss(entries, title)

    def fail(self, url: str, error: FetchError) -> None:
        self._answers[url] = error

    def hold(self, url: str) -> asyncio.Event:
        self.held[url] = asyncio.Event()
        return self.held[url]

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        self.requests.append((url, etag))
        if url in self.held:
            await self.held[url].wait()
        answer = self._answers[url]
        if isinstance(answer, FetchError):
            raise answer
        body = answer.encode()
        tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if tag == etag:
            return FetchResult(True, b"", url, None, tag, None, None, 0.0)
        return FetchResult(False, body, url, "application/rss+xml", tag, None, None, 0.0)


@dataclass
class FakeNotifier:
    """Records what it sends; fails the next calls with the errors given to ``fail_next``."""

    destination_id: str
    alerts: list[list[Alert]] = field(default_factory=list)
    attempts: list[Attempt | None] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)
    sightings: list[tuple[Sighting, Alert, Posted | None]] = field(default_factory=list)
    digest_sightings: list[list[Sighting]] = field(default_factory=list)
    threads: bool = True
    calls: int = 0
    _failures: list[DeliveryError] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, *errors: DeliveryError) -> None:
        self._failures.extend(errors)

    def send(
        self,
        alerts: Sequence[Alert],
        attempt: Attempt | None = None,
        sightings: Sequence[Sighting] = (),
    ) -> Posted | None:
        """Lands like a Slack message: a single alert says where (its ``ts`` is its number)."""
        self._called()
        self.alerts.append(list(alerts))
        self.attempts.append(attempt)
        self.digest_sightings.append(list(sightings))
        return Posted("C1", f"{len(self.alerts)}.0") if len(alerts) == 1 else None

    def send_sighting(
        self,
        sighting: Sighting,
        parent: Alert,
        posted: Posted | None,
        attempt: Attempt | None = None,
    ) -> None:
        self._called()
        self.sightings.append((sighting, parent, posted))

    def send_notice(self, title: str, text: str) -> None:
        self._called()
        self.notices.append((title, text))

    def close(self) -> None:
        pass

    @property
    def titles(self) -> list[list[str]]:
        return [[a.title for a in message] for message in self.alerts]

    def _called(self) -> None:
        with self._lock:
            self.calls += 1
            if self._failures:
                raise self._failures.pop(0)


def retryable(code: str = "http_503", retry_after: float | None = None) -> DeliveryError:
    return DeliveryError(code, "try later", retryable=True, retry_after=retry_after)


def refused(code: str = "channel_not_found") -> DeliveryError:
    return DeliveryError(code, "never", retryable=False)


def unreachable() -> FetchError:
    return FetchError("http_5xx", "HTTP 503")


def settings(
    feeds: Sequence[str] = ("a",),
    destinations: Mapping[str, Any] | None = None,
    **more: Any,
) -> Settings:
    """Feeds ``url(f)``, destinations (default one console ``desk``), polled every 10 min."""
    return Settings.model_validate(
        {
            "feeds": [{"id": f, "url": url(f)} for f in feeds],
            "destinations": destinations or {"desk": {"type": "console"}},
            "schedule": {"interval": "10m", "jitter": "0s"},
            **more,
        }
    )


def email(**more: Any) -> dict[str, Any]:
    """An email destination's config (the tests send through a fake notifier)."""
    return {
        "type": "email",
        "to": ["desk@example.org"],
        "from": "bot@example.org",
        "smtp": {"host": "smtp.example.org"},
        **more,
    }


def rule(id: str, query: str, notify: Sequence[str] | None = None) -> Rule:
    return Rule(id=id, title=f"Rule {id}", query=query, notify=notify)


def url(feed: str) -> str:
    return f"http://feeds.example/{feed}.xml"


class Harness:
    """A pipeline over ``store`` whose every outside part the test holds."""

    def __init__(
        self,
        store: Store,
        config: Settings,
        rules: Sequence[Rule],
        *,
        owner: str = "replica-1",
        time: FakeTime | None = None,
    ) -> None:
        self.store = store
        self.settings = config
        self.time = time or FakeTime()
        self.fetcher = FakeFetcher()
        self.notifiers = {d: FakeNotifier(d) for d in config.destinations}
        store.sync_feeds([FeedRow(f.id, f.url) for f in config.feeds], self.time.now)
        self.pipeline = Pipeline(
            config,
            rules,
            store,
            self.fetcher,
            self.notifiers,
            owner=owner,
            clock=self.time.clock,
            rng=random.Random(7),
            sleep=self.time.sleep,
        )

    def poll(self, *, due_only: bool = False, backfill: float | None = None) -> CycleReport:
        return run(lambda: self.pipeline.poll(due_only=due_only, backfill=backfill))

    def deliver(self, *, due_only: bool = True) -> DeliveryReport:
        return run(lambda: self.pipeline.deliver(due_only=due_only))

    def close(self) -> None:
        self.pipeline.close()


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await main()

    return asyncio.run(go())
