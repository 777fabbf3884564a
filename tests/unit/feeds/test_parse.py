"""parse_feed over small fixtures, each reproducing a case met in real feeds."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import FetchError
from bot.feeds.identity import text_fingerprint
from bot.feeds.parse import parse_feed, read_feed
from bot.model import ParsedFeed
from tests.paths import FIXTURES

URL = "https://feeds.example.com/dir/feed.xml"


def parse(name: str, content_type: str | None = None) -> ParsedFeed:
    body = (FIXTURES / name).read_bytes()
    return parse_feed(body, feed_id="f", url=URL, content_type=content_type)


def refused(body: bytes) -> FetchError:
    with pytest.raises(FetchError) as caught:
        parse_feed(body, feed_id="f", url=URL)
    return caught.value


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def test_rss20_text_links_dates_and_ttl() -> None:
    feed = parse("rss20.rss")
    assert (feed.title, feed.link, feed.ttl_seconds, feed.warning) == (
        "RCMP & Partners News",
        "https://news.example.org/",
        1800,
        None,
    )
    first, second = feed.items
    assert first.key == "guid:rcmp-2024-0001"
    assert first.title == "RCMP officers deploy to Iraq"
    assert first.link == (
        "https://news.example.org/en/news/2024/rcmp-iraq?utm_source=rss&utm_medium=feed&id=7#top"
    )
    assert first.summary == "Canadian police will train Iraqi officers.\nSecond paragraph & more."
    assert first.content == "Full story: the mission begins.\nOne\nTwo"
    assert first.published == at(2024, 3, 5, 19, 30)
    assert first.author == "Media Relations"
    assert second.title == "Sûreté du Québec statement"
    assert second.summary == "Plain text, with 1 < 2."
    assert all(f.feed_id == "f" for f in feed.items)


def test_rss091_latin1() -> None:
    feed = parse("rss091_latin1.rss")
    (item,) = feed.items
    assert item.title == "Configuração do serviço"
    assert item.summary == "Publicado em janeiro: ação rápida."
    assert item.key == "link:http://www.example.com.br/dicas/20240101.php"
    assert item.published is None


def test_rdf() -> None:
    feed = parse("rdf.rdf")
    assert feed.title == "heise online News"
    first, second = feed.items
    assert first.title == "Überwachung: Polizei in Österreich"
    assert first.published == at(2024, 3, 5, 9)
    assert second.published is None


def test_atom_xml_base_and_text_types() -> None:
    feed = parse("atom.xml")
    assert (feed.title, feed.link) == ("Artificial truth", "https://blog.example.net/")
    first, second = feed.items
    assert first.key == "guid:tag:blog.example.net,2024:1"
    assert first.title == "Bold & “quoted”"
    assert first.link == "https://blog.example.net/posts/first-post.html"
    assert first.published == at(2024, 3, 1, 6)
    assert (first.summary, first.content) == ("Summary here", "Content link.\nSecond.")
    assert first.author == "Jane Doe"
    assert second.published == at(2024, 3, 4, 8)
    assert second.summary == "Text <content> kept"  # type="text": angle brackets are text


def test_atom_author_is_name_and_email_as_feedparser_gives_it() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title>
<entry><id>urn:1</id><title>Both</title>
<author><name>Jane</name><uri>https://jane.example/</uri><email>jane@blog.example</email></author>
</entry>
<entry><id>urn:2</id><title>Email only</title>
<author><email>anon@blog.example</email></author></entry>
<entry><id>urn:3</id><title>Uri only</title><author><uri>https://x.example/</uri></author></entry>
</feed>"""
    items = parse_feed(body, feed_id="f", url=URL).items
    assert [i.author for i in items] == ["Jane (jane@blog.example)", "anon@blog.example", None]


def test_json_feed_1_0() -> None:
    feed = parse("jsonfeed10.json", "application/feed+json")
    assert (feed.title, feed.link) == ("Daring “Example”", "https://df.example.com/")
    one, two, three = feed.items
    assert (one.title, one.content, one.author) == ("One & only", "Hello world", "John")
    assert one.published == at(2024, 3, 5, 19, 30)
    assert two.key == "guid:12345"
    assert two.link == "https://df.example.com/relative/two"
    assert two.content == "Plain <not a tag> text\nline two"
    assert two.published == at(2024, 3, 6, 10)
    assert three.published is None and three.link is None


def test_json_feed_1_1() -> None:
    first, second = parse("jsonfeed11.json").items
    assert first.content == "Body with raw tabs"
    assert first.author == "Ann"
    assert first.published == datetime(2024, 3, 5, 14, 30, 0, 123000, tzinfo=UTC)
    assert second.published == at(2024, 3, 5, 14, 30)


def test_truncated_json_feed_recovers_complete_items() -> None:
    feed = parse("jsonfeed_truncated.json")
    assert [i.title for i in feed.items] == ["First complete", "Second complete"]
    assert feed.warning and "2 items recovered" in feed.warning


def test_rss_in_json() -> None:
    feed = parse("rss_in_json.json")
    assert feed.title == "Scripting News"
    assert [i.summary for i in feed.items] == ["Good morning!", "Text"]


def test_missing_guids_fall_back_to_link_then_hash() -> None:
    with_link, no_link, undated = parse("missing_guids.rss").items
    assert with_link.key == "link:https://noguid.example/a?b=1"
    assert no_link.key.startswith("hash:") and undated.key.startswith("hash:")
    assert no_link.key != undated.key
    assert undated.published is None


def test_duplicate_guids() -> None:
    items = parse("duplicate_guids.rss").items
    assert [i.title for i in items] == ["First", "Second", "Third", "Note A", "Note A"]
    assert [i.key for i in items[:2]] == [
        "link:https://dup.example/1",
        "link:https://dup.example/2",
    ]
    assert len({i.key for i in items}) == 5


@pytest.mark.parametrize(
    "name", ["rss20.rss", "atom.xml", "jsonfeed11.json", "duplicate_guids.rss"]
)
def test_drafts_are_keyed_before_their_text_is_converted(name: str) -> None:
    """A poll keys every entry but converts only the ones it has not seen (read_feed)."""
    body = (FIXTURES / name).read_bytes()
    drafts = read_feed(body, feed_id="f", url=URL).entries
    items = parse(name).items
    assert [(d.key, d.title, d.link, d.published) for d in drafts] == [
        (i.key, i.title, i.link, i.published) for i in items
    ]
    assert [d.item() for d in drafts] == list(items)
    if name == "rss20.rss":  # its first summary is HTML: still so until item() converts it
        assert "<" in drafts[0].entry.summary and "<" not in items[0].summary


def test_keys_are_stable_across_parses() -> None:
    assert [i.key for i in parse("duplicate_guids.rss").items] == [
        i.key for i in parse("duplicate_guids.rss").items
    ]


def test_odd_dates() -> None:
    dates = {i.title: i.published for i in parse("odd_dates.rss").items}
    expected = at(2024, 3, 5, 14, 30)
    assert dates["Unix"] == expected
    assert dates["Slashes"] == expected
    assert dates["EST"] == expected
    assert dates["No weekday, single digit"] == expected
    assert dates["Garbage"] is None
    assert dates["Undated"] is None


def test_non_url_guid_is_not_a_link() -> None:
    item = parse("odd_dates.rss").items[0]
    assert (item.key, item.link) == ("guid:u1", None)


@pytest.mark.parametrize(
    ("name", "title", "warned"),
    [
        ("declared_1252_is_utf8.rss", "Costs 5 € — up 3 %", True),
        ("declared_utf8_is_latin1.rss", "Anaïs und Jürgen", True),
        ("no_prolog_latin1.rss", "Santé mentale à l'école", True),
        ("bom_blank_lines.rss", "Café", False),
        ("leading_blank_lines.rss", "Startup raises", False),
    ],
)
def test_wrong_or_missing_encodings(name: str, title: str, warned: bool) -> None:
    feed = parse(name)
    assert feed.items[0].title == title
    assert bool(feed.warning) == warned


def test_http_charset_is_used_when_the_document_declares_none() -> None:
    body = "<rss version='2.0'><channel><item><title>Привет</title></item></channel></rss>"
    feed = parse_feed(
        body.encode("koi8-r"), feed_id="f", url=URL, content_type="text/xml; charset=koi8-r"
    )
    assert feed.items[0].title == "Привет"


def test_truncated_document_is_recovered_with_a_warning() -> None:
    feed = parse("truncated.rss")
    assert [i.title for i in feed.items][:2] == ["First complete", "Second complete"]
    assert feed.warning


def test_undefined_html_entity_is_recovered() -> None:
    feed = parse("undefined_entity.rss")
    assert feed.items[0].title == "Ranking March"
    assert feed.items[0].summary == "Text here © 2024"


def test_billion_laughs_is_not_expanded() -> None:
    started = time.process_time()
    try:
        feed = parse("billion_laughs.xml")
    except FetchError as error:
        assert error.reason == "malformed"
    else:
        assert all(len(i.title) + len(i.summary) < 100 for i in feed.items)
    assert time.process_time() - started < 1


@pytest.mark.parametrize("kind", ["SYSTEM", 'PUBLIC "-//x//y"'])
def test_external_entities_are_never_resolved(tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    uri = secret.as_uri()
    body = f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe {kind} "{uri}"> <!ENTITY % p {kind} "{uri}"> %p;]>
<rss version="2.0"><channel><title>x&xxe;</title>
<item><title>a &xxe; b</title><guid>1</guid></item></channel></rss>"""
    try:
        feed = parse_feed(body.encode(), feed_id="f", url=URL)
    except FetchError as error:
        assert error.reason == "malformed"
        return
    seen = [feed.title or ""] + [i.title + i.summary for i in feed.items]
    assert not any("TOP-SECRET" in text for text in seen)


def test_a_body_naming_a_local_file_is_not_opened() -> None:
    """feedparser opens str/bytes that name a file; parse_feed must never hand it those."""
    assert refused(str(FIXTURES / "rss20.rss").encode()).reason == "not_a_feed"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("html_page.html", "not_a_feed"),
        ("not_xml.txt", "not_a_feed"),
        ("other_xml.xml", "not_a_feed"),
        ("garbage.bin", "malformed"),
    ],
)
def test_refusals(name: str, reason: str) -> None:
    assert refused((FIXTURES / name).read_bytes()).reason == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "malformed"),
        (b"   \n", "malformed"),
        (b'{"hello": "world"}', "not_a_feed"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', "malformed"),
        # Nesting deeper than Python's stack: json raises RecursionError, not ValueError.
        (b'{"version": "https://jsonfeed.org/version/1", "items": ' + b"[" * 100_000, "malformed"),
    ],
)
def test_empty_and_foreign_json(body: bytes, reason: str) -> None:
    assert refused(body).reason == reason


def test_truncated_json_feed_with_an_invalid_title_escape_keeps_its_items() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1", "title": "bad \\q",'
        b' "items": [{"id": "1", "title": "kept"}, {'
    )
    feed = parse_feed(body, feed_id="f", url=URL)
    assert feed.title is None
    assert [i.title for i in feed.items] == ["kept"]


def test_items_carry_no_html() -> None:
    for path in FIXTURES.iterdir():
        try:
            feed = parse_feed(path.read_bytes(), feed_id="f", url=URL)
        except FetchError:
            continue
        for item in feed.items:
            for text in (item.title, item.summary, item.content):
                assert "<p>" not in text and "<b>" not in text and "&amp;" not in text


def _huge_rss(title: str, description: str) -> bytes:
    return (
        '<rss version="2.0"><channel><title>t</title><item><guid>g</guid>'
        f"<title>{title}</title><description>{description}</description>"
        "</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize("text_limit", [None, 5_000])
def test_each_field_is_cut_to_its_limit_between_words(text_limit: int | None) -> None:
    word = "police&lt;b&gt;officers&lt;/b&gt; "  # escaped markup, as feeds send it
    body = _huge_rss(word * 30_000, word * 30_000)  # 1 MB each
    limit = {} if text_limit is None else {"text_limit": text_limit}
    (item,) = parse_feed(body, feed_id="f", url=URL, **limit).items
    expected = 100_000 if text_limit is None else text_limit  # limits.text's default
    assert expected - 20 <= len(item.summary) <= expected
    assert 2_048 - 20 <= len(item.title) <= 2_048
    assert item.summary.endswith("policeofficers") and item.title.endswith("policeofficers")


def test_a_json_feed_is_cut_as_well() -> None:
    huge = "word " * 200_000
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "1", "title": huge, "summary": huge, "content_text": huge}],
        }
    ).encode()
    (item,) = read_feed(body, feed_id="f", url=URL, text_limit=1_000).entries
    converted = item.item()
    assert len(item.title) <= 2_048
    assert len(converted.summary) <= 1_000 and converted.summary.endswith("word")
    assert converted.content == ""  # the same text as the summary once both are cut


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Friday, January 29, 2021 04:42 PM", datetime(2021, 1, 29, 16, 42, tzinfo=UTC)),
        ("Fri, 29 Jan 2021 12:05 AM", datetime(2021, 1, 29, 0, 5, tzinfo=UTC)),
        ("Fri, 29 Jan 2021 12:05 PM", datetime(2021, 1, 29, 12, 5, tzinfo=UTC)),
        ("Fri, 29 Jan 2021 16:42:00 +0000", datetime(2021, 1, 29, 16, 42, tzinfo=UTC)),
        ("Fri, 29 Jan 2021 04:42 PM +0200", datetime(2021, 1, 29, 14, 42, tzinfo=UTC)),
        ("Fri, 29 Jan 2021 04:42:00 PM EST", datetime(2021, 1, 29, 21, 42, tzinfo=UTC)),
    ],
)
def test_a_12_hour_time_keeps_its_am_or_pm(written: str, read: datetime) -> None:
    """feedparser reads none of these; the RFC 822 fallback read "04:42 PM" as 04:42."""
    body = (
        f"<rss><channel><item><title>t</title><pubDate>{written}</pubDate></item></channel></rss>"
    )
    (item,) = parse_feed(body.encode(), feed_id="f", url="https://x.example/").items
    assert item.published == read


@pytest.mark.parametrize("name", ["rss20.rss", "atom.xml", "jsonfeed11.json", "rdf.rdf"])
def test_an_items_fingerprint_is_its_drafts(name: str) -> None:
    """The poll takes a converted item's fingerprint from the item, not converting it twice."""
    drafts = read_feed((FIXTURES / name).read_bytes(), feed_id="f", url="https://x.example/")
    assert drafts.entries
    for draft in drafts.entries:
        assert text_fingerprint(draft.item()) == draft.fingerprint()
