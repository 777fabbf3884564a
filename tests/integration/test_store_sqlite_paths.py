"""The forms an SQLite store's URL takes, written and then read the way ``feeds`` reads it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import FeedRow, open_store

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["plain.db", "what?#100%.db"])
@pytest.mark.parametrize("slashes", ["///", "////"])
def test_an_absolute_sqlite_store_opens_read_only_in_either_spelling(
    tmp_path: Path, slashes: str, name: str
) -> None:
    """``sqlite:////abs`` is how SQLAlchemy writes an absolute path; ``feeds`` and
    ``once --dry-run`` open the store read-only, through a URI that must quote the name."""
    url = f"sqlite:{slashes}{str(tmp_path / name).lstrip('/')}"
    writer = open_store(url)
    writer.sync_feeds([FeedRow("a", "http://x/a")], T0)
    writer.close()
    reader = open_store(url, read_only=True)
    try:
        assert [s.feed_id for s in reader.feed_states()] == ["a"]
    finally:
        reader.close()
    assert (tmp_path / name).is_file()
