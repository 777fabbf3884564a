"""Secrets never reach a log line, however they get into the record."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.logs import JsonFormatter, SecretFilter, TextFormatter

TOKEN = "xoxb-1234-very-secret"
HOOK = "https://hooks.slack.com/services/T0/B0/abcdef"


@pytest.fixture
def capture() -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter([TOKEN, HOOK, ""]))
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream, handler


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_secrets_are_scrubbed_from_messages_args_extras_and_tracebacks(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler], formatter: logging.Formatter
) -> None:
    logger, stream, handler = capture
    handler.setFormatter(formatter)
    logger.info("posting with %s", TOKEN, extra={"url": HOOK + "/x"})
    try:
        raise RuntimeError(f"failed to reach {HOOK}")
    except RuntimeError:
        logger.exception("send failed")
    out = stream.getvalue()
    assert TOKEN not in out and HOOK not in out
    assert "posting with ***" in out and "failed to reach ***" in out


def test_json_lines_are_one_object_per_event(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, handler = capture
    handler.setFormatter(JsonFormatter())
    logger.warning("feed %s failed", "rcmp", extra={"feed": "rcmp", "reason": "timeout"})
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "feed rcmp failed"
    assert (record["feed"], record["reason"], record["level"]) == ("rcmp", "timeout", "warning")
