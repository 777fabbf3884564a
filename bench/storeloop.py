"""Store calls on the event loop vs in the store's own thread (bot/store/aio.py).

    .venv/bin/python -m bench.storeloop                     # PostgreSQL at the test DSN, SQLite
    .venv/bin/python -m bench.storeloop --store sqlite --feeds 300 --hold 0.5

Three measurements, each with the baseline in the same run:

``stall``: one ``Pipeline.poll`` of N feeds (a loopback feed server in its own process,
10 ms per answer) while one feed's write waits ``--hold`` seconds for a lock another
connection holds (a PostgreSQL row lock, or an SQLite write transaction). Reported: the
longest fetch, the longest event-loop stall (a 5 ms ticker's longest gap) and the
poll's wall time. Baseline: the same pipeline making each store call on the loop, as
it did before (``InlineStore``).

``cycle``: a steady poll of N feeds (mostly 304s) with no lock held, wall and CPU time of
the process, median of ``--repeat``: what the thread hop costs when nothing is slow.

``roundtrip``: microseconds per trivial store call (``SELECT 1``) made from a coroutine:
on the loop, through the store's thread, and with psycopg's async connection (and
aiosqlite, when installed; it is not a dependency): the per-call cost of each design.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from bench.claims import scratch_store
from bench.feedserver import FeedServerProcess
from bot.config.schema import Settings
from bot.fetch.client import Fetcher, FetchResult
from bot.pipeline.cycle import Pipeline
from bot.store import FeedRow, Store, open_store
from bot.store.aio import AsyncStore
from bot.store.sqlite import sqlite_path

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


class InlineStore(AsyncStore):
    """The baseline: every store call made on the event loop, as the pipeline did before."""

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(*args, **kwargs)


class Blocker:
    """Holds a lock on feed ``f0`` from another connection for ``hold`` seconds."""

    def __init__(self, url: str, hold: float) -> None:
        self.url, self.hold = url, hold
        self._done = threading.Event()

    def lock(self) -> None:
        """Take the lock now (blocking until it is held); it is let go ``hold`` s later."""
        held = threading.Event()
        threading.Thread(target=self._hold, args=(held,), daemon=True).start()
        held.wait()

    def _hold(self, held: threading.Event) -> None:
        if self.url.startswith("sqlite:"):
            conn: Any = sqlite3.connect(sqlite_path(self.url), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            conn = psycopg.connect(self.url, autocommit=True)
            conn.execute("BEGIN")
            conn.execute("SELECT 1 FROM feeds WHERE feed_id = 'f0' FOR UPDATE")
        held.set()
        time.sleep(self.hold)
        conn.execute("COMMIT")
        conn.close()
        self._done.set()

    def wait(self) -> None:
        self._done.wait()


class TimedFetcher:
    """The real fetcher, timing each fetch; fetching ``f0`` first takes the blocker's lock."""

    def __init__(self, fetcher: Fetcher, blocker: Blocker | None, first: str) -> None:
        self._fetcher, self._blocker, self._first = fetcher, blocker, first
        self.seconds: list[float] = []

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        started = time.perf_counter()
        result = await self._fetcher.fetch(url, etag=etag, last_modified=last_modified)
        self.seconds.append(time.perf_counter() - started)
        if self._blocker is not None and url == self._first:
            await asyncio.to_thread(self._blocker.lock)
        return result


async def _ticker(gaps: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last - 0.005)
        last = now


async def _poll(
    settings: Settings, store: Store, facade: type[AsyncStore], blocker: Blocker | None
) -> dict[str, float]:
    """One timed poll of every feed; the baseline poll first (items seen, ETags known)."""
    db = facade(store)
    try:
        async with Fetcher(settings.http) as fetcher:
            timed = TimedFetcher(fetcher, None, settings.feeds[0].url)
            pipeline = Pipeline(settings, [], db, timed, {})
            await pipeline.poll(due_only=False)
            timed = TimedFetcher(fetcher, blocker, settings.feeds[0].url)
            pipeline = Pipeline(settings, [], db, timed, {})
            gaps: list[float] = []
            stop = asyncio.Event()
            ticking = asyncio.create_task(_ticker(gaps, stop))
            wall, cpu = time.perf_counter(), time.process_time()
            report = await pipeline.poll(due_only=False)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            stop.set()
            await ticking
    finally:
        db.close()
    if blocker is not None:
        await asyncio.to_thread(blocker.wait)
    assert all(f.status in ("ok", "not_modified") for f in report.feeds), report.failed
    return {
        "fetch_max_ms": max(timed.seconds) * 1000,
        "fetch_p50_ms": statistics.median(timed.seconds) * 1000,
        "loop_stall_ms": max(gaps, default=0.0) * 1000,
        "wall_ms": wall * 1000,
        "cpu_ms": cpu * 1000,
    }


def _measure_poll(
    kind: str, dsn: str, server: FeedServerProcess, hold: float | None, repeat: int
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, facade in (("on the loop", InlineStore), ("store thread", AsyncStore)):
        runs = []
        for _ in range(repeat):
            with scratch_store(kind, dsn) as url:
                settings = Settings.model_validate(
                    {
                        "store": url,
                        "feeds": [{"id": f"f{i}", "url": u} for i, u in enumerate(server.urls())],
                    }
                )
                store = open_store(url)
                try:
                    store.sync_feeds(
                        [FeedRow(f.id, f.url) for f in settings.feeds], datetime.now(UTC)
                    )
                    blocker = Blocker(url, hold) if hold is not None else None
                    runs.append(asyncio.run(_poll(settings, store, facade, blocker)))
                finally:
                    store.close()
        out[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return out


def _roundtrips(kind: str, dsn: str, calls: int) -> dict[str, float]:
    """Microseconds per ``SELECT 1`` awaited from a coroutine, per design."""
    out: dict[str, float] = {}
    with scratch_store(kind, dsn) as url:
        store = open_store(url)
        try:
            for name, facade in (("on the loop", InlineStore), ("store thread", AsyncStore)):
                db = facade(store)

                async def run(db: AsyncStore = db) -> float:
                    started = time.perf_counter()
                    for _ in range(calls):
                        await db._call(store.ping)
                    return time.perf_counter() - started

                out[name] = asyncio.run(run()) / calls * 1e6
                db.close()
        finally:
            store.close()
        out.update(_native_async(kind, url, calls))
    return out


def _native_async(kind: str, url: str, calls: int) -> dict[str, float]:
    if kind == "postgresql":
        import psycopg

        async def pg() -> float:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                started = time.perf_counter()
                for _ in range(calls):
                    await (await conn.execute("SELECT 1")).fetchall()
                return time.perf_counter() - started

        return {"psycopg async": asyncio.run(pg()) / calls * 1e6}
    try:
        import aiosqlite  # type: ignore[import-not-found]
    except ImportError:
        print("  (aiosqlite not installed: pip install aiosqlite to compare it)", file=sys.stderr)
        return {}

    async def lite() -> float:
        async with aiosqlite.connect(sqlite_path(url)) as conn:
            started = time.perf_counter()
            for _ in range(calls):
                await (await conn.execute("SELECT 1")).fetchall()
            return time.perf_counter() - started

    return {"aiosqlite": asyncio.run(lite()) / calls * 1e6}


def _table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(title)
    keys = list(next(iter(rows.values())))
    print("  " + " " * 14 + "".join(f"{k:>15}" for k in keys))
    for name, values in rows.items():
        print(f"  {name:<14}" + "".join(f"{values[k]:>15.1f}" for k in keys))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--store", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--hold", type=float, default=0.5, help="seconds the lock is held")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args(argv)
    kinds = ("postgresql", "sqlite") if args.store == "both" else (args.store,)
    with FeedServerProcess(args.feeds) as server:
        for kind in kinds:
            print(f"== {kind}, {args.feeds} feeds, 10 ms per answer ==")
            _table(
                f"stall: one feed's write waits {args.hold:g} s for a lock (median of "
                f"{args.repeat})",
                _measure_poll(kind, args.dsn, server, args.hold, args.repeat),
            )
            _table(
                f"cycle: no lock held (median of {args.repeat})",
                _measure_poll(kind, args.dsn, server, None, args.repeat),
            )
            trips = _roundtrips(kind, args.dsn, args.calls)
            print(f"roundtrip: µs per SELECT 1 ({args.calls} calls)")
            for name, micros in trips.items():
                print(f"  {name:<14}{micros:>15.1f}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
