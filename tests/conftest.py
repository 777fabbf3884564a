"""Shared fixtures: real loopback peers, config directories, and the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.paths import REPO
from tests.peers.feed_server import FeedServer
from tests.peers.slack_emulator import TOKEN, SlackEmulator

# Property tests judge outcomes, never time: no per-example deadline and no "too slow"
# health check, which fail on a busy machine (CI shares its cores) without a bug.
settings.register_profile("newswatch", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("newswatch")


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


@dataclass
class ConfigDir:
    """A config directory in a temporary folder, with its own SQLite store."""

    path: Path

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return target

    @property
    def store(self) -> Path:
        return self.path / "state.db"


@pytest.fixture
def config_dir(tmp_path: Path) -> ConfigDir:
    directory = tmp_path / "config"
    directory.mkdir()
    return ConfigDir(directory)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> Result:
    """Runs ``python -m bot`` in a subprocess, exactly as a user would run ``newswatch``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    environment.update({"SLACK_TEST_TOKEN": TOKEN, **(env or {})})
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd or REPO,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
