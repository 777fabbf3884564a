"""The library route for HTML → text: :class:`html.parser.HTMLParser` tokenizes, and the output
rules of :mod:`bot.feeds.htmltext` are applied to its tokens.

This is the specification the regex converter is pinned to (tests/unit/feeds/test_htmltext.py)
and the baseline bench/parsing.py measures it against. It is not used by the bot: on Python
3.11 HTMLParser is quadratic on unclosed tags and comments (49-61x the time at 8x the input),
and feed HTML is untrusted and up to 400,000 characters long.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

from bot.feeds.htmltext import _BLOCK_NAMES, _CELL_NAMES, _ESCAPED_MARKUP, _HIDDEN, _collapse

_BLOCKS = frozenset(_BLOCK_NAMES)
_CELLS = frozenset(_CELL_NAMES)
_INVISIBLE = frozenset(_HIDDEN)


class _TextParser(HTMLParser):
    """Text tokens kept, block tags as line breaks, cells as spaces, invisible content dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden: list[str] = []  # the invisible element being skipped, once per nesting

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            if tag == self.hidden[-1]:
                self.hidden.append(tag)
        elif tag in _INVISIBLE:
            self.hidden.append(tag)
            self.parts.append(" ")
        else:
            self._separate(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.hidden:
            self._separate(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if tag == self.hidden[-1]:
                self.hidden.pop()
        else:
            self._separate(tag)

    def _separate(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in _CELLS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    def handle_comment(self, data: str) -> None:
        self._invisible()

    def handle_pi(self, data: str) -> None:
        self._invisible()

    def handle_decl(self, decl: str) -> None:
        self._invisible()

    def unknown_decl(self, data: str) -> None:
        self._invisible()
        if data.startswith("CDATA["):  # a stray CDATA section: its markers go, its text stays
            self.handle_data(data[len("CDATA[") :])
            self._invisible()

    def _invisible(self) -> None:
        if not self.hidden:
            self.parts.append(" ")


def _convert(fragment: str) -> str:
    if "<" not in fragment:
        return _collapse(html.unescape(fragment))
    parser = _TextParser()
    parser.feed(fragment)
    parser.close()
    return _collapse("".join(parser.parts))


def parser_html_to_text(fragment: str) -> str:
    """:func:`bot.feeds.htmltext.html_to_text`, tokenized by the standard library's HTMLParser."""
    text = _convert(fragment)
    if "<" in text and _ESCAPED_MARKUP.search(text):
        text = _convert(text)
    return text
