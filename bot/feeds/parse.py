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
import contextlib
import html
import io
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import feedparser
from feedparser.datetimes import _parse_date as _feedparser_date

from bot.config.schema import Limits
from bot.errors import FetchError
from bot.feeds.htmltext import TITLE_LIMIT, bounded_text
from bot.feeds.identity import item_key, story_keys
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
    steady state (and in a first poll, which alerts on nothing) is few or none."""

    feed_id: str
    key: str
    title: str
    link: str | None
    published: datetime | None
    entry: Entry
    text_limit: int = TEXT_LIMIT

    def item(self) -> Item:
        summary = bounded_text(self.entry.summary, self.text_limit)
        content = bounded_text(self.entry.content, self.text_limit)
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
    fast = _read_plain_xml(data, encoding_warning)
    if fast is not None:
        return fast
    return _read_with_feedparser(data, encoding_warning)


def _read_with_feedparser(data: bytes, encoding_warning: str | None) -> Document:
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


# ---------------------------------------------------------------- the ElementTree fast path
#
# Plain RSS 2.0 and Atom 1.0 read with the stdlib's expat, giving exactly what the
# feedparser path gives. Anything this reader is not sure to read the same way
# (a DOCTYPE or entity declaration, a document that is not well-formed, another
# root or version, an element it does not know, markup inside a text element,
# xml:base, XHTML text) returns None and goes to feedparser.

_ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ENTITY_IN_LINK = re.compile("&([A-Za-z0-9_]+);")
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# feedparser maps C1 control characters to the windows-1252 characters of those bytes.
_CP1252 = {
    code: char
    for code in range(0x80, 0xA0)
    if (char := bytes((code,)).decode("cp1252", "replace")) != "\ufffd"
}
_C1_CONTROL = re.compile("[\x80-\x9f]")
_RSS_ITEM_KNOWN = frozenset(
    (
        "title",
        "link",
        "description",
        "guid",
        "pubDate",
        "category",
        "comments",
        "enclosure",
        _CONTENT,
        _DC + "creator",
        _DC + "date",
    )
)
_RSS_CHANNEL_KNOWN = frozenset(
    (
        "title",
        "link",
        "description",
        "language",
        "copyright",
        "managingEditor",
        "webMaster",
        "lastBuildDate",
        "pubDate",
        "category",
        "generator",
        "docs",
        "ttl",
        "item",
    )
)
_ATOM_ENTRY_KNOWN = frozenset(
    _ATOM + t
    for t in (
        "id",
        "title",
        "link",
        "summary",
        "content",
        "published",
        "updated",
        "author",
        "category",
    )
)
_ATOM_FEED_KNOWN = frozenset(
    _ATOM + t
    for t in (
        "id",
        "title",
        "link",
        "updated",
        "author",
        "category",
        "generator",
        "icon",
        "logo",
        "rights",
        "subtitle",
        "entry",
    )
)


_ATOM_AUTHOR_KNOWN = frozenset(_ATOM + t for t in ("name", "email", "uri"))

# Elements that feedparser files under keys this reader never uses (tags, media,
# comment counts, podcast and FeedBurner data), each with the child elements it
# may hold. None of them is one that feedparser reads as a title, link, id, text,
# date or author: not media:title, itunes:summary, dc:date, an item's atom:link.
_MEDIA = "{http://search.yahoo.com/mrss/}"
_ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
_FEEDBURNER = "{http://rssnamespace.org/feedburner/ext/1.0}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearchrss/1.0/}"
_LEAF: frozenset[str] = frozenset()
_IGNORED_EVERYWHERE = {
    _FEEDBURNER + "origLink": _LEAF,
    _FEEDBURNER + "origEnclosureLink": _LEAF,
    _MEDIA + "thumbnail": _LEAF,
    _DC + "subject": _LEAF,
    _DC + "language": _LEAF,
    _DC + "rights": _LEAF,
}
_FEEDBURNER_FEED = {  # FeedBurner's feed-level data, in RSS channels and Atom feeds alike
    **{_FEEDBURNER + t: _LEAF for t in ("info", "emailServiceId", "feedburnerHostname")},
    _FEEDBURNER + "browserFriendly": _LEAF,
}
_IGNORED_IN_ITEM = {
    **_IGNORED_EVERYWHERE,
    "{http://purl.org/rss/1.0/modules/slash/}comments": _LEAF,
    "{http://wellformedweb.org/CommentAPI/}commentRss": _LEAF,
    "{http://wellformedweb.org/CommentAPI/}comment": _LEAF,
    _MEDIA + "content": _LEAF,
    _DC + "format": _LEAF,
    **{_ITUNES + t: _LEAF for t in ("duration", "explicit", "image", "episode", "season")},
    **{_ITUNES + t: _LEAF for t in ("episodeType", "block", "keywords")},
}
_IGNORED_IN_CHANNEL = {
    **_IGNORED_EVERYWHERE,
    "image": frozenset(("title", "url", "link", "width", "height", "description")),
    "cloud": _LEAF,
    "author": _LEAF,
    _DC + "creator": _LEAF,
    **{_ITUNES + t: _LEAF for t in ("author", "block", "explicit", "image", "keywords")},
    **{_ITUNES + t: _LEAF for t in ("subtitle", "summary", "type")},
    _ITUNES + "owner": frozenset((_ITUNES + "name", _ITUNES + "email")),
    _ITUNES + "category": frozenset((_ITUNES + "category",)),
    **_FEEDBURNER_FEED,
}
_IGNORED_IN_ATOM_ENTRY = {
    **_IGNORED_EVERYWHERE,
    "{http://purl.org/syndication/thread/1.0}total": _LEAF,
}
_IGNORED_IN_ATOM_AUTHOR = {"{http://schemas.google.com/g/2005}image": _LEAF}
_IGNORED_IN_ATOM_FEED = {
    **_IGNORED_EVERYWHERE,
    **_FEEDBURNER_FEED,
    **{_OPENSEARCH + t: _LEAF for t in ("totalResults", "startIndex", "itemsPerPage")},
}


class _Unsure(Exception):
    """The fast path cannot promise feedparser's reading of this document."""


def _read_plain_xml(data: bytes, encoding_warning: str | None) -> Document | None:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or b"<!doctype" in data:
        return None  # no entity expansion here: leave declarations to feedparser
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    try:
        if root.tag == "rss" and root.get("version", "").strip().startswith("2."):
            return _read_rss(root, encoding_warning)
        if root.tag == _ATOM + "feed":
            return _read_atom(root, encoding_warning)
    except _Unsure:
        return None
    return None


def _leaf_text(element: ET.Element | None) -> str | None:
    """A text-only element's text, stripped as feedparser strips it."""
    if element is None:
        return None
    if len(element) or element.attrib.get(_XML_BASE) is not None:
        raise _Unsure
    return _as_feedparser((element.text or "").strip())


def _as_feedparser(value: str) -> str:
    """feedparser's repairs of element text: UTF-8 read as Latin-1, windows-1252 code points.

    Both only touch non-ASCII text, and the translation (slow: a dict lookup per
    character) only text that has a C1 control character to translate.
    """
    if value.isascii():
        return value
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    return value.translate(_CP1252) if _C1_CONTROL.search(value) else value


_SY = "{http://purl.org/rss/1.0/modules/syndication/}"
# Stands for a tag met more than once, which the fast path reads only if unused.
_REPEATED = ET.Element("repeated")


def _children(
    parent: ET.Element, known: frozenset[str], ignored: dict[str, frozenset[str]]
) -> dict[str, ET.Element]:
    """``parent``'s children by tag, in one pass that also refuses unknown children."""
    children: dict[str, ET.Element] = {}
    for child in parent:
        tag = child.tag
        if _XML_BASE in child.attrib:
            raise _Unsure
        if tag in known:
            children[tag] = _REPEATED if tag in children else child
        elif not _skippable(child, ignored.get(tag)) and not (
            parent.tag == "channel" and _ignored_in_channel(child)
        ):
            raise _Unsure
    return children


def _skippable(element: ET.Element, children: frozenset[str] | None) -> bool:
    """An ignored element holding only the leaf children it may hold, and no base URI
    (feedparser reads a plain ``base`` attribute as one too)."""
    if children is None or "base" in element.attrib:
        return False
    return all(
        child.tag in children
        and not len(child)
        and _XML_BASE not in child.attrib
        and "base" not in child.attrib
        for child in element
    )


def _ignored_in_channel(child: ET.Element) -> bool:
    """A channel's self/hub links and update schedule name no title, link or item."""
    if child.tag == _ATOM + "link":
        return child.get("rel", "alternate") != "alternate"
    return child.tag.startswith(_SY)


def _one(children: dict[str, ET.Element], tag: str) -> ET.Element | None:
    element = children.get(tag)
    if element is _REPEATED:
        raise _Unsure
    return element


def _fast_date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    moment = _strict_date(raw)
    if moment is not None:
        return moment
    moment = _numeric_date(raw)
    if moment is None:
        parsed = _feedparser_date(raw)
        if parsed:
            moment = _from_struct(parsed)
    if moment is None:
        moment = parse_date(raw)
    return moment


# The two date forms nearly every feed uses, read here as feedparser reads them
# (its W3DTF reader truncates fractions of a second; neither checks the weekday);
# any other form, or a value out of range, goes to feedparser.
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_RFC822_DATE = re.compile(
    rf"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d\d?) ({'|'.join(_MONTHS)}) ((?:19|2\d)\d\d)"
    r" (\d\d):(\d\d):(\d\d) (?:([+-])(\d\d)(\d\d)|GMT|UTC?|Z)",
    re.ASCII,
)
_W3DTF_DATE = re.compile(
    r"((?:19|2\d)\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d{1,6})?(?:Z|([+-])(\d\d):(\d\d))",
    re.ASCII,
)


def _strict_date(raw: str) -> datetime | None:
    """A strict RFC 822 or W3DTF date, in UTC; None for anything else."""
    if match := _RFC822_DATE.fullmatch(raw):
        day, month, year, hour, minute, second, sign, off_hours, off_minutes = match.groups()
        fields = (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    elif match := _W3DTF_DATE.fullmatch(raw):
        year, month, day, hour, minute, second, sign, off_hours, off_minutes = match.groups()
        fields = (int(year), int(month), int(day), int(hour), int(minute), int(second))
    else:
        return None
    try:
        moment = datetime(*fields, tzinfo=UTC)
    except ValueError:
        return None
    if sign is not None:
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes))
        moment = moment + offset if sign == "-" else moment - offset
    return moment


def _read_rss(root: ET.Element, encoding_warning: str | None) -> Document:
    if len(root) != 1 or root[0].tag != "channel" or root.attrib.keys() - {"version"}:
        raise _Unsure
    channel = root[0]
    children = _children(channel, _RSS_CHANNEL_KNOWN, _IGNORED_IN_CHANNEL)
    entries = tuple(_rss_item(item) for item in channel.iterfind("item"))
    return Document(
        title=_leaf_text(_one(children, "title")),
        link=_leaf_text(_one(children, "link")),
        entries=entries,
        warning=encoding_warning,
        ttl_seconds=_ttl(_leaf_text(_one(children, "ttl"))),
    )


def _rss_item(item: ET.Element) -> Entry:
    children = _children(item, _RSS_ITEM_KNOWN, _IGNORED_IN_ITEM)
    guid = _one(children, "guid")
    guid_text = _leaf_text(guid) or None
    link = _leaf_text(_one(children, "link")) or None
    if link is not None:  # feedparser's repair of `&b=2` read as an entity reference
        link = _ENTITY_IN_LINK.sub(r"&\g<1>", link.replace("&amp;", "&")) or None
    permalink = guid is not None and guid.get("isPermaLink", "true").strip().lower() != "false"
    if link is None and guid_text and permalink:
        link = guid_text if _is_web_url(guid_text) else None
    description = _leaf_text(_one(children, "description"))
    content = _leaf_text(_one(children, _CONTENT))
    summary = description if description is not None else content
    return Entry(
        guid=guid_text,
        link=link,
        title=_leaf_text(_one(children, "title")) or "",
        summary=summary or "",
        content=content or "",
        published=_fast_date(_leaf_text(_one(children, "pubDate")))
        or _fast_date(_leaf_text(_one(children, _DC + "date"))),
        author=_leaf_text(_one(children, _DC + "creator")) or None,
    )


def _atom_text(element: ET.Element | None) -> str | None:
    """Atom text constructs as HTML: ``type="text"`` escaped, ``html`` as is."""
    if element is None:
        return None
    kind = element.get("type", "text")
    if kind not in ("text", "html") or element.get("src") is not None:
        raise _Unsure
    value = _leaf_text(element) or ""
    return html.escape(value, quote=False) if kind == "text" else value


def _atom_link(parent: ET.Element) -> str | None:
    for candidate in parent.findall(_ATOM + "link"):
        if candidate.get("rel", "alternate") == "alternate":
            return (candidate.get("href") or "").strip() or None
    return None


def _read_atom(root: ET.Element, encoding_warning: str | None) -> Document:
    if _XML_BASE in root.attrib:
        raise _Unsure
    children = _children(root, _ATOM_FEED_KNOWN, _IGNORED_IN_ATOM_FEED)
    title = _one(children, _ATOM + "title")
    if title is not None and title.get("type", "text") not in ("text", "html"):
        raise _Unsure
    entries = tuple(_atom_entry(entry) for entry in root.iterfind(_ATOM + "entry"))
    return Document(
        title=_leaf_text(title),
        link=_atom_link(root),
        entries=entries,
        warning=encoding_warning,
        ttl_seconds=None,
    )


def _atom_entry(entry: ET.Element) -> Entry:
    children = _children(entry, _ATOM_ENTRY_KNOWN, _IGNORED_IN_ATOM_ENTRY)
    for link in entry.findall(_ATOM + "link"):
        if len(link) or _XML_BASE in link.attrib:
            raise _Unsure
    author = _one(children, _ATOM + "author")
    author_name = None
    if author is not None:
        about = _children(author, _ATOM_AUTHOR_KNOWN, _IGNORED_IN_ATOM_AUTHOR)
        name = _leaf_text(_one(about, _ATOM + "name"))
        email = _leaf_text(_one(about, _ATOM + "email"))
        # feedparser's author: "name (email)", else whichever it has.
        author_name = f"{name} ({email})" if name and email else name or email or None
    content = _atom_text(_one(children, _ATOM + "content"))
    summary = _atom_text(_one(children, _ATOM + "summary"))
    published = _fast_date(_leaf_text(_one(children, _ATOM + "published")))
    if published is None:
        published = _fast_date(_leaf_text(_one(children, _ATOM + "updated")))
    return Entry(
        guid=_leaf_text(_one(children, _ATOM + "id")) or None,
        link=_atom_link(entry),
        title=_atom_text(_one(children, _ATOM + "title")) or "",
        summary=(summary if summary is not None else content) or "",
        content=content or "",
        published=published,
        author=author_name,
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
    key = item_key(guid, link, title, entry.published)
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
