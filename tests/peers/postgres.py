"""A real PostgreSQL for tests: a fresh database per use, dropped afterwards.

The server comes from ``NEWSWATCH_TEST_POSTGRES`` (``.ci/run`` always sets it, and
then an unreachable server fails the run), else the local default every
developer machine of this project has; only when neither answers are the
PostgreSQL tests skipped, with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlsplit, urlunsplit

import psycopg

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@cache
def postgres_dsn() -> tuple[str | None, str]:
    """(dsn, why-not): the server to test against, or None and the reason."""
    explicit = os.environ.get("NEWSWATCH_TEST_POSTGRES")
    dsn = explicit or DEFAULT_DSN
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as err:
        if explicit:
            raise RuntimeError(f"NEWSWATCH_TEST_POSTGRES={dsn} does not answer: {err}") from err
        return None, f"no PostgreSQL at {DEFAULT_DSN} (set NEWSWATCH_TEST_POSTGRES): {err}"
    return dsn, ""


@contextmanager
def temporary_database(dsn: str) -> Iterator[str]:
    """A new, empty database on the server of ``dsn``; yields its URL."""
    name = f"newswatch_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(dsn)
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
