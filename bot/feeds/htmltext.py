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

# Where something invisible may begin: an element whose content is never text a
# reader sees, a comment, a CDATA marker, a processing instruction, a declaration.
# What follows (the start tag's ``>``, the end tag) is looked for by hand, once.
_HIDDEN = ("script", "style", "noscript", "template", "iframe", "object", "svg", "math", "head")
_INVISIBLE = re.compile(rf"<({'|'.join(_HIDDEN)})\b|<!--|<!\[CDATA\[|\]\]>|<\?|<!", re.IGNORECASE)
_END_TAG = {name: re.compile(rf"</{name}\s*+>", re.IGNORECASE) for name in _HIDDEN}
_CDATA = ("<![CDATA[", "]]>")
# Tags that end a line or paragraph of text.
_BLOCK_NAMES = (
    *("p", "div", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl"),
    *("dt", "dd", "tr", "table", "thead", "tbody", "tfoot", "blockquote", "pre", "section"),
    *("article", "aside", "header", "footer", "nav", "figure", "figcaption", "address"),
    *("main", "form", "fieldset", "details", "summary", "caption"),
)
_BLOCK = re.compile(rf"<\s*+/?\s*+(?:{'|'.join(_BLOCK_NAMES)})\b[^>]*>", re.IGNORECASE)
# Table cells separate their content with a space.
_CELL_NAMES = ("td", "th")
_CELL = re.compile(rf"<\s*+/?\s*+(?:{'|'.join(_CELL_NAMES)})\b[^>]*>", re.IGNORECASE)
# Any other tag: a '<' followed by a letter, '/' or '!' up to the next '>'.
_TAG = re.compile(r"<[/!]?[A-Za-z][^<>]*>|<[A-Za-z][^<>]*$")
# Markup left after one pass means the feed escaped its HTML twice.
_ESCAPED_MARKUP = re.compile(r"</[A-Za-z][\w:-]*\s*>|<(?:br|p|img|a)\b[^<>]*>", re.IGNORECASE)


# A title longer than this is not a title: its text is cut here, whatever the settings.
TITLE_LIMIT = 2_048
# Markup takes more characters than the text it leaves: HTML is read up to this
# many times the limit on its text, so converting a field costs a bounded amount.
MARKUP_FACTOR = 4


def bounded_text(fragment: str, limit: int) -> str:
    """:func:`html_to_text` of a field, at most ``limit`` characters of it.

    The HTML is cut at ``MARKUP_FACTOR * limit`` characters before conversion,
    and the text at ``limit``, between words when a word boundary is near.
    """
    return cut_text(html_to_text(fragment[: MARKUP_FACTOR * limit]), limit)


def cut_text(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else a prefix of it that ends a word."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    end = max(head.rfind(" "), head.rfind("\n"))
    return head[:end].rstrip() if end > limit // 2 else head[:limit]


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
        fragment = _strip_tags(_drop_invisible(fragment))
    if "&" in fragment:
        fragment = html.unescape(fragment)
    return _collapse(fragment)


def _drop_invisible(fragment: str) -> str:
    """``fragment`` with every invisible construct replaced by a space.

    In one forward pass, linear in the length: a start tag or declaration
    without a ``>`` after it, or an element without its end tag after it, is
    left to :data:`_TAG`, and remembered so that later ones fail at once.
    """
    pieces: list[str] = []
    done = search = 0
    last_gt = fragment.rfind(">")
    unclosed: dict[str, int] = {}  # element name -> where its end tag was sought in vain
    while (start := _INVISIBLE.search(fragment, search)) is not None:
        end = _invisible_end(fragment, start, last_gt, unclosed)
        if end < 0:
            search = start.start() + 1
            continue
        pieces += [fragment[done : start.start()], " "]
        done = search = end
    pieces.append(fragment[done:])
    return "".join(pieces)


def _invisible_end(
    fragment: str, start: re.Match[str], last_gt: int, unclosed: dict[str, int]
) -> int:
    """Where the invisible construct beginning at ``start`` ends; -1 when it is none.

    A comment or processing instruction without its end runs to the end of the text.
    """
    token = start.group().upper()
    after = start.end()
    if token in _CDATA:
        return after
    if token in ("<!--", "<?"):
        end = fragment.find("-->" if token == "<!--" else "?>", after)
        return len(fragment) if end < 0 else end + (3 if token == "<!--" else 2)
    if after > last_gt:
        return -1
    tag_end = fragment.find(">", after) + 1
    name = start.group(1)
    if name is None:
        return tag_end
    name = name.lower()
    if tag_end >= unclosed.get(name, len(fragment) + 1):
        return -1
    end_tag = _END_TAG[name].search(fragment, tag_end)
    if end_tag is None:
        unclosed[name] = tag_end
        return -1
    return end_tag.end()


def _strip_tags(fragment: str) -> str:
    """Block tags to line breaks, cells to spaces, every other tag dropped.

    A block or cell tag ends at a ``>``, so none lies after the last one: that
    tail is left out of their substitutions, where a run of unclosed ``<p``
    would each scan to the end of the text.
    """
    cut = fragment.rfind(">") + 1
    head = _CELL.sub(" ", _BLOCK.sub("\n", fragment[:cut]))
    return _TAG.sub("", head + fragment[cut:])


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
