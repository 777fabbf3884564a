"""Every real-world feed plain feedparser reads, parse_feed reads with at least as many items."""

from __future__ import annotations

import io
from pathlib import Path

import feedparser
import pytest

from bot.errors import FetchError
from bot.feeds.parse import parse_feed
from tests.paths import CORPUS

FILES = sorted(p for p in CORPUS.glob("*") if p.suffix != ".tsv") if CORPUS.is_dir() else []

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no feed corpus at {CORPUS}"),
]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_reads_what_feedparser_reads(path: Path) -> None:
    body = path.read_bytes()
    plain = feedparser.parse(io.BytesIO(body))
    readable = not plain.bozo or plain.entries
    try:
        parsed = parse_feed(body, feed_id="corpus", url="https://corpus.example/feed")
    except FetchError as error:
        assert not readable, f"{error.reason}: {error.detail}"
        assert error.reason in ("not_a_feed", "malformed")
        return
    assert len(parsed.items) >= len(plain.entries)
    for item in parsed.items:
        assert item.published is None or item.published.utcoffset() is not None
        assert item.link is None or item.link.startswith(("http://", "https://"))
        assert "<p>" not in item.summary and "<p>" not in item.content
