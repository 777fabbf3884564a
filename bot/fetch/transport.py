"""An httpx transport for feed GETs: HTTP/1.1 with h11 straight over asyncio streams.

httpx's default transport (httpcore on anyio) spends most of a conditional GET's
CPU in its own layers: cancel scopes, locks and a connection pool scanned on
every request. A poll cycle of thousands of feeds that mostly answer 304 is
exactly that work, so feeds take this transport: the protocol is still h11 (what
httpcore uses), the client API still httpx, and the pool is a list of idle
connections per origin. The Fetcher bounds concurrency, deadlines and redirects
itself, so the transport needs no limits or timeouts of its own. Requests carry
no body (feeds are fetched with GET).

A request's :data:`PEER_CHECK` extension, when set, is called with the IP address
the request is about to be sent to (a new connection's or a reused one's), before
any byte is sent; whatever it raises ends the request.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable

import h11
import httpx

_READ_SIZE = 65536
_MAX_HEADERS = 100 * 1024  # as httpcore; h11's own default (16 KiB) refuses some real servers
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
# RFC 8305: try the next address of a host after 250 ms, so one unreachable
# address (a broken IPv6 route) does not eat the whole deadline.
_HAPPY_EYEBALLS = 0.25

Origin = tuple[bytes, bytes, int]  # scheme, host (ASCII), port

PEER_CHECK = "newswatch.peer_check"
"""Request extension: a ``Callable[[str], None]`` given the peer's IP address."""


class _Connection:
    """One HTTP/1.1 connection; ``h11`` frames it, asyncio streams carry it."""

    __slots__ = ("answered", "h11", "idle_since", "peer", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        peername = writer.get_extra_info("peername")
        self.peer: str = peername[0] if peername else ""
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEADERS)
        self.idle_since = 0.0
        self.answered = False  # whether the current exchange has received any byte

    def usable(self) -> bool:
        """Whether an idle connection can carry a request: still open, and silent.

        Servers close idle connections at will, some after sending an unasked answer
        (a 408): bytes that arrived while idle would be read as the next response.
        """
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            # StreamReader has no public peek; typeshed omits the private buffer.
            and not self.reader._buffer  # type: ignore[attr-defined]
        )

    async def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(_READ_SIZE)
            self.answered = self.answered or bool(data)
            if not data and self.h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("server closed the connection without answering")
            self.h11.receive_data(data)

    def close(self) -> None:
        self.writer.close()


class FeedTransport(httpx.AsyncBaseTransport):
    """Keeps up to ``max_idle`` idle connections per origin for ``keepalive`` seconds.

    Idle connections are file descriptors: at most ``max_idle_total`` are kept in
    all, and the expired ones are closed by the first request or return at least
    ``keepalive`` seconds after the last sweep, so thousands of publishers never
    exhaust the process's open-file limit.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, max_idle: int, max_idle_total: int, keepalive: float
    ) -> None:
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._max_idle_total = max_idle_total
        self._keepalive = keepalive
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._swept = time.monotonic()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        outgoing = h11.Request(
            method=request.method, target=url.raw_path, headers=request.headers.raw
        )
        check: Callable[[str], None] | None = request.extensions.get(PEER_CHECK)
        self._sweep_if_due(time.monotonic())
        connection = self._checkout(origin)
        if connection is not None:
            _check_peer(connection, check)
            try:
                return await self._exchange(connection, outgoing, origin)
            except httpx.RemoteProtocolError:
                if connection.answered:
                    raise
                # Closed or reset before any byte of an answer: the server dropped the
                # idle connection as it was reused. The GET goes again, once, on a new one.
        connection = await self._connect(origin)
        _check_peer(connection, check)
        return await self._exchange(connection, outgoing, origin)

    async def aclose(self) -> None:
        self._close_idle(float("inf"))

    @property
    def idle(self) -> int:
        """Idle connections kept open."""
        return self._idle_count

    def _checkout(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        deadline = time.monotonic() - self._keepalive
        while connections:
            connection = connections.pop()
            self._idle_count -= 1
            if connection.idle_since >= deadline and connection.usable():
                return connection
            connection.close()
        return None

    def checkin(self, origin: Origin, connection: _Connection) -> None:
        """Take back a connection whose exchange is over; keep it if it can serve another."""
        now = time.monotonic()
        self._sweep_if_due(now)
        state = connection.h11
        if (
            state.our_state is h11.DONE
            and state.their_state is h11.DONE
            and not state.trailing_data[0]  # bytes past the answer: not ours to reuse
        ):
            state.start_next_cycle()
            connections = self._idle.setdefault(origin, [])
            if len(connections) < self._max_idle and self._idle_count < self._max_idle_total:
                connection.idle_since = now
                connections.append(connection)
                self._idle_count += 1
                return
        connection.close()

    def _sweep_if_due(self, now: float) -> None:
        if now - self._swept > self._keepalive:
            self._close_idle(now - self._keepalive)

    def _close_idle(self, older_than: float) -> None:
        """Close idle connections that have waited since before ``older_than``."""
        self._swept = time.monotonic()
        for origin, connections in list(self._idle.items()):
            kept = [c for c in connections if c.idle_since >= older_than]
            for connection in connections:
                if connection.idle_since < older_than:
                    connection.close()
            self._idle_count -= len(connections) - len(kept)
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        tls = self._ssl if scheme == b"https" else None
        try:
            # The host as ASCII bytes: a label the idna codec refuses (empty, over 63
            # characters) then fails in getaddrinfo as a DNS error, not a UnicodeError.
            reader, writer = await asyncio.open_connection(
                host,  # type: ignore[arg-type]  # typeshed says str; getaddrinfo takes bytes
                port,
                ssl=tls,
                server_hostname=host.decode("ascii") if tls else None,
                limit=_READ_SIZE,
                happy_eyeballs_delay=_HAPPY_EYEBALLS,
            )
        except OSError as error:
            raise httpx.ConnectError(str(error) or type(error).__name__) from error
        return _Connection(reader, writer)

    async def _exchange(
        self, connection: _Connection, outgoing: h11.Request, origin: Origin
    ) -> httpx.Response:
        state = connection.h11
        connection.answered = False
        try:
            connection.writer.write(state.send(outgoing) + state.send(h11.EndOfMessage()))
            event = await connection.next_event()
            while isinstance(event, h11.InformationalResponse):
                event = await connection.next_event()
        except (OSError, h11.ProtocolError) as error:
            connection.close()
            raise httpx.RemoteProtocolError(str(error) or type(error).__name__) from error
        except BaseException:
            connection.close()
            raise
        if not isinstance(event, h11.Response):
            connection.close()
            raise httpx.RemoteProtocolError(f"expected a response, got {type(event).__name__}")
        return httpx.Response(
            event.status_code,
            headers=event.headers.raw_items(),
            stream=_Body(self, connection, origin),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason},
        )


def _check_peer(connection: _Connection, check: Callable[[str], None] | None) -> None:
    """Let the request's :data:`PEER_CHECK` refuse the address; a refused one is closed."""
    if check is None:
        return
    try:
        check(connection.peer)
    except BaseException:
        connection.close()
        raise


class _Body(httpx.AsyncByteStream):
    """The response body; the connection goes back to the pool once it is read to the end."""

    def __init__(self, transport: FeedTransport, connection: _Connection, origin: Origin) -> None:
        self._transport = transport
        self._connection = connection
        self._origin = origin
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                event = await self._connection.next_event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    self._done = True
                    return
        except (OSError, h11.ProtocolError) as error:
            raise httpx.ReadError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        if not self._done and self._connection.h11.their_state is h11.SEND_BODY:
            # A body-less answer (304) ends without more bytes: nothing to read to reuse it.
            try:
                self._done = isinstance(self._connection.h11.next_event(), h11.EndOfMessage)
            except h11.ProtocolError:
                self._done = False
        if self._done:
            self._transport.checkin(self._origin, self._connection)
        else:
            self._connection.close()
