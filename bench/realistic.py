"""The realistic poll: HTTPS from 500 hosts, a new TLS connection each time, real feed documents,
then the bot's own parse and match; CPU per poll by stage, against a baseline in the same run.

    .venv/bin/python -m bench realistic                      # baseline match=naive
    .venv/bin/python -m bench realistic --baseline "" --ours ""  # A/A: the noise floor
    .venv/bin/python -m bench realistic --baseline parse=mymodule:read_feed --polls 1000

What users run: feeds polled every few minutes from hundreds of publishers, so no
connection survives from one poll to the next (keep-alive lasts seconds), every
document is a real one (``tests.paths.CORPUS``: ``NEWSWATCH_CORPUS``, or ``--corpus``), and
tens to a thousand rules. The server (:mod:`bench.tlsfeeds`) runs in a child
process; every figure is CPU time of this process (``time.process_time``), so
only the bot's side is counted.

A poll is the bot's own code, in turn: ``fetch`` (a conditional GET through the
fetch stage, TCP + TLS handshake + HTTP + decompression), then for a 200
``parse`` (the document to items: ``read_feed``, then ``Draft.item`` for every
entry, timed apart: a steady poll converts only its new entries) and ``match``
(every item through the rule set; each rule count has its own rule set, timed
separately, on the same items). Polls run one at a time by default, as the
daemon's polls spread over the interval mostly do, so each stage's CPU is
measured around it exactly; ``--concurrency N`` runs them N at once, as in a
first cycle (the fetch stage is then the batch's CPU less parse and match). A
share of polls (``--changed``, 0.5) gets the document (200); the others send the
ETag they saw and get a 304. The server closes every connection after its answer;
with ``--server-keepalive S`` it keeps them S seconds, as most servers do, so the
client holds idle connections as in production: no poll finds its own connection
again (a host comes back after the whole plan), but the pool is not empty.

Each stage is pluggable, so the same end-to-end comparison can be re-run after the
code behind a stage changes: a variant is ``fetch=…,parse=…,match=…`` (stages not
named take the shipped code); a name is one of :data:`FETCHERS`, :data:`PARSERS`,
:data:`MATCHERS`, or ``module:function`` with the signature of the shipped one
(see those registries). ``--baseline`` and ``--ours`` are two variants; every poll
is made by both, one after the other (the order alternating), so both meet the
same document at the same moment of a machine shared with other work. A pass is
the plan's polls; one warm-up pass, then ``--repeats`` measured ones. The
figures are medians over the passes, and a ratio is baseline CPU / ours (above 1:
ours is cheaper).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bench.tlsfeeds import TlsFeedServer, corpus_files
from tests.paths import CORPUS

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("fetch", "parse", "match")


class Fetching(Protocol):
    async def fetch(self, url: str, *, etag: str | None = None) -> Any: ...


FetchFactory = Callable[[], contextlib.AbstractAsyncContextManager[Fetching]]
ParseFn = Callable[..., Any]  # read_feed's signature: (body, *, feed_id, url, content_type)
MatchFactory = Callable[[list[Any]], Callable[[Any], object]]  # rules -> (item -> matches)


# ---------------------------------------------------------------- the stages


@contextlib.asynccontextmanager
async def _shipped_fetcher() -> AsyncIterator[Fetching]:
    from bot.config.schema import Http
    from bot.fetch.client import Fetcher

    async with Fetcher(Http(timeout=30)) as fetcher:
        yield fetcher


FETCHERS: dict[str, FetchFactory] = {"fetcher": _shipped_fetcher}
"""``fetcher``: :class:`bot.fetch.client.Fetcher` as shipped. A plug is a function of no
arguments returning an async context manager that yields an object with
``async fetch(url, *, etag=None)`` returning a :class:`bot.fetch.client.FetchResult`."""


@contextlib.contextmanager
def _shipped_parse() -> Iterator[ParseFn]:
    from bot.feeds.parse import read_feed

    yield read_feed


PARSERS: dict[str, Callable[[], contextlib.AbstractContextManager[ParseFn]]] = {
    "shipped": _shipped_parse,
}
"""``shipped``: :func:`bot.feeds.parse.read_feed`. A plug is a function with ``read_feed``'s
signature whose result has ``entries`` (drafts with ``.item()``) or ``items``."""


def _ruleset(rules: list[Any]) -> Callable[[Any], object]:
    from bot.rules.match import RuleSet

    return RuleSet(rules).match


def _naive(rules: list[Any]) -> Callable[[Any], object]:
    """One ``re`` per term, as many bots do (:class:`bench.workloads.NaiveMatcher`)."""
    from bench.workloads import NaiveMatcher

    matcher = NaiveMatcher([r.query for r in rules if r.query is not None])
    return lambda item: matcher.match(item.title + "\n" + item.summary + "\n" + item.content)


MATCHERS: dict[str, MatchFactory] = {"ruleset": _ruleset, "naive": _naive}
"""``ruleset``: :meth:`bot.rules.match.RuleSet.match`; ``naive``: one ``re`` per term. A plug
is a function taking the rules (:class:`bot.config.schema.Rule`) and returning a
function of one :class:`bot.model.Item`."""


def _plug(registry: dict[str, Any], name: str, stage: str) -> Any:
    if name in registry:
        return registry[name]
    module, _, attribute = name.partition(":")
    if not attribute:
        sys.exit(f"{stage}={name}: not one of {', '.join(registry)} nor module:function")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Variant:
    fetch: str = "fetcher"
    parse: str = "shipped"
    match: str = "ruleset"

    @classmethod
    def of(cls, spec: str) -> Variant:
        """``fetch=…,parse=…,match=…``; a stage not named keeps the shipped code."""
        chosen: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            stage, _, name = part.partition("=")
            if stage not in STAGES or not name:
                sys.exit(f"bad variant part {part!r}: use fetch=…, parse=… or match=…")
            chosen[stage] = name
        return cls(**chosen)

    def __str__(self) -> str:
        return f"fetch={self.fetch},parse={self.parse},match={self.match}"

    def fetcher(self) -> FetchFactory:
        return _plug(FETCHERS, self.fetch, "fetch")

    def parser(self) -> contextlib.AbstractContextManager[ParseFn]:
        if self.parse in PARSERS:
            return PARSERS[self.parse]()
        return contextlib.nullcontext(_plug(PARSERS, self.parse, "parse"))

    def matcher(self) -> MatchFactory:
        return _plug(MATCHERS, self.match, "match")


# ---------------------------------------------------------------- rules


def rule_sets(counts: list[int]) -> dict[int, list[Any]]:
    """The shipped config/rules.yaml, then generated rules (bench.corpus.make_queries)."""
    from bench.workloads import rules_of
    from bot.config.load import load_config

    shipped = list(load_config(ROOT / "config", {}).rules)
    generated = rules_of(max(counts))
    return {n: (shipped + generated)[:n] for n in counts}


# ---------------------------------------------------------------- polls


@dataclass(frozen=True)
class Poll:
    host: int
    document: int
    changed: bool  # sent without the ETag (answered 200), or with it (304)


def plan(polls: int, hosts: int, documents: int, changed: float, seed: int) -> list[Poll]:
    rng = random.Random(seed)
    return [Poll(i % hosts, i % documents, rng.random() < changed) for i in range(polls)]


@dataclass
class Pass:
    """One variant's pass over the plan: CPU seconds by stage, summed over the polls."""

    fetch: float = 0.0  # every poll: the batch's CPU less what parse and match took in it
    fetch_200: float = 0.0  # timed around each fetch: exact when polls run one at a time
    fetch_304: float = 0.0
    read: float = 0.0  # the document to keyed entries (read_feed)
    convert: float = 0.0  # every entry's text to an Item (Draft.item)
    match: dict[int, float] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    items: int = 0
    matches: dict[int, int] = field(default_factory=dict)
    parse_failures: int = 0
    wall: float = 0.0

    def count(self, outcome: str) -> None:
        self.answered[outcome] = self.answered.get(outcome, 0) + 1


async def run_pass(
    variants: dict[str, Variant],
    polls: list[Poll],
    server: TlsFeedServer,
    etags: dict[int, str],
    matchers: dict[str, dict[int, Callable[[Any], object]]],
    concurrency: int = 1,
) -> dict[str, Pass]:
    """The polls of ``polls`` in batches of ``concurrency`` at once, each batch made by every
    variant one after the other (in an order that alternates), so that every variant meets
    the same documents at the same moment of a machine shared with other work. ``etags``
    (by document) is filled from 200s."""
    out = {name: Pass() for name in variants}
    for name, sets in matchers.items():
        out[name].match, out[name].matches = dict.fromkeys(sets, 0.0), dict.fromkeys(sets, 0)
    gc.collect()
    async with contextlib.AsyncExitStack() as stack:
        fetchers = {
            name: await stack.enter_async_context(variant.fetcher()())
            for name, variant in variants.items()
        }
        names = list(variants)
        for b, first in enumerate(range(0, len(polls), concurrency)):
            batch = polls[first : first + concurrency]
            for name in names if b % 2 == 0 else reversed(names):
                done = out[name]
                inline = done.read + done.convert + sum(done.match.values())
                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(
                    *(
                        _poll(
                            poll,
                            variants[name],
                            fetchers[name],
                            matchers[name],
                            server,
                            etags,
                            done,
                        )
                        for poll in batch
                    )
                )
                inline = done.read + done.convert + sum(done.match.values()) - inline
                done.fetch += time.process_time() - cpu - inline
                done.wall += time.perf_counter() - started
    return out


async def _poll(
    poll: Poll,
    variant: Variant,
    fetcher: Fetching,
    matchers: dict[int, Callable[[Any], object]],
    server: TlsFeedServer,
    etags: dict[int, str],
    out: Pass,
) -> None:
    """One poll by one variant, each stage's CPU time added to ``out``."""
    from bot.errors import FetchError

    clock = time.process_time
    etag = None if poll.changed else etags.get(poll.document)
    url = server.url(poll.host, poll.document)
    t0 = clock()
    try:
        result = await fetcher.fetch(url, etag=etag)
    except FetchError as error:
        out.fetch_200 += clock() - t0
        out.count(f"failed:{error.reason}")
        return
    t1 = clock()
    if result.not_modified:
        out.fetch_304 += t1 - t0
        out.count("304")
        return
    out.fetch_200 += t1 - t0
    out.count("200")
    if result.etag:
        etags[poll.document] = result.etag
    items: list[Any] = []
    with variant.parser() as parse:
        t1 = clock()
        try:
            parsed = parse(
                result.body,
                feed_id=f"d{poll.document}",
                url=result.url,
                content_type=result.content_type,
            )
        except FetchError:
            out.parse_failures += 1
            parsed = None
        t2 = clock()
        out.read += t2 - t1
        if parsed is not None:
            if hasattr(parsed, "items"):
                items = list(parsed.items)
            else:
                items = [draft.item() for draft in parsed.entries]
        out.convert += clock() - t2
    out.items += len(items)
    for n, match in matchers.items():
        t3 = clock()
        found = 0
        for item in items:
            found += len(match(item))  # type: ignore[arg-type]
        out.match[n] += clock() - t3
        out.matches[n] += found


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    label: str
    baseline: float  # CPU milliseconds per poll (median over passes)
    ours: float

    @property
    def ratio(self) -> float:
        return self.baseline / self.ours if self.ours else float("inf")


def figures(
    passes: dict[str, list[Pass]], counts: list[int], polls: list[Poll], concurrency: int
) -> list[Figure]:
    """Medians over the passes of CPU ms per poll: each stage, then whole polls. A fetch is
    timed on its own (200 and 304 apart) only when polls run one at a time."""
    n200 = sum(p.changed for p in polls) or 1
    n304 = (len(polls) - sum(p.changed for p in polls)) or 1

    def per(name: str, value: Callable[[Pass], float], each: int) -> float:
        return statistics.median(value(p) * 1000 / each for p in passes[name])

    def row(label: str, value: Callable[[Pass], float], each: int) -> Figure:
        return Figure(label, per("baseline", value, each), per("ours", value, each))

    alone = concurrency == 1
    rows = [row("fetch, every poll (new TCP+TLS)", lambda p: p.fetch, len(polls))]
    if alone:
        rows += [
            row("fetch, 200", lambda p: p.fetch_200, n200),
            row("fetch, 304", lambda p: p.fetch_304, n304),
        ]
    rows += [
        row("parse: read_feed (per 200)", lambda p: p.read, n200),
        row("parse: Draft.item, every entry (per 200)", lambda p: p.convert, n200),
        row("parse, both (per 200)", lambda p: p.read + p.convert, n200),
    ]
    for n in counts:
        rows.append(row(f"match, {n} rules (per 200)", lambda p, n=n: p.match[n], n200))
    if alone:
        for n in counts:
            rows.append(
                row(
                    f"poll answered 200, {n} rules",
                    lambda p, n=n: p.fetch_200 + p.read + p.convert + p.match[n],
                    n200,
                )
            )
        rows.append(row("poll answered 304", lambda p: p.fetch_304, n304))
    for n in counts:
        rows.append(
            row(
                f"poll, the mix, {n} rules",
                lambda p, n=n: p.fetch + p.read + p.convert + p.match[n],
                len(polls),
            )
        )
    return rows


def table(rows: list[Figure]) -> str:
    width = max(len(r.label) for r in rows)
    lines = [f"{'CPU ms per poll':<{width}}  {'baseline':>9}  {'ours':>9}  {'baseline/ours':>13}"]
    for r in rows:
        lines.append(f"{r.label:<{width}}  {r.baseline:9.3f}  {r.ours:9.3f}  {r.ratio:12.2f}x")
    return "\n".join(lines)


# ---------------------------------------------------------------- the command


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench realistic", description=__doc__.splitlines()[0]
    )
    p.add_argument("--baseline", default="match=naive", help="variant (default %(default)s)")
    p.add_argument("--ours", default="", help="variant (default: the shipped code)")
    p.add_argument("--rules", default="10,100,1000", help="rule counts (default %(default)s)")
    p.add_argument("--polls", type=int, default=500, help="polls per pass (default %(default)s)")
    p.add_argument("--hosts", type=int, default=500, help="publishers (default %(default)s)")
    p.add_argument("--changed", type=float, default=0.5, help="share of polls answered 200")
    p.add_argument(
        "--concurrency", type=int, default=1, help="polls at once (default 1: timed one by one)"
    )
    p.add_argument(
        "--server-keepalive",
        type=float,
        default=0.0,
        help="seconds the server keeps an idle connection (default 0: Connection: close)",
    )
    p.add_argument("--repeats", type=int, default=3, help="measured passes per variant")
    p.add_argument("--key", choices=("ecdsa", "rsa"), default="ecdsa", help="certificate keys")
    p.add_argument("--corpus", type=Path, default=CORPUS, help="folder of feed documents")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--output", type=Path, help="JSON (default bench/results/realistic-<ts>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.corpus.is_dir() or not corpus_files(args.corpus):
        sys.exit(
            f"no feed corpus at {args.corpus}: the realistic benchmark serves real documents; "
            "pass --corpus DIR or set NEWSWATCH_CORPUS"
        )
    from bench.run import machine

    counts = sorted({int(n) for n in args.rules.split(",") if n.strip()})
    variants = {"baseline": Variant.of(args.baseline), "ours": Variant.of(args.ours)}
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"commit {info['commit']}, load average {info['loadavg_at_start'][0]:.2f}",  # type: ignore[index]
        flush=True,
    )
    for name, variant in variants.items():
        print(f"{name}: {variant}", flush=True)
    rules = rule_sets(counts)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        ca = Path(folder) / "ca.pem"
        os.environ["SSL_CERT_FILE"] = str(ca)  # the Fetcher's trust store (httpx reads it)
        for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            os.environ.pop(proxy, None)
        with TlsFeedServer(
            args.corpus, ca, hosts=args.hosts, key=args.key, keepalive=args.server_keepalive
        ) as server:
            polls = plan(args.polls, args.hosts, server.documents, args.changed, args.seed)
            matchers = {
                name: {n: v.matcher()(rules[n]) for n in counts} for name, v in variants.items()
            }
            etags: dict[int, str] = {}
            warm = [Poll(p.host, p.document, True) for p in polls]
            asyncio.run(run_pass(variants, warm, server, etags, matchers, args.concurrency))
            passes: dict[str, list[Pass]] = {name: [] for name in variants}
            for repeat in range(args.repeats):
                work = run_pass(variants, polls, server, etags, matchers, args.concurrency)
                done = asyncio.run(work)
                for name, result in done.items():
                    passes[name].append(result)
                    print(
                        f"  pass {repeat + 1} {name}: {result.answered}, {result.items} items, "
                        f"{result.wall:.1f}s wall",
                        flush=True,
                    )
    rows = figures(passes, counts, polls, args.concurrency)
    print()
    print(
        f"{len(polls)} polls per pass ({sum(p.changed for p in polls)} answered 200), "
        f"{args.hosts} hosts, {len(set(p.document for p in polls))} documents, "
        f"{args.concurrency} at once, server keep-alive {args.server_keepalive:g}s, "
        f"median of {args.repeats} passes; CPU of the bot's process only"
    )
    for name, done in passes.items():
        last = done[-1]
        print(
            f"{name}: {last.items} items, {last.parse_failures} documents refused, matches "
            + ", ".join(f"{last.matches[n]} at {n} rules" for n in counts)
        )
    print(table(rows))
    RESULTS = ROOT / "bench" / "results"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.output or RESULTS / f"realistic-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    info["loadavg_at_end"] = os.getloadavg()
    path.write_text(
        json.dumps(
            {
                "machine": info,
                "seconds": time.monotonic() - started,
                "settings": {k: str(v) for k, v in vars(args).items()},
                "variants": {k: str(v) for k, v in variants.items()},
                "rows": [{**r.__dict__, "ratio": r.ratio} for r in rows],
                "passes": {k: [p.__dict__ for p in v] for k, v in passes.items()},
            },
            indent=1,
        )
    )
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
