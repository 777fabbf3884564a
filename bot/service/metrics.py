"""Prometheus metrics for the daemon: what the pipeline reports, plus the outbox read at scrape.

Everything lives in its own :class:`CollectorRegistry` (never the global one), so
tests and reloads can make fresh ones and nothing from other libraries leaks in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.store import FeedState, OutboxCounts, PruneReport

log = logging.getLogger("newswatch.metrics")

CountsSource = Callable[[], OutboxCounts]
SilenceSource = Callable[[], Mapping[str, float]]

FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
CYCLE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of :meth:`Metrics.render`'s output."""


class _OutboxCollector(Collector):
    """Reads the outbox at scrape time, so the gauges are never staler than the scrape."""

    def __init__(self) -> None:
        self.source: CountsSource | None = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("newswatch_store_up", "1 when the store answered the last scrape.")
        if self.source is None:
            return
        try:
            counts = self.source()
        except Exception as err:  # a scrape must answer even when the store does not
            log.warning("metrics: outbox counts unavailable: %s", err)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, value, text in (
            ("pending", counts.pending, "Alerts waiting to be sent (including retries)."),
            ("waiting_digest", counts.waiting_digest, "Alerts waiting for their digest."),
            ("dead", counts.dead, "Alerts that failed for good."),
        ):
            gauge = GaugeMetricFamily(f"newswatch_outbox_{name}", text)
            gauge.add_metric([], value)
            yield gauge


def silent_seconds(states: Iterable[FeedState], now: datetime) -> dict[str, float]:
    """Each feed's seconds without new items when flagged silent, else 0 (a gauge to alert on
    with ``> 0``, whose value says how long)."""
    return {
        s.feed_id: (now - s.last_new_at).total_seconds()
        if s.silent_since is not None and s.last_new_at is not None
        else 0.0
        for s in states
    }


class _SilenceCollector(Collector):
    """Reads the feeds' silence at scrape time (from the store, through the daemon's probe)."""

    def __init__(self) -> None:
        self.source: SilenceSource | None = None

    def collect(self) -> Iterator[Metric]:
        if self.source is None:
            return
        try:
            silent = self.source()
        except Exception as err:  # newswatch_store_up says the store is down
            log.warning("metrics: feed silence unavailable: %s", err)
            return
        gauge = GaugeMetricFamily(
            "newswatch_feed_silent_seconds",
            "Seconds since a feed flagged silent (answering, but nothing new for much longer"
            " than its usual gap) last had new items; 0 while it publishes as usual.",
            labels=["feed"],
        )
        for feed_id, seconds in sorted(silent.items()):
            gauge.add_metric([feed_id], seconds)
        yield gauge


class Metrics:
    """A :class:`bot.pipeline.base.PipelineEvents` that counts into Prometheus series."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fetches = Counter(
            "newswatch_fetches",
            "Feed fetches by outcome (ok, not_modified, baseline, or "
            "an error reason such as timeout, http_5xx, malformed).",
            ["outcome"],
            registry=r,
        )
        self.fetch_seconds = Histogram(
            "newswatch_fetch_duration_seconds",
            "Time to fetch and process one feed.",
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.items_new = Counter(
            "newswatch_items_new", "Items seen for the first time.", registry=r
        )
        self.matches = Counter("newswatch_matches", "Items matched, by rule.", ["rule"], registry=r)
        self.alerts_queued = Counter(
            "newswatch_alerts_queued",
            "Alerts entered in the outbox, by rule (one per destination; a story already"
            " alerted for the rule and destination is not counted again; rule '+overflow'"
            " for a flood's overflow messages).",
            ["rule"],
            registry=r,
        )
        self.alerts = Counter(
            "newswatch_alerts",
            "Alert send attempts by destination and outcome (sent, retry, dead).",
            ["destination", "outcome"],
            registry=r,
        )
        self.folds = Counter(
            "newswatch_alert_folds",
            "Polls of one feed whose matches for a destination went "
            "over delivery.max_alerts_per_poll and were folded into one message.",
            ["destination"],
            registry=r,
        )
        self.alerts_folded = Counter(
            "newswatch_alerts_folded",
            "Alerts folded into an overflow message instead of sent on their own.",
            ["destination"],
            registry=r,
        )
        self.alerts_held = Counter(
            "newswatch_alerts_held",
            "Alerts queued to wait for the end of quiet hours (reason quiet) or of a cap's"
            " period (reason cap) instead of going out at once.",
            ["destination", "reason"],
            registry=r,
        )
        self.spikes = Counter(
            "newswatch_spikes",
            "Spike alerts: a rule's stories far above their usual count.",
            ["rule"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "newswatch_cycle_duration_seconds",
            "Duration of one scheduler job run.",
            ["job"],
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.last_poll = Gauge(
            "newswatch_last_poll_timestamp_seconds",
            "Unix time the poll job last completed.",
            registry=r,
        )
        self.job_errors = Counter(
            "newswatch_job_errors",
            "Scheduler job runs that raised or were missed.",
            ["job", "kind"],
            registry=r,
        )
        self.rule_reloads = Counter(
            "newswatch_rule_reloads",
            "Rule file reloads by outcome (applied, rejected).",
            ["outcome"],
            registry=r,
        )
        self.pruned = Counter(
            "newswatch_pruned_rows",
            "Rows retention removed from the store, by table (outbox, stories,"
            " rate_slots, items, feeds, stats: the daily counters of newswatch stats).",
            ["table"],
            registry=r,
        )
        self._outbox = _OutboxCollector()
        r.register(self._outbox)
        self._silence = _SilenceCollector()
        r.register(self._silence)

    def count_pruned(self, report: PruneReport) -> None:
        for table in ("outbox", "stories", "rate_slots", "items", "feeds", "stats"):
            self.pruned.labels(table).inc(getattr(report, table))

    def watch_outbox(self, source: CountsSource | None) -> None:
        """Read outbox gauges from ``source`` at each scrape (``None``: omit them)."""
        self._outbox.source = source

    def watch_silence(self, source: SilenceSource | None) -> None:
        """Read each feed's silence (see :func:`silent_seconds`) from ``source`` at each
        scrape (``None``: omit it)."""
        self._silence.source = source

    # -- PipelineEvents ------------------------------------------------------
    def feed_done(self, feed_id: str, outcome: str, seconds: float, new_items: int) -> None:
        self.fetches.labels(outcome).inc()
        self.fetch_seconds.observe(seconds)
        if new_items:
            self.items_new.inc(new_items)

    def matched(self, rule_id: str) -> None:
        self.matches.labels(rule_id).inc()

    def queued(self, rule_id: str, count: int) -> None:
        self.alerts_queued.labels(rule_id).inc(count)

    def delivered(self, destination: str, outcome: str, count: int) -> None:
        self.alerts.labels(destination, outcome).inc(count)

    def folded(self, feed_id: str, destination: str, count: int) -> None:
        self.folds.labels(destination).inc()
        self.alerts_folded.labels(destination).inc(count)

    def held(self, destination: str, reason: str, count: int) -> None:
        self.alerts_held.labels(destination, reason).inc(count)

    def spiked(self, rule_id: str) -> None:
        self.spikes.labels(rule_id).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)
