"""The shipped rules raise no alert on the real-world feed corpus (tests/paths.py): hundreds
of unrelated items in several languages, the false alerts a user would actually see."""

from __future__ import annotations

import pytest

from bot.config.load import load_rules
from bot.config.schema import Settings
from bot.errors import FetchError
from bot.feeds.parse import parse_feed
from bot.model import Item
from bot.rules.match import RuleSet
from tests.paths import CORPUS, REPO

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no feed corpus at {CORPUS}"),
]


def _items() -> list[Item]:
    items: list[Item] = []
    for path in sorted(p for p in CORPUS.glob("*") if p.suffix != ".tsv"):
        try:
            feed = parse_feed(path.read_bytes(), feed_id=path.name, url="https://corpus.example/")
        except FetchError:
            continue  # not a feed; tests/integration/test_corpus.py says which
        items += feed.items
    return items


def test_the_shipped_rules_raise_no_alert_on_unrelated_real_items() -> None:
    rules, _ = load_rules(REPO / "config", Settings(), {})
    ruleset = RuleSet(rules)
    items = _items()
    assert len(items) >= 300  # enough to mean something
    alerts = [
        (item.feed_id, item.title, [m.rule_id for m in matches])
        for item in items
        if (matches := ruleset.match(item, frozenset()))
    ]
    assert alerts == []


def test_the_rules_do_alert_on_a_corpus_item_rewritten_to_the_topic() -> None:
    """The check above can fail: the same loader and parser find a story on the topic."""
    rules, _ = load_rules(REPO / "config", Settings(), {})
    item = _items()[0]
    story = Item(
        feed_id=item.feed_id,
        key=item.key,
        title="Canada to send up to 20 police officers to Iraq",
        summary=item.summary,
    )
    assert RuleSet(rules).match(story, frozenset())
