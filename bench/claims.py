"""Claims per second on a real store, with one and several worker processes.

Measures the three hot writes of a replica: claiming a feed and recording its
poll (``feeds``), claiming an outbox row and marking it sent (``outbox``), and
recording a poll that inserts many new items (``items``). Every claimed id is
checked across workers: a row claimed twice fails the run.

    .venv/bin/python bench/claims.py                       # PostgreSQL at the test DSN
    .venv/bin/python bench/claims.py --store sqlite        # a temporary SQLite file
    .venv/bin/python bench/claims.py --workers 1 4 --batch 1 10 --seconds 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.model import Alert, Item, QueuedAlert, Summary
from bot.store import FeedRow, PollOutcome, open_store

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@contextmanager
def scratch_store(kind: str, dsn: str) -> Iterator[str]:
    """A fresh, empty store URL, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:{folder}/bench.db"
        return
    import psycopg

    name = f"newswatch_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(dsn)._replace(path="/" + name))
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alert(feed: str, key: str) -> QueuedAlert:
    a = Alert(
        rule_id="r",
        rule_title="R",
        destination="desk",
        feed_id=feed,
        source=feed,
        item_key=key,
        title=key,
        link=None,
        published=None,
        first_seen=T0,
        summary=Summary("s"),
        terms=("t",),
    )
    return QueuedAlert(a, (f"story:{feed}:{key}",), T0)


def _feed_worker(
    url: str, batch: int, seconds: float, out: multiprocessing.Queue, start: Any
) -> None:
    store = open_store(url)
    owner = f"w{os.getpid()}"
    claimed: list[str] = []
    start.wait()
    began = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = store.claim_feeds(owner, T0, 600, batch, due_only=True)
        if not states:
            break
        for s in states:
            store.record_poll(PollOutcome(s.feed_id, owner, T0, T0 + timedelta(days=1)))
            claimed.append(s.feed_id)
    out.put((began, time.time(), claimed))
    store.close()


def _outbox_worker(
    url: str, batch: int, seconds: float, out: multiprocessing.Queue, start: Any
) -> None:
    store = open_store(url)
    owner = f"w{os.getpid()}"
    claimed: list[int] = []
    start.wait()
    began = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        entries = store.claim_outbox(owner, T0, 600, batch, due_only=True)
        if not entries:
            break
        store.mark_sent([e.id for e in entries], owner, T0)
        claimed.extend(e.id for e in entries)
    out.put((began, time.time(), claimed))
    store.close()


def _run_workers(
    target: object, url: str, workers: int, batch: int, seconds: float
) -> tuple[float, Counter[object]]:
    """Workers start together on a barrier once connected; the clock runs from the first
    start to the last finish, so process start-up is not counted."""
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    start = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=target, args=(url, batch, seconds, out, start)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    return elapsed, Counter(x for r in results for x in r[2])


def bench_feeds(kind: str, dsn: str, workers: int, batch: int, seconds: float, n: int) -> str:
    with scratch_store(kind, dsn) as url:
        store = open_store(url)
        store.sync_feeds([FeedRow(f"f{i:06d}", f"http://x/{i}") for i in range(n)], T0)
        store.close()
        elapsed, seen = _run_workers(_feed_worker, url, workers, batch, seconds)
    twice = sum(1 for c in seen.values() if c > 1)
    total = sum(seen.values())
    return (
        f"feeds   {kind:8} workers={workers} batch={batch:3}: {total:6} claims in "
        f"{elapsed:5.2f}s = {total / elapsed:7.0f}/s, claimed twice: {twice}"
    )


def bench_outbox(kind: str, dsn: str, workers: int, batch: int, seconds: float, n: int) -> str:
    with scratch_store(kind, dsn) as url:
        store = open_store(url)
        store.sync_feeds([FeedRow("a", "http://x/a")], T0)
        store.claim_feeds("setup", T0, 60, 1, due_only=False)
        items = [Item("a", f"k{i:06d}", f"t{i}") for i in range(n)]
        store.record_poll(
            PollOutcome(
                "a", "setup", T0, T0, items=items, alerts=[_alert("a", i.key) for i in items]
            )
        )
        store.close()
        elapsed, seen = _run_workers(_outbox_worker, url, workers, batch, seconds)
    twice = sum(1 for c in seen.values() if c > 1)
    total = sum(seen.values())
    return (
        f"outbox  {kind:8} workers={workers} batch={batch:3}: {total:6} claims in "
        f"{elapsed:5.2f}s = {total / elapsed:7.0f}/s, claimed twice: {twice}"
    )


def bench_items(kind: str, dsn: str, per_poll: int, polls: int) -> str:
    with scratch_store(kind, dsn) as url:
        store = open_store(url)
        store.sync_feeds([FeedRow("a", "http://x/a")], T0)
        started = time.monotonic()
        for p in range(polls):
            at = T0 + timedelta(hours=p)
            store.claim_feeds("w", at, 60, 1, due_only=False)
            items = [
                Item(
                    "a",
                    f"p{p}-k{i:05d}",
                    f"title {i}",
                    f"http://n/{p}/{i}",
                )
                for i in range(per_poll)
            ]
            alerts = [_alert("a", i.key) for i in items[: per_poll // 10]]
            store.record_poll(PollOutcome("a", "w", at, at, items=items, alerts=alerts))
        elapsed = time.monotonic() - started
        store.close()
    total = per_poll * polls
    return (
        f"items   {kind:8} {polls} polls x {per_poll} new items (10% alerting): "
        f"{elapsed * 1000 / polls:6.1f} ms/poll = {total / elapsed:7.0f} items/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--dsn", default=os.environ.get("NEWSWATCH_TEST_POSTGRES", DEFAULT_DSN))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rows", type=int, default=20_000, help="feeds / outbox rows to claim")
    args = parser.parse_args()
    print(bench_items(args.store, args.dsn, 500, 20), flush=True)
    for batch in args.batch:
        for workers in args.workers:
            print(
                bench_feeds(args.store, args.dsn, workers, batch, args.seconds, args.rows),
                flush=True,
            )
            print(
                bench_outbox(args.store, args.dsn, workers, batch, args.seconds, args.rows),
                flush=True,
            )


if __name__ == "__main__":
    main()
