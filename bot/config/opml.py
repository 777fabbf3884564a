"""OPML subscription lists → feeds (pure: bytes in, feeds out)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bot.text import tokens


@dataclass(frozen=True)
class OpmlFeed:
    title: str
    url: str
    categories: tuple[str, ...] = ()


class OpmlError(ValueError):
    """The file is not a readable OPML document."""


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """Every ``<outline xmlUrl=…>``, with the titles of the outlines that enclose it as categories.

    A DTD is refused outright: OPML never needs one, and refusing it rules out
    entity-expansion bombs and external entities.
    """
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise OpmlError("OPML with a DOCTYPE or ENTITY declaration is refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise OpmlError(f"not well-formed XML: {err}") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise OpmlError("not an OPML document (no <opml><body>)")
    feeds: list[OpmlFeed] = []
    _walk(body, (), feeds)
    return feeds


def _walk(node: ET.Element, path: tuple[str, ...], out: list[OpmlFeed]) -> None:
    for outline in node.findall("outline"):
        title = (outline.get("title") or outline.get("text") or "").strip()
        url = (outline.get("xmlUrl") or "").strip()
        if url:
            out.append(OpmlFeed(title or url, url, path))
        _walk(outline, (*path, title) if title and not url else path, out)


def feed_id(title: str, taken: set[str]) -> str:
    """A readable, unique id from a title (``CBC News: World`` → ``cbc-news-world``)."""
    base = "-".join(tokens(title))[:40].strip("-")
    if not base or not base[0].isascii() or not base.replace("-", "").isascii():
        base = "feed"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate
