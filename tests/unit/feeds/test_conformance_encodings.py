"""Conformance fixtures for encodings and links, each a case where newswatch lost or
corrupted what feedparser keeps (issue 15), and the guard that the parser uses only
feedparser's public API."""

from __future__ import annotations

import ast

import pytest

from bot.feeds.parse import parse_feed
from bot.model import ParsedFeed
from tests.paths import CONFORMANCE, REPO

URL = "https://feeds.example.com/dir/feed.xml"


def parse(name: str) -> ParsedFeed:
    return parse_feed((CONFORMANCE / name).read_bytes(), feed_id="f", url=URL)


@pytest.mark.parametrize(
    "name",
    [
        "enc-utf16le-nobom-declared.atom",
        "enc-utf16be-nobom-declared.atom",
        "enc-utf32le-nobom.atom",
        "enc-utf32be-nobom.atom",
    ],
)
def test_utf16_and_utf32_without_byte_order_mark(name: str) -> None:
    feed = parse(name)
    assert (feed.title, feed.warning) == ("Новости Самары", None)
    [item] = feed.items
    assert item.title == "Городской совет утвердил бюджет на следующий год"
    assert item.link == "https://news.example.com/ru/0"


@pytest.mark.parametrize(
    ("name", "title", "warning"),
    [
        (
            "enc-windows-1251-undeclared.rss",
            "Городской совет утвердил бюджет на следующий год",
            "encoding: declared none, detected windows-1251",
        ),
        (
            "enc-windows-1251-declared-iso-8859-1.rss",
            "Городской совет утвердил бюджет на следующий год",
            "encoding: declared iso-8859-1, detected windows-1251",
        ),
        (
            "enc-windows-1255-undeclared.rss",
            "מועצת העיר אישרה את התקציב לשנה הבאה",
            "encoding: declared none, detected windows-1255",
        ),
        (
            "enc-shift_jis-declared-utf-8.rss",
            "市議会が来年度の予算案を可決しました",
            "encoding: declared utf-8, detected cp932",
        ),
        (
            "enc-gb18030-undeclared.rss",
            "市议会通过了明年的财政预算",
            "encoding: declared none, detected gb18030",
        ),
        (
            "enc-iso-8859-7-declared-windows-1252.rss",
            "Το δημοτικό συμβούλιο ενέκρινε τον προϋπολογισμό",
            "encoding: declared windows-1252, detected windows-1253",
        ),
    ],
)
def test_legacy_encodings_are_detected_and_named(name: str, title: str, warning: str) -> None:
    feed = parse(name)
    assert feed.items[0].title == title
    assert feed.warning == warning


def test_latin_text_is_not_detected_as_something_else() -> None:
    """Its ``à…»`` is the kind of byte run that makes the parser ask the detector, which
    must not find windows-1252 text better read otherwise."""
    undeclared = parse("enc-windows-1252-undeclared-french.rss")
    assert undeclared.title == "Actualités de la ville"
    assert undeclared.items[2].title == "Travaux sur le pont : «On verra bien, voilà…»"
    assert undeclared.warning == "not UTF-8: read as windows-1252"
    declared = parse("enc-windows-1252-declared.rss")
    assert declared.items[0].title == "Stadtrat beschließt Haushalt für das nächste Jahr"
    assert declared.warning is None


@pytest.mark.parametrize("label", ["rot13", "undefined"])
def test_a_codec_that_does_not_read_text_is_no_declaration(label: str) -> None:
    feed = parse(f"enc-declared-{label}.rss")
    assert feed.items[0].title == "Fête de la musique à Genève"
    assert feed.warning == "not UTF-8: read as windows-1252"


def test_relative_link_after_the_id_is_kept() -> None:
    feed = parse("link-relative-after-id.atom")
    assert [i.link for i in feed.items] == [
        "https://harbour.example.org/notices/118-dredging-east-basin",
        "https://harbour.example.org/notices/117-pilot-boarding",
    ]


def test_a_web_url_id_is_the_link_of_an_atom_entry_without_one() -> None:
    feed = parse("link-id-only.atom")
    assert [i.link for i in feed.items] == [
        "https://library.example.net/events/2024/poetry-night",
        "https://library.example.net/events/2024/book-sale",
        None,  # a urn: id is no link
    ]


def test_atom_link_without_href_is_no_link() -> None:
    feed = parse("link-no-href.atom")
    assert [i.link for i in feed.items] == [
        "https://transit.example.com/news/route-12-detour",
        "https://transit.example.com/news/night-buses",
        None,
    ]


def test_rss_guid_is_a_link_only_as_a_permalink() -> None:
    feed = parse("link-rss-guid-not-permalink.rss")
    assert [i.link for i in feed.items] == [
        None,
        "https://water.example.org/notices/elm-street?from=rss",
    ]


def test_a_link_urljoin_refuses_is_no_link_not_a_crash() -> None:
    feed = parse("link-unclosed-ipv6.rss")
    assert [(i.title, i.link) for i in feed.items] == [
        ("Maintenance on the east ring", None),
        ("Peering restored", "https://status.example.net/incidents/peering"),
    ]


def private_feedparser_names(source: str) -> list[str]:
    """feedparser names a module uses beyond its documented top-level API: imports from
    its submodules (``feedparser.datetimes``) and underscored attributes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("feedparser.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("feedparser"):
            found.append(node.module or "")
        elif isinstance(node, ast.Attribute):
            root: ast.expr = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id == "feedparser" and node.attr[:1] == "_":
                found.append(f"feedparser…{node.attr}")
    return found


def test_the_private_name_check_finds_private_names() -> None:
    assert private_feedparser_names(
        "from feedparser.datetimes import _parse_date\nimport feedparser\nfeedparser._x"
    ) == ["feedparser.datetimes", "feedparser…_x"]
    assert private_feedparser_names("import feedparser\nfeedparser.parse(b'')") == []


def test_no_module_uses_a_private_feedparser_name() -> None:
    used = {
        str(path.relative_to(REPO)): names
        for path in sorted((REPO / "bot").rglob("*.py"))
        if (names := private_feedparser_names(path.read_text(encoding="utf-8")))
    }
    assert used == {}


def test_utf8_with_a_stray_byte_is_read_as_utf8_not_as_mojibake() -> None:
    """One byte that is not UTF-8 (a bad copy) once made the whole document windows-1252."""
    feed = parse("enc-utf8-one-stray-byte.rss")
    assert feed.items[0].title == "Montréal’s “Grande Bibliothèque” reopens"
    assert feed.items[0].summary == "Readers return to the library \ufffd after the works."
    assert feed.warning == "not UTF-8 everywhere: 1 byte(s) replaced"
