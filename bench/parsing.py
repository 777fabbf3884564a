"""HTML to text as shipped (lexbor, one pass) against the regex converter it replaced and the
standard library's HTMLParser, per document and per poll.

.venv/bin/python -m bench.parsing                # ~3 minutes on 2 busy cores
.venv/bin/python -m bench.parsing --rounds 5 --https-ms 3.2 --new 5 --no-linearity
.venv/bin/python -m bench.parsing --baseline <git revision of bot/feeds/htmltext.py>

Issue 15: one pass over a real HTML tokenizer, with parse throughput on the real corpus
within 1.25x of the regex converter's. Measured here, on every document of the real-feed
corpus (``tests.paths.CORPUS``, or ``NEWSWATCH_CORPUS``), of tests/fixtures/feeds and of
``python -m bench`` (its generated 50-item feeds, bench/corpus.py), the last two reported
apart: edge cases and synthetic text are not the workload. ``shipped``
(bot/feeds/htmltext.py: selectolax over lexbor) is timed against ``regex``, the
``html_to_text`` of bot/feeds/htmltext.py at ``--baseline`` (by default the last regex
converter), and ``htmlparser``, the standard library's HTMLParser driving the same output
rules in one pass (below; quadratic on unclosed tags and comments on Python 3.11).

(This file also measured the ElementTree reader that parse.py had beside feedparser, at
commit 8be899a: 1.15x per poll over the corpus, which 25 of 80 documents took; 1.5x would
have needed 63-71% of polls to take it. It was removed; see that commit to re-run it.)

Each route is timed on two workloads of one document:

- ``full``: ``parse_feed``, every entry converted to an item (a first poll, ``newswatch test``);
- ``steady``: ``read_feed`` (every entry keyed, its title converted) and ``--new`` entries
  converted to items: a changed document in steady state, where only new entries are.

CPU time (``time.process_time``, garbage collector off) of as many calls as take
``--min-cpu`` seconds, per call; routes alternate within each of ``--rounds`` rounds and
the best round counts. A poll adds what both routes pay alike: a new HTTPS connection and
GET (``--https-ms``, measured by the fetch benchmarks) and matching the converted items
against ``--rules`` synthetic watch rules (bench/corpus.py) and the shipped
config/rules.yaml. The per-poll ratio is the CPU of every document polled once by the
other route over the same by the shipped route (a cycle over the corpus); 304 answers,
which parse nothing, would only bring it closer to 1.

It also counts how often each other route gives the shipped converter's text, field by
field, and times each route on the adversarial inputs of tests/unit/test_linear.py at 1x
and 8x (``--no-linearity`` skips this; HTMLParser takes tens of seconds on them).
Results are printed and written to ``bench/results/parsing-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import bot.feeds.htmltext as htmltext
import bot.feeds.parse as parse
from bench.workloads import documents as synthetic_documents
from bench.workloads import rules_of
from bot.config.load import load_rules
from bot.config.schema import Settings
from bot.errors import FetchError
from bot.model import Item
from bot.rules.match import RuleSet
from tests.linearity import cpu_time
from tests.paths import CORPUS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
RULES = ROOT / "config" / "rules.yaml"
RESULTS = ROOT / "bench" / "results"
URL = "https://example.org/feed"


# ---------------------------------------------------------------- the regex route

BASELINE_REF = "4bc602f"  # the last revision whose html_to_text was regular expressions


def baseline_module(ref: str) -> ModuleType:
    """bot/feeds/htmltext.py as it was at git revision ``ref``."""
    source = subprocess.run(
        ["git", "show", f"{ref}:bot/feeds/htmltext.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("bench_baseline_htmltext", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{ref}:bot/feeds/htmltext.py", "exec"), module.__dict__)
    return module


# ---------------------------------------------------------------- the HTMLParser route

_BLOCKS = frozenset(htmltext._BLOCK_NAMES)
_INVISIBLE = frozenset(htmltext._HIDDEN)


class _TextParser(HTMLParser):
    """Text tokens kept, block tags as line breaks, cells as spaces, invisible content dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden: list[str] = []  # the invisible element being skipped, once per nesting

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            if tag == self.hidden[-1]:
                self.hidden.append(tag)
        elif tag in _INVISIBLE:
            self.hidden.append(tag)
        else:
            self._separate(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.hidden:
            self._separate(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if tag == self.hidden[-1]:
                self.hidden.pop()
        else:
            self._separate(tag)

    def _separate(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def htmlparser_html_to_text(fragment: str) -> str:
    """:func:`bot.feeds.htmltext.html_to_text`'s output rules over HTMLParser's tokens."""
    if "<" not in fragment:
        return htmltext._collapse(html.unescape(fragment))
    parser = _TextParser()
    parser.feed(fragment)
    parser.close()
    return htmltext._collapse("".join(parser.parts))


# ---------------------------------------------------------------- routes


@contextmanager
def converter(convert: Callable[[str], str]) -> Iterator[None]:
    """Every field converted by ``convert`` instead of the shipped converter."""
    shipped = htmltext.html_to_text
    htmltext.html_to_text = convert
    try:
        yield
    finally:
        htmltext.html_to_text = shipped


@contextmanager
def shipped() -> Iterator[None]:
    yield


ROUTES: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "shipped": shipped,
    "regex": lambda: converter(regex_html_to_text),
    "htmlparser": lambda: converter(htmlparser_html_to_text),
}
regex_html_to_text: Callable[[str], str] = htmltext.html_to_text  # set by main()


# ---------------------------------------------------------------- documents


@dataclass
class Document:
    name: str
    source: str  # corpus or fixtures
    body: bytes
    kind: str = ""  # json, refused, xml
    items: list[Item] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # "<workload>/<route>" -> ms
    match_ms: dict[str, float] = field(default_factory=dict)  # "<rules>/<workload>" -> ms


def documents(include_fixtures: bool, synthetic: int) -> list[Document]:
    if not CORPUS.is_dir():
        sys.exit(f"no feed corpus at {CORPUS}: this benchmark measures real documents")
    found = [Document(p.name, "corpus", p.read_bytes()) for p in _files(CORPUS)]
    if include_fixtures:
        found += [Document(p.name, "fixtures", p.read_bytes()) for p in _files(FIXTURES)]
    for fmt in ("rss", "atom", "json") if synthetic else ():
        found += [
            Document(f"bench-{fmt}-{i}", "synthetic", body)
            for i, body in enumerate(synthetic_documents(fmt, synthetic))
        ]
    for doc in found:
        doc.kind = route_of(doc.body)
        try:
            doc.items = list(parse.parse_feed(doc.body, feed_id="f", url=URL).items)
        except FetchError:
            doc.items = []
    return found


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".tsv")


def route_of(body: bytes) -> str:
    """The reader parse_feed gives ``body``: json, refused (an error first), xml (feedparser)."""
    if not body.strip():
        return "refused"
    if parse.looks_like_json(body):
        return "json"
    try:
        parse._refuse_html(parse._decode(body, None)[0])
    except FetchError:
        return "refused"
    return "xml"


def workloads(new: int) -> dict[str, Callable[[bytes], object]]:
    def full(body: bytes) -> object:
        try:
            return parse.parse_feed(body, feed_id="f", url=URL)
        except FetchError as error:
            return error

    def steady(body: bytes) -> object:
        try:
            drafts = parse.read_feed(body, feed_id="f", url=URL)
        except FetchError as error:
            return error
        return [draft.item() for draft in drafts.entries[:new]]

    return {"full": full, "steady": steady}


# ---------------------------------------------------------------- timing


def cpu_per_call(run: Callable[[], object], calls: int) -> float:
    return cpu_time(run, calls) / calls


def calls_for(run: Callable[[], object], min_cpu: float) -> int:
    return max(1, math.ceil(min_cpu / max(cpu_per_call(run, 1), 1e-6)))


def time_routes(
    doc: Document, work: dict[str, Callable[[bytes], object]], args: argparse.Namespace
) -> None:
    """Best-of-rounds CPU per call of every workload under every route, alternating routes."""
    for workload, run in work.items():
        routes = ["shipped", "regex", "htmlparser"]
        call = partial(run, doc.body)
        calls = calls_for(call, args.min_cpu)
        best = dict.fromkeys(routes, math.inf)
        for _ in range(args.rounds):
            for route in routes:
                with ROUTES[route]():
                    best[route] = min(best[route], cpu_per_call(call, calls))
        for route, seconds in best.items():
            doc.cpu_ms[f"{workload}/{route}"] = seconds * 1e3


def time_matching(doc: Document, rulesets: dict[str, RuleSet], args: argparse.Namespace) -> None:
    """CPU of matching the document's items: all of them (full), the first ``--new`` (steady)."""
    for name, rules in rulesets.items():
        for workload, items in (("full", doc.items), ("steady", doc.items[: args.new])):
            if not items:
                doc.match_ms[f"{name}/{workload}"] = 0.0
                continue

            def run(items: list[Item] = items, rules: RuleSet = rules) -> None:
                for item in items:
                    rules.match(item)

            calls = calls_for(run, args.min_cpu / 4)
            best = min(cpu_per_call(run, calls) for _ in range(args.rounds))
            doc.match_ms[f"{name}/{workload}"] = best * 1e3


def rulesets(counts: list[int]) -> dict[str, RuleSet]:
    shipped_rules, _ = load_rules(RULES.parent, Settings(), {})
    out = {"shipped": RuleSet(shipped_rules)}
    out.update({str(n): RuleSet(rules_of(n)) for n in counts})
    return out


# ---------------------------------------------------------------- text identity


def fragments(docs: list[Document]) -> list[str]:
    """Every HTML field the bot converts in the documents (titles, summaries, contents, authors)."""
    seen: list[str] = []

    def record(fragment: str) -> str:
        seen.append(fragment)
        return htmltext_shipped(fragment)

    with converter(record):
        for doc in docs:
            with suppress(FetchError):
                parse.parse_feed(doc.body, feed_id="f", url=URL)
    return seen


htmltext_shipped = htmltext.html_to_text


def identity(frags: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, convert in (("regex", regex_html_to_text), ("htmlparser", htmlparser_html_to_text)):
        marked = [f for f in frags if "<" in f]
        out[name] = {
            "fields": len(frags),
            "same": sum(convert(f) == htmltext_shipped(f) for f in frags),
            "fields_with_markup": len(marked),
            "same_with_markup": sum(convert(f) == htmltext_shipped(f) for f in marked),
        }
    return out


# ---------------------------------------------------------------- linearity


def _repeat(unit: str, lead: str = "") -> Callable[[int], str]:
    return lambda size: lead + unit * (size // len(unit))


HOSTILE = {  # the html_to_text families of tests/unit/test_linear.py, and nesting
    "escaped-script": _repeat("&lt;script&gt;", lead="&lt;br&gt;"),
    "unclosed-script": _repeat("<script>"),
    "unclosed-tags": _repeat("<p <td <b"),
    "unclosed-declarations": _repeat("<!x"),
    "spaces-in-a-tag": _repeat(" ", lead="<"),
    "comments-without-end": _repeat("<!--"),
    "processing-instructions": _repeat("<?"),
    "entities": _repeat("&amp;&#x263A;&eacute;&bogus;"),
    "nested-divs": _repeat("<div>"),
    "nested-lists": _repeat("<ul><li>"),
}


def linearity(size: int) -> dict[str, dict[str, float]]:
    """CPU at 8x ``size`` over CPU at ``size`` (best of 3), per route and input family."""
    out: dict[str, dict[str, float]] = {}
    converters = {
        "lexbor": htmltext_shipped,
        "regex": regex_html_to_text,
        "htmlparser": htmlparser_html_to_text,
    }
    for route, convert in converters.items():
        out[route] = {}
        for family, make in HOSTILE.items():
            small, large = partial(convert, make(size)), partial(convert, make(8 * size))
            calls = calls_for(small, 0.01)
            t_small = min(cpu_per_call(small, calls) for _ in range(3))
            t_large = min(cpu_per_call(large, calls) for _ in range(3))
            out[route][family] = t_large / t_small
            print(f"  linearity {route:10s} {family:24s} 8x input: {out[route][family]:5.1f}x")
    return out


# ---------------------------------------------------------------- summary


def poll_ratios(
    docs: list[Document], workload: str, baseline: str, rules: str, https_ms: float
) -> dict[str, float]:
    """Per-poll CPU of the other route ``baseline`` over the shipped route, summed over docs."""
    base = sum(
        https_ms + d.cpu_ms[f"{workload}/{baseline}"] + d.match_ms[f"{rules}/{workload}"]
        for d in docs
    )
    ours = sum(
        https_ms + d.cpu_ms[f"{workload}/shipped"] + d.match_ms[f"{rules}/{workload}"] for d in docs
    )
    parse_base = sum(d.cpu_ms[f"{workload}/{baseline}"] for d in docs)
    parse_ours = sum(d.cpu_ms[f"{workload}/shipped"] for d in docs)
    return {
        "documents": len(docs),
        "poll_ms_library": base / len(docs),
        "poll_ms_shipped": ours / len(docs),
        "poll_ratio": base / ours,
        "parse_ratio": parse_base / parse_ours,
        "median_doc_poll_ratio": statistics.median(
            (https_ms + d.cpu_ms[f"{workload}/{baseline}"] + d.match_ms[f"{rules}/{workload}"])
            / (https_ms + d.cpu_ms[f"{workload}/shipped"] + d.match_ms[f"{rules}/{workload}"])
            for d in docs
        ),
    }


def report(docs: list[Document], args: argparse.Namespace) -> dict[str, object]:
    corpus = [d for d in docs if d.source == "corpus"]
    summary: dict[str, object] = {}
    kinds = {k: sum(d.kind == k for d in corpus) for k in ("xml", "json", "refused")}
    print(f"\ncorpus: {len(corpus)} documents: {kinds}")
    summary["corpus_routes"] = kinds
    print("\nper document (ms CPU per call; full = parse_feed, steady = read_feed + new items)")
    print(
        f"  {'document':58s} {'kind':7s} {'bytes':>8s} {'items':>5s}  full: ship regex  hpar "
        f"| steady: ship regex  hpar | match {args.rules[-1]} full"
    )
    for d in docs:
        c = d.cpu_ms
        print(
            f"  {d.name[:58]:58s} {d.kind:7s} {len(d.body):8d} {len(d.items):5d} "
            f"{c['full/shipped']:10.2f} {c['full/regex']:5.2f} {c['full/htmlparser']:5.2f} | "
            f"{c['steady/shipped']:12.2f} {c['steady/regex']:5.2f} {c['steady/htmlparser']:5.2f} | "
            f"{d.match_ms.get(f'{args.rules[-1]}/full', 0):8.2f}"
        )
    print(f"\nper poll (HTTPS {args.https_ms} ms + parse + matching), other route -> shipped")
    synthetic = [d for d in docs if d.source == "synthetic"]
    for population, group in (("corpus", corpus), ("python -m bench's", synthetic)):
        for baseline in ("regex", "htmlparser"):
            if not group:
                continue
            for workload in ("full", "steady"):
                for rules in ("shipped", *map(str, args.rules)):
                    r = poll_ratios(group, workload, baseline, rules, args.https_ms)
                    summary[f"{population} / {baseline} / {workload} / {rules} rules"] = r
                    print(
                        f"  {population:17s} {baseline:10s} {workload:6s} {rules:>7s} rules: "
                        f"{r['poll_ms_library']:6.2f} -> {r['poll_ms_shipped']:6.2f} ms = "
                        f"{r['poll_ratio']:4.2f}x (median doc {r['median_doc_poll_ratio']:4.2f}x;"
                        f" parse alone {r['parse_ratio']:4.2f}x)"
                    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-cpu", type=float, default=0.02, help="seconds per timed batch")
    parser.add_argument("--https-ms", type=float, default=3.0, help="CPU of HTTPS connect+GET")
    parser.add_argument("--new", type=int, default=5, help="new entries per steady poll")
    parser.add_argument(
        "--rules", type=lambda s: [int(n) for n in s.split(",")], default=[10, 1000]
    )
    parser.add_argument("--no-fixtures", action="store_true")
    parser.add_argument(
        "--synthetic", type=int, default=3, help="python -m bench's documents per format"
    )
    parser.add_argument("--no-linearity", action="store_true")
    parser.add_argument("--baseline", default=BASELINE_REF, help="git revision of htmltext.py")
    parser.add_argument("--linearity-size", type=int, default=2_000)
    args = parser.parse_args(argv)
    global regex_html_to_text
    regex_html_to_text = baseline_module(args.baseline).html_to_text

    started = time.process_time()
    docs = documents(include_fixtures=not args.no_fixtures, synthetic=args.synthetic)
    sets = rulesets(args.rules)
    work = workloads(args.new)
    for doc in docs:
        time_routes(doc, work, args)
        time_matching(doc, sets, args)
    frags = fragments([d for d in docs if d.source == "corpus"])
    fixture_frags = fragments([d for d in docs if d.source == "fixtures"])
    same = {"corpus": identity(frags), "fixtures": identity(fixture_frags)}
    summary = report(docs, args)
    print("\nsame text as the shipped converter, field by field")
    for source, by_route in same.items():
        for route, n in by_route.items():
            print(
                f"  {source:8s} {route:10s} {n['same']}/{n['fields']} fields, "
                f"{n['same_with_markup']}/{n['fields_with_markup']} of those with markup"
            )
    lin = {} if args.no_linearity else linearity(args.linearity_size)
    print(f"\n{time.process_time() - started:.0f} s CPU")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"parsing-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "python": sys.version,
                "summary": summary,
                "identity": same,
                "linearity": lin,
                "documents": [
                    {k: v for k, v in asdict(d).items() if k not in ("body", "items")}
                    | {"bytes": len(d.body), "items": len(d.items)}
                    for d in docs
                ],
            },
            indent=1,
        )
    )
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
