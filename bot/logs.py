"""Logging: one line per event, text or JSON, and secrets scrubbed from every record."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Protocol, TextIO

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class SecretFilter(logging.Filter):
    """Replaces every known secret value (tokens, webhook URLs, passwords) with ``***``.

    Scrubbing the rendered text rather than trusting call sites means a secret
    that reaches a log through an exception message or a URL is still hidden.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if s and len(s) >= 4} | set(self.secrets)
        self.secrets = sorted(found, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
            for key, value in list(vars(record).items()):
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, self.scrub(value))
        return True


def scrub(text: str) -> str:
    """``text`` with every secret the installed log scrubbers know hidden.

    Command output and notices (a feed-failure notice quotes the feed URL) must
    hide what the logs hide; the scrubbers on the root handlers hold every
    secret of the running config, reloads included.
    """
    for handler in logging.getLogger().handlers:
        for filt in handler.filters:
            if isinstance(filt, SecretFilter):
                text = filt.scrub(text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LiveLine(Protocol):
    """A line redrawn in place on a terminal (a progress bar): log lines must not overwrite it."""

    def aside(self) -> AbstractContextManager[None]:
        """Erase the line on entry and draw it again on exit."""
        ...


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """A stream handler whose records make a :class:`LiveLine` on its stream step aside:
    without it, a record written over a ``\r``-drawn bar keeps the bar's tail and the
    next redraw overwrites the record's start."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.live: LiveLine | None = None

    def emit(self, record: logging.LogRecord) -> None:
        live = self.live
        if live is None:
            super().emit(record)
            return
        with live.aside():
            super().emit(record)


@contextmanager
def live_line(line: LiveLine, stream: TextIO) -> Iterator[None]:
    """While inside, records the root logger writes to ``stream`` erase ``line`` first and
    redraw it after."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, ConsoleHandler) and h.stream is stream
    ]
    for handler in handlers:
        handler.live = line
    try:
        yield
    finally:
        for handler in handlers:
            handler.live = None


def setup_logging(fmt: str, verbosity: int, secrets: Iterable[str] = ()) -> SecretFilter:
    """Configure the root logger for the CLI; returns the filter so more secrets can be added."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(max(-1, min(verbosity, 1)), logging.DEBUG)
    handler = ConsoleHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    scrubber = SecretFilter(secrets)
    handler.addFilter(scrubber)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "slack_sdk", "mail.log"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    return scrubber
