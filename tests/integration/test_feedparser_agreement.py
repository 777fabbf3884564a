"""newswatch's items against plain ``feedparser.parse`` (default settings), field by field.

Every fixture document, every conformance document and every corpus file is read both ways; each
item's title text, link, guid, published date and summary text are compared after both are made
plain text the same way (HTML values of feedparser's tags stripped by a reference converter,
whitespace collapsed). Each difference is listed in ``DIFFERENCES`` as (document, field, kind) →
who is wrong and why: feedparser's error, or a deliberate choice of newswatch's (what was
newswatch's to fix has been fixed). An unlisted difference fails with a readable diff; a listed one
that no longer occurs fails too, so the table stays honest.
"""

from __future__ import annotations

import calendar
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest

from bot.errors import FetchError
from bot.feeds.parse import parse_feed
from bot.model import Item
from tests.paths import CONFORMANCE, CORPUS, FIXTURES

URL = "https://feeds.example.com/dir/feed.xml"
UNLIMITED = 10_000_000  # summaries compared whole, not cut at limits.text

FEEDPARSER = "feedparser's error"
DESIGN = "newswatch by design"


@dataclass(frozen=True)
class Verdict:
    """Who is wrong about a difference, and why."""

    who: str
    why: str


def _documents(prefix: str, folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".tsv")
    return {f"{prefix}/{p.name}": p for p in files}


DOCUMENTS = _documents("fixtures", FIXTURES) | _documents("conformance", CONFORMANCE)
CORPUS_DOCUMENTS = _documents("corpus", CORPUS)

_NO_JSON_FEED = Verdict(FEEDPARSER, "feedparser 6 reads no JSON Feed: a JSON Feed has no items")
_GUID_AS_LINK = Verdict(
    FEEDPARSER,
    "a guid that is no URL ('d1') made the item's link because isPermaLink defaults to true; "
    "newswatch invents no link from it",
)
_DETECTED = Verdict(
    FEEDPARSER,
    "a legacy encoding, undeclared or declared wrongly: without a detector feedparser reads it"
    " as windows-1252 or as declared (mojibake); newswatch detects it and says so",
)
_ALT_TEXT = Verdict(
    DESIGN, "a field that is only an image reads as its alt text (the reference drops images)"
)
_LINK_FROM_ID = Verdict(
    FEEDPARSER,
    "an Atom entry whose only URL is its <id> (no <link>, or one without href): newswatch uses"
    " the id as the link, as a reader would follow it",
)
_STRAY_BYTE = Verdict(
    FEEDPARSER,
    "UTF-8 with one stray byte: feedparser reads it whole as windows-1252 (mojibake);"
    " newswatch reads it as UTF-8 with that byte replaced",
)
# (document, field, kind) → who is wrong and why. The kinds are those that :func:`differences`,
# :func:`_text_kind` and :func:`_value_kind` name.
DIFFERENCES: dict[tuple[str, str, str], Verdict] = {
    ("fixtures/billion_laughs.xml", "link", "guid as link"): _GUID_AS_LINK,
    ("fixtures/billion_laughs.xml", "summary", "theirs lost text"): Verdict(
        FEEDPARSER, "neither expands the entity; feedparser's loose parser drops its ';'"
    ),
    ("fixtures/bom_blank_lines.rss", "link", "guid as link"): _GUID_AS_LINK,
    ("fixtures/declared_1252_is_utf8.rss", "link", "guid as link"): _GUID_AS_LINK,
    ("fixtures/declared_1252_is_utf8.rss", "title", "differ"): Verdict(
        FEEDPARSER, "UTF-8 declared windows-1252: feedparser believes the declaration (mojibake)"
    ),
    ("fixtures/declared_utf8_is_latin1.rss", "link", "guid as link"): _GUID_AS_LINK,
    ("fixtures/duplicate_guids.rss", "items", "ours fewer"): Verdict(
        DESIGN, "an exact repeat of an item is dropped: one story, one alert"
    ),
    ("fixtures/jsonfeed10.json", "items", "ours more"): _NO_JSON_FEED,
    ("fixtures/jsonfeed11.json", "items", "ours more"): _NO_JSON_FEED,
    ("fixtures/jsonfeed_truncated.json", "items", "ours more"): _NO_JSON_FEED,
    ("fixtures/leading_blank_lines.rss", "link", "guid as link"): _GUID_AS_LINK,
    ("fixtures/no_prolog_latin1.rss", "link", "guid as link"): _GUID_AS_LINK,
    ("fixtures/odd_dates.rss", "link", "guid as link"): _GUID_AS_LINK,
    ("fixtures/odd_dates.rss", "published", "differ"): Verdict(
        FEEDPARSER,
        "a Unix time (1709649000) and a 2024/03/05 date: feedparser makes wrong dates of them "
        "(2017-04-06, 2024-12-01)",
    ),
    ("fixtures/rss_in_json.json", "items", "ours more"): Verdict(
        DESIGN, "RSS written as JSON (Scripting News' rss.js), which feedparser does not know"
    ),
    ("fixtures/undefined_entity.rss", "link", "guid as link"): _GUID_AS_LINK,
    ("conformance/enc-declared-undefined.rss", "items", "theirs raised"): Verdict(
        FEEDPARSER, "encoding='undefined': feedparser raises UnicodeError instead of reading it"
    ),
    ("conformance/enc-gb18030-undeclared.rss", "title", "differ"): _DETECTED,
    ("conformance/enc-gb18030-undeclared.rss", "summary", "differ"): _DETECTED,
    ("conformance/enc-iso-8859-7-declared-windows-1252.rss", "title", "differ"): _DETECTED,
    ("conformance/enc-iso-8859-7-declared-windows-1252.rss", "summary", "differ"): _DETECTED,
    ("conformance/enc-shift_jis-declared-utf-8.rss", "title", "differ"): _DETECTED,
    ("conformance/enc-shift_jis-declared-utf-8.rss", "summary", "differ"): _DETECTED,
    ("conformance/enc-utf8-one-stray-byte.rss", "title", "differ"): _STRAY_BYTE,
    ("conformance/enc-utf8-one-stray-byte.rss", "summary", "differ"): _STRAY_BYTE,
    ("conformance/enc-utf32be-nobom.atom", "items", "ours more"): Verdict(
        FEEDPARSER, "UTF-32 without a byte-order mark: feedparser finds no entries"
    ),
    ("conformance/enc-utf32le-nobom.atom", "items", "ours more"): Verdict(
        FEEDPARSER, "UTF-32 without a byte-order mark: feedparser finds no entries"
    ),
    ("conformance/enc-windows-1251-declared-iso-8859-1.rss", "title", "differ"): _DETECTED,
    ("conformance/enc-windows-1251-declared-iso-8859-1.rss", "summary", "differ"): _DETECTED,
    ("conformance/enc-windows-1251-undeclared.rss", "title", "differ"): _DETECTED,
    ("conformance/enc-windows-1251-undeclared.rss", "summary", "differ"): _DETECTED,
    ("conformance/enc-windows-1255-undeclared.rss", "title", "differ"): _DETECTED,
    ("conformance/enc-windows-1255-undeclared.rss", "summary", "differ"): _DETECTED,
    ("conformance/html-json-text.json", "items", "ours more"): _NO_JSON_FEED,
    ("conformance/html-rss-markup-as-text.xml", "summary", "theirs empty"): _ALT_TEXT,
    ("conformance/link-id-only.atom", "link", "guid as link"): _LINK_FROM_ID,
    ("conformance/link-no-href.atom", "link", "theirs none"): _LINK_FROM_ID,
    ("corpus/feedjira_jsonfeed_inessential.json", "items", "ours more"): _NO_JSON_FEED,
    ("corpus/feedjira_jsonfeed_v1.1_escaped_slashes.json", "items", "ours more"): _NO_JSON_FEED,
    ("corpus/feedparser_jsonfeed_v1_example.json", "items", "ours more"): _NO_JSON_FEED,
    ("corpus/feedparser_linenoise_mojibake.xml", "summary", "differ"): Verdict(
        FEEDPARSER,
        "UTF-8 with one stray byte (0xa9): feedparser reads it whole as windows-1252 (its own"
        " test expects the mojibake); newswatch reads it as UTF-8 with that byte replaced",
    ),
    ("corpus/feedrs_ilmessaggero_mondo_it.rss", "published", "theirs none"): Verdict(
        FEEDPARSER, "'mer, 16 nov 2022 00:38:15 +0100': an Italian weekday stops feedparser"
    ),
    ("corpus/feedrs_jsonfeed_elastic_1.1.json", "items", "ours more"): _NO_JSON_FEED,
    ("corpus/feedrs_nbc_newyork.rss", "published", "differ"): Verdict(
        FEEDPARSER, "'Sat, Dec 16 2023 02:02:33 PM': feedparser ignores the PM (02:02, not 14:02)"
    ),
    ("corpus/nnw_daringfireball.json", "items", "ours more"): _NO_JSON_FEED,
    ("corpus/nnw_jsonfeed_allthis_truncated.json", "items", "ours more"): _NO_JSON_FEED,
    ("corpus/nnw_scriptingnews.json", "items", "ours more"): _NO_JSON_FEED,
    ("corpus/nnw_scriptingnews_no_titles.rss", "guid", "ours none"): Verdict(
        DESIGN, "a guid repeated in the feed keys its items by link instead"
    ),
    ("corpus/nnw_scriptingnews_no_titles.rss", "summary", "theirs empty"): _ALT_TEXT,
    ("corpus/feedparser_hebrew_windows-1255_no_decl.xml", "summary", "differ"): _DETECTED,
    ("corpus/rssparser_news18_hindi_odd_dates.rss", "published", "theirs none"): Verdict(
        FEEDPARSER,
        "'Friday, January 29, 2021 04:42 PM': feedparser reads no date; newswatch reads 16:42",
    ),
}


class _Reference(HTMLParser):
    """Text of an HTML fragment: data kept, block tags a space, script and style dropped."""

    BLOCKS = frozenset(
        (
            "p",
            "div",
            "br",
            "hr",
            "li",
            "ul",
            "ol",
            "dl",
            "dt",
            "dd",
            "tr",
            "td",
            "th",
            "table",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
        )
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in ("script", "style")
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _plain(value: str) -> str:
    return " ".join(value.split())


def _their_text(entry: feedparser.FeedParserDict, field: str) -> str:
    """feedparser's value as plain text: markup stripped only where it says the value is HTML."""
    value = entry.get(field) or ""
    # Without its own detail, the summary is feedparser's copy of the first content.
    detail: dict[str, str] = entry.get(f"{field}_detail") or next(
        iter(entry.get("content", ())), {}
    )
    if "html" not in detail.get("type", "text/html"):
        return _plain(value)
    reference = _Reference()
    reference.feed(value)
    reference.close()
    return _plain("".join(reference.parts))


def _their_date(entry: feedparser.FeedParserDict) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = dict.get(entry, name)  # not entry.get: it maps missing keys to others
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return None


def _their_link(entry: feedparser.FeedParserDict, site: str) -> str | None:
    """feedparser's link resolved as newswatch resolves links (against the site, else the feed)."""
    link = (entry.get("link") or "").strip()
    try:
        return urljoin(site, link) if link else None
    except ValueError:  # a link urljoin refuses (an unclosed IPv6 bracket) is no link
        return None


def _our_guid(item: Item) -> str | None:
    return item.key.removeprefix("guid:") if item.key.startswith("guid:") else None


def _text_kind(ours: str, theirs: str) -> str:
    if not ours:
        return "ours empty"
    if not theirs:
        return "theirs empty"
    if "".join(ours.split()) == "".join(theirs.split()):
        return "spacing"
    if ours in theirs:
        return "ours lost text"
    if theirs in ours:
        return "theirs lost text"
    return "differ"


def _value_kind(ours: object, theirs: object) -> str:
    if ours is None:
        return "ours none"
    if theirs is None:
        return "theirs none"
    return "differ"


@dataclass(frozen=True)
class Difference:
    field: str
    kind: str
    where: str
    ours: object
    theirs: object

    def __str__(self) -> str:
        return (
            f"  {self.field} [{self.kind}] {self.where}:\n"
            f"    ours:   {str(self.ours)[:160]!r}\n    theirs: {str(self.theirs)[:160]!r}"
        )


def _pairs(
    items: tuple[Item, ...], entries: list[feedparser.FeedParserDict]
) -> Iterator[tuple[Item, feedparser.FeedParserDict]]:
    """Items in order when both read as many; else each entry with our item of its guid."""
    if len(items) == len(entries):
        yield from zip(items, entries, strict=True)
        return
    by_guid = {_our_guid(item): item for item in items}
    for entry in entries:
        item = by_guid.get((entry.get("id") or "").strip() or None)
        if item is not None:
            yield item, entry


def differences(path: Path) -> list[Difference]:
    """Every way newswatch's reading of the document differs from plain feedparser's."""
    body = path.read_bytes()
    try:
        theirs = feedparser.parse(io.BytesIO(body))
    except ValueError as error:  # UnicodeError included: feedparser raised instead of reading
        return [Difference("items", "theirs raised", "document", "-", repr(error))]
    try:
        parsed = parse_feed(body, feed_id="f", url=URL, text_limit=UNLIMITED)
    except FetchError as error:
        if theirs.entries:
            return [Difference("items", "ours refused", "document", error, len(theirs.entries))]
        return []
    found = []
    if len(parsed.items) != len(theirs.entries):
        kind = "ours fewer" if len(parsed.items) < len(theirs.entries) else "ours more"
        found.append(Difference("items", kind, "count", len(parsed.items), len(theirs.entries)))
    site = _their_link(theirs.feed, URL) or URL
    for n, (item, entry) in enumerate(_pairs(parsed.items, theirs.entries)):
        where = f"item {n}"
        for field, ours_text in (("title", item.title), ("summary", item.summary)):
            their_text = _their_text(entry, field)
            if _plain(ours_text) != their_text:
                kind = _text_kind(_plain(ours_text), their_text)
                found.append(Difference(field, kind, where, ours_text, their_text))
        link = _their_link(entry, site)
        if item.link != link:
            kind = _link_kind(item, entry, link)
            found.append(Difference("link", kind, where, item.link, entry.get("link")))
        guid = (entry.get("id") or "").strip() or None
        if _our_guid(item) != guid:
            kind = _value_kind(_our_guid(item), guid)
            found.append(Difference("guid", kind, where, item.key, guid))
        date = _their_date(entry)
        if item.published != date:
            kind = _value_kind(item.published, date)
            found.append(Difference("published", kind, where, item.published, date))
    return found


def _link_kind(item: Item, entry: feedparser.FeedParserDict, link: str | None) -> str:
    if item.link is None and entry.get("guidislink"):
        return "guid as link"
    if item.link is None and link and urlsplit(link).scheme not in ("http", "https"):
        return "unsafe scheme"
    return _value_kind(item.link, link)


def _check(document: str, path: Path) -> None:
    found = differences(path)
    kinds = {(document, d.field, d.kind) for d in found}
    unlisted = [d for d in found if (document, d.field, d.kind) not in DIFFERENCES]
    stale = [key for key, verdict in DIFFERENCES.items() if key[0] == document and key not in kinds]
    report = "\n".join(str(d) for d in unlisted)
    assert not unlisted, f"{document}: differences from feedparser not in DIFFERENCES:\n{report}"
    assert not stale, f"{document}: listed differences that no longer occur: {stale}"


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_every_difference_from_feedparser_is_listed(document: str) -> None:
    _check(document, DOCUMENTS[document])


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no feed corpus at {CORPUS}")
@pytest.mark.parametrize("document", sorted(CORPUS_DOCUMENTS))
def test_every_difference_from_feedparser_on_the_corpus_is_listed(document: str) -> None:
    _check(document, CORPUS_DOCUMENTS[document])
