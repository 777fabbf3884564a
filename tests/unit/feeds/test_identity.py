"""Item and story identity: which items are one, which alerts tell one story."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest

from bot.feeds import identity
from bot.feeds.identity import canonical_link, item_key, story_keys


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.COM/Path?A=1", "https://example.com/Path?A=1"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a#section", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        (
            "https://example.com/a?utm_source=rss&id=7&UTM_Medium=x&fbclid=1&gclid=2",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?utm_source=rss", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?b=2&a=1"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("not a url", "not a url"),
    ],
)
def test_canonical_link(url: str, canonical: str) -> None:
    assert canonical_link(url) == canonical


def test_item_key_prefers_guid_then_link_then_hash() -> None:
    when = datetime(2024, 3, 5, tzinfo=UTC)
    assert item_key(" g-1 ", "https://x.org/a", "T", when) == "guid:g-1"
    assert item_key(None, "https://X.org/a#f", "T", when) == "link:https://x.org/a"
    assert item_key("", "  ", "Title", when).startswith("hash:")


def test_hash_key_uses_normalized_title_and_date() -> None:
    when = datetime(2024, 3, 5, tzinfo=UTC)
    assert item_key(None, None, "Sûreté du Québec!", when) == item_key(
        None, None, "surete  DU quebec", when
    )
    assert item_key(None, None, "Same", when) != item_key(None, None, "Same", None)
    assert item_key(None, None, "Same", None) != item_key(None, None, "Other", None)


def test_story_keys() -> None:
    link, title = story_keys("https://x.org/a?utm_campaign=z", "RCMP in Iraq")
    assert link == "link:https://x.org/a"
    assert title.startswith("title:") and len(title) == len("title:") + 64
    assert story_keys(None, "RCMP in Iraq") == (title,)
    assert story_keys("https://X.org/a#top", "r.c.m.p. IN iraq!") != (link, title)
    assert story_keys(None, "rcmp  IN iraq!")[0] == title
    assert story_keys("", "   ") == ()


def test_canonical_link_shortcut_equals_urlsplit(monkeypatch: pytest.MonkeyPatch) -> None:
    schemes = ["http://", "https://", "HTTP://", "ftp://", ""]
    hosts = ["x.org", "X.org", "x.org.", "x.org:443", "x.org:8080", "u@x.org", "[::1]", "a_b.org"]
    paths = ["", "/", "/A/b", "/a;p", "/a b", "/a\tb", "//c"]
    queries = ["", "?", "?id=7", "?utm_source=a&b=1", "?fbclid=1", "?a?b=", "?%20=x"]
    fragments = ["", "#", "#top", "#a b", "#?utm_x=1"]
    urls = ["".join(p) for p in itertools.product(schemes, hosts, paths, queries, fragments)]
    fast = [canonical_link(url) for url in urls]
    monkeypatch.setattr(identity, "_PLAIN", re.compile("(?!)"))
    assert fast == [canonical_link(url) for url in urls]
