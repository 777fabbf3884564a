"""A loopback feed server: real HTTP, real feed files, ETag/Last-Modified, scripted faults."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from tests.peers.httpbase import LoopbackServer, QuietHandler

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"


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
    """Serves ``routes`` (path → Route); ``requests`` logs (method, path, headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        super().__init__(_FeedHandler)

    def serve(self, path: str, body: bytes | str, **kwargs: object) -> str:
        """Publish ``body`` at ``path`` (replacing what was there) and return its URL."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **kwargs)  # type: ignore[arg-type]
        return self.url + path

    def serve_file(self, path: str, fixture: str, **kwargs: object) -> str:
        return self.serve(path, (FIXTURES / fixture).read_bytes(), **kwargs)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, p, _ in self.requests if p == path)


class _FeedHandler(QuietHandler):
    def do_GET(self) -> None:
        server: FeedServer = self.owner
        with server._lock:
            server.requests.append(("GET", self.path, dict(self.headers.items())))
        route = server.routes.get(self.path)
        if route is None:
            self._send(404, b"not found", "text/plain")
            return
        if route.custom is not None:
            route.custom(self)
            return
        if route.status == 200 and route.conditional and (
            self.headers.get("If-None-Match") == route.etag
            or self.headers.get("If-Modified-Since") == route.last_modified
        ):
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
