"""The fast path's copy of feedparser's repairs of element text."""

from __future__ import annotations

import pytest
from feedparser.html import _cp1252

from bot.feeds.parse import _CP1252, _as_feedparser


def test_the_windows_1252_table_is_feedparsers() -> None:
    assert _cp1252 == _CP1252


@pytest.mark.parametrize(
    ("raw", "repaired"),
    [
        ("plain ascii & <b>", "plain ascii & <b>"),
        ("Caf\u00c3\u00a9", "Café"),  # UTF-8 read as Latin-1
        ("\x93quoted\x94 \x80", "“quoted” €"),  # windows-1252 bytes read as Latin-1
        ("\x81 undefined in cp1252", "\x81 undefined in cp1252"),
        ("Sûreté — “curly”", "Sûreté — “curly”"),
        ("mixed \u2014 and \x96", "mixed \u2014 and \u2013"),
    ],
)
def test_as_feedparser(raw: str, repaired: str) -> None:
    assert _as_feedparser(raw) == repaired
