"""Conditional GET of feeds over one long-lived httpx client; the only module importing httpx
(and httpcore, whose pool it configures).

Feeds go over httpx's own HTTP/1.1 transport (httpcore's connection pool), whose
connections come from :class:`_GuardedBackend`: before a request sends its first
byte on a connection, new or kept, the address that connection leads to is judged.
A connection the server closed as it was reused, before any byte of an answer,
costs the GET one more try. Behind a proxy named in the environment
(``HTTPS_PROXY`` and co) httpx's default transports carry the feeds, as they honour
it (and ``NO_PROXY``). The concurrency limits (global and per host) are semaphores
taken before the fetch's deadline starts, so queueing never eats a feed's time.

Every failure leaves through :func:`_failure`, the one place where exceptions
become :class:`FetchError` reasons.

Every address a fetch reaches is judged (:mod:`bot.fetch.addresses`): a cloud metadata
address never, a loopback or private one only when the feed's own address is not
public (or ``http.allow_private_redirects``). The address connected to is judged,
so a name that resolves to ``127.0.0.1`` is caught too; behind a proxy only the
addresses written in URLs can be judged, as the proxy resolves names itself.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

import httpcore
import httpx

from bot.config.schema import Http
from bot.errors import FetchError
from bot.fetch.addresses import Reach, literal_address, reach
from bot.fetch.decoding import decoder_for

_KEEPALIVE = 30.0  # seconds an idle connection is kept for the next fetch from its host
# Idle connections kept in all: every request pays for each one (httpcore's pool checks
# them all, twice), and a feed polled minutes apart never finds its own again, so only
# a burst from one host (a publisher's feeds due together) needs a few.
_MAX_IDLE = 4
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class FetchResult:
    """A fetched feed, or ``not_modified`` (304) with an empty body.

    ``url`` is where the body came from after redirects; ``max_age`` is the
    server's ``Cache-Control: max-age`` in seconds; ``elapsed`` the seconds spent.
    """

    not_modified: bool
    body: bytes
    url: str
    content_type: str | None
    etag: str | None
    last_modified: str | None
    max_age: float | None
    elapsed: float


@dataclass
class _HostSlot:
    semaphore: asyncio.Semaphore
    users: int = 0


class Fetcher:
    """Fetches feeds under a global and a per-host concurrency limit, each within a deadline."""

    def __init__(self, http: Http, *, classify: Callable[[str], Reach] = reach) -> None:
        self._http = http
        self._classify = classify
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(http.concurrency)
        self._hosts: dict[str, _HostSlot] = {}

    async def __aenter__(self) -> Fetcher:
        tls = httpx.create_ssl_context()
        self._client = httpx.AsyncClient(
            transport=None if _proxied() else _GuardedTransport(tls),
            # verify and limits only apply behind a proxy (httpx's default transports there).
            verify=tls,
            limits=httpx.Limits(
                max_connections=self._http.concurrency, keepalive_expiry=_KEEPALIVE
            ),
            timeout=httpx.Timeout(self._http.timeout),
            headers={
                "User-Agent": self._http.user_agent,
                "Accept": _ACCEPT,
                "Accept-Encoding": "gzip, deflate, br",
            },
            follow_redirects=False,
        )
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, tb)

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` conditionally; raise :class:`FetchError` with a stable reason.

        The deadline (``Http.timeout``) covers connecting, redirects and the whole
        body, and starts once the fetch has its concurrency slots.
        """
        if self._client is None:
            raise RuntimeError("use the Fetcher as an async context manager")
        host = _host(url)
        headers = _conditional_headers(etag, last_modified)
        async with self._host_slot(host), self._slots:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self._http.timeout):
                    result = await self._follow(self._client, url, headers)
            except (
                httpx.HTTPError,
                httpx.InvalidURL,
                UnicodeError,
                TimeoutError,
                OSError,
            ) as error:
                raise _failure(error, self._http.timeout) from error
            return replace(result, elapsed=time.monotonic() - started)

    @asynccontextmanager
    async def _host_slot(self, host: str) -> AsyncIterator[None]:
        """At most ``Http.per_host`` fetches per host; idle hosts are forgotten."""
        slot = self._hosts.setdefault(host, _HostSlot(asyncio.Semaphore(self._http.per_host)))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._hosts[host]

    async def _follow(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> FetchResult:
        """Follow at most ``Http.max_redirects`` redirects; a URL seen twice is a loop."""
        guard = _AddressGuard(self._classify, allow_private=self._http.allow_private_redirects)
        extensions = {_PEER_CHECK: guard.check}
        seen = {url}
        for _ in range(self._http.max_redirects + 1):
            guard.check_url(url)
            async with client.stream(
                "GET", url, headers=headers, extensions=extensions
            ) as response:
                location = response.headers.get("Location")
                if response.status_code not in _REDIRECTS or not location:
                    return await self._result(response, headers)
            url = _redirect_target(url, location)
            if url in seen:
                raise FetchError("redirect_loop", f"redirects back to {url}")
            seen.add(url)
            guard.redirected = True
        raise FetchError("redirect_loop", f"more than {self._http.max_redirects} redirects")

    async def _result(self, response: httpx.Response, sent: dict[str, str]) -> FetchResult:
        url = str(response.url)
        if response.status_code == 304:
            # A 304 has no body; reading its end lets the pool keep the connection.
            await response.aread()
            return FetchResult(
                not_modified=True,
                body=b"",
                url=url,
                content_type=None,
                etag=response.headers.get("ETag") or sent.get("If-None-Match"),
                last_modified=response.headers.get("Last-Modified")
                or sent.get("If-Modified-Since"),
                max_age=_max_age(response),
                elapsed=0.0,
            )
        _check_status(response)
        return FetchResult(
            not_modified=False,
            body=await _read(response, self._http.max_bytes),
            url=url,
            content_type=response.headers.get("Content-Type"),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            max_age=_max_age(response),
            elapsed=0.0,
        )


class _AddressGuard:
    """Judges the addresses one fetch reaches, its redirects included.

    The first address decides whether the feed is public; unknown (a name behind a
    proxy) counts as public, the stricter case.
    """

    def __init__(self, classify: Callable[[str], Reach], *, allow_private: bool) -> None:
        self._classify = classify
        self._allow_private = allow_private
        self._public_origin = True
        self.redirected = False

    def check_url(self, url: str) -> None:
        """Judge an address written in ``url`` before connecting to it."""
        address = literal_address(_host(url))
        if address is not None:
            self.check(address)

    def check(self, address: str) -> None:
        try:
            kind = self._classify(address)
        except ValueError:  # no address to judge (a socket closed at once): the strict case
            kind = "private" if self.redirected else "public"
        if kind == "metadata":
            if self.redirected:
                raise FetchError("blocked_redirect", f"redirect to cloud metadata at {address}")
            raise FetchError("bad_url", f"{address} is a cloud metadata address")
        if not self.redirected:
            self._public_origin = kind == "public"
        elif kind != "public" and self._public_origin and not self._allow_private:
            raise FetchError(
                "blocked_redirect", f"a public feed redirects to the private address {address}"
            )


_PEER_CHECK = "newswatch.peer_check"
"""Request extension: a ``Callable[[str], None]`` given the IP address a connection leads
to, before the request sends a byte on it; whatever it raises ends the request."""


class _Attempt:
    """One request's passage through the pool: its address check, and what its connection did
    (kept from an earlier request; read any byte once the request was sent)."""

    __slots__ = ("answered", "check", "reused", "stream")

    def __init__(self, check: Callable[[str], None] | None) -> None:
        self.check = check
        self.stream: _GuardedStream | None = None
        self.reused = False
        self.answered = False

    def take(self, stream: _GuardedStream) -> None:
        """The request is about to use ``stream``: judge where it leads, before any byte."""
        self.stream = stream
        self.reused = stream.used
        stream.used = True
        if self.check is not None:
            self.check(stream.peer)

    @property
    def stale(self) -> bool:
        """A kept connection that read nothing after the request went out: it was closed
        before answering, or its "answer" arrived before the request (a server's 408 as it
        closes an idle connection) and was already buffered."""
        return self.reused and not self.answered


_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("newswatch_fetch_attempt", default=None)
"""The request being sent: httpcore sends it in the task that called the transport."""


class _GuardedStream(httpcore.AsyncNetworkStream):
    """A connection of httpcore's pool that lets each request judge its peer before writing."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        address = stream.get_extra_info("server_addr")
        self.peer: str = address[0] if address else ""
        self.used = False
        self.expired = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._stream.read(max_bytes, timeout)
        attempt = _ATTEMPT.get()
        if data and attempt is not None and attempt.stream is self:
            attempt.answered = True
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None and attempt.stream is not self:
            attempt.take(self)  # a kept connection: what it leads to is judged for this request
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return self

    def get_extra_info(self, info: str) -> object:
        if info == "is_readable" and self.expired:
            return True  # what the pool asks before reusing an idle connection: it will not
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio backend, judging each new connection's peer before the TLS handshake."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = _GuardedStream(
            await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        )
        attempt = _ATTEMPT.get()
        if attempt is not None:
            try:
                attempt.take(stream)
            except BaseException:
                await stream.aclose()
                raise
        return stream

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP/1.1 transport on a pool of :class:`_GuardedBackend` connections.

    At most ``_MAX_IDLE`` idle connections are kept, each for ``_KEEPALIVE`` seconds;
    the Fetcher's semaphores bound the busy ones. httpx takes no network backend
    (encode/httpx#3749), so the pool it built is replaced.
    """

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(verify=tls, http1=True, http2=False, retries=0, trust_env=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport keeps its pool elsewhere: update Fetcher")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=None,
            max_keepalive_connections=_MAX_IDLE,
            keepalive_expiry=_KEEPALIVE,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_GuardedBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; on a stale kept connection (:attr:`_Attempt.stale`), a GET goes
        again, once, on a new connection or another kept one."""
        check = request.extensions.get(_PEER_CHECK)
        for last in (False, True):
            attempt = _Attempt(check)
            token = _ATTEMPT.set(attempt)
            try:
                response = await super().handle_async_request(request)
            except (httpx.RemoteProtocolError, httpx.NetworkError):
                if last or not attempt.stale:
                    raise
                continue
            finally:
                _ATTEMPT.reset(token)
            if not attempt.stale:
                return response
            if attempt.stream is not None:
                attempt.stream.expired = True  # closed by the pool, never offered again
            await response.aclose()
        raise httpx.RemoteProtocolError("kept connections answered before being asked")


def _host(url: str) -> str:
    """The host of ``url``, lower-case; a URL that does not split (``http://[x/``) is bad."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError as error:
        raise FetchError("bad_url", f"{error}: {url[:200]}") from error


def _redirect_target(url: str, location: str) -> str:
    try:
        return urljoin(url, location.strip())
    except ValueError as error:
        raise FetchError("bad_url", f"redirect to {location[:200]!r}: {error}") from error


def _proxied() -> bool:
    """Whether the environment names an HTTP(S) proxy: then httpx's default transports, which
    honour it (and NO_PROXY), carry the feeds; :class:`_GuardedTransport` connects directly."""
    proxies = getproxies()
    return bool(proxies.get("http") or proxies.get("https") or proxies.get("all"))


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = _retry_after(response) if status in (429, 503) else None
    if status == 404:
        reason = "http_404"
    elif status == 429:
        reason = "http_429"
    elif status >= 500:
        reason = "http_5xx"
    else:
        reason = "http_4xx"
    raise FetchError(reason, f"HTTP {status} {response.reason_phrase}", retry_after=retry_after)


async def _read(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, abandoned as soon as it grows past ``max_bytes`` (never downloaded).

    The raw bytes are decoded here in bounded steps (:mod:`bot.fetch.decoding`), whichever
    transport carries them, so a small body that decodes to gigabytes is cut off after
    ``max_bytes``; the raw bytes count too, as a coding can decode to nothing at all.
    """
    declared = response.headers.get("Content-Length", "")
    if _is_number(declared) and int(declared) > max_bytes:
        raise FetchError("too_large", f"Content-Length {declared} > {max_bytes} bytes")
    decoder = decoder_for(response.headers.get("Content-Encoding", ""))
    body = _DecodedBody(max_bytes)
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > max_bytes:
            raise FetchError("too_large", f"body larger than {max_bytes} bytes")
        body.extend(decoder.decode(chunk))
    body.extend(decoder.flush())
    return b"".join(body.chunks)


class _DecodedBody:
    """Decoded pieces, refused as soon as they add up to more than ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.chunks: list[bytes] = []
        self._size = 0
        self._max_bytes = max_bytes

    def extend(self, pieces: Iterable[bytes]) -> None:
        for piece in pieces:
            self._size += len(piece)
            if self._size > self._max_bytes:
                raise FetchError("too_large", f"body decodes to more than {self._max_bytes} bytes")
            self.chunks.append(piece)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date.

    Any size is returned (``inf`` past a float's range): :mod:`bot.timing` caps it.
    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if _is_number(value):
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _is_number(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes ``²``, which ``int`` refuses."""
    return value.isascii() and value.isdigit()


def _max_age(response: httpx.Response) -> float | None:
    match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
    return float(match.group(1)) if match else None


def _failure(error: Exception, timeout: float) -> FetchError:
    """The one place where what httpx and the OS raise becomes a stable reason."""
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return FetchError("timeout", f"no complete answer within {timeout:g}s")
    if isinstance(error, httpx.ConnectError):
        reason = _connect_reason(error)
        if reason == "dns":  # "Name or service not known" alone does not say which name
            return FetchError("dns", f"cannot resolve {_requested_host(error)}: {error}")
        return FetchError(reason, str(error))
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL | UnicodeError):
        return FetchError("bad_url", str(error))
    return FetchError("network", f"{type(error).__name__}: {error}")


def _requested_host(error: httpx.RequestError) -> str:
    """The host the failed request was for (after redirects, not the feed's own)."""
    try:
        return error.request.url.host
    except RuntimeError:  # raised before a request was built
        return "the feed's host"


def _connect_reason(error: httpx.ConnectError) -> str:
    """Tell DNS, TLS and refused connections apart by the OS error under httpx's."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return "tls"
        if isinstance(cause, socket.gaierror):
            return "dns"
        cause = cause.__cause__ or cause.__context__
    message = str(error).lower()
    if "ssl" in message or "certificate" in message:
        return "tls"
    if "name or service" in message or "nodename" in message or "getaddrinfo" in message:
        return "dns"
    return "refused"
