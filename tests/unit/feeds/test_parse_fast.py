"""The ElementTree fast path reads what it accepts exactly as the feedparser path does."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.feeds.parse as fp
from bot.errors import FetchError
from tests.paths import CORPUS, FIXTURES

FILES = sorted(FIXTURES.glob("*"))
CORPUS_FILES = sorted(p for p in CORPUS.glob("*") if p.suffix != ".tsv") if CORPUS.is_dir() else []


def _both(body: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object] | None:
    if fp.looks_like_json(body) or not body.strip():
        return None
    try:
        text, warning = fp._decode(body, None)
        fp._refuse_html(text)
    except FetchError:
        return None
    data = fp._XML_DECLARATION.sub("", text.lstrip(), count=1).encode("utf-8")
    if fp._read_plain_xml(data, warning) is None:
        return None
    fast = fp.parse_feed(body, feed_id="f", url="https://example.org/feed")
    with monkeypatch.context() as patch:
        patch.setattr(fp, "_read_plain_xml", lambda data, warning: None)
        slow = fp.parse_feed(body, feed_id="f", url="https://example.org/feed")
    return fast, slow


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fast_path_equals_feedparser_on_fixtures(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = _both(path.read_bytes(), monkeypatch)
    if both is not None:
        assert both[0] == both[1]


@pytest.mark.skipif(not CORPUS_FILES, reason="no feed corpus")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_fast_path_equals_feedparser_on_corpus(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    both = _both(path.read_bytes(), monkeypatch)
    if both is not None:
        assert both[0] == both[1]


def test_the_plain_fixtures_take_the_fast_path() -> None:
    text, warning = fp._decode((FIXTURES / "rss20.rss").read_bytes(), None)
    data = fp._XML_DECLARATION.sub("", text.lstrip(), count=1).encode("utf-8")
    assert fp._read_plain_xml(data, warning) is not None


PLAIN_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title type="html">Artificial &lt;em&gt;truth&lt;/em&gt;</title>
<link href="https://blog.example.net/" rel="alternate"/>
<link href="https://blog.example.net/feed" rel="self"/>
<id>urn:uuid:feed-1</id>
<updated>2024-03-05T12:00:00Z</updated>
<entry>
<title type="html">&lt;b&gt;Bold&lt;/b&gt; &amp;amp; &#8220;quoted&#8221;</title>
<link href="first-post.html" rel="alternate"/>
<id>tag:blog.example.net,2024:1</id>
<published>2024-03-01T08:00:00+02:00</published>
<updated>2024-03-02T08:00:00Z</updated>
<author><name>Jane Doe</name></author>
<summary type="html">&lt;p&gt;Summary &lt;b&gt;here&lt;/b&gt;&lt;/p&gt;</summary>
<content type="html">&lt;p&gt;Content &lt;a href="x"&gt;link&lt;/a&gt;.&lt;/p&gt;</content>
</entry>
<entry>
<title>Only &lt;updated&gt;</title>
<link href="https://other.example.com/abs"/>
<id>tag:blog.example.net,2024:2</id>
<updated>2024-03-04T08:00:00Z</updated>
<content type="text">Text &lt;content&gt; kept</content>
</entry>
<entry>
<title>No date, no id</title>
<link href="/third" rel="alternate"/>
<summary>  Caf\xc3\xa9 \xe2\x80\x94 text  </summary>
</entry>
</feed>"""


def test_plain_atom_takes_the_fast_path_and_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    both = _both(PLAIN_ATOM, monkeypatch)
    assert both is not None
    assert both[0] == both[1]
    assert len(both[0].items) == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "name",
    [
        "billion_laughs.xml",
        "undefined_entity.rss",
        "rdf.rdf",
        "atom.xml",
        "rss091_latin1.rss",
        "truncated.rss",
    ],
)
def test_declarations_and_other_formats_go_to_feedparser(name: str) -> None:
    text, warning = fp._decode((FIXTURES / name).read_bytes(), None)
    data = fp._XML_DECLARATION.sub("", text.lstrip(), count=1).encode("utf-8")
    assert fp._read_plain_xml(data, warning) is None
