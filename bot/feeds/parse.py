"""Feed bytes → :class:`ParsedFeed`: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed here.

feedparser is the only module that imports feedparser. It is called with
sanitising off (its sanitiser costs far more than the parse itself) because
items carry plain text, which :func:`bot.feeds.htmltext.html_to_text` produces.

Bytes are decoded here rather than by feedparser: a declared encoding that the
bytes contradict (UTF-8 declared as windows-1252, Latin-1 declared as UTF-8) is
common, and valid UTF-8 is almost never anything else. The document handed to
feedparser is then always UTF-8 without an XML declaration.
"""

from __future__ import annotations

import calendar
import codecs
import html
import io
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import feedparser

from bot.config.schema import Limits
from bot.errors import FetchError
from bot.feeds.htmltext import TITLE_LIMIT, bounded_text
from bot.feeds.identity import fingerprint, item_key, keyed_by_text, story_keys
from bot.feeds.jsonfeed import Document, Entry, looks_like_json, parse_date, read_json_feed
from bot.model import Item, ParsedFeed

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARATION = re.compile(rb"<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
# Up to the next "<" at most: an unterminated "<?xml " must not scan to the end each time.
_XML_DECLARATION = re.compile(r"<\?xml\s[^<>]*\?>")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_ROOT = re.compile(r"<([A-Za-z][\w.:-]*)")
_FEED_ELEMENT = re.compile(r"<(?:[\w-]+:)?(?:rss|feed|RDF|channel)[\s>]")
_SLASH_DATE = re.compile(r"\d{4}/\d\d/\d\d(?:[ T]\d\d:\d\d(?::\d\d)?)?$")
_FALLBACK = "windows-1252"
_SAFE_SCHEMES = ("http", "https")
# An absolute http(s) URL that urlsplit/urlunsplit give back unchanged and cannot
# refuse: lower-case scheme, an ASCII host without brackets, no whitespace, no
# path parameters (``;``), no empty query or fragment.
_PLAIN_URL = re.compile(
    r"https?://[\w.~:@!$&'()*+,=%-]+(?:/[^\s?#;]*)?(?:\?[^\s#]+)?(?:#\S+)?", re.ASCII
)


TEXT_LIMIT = Limits().text


def parse_feed(
    body: bytes,
    *,
    feed_id: str,
    url: str,
    content_type: str | None = None,
    text_limit: int = TEXT_LIMIT,
) -> ParsedFeed:
    """Read a feed document; ``not_a_feed`` for HTML and other documents, ``malformed``
    when nothing can be recovered. Lenient recoveries set ``warning``.

    Titles keep at most ``TITLE_LIMIT`` characters, summaries and contents
    ``text_limit`` (``limits.text``): what a hostile feed can make every later
    step (matching, summaries, rendering) work through is bounded per item.
    """
    drafts = read_feed(
        body, feed_id=feed_id, url=url, content_type=content_type, text_limit=text_limit
    )
    return drafts.parsed()


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry read and keyed, its costly text (summary, content, author, story keys) not
    yet converted: a poll converts only the entries it has not seen before, which in a
    steady state is few or none (a first poll, which alerts on nothing, only fingerprints
    them), and a seen one whose guid got a title sharing almost no words with its own."""

    feed_id: str
    key: str
    title: str
    link: str | None
    published: datetime | None
    entry: Entry
    text_limit: int = TEXT_LIMIT

    def item(self) -> Item:
        summary, content = self._text()
        return Item(
            feed_id=self.feed_id,
            key=self.key,
            title=self.title,
            link=self.link,
            summary=summary,
            content="" if content == summary else content,
            published=self.published,
            author=bounded_text(self.entry.author or "", TITLE_LIMIT) or None,
            story_keys=story_keys(self.link, self.title),
        )

    def fingerprint(self) -> str:
        """The fingerprint of the entry's text, which tells a reused guid (see ``rewritten``)."""
        return fingerprint(" ".join(self._text()))

    def _text(self) -> tuple[str, str]:
        return (
            bounded_text(self.entry.summary, self.text_limit),
            bounded_text(self.entry.content, self.text_limit),
        )


@dataclass(frozen=True, slots=True)
class FeedDraft:
    """A feed read to its keyed :class:`Draft` entries, one per key."""

    title: str | None
    link: str | None
    entries: tuple[Draft, ...]
    warning: str | None = None
    ttl_seconds: int | None = None

    def parsed(self) -> ParsedFeed:
        items = tuple(draft.item() for draft in self.entries)
        return ParsedFeed(self.title, self.link, items, self.warning, self.ttl_seconds)


def read_feed(
    body: bytes,
    *,
    feed_id: str,
    url: str,
    content_type: str | None = None,
    text_limit: int = TEXT_LIMIT,
) -> FeedDraft:
    """:func:`parse_feed`, stopping at keyed drafts; the same errors, warnings and limits."""
    if not body.strip():
        raise FetchError("malformed", "empty document")
    document = read_json_feed(body) if looks_like_json(body) else _read_xml(body, content_type)
    return _to_draft(document, feed_id=feed_id, url=url, text_limit=text_limit)


def _read_xml(body: bytes, content_type: str | None) -> Document:
    text, encoding_warning = _decode(body, content_type)
    _refuse_html(text)
    data = _XML_DECLARATION.sub("", text.lstrip(), count=1).encode("utf-8")
    result = feedparser.parse(
        io.BytesIO(data),  # never bytes or str: feedparser would open them as a path or URL
        # No Content-Location: feedparser would resolve non-URL guids against it.
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    plain_text = "text/plain" if result.version.startswith("atom") else None
    entries = tuple(_xml_entry(entry, plain_text) for entry in result.entries)
    feed = result.feed
    if not result.version and not entries:
        reason = "malformed" if result.bozo and not feed.get("title") else "not_a_feed"
        raise FetchError(reason, _describe(result.get("bozo_exception")) or "no feed found")
    warning = _describe(result.get("bozo_exception")) if result.bozo else None
    if warning is not None and not entries and not feed.get("title"):
        raise FetchError("malformed", warning)
    return Document(
        title=feed.get("title"),
        link=feed.get("link"),
        entries=entries,
        warning="; ".join(w for w in (encoding_warning, warning) if w) or None,
        ttl_seconds=_ttl(feed.get("ttl")),
    )


def _describe(error: object) -> str | None:
    if error is None:
        return None
    message = getattr(error, "getMessage", None)
    return message() if callable(message) else str(error)


def _decode(body: bytes, content_type: str | None) -> tuple[str, str | None]:
    """The document as text, and a warning when its declared encoding was wrong."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace"), None
    declared = _declared(body, content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if declared not in (None, "utf-8", "ascii") and not body.isascii():
            return text, f"declared encoding {declared} is wrong: read as UTF-8"
        return text, None
    if declared not in (None, "utf-8"):
        try:
            return body.decode(declared), None
        except UnicodeDecodeError:
            pass
    claim = f"declared encoding {declared} is wrong" if declared else "not UTF-8"
    return body.decode(_FALLBACK, errors="replace"), f"{claim}: read as {_FALLBACK}"


def _declared(body: bytes, content_type: str | None) -> str | None:
    """The encoding the document claims (XML declaration, else HTTP charset), if Python knows it."""
    match = _DECLARATION.search(body, 0, 512)
    label = match.group(1).decode("ascii") if match else None
    if label is None and content_type:
        charset = _CHARSET.search(content_type)
        label = charset.group(1) if charset else None
    if label is None:
        return None
    try:
        return codecs.lookup(label).name.replace("_", "-")
    except LookupError:
        return None


def _refuse_html(text: str) -> None:
    """An HTML page (a site's home page, a login wall) is ``not_a_feed``, not a broken feed."""
    head = text[:4096]
    root = _ROOT.search(head)
    if root is None:
        if "<" not in head:
            raise FetchError("not_a_feed", "no markup")
        return
    if root.group(1).lower() == "html" and not _FEED_ELEMENT.search(text):
        raise FetchError("not_a_feed", "an HTML page")


def _xml_entry(entry: feedparser.FeedParserDict, plain_text: str | None) -> Entry:
    """``plain_text`` is the content type whose text is escaped so it survives as text:
    Atom's explicit ``type="text"``, never RSS, where feedparser only guesses."""

    def html_of(detail: dict[str, str] | None, value: str) -> str:
        plain = detail is not None and detail.get("type") == plain_text
        return html.escape(value, quote=False) if plain else value

    contents = [html_of(c, c.get("value", "")) for c in entry.get("content", ())]
    link = entry.get("link")
    if entry.get("guidislink") and not _is_web_url(link):
        link = None  # a non-URL guid that feedparser promoted to a link
    return Entry(
        guid=entry.get("id"),
        link=link,
        title=html_of(entry.get("title_detail"), entry.get("title", "")),
        # Without its own detail, the summary is feedparser's copy of the content.
        summary=html_of(
            entry.get("summary_detail") or next(iter(entry.get("content", ())), None),
            entry.get("summary", ""),
        ),
        content=max(contents, key=len, default=""),
        published=_entry_date(entry),
        author=entry.get("author"),
    )


def _entry_date(entry: feedparser.FeedParserDict) -> datetime | None:
    """The first date of published, updated, created that can be read.

    Unix times and ``YYYY/MM/DD`` dates are read here first: feedparser turns
    them into wrong dates rather than none. Then feedparser's reading, then ours.
    """
    for name in ("published", "updated", "created"):
        raw = dict.get(entry, name)  # not entry.get: it maps missing keys to others
        moment = _numeric_date(raw)
        parsed = dict.get(entry, f"{name}_parsed")
        if moment is None and parsed:
            moment = _from_struct(parsed)
        if moment is None:
            moment = parse_date(raw)
        if moment is not None:
            return moment
    return None


def _from_struct(parsed: time.struct_time) -> datetime | None:
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _numeric_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.isdigit() and 9 <= len(value) <= 10:
        return datetime.fromtimestamp(int(value), UTC)
    if _SLASH_DATE.match(value):
        return parse_date(value.replace("/", "-", 2))
    return None


def _ttl(value: object) -> int | None:
    """RSS ``<ttl>`` is in minutes."""
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return minutes * 60 if minutes > 0 else None


def _to_draft(document: Document, *, feed_id: str, url: str, text_limit: int) -> FeedDraft:
    """Plain-text titles, absolute links and keys, one entry per key.

    Relative item links are resolved against the site's link when the feed gives
    one (feeds are often served from elsewhere), else against the feed's URL.
    """
    site = _absolute(document.link, url)
    return FeedDraft(
        title=bounded_text(document.title or "", TITLE_LIMIT) or None,
        link=site,
        entries=_unique(_drafts(document.entries, feed_id, site or url, text_limit)),
        warning=document.warning,
        ttl_seconds=document.ttl_seconds,
    )


def _drafts(entries: tuple[Entry, ...], feed_id: str, base: str, text_limit: int) -> list[Draft]:
    """Entries keyed by guid, except that an entry whose guid repeats in the feed falls back
    to its link: some CMSs give every item the same guid."""
    repeated = {guid for guid, n in Counter(e.guid for e in entries if e.guid).items() if n > 1}
    return [
        _draft(e, feed_id, base, None if e.guid in repeated else e.guid, text_limit)
        for e in entries
    ]


def _unique(drafts: list[Draft]) -> tuple[Draft, ...]:
    """Drop exact repeats; entries that differ but share a key are told apart by their text.

    The text hash changes when such an entry is edited, a cost only broken feeds pay.
    """
    by_key = Counter(draft.key for draft in drafts)
    unique: dict[str, Draft] = {}
    for draft in drafts:
        if by_key[draft.key] > 1:
            item = draft.item()
            text = f"{item.key} {item.link} {item.title} {item.summary} {item.content}"
            draft = replace(draft, key=item_key(None, None, text, item.published))
        unique.setdefault(draft.key, draft)
    return tuple(unique.values())


def _draft(entry: Entry, feed_id: str, base: str, guid: str | None, text_limit: int) -> Draft:
    title = bounded_text(entry.title, TITLE_LIMIT)
    link = _absolute(entry.link, base)
    text = ""
    if keyed_by_text(guid, link, title):  # rare: only then is the text converted here
        text = " ".join(bounded_text(t, text_limit) for t in (entry.summary, entry.content))
    key = item_key(guid, link, title, entry.published, text)
    return Draft(feed_id, key, title, link, entry.published, entry, text_limit)


def _absolute(link: str | None, base: str) -> str | None:
    """``link`` resolved against ``base``; only http(s) links survive (no ``javascript:``).

    A plain absolute link (most of them) is its own resolution: ``urljoin`` would
    give it back unchanged, so it is not called.
    """
    if not link or not (link := link.strip()):
        return None
    if _PLAIN_URL.fullmatch(link) and _PLAIN_URL.fullmatch(base):
        return link
    absolute = urljoin(base, link)
    return absolute if _is_web_url(absolute) else None


def _is_web_url(link: str | None) -> bool:
    parts = urlsplit(link or "")
    return parts.scheme.lower() in _SAFE_SCHEMES and bool(parts.netloc)
