"""HTML fragments from feeds → plain text, with regular expressions only.

Feeds carry HTML in titles, summaries and content; items carry plain text. A
real HTML parser (or feedparser's sanitiser) costs tens of milliseconds per
feed, while a handful of compiled C-level substitutions does the job: drop
comments and script/style bodies, turn block elements into line breaks, drop
every other tag, decode entities, collapse whitespace.
"""

from __future__ import annotations

import html
import re

# Elements whose content is never text a reader sees.
_INVISIBLE = re.compile(
    r"<(script|style|noscript|template|iframe|object|svg|math|head)\b[^>]*>.*?</\1\s*>"
    r"|<!--.*?(?:-->|$)|<!\[CDATA\[|\]\]>|<\?.*?(?:\?>|$)|<![^>]*>",
    re.IGNORECASE | re.DOTALL,
)
# Tags that end a line or paragraph of text.
_BLOCK = re.compile(
    r"<\s*/?\s*(?:p|div|br|hr|h[1-6]|li|ul|ol|dl|dt|dd|tr|table|thead|tbody|tfoot|"
    r"blockquote|pre|section|article|aside|header|footer|nav|figure|figcaption|"
    r"address|main|form|fieldset|details|summary|caption)\b[^>]*>",
    re.IGNORECASE,
)
# Table cells separate their content with a space.
_CELL = re.compile(r"<\s*/?\s*(?:td|th)\b[^>]*>", re.IGNORECASE)
# Any other tag: a '<' followed by a letter, '/' or '!' up to the next '>'.
_TAG = re.compile(r"<[/!]?[A-Za-z][^<>]*>|<[A-Za-z][^<>]*$")
# Markup left after one pass means the feed escaped its HTML twice.
_ESCAPED_MARKUP = re.compile(r"</[A-Za-z][\w:-]*\s*>|<(?:br|p|img|a)\b[^<>]*>", re.IGNORECASE)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: entities decoded, paragraphs kept as ``\\n``.

    Plain text (no ``<`` and no ``&``) only has its whitespace collapsed, so the
    common case of a plain title costs next to nothing.
    """
    text = _convert(fragment)
    if "<" in text and _ESCAPED_MARKUP.search(text):
        text = _convert(text)
    return text


def _convert(fragment: str) -> str:
    if "<" in fragment:
        fragment = _INVISIBLE.sub(" ", fragment)
        fragment = _BLOCK.sub("\n", fragment)
        fragment = _CELL.sub(" ", fragment)
        fragment = _TAG.sub("", fragment)
    if "&" in fragment:
        fragment = html.unescape(fragment)
    return _collapse(fragment)


def _collapse(text: str) -> str:
    """One space between words, one ``\\n`` between paragraphs, nothing at either end.

    ``str.split`` and ``str.join`` rather than substitutions: a regex that matches
    every single space costs three times as much on a paragraph of prose.
    """
    text = text.replace("\r", "\n")
    if "\n" not in text:
        return " ".join(text.split())
    return "\n".join(
        [line for line in (" ".join(part.split()) for part in text.split("\n")) if line]
    )
