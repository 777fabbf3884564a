"""``newswatch run``: the daemon. APScheduler ticks, rule-file watching, signals, health.

Three in-memory APScheduler jobs drive the pipeline: *poll* claims the feeds that
are due (each feed carries its own next poll time in the store, so a tick is
cheap), *deliver* sends due outbox rows and *prune* applies ``retention`` (hourly,
by one replica a period). Coordination between replicas lives
in the store's leases, never in a shared APScheduler job store.

Signals: SIGTERM/SIGINT stop claiming work, let in-flight work finish (bounded),
close the store and return 0; SIGHUP reloads settings.yaml by building a new
generation beside the running one and swapping it in only when all of it is
ready (an invalid config, a taken port, an unreachable store keep the running
one). Rule files are checked at every poll tick and applied from the next cycle
when valid.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from bot.alerts.render import counted, relative_time
from bot.config.load import Config, load_config, load_rules, rule_file_paths
from bot.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_STORE,
    ConfigError,
    ConfigProblem,
    ListenError,
    NewswatchError,
    StoreError,
)
from bot.fetch.client import Fetcher
from bot.logs import SecretFilter
from bot.notify import Notifier
from bot.pipeline.base import new_owner, utcnow
from bot.pipeline.cycle import PRUNE_EVERY, Pipeline
from bot.pipeline.poll import CycleReport
from bot.schedule import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MISSED,
    AsyncIOScheduler,
    JobExecutionEvent,
    new_scheduler,
)
from bot.service.app import close_all, config_secrets, open_notifiers, sync_feeds
from bot.service.health import (
    UNAUTHORIZED,
    HealthServer,
    Probe,
    Request,
    Response,
    Snapshot,
    authorized,
    evaluate,
    json_response,
    last_read,
    metrics_response,
)
from bot.service.metrics import Metrics, silent_seconds
from bot.store import OutboxCounts, Store, open_store

log = logging.getLogger("newswatch.service")

POLL_JOB = "poll"
DELIVER_JOB = "deliver"
PRUNE_JOB = "prune"


@dataclass(frozen=True)
class Timing:
    """How often the jobs tick and how long shutdown may wait: internal, not config.

    ``poll_instances`` > 1 lets a new tick claim newly due feeds while a cycle
    with a slow feed is still running (leases keep them apart), so one slow feed
    never delays the others by more than a tick. The loop beats every
    ``beat_every`` and is reported stalled after ``stall_after`` without a beat;
    ``/healthz`` waits ``probe_timeout`` at most for the store; ``/metrics`` is
    rendered at most once every ``metrics_every``. The store is pruned every
    ``prune_every``, first ``prune_after`` the start (not with the first poll).
    """

    poll_every: float = 2.0
    deliver_every: float = 5.0
    misfire_grace: float = 30.0
    poll_instances: int = 4
    drain: float = 7.0
    beat_every: float = 0.5
    stall_after: float = 10.0
    probe_timeout: float = 0.5
    metrics_every: float = 5.0
    prune_every: float = PRUNE_EVERY
    prune_after: float = 10.0


class StoreView(NamedTuple):
    """What a store probe reads for ``/healthz`` and ``/metrics``."""

    counts: OutboxCounts
    last_read: datetime | None
    silent: dict[str, float]


def _read_view(store: Store) -> StoreView:
    now, states = utcnow(), store.feed_states()
    return StoreView(store.outbox_counts(now), last_read(states), silent_seconds(states, now))


RuleStamp = tuple[tuple[str, int, int], ...]


def rule_stamp(directory: Path) -> RuleStamp:
    """Which rule files exist and their mtimes and sizes: cheap to compare every tick."""
    stamp = []
    for path in rule_file_paths(directory):
        try:
            st = path.stat()
        except OSError:
            continue
        stamp.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stamp)


@dataclass
class _Generation:
    """Everything built from one config; SIGHUP replaces it as a whole."""

    config: Config
    store: Store
    notifiers: dict[str, Notifier]
    pipeline: Pipeline
    scheduler: AsyncIOScheduler
    exits: AsyncExitStack
    rules_stamp: RuleStamp
    inflight: set[asyncio.Task[object]] = field(default_factory=set)
    stopping: bool = False

    @contextmanager
    def tracked(self) -> Iterator[None]:
        """Marks the current job as in flight, so a stop waits for it."""
        task = asyncio.current_task()
        if task is None:  # not in a task: nothing to wait for
            yield
            return
        self.inflight.add(task)
        try:
            yield
        finally:
            self.inflight.discard(task)


class Service:
    """The daemon's state across reloads: owner name, metrics, health server, signals."""

    def __init__(
        self, config: Config, environ: Mapping[str, str], timing: Timing | None = None
    ) -> None:
        self.config = config
        self.environ = environ
        self.timing = timing or Timing()
        self.owner = new_owner()
        self.metrics = Metrics()
        self.started_at = utcnow()
        self.last_poll: datetime | None = None
        self._gen: _Generation | None = None
        self._health: HealthServer | None = None
        self._events: asyncio.Queue[str] = asyncio.Queue()
        # Read by the health server's thread: plain attributes, replaced, never mutated.
        self._heartbeat = time.monotonic()
        self._store_failure: str | None = None
        self._view: StoreView | None = None
        self._probe = Probe("store-probe")
        self._metrics_snapshot = Snapshot(self._render_metrics, self.timing.metrics_every)
        self.metrics.watch_outbox(self._last_counts)
        self.metrics.watch_silence(self._last_silence)

    # -- lifecycle -------------------------------------------------------------
    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 on a clean stop, else why it could not start (see
        :func:`_start_failed`)."""
        loop = asyncio.get_running_loop()
        for sig, event in (
            (signal.SIGTERM, "stop"),
            (signal.SIGINT, "stop"),
            (signal.SIGHUP, "reload"),
        ):
            loop.add_signal_handler(sig, self._events.put_nowait, event)
        beating = asyncio.create_task(self._beat())
        try:
            await self._switch(self.config)
        except Exception as err:
            await self._shutdown(beating)
            return _start_failed(err)
        try:
            while await self._events.get() != "stop":
                await self._reload()
            log.info("stopping: finishing in-flight work", extra={"event": "stopping"})
        except Exception as err:
            log.critical("giving up: %s", err, exc_info=True, extra={"event": "fatal"})
            return EXIT_FAILED
        finally:
            await self._shutdown(beating)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("stopped", extra={"event": "stopped"})
        return 0

    async def _beat(self) -> None:
        """Tells the health server the loop is alive: a blocked loop stops beating."""
        while True:
            self._heartbeat = time.monotonic()
            await asyncio.sleep(self.timing.beat_every)

    async def _switch(self, config: Config) -> None:
        """Run on ``config``: everything it needs is prepared before the running one goes.

        Any failure (address taken, store unreachable, a destination that cannot
        be built) leaves the running generation and health server untouched.
        The old scheduler stops before the new one starts: both claim feeds
        under the same owner name.
        """
        health = await self._bind_health(config)
        try:
            gen = await self._prepare(config)
        except BaseException:
            if health is not None:
                await health.close()
            raise
        old = self._gen
        if old is not None:
            self._quiesce(old)
        try:
            # The last step that can fail: one transaction, off the loop (the old one still runs).
            await asyncio.to_thread(sync_feeds, config, gen.store)
        except BaseException:
            if old is not None:
                self._resume(old)
            await self._discard(gen)
            if health is not None:
                await health.close()
            raise
        self._gen, self.config = gen, config  # /healthz probes the new store from now on
        if old is not None:
            await self._release(old)
        self._activate(gen)
        if health is not None:
            await self._swap_health(health)

    async def _prepare(self, config: Config) -> _Generation:
        """Store, notifiers, fetcher and pipeline for ``config``; nothing runs yet."""
        exits = AsyncExitStack()
        # Off the loop: connecting and migrating (up to a 10 s connect timeout on a reload to an
        # unreachable server) must not stall the running generation's fetches.
        store = await asyncio.to_thread(open_store, config.settings.store)
        notifiers: dict[str, Notifier] = {}
        try:
            notifiers = open_notifiers(config, store)
            fetcher = await exits.enter_async_context(Fetcher(config.settings.http))
        except BaseException:
            await exits.aclose()
            close_all(store, notifiers)
            raise
        pipeline = Pipeline(
            config.settings,
            config.rules,
            store,
            fetcher,
            notifiers,
            owner=self.owner,
            events=self.metrics,
        )
        scheduler = new_scheduler(self.timing.misfire_grace)
        return _Generation(
            config, store, notifiers, pipeline, scheduler, exits, rule_stamp(config.directory)
        )

    def _activate(self, gen: _Generation) -> None:
        """Start ``gen``'s jobs: a poll now, a delivery half a second later, a prune after
        ``prune_after``; each then every its own period."""
        now = datetime.now(UTC)
        t = self.timing
        jobs = (
            (POLL_JOB, self._poll_job, t.poll_every, 0.0, t.poll_instances),
            (DELIVER_JOB, self._deliver_job, t.deliver_every, 0.5, 1),
            (PRUNE_JOB, self._prune_job, t.prune_every, t.prune_after, 1),
        )
        for name, job, every, delay, instances in jobs:
            gen.scheduler.add_job(
                job,
                "interval",
                args=[gen],
                id=name,
                name=name,
                seconds=every,
                next_run_time=now + timedelta(seconds=delay),
                max_instances=instances,
            )
        gen.scheduler.add_listener(self._job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        gen.scheduler.start()
        settings = gen.config.settings
        log.info(
            "running: %s, %s, %s, store %s",
            counted(len([f for f in settings.feeds if f.enabled]), "feed"),
            counted(len(gen.config.rules), "rule"),
            counted(len(settings.destinations), "destination"),
            settings.store.split("://")[0].split(":")[0],
            extra={"event": "started", "owner": self.owner},
        )

    @staticmethod
    def _quiesce(gen: _Generation) -> None:
        """Stop starting jobs (in-flight ones go on); :meth:`_resume` undoes it."""
        gen.stopping = True
        if gen.scheduler.running:
            gen.scheduler.pause()

    @staticmethod
    def _resume(gen: _Generation) -> None:
        gen.stopping = False
        if gen.scheduler.running:
            gen.scheduler.resume()

    async def _release(self, gen: _Generation) -> None:
        """Stop claiming, let in-flight jobs finish within the drain time, then close.

        APScheduler's asyncio executor cancels running jobs at shutdown, so our
        own jobs are waited for first; whatever still runs after the drain time
        is cancelled at an await point: a poll hands back the feeds it had not
        polled (the next generation polls them on its first tick), a delivery the
        rows it had not handed to a send; a send in flight keeps its rows' lease.
        """
        self._quiesce(gen)
        if gen.inflight:
            _, late = await asyncio.wait(set(gen.inflight), timeout=self.timing.drain)
            for task in late:
                task.cancel()
            if late:
                log.warning(
                    "%d job(s) cancelled after %.0fs",
                    len(late),
                    self.timing.drain,
                    extra={"event": "drain_timeout"},
                )
                await asyncio.gather(*late, return_exceptions=True)
        if gen.scheduler.running:
            gen.scheduler.shutdown(wait=False)
        await self._discard(gen)

    @staticmethod
    async def _discard(gen: _Generation) -> None:
        await gen.exits.aclose()
        await asyncio.to_thread(gen.pipeline.close)  # the store calls made still run
        close_all(gen.store, gen.notifiers)

    async def _shutdown(self, beating: asyncio.Task[None]) -> None:
        if self._gen is not None:
            gen, self._gen = self._gen, None
            await self._release(gen)
        if self._health is not None:
            await self._health.close()
            self._health = None
        beating.cancel()

    async def _reload(self) -> None:
        """SIGHUP: run on the config on disk; keep the running one when anything fails."""
        log.info("SIGHUP: reloading %s", self.config.directory, extra={"event": "reload"})
        try:
            config = load_config(self.config.directory, self.environ)
        except ConfigError as err:
            for problem in err.problems:
                log.error("%s", problem, extra={"event": "config_invalid"})
            self._reload_failed(f"invalid config ({len(err.problems)} problem(s))")
            return
        add_secrets(config_secrets(config))
        _log_warnings(config.warnings)
        try:
            await self._switch(config)
        except NewswatchError as err:
            self._reload_failed(str(err))
        except Exception as err:
            self._reload_failed(repr(err), exc_info=True)

    @staticmethod
    def _reload_failed(reason: str, *, exc_info: bool = False) -> None:
        log.error(
            "reload failed, keeping the running config: %s",
            reason,
            exc_info=exc_info,
            extra={"event": "reload_failed"},
        )

    async def _bind_health(self, config: Config) -> HealthServer | None:
        """A health server listening on ``config``'s address; None when that is unchanged."""
        server = config.settings.server
        current = self._health
        if current is not None and (current.host, current.requested_port) == (
            server.host,
            server.port,
        ):
            return None
        health = HealthServer(
            server.host, server.port, {"/healthz": self._healthz, "/metrics": self._metrics}
        )
        await health.start()
        return health

    async def _swap_health(self, health: HealthServer) -> None:
        old, self._health = self._health, health
        if old is not None:
            await old.close()
        log.info(
            "serving /healthz and /metrics on http://%s:%d",
            health.host,
            health.port,
            extra={"event": "listening", "host": health.host, "port": health.port},
        )

    # -- jobs --------------------------------------------------------------------
    async def _poll_job(self, gen: _Generation) -> None:
        """Apply edited rule files, then claim and poll the feeds that are due."""
        if gen.stopping:
            return
        started = time.monotonic()
        with gen.tracked():
            self._check_rules(gen)
            report = await gen.pipeline.poll(due_only=True)
            if report.feeds:
                await self._summarize(gen, report)
        self.last_poll = utcnow()
        self._store_failure = None
        self.metrics.last_poll.set(time.time())
        self.metrics.cycle_seconds.labels(POLL_JOB).observe(time.monotonic() - started)
        # Deliver now what this cycle queued: alerts, or a failure notice (it comes with a
        # failed feed); a recovery notice waits for the next delivery tick.
        if (report.alerts or report.failed) and not gen.stopping:
            gen.scheduler.modify_job(DELIVER_JOB, next_run_time=datetime.now(UTC))

    @staticmethod
    async def _summarize(gen: _Generation, report: CycleReport) -> None:
        """One line per tick that polled something (most ticks find nothing due and stay
        quiet): what it did and when the next feed is due."""
        now = utcnow()
        due = [s.next_poll_at for s in await gen.pipeline.db.feed_states() if s.next_poll_at]
        following = min(due, default=None)
        when = "now" if following is None or following <= now else relative_time(following, now)
        new_items = sum(f.new_items for f in report.feeds)
        first = sum(1 for f in report.feeds if f.status == "baseline")
        log.info(
            "cycle: %s polled, %d failed, %s, %s queued; next poll %s%s",
            counted(len(report.feeds), "feed"),
            len(report.failed),
            counted(new_items, "new item"),
            counted(len(report.alerts), "alert"),
            when,
            # A newcomer's first cycle alerts nothing: say why, once per feed.
            f"; {counted(first, 'feed')} read for the first time: what it serves is marked"
            " seen, not alerted (a feed's `backfill:` alerts its recent items)"
            if first
            else "",
            extra={
                "event": "cycle_done",
                "polled": len(report.feeds),
                "failed": len(report.failed),
                "new_items": new_items,
                "alerts": len(report.alerts),
                "first_read": first,
                "next_poll": following.isoformat() if following else None,
            },
        )

    async def _deliver_job(self, gen: _Generation) -> None:
        if gen.stopping:
            return
        started = time.monotonic()
        with gen.tracked():
            await gen.pipeline.deliver()
        self.metrics.cycle_seconds.labels(DELIVER_JOB).observe(time.monotonic() - started)

    async def _prune_job(self, gen: _Generation) -> None:
        """Prune the store, when no other replica did this period."""
        if gen.stopping:
            return
        started = time.monotonic()
        with gen.tracked():
            report = await gen.pipeline.prune(self.timing.prune_every)
        if report is not None:
            self.metrics.count_pruned(report)
            self.metrics.cycle_seconds.labels(PRUNE_JOB).observe(time.monotonic() - started)

    def _check_rules(self, gen: _Generation) -> None:
        stamp = rule_stamp(gen.config.directory)
        if stamp == gen.rules_stamp:
            return
        gen.rules_stamp = stamp
        try:
            rules, warnings = load_rules(gen.config.directory, gen.config.settings, self.environ)
        except ConfigError as err:
            for problem in err.problems:
                log.error("%s", problem, extra={"event": "rules_invalid"})
            log.error(
                "rule files invalid: keeping the %d active rules",
                len(gen.pipeline.rules),
                extra={"event": "rules_rejected"},
            )
            self.metrics.rule_reloads.labels("rejected").inc()
            return
        _log_warnings(warnings)
        gen.pipeline.set_rules(rules)
        self.metrics.rule_reloads.labels("applied").inc()
        log.info("rules reloaded: %d rules", len(rules), extra={"event": "rules_reloaded"})

    def _job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            self.metrics.job_errors.labels(event.job_id, "missed").inc()
            log.warning(
                "job %s missed its run at %s",
                event.job_id,
                event.scheduled_run_time.isoformat(),
                extra={"event": "job_missed", "job": event.job_id},
            )
            return
        self.metrics.job_errors.labels(event.job_id, "error").inc()
        if isinstance(event.exception, StoreError):
            self._store_failure = str(event.exception)
        log.error(
            "job %s failed: %r",
            event.job_id,
            event.exception,
            exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
            extra={"event": "job_error", "job": event.job_id},
        )

    # -- HTTP (called on the health server's thread) -----------------------------
    async def _healthz(self, request: Request) -> Response:
        """Never waits on the daemon's loop, and on the store at most ``probe_timeout``."""
        view = await self._probe_store()
        health = evaluate(
            utcnow(),
            self.started_at,
            self.last_poll,
            self.timing.poll_every,
            view is not None and self._store_failure is None,
            view.counts if view else None,
            loop_lag=time.monotonic() - self._heartbeat,
            stall_after=self.timing.stall_after,
            last_read=view.last_read if view else None,
            degraded_after=self.config.settings.degraded_after,
        )
        return json_response(health)

    async def _metrics(self, request: Request) -> Response:
        token = self.config.settings.server.metrics_token
        if not authorized(request, token.get_secret_value() if token else None):
            return UNAUTHORIZED
        return metrics_response(await self._metrics_snapshot.get())

    async def _render_metrics(self) -> bytes:
        await self._probe_store()
        return self.metrics.render()

    async def _probe_store(self) -> StoreView | None:
        """The outbox counts and the feeds' health, read in a worker thread; None when the
        store fails or is slow."""
        gen = self._gen
        view = None
        if gen is not None:
            store = gen.store
            try:
                view = await self._probe.run(lambda: _read_view(store), self.timing.probe_timeout)
            except TimeoutError:
                pass
            except Exception as err:
                log.warning("store probe failed: %s", err, extra={"event": "store_probe_failed"})
        self._view = view
        return view

    def _last_counts(self) -> OutboxCounts:
        """The outbox gauges from the last probe: a scrape never reads the store itself."""
        if self._view is None:
            raise StoreError("the store did not answer the last probe")
        return self._view.counts

    def _last_silence(self) -> dict[str, float]:
        """The feeds' silence from the last probe, like :meth:`_last_counts`."""
        if self._view is None:
            raise StoreError("the store did not answer the last probe")
        return self._view.silent


def add_secrets(secrets: Iterable[str]) -> None:
    """Teach the log scrubber new secret values (a reload may bring new credentials)."""
    values = list(secrets)
    for handler in logging.getLogger().handlers:
        for filt in handler.filters:
            if isinstance(filt, SecretFilter):
                filt.add(values)


def _start_failed(err: Exception) -> int:
    """Say in one line why the daemon could not start; the exit code every command uses
    (a traceback only for what is not one of ours: a bug)."""
    if isinstance(err, ListenError):
        log.critical(
            "cannot start: %s: set server.port in settings.yaml to a free port (0 lets the"
            " system pick one)",
            err,
            extra={"event": "start_failed"},
        )
        return EXIT_CONFIG
    if isinstance(err, ConfigError | StoreError):
        log.critical("cannot start: %s", err, extra={"event": "start_failed"})
        return EXIT_CONFIG if isinstance(err, ConfigError) else EXIT_STORE
    log.critical("cannot start: %s", err, exc_info=True, extra={"event": "start_failed"})
    return EXIT_FAILED


def _log_warnings(warnings: Iterable[ConfigProblem]) -> None:
    """Rule queries that load but most likely mean something else (``newswatch check`` shows
    them too)."""
    for warning in warnings:
        log.warning("%s", warning, extra={"event": "rule_warning"})


def serve(config: Config, environ: Mapping[str, str], timing: Timing | None = None) -> int:
    """Run the daemon on a validated config until a stop signal; the process exit code."""
    _log_warnings(config.warnings)
    return asyncio.run(Service(config, environ, timing).run())


__all__ = ["Service", "Timing", "serve"]
