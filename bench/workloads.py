"""The measured work: poll cycles, the naive loop, matching and parsing, each timed.

Wall time is ``time.perf_counter``; CPU time is this process's
``time.process_time`` (all its threads; the feed server is another process, so
its CPU is not counted). "Per core" rates divide by CPU seconds.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import feedparser

from bench.corpus import (
    FORMATS,
    Vocabulary,
    feed_format,
    feed_items,
    make_queries,
    make_stories,
    naive_terms,
    render,
)
from bot.config.schema import Feed, Rule, Settings
from bot.feeds.parse import parse_feed
from bot.fetch.client import Fetcher
from bot.model import Item
from bot.pipeline.cycle import Pipeline
from bot.rules.match import RuleSet
from bot.store import FeedRow, open_store


@dataclass
class Timed:
    wall: float
    cpu: float
    count: int  # feeds or items processed
    extra: dict[str, object]

    @property
    def rate(self) -> float:
        return self.count / self.wall if self.wall else float("inf")


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def rules_of(count: int, seed: int = 5) -> list[Rule]:
    return [
        Rule(id=f"r{i}", title=f"Rule {i}", query=q)
        for i, q in enumerate(make_queries(count, seed))
    ]


# ---------------------------------------------------------------- poll cycles


def settings_for(urls: list[str], store: str, concurrency: int | None = None) -> Settings:
    feeds = tuple(Feed(id=f"f{i}", url=u) for i, u in enumerate(urls))
    http = {} if concurrency is None else {"http": {"concurrency": concurrency}}
    return Settings.model_validate({"store": store, "feeds": feeds, **http})


async def _cycles(
    settings: Settings,
    rules: list[Rule],
    steady: int,
    advance: Callable[[int], int],
    *,
    skip_first: bool = False,
    profiler: object | None = None,
) -> list[Timed]:
    """Poll every feed once (``first``), then ``steady`` times after ``advance(k)``."""
    store = open_store(settings.store)
    store.sync_feeds([FeedRow(f.id, f.url) for f in settings.feeds], datetime.now(UTC))
    out: list[Timed] = []
    try:
        async with Fetcher(settings.http) as fetcher:
            pipeline = Pipeline(settings, rules, store, fetcher, {})
            for k in range(1 if skip_first else 0, steady + 1):
                changed = advance(k) if k else len(settings.feeds)
                kind = "steady" if k else "first"
                section = profiler.run(kind) if profiler is not None else nullcontext()  # type: ignore[attr-defined]
                with section:
                    w, c = time.perf_counter(), time.process_time()
                    report = await pipeline.poll(due_only=False)
                    wall, cpu = time.perf_counter() - w, time.process_time() - c
                statuses: dict[str, int] = {}
                for f in report.feeds:
                    statuses[f.status] = statuses.get(f.status, 0) + 1
                out.append(
                    Timed(
                        wall,
                        cpu,
                        len(report.feeds),
                        {
                            "kind": kind,
                            "statuses": statuses,
                            "changed": changed,
                            "new_items": sum(f.new_items for f in report.feeds),
                            "alerts": len(report.alerts),
                        },
                    )
                )
    finally:
        store.close()
    return out


# ---------------------------------------------------------------- the naive loop


class NaiveMatcher:
    """What many bots do: one compiled ``re`` per rule term, a rule matches when any term does."""

    def __init__(self, queries: list[str]) -> None:
        self.rules = [[self._compile(t) for t in naive_terms(q)] for q in queries]

    @staticmethod
    def _compile(term: str) -> re.Pattern[str]:
        if term.startswith("/") and term.endswith("/"):
            return re.compile(term[1:-1], re.IGNORECASE)
        if term.endswith("*"):
            return re.compile(r"\b" + re.escape(term[:-1]) + r"\w*", re.IGNORECASE)
        return re.compile(r"\b" + re.escape(term) + r"\b", re.IGNORECASE)

    def match(self, text: str) -> list[int]:
        return [i for i, terms in enumerate(self.rules) if any(t.search(text) for t in terms)]


def naive_cycle(
    urls: list[str], state: dict[str, dict[str, object]], seen: set[str], matcher: NaiveMatcher
) -> Timed:
    """``feedparser.parse(url)`` per feed in turn (conditional when it can), then regexes."""
    w, c = time.perf_counter(), time.process_time()
    matches = not_modified = 0
    for url in urls:
        known = state.get(url, {})
        d = feedparser.parse(url, etag=known.get("etag"), modified=known.get("modified"))
        if d.get("status") == 304:
            not_modified += 1
            continue
        state[url] = {"etag": d.get("etag"), "modified": d.get("modified")}
        for e in d.entries:
            key = url + (e.get("id") or e.get("link") or e.get("title", ""))
            if key in seen:
                continue
            seen.add(key)
            if known:  # the first fetch of a feed only marks its items seen
                matches += len(matcher.match(e.get("title", "") + "\n" + e.get("summary", "")))
    return Timed(
        time.perf_counter() - w,
        time.process_time() - c,
        len(urls),
        {"not_modified": not_modified, "matches": matches},
    )


# ---------------------------------------------------------------- matching


def corpus_items(count: int, seed: int = 11) -> list[Item]:
    """``count`` items as the pipeline sees them: rendered RSS parsed by parse_feed."""
    stories = make_stories(max(2000, count // 5), seed)
    items: list[Item] = []
    feed = 0
    while len(items) < count:
        doc = render("rss", feed, feed_items(stories, feed, 100 + feed))
        items += parse_feed(doc, feed_id=f"f{feed}", url="https://example.org/").items
        feed += 1
    return items[:count]


def match_ours(
    ruleset: RuleSet, items: list[Item], budget: float = float("inf")
) -> tuple[float, float, int, int]:
    """(wall, cpu, matches, items done): every item, or as many as ``budget`` seconds allow."""
    tags: frozenset[str] = frozenset()
    w, c = time.perf_counter(), time.process_time()
    matches = done = 0
    for item in items:
        matches += len(ruleset.match(item, tags))
        done += 1
        if not done % 100 and time.perf_counter() - w > budget:
            break
    return time.perf_counter() - w, time.process_time() - c, matches, done


def match_naive(matcher: NaiveMatcher, items: list[Item], budget: float = 1.0) -> Timed:
    """Items per second of the naive matcher, on as many items as fit in ``budget`` seconds."""
    w, c = time.perf_counter(), time.process_time()
    done = matches = 0
    for item in items:
        matches += len(matcher.match(item.title + "\n" + item.summary + "\n" + item.content))
        done += 1
        if done >= 20 and time.perf_counter() - w > budget:
            break
    return Timed(time.perf_counter() - w, time.process_time() - c, done, {"matches": matches})


# ---------------------------------------------------------------- parsing


def documents(fmt: str, count: int, seed: int = 13) -> list[bytes]:
    stories = make_stories(2000, seed)
    feeds = [f for f in range(count * 10) if feed_format(f) == fmt][:count]
    return [render(fmt, f, feed_items(stories, f, 100)) for f in feeds]


def parse_ours(docs: list[bytes]) -> Timed:
    wall, cpu, items = timed(
        lambda: sum(len(parse_feed(d, feed_id="f", url="https://example.org/").items) for d in docs)
    )
    return Timed(wall, cpu, len(docs), {"items": items})


def parse_feedparser(docs: list[bytes]) -> Timed:
    """Plain feedparser, as a naive bot calls it (defaults: sanitising and URI resolution on)."""
    wall, cpu, items = timed(
        lambda: sum(len(feedparser.parse(io.BytesIO(d)).entries) for d in docs)
    )
    return Timed(wall, cpu, len(docs), {"items": items})


def warm_up() -> None:
    """First-use costs (tokenizer tables, regex compilation) are paid once per process."""
    for fmt in FORMATS:
        parse_feed(documents(fmt, 1)[0], feed_id="w", url="https://example.org/")
    RuleSet(rules_of(10)).match(corpus_items(5)[0])
    Vocabulary()
