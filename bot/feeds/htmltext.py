"""HTML fragments from feeds → plain text, in one pass over lexbor's HTML5 tokenizer.

Feeds carry HTML in titles, summaries and content; items carry plain text. The
fragment is parsed once as a browser parses it (selectolax over lexbor, C, linear
time), so entities are decoded exactly once: escaped markup (``&lt;T&gt;``,
``&lt;?php``) stays text, and a stray ``<?`` or ``<!`` ends at its ``>`` rather
than swallowing the rest. What a reader would not see (scripts, styles, frames,
SVG) is dropped; block elements become line breaks; whitespace is collapsed.
Plain-text values (Atom ``type="text"``, JSON Feed's text fields) are never
parsed as HTML: :func:`plain_text`.

selectolax is imported here only.
"""

from __future__ import annotations

import html
import re

from selectolax.lexbor import LexborHTMLParser

# Elements whose content a reader never sees (a browser's stylesheet hides them, or
# they hold code or a nested document). MathML is text a reader sees, and is kept.
_HIDDEN = [
    *("script", "style", "noscript", "template", "iframe", "object", "svg", "head", "title"),
    *("noembed", "noframes", "datalist"),
]
# Elements that end a line or paragraph of text.
_BLOCK_NAMES = (
    *("p", "div", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl"),
    *("dt", "dd", "tr", "table", "thead", "tbody", "tfoot", "blockquote", "pre", "section"),
    *("article", "aside", "header", "footer", "nav", "figure", "figcaption", "address"),
    *("main", "form", "fieldset", "details", "summary", "caption"),
)
_BLOCKS = ",".join(_BLOCK_NAMES)
# Table cells separate their content with a space.
_CELLS = "td,th"
_ALT = "img[alt]"
# lexbor's tree builder walks its stack of open elements for most tags, so markup nested N
# deep costs N² (400,000 characters of <div> take seconds). A fragment of more tags than
# _PIECE_TAGS is parsed in pieces of about _PIECE_CHARS characters, each cut before a block
# tag where there is one (its line break is the same, cut or not): its cost stays linear.
# Not before a table's parts, which mean nothing outside their table; the lookahead for a
# first letter keeps the search fast on markup of other tags.
_PIECE_TAGS = 1_000
_PIECE_CHARS = 5_000
_CUT = re.compile(
    r"<(?=[pdblhuoasPDBLHUOAS])(?:p|div|br|li|h[1-6]|ul|ol|hr|blockquote|section|article)[\s/>]",
    re.IGNORECASE,
)

# Where a cut must not fall: inside a comment, inside an element whose content is raw text
# (a "<p>" in a script is not a tag), or inside a tag (a "<p>" in a quoted attribute).
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
_OPENS = re.compile(rf"<!--|<({'|'.join(_RAW_TEXT)})[\s/>]", re.IGNORECASE)
_CLOSES = {"-->": re.compile("-->")} | {
    f"</{name}": re.compile(f"</{name}", re.IGNORECASE) for name in _RAW_TEXT
}


# A title longer than this is not a title: its text is cut here, whatever the settings.
TITLE_LIMIT = 2_048
# Markup takes more characters than the text it leaves: HTML is read up to this
# many times the limit on its text, so converting a field costs a bounded amount.
MARKUP_FACTOR = 4


def bounded_text(fragment: str, limit: int, *, plain: bool = False) -> str:
    """:func:`html_to_text` (:func:`plain_text` when ``plain``) of a field, at most
    ``limit`` characters of it.

    The value is cut at ``MARKUP_FACTOR * limit`` characters before conversion,
    and the text at ``limit``, between words when a word boundary is near.
    """
    convert = plain_text if plain else html_to_text
    return cut_text(convert(fragment[: MARKUP_FACTOR * limit]), limit)


def cut_text(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else a prefix of it that ends a word."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    end = max(head.rfind(" "), head.rfind("\n"))
    return head[:end].rstrip() if end > limit // 2 else head[:limit]


def plain_text(value: str) -> str:
    """A plain-text value as item text: nothing unescaped or stripped, whitespace collapsed."""
    return _collapse(value)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: entities decoded once, paragraphs kept as ``\\n``.

    Without markup (no ``<``) the fragment is only unescaped and collapsed, so the
    common case of a plain title costs next to nothing. A fragment whose only text
    is images' alt text (a comic, a chart) reads as that alt text.
    """
    if "<" not in fragment:
        return _collapse(html.unescape(fragment) if "&" in fragment else fragment)
    trees = [_tree(piece) for piece in _pieces(fragment)]
    text = _collapse("".join(tree.text() for tree in trees))
    if not text:
        alts = (str(node.attributes["alt"] or "") for tree in trees for node in tree.css(_ALT))
        text = _collapse(" ".join(alts))
    return text


def _pieces(fragment: str) -> list[str]:
    """``fragment`` whole, or cut into pieces of about ``_PIECE_CHARS`` characters when it
    has more than ``_PIECE_TAGS`` tags."""
    if fragment.count("<") <= _PIECE_TAGS:
        return [fragment]
    pieces: list[str] = []
    start = 0
    while start + _PIECE_CHARS < len(fragment):
        far = start + _PIECE_CHARS
        block = _CUT.search(fragment, far, far + _PIECE_CHARS)
        cut = _safe_cut(fragment, start, block.start() if block else fragment.find("<", far))
        if cut < 0:
            break
        pieces.append(fragment[start:cut])
        start = cut
    pieces.append(fragment[start:])
    return pieces


def _safe_cut(fragment: str, start: int, cut: int) -> int:
    """``cut``, or the first ``<`` after it where the markup since ``start`` has no comment,
    raw-text element or tag left open (-1: none, the rest is one piece). Each step looks
    only at markup not looked at before, so the pieces stay linear in the fragment."""
    scanned = start
    while cut >= 0:
        opened = None
        while found := _OPENS.search(fragment, scanned, cut):
            name = found.group(1)
            close = "-->" if name is None else f"</{name.lower()}"
            end = _find_end(fragment, close, found.end(), cut)
            if end < 0:
                opened = close
                break
            scanned = end + len(close)  # what an element holds is never an opening
        scanned = cut
        if opened is not None:
            end = _find_end(fragment, opened, cut, len(fragment))
            cut = -1 if end < 0 else fragment.find("<", end + len(opened))
            continue
        tag = fragment.rfind("<", start, cut)
        if tag >= 0 and fragment.find(">", tag, cut) < 0:  # the cut is inside that tag
            end = fragment.find(">", cut)
            cut = -1 if end < 0 else fragment.find("<", end)
            continue
        return cut
    return -1


def _find_end(fragment: str, close: str, begin: int, end: int) -> int:
    """Where ``close`` (``-->`` or ``</name``, any case) first occurs in ``fragment[begin:end]``."""
    found = _CLOSES[close].search(fragment, begin, end)
    return found.start() if found else -1


def _tree(fragment: str) -> LexborHTMLParser:
    """The fragment parsed as a browser parses it, invisible elements removed, a line break
    around every block element and a space around every table cell."""
    # Lone surrogates (from JSON \ud800 escapes) cannot be UTF-8: lexbor reads U+FFFD.
    tree = LexborHTMLParser(fragment.encode("utf-8", "surrogatepass"), is_fragment=True)
    tree.strip_tags(_HIDDEN)
    for node in tree.css(_BLOCKS):
        node.insert_before("\n")
        node.insert_after("\n")
    for node in tree.css(_CELLS):
        node.insert_before(" ")
        node.insert_after(" ")
    return tree


def _collapse(text: str) -> str:
    """One space between words, one ``\\n`` between paragraphs, nothing at either end;
    no NUL (the HTML tokenizer drops it too, so escaped or not, text reads the same).

    ``str.split`` and ``str.join`` rather than substitutions: a regex that matches
    every single space costs three times as much on a paragraph of prose.
    """
    text = text.replace("\r", "\n").replace("\0", "")
    if "\n" not in text:
        return " ".join(text.split())
    return "\n".join(
        [line for line in (" ".join(part.split()) for part in text.split("\n")) if line]
    )
