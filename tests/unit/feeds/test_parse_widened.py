"""Elements the fast path skips: it must still read what feedparser reads."""

from __future__ import annotations

import pytest

import bot.feeds.parse as fp
from bot.model import ParsedFeed

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
 xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"
 xmlns:slash="http://purl.org/rss/1.0/modules/slash/" xmlns:wfw="http://wellformedweb.org/CommentAPI/">
<channel>
<image><title>Image title</title><url>https://x.example/logo.png</url><link>https://img.example/</link>
<width>88</width><description>Image text</description></image>
<title>Channel title</title>
<link>https://x.example/</link>
<cloud domain="rpc.example" port="80" path="/RPC2" registerProcedure="p" protocol="xml-rpc"/>
<author>editor@x.example (Editor)</author>
<dc:creator>Channel creator</dc:creator><dc:language>fr</dc:language>
<itunes:author>Pod author</itunes:author><itunes:summary>Pod summary</itunes:summary>
<itunes:subtitle>Pod subtitle</itunes:subtitle><itunes:explicit>no</itunes:explicit>
<itunes:image href="https://x.example/pod.png"/><itunes:keywords>a, b</itunes:keywords>
<itunes:owner><itunes:name>Owner</itunes:name><itunes:email>o@x.example</itunes:email></itunes:owner>
<itunes:category text="News"><itunes:category text="Politics"/></itunes:category>
<feedburner:info uri="x"/><feedburner:browserFriendly>Hello</feedburner:browserFriendly>
<feedburner:emailServiceId>x</feedburner:emailServiceId><feedburner:feedburnerHostname>h</feedburner:feedburnerHostname>
<itunes:block>no</itunes:block><itunes:type>episodic</itunes:type><dc:rights>CC</dc:rights>
<dc:subject>S</dc:subject><media:thumbnail url="https://x.example/c.png"/>
<item>
<title>First</title><link>https://x.example/1</link><guid>https://x.example/1</guid>
<pubDate>Tue, 06 Jan 2026 04:40:00 +0000</pubDate>
<description>&lt;p&gt;Text &lt;b&gt;one&lt;/b&gt;&lt;/p&gt;</description>
<slash:comments>4</slash:comments><wfw:commentRss>https://x.example/1/c</wfw:commentRss>
<feedburner:origLink>https://orig.example/1</feedburner:origLink>
<media:thumbnail url="https://x.example/t.jpg" width="10"/>
<media:content url="https://x.example/v.mp4" type="video/mp4"/>
<itunes:duration>12:00</itunes:duration><itunes:image href="https://x.example/e.png"/>
<itunes:episode>3</itunes:episode><dc:subject>Topic</dc:subject><dc:rights>CC</dc:rights>
<dc:language>de</dc:language><dc:format>text/html</dc:format>
<itunes:explicit>yes</itunes:explicit><itunes:season>1</itunes:season><itunes:block>no</itunes:block>
<itunes:episodeType>full</itunes:episodeType><itunes:keywords>k</itunes:keywords>
<wfw:comment>https://x.example/c</wfw:comment>
<feedburner:origEnclosureLink>https://x.example/v.mp4</feedburner:origEnclosureLink>
</item>
<item>
<dc:subject>Only</dc:subject><title>Second</title><guid isPermaLink="false">n-2</guid>
<media:thumbnail url="https://x.example/t2.jpg"/><dc:date>2026-01-05T10:00:00Z</dc:date>
<description>Plain</description>
</item>
</channel>
</rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0"
 xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0" xmlns:gd="http://schemas.google.com/g/2005"
 xmlns:openSearch="http://a9.com/-/spec/opensearchrss/1.0/" xmlns:media="http://search.yahoo.com/mrss/">
<title>Blog</title><link href="https://blog.example/"/><id>urn:feed</id>
<openSearch:totalResults>2</openSearch:totalResults><openSearch:startIndex>1</openSearch:startIndex>
<feedburner:info uri="blog"/><openSearch:itemsPerPage>2</openSearch:itemsPerPage>
<feedburner:browserFriendly>Hi</feedburner:browserFriendly>
<entry>
<id>urn:1</id><title>With email</title><link href="https://blog.example/1"/>
<updated>2026-01-06T04:47:00.123+01:00</updated>
<author><name>Jane</name><uri>https://jane.example/</uri><email>jane@blog.example</email>
<gd:image rel="http://schemas.google.com/g/2005#thumbnail" src="x.png"/></author>
<thr:total>5</thr:total><media:thumbnail url="https://blog.example/t.jpg"/>
<feedburner:origLink>https://orig.example/1</feedburner:origLink>
<summary type="html">&lt;p&gt;Hi&lt;/p&gt;</summary>
</entry>
<entry>
<link href="/2"/><id>urn:2</id><title>Email only</title>
<author><email>anon@blog.example</email></author>
</entry>
<entry>
<link href="/3"/><id>urn:3</id><title>Uri only</title>
<author><uri>https://x.example/</uri></author>
</entry>
</feed>"""


def _data(body: bytes) -> bytes:
    text, _ = fp._decode(body, None)
    return fp._XML_DECLARATION.sub("", text.lstrip(), count=1).encode("utf-8")


def _both(body: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[ParsedFeed, ParsedFeed]:
    fast = fp.parse_feed(body, feed_id="f", url="https://example.org/feed")
    with monkeypatch.context() as patch:
        patch.setattr(fp, "_read_plain_xml", lambda data, warning: None)
        slow = fp.parse_feed(body, feed_id="f", url="https://example.org/feed")
    return fast, slow


@pytest.mark.parametrize("body", [RSS, ATOM], ids=["rss", "atom"])
def test_skipped_elements_take_the_fast_path_and_read_the_same(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fp._read_plain_xml(_data(body), None) is not None
    fast, slow = _both(body, monkeypatch)
    assert fast == slow


def test_atom_author_is_feedparsers() -> None:
    items = fp.parse_feed(ATOM, feed_id="f", url="https://example.org/feed").items
    assert [i.author for i in items] == ["Jane (jane@blog.example)", "anon@blog.example", None]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<dc:format>text/html</dc:format>", b"<media:title>Not the title</media:title>"),
        (b"<dc:format>text/html</dc:format>", b"<itunes:summary>Other text</itunes:summary>"),
        (b"<dc:format>text/html</dc:format>", b"<image>https://x.example/i.png</image>"),
        (b'type="video/mp4"/>', b'type="video/mp4"><media:title>T</media:title></media:content>'),
        (b'<media:thumbnail url="https://x.example/t.jpg" width="10"/>', b'<x:y xmlns:x="u"/>'),
        (b"<width>88</width>", b"<width><b>88</b></width>"),
        (b"<slash:comments>4", b'<slash:comments base="https://b.example/">4'),
    ],
)
def test_elements_feedparser_reads_otherwise_go_to_feedparser(
    old: bytes, new: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert old in RSS
    body = RSS.replace(old, new)
    assert fp._read_plain_xml(_data(body), None) is None
