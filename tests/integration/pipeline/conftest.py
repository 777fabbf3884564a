"""A fresh in-memory SQLite store per test: the real store, at the speed of a fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.store import Store, open_store


@pytest.fixture
def store() -> Iterator[Store]:
    s = open_store("sqlite::memory:")
    yield s
    s.close()
