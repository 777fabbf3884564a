"""SQLite (WAL): the embedded default store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.errors import StoreError
from bot.store.sql import Dialect, SqlStore, schema

SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    begin_write="BEGIN IMMEDIATE",
    serial="INTEGER",
    real="REAL",
    lock_claimed="",
)


def sqlite_path(url: str) -> str:
    """``sqlite:///abs/path`` → ``/abs/path``; ``sqlite:rel/path`` → ``rel/path`` (from the cwd)."""
    rest = url.removeprefix("sqlite:")
    return rest[2:] if rest.startswith("//") else rest


def open_sqlite(url: str, *, read_only: bool = False) -> SqlStore:
    path = sqlite_path(url)
    if not path:
        raise StoreError(f"store {url!r} names no file")
    try:
        if read_only:
            if not Path(path).exists():
                conn = _connect(":memory:")
                for statement in schema(SQLITE):
                    conn.execute(statement)
                return SqlStore(conn, SQLITE, read_only=True)
            return SqlStore(_connect(f"file:{path}?mode=ro", uri=True), SQLITE, read_only=True)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except (sqlite3.Error, OSError) as err:
        raise StoreError(f"cannot open SQLite store {path}: {err}") from err
    store = SqlStore(conn, SQLITE)
    store.migrate()
    return store


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target, uri=uri, isolation_level=None, check_same_thread=False, timeout=30.0
    )
    conn.execute("PRAGMA busy_timeout=30000")
    return conn
