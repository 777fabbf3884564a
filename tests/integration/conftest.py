"""The store on every engine: tests parametrize ``store_url`` (``"sqlite"`` or
``"postgresql"``, indirectly) and take ``store``, a fresh store on that engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store, open_store
from tests.peers.postgres import postgres_dsn, temporary_database


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'store.db'}"
        return
    with temporary_database(postgres_dsn()[0] or "") as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()
