"""Feed bytes → :class:`ParsedFeed`: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed here.

feedparser is the only module that imports feedparser. It is called with
sanitising off (its sanitiser costs far more than the parse itself) because
items carry plain text, which :func:`bot.feeds.htmltext.html_to_text` produces.

Bytes are decoded here rather than by feedparser: a declared encoding that the
bytes contradict (UTF-8 declared as windows-1252, Latin-1 declared as UTF-8) is
common, and valid UTF-8 is almost never anything else. Other bytes are read as
declared, else as windows-1252, unless they look like a non-Latin legacy encoding
and :mod:`bot.feeds.charset` finds a better reading. The document handed to
feedparser is then always UTF-8 without an XML declaration.
"""

from __future__ import annotations

import calendar
import codecs
import functools
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
from bot.feeds.charset import detect
from bot.feeds.htmltext import TITLE_LIMIT, bounded_text
from bot.feeds.identity import fingerprint, item_key, keyed_by_text
from bot.feeds.jsonfeed import (
    Document,
    Entry,
    TextField,
    looks_like_json,
    parse_date,
    read_json_feed,
    twenty_four_hour,
)
from bot.feeds.language import item_language
from bot.model import Item, ParsedFeed

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# XML 1.0 appendix F: without a byte-order mark, the first characters (``<`` or white
# space, then ASCII) give UTF-32 and UTF-16 away by where their zero bytes fall.
_UNMARKED = (
    (re.compile(rb"\x00\x00\x00[\t\n\r <]"), "utf-32-be"),
    (re.compile(rb"[\t\n\r <]\x00\x00\x00"), "utf-32-le"),
    (re.compile(rb"\x00[\t\n\r <]\x00[\x01-\x7f]"), "utf-16-be"),
    (re.compile(rb"[\t\n\r <]\x00[\x01-\x7f]\x00"), "utf-16-le"),
)
# Latin-script text has a non-ASCII byte here and there; Cyrillic, Greek, Hebrew or
# CJK text in a legacy encoding has runs of them: read as windows-1252, mojibake. Runs
# that are well-formed UTF-8 sequences are broken UTF-8, not a legacy encoding; a
# no-break space (0xA0 in all of them) is a space, as in French « à ».
_NON_ASCII_RUN = re.compile(rb"[\x80-\x9f\xa1-\xff]{3}")
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
# Latin-script single-byte encodings: declared, they are often wrong, and reading
# with them rarely fails, so only the look of the result tells.
_FALLBACK = "windows-1252"
_WESTERN = frozenset({_FALLBACK, "cp1252", "iso8859-1", "iso8859-15"})
_CODEC_LABEL = re.compile(r"^(iso)(8859)")
_DECLARATION = re.compile(rb"<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
# Up to the next "<" at most: an unterminated "<?xml " must not scan to the end each time.
_XML_DECLARATION = re.compile(r"<\?xml\s[^<>]*\?>")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_BEYOND_UNICODE = re.compile(r"&#(?:[xX][0-9a-fA-F]{6,}|[0-9]{7,});")  # maybe past U+10FFFF
_ROOT = re.compile(r"<([A-Za-z][\w.:-]*)")
_FEED_ELEMENT = re.compile(r"<(?:[\w-]+:)?(?:rss|feed|RDF|channel)[\s>]")
_SLASH_DATE = re.compile(r"\d{4}/\d\d/\d\d(?:[ T]\d\d:\d\d(?::\d\d)?)?$")
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
    them), and a seen one whose guid got a title sharing almost no words with its own.
    Its language is detected then too, once per item."""

    feed_id: str
    key: str
    title: str
    link: str | None
    published: datetime | None
    entry: Entry
    text_limit: int = TEXT_LIMIT

    def item(self) -> Item:
        summary, content = self.text()
        return Item(
            feed_id=self.feed_id,
            key=self.key,
            title=self.title,
            link=self.link,
            summary=summary,
            content="" if content == summary else content,
            published=self.published,
            author=bounded_text(self.entry.author or "", TITLE_LIMIT) or None,
            language=item_language(self.title, summary or content, self.entry.language),
        )

    def fingerprint(self) -> str:
        """The fingerprint of the entry's text, which tells a reused guid (see ``rewritten``)."""
        return fingerprint(" ".join(self.text()))

    def text(self) -> tuple[str, str]:
        """The summary and content as plain text, within the limit."""
        plain = self.entry.plain
        return (
            bounded_text(self.entry.summary, self.text_limit, plain="summary" in plain),
            bounded_text(self.entry.content, self.text_limit, plain="content" in plain),
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
    data = _XML_DECLARATION.sub("", text.lstrip(), count=1)
    if not data.strip():
        raise FetchError("malformed", "an XML declaration and nothing else")
    # feedparser's chr() raises on a character reference past Unicode: read it as U+FFFD.
    data = _BEYOND_UNICODE.sub(_replacement, data)
    try:
        result = feedparser.parse(
            # Never bytes or str: feedparser would open them as a path or URL.
            io.BytesIO(data.encode("utf-8")),
            # No Content-Location: feedparser would resolve non-URL guids against it.
            response_headers={"content-type": "application/xml; charset=utf-8"},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except ValueError as err:  # feedparser's own conversions on input it did not foresee
        raise FetchError("malformed", f"unreadable markup ({err})") from None
    atom = result.get("version", "").startswith("atom")
    feed = result.feed
    entries = tuple(_xml_entry(entry, atom, feed.get("language")) for entry in result.entries)
    if not result.get("version") and not entries:
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
        title_plain=_is_plain(feed.get("title_detail")),
    )


def _replacement(reference: re.Match[str]) -> str:
    """``&#xFFFD;`` for a numeric character reference past U+10FFFF, else the reference."""
    digits = reference.group()[2:-1]
    value = int(digits[1:], 16) if digits[:1] in "xX" else int(digits)
    return "&#xFFFD;" if value > 0x10FFFF else reference.group()


def _describe(error: object) -> str | None:
    if error is None:
        return None
    message = getattr(error, "getMessage", None)
    return message() if callable(message) else str(error)


def _decode(body: bytes, content_type: str | None) -> tuple[str, str | None]:
    """The document as text, and a warning when its declared encoding was wrong or
    had to be guessed."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace"), None
    for pattern, encoding in _UNMARKED:
        if pattern.match(body):
            return body.decode(encoding, errors="replace"), None
    declared = _declared(body, content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _mostly_utf8(body) or _decode_legacy(body, declared)
    if declared not in (None, "utf-8", "ascii") and not body.isascii():
        return text, f"declared encoding {declared} is wrong: read as UTF-8"
    return text, None


def _mostly_utf8(body: bytes) -> tuple[str, str] | None:
    """UTF-8 with a few stray bytes (a bad copy, a truncated character), read as UTF-8 with
    those bytes replaced, when its valid multi-byte sequences outnumber them: read whole as
    windows-1252, every other character of it would be mojibake."""
    valid = len(_UTF8_SEQUENCE.findall(body))
    stray = sum(byte >= 0x80 for byte in _UTF8_SEQUENCE.sub(b"", body))
    if valid <= stray:
        return None
    return body.decode("utf-8", errors="replace"), f"not UTF-8 everywhere: {stray} byte(s) replaced"


def _decode_legacy(body: bytes, declared: str | None) -> tuple[str, str | None]:
    """Bytes that are not UTF-8, read as declared (else as windows-1252), unless they have
    runs of non-ASCII bytes that are not UTF-8 (legacy non-Latin text), that reading fails
    or is Latin-script (mojibake), and the detector reads them better: then its guess,
    named in the warning."""
    usual = declared if declared not in (None, "utf-8") else _FALLBACK
    try:
        text: str | None = body.decode(usual)
    except UnicodeDecodeError:
        text = None
    if (text is None or usual in _WESTERN) and _legacy_runs(body):
        guess = detect(body, _FALLBACK if text is None else usual)
        if guess is not None:
            claimed = _label(declared) if declared else "none"
            warning = f"encoding: declared {claimed}, detected {_label(guess)}"
            return body.decode(guess, errors="replace"), warning
    if text is not None and usual == declared:
        return text, None
    claim = f"declared encoding {declared} is wrong" if declared else "not UTF-8"
    return body.decode(_FALLBACK, errors="replace"), f"{claim}: read as {_FALLBACK}"


def _legacy_runs(body: bytes) -> bool:
    """Whether ``body`` has runs of non-ASCII bytes that are not UTF-8 sequences."""
    return bool(_NON_ASCII_RUN.search(body)) and bool(
        _NON_ASCII_RUN.search(_UTF8_SEQUENCE.sub(b" ", body))
    )


def _label(name: str) -> str:
    """A Python codec name as the IANA label people declare: ``cp1251`` is windows-1251."""
    return _CODEC_LABEL.sub(r"\1-\2", name.replace("cp125", "windows-125"))


def _declared(body: bytes, content_type: str | None) -> str | None:
    """The encoding the document claims (XML declaration, else HTTP charset), if Python knows it."""
    match = _DECLARATION.search(body, 0, 512)
    label = match.group(1).decode("ascii") if match else None
    if label is None and content_type:
        charset = _CHARSET.search(content_type)
        label = charset.group(1) if charset else None
    return None if label is None else _text_encoding(label)


@functools.lru_cache(maxsize=64)
def _text_encoding(label: str) -> str | None:
    """Python's name for ``label`` when it is an encoding that keeps ASCII as ASCII, the
    only kind a declaration readable as ASCII can truthfully name: not UTF-16 (read by
    its zero bytes), nor ``base64``, ``rot13``, ``unicode-escape`` or ``undefined``,
    which are codecs but do not read text, or read it wrongly."""
    try:
        name = codecs.lookup(label).name.replace("_", "-")
        probe = "<?xml \\x41\\u0041 &#1;"
        ascii_compatible = probe.encode("ascii").decode(name) == probe
    except (LookupError, ValueError):
        return None
    return name if ascii_compatible else None


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


def _xml_entry(entry: feedparser.FeedParserDict, atom: bool, language: str | None) -> Entry:
    """Which text is plain is feedparser's ``type`` of each: Atom's ``type="text"`` (its
    default), and an RSS title without markup; an RSS description is always HTML. The
    declared language is the ``xml:lang`` in force at its title or summary (Atom), else the
    feed's (RSS ``<language>``)."""
    contents = entry.get("content", ())
    content = max(contents, key=lambda c: len(c.get("value") or ""), default=None)
    # Without its own detail, the summary is feedparser's copy of the content.
    summary = entry.get("summary_detail") or next(iter(contents), None)
    details: dict[TextField, object] = {"title": entry.get("title_detail")}
    if atom:
        details |= {"summary": summary, "content": content}
    return Entry(
        guid=entry.get("id"),
        link=_entry_link(entry, atom),
        # A value feedparser could not finish (a broken end tag) is None, not missing.
        title=entry.get("title") or "",
        summary=entry.get("summary") or "",
        content=(content.get("value") or "") if content is not None else "",
        published=_entry_date(entry),
        author=entry.get("author"),
        plain=frozenset(name for name, detail in details.items() if _is_plain(detail)),
        language=_declared_language(entry.get("title_detail"), summary) or language,
    )


def _declared_language(*details: object) -> str | None:
    """The first ``language`` (``xml:lang``) feedparser gives a text construct."""
    for detail in details:
        language = detail.get("language") if isinstance(detail, dict) else None
        if isinstance(language, str) and language:
            return language
    return None


def _is_plain(detail: object) -> bool:
    """True for a feedparser text construct whose type is plain text."""
    return isinstance(detail, dict) and detail.get("type") == "text/plain"


def _entry_link(entry: feedparser.FeedParserDict, atom: bool) -> str | None:
    """The entry's link, else its id when that is a web URL and may stand for the page.

    feedparser copies the id (RSS ``<guid>`` unless ``isPermaLink="false"``, Atom
    ``<id>``) to ``link`` when no link came first, and keeps it flagged so
    (``guidislink``) after a ``<link>`` that follows replaces it: only a link that no
    ``<link>`` gave is the id. An Atom ``<link>`` without ``href`` is no link, but
    before the id it keeps feedparser from copying it: Atom's id stands in here.
    """
    link = entry.get("link") or None
    guid = entry.get("id")
    from_guid = link == guid and all(d.get("href") != link for d in entry.get("links", ()))
    if (link is None and atom) or (link is not None and from_guid):
        return guid if _is_web_url(guid) else None
    return link


def _entry_date(entry: feedparser.FeedParserDict) -> datetime | None:
    """The first date of published, updated, created that can be read.

    Unix times and ``YYYY/MM/DD`` dates are read here first: feedparser turns
    them into wrong dates rather than none. Then feedparser's reading, then ours.
    """
    for name in ("published", "updated", "created"):
        raw = dict.get(entry, name)  # not entry.get: it maps missing keys to others
        moment = _numeric_date(raw)
        parsed = dict.get(entry, f"{name}_parsed")
        twelve_hour = isinstance(raw, str) and twenty_four_hour(raw) != raw
        if moment is None and parsed and not twelve_hour:  # feedparser misreads AM/PM
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
        title=bounded_text(document.title or "", TITLE_LIMIT, plain=document.title_plain) or None,
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
    title = bounded_text(entry.title, TITLE_LIMIT, plain="title" in entry.plain)
    link = _absolute(entry.link, base)
    draft = Draft(feed_id, "", title, link, entry.published, entry, text_limit)
    # Rare: only an entry with no guid, link or title has its text converted here.
    text = " ".join(draft.text()) if keyed_by_text(guid, link, title) else ""
    return replace(draft, key=item_key(guid, link, title, entry.published, text))


def _absolute(link: str | None, base: str) -> str | None:
    """``link`` resolved against ``base``; only http(s) links survive (no ``javascript:``),
    and none that ``urljoin`` refuses.

    A plain absolute link (most of them) is its own resolution: ``urljoin`` would
    give it back unchanged, so it is not called.
    """
    if not link or not (link := link.strip()):
        return None
    if _PLAIN_URL.fullmatch(link) and _PLAIN_URL.fullmatch(base):
        return link
    try:
        absolute = urljoin(base, link)
    except ValueError:  # an unclosed "[" of an IPv6 host: no link, not a failed feed
        return None
    return absolute if _is_web_url(absolute) else None


def _is_web_url(link: str | None) -> bool:
    try:
        parts = urlsplit(link or "")
    except ValueError:
        return False
    return parts.scheme.lower() in _SAFE_SCHEMES and bool(parts.netloc)
