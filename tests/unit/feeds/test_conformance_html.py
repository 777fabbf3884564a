"""Feed documents whose text looks like markup (tests/fixtures/conformance/html-*), through
parse_feed: plain-text values are never stripped as HTML, escaped markup in HTML stays text,
and what a reader sees (code, MathML, alt text) is kept."""

from __future__ import annotations

import pytest

from bot.feeds.parse import parse_feed
from tests.paths import REPO

CONFORMANCE = REPO / "tests" / "fixtures" / "conformance"

# Per document: the feed's title, then (title, summary, content) per item.
EXPECTED: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "html-atom-text.xml": (
        "Types & <Generics>",
        [
            (  # type="text": the brackets are characters
                "Why List<T> beats Object[]",
                "Wrap the value in <p>…</p> and pass <user type> as the argument.",
                "",
            ),
            (  # Atom's default type is text; the content is HTML with code and MathML
                "Plain by default: a <b> is two letters and brackets",
                "Declare it:\nMap<K, V> index = new HashMap<>();\n</div>\nEuler: e≈2.718 roughly.",
                "",
            ),
        ],
    ),
    "html-rss-markup-as-text.xml": (
        "Markup as text",
        [
            (  # feedparser reports a title without markup as text/plain
                "Generics: List<T> explained",
                "Every file opens with <?php and a template ends with </html>.\n"
                "This paragraph must survive.",
                "",
            ),
            (
                "Doctypes",
                "Start the page with <!DOCTYPE html and then <br> nothing else.\nStill here.",
                "",
            ),
            ("Comic of the day", "A cat asleep on a keyboard", ""),
        ],
    ),
    "html-json-text.json": (
        "Tags & <Types>",  # JSON Feed's title, summary and content_text are plain text
        [
            (
                "Use <b> for bold & <i> for italics",
                "The </b> tag ends it.",
                "Open with <b>, close with </b>.\nA <script> in text is text too.",
            ),
            ("Escaped &amp; literal", "", "Markup here is markup: <T> is text."),
        ],
    ),
}


def test_every_html_fixture_has_its_expectations() -> None:
    assert sorted(p.name for p in CONFORMANCE.glob("html-*")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_markup_like_text_survives_parsing(name: str) -> None:
    feed = parse_feed(
        (CONFORMANCE / name).read_bytes(), feed_id="f", url="https://code.example/feed"
    )
    title, items = EXPECTED[name]
    assert feed.warning is None
    assert feed.title == title
    assert [(i.title, i.summary, i.content) for i in feed.items] == items
