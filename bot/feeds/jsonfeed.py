"""JSON Feed 1.0/1.1 (https://jsonfeed.org), which feedparser does not read.

Also Dave Winer's RSS-in-JSON (``{"rss": {"channel": {"item": [...]}}}``).
Yields the same :class:`Document` of :class:`Entry` values that the XML path
builds from feedparser's output, so one function turns both into items. A
document truncated mid-item is recovered item by item, with a warning.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from bot.errors import FetchError

TextField = Literal["title", "summary", "content"]
PLAIN_FIELDS: frozenset[TextField] = frozenset(("title", "summary", "content"))


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry as published: text fields are HTML but those named in ``plain``,
    which are plain text (Atom ``type="text"``, JSON Feed's text fields): a ``<`` in
    them is a character, never a tag. ``language`` is the language tag the feed declares
    for it (its own, else the feed's), as written."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    published: datetime | None
    author: str | None
    plain: frozenset[TextField] = frozenset()
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """What any feed format yields before text conversion and identity."""

    title: str | None
    link: str | None
    entries: tuple[Entry, ...]
    warning: str | None = None
    ttl_seconds: int | None = None
    title_plain: bool = False


_DECODER = json.JSONDecoder(strict=False)
_ITEMS = re.compile(r'"items"\s*:\s*\[')
_VERSION = re.compile(r"https?://jsonfeed\.org/version/")
# A 12-hour time of day: "04:42 PM", "4:42:10 p.m.".
_TIME_OF_DAY = re.compile(r"\b(\d{1,2})(:\d\d(?::\d\d)?)\s*([AaPp])\.?[Mm]\b\.?")
_FEED_KEY = re.compile(r'"(?:version|feed_url|home_page_url)"\s*:')
_TITLE = re.compile(r'"title"\s*:\s*("(?:[^"\\]++|\\.)*+")')


def looks_like_json(body: bytes) -> bool:
    """True for a JSON document (an object), the only thing a feed starting with ``{`` can be."""
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def read_json_feed(body: bytes) -> Document:
    """Parse a JSON Feed; raise ``not_a_feed`` for other JSON, ``malformed`` for broken JSON.

    Control characters inside strings are accepted (``strict=False``): feeds
    publish raw tabs and newlines in their HTML.
    """
    text = body.decode("utf-8-sig", errors="replace")
    try:
        data = json.loads(text, strict=False)
    except (ValueError, RecursionError) as error:  # nesting deeper than Python's stack
        return _recover(text, error)
    if isinstance(data, dict) and _VERSION.match(str(data.get("version", ""))):
        language = _string(data.get("language"))
        return Document(
            title=_string(data.get("title")),
            link=_string(data.get("home_page_url")),
            entries=tuple(_entry(item, language) for item in _objects(data.get("items"))),
            title_plain=True,
        )
    rss = data.get("rss") if isinstance(data, dict) else None
    channel = rss.get("channel") if isinstance(rss, dict) else None
    if isinstance(channel, dict):
        return _rss_in_json(channel)
    raise FetchError("not_a_feed", "JSON document is not a JSON Feed")


def _objects(value: object) -> list[dict[str, Any]]:
    """The JSON objects of a list; a single object counts as a list of one."""
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _rss_in_json(channel: dict[str, Any]) -> Document:
    language = _string(channel.get("language"))
    entries = (
        Entry(
            guid=_identifier(item.get("guid")),
            link=_string(item.get("link")),
            title=_string(item.get("title")) or "",
            summary=_string(item.get("description")) or "",
            content="",
            published=parse_date(item.get("pubDate")),
            author=_string(item.get("author")),
            language=language,
        )
        for item in _objects(channel.get("item"))
    )
    return Document(
        title=_string(channel.get("title")),
        link=_string(channel.get("link")),
        entries=tuple(entries),
    )


def _recover(text: str, error: ValueError | RecursionError) -> Document:
    """Read every complete item of a truncated or broken JSON Feed."""
    start = _ITEMS.search(text)
    if start is None or not _FEED_KEY.search(text):
        raise FetchError("malformed", f"invalid JSON: {error}")
    entries: list[Entry] = []
    position = start.end()
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        try:
            item, position = _DECODER.raw_decode(text, position)
        except (ValueError, RecursionError):
            break
        if isinstance(item, dict):
            entries.append(_entry(item))
    if not entries:
        raise FetchError("malformed", f"invalid JSON: {error}")
    return Document(
        title=_recovered_title(text, start.start()),
        link=None,
        entries=tuple(entries),
        warning=f"invalid JSON, {len(entries)} items recovered: {error}",
        title_plain=True,
    )


def _recovered_title(text: str, end: int) -> str | None:
    """The feed's title before ``end`` in a broken document, if it is a valid JSON string."""
    title = _TITLE.search(text, 0, end)
    try:
        return _string(_DECODER.decode(title.group(1))) if title else None
    except ValueError:  # an invalid escape such as \\q
        return None


def _entry(item: dict[str, Any], language: str | None = None) -> Entry:
    """A JSON Feed item: ``title`` and ``summary`` are plain text, and so is ``content_text``,
    read when there is no ``content_html``. Its ``language`` (JSON Feed 1.1) overrides the
    feed's."""
    content_html = _string(item.get("content_html"))
    content = content_html or _string(item.get("content_text")) or ""
    return Entry(
        guid=_identifier(item.get("id")),
        link=_string(item.get("url")) or _string(item.get("external_url")),
        title=_string(item.get("title")) or "",
        summary=_string(item.get("summary")) or "",
        content=content,
        published=parse_date(item.get("date_published")) or parse_date(item.get("date_modified")),
        author=_author(item),
        plain=PLAIN_FIELDS - {"content"} if content_html else PLAIN_FIELDS,
        language=_string(item.get("language")) or language,
    )


def _author(item: dict[str, Any]) -> str | None:
    authors = item.get("authors")
    if isinstance(authors, list) and authors and isinstance(authors[0], dict):
        return _string(authors[0].get("name"))
    author = item.get("author")
    return _string(author.get("name")) if isinstance(author, dict) else None


def _identifier(value: object) -> str | None:
    """JSON Feed ids are strings, but some feeds publish numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return _string(value)


def _string(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def twenty_four_hour(value: str) -> str:
    """``value`` with a 12-hour time written in 24 hours: RFC 822 parsers (the stdlib's,
    feedparser's) take "PM" for a zone, read "04:42 PM" as 04:42 and drop a zone after it."""
    return _TIME_OF_DAY.sub(_as_24_hour, value)


def _as_24_hour(time: re.Match[str]) -> str:
    hour = int(time.group(1))
    if not 1 <= hour <= 12:
        return time.group()
    return f"{hour % 12 + (12 if time.group(3) in 'Pp' else 0):02d}{time.group(2)}"


def parse_date(value: object) -> datetime | None:
    """RFC 3339 (as JSON Feed requires), else RFC 822; timezone-aware UTC, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = twenty_four_hour(value.strip())
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
