"""An HTTPS feed server for the realistic benchmark: the real corpus from 500 hosts, in a child.

Run by :class:`TlsFeedServer` (or ``python -m bench.tlsfeeds --corpus DIR --ca FILE``),
it prints one JSON line (``{"port": …}``) when it listens. Each of ``--hosts``
loopback addresses (``127.1.X.Y``, as :func:`bench.feedserver.host_of`) has its
own listening socket and its own certificate (that one IP address as its
subject alternative name, ECDSA P-256 by default, as most sites now serve),
issued by an intermediate CA under a test root (trustme): the client verifies a
three-link chain, as it does on the internet. The root is written to ``--ca``.

Document ``d`` of the corpus (sorted by file name) is at ``/feed/d`` on every
host. Every answer says ``Connection: close`` and the server closes after it: a
feed polled every few minutes never finds its connection still open, so each
poll pays for a new TCP connection and a TLS handshake. With ``--keepalive S``
the server keeps each connection open until it has been idle S seconds, as most
servers do: the client then holds idle connections, as it does in production
(where they expire long before the feed's next poll). Headers are what feed
servers send: ``Date``, ``Server``, a ``Content-Type`` by format (with the
document's declared charset, if any), ``ETag``, ``Last-Modified``,
``Cache-Control``, ``Vary``, a few CDN headers; a matching ``If-None-Match`` gets
a 304. Six documents in ten are gzip-compressed when the client accepts it, and
one in four is sent chunked (a dynamic page without ``Content-Length``).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from bench.feedserver import ChildServer, host_of

_DECLARED = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_CHUNK = 8192
_SKIP = {".md", ".tsv"}


def corpus_files(folder: Path) -> list[Path]:
    """The feed documents of the corpus folder, sorted by name (provenance notes left out)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in _SKIP)


def content_type(body: bytes) -> str:
    """The media type a feed server would send for ``body``, with its declared charset."""
    head = body[:2000].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return "application/feed+json; charset=utf-8"
    declared = _DECLARED.search(head)
    charset = f"; charset={declared.group(1).decode('ascii')}" if declared else ""
    if b"<feed" in head:
        return "application/atom+xml" + charset
    if b"<rdf:RDF" in head or b"<RDF" in head:
        return "application/rdf+xml" + charset
    return "application/rss+xml" + charset


@dataclass(frozen=True)
class Document:
    index: int
    body: bytes
    gzipped: bytes | None
    chunked: bool
    content_type: str
    etag: str
    last_modified: str

    @classmethod
    def of(cls, index: int, body: bytes) -> Document:
        digest = hashlib.sha1(body).hexdigest()
        return cls(
            index=index,
            body=body,
            gzipped=gzip.compress(body, 6) if int(digest[:4], 16) % 10 < 6 else None,
            chunked=index % 4 == 3,
            content_type=content_type(body),
            etag=f'W/"{digest[:20]}"' if index % 3 == 0 else f'"{digest[:16]}"',
            last_modified=formatdate(1_700_000_000 + index * 3600, usegmt=True),
        )


def _answer(document: Document, headers: dict[str, str], close: bool) -> bytes:
    validators = [f"ETag: {document.etag}", f"Last-Modified: {document.last_modified}"]
    common = [
        f"Date: {formatdate(usegmt=True)}",
        "Server: nginx",
        "Cache-Control: public, max-age=300",
        "Vary: Accept-Encoding",
        "X-Cache: HIT",
        "Age: 42",
        "Strict-Transport-Security: max-age=31536000",
        *(["Connection: close"] if close else []),
    ]
    if headers.get("if-none-match") == document.etag:
        head = ["HTTP/1.1 304 Not Modified", *common, *validators]
        return ("\r\n".join(head) + "\r\n\r\n").encode()
    body, extra = document.body, []
    if document.gzipped is not None and "gzip" in headers.get("accept-encoding", ""):
        body, extra = document.gzipped, ["Content-Encoding: gzip"]
    if document.chunked:
        framed = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + _CHUNK]), body[i : i + _CHUNK])
            for i in range(0, len(body), _CHUNK)
        )
        body, extra = framed + b"0\r\n\r\n", [*extra, "Transfer-Encoding: chunked"]
    else:
        extra.append(f"Content-Length: {len(body)}")
    lines = [
        "HTTP/1.1 200 OK",
        *common,
        f"Content-Type: {document.content_type}",
        *validators,
        "Accept-Ranges: bytes",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Protocol(asyncio.Protocol):
    """One connection: closed after its answer, or kept until ``keepalive`` seconds idle."""

    def __init__(self, documents: list[Document], keepalive: float) -> None:
        self.documents = documents
        self.keepalive = keepalive
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.idle is not None:
            self.idle.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.transport is None:
            return
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        if self.idle is not None:
            self.idle.cancel()
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts = lines[0].split(" ")
        close = self.keepalive <= 0
        try:
            document = self.documents[int(parts[1].removeprefix("/feed/"))]
        except (IndexError, ValueError):
            answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            close = True
        else:
            answer = _answer(document, headers, close)
        self.transport.write(answer)
        if close:
            self.transport.close()
        else:
            loop = asyncio.get_running_loop()
            self.idle = loop.call_later(self.keepalive, self.transport.close)


async def serve(
    corpus: Path, hosts: int, port: int, ca_path: Path, key: str, keepalive: float
) -> None:
    import trustme

    key_type = trustme.KeyType.RSA if key == "rsa" else trustme.KeyType.ECDSA
    root = trustme.CA(key_type=key_type)
    intermediate = root.create_child_ca(key_type=key_type)
    root.cert_pem.write_to_path(str(ca_path))
    documents = [Document.of(i, p.read_bytes()) for i, p in enumerate(corpus_files(corpus))]
    loop = asyncio.get_running_loop()
    servers = []
    for h in range(hosts):
        address = host_of(h, hosts)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        intermediate.issue_cert(address, key_type=key_type).configure_cert(tls)
        server = await loop.create_server(
            lambda: _Protocol(documents, keepalive), host=address, port=port, ssl=tls, backlog=512
        )
        port = server.sockets[0].getsockname()[1]
        servers.append(server)
    print(json.dumps({"port": port, "pid": os.getpid(), "documents": len(documents)}), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


class TlsFeedServer(ChildServer):
    """The server in a child process, so its CPU is not counted as the bot's."""

    def __init__(
        self,
        corpus: Path,
        ca_path: Path,
        *,
        hosts: int = 500,
        key: str = "ecdsa",
        keepalive: float = 0.0,
    ) -> None:
        self.hosts = hosts
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.tlsfeeds",
                "--corpus",
                str(corpus),
                "--ca",
                str(ca_path),
                "--hosts",
                str(hosts),
                "--key",
                key,
                "--keepalive",
                str(keepalive),
            ],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.wait()
            raise RuntimeError(f"TLS feed server did not start (exit {self.proc.returncode})")
        started = json.loads(line)
        self.port: int = started["port"]
        self.documents: int = started["documents"]

    def url(self, host: int, document: int) -> str:
        return f"https://{host_of(host, self.hosts)}:{self.port}/feed/{document}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="where to write the root CA (PEM)")
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", choices=("ecdsa", "rsa"), default="ecdsa")
    parser.add_argument(
        "--keepalive", type=float, default=0.0, help="idle seconds a connection is kept (0: close)"
    )
    args = parser.parse_args()
    asyncio.run(serve(args.corpus, args.hosts, args.port, args.ca, args.key, args.keepalive))


if __name__ == "__main__":
    main()
