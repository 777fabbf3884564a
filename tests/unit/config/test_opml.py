"""OPML parsing: feeds, categories, ids, and hostile documents refused."""

from __future__ import annotations

import pytest

from bot.config.opml import OpmlError, OpmlFeed, feed_id, parse_opml

OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>subs</title></head><body>
  <outline text="Canada">
    <outline text="CBC World" type="rss" xmlUrl="https://www.cbc.ca/webfeed/rss/rss-world"/>
    <outline title="Radio-Canada Internationale" xmlUrl="https://ici.radio-canada.ca/rss/96"/>
  </outline>
  <outline text="Rudaw" xmlUrl="https://www.rudaw.net/english/rss"/>
  <outline text="no url here"/>
</body></opml>"""


def test_feeds_and_their_categories() -> None:
    assert parse_opml(OPML) == [
        OpmlFeed("CBC World", "https://www.cbc.ca/webfeed/rss/rss-world", ("Canada",)),
        OpmlFeed("Radio-Canada Internationale", "https://ici.radio-canada.ca/rss/96", ("Canada",)),
        OpmlFeed("Rudaw", "https://www.rudaw.net/english/rss", ()),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<opml><body><outline text='&lol2;' xmlUrl='http://x'/></body></opml>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<opml><body><outline text='&e;' xmlUrl='http://x'/></body></opml>",
        b"<opml><body><outline",
        b"<html><body></body></html>",
    ],
    ids=["billion-laughs", "external-entity", "truncated", "not-opml"],
)
def test_hostile_or_broken_documents_are_refused(data: bytes) -> None:
    with pytest.raises(OpmlError):
        parse_opml(data)


def test_ids_are_readable_and_unique() -> None:
    taken = {"cbc-world"}
    assert feed_id("CBC World", taken) == "cbc-world-2"
    assert feed_id("Sûreté du Québec — nouvelles", taken) == "surete-du-quebec-nouvelles"
    assert feed_id("الموصل", taken) == "feed"
    assert feed_id("!!!", taken) == "feed-2"
