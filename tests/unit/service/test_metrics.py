"""Metrics and progress, the PipelineEvents: own registry for series, a bar only on a TTY."""

from __future__ import annotations

import io

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bot.cli.progress import Progress
from bot.service.metrics import Metrics
from bot.store import OutboxCounts


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
