"""Every step that reads feed text costs time linear in its size, whatever the text.

Each test builds an adversarial input of one family at 1x and 8x size and
compares CPU time (best of three): linear work grows about 8x, quadratic work
about 64x, so the bound is 10x. Sizes keep the 8x case well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest

from bot.alerts.render import email_message, slack_message, text_message
from bot.alerts.summarize import summarize
from bot.config.load import load_rules
from bot.config.schema import Settings
from bot.errors import FetchError
from bot.feeds.htmltext import html_to_text
from bot.feeds.identity import item_key
from bot.feeds.parse import read_feed
from bot.model import Item, Summary
from bot.rules.match import RuleSet
from bot.text import token_spans, tokens
from tests.factories import NOW, sample_alert
from tests.linearity import assert_linear
from tests.paths import REPO

RULES = REPO / "config" / "rules.yaml"


def repeat(unit: str, lead: str = "", tail: str = "") -> Callable[[int], str]:
    """Inputs of about ``size`` characters: ``unit`` repeated between ``lead`` and ``tail``."""
    return lambda size: lead + unit * (size // len(unit)) + tail


# ---------------------------------------------------------------- HTML to text


@pytest.mark.parametrize(
    ("make", "size"),
    [
        # Escaped markup is text: nothing reads it as <script> after <script>, none closed.
        pytest.param(repeat("&lt;script&gt;", lead="&lt;br&gt;"), 8_000, id="escaped-script"),
        # Markup of over 1,000 tags is parsed in pieces (htmltext._PIECE_TAGS): the smaller
        # input has more, or the two sizes would time two different routes.
        pytest.param(repeat("<script>"), 16_000, id="unclosed-script"),
        pytest.param(repeat("<p <td <b"), 8_000, id="unclosed-tags"),
        pytest.param(repeat("<!x"), 8_000, id="unclosed-declarations"),
        pytest.param(repeat(" ", lead="<"), 1_000, id="spaces-in-a-tag"),
        pytest.param(repeat("<!--"), 100_000, id="comments-without-end"),
        pytest.param(repeat("<?"), 100_000, id="processing-instructions"),
        pytest.param(repeat("&amp;&#x263A;&eacute;&bogus;"), 50_000, id="entities"),
        # An HTML tree builder walks its stack of open elements: nesting costs depth².
        pytest.param(repeat("<div>"), 50_000, id="nested-blocks"),
        pytest.param(repeat("<ul><li>"), 50_000, id="nested-lists"),
        pytest.param(
            lambda n: "<span>" * (n // 10) + "</i>" * (n // 10), 50_000, id="stray-end-tags"
        ),
        # Where the pieces may be cut: past comments, raw-text elements and quoted '<'.
        pytest.param(repeat("<!-- a --><p>b</p>"), 50_000, id="comments-between-blocks"),
        pytest.param(repeat('<a title="<p>">q</a>'), 50_000, id="tags-in-attributes"),
        pytest.param(
            lambda n: "<b>x</b>" * 1001 + "<script>" + "<script " * (n // 8) + "</script>",
            50_000,
            id="openings-in-a-script",
        ),
    ],
)
def test_html_to_text_is_linear(make: Callable[[int], str], size: int) -> None:
    assert_linear(make, html_to_text, size)


# ---------------------------------------------------------------- text and identity


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(repeat("x"), id="space-free"),
        pytest.param(repeat("Sûreté—Québec’s "), id="accented-words"),
        # Half-width ﾊ + ﾞ compose to バ only when normalized together: offsets
        # into the original need an alignment (difflib's was quadratic here).
        pytest.param(repeat("ﾊﾞa"), id="half-width-kana"),
    ],
)
def test_tokens_spans_and_title_keys_are_linear(make: Callable[[int], str]) -> None:
    assert_linear(make, tokens, 40_000)
    assert_linear(make, token_spans, 1_000)
    assert_linear(make, lambda title: item_key(None, None, title, None), 40_000)


# ---------------------------------------------------------------- matching


@cache
def _shipped_rules() -> RuleSet:
    rules, _ = load_rules(RULES.parent, Settings(), {})
    return RuleSet(rules)


@pytest.mark.parametrize(
    "word",
    [
        pytest.param("veteran", id="veteran-NEAR/4-Iraq"),
        pytest.param("police", id="police-NEAR/4-Canada"),
        pytest.param("officers", id="Canada-NEAR/6-officers"),
    ],
)
def test_near_is_linear_on_one_word_repeated_between_its_operands(word: str) -> None:
    rules = _shipped_rules()

    def match(summary: str) -> object:
        item = Item(feed_id="f", key="k", title="RCMP in Iraq, Irak", summary=summary)
        return rules.match(item)

    assert_linear(repeat(f"{word} ", lead="RCMP Canada ", tail="Iraq"), match, 8_000)


# ---------------------------------------------------------------- summaries and rendering


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(repeat("."), id="a-run-of-dots"),
        pytest.param(repeat("RCMP. "), id="matched-sentences"),
        pytest.param(repeat("A. "), id="short-sentences"),
        pytest.param(repeat("ﾊﾞa", lead="RCMP "), id="half-width-kana"),
    ],
)
def test_summarize_is_linear(make: Callable[[int], str]) -> None:
    def run(text: str) -> object:
        return summarize(Item(feed_id="f", key="k", title="t", summary=text), ["RCMP", "iraq"])

    assert_linear(make, run, 5_000)


def _alert(text: str) -> object:
    """An alert whose every feed-derived string is ``text``, emphasised every few characters."""
    highlights = tuple((i, i + 2) for i in range(0, len(text), 8))
    return sample_alert(
        title=text, source=text, summary=Summary(text, highlights), also_reported_by=(text,)
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(repeat("<>&*_~`"), id="mrkdwn-specials"),
        pytest.param(repeat("x"), id="space-free"),
        pytest.param(repeat("a\x00\u202e "), id="control-characters"),
    ],
)
def test_rendering_is_linear(make: Callable[[int], str]) -> None:
    def run(text: str) -> object:
        alert = _alert(text)
        return (
            slack_message(alert, NOW),
            text_message(alert, NOW),
            email_message(alert, NOW, sender="a@example.org", recipients=["b@example.org"]),
        )

    assert_linear(make, run, 2_000)


# ---------------------------------------------------------------- feed documents


def _read(body: str) -> object:
    try:
        return read_feed(body.encode(), feed_id="f", url="https://example.org/feed").parsed()
    except FetchError as err:
        return err


def _rss(title: str = "t", description: str = "d") -> Callable[[str], str]:
    return lambda middle: (
        '<rss version="2.0"><channel><title>t</title><item><guid>g</guid>'
        f"<title>{title.format(middle)}</title><description>{description.format(middle)}"
        "</description></item></channel></rss>"
    )


@pytest.mark.parametrize(
    ("make", "size"),
    [
        pytest.param(
            lambda size: _rss(title="{}")(
                repeat("&amp;lt;script&amp;gt;", lead="&amp;lt;br&amp;gt;")(size)
            ),
            20_000,
            id="escaped-script-title",
        ),
        pytest.param(
            lambda size: _rss(description="{}")(repeat("&lt;p")(size)),
            20_000,
            id="unclosed-tags-in-a-description",
        ),
        pytest.param(
            lambda size: "<!DOCTYPE rss>" + _rss(description="{}")(repeat("<b>x</b>")(size)),
            8_000,
            id="feedparser-thousands-of-tags",
        ),
        pytest.param(
            lambda size: _rss(description="{}")(repeat("<b>x")(size)).replace("</channel>", ""),
            3_000,
            id="feedparser-not-well-formed",
        ),
        pytest.param(repeat("<?xml ", lead="<rss>"), 20_000, id="unterminated-declarations"),
        pytest.param(
            lambda size: (
                '{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", '
                f'"title": "{repeat("&lt;script&gt;", lead="&lt;br&gt;")(size)}", '
                f'"content_html": "{repeat("<p>")(size)}"}}]}}'
            ),
            20_000,
            id="json-feed",
        ),
    ],
)
def test_reading_a_feed_is_linear(make: Callable[[int], str], size: int) -> None:
    assert_linear(make, _read, size)
