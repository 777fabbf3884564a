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
    has_table="SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
)

# How long a statement waits for another process's lock. Every transaction is short, so
# a wait this long means the store is held (another tool, a stuck process): say so soon.
BUSY_TIMEOUT = 5.0

# SQLite's primary result codes for the failures a user can fix.
_BUSY, _LOCKED, _READONLY, _CANTOPEN, _CORRUPT, _NOTADB = 5, 6, 8, 14, 11, 26


def sqlite_path(url: str) -> str:
    """``sqlite:///abs/path`` and ``sqlite:////abs/path`` (SQLAlchemy's spelling) →
    ``/abs/path``; ``sqlite:rel/path`` → ``rel/path`` (from the working directory)."""
    rest = url.removeprefix("sqlite:")
    if rest.startswith("//"):
        rest = rest[2:]
    return "/" + rest.lstrip("/") if rest.startswith("/") else rest


def open_sqlite(url: str, *, read_only: bool = False) -> SqlStore:
    """The store at ``url``, checked readable (and migrated, unless ``read_only``) before use,
    so an unusable file fails here as one :class:`StoreError` naming it."""
    path = sqlite_path(url)
    if not path:
        raise StoreError(f"store {url!r} names no file")
    try:
        return _open_read_only(path) if read_only else _open(path)
    except OSError as err:
        raise StoreError(f"cannot open SQLite store {path}: {err.strerror or err}") from None
    except sqlite3.Error as err:
        raise sqlite_error(path, err) from None
    except StoreError as err:
        raise StoreError(f"SQLite store {path}: {err}") from None


def sqlite_error(path: str, err: sqlite3.Error) -> StoreError:
    """What an SQLite failure means to the user, naming the file."""
    code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_BUSY, _LOCKED):
        why = f"locked by another process (waited {BUSY_TIMEOUT:g} s)"
    elif code == _READONLY:
        why = "read-only: newswatch needs to write the file and its directory"
    elif code == _CANTOPEN:
        why = "cannot be opened: check that the file and its directory exist and can be written"
    elif code in (_CORRUPT, _NOTADB):
        why = f"not a newswatch database, or damaged ({err})"
    else:
        why = str(err)
    return StoreError(f"SQLite store {path}: {why}")


def _open_read_only(path: str) -> SqlStore:
    if not Path(path).exists():
        conn = _connect(":memory:")
        for statement in schema(SQLITE):
            conn.execute(statement)
        return SqlStore(conn, SQLITE, read_only=True)
    # as_uri quotes what a URI would read otherwise: '?', '#' and '%' in a file name.
    conn = _connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    store = SqlStore(conn, SQLITE, read_only=True)
    try:
        store.check_version()
    except (sqlite3.Error, StoreError):
        conn.close()
        raise
    return store


def _open(path: str) -> SqlStore:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        store = SqlStore(conn, SQLITE)
        store.migrate()
        _check_writable(conn)
    except sqlite3.Error:
        conn.close()
        raise
    return store


def _check_writable(conn: sqlite3.Connection) -> None:
    """Fail now if the file cannot be written: SQLite opens a read-only file and even begins
    a write transaction on it, failing only at the first change (mid-poll)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE newswatch_write_probe (x INTEGER)")
    finally:
        conn.execute("ROLLBACK")


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target, uri=uri, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
    )
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    return conn
