"""html_to_text: what a feed's HTML leaves as plain text."""

from __future__ import annotations

import html
import random
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

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


# ---------------------------------------------------------------- text that looks like markup
#
# Each case lost or corrupted text with the regex converter, whose second pass read escaped
# markup (``&lt;p&gt;``) as markup: the text is decoded once, and what was escaped stays text.


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        pytest.param(
            "<p>Every file opens with &lt;?php and a template ends with &lt;/html&gt;.</p>"
            "<p>This paragraph must survive.</p>",
            "Every file opens with <?php and a template ends with </html>.\n"
            "This paragraph must survive.",
            id="php-open-tag",
        ),
        pytest.param(
            "<p>Start the page with &lt;!DOCTYPE html and then &lt;br&gt; nothing else.</p>"
            "<p>Still here.</p>",
            "Start the page with <!DOCTYPE html and then <br> nothing else.\nStill here.",
            id="doctype",
        ),
        pytest.param(
            "<p>Prefer List&lt;T&gt; to Object[]; close with &lt;/p&gt;.</p>",
            "Prefer List<T> to Object[]; close with </p>.",
            id="generics",
        ),
        pytest.param(
            "Enter &lt;user type&gt; in the field, then &lt;br&gt; twice.",
            "Enter <user type> in the field, then <br> twice.",
            id="placeholder",
        ),
        pytest.param(
            "<pre><code>&lt;ul&gt;&lt;li&gt;{{ item }}&lt;/li&gt;&lt;/ul&gt;\n"
            "Map&lt;K, V&gt; index;</code></pre>",
            "<ul><li>{{ item }}</li></ul>\nMap<K, V> index;",
            id="pre-code",
        ),
        pytest.param(
            "<p>Euler: <math><mi>e</mi><mo>≈</mo><mn>2.718</mn></math> roughly.</p>",
            "Euler: e≈2.718 roughly.",
            id="mathml",
        ),
        pytest.param(
            '<a href="/c"><img src="c.png" alt="A cat asleep on a keyboard"></a>',
            "A cat asleep on a keyboard",
            id="alt-text-only",
        ),
        pytest.param(
            "&lt;p&gt;escaped twice&lt;/p&gt;", "<p>escaped twice</p>", id="escaped-twice"
        ),
    ],
)
def test_escaped_markup_stays_text(fragment: str, text: str) -> None:
    assert html_to_text(fragment) == text


def test_alt_text_only_when_there_is_no_other_text() -> None:
    assert html_to_text('<p>A caption.</p><img src="c.png" alt="a cat">') == "A caption."


def test_markup_a_reader_never_sees_is_dropped() -> None:
    fragment = (
        "<title>t</title><svg><text>s</text></svg><iframe>i</iframe><noscript>n</noscript>"
        "<object><p>o</p></object><template>x</template><?php echo 1 ?><!DOCTYPE html>"
        "<![CDATA[c]]>shown<script>if (a < b) x();"
    )
    assert html_to_text(fragment) == "shown"


# Any text, markup-like characters often. Lone surrogates are not text (UTF-8 cannot hold
# them): only JSON's \ud800 escapes make them, and the parser reads them as U+FFFD.
_ANY_TEXT = st.text(
    st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.sampled_from("<>&;/!?#=\"'-[] \n\r\t\x00abpT"),
    )
)


def test_a_lone_surrogate_reads_as_replacement_characters() -> None:
    assert html_to_text("x\ud800<b>y</b>") == "x\ufffd\ufffd\ufffdy"


@settings(max_examples=500, deadline=None)
@given(text=_ANY_TEXT)
@example(text="Use <b> for bold, </b> to end; <?php echo 1 ?> and List<T>.")
def test_escaped_text_reads_as_itself(text: str) -> None:
    assert html_to_text(html.escape(text)) == _collapse(text)
    assert html_to_text(f"<p>{html.escape(text)}</p><br>") == _collapse(text)


@settings(max_examples=500, deadline=None)
@given(fragment=_ANY_TEXT)
def test_any_fragment_gives_collapsed_text(fragment: str) -> None:
    text = html_to_text(fragment)
    assert text == _collapse(text)


MANY_TAGS = "<b>x</b>" * 1001  # past htmltext._PIECE_TAGS: the fragment is parsed in pieces
LONG = "y " * 3000  # longer than a piece, so a cut would fall inside what follows


@pytest.mark.parametrize(
    "hidden",
    [
        f"<script>var a = 1; {LONG}<p>SECRET code</p></script>",
        f"<style>{LONG}<p>SECRET</p></style>",
        f"<!-- {LONG}<p>SECRET</p> -->",
        f'<a title="{LONG}<p>SECRET">link</a>',
    ],
    ids=["script", "style", "comment", "attribute"],
)
def test_a_fragment_parsed_in_pieces_is_never_cut_inside_hidden_markup(hidden: str) -> None:
    text = html_to_text(MANY_TAGS + hidden + "<p>after</p>")
    assert "SECRET" not in text and "var a" not in text
    assert text.endswith("after")
