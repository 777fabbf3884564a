"""html_to_text: what a feed's HTML leaves as plain text."""

from __future__ import annotations

import html
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.feeds.htmltext as htmltext
from bot.errors import FetchError
from bot.feeds.htmltext import _collapse, html_to_text
from bot.feeds.parse import parse_feed
from tests.paths import CORPUS, FIXTURES
from tests.unit.feeds.parser_text import parser_html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("  plain   title  ", "plain title"),
        ("<b>RCMP</b> in <i>Iraq</i>", "RCMP in Iraq"),
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<ul><li>x</li><li>y</li></ul>", "x\ny"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
        ("Caf&eacute; &amp; &#8220;bar&#8221; &#x263A;", "Café & “bar” ☺"),
        ("non&nbsp;breaking", "non breaking"),
        ("<script>alert('x')</script>kept<style>p {color: red}</style>", "kept"),
        ("<!-- a comment -->visible", "visible"),
        ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
        ("&lt;p&gt;escaped twice&lt;/p&gt;", "escaped twice"),
        ("&lt;not a tag&gt;", "<not a tag>"),
        ('cut off <a href="http://exa', "cut off"),
        ("line\r\none\n\n\n\ntwo", "line\none\ntwo"),
        ("<SCRIPT type='text/javascript'>x()</SCRIPT>Upper", "Upper"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_no_markup_survives_a_real_fragment() -> None:
    fragment = (
        '<div class="x"><p>Hello <a href="/a?b=1&amp;c=2">link</a></p>'
        '<img src="x.png" alt="pic"/><figure><figcaption>Cap</figcaption></figure></div>'
    )
    assert html_to_text(fragment) == "Hello link\nCap"


def _collapse_by_regex(text: str) -> str:
    """The substitutions ``_collapse`` replaced, kept as its specification."""
    text = re.sub(r"[^\S\n]+", " ", text.replace("\r", "\n"))
    return re.sub(r" ?\n[\s]*", "\n", text).strip()


def test_collapse_equals_the_substitutions_it_replaced() -> None:
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    alphabet = [*spaces, " ", " ", "\n", "\r", "a", "é", "-"]
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _collapse(text) == _collapse_by_regex(text), repr(text)


# ---------------------------------------------------------------- pinned to the library route
#
# The regex converter is the only linear one (bench/parsing.py: HTMLParser takes 44-57x the
# time at 8x the input on unclosed tags and comments, nh3 31x on nested blocks); it must give
# the text that HTMLParser's tokens give under the same rules (tests/unit/feeds/parser_text.py).

FIXTURE_FILES = sorted(FIXTURES.glob("*"))
CORPUS_FILES = sorted(p for p in CORPUS.glob("*") if p.suffix != ".tsv") if CORPUS.is_dir() else []


def _fields(body: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], FetchError | None]:
    """Every HTML field parse_feed converts in ``body`` (titles, summaries, contents, authors)."""
    seen: list[str] = []

    def record(fragment: str) -> str:
        seen.append(fragment)
        return html_to_text(fragment)

    monkeypatch.setattr(htmltext, "html_to_text", record)
    try:
        parse_feed(body, feed_id="f", url="https://example.org/feed")
    except FetchError as error:
        return seen, error
    return seen, None


def _assert_same_text(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fields, error = _fields(body, monkeypatch)
    assert fields or error is not None  # a feed that parses has at least its titles
    monkeypatch.undo()
    for field in fields:
        assert html_to_text(field) == parser_html_to_text(field), field[:200]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.name for p in FIXTURE_FILES])
def test_every_fixture_field_reads_as_htmlparser_reads_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_same_text(path.read_bytes(), monkeypatch)


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS_FILES, reason=f"no feed corpus at {CORPUS}")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_every_corpus_field_reads_as_htmlparser_reads_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_same_text(path.read_bytes(), monkeypatch)


# Well-formed HTML as feeds carry it. Left out, where the two routes knowingly differ on
# broken markup: ``<`` + letter with no ``>`` after it, ``>`` inside attribute values,
# an invisible element nested in itself or left unclosed, hyphenated block names (<p-x>).
_WORDS = st.sampled_from(
    [
        *("police", "Sûreté", "Québec", "“quoted”", "AT&T", "1 < 2", "3 > 2", "a & b", "x"),
        *("&amp;", "1 &lt; 2", "&gt;", "&eacute;", "&#8220;", "&#x263A;", "&nbsp;", "&bogus;"),
        *("&lt;p&gt;", "&lt;/p&gt;", "&lt;br&gt;", "&amp;lt;b&amp;gt;", "&#10;", "&copy"),
        *(" ", "  ", "\n", "\r\n", "\t", "\xa0", "\u2003", "\n\n \n"),
    ]
)
_CASES = st.sampled_from([str.lower, str.upper, str.capitalize])
_ATTRIBUTES = st.sampled_from(
    ["", ' href="https://x.example/a?b=1&amp;c=2"', " class=lead", " title='it is / ok'", ' alt=""']
)
_VISIBLE = st.one_of(  # inline, block and cell elements alike often
    st.sampled_from(["b", "i", "em", "strong", "span", "a", "sup", "x-card", "param"]),
    st.sampled_from(htmltext._BLOCK_NAMES),
    st.sampled_from(htmltext._CELL_NAMES),
)
_TEXT = st.lists(_WORDS, min_size=1, max_size=4).map("".join)
_LEAVES = st.one_of(
    _TEXT,
    _TEXT,
    st.builds(
        lambda name, case, attributes, end: f"<{case(name)}{attributes}{end}>",
        st.sampled_from(["img", "br", "hr", "wbr", "input"]),
        _CASES,
        _ATTRIBUTES,
        st.sampled_from(["", "/", " /"]),
    ),
    st.sampled_from(["<!-- note -->", "<!--<p>x</p>-->", "<!-- a > b -->", "<!---->"]),
    st.sampled_from(["<![CDATA[raw]]>", "<![CDATA[a < b]]>", "<?php echo 1 ?>", "<!DOCTYPE html>"]),
    st.sampled_from(["<script>if (a < b) x();</script>", "<SCRIPT type=x>y</SCRIPT >"]),
    st.just("<style>p { color: red }</style>"),
)


def _markup(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    inner = st.lists(children, max_size=4).map("".join)
    element = st.builds(
        lambda before, name, case, attributes, inner, space, after: (
            f"{before}<{case(name)}{attributes}>{inner}</{case(name)}{space}>{after}"
        ),
        st.one_of(st.just(""), _WORDS),
        _VISIBLE,
        _CASES,
        _ATTRIBUTES,
        inner,
        st.sampled_from(["", " "]),
        st.one_of(st.just(""), _WORDS),
    )
    return st.one_of(inner, element)


# An invisible element holds none (the regex converter ends one at its first end tag).
_SHOWN = st.recursive(_LEAVES, _markup, max_leaves=12)
_HIDDEN_ELEMENT = st.builds(
    lambda name, inner: f"<{name}>{inner}</{name}>",
    st.sampled_from(["noscript", "iframe", "template", "svg", "object", "head"]),
    _SHOWN,
)
_FRAGMENTS = st.recursive(st.one_of(_LEAVES, _HIDDEN_ELEMENT), _markup, max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(fragment=_FRAGMENTS, escaped=st.booleans())
def test_well_formed_html_reads_as_htmlparser_reads_it(fragment: str, escaped: bool) -> None:
    if escaped:  # a feed that escaped its HTML once more
        fragment = html.escape(fragment, quote=False)
    assert html_to_text(fragment) == parser_html_to_text(fragment)
