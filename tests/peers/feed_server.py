"""A loopback feed server: real HTTP, real feed files, ETag/Last-Modified, scripted faults.

Faults beyond a status code: ``redirect`` (chains and loops), ``stall`` (headers
then silence), ``endless`` (a body that never ends), ``serve_encoded``
(gzip, deflate or brotli bodies) and :func:`bomb` (a few KB that decode to GiBs).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import ssl
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate

import brotli

from tests.paths import FIXTURES
from tests.peers.httpbase import LoopbackServer, QuietHandler


@dataclass
class Route:
    """What one path answers. ``body`` None with ``status`` 200 is invalid."""

    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True
    last_modified: str = field(default_factory=lambda: formatdate(usegmt=True))
    custom: Callable[[QuietHandler], None] | None = None

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


class FeedServer(LoopbackServer):
    """Serves ``routes`` (path → Route); ``requests`` logs (method, path, headers), and
    ``clients`` the client address of each, so tests can tell connections apart."""

    def __init__(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.clients: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        super().__init__(_FeedHandler, tls, host)

    def serve(self, path: str, body: bytes | str, **kwargs: object) -> str:
        """Publish ``body`` at ``path`` (replacing what was there) and return its URL."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **kwargs)  # type: ignore[arg-type]
        return self.url + path

    def serve_file(self, path: str, fixture: str, **kwargs: object) -> str:
        return self.serve(path, (FIXTURES / fixture).read_bytes(), **kwargs)

    def serve_encoded(self, path: str, body: bytes | str, encoding: str, **kwargs: object) -> str:
        """Publish ``body`` compressed with ``encoding`` (gzip, deflate or br)."""
        data = body.encode() if isinstance(body, str) else body
        headers = {"Content-Encoding": encoding, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return self.serve(path, _COMPRESS[encoding](data), headers=headers, **kwargs)

    def redirect(self, path: str, target: str, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``target`` (a path or a URL)."""
        return self.serve(path, b"", status=status, headers={"Location": target})

    def stall(self, path: str, seconds: float, *, prefix: bytes = b"<rss>") -> str:
        """Send headers and ``prefix``, then nothing for ``seconds`` (or until closed)."""

        def handler(request: QuietHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            request.send_header("Content-Length", str(len(prefix) + 1000))
            request.end_headers()
            request.wfile.write(prefix)
            request.wfile.flush()
            self.closing.wait(seconds)

        return self.serve(path, b"", custom=handler)

    def endless(self, path: str, *, chunk: bytes = b"<item>" + b"x" * 65_530 + b"</item>") -> str:
        """A body that never ends: chunks are written until the client hangs up."""

        def handler(request: QuietHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            request.send_header("Connection", "close")
            request.end_headers()
            request.close_connection = True
            try:
                request.wfile.write(b"<rss><channel>")
                while not self.closing.is_set():
                    request.wfile.write(chunk)
            except OSError:
                return

        return self.serve(path, b"", custom=handler)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, p, _ in self.requests if p == path)


_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


_BOMB_BLOCK = 1 << 24  # bytes of zeros per repeated deflate block


@functools.cache
def bomb(encoding: str, size: int = 2 << 30) -> bytes:
    """A valid ``encoding`` (gzip, deflate or br) body that decodes to ``size`` zero bytes.

    Compressing 2 GiB would take seconds: a deflate block of zeros that ends in a full
    flush (which resets the window) is the same every time, so it is made once and
    repeated; brotli's fastest quality turns 2 GiB into ~400 KB in a fraction of that.
    """
    if encoding == "br":
        compressor = brotli.Compressor(quality=1)
        zeros = bytes(_BOMB_BLOCK)
        blocks, rest = divmod(size, _BOMB_BLOCK)
        parts = [compressor.process(zeros) for _ in range(blocks)]
        return b"".join([*parts, compressor.process(bytes(rest)), compressor.finish()])
    raw = _deflated_zeros(size)
    if encoding == "gzip":
        crc = _crc32_of_zeros(size)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        return header + raw + struct.pack("<II", crc, size & 0xFFFFFFFF)
    if encoding == "deflate":
        adler = (size % 65521) << 16 | 1  # Adler-32 of zeros: a stays 1, b adds 1 per byte
        return b"\x78\xda" + raw + struct.pack(">I", adler)
    raise ValueError(f"no bomb for {encoding!r}")


def _deflated_zeros(size: int) -> bytes:
    """A raw deflate stream of ``size`` zeros: the repeated block, then the rest."""
    blocks, rest = divmod(size, _BOMB_BLOCK)
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = block.compress(bytes(_BOMB_BLOCK)) + block.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    return repeated * blocks + tail.compress(bytes(rest)) + tail.flush()


def _crc32_of_zeros(size: int) -> int:
    zeros = bytes(_BOMB_BLOCK)
    blocks, rest = divmod(size, _BOMB_BLOCK)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    return zlib.crc32(bytes(rest), crc)


class _FeedHandler(QuietHandler):
    def handle(self) -> None:
        """Clients hanging up (aborted downloads, failed TLS handshakes) are what tests test."""
        try:
            super().handle()
        except ConnectionError:
            self.close_connection = True

    def do_GET(self) -> None:
        server: FeedServer = self.owner
        with server._lock:
            server.requests.append(("GET", self.path, dict(self.headers.items())))
            server.clients.append(self.client_address)
        route = server.routes.get(self.path)
        if route is None:
            self._send(404, b"not found", "text/plain")
            return
        if route.custom is not None:
            route.custom(self)
            return
        if route.status == 200 and route.conditional and self._unchanged(route):
            self.send_response(304)
            self.send_header("ETag", route.etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = dict(route.headers)
        if route.status == 200 and route.conditional:
            headers.setdefault("ETag", route.etag)
            headers.setdefault("Last-Modified", route.last_modified)
        self._send(route.status, route.body, route.content_type, headers)

    def _unchanged(self, route: Route) -> bool:
        """RFC 9110 §13.2.2: If-None-Match, when sent, decides alone; Last-Modified has
        one-second resolution, so two versions published within a second share it."""
        etag = self.headers.get("If-None-Match")
        if etag is not None:
            return etag == route.etag
        return self.headers.get("If-Modified-Since") == route.last_modified

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
