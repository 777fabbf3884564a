"""Fetcher against the real loopback feed server: every fault ends in its stable reason."""

from __future__ import annotations

import asyncio
import gzip
import math
import socket
import ssl
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import trustme

from bot.config.schema import Http
from bot.errors import FetchError
from bot.fetch import client
from bot.fetch.addresses import Reach, reach
from bot.fetch.client import Fetcher, FetchResult
from tests.peers.feed_server import FeedServer, bomb
from tests.peers.httpbase import QuietHandler

T = TypeVar("T")
RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def run(http: Http, work: Callable[[Fetcher], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Fetcher(http) as fetcher:
            return await work(fetcher)

    return asyncio.run(main())


def fetch(url: str, http: Http | None = None, **kwargs: str | None) -> FetchResult:
    return run(http or Http(timeout=5), lambda f: f.fetch(url, **kwargs))


def reason(url: str, http: Http | None = None) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, http)
    return caught.value


def test_fetches_body_headers_and_final_url(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed", RSS, headers={"Cache-Control": "public, max-age=300"})
    result = fetch(url)
    assert result.body == RSS
    assert not result.not_modified
    assert result.url == url
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.etag and result.last_modified
    assert result.max_age == 300.0
    assert result.elapsed > 0
    headers = feed_server.requests[-1][2]
    assert headers["User-Agent"].startswith("newswatch/")
    assert "br" in headers["Accept-Encoding"]


def test_conditional_get_by_etag_and_by_date(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed", RSS)
    first = fetch(url)
    by_etag = fetch(url, etag=first.etag)
    assert by_etag.not_modified and by_etag.body == b"" and by_etag.etag == first.etag
    by_date = fetch(url, last_modified=first.last_modified)
    assert by_date.not_modified and by_date.last_modified == first.last_modified
    assert feed_server.requests[-1][2]["If-Modified-Since"] == first.last_modified


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_bodies_are_decoded(feed_server: FeedServer, encoding: str) -> None:
    body = RSS * 100
    url = feed_server.serve_encoded("/feed", body, encoding)
    assert fetch(url).body == body


@pytest.mark.parametrize(
    ("status", "expected"),
    [(404, "http_404"), (410, "http_4xx"), (403, "http_4xx"), (500, "http_5xx"), (502, "http_5xx")],
)
def test_http_errors(feed_server: FeedServer, status: int, expected: str) -> None:
    url = feed_server.serve("/feed", b"nope", status=status, content_type="text/plain")
    assert reason(url).reason == expected


def test_retry_after_is_surfaced_on_429_and_503(feed_server: FeedServer) -> None:
    url = feed_server.serve("/a", b"", status=429, headers={"Retry-After": "120"})
    error = reason(url)
    assert (error.reason, error.retry_after) == ("http_429", 120.0)
    url = feed_server.serve(
        "/b", b"", status=503, headers={"Retry-After": "Wed, 21 Oct 2037 07:28:00 GMT"}
    )
    error = reason(url)
    assert error.reason == "http_5xx"
    assert error.retry_after is not None and error.retry_after > 86400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1000000000000", 1e12),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 0.0),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
        ("²", None),
        ("-5", None),
        ("soon", None),
    ],
)
def test_retry_after_of_any_shape_is_read_without_raising(
    feed_server: FeedServer, value: str, expected: float | None
) -> None:
    """Any size comes back as it is (bot.timing caps it); what is not a number or a date
    is ignored: ``²`` passes ``str.isdigit`` but not ``float``."""
    url = feed_server.serve("/feed", b"", status=429, headers={"Retry-After": value})
    error = reason(url)
    assert (error.reason, error.retry_after) == ("http_429", expected)


def test_retry_after_dated_in_9999_is_read_as_it_is(feed_server: FeedServer) -> None:
    url = feed_server.serve(
        "/feed", b"", status=503, headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}
    )
    before = time.time()
    error = reason(url)
    after = time.time()
    assert error.retry_after is not None
    assert 253402300799 - after <= error.retry_after <= 253402300799 - before


@pytest.mark.parametrize(
    ("value", "expected"),
    [("max-age=99999999999999", 99999999999999.0), ("max-age=" + "9" * 400, math.inf)],
)
def test_a_huge_max_age_is_read_without_raising(
    feed_server: FeedServer, value: str, expected: float
) -> None:
    url = feed_server.serve("/feed", RSS, headers={"Cache-Control": value})
    assert fetch(url).max_age == expected


def test_redirects_are_followed_to_the_final_url(feed_server: FeedServer) -> None:
    feed_server.redirect("/old", "/older", status=301)
    feed_server.redirect("/older", feed_server.url + "/feed", status=308)
    final = feed_server.serve("/feed", RSS)
    result = fetch(feed_server.url + "/old")
    assert (result.body, result.url) == (RSS, final)


def test_redirect_loop(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b")
    feed_server.redirect("/b", "/a")
    assert reason(feed_server.url + "/a").reason == "redirect_loop"
    assert feed_server.hits("/a") == 1


def test_a_redirect_to_a_url_that_does_not_parse_is_a_bad_url(feed_server: FeedServer) -> None:
    """Not an internal error: urljoin raises ValueError on ``[`` without its ``]``."""
    assert reason(feed_server.redirect("/feed", "http://[oops/")).reason == "bad_url"
    assert reason(feed_server.redirect("/idna", "http://xn--abc/")).reason == "bad_url"


def test_too_many_redirects(feed_server: FeedServer) -> None:
    for n in range(5):
        feed_server.redirect(f"/r{n}", f"/r{n + 1}")
    feed_server.serve("/r5", RSS)
    assert reason(feed_server.url + "/r0", Http(max_redirects=3)).reason == "redirect_loop"
    assert fetch(feed_server.url + "/r0", Http(max_redirects=5)).body == RSS


# ------------------------------------------------------------ redirects to internal addresses
# Everything here is loopback: 127.0.0.2 plays a public host (an injected classifier says
# so), 127.0.0.1 and localhost are what they are. The metadata address is never connected
# to: it is refused as written in the Location.

PUBLIC = "127.0.0.2"


def public_at_2(address: str) -> Reach:
    return "public" if address == PUBLIC else reach(address)


def run_as(http: Http, work: Callable[[Fetcher], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Fetcher(http, classify=public_at_2) as fetcher:
            return await work(fetcher)

    return asyncio.run(main())


def reason_as(url: str, http: Http | None = None) -> FetchError:
    with pytest.raises(FetchError) as caught:
        run_as(http or Http(timeout=5), lambda f: f.fetch(url))
    return caught.value


@pytest.fixture
def public_server() -> Iterator[FeedServer]:
    with FeedServer(host=PUBLIC) as server:
        yield server


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433"])
def test_a_public_feed_cannot_redirect_to_a_private_address(
    public_server: FeedServer, feed_server: FeedServer, host: str
) -> None:
    """``localhost`` is a name: the address connected to is what is judged."""
    feed_server.serve("/internal", RSS)
    url = public_server.redirect("/feed", f"http://{host}:{feed_server.port}/internal")
    error = reason_as(url)
    assert error.reason == "blocked_redirect"
    assert "private address" in error.detail
    assert feed_server.hits("/internal") == 0


def test_private_redirects_can_be_allowed(
    public_server: FeedServer, feed_server: FeedServer
) -> None:
    internal = feed_server.serve("/internal", RSS)
    url = public_server.redirect("/feed", internal)
    result = run_as(Http(timeout=5, allow_private_redirects=True), lambda f: f.fetch(url))
    assert (result.body, result.url) == (RSS, internal)


def test_a_private_feed_may_redirect_anywhere(
    public_server: FeedServer, feed_server: FeedServer
) -> None:
    """A feed configured on an internal host is the operator's choice, and so are its moves."""
    inside = feed_server.serve("/inside", RSS)
    public_server.redirect("/hop", inside)
    url = feed_server.redirect("/start", public_server.url + "/hop")
    result = run_as(Http(timeout=5), lambda f: f.fetch(url))
    assert (result.body, result.url) == (RSS, inside)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_kept_connection_is_judged_again_for_each_request(
    public_server: FeedServer, feed_server: FeedServer, host: str
) -> None:
    """The internal host was fetched directly first: its idle connection is not a way in,
    and ``localhost`` (no address to judge in the URL) is judged by the connection's peer."""
    feed_server.serve("/internal", RSS)
    internal = f"http://{host}:{feed_server.port}/internal"
    url = public_server.redirect("/feed", internal)

    async def work(fetcher: Fetcher) -> FetchError:
        assert (await fetcher.fetch(internal)).body == RSS
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(url)
        return caught.value

    assert run_as(Http(timeout=5), work).reason == "blocked_redirect"
    assert feed_server.hits("/internal") == 1
    assert len(feed_server.clients) == 1


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/computeMetadata/v1/",
        "http://0xa9.0xfe.0xa9.0xfe/",
    ],
)
def test_cloud_metadata_is_never_reached(feed_server: FeedServer, target: str) -> None:
    """Even from a private feed, and even with private redirects allowed."""
    url = feed_server.redirect("/feed", target)
    error = reason(url, Http(timeout=5, allow_private_redirects=True))
    assert error.reason == "blocked_redirect"
    assert "metadata" in error.detail


def test_a_configured_metadata_url_is_refused() -> None:
    error = reason("http://169.254.169.254/latest/meta-data/")
    assert (error.reason, error.detail) == (
        "bad_url",
        "169.254.169.254 is a cloud metadata address",
    )


def test_behind_a_proxy_addresses_written_in_urls_are_judged(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy resolves names itself; the redirects below name addresses outright."""
    feed_server.redirect("http://feeds.invalid/internal", "http://127.0.0.1:6379/")
    feed_server.redirect("http://feeds.invalid/metadata", "http://169.254.169.254/")
    monkeypatch.setenv("HTTP_PROXY", feed_server.url)
    assert reason("http://feeds.invalid/internal").reason == "blocked_redirect"
    assert reason("http://feeds.invalid/metadata").reason == "blocked_redirect"
    assert [p for _, p, _ in feed_server.requests] == [
        "http://feeds.invalid/internal",
        "http://feeds.invalid/metadata",
    ]


def test_declared_huge_body_is_refused_unread(feed_server: FeedServer) -> None:
    url = feed_server.serve("/big", b"x" * 2_000_000)
    error = reason(url, Http(max_bytes=1_000_000, timeout=5))
    assert error.reason == "too_large"


def test_endless_body_is_cut_off(feed_server: FeedServer) -> None:
    url = feed_server.endless("/endless")
    started = time.monotonic()
    assert reason(url, Http(max_bytes=1_000_000, timeout=10)).reason == "too_large"
    assert time.monotonic() - started < 5


def test_compressed_body_is_limited_after_decoding(feed_server: FeedServer) -> None:
    url = feed_server.serve_encoded("/bomb", b"\0" * 5_000_000, "gzip")
    assert reason(url, Http(max_bytes=1_000_000)).reason == "too_large"


def peak_memory(work: Callable[[], T]) -> tuple[T, int]:
    """What ``work`` returns, and the most memory Python held at once while it ran (bytes)."""
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


BOUNDED = 64 << 20  # far above max_bytes (4 MB) and far below a 2 GiB bomb


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_decompression_bomb_is_cut_off_in_bounded_memory(
    feed_server: FeedServer, encoding: str
) -> None:
    """2 GiB of zeros in 2 MB of gzip or deflate, 400 KB of brotli: decoding stops at max_bytes."""
    url = feed_server.serve("/bomb", bomb(encoding), headers={"Content-Encoding": encoding})
    error, peak = peak_memory(lambda: reason(url, Http(max_bytes=4_000_000, timeout=20)))
    assert error.reason == "too_large"
    assert peak < BOUNDED


def test_stacked_codings_are_refused_undecoded(feed_server: FeedServer) -> None:
    """gzip inside gzip: a 2 GiB bomb in a few KB; no feed needs two layers."""
    nested = gzip.compress(bomb("gzip"))
    url = feed_server.serve("/bomb", nested, headers={"Content-Encoding": "gzip, gzip"})
    error, peak = peak_memory(lambda: reason(url, Http(max_bytes=4_000_000, timeout=20)))
    assert error.reason == "bad_encoding"
    assert peak < BOUNDED


def test_codings_in_repeated_headers_are_stacked_too(feed_server: FeedServer) -> None:
    body = gzip.compress(gzip.compress(RSS))

    def twice(request: QuietHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    assert reason(feed_server.serve("/twice", b"", custom=twice)).reason == "bad_encoding"


@pytest.mark.parametrize("coding", ["compress", "zstd", "x-bomb", "gzip, br"])
def test_unknown_codings_are_refused(feed_server: FeedServer, coding: str) -> None:
    url = feed_server.serve("/odd", RSS, headers={"Content-Encoding": coding})
    error = reason(url)
    assert error.reason == "bad_encoding"
    assert coding.split(",")[0] in error.detail


@pytest.mark.parametrize(
    ("header", "encoding"), [("identity", None), ("x-gzip", "gzip"), ("identity, GZIP", "gzip")]
)
def test_identity_and_aliases_are_one_layer(
    feed_server: FeedServer, header: str, encoding: str | None
) -> None:
    body = RSS * 10
    url = (
        feed_server.serve_encoded("/feed", body, encoding, headers={"Content-Encoding": header})
        if encoding
        else feed_server.serve("/feed", body, headers={"Content-Encoding": header})
    )
    assert fetch(url).body == body


def test_raw_deflate_is_decoded(feed_server: FeedServer) -> None:
    """Some servers send ``deflate`` without its zlib wrapper."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = compressor.compress(RSS * 10) + compressor.flush()
    url = feed_server.serve("/feed", raw, headers={"Content-Encoding": "deflate"})
    assert fetch(url).body == RSS * 10


def test_a_corrupt_compressed_body_is_malformed(feed_server: FeedServer) -> None:
    url = feed_server.serve(
        "/feed", b"\x1f\x8b\x08garbage" * 10, headers={"Content-Encoding": "gzip"}
    )
    assert reason(url).reason == "malformed"


@pytest.mark.parametrize(
    ("encoding", "expected"), [("br", "too_large"), ("gzip, gzip", "bad_encoding")]
)
def test_bombs_through_a_proxy_are_cut_off_as_well(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, encoding: str, expected: str
) -> None:
    """Behind a proxy httpx's own transport carries the body: the same decoder reads it."""
    url = "http://feeds.invalid/bomb"
    body = bomb("br") if encoding == "br" else gzip.compress(bomb("gzip"))
    feed_server.serve(url, body, headers={"Content-Encoding": encoding})
    monkeypatch.setenv("HTTP_PROXY", feed_server.url)
    error, peak = peak_memory(lambda: reason(url, Http(max_bytes=4_000_000, timeout=20)))
    assert error.reason == expected
    assert peak < BOUNDED
    assert feed_server.requests[-1][1] == url


def test_stalled_body_ends_at_the_deadline(feed_server: FeedServer) -> None:
    url = feed_server.stall("/stall", 30)
    started = time.monotonic()
    assert reason(url, Http(timeout=0.5)).reason == "timeout"
    assert time.monotonic() - started < 3


def test_refused_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert reason(f"http://127.0.0.1:{port}/feed").reason == "refused"


def test_unknown_host_is_dns() -> None:
    assert reason("http://newswatch-test.invalid/feed", Http(timeout=10)).reason in (
        "dns",
        "timeout",
    )


def test_tls_failure(feed_server: FeedServer) -> None:
    """An https URL answered by a plain-HTTP server fails the handshake."""
    assert reason(f"https://127.0.0.1:{feed_server.port}/feed").reason == "tls"


def test_bad_url() -> None:
    assert reason("ftp://example.org/feed").reason == "bad_url"


def test_a_stalled_feed_does_not_slow_the_others(feed_server: FeedServer) -> None:
    stalled = feed_server.stall("/stall", 30)
    good = [feed_server.serve(f"/feed{n}", RSS) for n in range(20)]

    async def work(fetcher: Fetcher) -> tuple[list[object], float]:
        slow = asyncio.create_task(fetcher.fetch(stalled))
        started = time.monotonic()
        results = await asyncio.gather(*(fetcher.fetch(u) for u in good), return_exceptions=True)
        took = time.monotonic() - started
        with pytest.raises(FetchError):
            await slow
        return results, took

    results, took = run(Http(timeout=2, concurrency=4, per_host=8), work)
    assert all(isinstance(r, FetchResult) and r.body == RSS for r in results)
    assert took < 1.5


def test_per_host_limit_bounds_concurrent_requests(feed_server: FeedServer) -> None:
    urls = [feed_server.stall(f"/s{n}", 0.3, prefix=b"") for n in range(6)]

    async def work(fetcher: Fetcher) -> list[object]:
        return await asyncio.gather(*(fetcher.fetch(u) for u in urls), return_exceptions=True)

    started = time.monotonic()
    results = run(Http(timeout=0.2, per_host=2, concurrency=50), work)
    took = time.monotonic() - started
    assert all(isinstance(r, FetchError) and r.reason == "timeout" for r in results)
    assert took >= 0.55  # three rounds of two, each ending at its own deadline


# ------------------------------------------------------------ connections


def test_fetches_from_one_host_share_a_connection(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed", RSS)

    async def work(fetcher: Fetcher) -> list[FetchResult]:
        first = await fetcher.fetch(url)
        unchanged = await fetcher.fetch(url, etag=first.etag)  # a 304 keeps it reusable too
        return [first, unchanged, await fetcher.fetch(url)]

    first, unchanged, again = run(Http(timeout=5), work)
    assert first.body == again.body == RSS and unchanged.not_modified
    assert len(feed_server.clients) == 3
    assert len(set(feed_server.clients)) == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced(feed_server: FeedServer) -> None:
    """A server may close an idle connection just as it is reused: the GET goes again, once."""

    def hang_up_after_one(request: QuietHandler) -> None:
        served = getattr(request, "served", 0)
        request.served = served + 1  # type: ignore[attr-defined] -- one handler per connection
        if served:
            request.close_connection = True  # read the request, close without an answer
            return
        request.send_response(200)
        request.send_header("Content-Length", str(len(RSS)))
        request.end_headers()
        request.wfile.write(RSS)

    url = feed_server.serve("/feed", b"", custom=hang_up_after_one)

    async def work(fetcher: Fetcher) -> list[FetchResult]:
        return [await fetcher.fetch(url), await fetcher.fetch(url)]

    assert [r.body for r in run(Http(timeout=5), work)] == [RSS, RSS]
    assert len(feed_server.clients) == 3
    assert len(set(feed_server.clients)) == 2


def test_a_server_that_never_answers_is_a_network_failure(feed_server: FeedServer) -> None:
    def hang_up(request: QuietHandler) -> None:
        request.close_connection = True

    url = feed_server.serve("/feed", b"", custom=hang_up)
    assert reason(url).reason == "network"


def test_chunked_and_close_delimited_bodies(feed_server: FeedServer) -> None:
    def chunked(request: QuietHandler) -> None:
        request.send_response(200)
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        for part in (RSS[:10], RSS[10:]):
            request.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        request.wfile.write(b"0\r\n\r\n")

    def until_close(request: QuietHandler) -> None:
        request.send_response(200)
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(RSS)
        request.close_connection = True

    assert fetch(feed_server.serve("/chunked", b"", custom=chunked)).body == RSS
    assert fetch(feed_server.serve("/close", b"", custom=until_close)).body == RSS


def test_https_is_verified_against_the_trust_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SSL_CERT_FILE names the trust store (as for httpx); a verified connection is reused."""
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with FeedServer(tls=tls) as server:
        url = server.serve("/feed", RSS)

        async def work(fetcher: Fetcher) -> list[FetchResult]:
            return [await fetcher.fetch(url), await fetcher.fetch(url)]

        assert [r.body for r in run(Http(timeout=5), work)] == [RSS, RSS]
        assert len(set(server.clients)) == 1
        monkeypatch.delenv("SSL_CERT_FILE")
        assert reason(url).reason == "tls"  # the test CA is in no default trust store


@pytest.mark.parametrize(
    ("max_idle", "keepalive", "connections"),
    [(3, 30.0, 3), (2, 30.0, None), (3, 0.0, 6)],
)
def test_idle_connections_are_bounded_in_all_and_expire(
    monkeypatch: pytest.MonkeyPatch, max_idle: int, keepalive: float, connections: int | None
) -> None:
    """Idle connections are open files: at most ``_MAX_IDLE``, none past ``_KEEPALIVE``.
    Three hosts fetched twice: all kept (3 connections), some dropped past the bound
    (more than 3: which ones is the pool's choice), or all expired (6)."""
    monkeypatch.setattr(client, "_MAX_IDLE", max_idle)
    monkeypatch.setattr(client, "_KEEPALIVE", keepalive)
    servers = [FeedServer() for _ in range(3)]
    urls = [server.serve("/feed", RSS) for server in servers]

    async def work(fetcher: Fetcher) -> list[bytes]:
        return [(await fetcher.fetch(url)).body for url in [*urls, *urls]]

    try:
        assert run(Http(timeout=5), work) == [RSS] * 6
        opened = sum(len(set(server.clients)) for server in servers)
    finally:
        for server in servers:
            server.close()
    if connections is None:
        assert opened > 3
    else:
        assert opened == connections


def test_a_proxy_named_in_the_environment_carries_the_feeds(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed server plays the proxy: it answers the absolute-form request for a host
    that does not resolve, so the body can only have come through it."""
    url = "http://feeds.invalid/feed"
    feed_server.serve(url, RSS)
    monkeypatch.setenv("HTTP_PROXY", feed_server.url)
    assert fetch(url).body == RSS
    assert feed_server.requests[-1][1] == url


def _answer(request: QuietHandler, extra: bytes = b"") -> None:
    """A 200 with RSS, followed in the same write by ``extra`` bytes."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(RSS)
    request.wfile.write(head + RSS + extra)


def test_an_idle_connection_that_spoke_unasked_is_not_reused(feed_server: FeedServer) -> None:
    """Some servers send a 408 on an idle connection before closing it: that is no answer."""

    def then_408(request: QuietHandler) -> None:
        _answer(request, b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        request.close_connection = True

    url = feed_server.serve("/feed", b"", custom=then_408)

    async def work(fetcher: Fetcher) -> list[FetchResult]:
        return [await fetcher.fetch(url), await fetcher.fetch(url)]

    assert [r.body for r in run(Http(timeout=5), work)] == [RSS, RSS]
    assert len(set(feed_server.clients)) == 2


def test_an_answer_read_before_the_request_was_sent_is_not_taken_for_one(
    feed_server: FeedServer,
) -> None:
    """The 408 arrives with the first answer and the server keeps the connection open: no
    closing to notice, the bytes are already read. What a kept connection answered before
    it was asked is no answer; the GET goes again on a new connection."""

    def with_408(request: QuietHandler) -> None:
        _answer(request, b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")

    url = feed_server.serve("/feed", b"", custom=with_408)

    async def work(fetcher: Fetcher) -> list[FetchResult]:
        return [await fetcher.fetch(url), await fetcher.fetch(url)]

    assert [r.body for r in run(Http(timeout=5), work)] == [RSS, RSS]
    assert len(set(feed_server.clients)) == 2


def test_a_garbled_answer_on_a_reused_connection_is_not_sent_again(
    feed_server: FeedServer,
) -> None:
    """Only a connection that closed before any byte of an answer is retried."""

    def garbled_second(request: QuietHandler) -> None:
        served = getattr(request, "served", 0)
        request.served = served + 1  # type: ignore[attr-defined] -- one handler per connection
        if served:
            request.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            request.close_connection = True
        else:
            _answer(request)

    url = feed_server.serve("/feed", b"", custom=garbled_second)

    async def work(fetcher: Fetcher) -> FetchError:
        await fetcher.fetch(url)
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(url)
        return caught.value

    assert run(Http(timeout=5), work).reason == "network"
    assert len(feed_server.clients) == 2


def test_a_host_name_idna_refuses_is_a_dns_failure() -> None:
    assert reason(f"http://{'a' * 64}.example/feed").reason == "dns"
    failure = reason("http://a..b.example/feed")
    assert (failure.reason, failure.detail.startswith("cannot resolve a..b.example: ")) == (
        "dns",
        True,
    ), failure.detail
