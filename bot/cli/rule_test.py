"""``newswatch test``: explains a rule over items from feeds, files or a text, without state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.alerts.attention import notified
from bot.alerts.budget import arrival_text, fate_text, replay, tally_text
from bot.alerts.render import merge_spans
from bot.config.load import Config, dotted
from bot.config.schema import Destination, Feed, Rule
from bot.errors import FetchError
from bot.feeds.htmltext import TITLE_LIMIT, cut_text
from bot.feeds.language import item_language
from bot.feeds.parse import parse_feed
from bot.fetch.client import Fetcher
from bot.model import FIELDS, Item
from bot.rules.explain import Explanation, TermHit, explain, found_terms
from bot.rules.match import rule_queries

Highlight = Callable[[str], str]


@dataclass(frozen=True)
class Source:
    """Items read from one place (a feed, a file, ``--text``), or why none could be."""

    name: str
    items: tuple[Item, ...] = ()
    tags: frozenset[str] = frozenset()
    error: str | None = None


def text_item(text: str, text_limit: int) -> Item:
    """``--text`` is matched as an item whose title, summary and content are all TEXT,
    each cut as a feed's would be (``TITLE_LIMIT``, ``limits.text``), in the language the
    detector tells."""
    body = cut_text(text, text_limit)
    title = cut_text(text, TITLE_LIMIT)
    return Item(
        feed_id="text",
        key="text",
        title=title,
        summary=body,
        content=body,
        language=item_language(title, body),
    )


def rule_feeds(config: Config, rule: Rule) -> list[Feed]:
    """The configured feeds the rule applies to (all of them when it names none)."""
    if not rule.feeds:
        return [f for f in config.settings.feeds if f.enabled]
    wanted = set(rule.feeds)
    return [
        f
        for f in config.settings.feeds
        if f.enabled and (f.id in wanted or any(f"tag:{t}" in wanted for t in f.tags))
    ]


async def read_sources(
    config: Config, rule: Rule, locations: Sequence[str], text: str | None
) -> list[Source]:
    """Items from ``--feed`` URLs or files, ``--text``, or else every feed the rule watches."""
    limit = config.settings.limits.text
    sources = [Source("--text", (text_item(text, limit),))] if text is not None else []
    by_url = {f.url: f for f in config.settings.feeds}
    feeds = [] if locations or text is not None else rule_feeds(config, rule)
    urls = [loc for loc in locations if loc.startswith(("http://", "https://"))]
    files = [loc for loc in locations if loc not in urls]
    sources += [_read_file(Path(name), limit) for name in files]
    targets = [(u, by_url.get(u)) for u in urls] + [(f.url, f) for f in feeds]
    if targets:
        async with Fetcher(config.settings.http) as fetcher:
            for url, feed in targets:
                sources.append(await _read_url(fetcher, url, feed, limit))
    return sources


def _read_file(path: Path, text_limit: int) -> Source:
    try:
        body = path.read_bytes()
        url = path.resolve().as_uri()
        parsed = parse_feed(body, feed_id=path.stem, url=url, text_limit=text_limit)
    except OSError as err:
        return Source(str(path), error=f"cannot read: {err.strerror}")
    except FetchError as err:
        return Source(str(path), error=str(err))
    return Source(str(path), parsed.items)


async def _read_url(fetcher: Fetcher, url: str, feed: Feed | None, text_limit: int) -> Source:
    feed_id = feed.id if feed else "feed"
    try:
        result = await fetcher.fetch(url)
        parsed = parse_feed(
            result.body,
            feed_id=feed_id,
            url=result.url,
            content_type=result.content_type,
            text_limit=text_limit,
        )
    except FetchError as err:
        return Source(url, error=str(err))
    return Source(feed.id if feed else url, parsed.items, frozenset(feed.tags if feed else ()))


def query_lines(rule: Rule) -> list[str]:
    """The rule's queries as they run: every ``@group`` written out as its terms."""
    return [f"{rule.id}: {dotted(path)}: {query}" for path, query in rule_queries(rule)]


def render(
    explanation: Explanation, item: Item, highlight: Highlight, *, show_fields: bool
) -> Iterable[str]:
    """Lines telling one item's verdict; matched text passed through ``highlight``."""
    mark = "MATCH" if explanation.matched else "no match"
    yield f"{mark:<8}  {item.title or '(untitled)'}"
    if item.link:
        yield f"          {item.link}"
    if not explanation.feed_selected:
        yield "          (the rule's feeds: do not include this feed)"
    if not explanation.language_selected:
        yield f"          (the rule's languages: do not include {item.language}, its language)"
    shown: set[str] = set()
    for field in FIELDS if show_fields else ():
        hits = [h for h in explanation.hits if h.field == field]
        if hits and item.text(field) not in shown:
            shown.add(item.text(field))
            yield f"  {field + ':':<9} {_highlighted(item.text(field), hits, highlight)}"
    if explanation.hits:
        yield "  terms:    " + found_terms(explanation)
    if explanation.missing:
        yield "  missing:  " + ", ".join(explanation.missing)


def _highlighted(text: str, hits: Sequence[TermHit], highlight: Highlight, width: int = 300) -> str:
    """The field's text around its hits, every hit span highlighted, on one line."""
    merged = merge_spans((span for hit in hits for span in hit.spans), len(text))
    begin = max(0, merged[0][0] - width // 3) if merged else 0
    stop = min(len(text), begin + width)
    out, cursor = [], begin
    for start, end in merged:
        if start >= stop:
            break
        out += [text[cursor:start], highlight(text[start : min(end, stop)])]
        cursor = min(end, stop)
    out.append(text[cursor:stop])
    line = " ".join("".join(out).split())
    return ("…" if begin else "") + line + ("…" if stop < len(text) else "")


def explain_all(rule: Rule, sources: Sequence[Source]) -> list[tuple[Source, Item, Explanation]]:
    return [(s, item, explain(rule, item, s.tags)) for s in sources for item in s.items]


def budget_lines(
    rule: Rule, destinations: Mapping[str, Destination], items: Sequence[Item], now: datetime
) -> tuple[list[list[str]], list[str]]:
    """What the rule's priority and its destinations' quiet hours and caps would do with the
    alert of each item (matched ones, arriving at their published time, undated ones ``now``),
    and each destination's total: lines per item, and a line per destination."""
    fates = replay(rule, destinations, [item.published or now for item in items])
    per_item = []
    for item, row in zip(items, fates, strict=True):
        came = "published" if item.published else "undated: now"
        lines = [f"  arrives:  {arrival_text(item.published or now)} ({came})"]
        lines += [
            f"  → {_named(f.destination, destinations)}: "
            + fate_text(f, rule, destinations[f.destination])
            for f in row
        ]
        per_item.append(lines)
    totals = [
        f"  → {_named(dest_id, destinations)}: "
        + tally_text(f for row in fates for f in row if f.destination == dest_id)
        for dest_id in notified(rule, destinations)
    ]
    return per_item, totals


def _named(dest_id: str, destinations: Mapping[str, Destination]) -> str:
    return f"{dest_id} ({destinations[dest_id].type})"
