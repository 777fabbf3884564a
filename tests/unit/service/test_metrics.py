"""Metrics and progress, the PipelineEvents: own registry for series, a bar only on a TTY."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bot.cli.progress import Progress
from bot.logs import ConsoleHandler
from bot.service.metrics import Metrics, silent_seconds
from bot.store import FeedState, OutboxCounts


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_pipeline_events_are_counted() -> None:
    m = Metrics()
    m.feed_done("a", "ok", 0.2, 3)
    m.feed_done("b", "timeout", 20.0, 0)
    m.feed_done("c", "ok", 0.1, 0)
    m.matched("iraq")
    m.matched("iraq")
    m.queued("iraq", 3)
    m.queued("+overflow", 1)
    m.delivered("desk", "sent", 2)
    m.delivered("desk", "retry", 1)
    got = samples(m)
    assert got[("newswatch_fetches_total", (("outcome", "ok"),))] == 2
    assert got[("newswatch_fetches_total", (("outcome", "timeout"),))] == 1
    assert got[("newswatch_fetch_duration_seconds_count", ())] == 3
    assert got[("newswatch_fetch_duration_seconds_bucket", (("le", "0.25"),))] == 2
    assert got[("newswatch_items_new_total", ())] == 3
    assert got[("newswatch_matches_total", (("rule", "iraq"),))] == 2
    assert got[("newswatch_alerts_queued_total", (("rule", "iraq"),))] == 3
    assert got[("newswatch_alerts_queued_total", (("rule", "+overflow"),))] == 1
    assert got[("newswatch_alerts_total", (("destination", "desk"), ("outcome", "sent")))] == 2
    assert got[("newswatch_alerts_total", (("destination", "desk"), ("outcome", "retry")))] == 1


def test_folded_polls_and_alerts_are_counted_by_destination() -> None:
    m = Metrics()
    m.folded("a", "desk", 1980)
    m.folded("b", "desk", 5)
    got = samples(m)
    assert got[("newswatch_alert_folds_total", (("destination", "desk"),))] == 2
    assert got[("newswatch_alerts_folded_total", (("destination", "desk"),))] == 1985


def test_held_alerts_and_spikes_are_counted() -> None:
    m = Metrics()
    m.held("desk", "quiet", 3)
    m.held("desk", "cap", 2)
    m.held("desk", "quiet", 1)
    m.spiked("mosul")
    got = samples(m)
    assert got[("newswatch_alerts_held_total", (("destination", "desk"), ("reason", "quiet")))] == 4
    assert got[("newswatch_alerts_held_total", (("destination", "desk"), ("reason", "cap")))] == 2
    assert got[("newswatch_spikes_total", (("rule", "mosul"),))] == 1


def test_every_series_is_prefixed_and_stays_out_of_the_global_registry() -> None:
    m = Metrics()
    m.feed_done("a", "ok", 0.1, 1)
    names = {f.name for f in text_string_to_metric_families(m.render().decode())}
    assert names and all(n.startswith("newswatch_") for n in names)
    assert "newswatch_fetches" not in {f.name for f in REGISTRY.collect()}
    Metrics()  # a second instance (a test, a reload) does not clash


def test_outbox_gauges_are_read_at_scrape_time() -> None:
    m = Metrics()
    counts = [OutboxCounts(pending=4, dead=1, waiting_digest=2)]
    m.watch_outbox(lambda: counts[0])
    got = samples(m)
    assert got[("newswatch_outbox_pending", ())] == 4
    assert got[("newswatch_outbox_dead", ())] == 1
    assert got[("newswatch_outbox_waiting_digest", ())] == 2
    assert got[("newswatch_store_up", ())] == 1
    counts[0] = OutboxCounts(pending=0)
    assert samples(m)[("newswatch_outbox_pending", ())] == 0


def test_a_store_failure_still_answers_the_scrape() -> None:
    m = Metrics()

    def broken() -> OutboxCounts:
        raise OSError("database is locked")

    m.watch_outbox(broken)
    got = samples(m)
    assert got[("newswatch_store_up", ())] == 0
    assert ("newswatch_outbox_pending", ()) not in got


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_one_line_on_a_tty() -> None:
    tty = FakeTty()
    progress = Progress(2, tty, min_interval=0)
    progress.feed_done("a", "ok", 0.1, 2)
    progress.matched("iraq")
    progress.feed_done("b", "timeout", 5.0, 0)
    progress.delivered("desk", "sent", 1)
    assert "\n" not in tty.getvalue()
    assert progress.line() == (
        "[########################] 2/2 feeds, 2 new, 1 matches, 1 failed, 1 sent"
    )
    assert tty.getvalue().rstrip().endswith("1 sent")
    progress.close()
    assert tty.getvalue().endswith("\r")


def test_progress_writes_nothing_when_piped() -> None:
    piped = io.StringIO()
    progress = Progress(1, piped, min_interval=0)
    progress.feed_done("a", "ok", 0.1, 1)
    progress.close()
    assert piped.getvalue() == ""


def test_each_feeds_silence_is_read_at_scrape_time() -> None:
    now = datetime(2026, 3, 10, tzinfo=UTC)
    states = [
        FeedState("quiet", "u", last_new_at=now - timedelta(days=9), silent_since=now),
        FeedState("busy", "u", last_new_at=now - timedelta(days=9)),  # not flagged: not silent
        FeedState("new", "u"),
    ]
    m = Metrics()
    m.watch_silence(lambda: silent_seconds(states, now))
    got = samples(m)
    assert got[("newswatch_feed_silent_seconds", (("feed", "quiet"),))] == 9 * 86400
    assert got[("newswatch_feed_silent_seconds", (("feed", "busy"),))] == 0
    assert got[("newswatch_feed_silent_seconds", (("feed", "new"),))] == 0


def test_feed_silence_is_left_out_when_the_store_fails() -> None:
    m = Metrics()

    def broken() -> dict[str, float]:
        raise OSError("database is locked")

    m.watch_silence(broken)
    assert not any(name == "newswatch_feed_silent_seconds" for name, _ in samples(m))


@contextmanager
def _root_handler(handler: logging.Handler) -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield logging.getLogger("newswatch.test")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_a_record_logged_under_the_bar_erases_it_then_the_bar_comes_back() -> None:
    tty = FakeTty()
    handler = ConsoleHandler(tty)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    with _root_handler(handler) as log, Progress(2, tty, min_interval=0) as progress:
        log.info("before any bar")
        progress.feed_done("a", "ok", 0.1, 2)
        bar = progress.line()
        log.warning("feed b failed")
        progress.feed_done("b", "timeout", 5.0, 0)
    assert handler.live is None  # detached when the bar is done
    assert tty.getvalue() == (
        "INFO before any bar\n"
        f"\r{bar}"
        f"\r{' ' * len(bar)}\r"
        "WARNING feed b failed\n"
        f"\r{bar}"
        f"\r{progress.line()}"
        f"\r{' ' * len(progress.line())}\r"
    )


def test_a_bar_on_a_pipe_leaves_the_log_handler_alone() -> None:
    piped = io.StringIO()
    handler = ConsoleHandler(piped)
    with _root_handler(handler) as log, Progress(1, piped, min_interval=0) as progress:
        assert handler.live is None
        log.warning("plain")
        progress.feed_done("a", "ok", 0.1, 1)
    assert piped.getvalue() == "plain\n"
