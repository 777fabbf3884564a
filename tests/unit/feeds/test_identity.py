"""Item and story identity: which items are one, which alerts tell one story."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.feeds import identity
from bot.feeds.identity import canonical_link, item_key


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


def test_an_item_without_guid_link_or_title_is_keyed_by_its_text() -> None:
    when = datetime(2024, 3, 5, tzinfo=UTC)
    one = item_key(None, None, "", None, "RCMP officers head to Mosul")
    assert one.startswith("hash:")
    assert one == item_key(" ", "", "  ", None, "rcmp OFFICERS  head to Mosul!")
    assert one != item_key(None, None, "", None, "Hockey night: the Leafs won")
    assert one != item_key(None, None, "", when, "RCMP officers head to Mosul")
    # A title keys it as before (keys already stored stay valid); no words at all: as before.
    assert item_key(None, None, "T", when, "any text") == item_key(None, None, "T", when)
    assert item_key(None, None, "", None, "...") == item_key(None, None, "", None)
    # Text that equals a title still keys apart from it.
    assert item_key(None, None, "", None, "Police") != item_key(None, None, "Police", None)


@pytest.mark.parametrize(
    ("guid", "link", "title", "needed"),
    [
        (None, None, "", True),
        ("", " ", " -- ", True),
        ("g", None, "", False),
        (None, "https://x.org/a", "", False),
        (None, None, "A title", False),
    ],
)
def test_keyed_by_text(guid: str | None, link: str | None, title: str, needed: bool) -> None:
    assert identity.keyed_by_text(guid, link, title) is needed


_WORDS = st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), min_size=1, max_size=12)
_STAMPS = st.none() | st.datetimes(timezones=st.just(UTC))


@given(_WORDS, _WORDS, _STAMPS)
def test_text_keys_are_stable_and_tell_distinct_texts_apart(
    one: list[str], other: list[str], when: datetime | None
) -> None:
    text = " ".join(one)
    assert item_key(None, None, "", when, text) == item_key(None, None, "", when, text.upper())
    same = one == other
    assert (
        item_key(None, None, "", when, " ".join(other)) == item_key(None, None, "", when, text)
    ) is same


LEAD = "The RCMP will lead a police mission in Iraq to train local forces, Ottawa said."


@pytest.mark.parametrize(
    ("seen", "now", "changed"),
    [
        ("RCMP officers head to Mosul", "RCMP officers head to Mosul", False),
        ("RCMP offcers head to Mosul", "RCMP officers head to Mosul", False),  # a typo fixed
        ("RCMP officers head to Mosul", "UPDATED: RCMP officers head to Mosul", False),
        ("RCMP officers head to Mosul", "Mosul mission: RCMP officers leave today", False),
        ("RCMP officers head to Mosul", "Leafs win in overtime", True),
        ("RCMP budget tabled", "RCMP officers head to Mosul", True),  # 1 word of 7
        ("", "Leafs win in overtime", True),
    ],
)
def test_retitled_is_a_title_sharing_almost_no_words(seen: str, now: str, changed: bool) -> None:
    assert identity.retitled("guid:g", seen, now) is changed
    assert identity.retitled("link:https://x.org/a", seen, now) is False  # guids only


@pytest.mark.parametrize(
    ("seen", "now", "changed"),
    [
        (LEAD, LEAD, False),
        (LEAD, LEAD.replace("Iraq", "Irak"), False),
        (LEAD, "UPDATED: " + LEAD + " More officers may follow later this month.", False),
        (LEAD, LEAD[:40] + " Hockey night: the Leafs won in overtime, again.", False),
        (LEAD, "Hockey night: the Leafs won in overtime against Boston on Saturday.", True),
        (LEAD, "", True),
        ("", "", False),  # no text on either side: nothing but the title says it changed
    ],
)
def test_rewritten_is_a_text_sharing_almost_no_words(seen: str, now: str, changed: bool) -> None:
    fingerprint = identity.fingerprint
    assert identity.rewritten(fingerprint(seen), fingerprint(now)) is changed
    assert identity.rewritten(None, fingerprint(now)) is False  # unknown: kept as seen


def test_a_fingerprint_is_short_whatever_the_text() -> None:
    words = " ".join(f"word{n}" for n in range(10_000))
    assert len(identity.fingerprint(words)) == identity.SKETCH_WORDS * 8
    assert identity.fingerprint("") == ""


def test_a_reused_key_is_the_key_and_the_new_story() -> None:
    text = identity.fingerprint(LEAD)
    key = identity.reused_key("guid:g1", "RCMP officers head to Mosul", text)
    assert key.startswith("guid:g1#")
    assert key == identity.reused_key("guid:g1", "rcmp officers HEAD to Mosul!", text)
    assert key != identity.reused_key("guid:g1", "Leafs win", text)
    assert key != identity.reused_key("guid:g2", "RCMP officers head to Mosul", text)


@given(_WORDS, _WORDS)
def test_a_text_with_words_added_or_with_other_words_only(
    words: list[str], more: list[str]
) -> None:
    one = " ".join(words)
    assert not identity.rewritten(identity.fingerprint(one), identity.fingerprint(one))
    # Appending at most as many distinct words as it has keeps half its words in common.
    added = [f"x{w}" for w in more[: len(set(words))]]
    longer = identity.fingerprint(one + " " + " ".join(added))
    assert not identity.rewritten(identity.fingerprint(one), longer)
    other = identity.fingerprint(" ".join(f"0{w}" for w in more))  # no word of one
    assert identity.rewritten(identity.fingerprint(one), other)
