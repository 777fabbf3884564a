"""html_to_text: what a feed's HTML leaves as plain text."""

from __future__ import annotations

import random
import re

import pytest

from bot.feeds.htmltext import _collapse, html_to_text


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
