"""``/healthz`` and ``/metrics`` over a tiny HTTP/1.1 responder on asyncio's own server.

It runs on the daemon's event loop, so the store is only ever touched from that
one thread, and no web framework is needed for two GET routes. ``python -m
bot.health`` is the container's HEALTHCHECK: it reads the configured port and
asks the running daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from bot.store import OutboxCounts

log = logging.getLogger("newswatch.health")

MAX_REQUEST = 8192
READ_TIMEOUT = 5.0
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` says: the HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]


def evaluate(
    now: datetime,
    started_at: datetime,
    last_poll: datetime | None,
    poll_interval: float,
    store_ok: bool,
    counts: OutboxCounts | None,
) -> Health:
    """SPEC §8: healthy when the poll job ran within twice its interval (or the
    process is younger than that) and the store answers."""
    window = 2 * poll_interval
    fresh = (now - (last_poll or started_at)).total_seconds() <= window
    healthy = fresh and store_ok
    body: dict[str, Any] = {
        "status": "ok" if healthy else "unhealthy",
        "last_poll": last_poll.isoformat() if last_poll else None,
        "store_ok": store_ok,
        "outbox": {"pending": counts.pending, "dead": counts.dead} if counts else None,
    }
    if not healthy:
        body["reason"] = (
            "store not answering"
            if not store_ok
            else (f"poll job has not run for more than {window:g}s")
        )
    return Health(200 if healthy else 503, body)


Handler = Callable[[], Awaitable[tuple[int, str, bytes]]]


class HealthServer:
    """Serves ``routes`` (path → handler giving status, content type, body) on host:port."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Handler]) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.routes = dict(routes)
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (useful when asked for port 0)."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_REQUEST
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, ctype, body, head = await self._answer(reader)
            reason = REASONS.get(status, "Unknown")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n"
                "Cache-Control: no-store\r\n\r\n".encode("latin-1")
                + (b"" if head else body)
            )
            await writer.drain()
            if status >= 400:  # read what the client still sends, so closing is no reset
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(MAX_REQUEST * 8), 0.2)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except TimeoutError:
            return (*_text(408, "timeout"), False)
        except asyncio.LimitOverrunError:
            return (*_text(431, "request too large"), False)
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return (*_text(400, "bad request"), False)
        method, target = parts[0], parts[1].split("?", 1)[0]
        handler = self.routes.get(target)
        if handler is None:
            return (*_text(404, "not found"), False)
        if method not in ("GET", "HEAD"):
            return (*_text(405, "GET or HEAD only"), False)
        try:
            status, ctype, body = await handler()
        except Exception:
            log.exception("%s failed", target, extra={"event": "health_error"})
            return (*_text(500, "internal error"), False)
        return status, ctype, body, method == "HEAD"


def _text(status: int, text: str) -> tuple[int, str, bytes]:
    return status, "text/plain; charset=utf-8", (text + "\n").encode()


def json_response(health: Health) -> tuple[int, str, bytes]:
    return health.status, "application/json", json.dumps(health.body).encode()


def metrics_response(body: bytes) -> tuple[int, str, bytes]:
    return 200, CONTENT_TYPE_LATEST, body


def probe(config_dir: Path, environ: Mapping[str, str], timeout: float = 5.0) -> int:
    """GET /healthz of the daemon running on this config; 0 healthy, 1 not.

    The port comes from the config itself, so the HEALTHCHECK follows whatever
    port a mounted config chooses. An invalid config counts as unhealthy: the
    daemon could not restart on it.
    """
    from bot.configfile import load_config
    from bot.errors import ConfigError

    try:
        server = load_config(config_dir, environ).settings.server
    except ConfigError as err:
        print(f"unhealthy: invalid config: {err}", file=sys.stderr)
        return 1
    if server.port == 0:
        print("unhealthy: server.port is 0 (picked at random): cannot probe", file=sys.stderr)
        return 1
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
    url = (
        f"http://{host}:{server.port}/healthz"
        if ":" not in host
        else (f"http://[{host}]:{server.port}/healthz")
    )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as err:
        print(f"unhealthy: {err.code} {err.read().decode(errors='replace')}", file=sys.stderr)
    except OSError as err:
        print(f"unhealthy: {url}: {err}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(probe(Path(os.environ.get("NEWSWATCH_CONFIG", "config")), os.environ))
