"""Measurements that run in their own process, so each has a clean peak resident set.

    python -m bench.child wrap -- cycles --port P --feeds 2000 ...  # the child's JSON
                                                # plus RUSAGE_CHILDREN ru_maxrss
    python -m bench.child cycles --port P --feeds N [--store URL] [--steady K] [--profile]
    python -m bench.child naive --port P --feeds N [--steady K]
    python -m bench.child seed --port P --feeds N --store URL

``cycles`` is the pipeline: a first cycle over a fresh SQLite store, then K
steady cycles, each after the server published new items in ``--share`` of the
feeds. ``seed`` writes a store as a daemon restarted on an existing store finds
it (every feed's validators and items recorded through the Store API, without
fetching or parsing), in its own process so its memory is not measured; then
``cycles --store`` measures a 10,000-feed steady state without paying for a
10,000-feed first cycle.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _timed_dict(t: object) -> dict[str, object]:
    return {"wall": t.wall, "cpu": t.cpu, "count": t.count, **t.extra}  # type: ignore[attr-defined]


def _seed(store_url: str, urls: list[str], stories: int) -> None:
    """Record every feed as polled once at the server's first version (validators and items)."""
    from bench.corpus import T0, feed_format, feed_items, make_stories, render
    from bench.feedserver import FIRST_NEWEST
    from bot.feeds.identity import item_key
    from bot.feeds.parse import parse_feed
    from bot.model import Item
    from bot.store import FeedRow, PollOutcome, open_store

    story_list = make_stories(stories)
    now = datetime.now(UTC)
    store = open_store(store_url)
    feeds = len(urls)
    store.sync_feeds([FeedRow(f"f{i}", u) for i, u in enumerate(urls)], now)
    owner = "seeder"
    store.claim_feeds(owner, now, 3600, feeds, due_only=False)
    modified = formatdate(T0.timestamp(), usegmt=True)
    for f in range(feeds):
        entries = feed_items(story_list, f, FIRST_NEWEST)
        items = []
        for e in entries:
            url = f"https://site{f}.example/news/{e.seq}"
            items.append(
                Item(
                    f"f{f}",
                    item_key(url, url, e.story.title, e.published),
                    e.story.title,
                    url,
                    published=e.published,
                )
            )
        if f < 3:  # the keys must be those parse_feed gives, or every item would look new
            doc = render(feed_format(f), f, entries)
            parsed = parse_feed(doc, feed_id=f"f{f}", url=f"http://x/feed/{f}")
            assert [i.key for i in parsed.items] == [i.key for i in items], "seed keys differ"
        store.record_poll(
            PollOutcome(
                f"f{f}",
                owner,
                now,
                now + timedelta(seconds=600),
                etag=f'"{f}-0"',
                last_modified=modified,
                items=items,
            )
        )
    store.close()


def cycles(args: argparse.Namespace) -> dict[str, object]:
    import asyncio
    import urllib.request

    from bench.feedserver import CONTROL_HOST, feed_url
    from bench.workloads import _cycles, rules_of, settings_for

    def advance(k: int) -> int:
        url = (
            f"http://{CONTROL_HOST}:{args.port}/_advance?share={args.share}"
            f"&seed={args.seed + k}&new=5&among={args.feeds}"
        )
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.loads(r.read())["changed"]

    urls = [feed_url(args.port, f, args.hosts) for f in range(args.feeds)]
    rules = rules_of(args.rules)
    with tempfile.TemporaryDirectory() as folder:
        store = args.store or f"sqlite:{folder}/bench.db"
        settings = settings_for(urls, store, args.concurrency)
        profiler = _profiler(args)
        timings = asyncio.run(
            _cycles(
                settings,
                rules,
                args.steady,
                advance,
                skip_first=args.store is not None,
                profiler=profiler,
            )
        )
    out: dict[str, object] = {"cycles": [_timed_dict(t) for t in timings]}
    if profiler is not None:
        out["profile"] = profiler.result
    return out


def naive(args: argparse.Namespace) -> dict[str, object]:
    import urllib.request

    from bench.corpus import make_queries
    from bench.feedserver import CONTROL_HOST, feed_url
    from bench.workloads import NaiveMatcher, naive_cycle

    urls = [feed_url(args.port, f, args.hosts) for f in range(args.feeds)]
    matcher = NaiveMatcher(make_queries(args.rules))
    state: dict[str, dict[str, object]] = {}
    seen: set[str] = set()
    runs = []
    for k in range(args.steady + 1):
        if k:
            url = (
                f"http://{CONTROL_HOST}:{args.port}/_advance?share={args.share}"
                f"&seed={args.seed + k}&new=5&among={args.feeds}"
            )
            urllib.request.urlopen(url, timeout=30).read()
        runs.append(_timed_dict(naive_cycle(urls, state, seen, matcher)))
    return {"cycles": runs}


class _Profiler:
    """pyinstrument around each cycle: the top functions by own time, per cycle kind."""

    def __init__(self) -> None:
        from pyinstrument import Profiler

        self._cls = Profiler
        self.result: dict[str, list[dict[str, object]]] = {}

    def run(self, name: str):  # type: ignore[no-untyped-def]
        from bench.profiling import Section

        return Section(self._cls, name, self.result)


def _profiler(args: argparse.Namespace) -> _Profiler | None:
    return _Profiler() if args.profile else None


def wrap(argv: list[str]) -> None:
    """Run one measurement as a child and report its peak resident set as the kernel counts it."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.child", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": f"exit {proc.returncode}", "stdout": proc.stdout[-2000:]}
    result["ru_maxrss_kb"] = usage.ru_maxrss
    result["exit"] = proc.returncode
    print(json.dumps(result), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "wrap":
        rest = sys.argv[2:]
        wrap(rest[1:] if rest[:1] == ["--"] else rest)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("cycles", "naive", "seed"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--steady", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--stories", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--store", help="an existing (seeded) store: skip the first cycle")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.what == "seed":
        from bench.feedserver import feed_url

        _seed(
            args.store,
            [feed_url(args.port, f, args.hosts) for f in range(args.feeds)],
            args.stories,
        )
        print(json.dumps({"seeded": args.feeds}))
        return
    result = cycles(args) if args.what == "cycles" else naive(args)
    result["self_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
