"""Builds real RSS 2.0 documents for tests, so each test states its items in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Entry:
    title: str
    summary: str = ""
    link: str | None = None
    guid: str | None = None
    published: datetime | None = None


def rss(entries: list[Entry], title: str = "Test feed") -> str:
    body = "".join(_item(e) for e in entries)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://example.org/</link>"
        f"<description>test</description>{body}</channel></rss>\n"
    )


def _item(e: Entry) -> str:
    parts = [f"<title>{escape(e.title)}</title>"]
    if e.summary:
        parts.append(f"<description>{escape(e.summary)}</description>")
    if e.link:
        parts.append(f"<link>{escape(e.link)}</link>")
    if e.guid:
        parts.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
    if e.published:
        parts.append(f"<pubDate>{format_datetime(e.published)}</pubDate>")
    return "<item>" + "".join(parts) + "</item>"
