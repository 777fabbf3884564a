"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ConfigDir
from tests.peers.daemon import Daemon


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    daemons: list[Daemon] = []

    def starter(cfg: ConfigDir, **env: str) -> Daemon:
        daemon = Daemon(cfg, tmp_path / f"daemon{len(daemons)}.log", env)
        daemons.append(daemon)
        return daemon

    yield starter
    for daemon in daemons:
        daemon.close()
