"""An unusable store is one line naming it on stderr and exit 3, from every command.

Corrupted, read-only, locked by another process, of another program, or a
PostgreSQL server that does not answer: never a traceback, never a password.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.store import open_store
from tests.conftest import ConfigDir, Result, run_cli

RULES = """
    rules:
      - id: watch
        title: Watch
        query: police
"""
STORE_COMMANDS = [["once"], ["once", "--dry-run"], ["feeds"], ["run"]]


def configure(cfg: ConfigDir, store: str) -> None:
    cfg.write(
        "settings.yaml",
        f"""
        store: {store}
        feeds:
          - id: news
            url: http://127.0.0.1:9/rss
        """,
    )
    cfg.write("rules.yaml", RULES)


def run(cfg: ConfigDir, *args: str) -> Result:
    return run_cli("--config", str(cfg.path), *args)


def assert_one_line(result: Result, expected: str) -> None:
    assert result.code == 3, result.stderr
    assert result.stderr.splitlines() == [expected], result.stderr


def make_store(cfg: ConfigDir) -> None:
    open_store(f"sqlite:{cfg.store}").close()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` unwritable: its mode for a normal user; root ignores modes, so it also gets
    the immutable flag (which binds root too)."""
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_a_corrupted_file(config_dir: ConfigDir, command: list[str]) -> None:
    configure(config_dir, f"sqlite:{config_dir.store}")
    config_dir.store.write_bytes(b"not a database at all, " * 100)
    assert_one_line(
        run(config_dir, *command),
        f"newswatch: SQLite store {config_dir.store}: not a newswatch database, or damaged"
        " (file is not a database)",
    )


def test_the_sqlite_file_of_another_program(config_dir: ConfigDir) -> None:
    configure(config_dir, f"sqlite:{config_dir.store}")
    with sqlite3.connect(config_dir.store) as other:
        other.execute("CREATE TABLE notes (text TEXT)")
    other.close()
    assert_one_line(
        run(config_dir, "feeds"),
        f"newswatch: SQLite store {config_dir.store}: no newswatch tables (is it the right"
        " database?): `newswatch once` or `run` creates them",
    )


@pytest.mark.parametrize("command", [["once"], ["run"]], ids=" ".join)
def test_a_read_only_file(config_dir: ConfigDir, command: list[str]) -> None:
    configure(config_dir, f"sqlite:{config_dir.store}")
    make_store(config_dir)
    with read_only(config_dir.store):
        result = run(config_dir, *command)
    assert_one_line(
        result,
        f"newswatch: SQLite store {config_dir.store}: read-only: newswatch needs to write"
        " the file and its directory",
    )


def test_a_read_only_directory(config_dir: ConfigDir) -> None:
    configure(config_dir, f"sqlite:{config_dir.path}/state/newswatch.db")
    state = config_dir.path / "state"
    state.mkdir()
    open_store(f"sqlite:{state}/newswatch.db").close()
    with read_only(state):
        result = run(config_dir, "once")
    assert_one_line(
        result,
        f"newswatch: SQLite store {state}/newswatch.db: cannot be opened: check that the file"
        " and its directory exist and can be written",
    )


def test_a_directory_that_cannot_be_created(config_dir: ConfigDir) -> None:
    configure(config_dir, f"sqlite:{config_dir.path}/locked/state/newswatch.db")
    (config_dir.path / "locked").mkdir()
    with read_only(config_dir.path / "locked"):
        result = run(config_dir, "once")
    assert result.code == 3, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"newswatch: cannot open SQLite store {config_dir.path}/locked/")


def test_a_store_locked_by_another_process(config_dir: ConfigDir) -> None:
    """Waits the bounded busy timeout (5 s, not 30), then says who holds the store."""
    configure(config_dir, f"sqlite:{config_dir.store}")
    make_store(config_dir)
    holder = sqlite3.connect(config_dir.store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run(config_dir, "once")
    finally:
        holder.close()
    assert_one_line(
        result,
        f"newswatch: SQLite store {config_dir.store}: locked by another process (waited 5 s)",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_an_unreachable_postgresql(config_dir: ConfigDir, command: list[str]) -> None:
    port = _free_port()
    configure(config_dir, f"postgresql://newswatch:hunter2-secret@127.0.0.1:{port}/news")
    result = run(config_dir, *command)
    assert result.code == 3, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"newswatch: PostgreSQL store 127.0.0.1:{port}/news: connection ")
    assert "Connection refused" in line
    assert "hunter2" not in result.stderr
