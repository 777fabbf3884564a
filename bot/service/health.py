"""``/healthz`` and ``/metrics``: a tiny HTTP/1.1 responder on its own thread and event loop.

Why its own thread: the store is synchronous and the pipeline calls it from the
daemon's event loop, so a store that waits for a lock blocks that loop, and a
server on the same loop would hang with it. This one answers from what it can
read without the daemon's loop: plain attributes the loop keeps fresh (its
heartbeat, the last poll), a store probe run in a worker thread with a timeout
(:class:`Probe`), and a metrics rendering reused for a few seconds
(:class:`Snapshot`). Handlers therefore run on the server's thread and only read
thread-safe state.

Hostile clients cannot exhaust it: connections beyond ``Limits.max_connections``
are closed at once, the request head must arrive within ``head_timeout`` and fit
``max_request`` bytes, the whole exchange is bounded by ``exchange_timeout``, and
failed accepts (EMFILE: out of file descriptors) back off and are logged at most
once per ``accept_log_every`` with a count.

``python -m bot.service.health`` is the container's HEALTHCHECK: it reads the configured
port and asks the running daemon.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import json
import logging
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from bot.errors import ListenError
from bot.service.metrics import CONTENT_TYPE
from bot.store import FeedState, OutboxCounts

log = logging.getLogger("newswatch.health")

T = TypeVar("T")

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Limits:
    """What one client may cost the server; injectable so tests of the limits run fast."""

    max_connections: int = 32
    max_request: int = 8192
    head_timeout: float = 5.0
    exchange_timeout: float = 15.0
    accept_log_every: float = 60.0
    accept_backoff: float = 0.05
    accept_backoff_max: float = 2.0


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
    *,
    loop_lag: float = 0.0,
    stall_after: float = float("inf"),
    last_read: datetime | None = None,
    degraded_after: float = float("inf"),
) -> Health:
    """Healthy (README, "Running the daemon") when the poll job ran within twice its
    interval (or the process is younger than that), the store answers, and the daemon's
    event loop beat within ``stall_after`` seconds (``loop_lag`` is the age of its
    heartbeat); otherwise 503.

    Degraded, still 200, when no feed has been read for more than ``degraded_after``
    seconds (``last_read``, from :func:`last_read`; None when no feed was tried yet):
    the daemon works but the world it reads does not answer, and restarting it would
    not help. The process's start counts as a read, so a restart gets a full window.
    """
    window = 2 * poll_interval
    fresh = (now - (last_poll or started_at)).total_seconds() <= window
    beating = loop_lag <= stall_after
    healthy = fresh and store_ok and beating
    quiet = (now - max(last_read, started_at)).total_seconds() if last_read is not None else 0.0
    degraded = healthy and quiet > degraded_after
    body: dict[str, Any] = {
        "status": "degraded" if degraded else "ok" if healthy else "unhealthy",
        "last_poll": last_poll.isoformat() if last_poll else None,
        "last_read": last_read.isoformat() if last_read else None,
        "store_ok": store_ok,
        "outbox": {"pending": counts.pending, "dead": counts.dead} if counts else None,
    }
    if not store_ok:
        body["reason"] = "store not answering"
    elif not beating:
        body["reason"] = f"event loop stalled for {loop_lag:.0f}s"
    elif not fresh:
        body["reason"] = f"poll job has not run for more than {window:g}s"
    elif degraded:
        body["reason"] = f"no feed has been read for {quiet:.0f}s"
    return Health(200 if healthy else 503, body)


def last_read(states: Iterable[FeedState]) -> datetime | None:
    """Since when no feed has been read: the newest success or, when none ever succeeded,
    the first failure; None while no feed has been tried (nothing to judge yet)."""
    tried = list(states)
    successes = [s.last_success_at for s in tried if s.last_success_at is not None]
    if successes:
        return max(successes)
    return min((s.failing_since for s in tried if s.failing_since is not None), default=None)


@dataclass(frozen=True)
class Request:
    """A parsed request head: the method, the path without its query, lower-cased headers."""

    method: str
    path: str
    headers: Mapping[str, str]


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]


def authorized(request: Request, token: str | None) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer <token>`` (any request when no token).

    Compared in constant time, so response timing tells nothing about the token.
    """
    if token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


UNAUTHORIZED = Response(
    401,
    "text/plain; charset=utf-8",
    b"bearer token required\n",
    (("WWW-Authenticate", 'Bearer realm="newswatch"'),),
)


class Probe:
    """Runs one blocking call at a time in a daemon thread; waiters share the call in flight.

    A store stuck on a lock keeps its probe thread stuck too; later waiters wait
    for that same call (with their own timeout) instead of piling up threads.
    Daemon threads, because a stuck call must not keep the process from exiting.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._running: concurrent.futures.Future[Any] | None = None

    async def run(self, call: Callable[[], T], timeout: float) -> T:
        """``call()``'s result; TimeoutError after ``timeout`` seconds (the call goes on)."""
        with self._lock:
            if self._running is None or self._running.done():
                self._running = concurrent.futures.Future()
                threading.Thread(
                    target=_settle, args=(self._running, call), name=self.name, daemon=True
                ).start()
            running = self._running
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(running)), timeout)


def _settle(future: concurrent.futures.Future[Any], call: Callable[[], Any]) -> None:
    try:
        future.set_result(call())
    except BaseException as err:
        future.set_exception(err)


class Snapshot:
    """A rendering reused for ``max_age`` seconds: scrapes cost at most one render per interval.

    Concurrent scrapes wait for the one render in progress. The lock is made on
    the loop that uses it, so a server rebound on a new thread can share it.
    """

    def __init__(
        self,
        render: Callable[[], Awaitable[bytes]],
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._render = render
        self.max_age = max_age
        self._clock = clock
        self._body: bytes | None = None
        self._at = 0.0
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.renders = 0

    async def get(self) -> bytes:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        async with self._lock[1]:
            if self._body is None or self._clock() - self._at >= self.max_age:
                self._body = await self._render()
                self._at = self._clock()
                self.renders += 1
            return self._body


class _AcceptFailures:
    """Counts failed accepts: one log line per interval at most, and a growing back-off."""

    def __init__(self, limits: Limits, address: str) -> None:
        self.limits = limits
        self.address = address
        self.unreported = 0
        self.total = 0
        self._logged_at: float | None = None
        self._delay = limits.accept_backoff

    def failed(self, err: OSError) -> float:
        """Note one failure; returns how long to wait before accepting again."""
        self.unreported += 1
        self.total += 1
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at >= self.limits.accept_log_every:
            self._report(err, now)
        delay = self._delay
        self._delay = min(2 * self._delay, self.limits.accept_backoff_max)
        return delay

    def accepted(self) -> None:
        self._delay = self.limits.accept_backoff

    def _report(self, err: OSError, now: float) -> None:
        log.warning(
            "%s: cannot accept connections: %s (%d failed accepts since the last report)",
            self.address,
            err.strerror or err,
            self.unreported,
            extra={"event": "accept_failed", "failures": self.unreported},
        )
        self._logged_at = now
        self.unreported = 0


class HealthServer:
    """Serves ``routes`` (path → handler) on host:port from its own thread and event loop."""

    def __init__(
        self, host: str, port: int, routes: Mapping[str, Handler], limits: Limits | None = None
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.routes = dict(routes)
        self.limits = limits or Limits()
        self.failures = _AcceptFailures(self.limits, f"{host}:{port}")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen; returns the bound port (useful when asked for port 0).

        Raises :class:`ListenError` when the address is taken or invalid.
        """
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready)), name="health-http", daemon=True
        )
        self._thread.start()
        try:
            self.port = await asyncio.wrap_future(ready)
        except BaseException as err:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            if isinstance(err, OSError):
                reason = os.strerror(err.errno) if err.errno else str(err)
                raise ListenError(
                    f"cannot listen on {self.host}:{self.requested_port}: {reason}"
                ) from err
            raise
        return self.port

    async def close(self) -> None:
        """Stop listening, drop open connections and end the server's thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def _main(self, ready: concurrent.futures.Future[int]) -> None:
        try:
            sock = _listen(self.host, self.requested_port)
        except OSError as err:
            ready.set_exception(err)
            return
        self.failures.address = f"{self.host}:{sock.getsockname()[1]}"
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        accepting = asyncio.create_task(self._accept(sock))
        ready.set_result(sock.getsockname()[1])
        try:
            await self._stop.wait()
        finally:
            accepting.cancel()
            for task in (accepting, *self._connections):
                task.cancel()
            await asyncio.gather(accepting, *self._connections, return_exceptions=True)
            sock.close()

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as err:  # EMFILE and the like: wait, then try again
                await asyncio.sleep(self.failures.failed(err))
                continue
            self.failures.accepted()
            if len(self._connections) >= self.limits.max_connections:
                conn.close()
                continue
            task = asyncio.create_task(self._connection(conn))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _connection(self, conn: socket.socket) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=self.limits.max_request)
            await asyncio.wait_for(self._exchange(reader, writer), self.limits.exchange_timeout)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            if writer is not None:
                writer.transport.abort()
        finally:
            if writer is None:
                conn.close()
            else:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        response, head_only = await self._answer(reader)
        status, ctype, body, headers = response
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
        writer.write(
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            f"Cache-Control: no-store\r\n{extra}\r\n".encode("latin-1")
            + (b"" if head_only else body)
        )
        await writer.drain()
        if status >= 400:  # read what the client still sends, so closing is no reset
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(self.limits.max_request * 8), 0.2)

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[Response, bool]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.limits.head_timeout)
        except TimeoutError:
            return _text(408, "timeout"), False
        except asyncio.LimitOverrunError:
            return _text(431, "request too large"), False
        request = _parse(head)
        if request is None:
            return _text(400, "bad request"), False
        handler = self.routes.get(request.path)
        if handler is None:
            return _text(404, "not found"), False
        if request.method not in ("GET", "HEAD"):
            return _text(405, "GET or HEAD only"), False
        try:
            response = await handler(request)
        except Exception:
            log.exception("%s failed", request.path, extra={"event": "health_error"})
            return _text(500, "internal error"), False
        return response, request.method == "HEAD"


def _listen(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on host:port (IPv4 or IPv6, as the host says)."""
    family = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0][0]
    sock = socket.create_server((host, port), family=family, backlog=128)
    sock.setblocking(False)
    return sock


def _parse(head: bytes) -> Request | None:
    first, *lines = head.decode("latin-1").split("\r\n")
    parts = first.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return Request(parts[0], parts[1].split("?", 1)[0], headers)


def _text(status: int, text: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", (text + "\n").encode())


def json_response(health: Health) -> Response:
    return Response(health.status, "application/json", json.dumps(health.body).encode())


def metrics_response(body: bytes) -> Response:
    return Response(200, CONTENT_TYPE, body)


def probe(config_dir: Path, environ: Mapping[str, str], timeout: float = 5.0) -> int:
    """GET /healthz of the daemon running on this config; 0 healthy, 1 not.

    The port comes from the config itself, so the HEALTHCHECK follows whatever
    port a mounted config chooses. An invalid config counts as unhealthy: the
    daemon could not restart on it.
    """
    from bot.config.load import load_config
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
