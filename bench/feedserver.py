"""A loopback feed server for benchmarks: N feeds on many loopback hosts, run in its own process.

Run by :class:`FeedServerProcess` (or ``python -m bench.feedserver --feeds 2000``),
it prints one JSON line (``{"port": …}``) when it listens. It is a bare asyncio
protocol (HTTP/1.1 keep-alive, no framework) so that it costs the machine as
little as possible, and every answer is delayed by ``--latency`` seconds with
``call_later``: a slow answer never blocks the others.

Feed ``f`` is served at ``http://127.1.X.Y:PORT/feed/f``, its host chosen among
``--hosts`` loopback addresses (feeds come from many publishers), in the format
of :func:`bench.corpus.feed_format`, with 50 items, an ``ETag`` and a
``Last-Modified``; a conditional GET that matches gets a 304.

Control, on ``http://127.0.0.1:PORT``:
``/_advance?share=0.1&seed=1&new=5&among=N`` publishes ``new`` items in that share of
the first N feeds (default all); ``/_inject?feed=F&title=T`` publishes one item titled
``T`` in feed F; ``/_stats`` counts answers; ``/_reset`` puts every feed back to its
first version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections import OrderedDict
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

from bench.corpus import (
    CONTENT_TYPES,
    T0,
    FeedItem,
    Story,
    feed_format,
    feed_items,
    make_stories,
    render,
)

FIRST_NEWEST = 100  # the first version of a feed holds items 51..100
CONTROL_HOST = "127.0.0.1"


def host_of(feed: int, hosts: int) -> str:
    h = feed % hosts
    return f"127.1.{h // 250}.{h % 250 + 1}"


def feed_url(port: int, feed: int, hosts: int) -> str:
    return f"http://{host_of(feed, hosts)}:{port}/feed/{feed}"


class Feeds:
    """What every feed currently holds; bodies are rendered on demand, a few thousand cached."""

    def __init__(self, count: int, stories: list[Story], cache: int = 3000) -> None:
        self.count = count
        self.stories = stories
        self.newest = [FIRST_NEWEST] * count
        self.version = [0] * count
        self.modified = [formatdate(T0.timestamp(), usegmt=True)] * count
        self.extra: dict[int, list[FeedItem]] = {}
        self.cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self.cache_size = cache
        self.stats = {"200": 0, "304": 0, "404": 0}

    def etag(self, feed: int) -> str:
        return f'"{feed}-{self.version[feed]}"'

    def bump(self, feed: int, new: int) -> None:
        self.newest[feed] += new
        self.version[feed] += 1
        self.modified[feed] = formatdate(time.time(), usegmt=True)

    def body(self, feed: int) -> bytes:
        key = (feed, self.version[feed])
        data = self.cache.get(key)
        if data is None:
            items = feed_items(
                self.stories, feed, self.newest[feed], extra=tuple(self.extra.get(feed, ()))
            )
            data = render(feed_format(feed), feed, items)
            self.cache[key] = data
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return data

    def advance(self, share: float, seed: int, new: int, among: int | None = None) -> int:
        """Publish ``new`` items in ``share`` of the first ``among`` feeds (default: all)."""
        among = min(among or self.count, self.count)
        rng = random.Random(seed)
        chosen = rng.sample(range(among), round(among * share))
        for feed in chosen:
            self.bump(feed, new)
        return len(chosen)

    def inject(self, feed: int, title: str) -> None:
        seq = self.newest[feed] + 1
        story = Story(title, f"<p>{title}: a probe item for the latency benchmark.</p>", "Probe")
        published = T0 + timedelta(minutes=10 * seq)
        self.extra.setdefault(feed, []).insert(0, FeedItem(10**9 + seq, story, published))
        self.bump(feed, 1)

    def reset(self) -> None:
        self.newest = [FIRST_NEWEST] * self.count
        self.version = [0] * self.count
        self.extra.clear()
        self.cache.clear()
        self.stats = {"200": 0, "304": 0, "404": 0}


class FeedProtocol(asyncio.Protocol):
    def __init__(self, feeds: Feeds, latency: float) -> None:
        self.feeds = feeds
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self.request(head.decode("latin-1"))

    def request(self, head: str) -> None:
        lines = head.split("\r\n")
        try:
            _method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self.respond(400, b"bad request", {}, close=True)
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        path = urlsplit(target).path
        if path.startswith("/feed/"):
            status, body, extra = self.feed(path, headers)
            self.loop.call_later(self.latency, self.respond, status, body, extra, close)
        else:
            status, body, extra = self.control(target)
            self.respond(status, body, extra, close)

    def feed(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        feeds = self.feeds
        try:
            feed = int(path[6:])
            if not 0 <= feed < feeds.count:
                raise ValueError
        except ValueError:
            feeds.stats["404"] += 1
            return 404, b"no such feed", {"Content-Type": "text/plain"}
        etag, modified = feeds.etag(feed), feeds.modified[feed]
        validators = {"ETag": etag, "Last-Modified": modified}
        if headers.get("if-none-match") == etag or (
            "if-none-match" not in headers and headers.get("if-modified-since") == modified
        ):
            feeds.stats["304"] += 1
            return 304, b"", validators
        feeds.stats["200"] += 1
        return (
            200,
            feeds.body(feed),
            {"Content-Type": CONTENT_TYPES[feed_format(feed)], **validators},
        )

    def control(self, target: str) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        feeds = self.feeds
        if parts.path == "/_advance":
            changed = feeds.advance(
                float(query.get("share", "0.1")),
                int(query.get("seed", "1")),
                int(query.get("new", "5")),
                int(query.get("among", "0")) or None,
            )
            answer: object = {"changed": changed}
        elif parts.path == "/_inject":
            feeds.inject(int(query["feed"]), unquote(query["title"]))
            answer = {"ok": True}
        elif parts.path == "/_stats":
            answer = feeds.stats
        elif parts.path == "/_reset":
            feeds.reset()
            answer = {"ok": True}
        else:
            return 404, b"unknown", {"Content-Type": "text/plain"}
        return 200, json.dumps(answer).encode(), {"Content-Type": "application/json"}

    def respond(self, status: int, body: bytes, headers: dict[str, str], close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "Error")
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if close:
            lines.append("Connection: close")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if close:
            self.transport.close()


async def serve(feeds: int, hosts: int, latency: float, stories: int, port: int) -> None:
    state = Feeds(feeds, make_stories(stories))
    loop = asyncio.get_running_loop()
    addresses = [CONTROL_HOST, *sorted({host_of(f, hosts) for f in range(min(feeds, hosts))})]
    server = await loop.create_server(
        lambda: FeedProtocol(state, latency),
        host=addresses,
        port=port,
        backlog=1024,
        reuse_address=True,
    )
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": bound, "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((CONTROL_HOST, 0))
        return s.getsockname()[1]


class ChildServer:
    """A server in a child process (``proc``), stopped on close or at the end of a ``with``."""

    proc: subprocess.Popen[str]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FeedServerProcess(ChildServer):
    """The server in a child process (so its CPU is not the bot's), with its control calls."""

    def __init__(
        self, feeds: int, *, hosts: int = 500, latency: float = 0.010, stories: int = 20000
    ) -> None:
        self.feeds, self.hosts = feeds, hosts
        root = Path(__file__).resolve().parent.parent
        last: Exception | None = None
        for _ in range(5):
            port = _free_port()
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.feedserver",
                    "--feeds",
                    str(feeds),
                    "--hosts",
                    str(hosts),
                    "--latency",
                    str(latency),
                    "--stories",
                    str(stories),
                    "--port",
                    str(port),
                ],
                stdout=subprocess.PIPE,
                cwd=root,
                text=True,
            )
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if line:
                self.port = json.loads(line)["port"]
                return
            self.proc.wait()
            last = RuntimeError(f"feed server did not start (exit {self.proc.returncode})")
        raise last or RuntimeError("feed server did not start")

    def url(self, feed: int) -> str:
        return feed_url(self.port, feed, self.hosts)

    def urls(self, count: int | None = None) -> list[str]:
        return [self.url(f) for f in range(self.feeds if count is None else count)]

    def call(self, path: str) -> object:
        with urllib.request.urlopen(f"http://{CONTROL_HOST}:{self.port}{path}", timeout=30) as r:
            return json.loads(r.read())

    def advance(self, share: float, seed: int, new: int = 5, among: int = 0) -> int:
        path = f"/_advance?share={share}&seed={seed}&new={new}&among={among}"
        return self.call(path)["changed"]  # type: ignore[index]

    def inject(self, feed: int, title: str) -> None:
        from urllib.parse import quote

        self.call(f"/_inject?feed={feed}&title={quote(title)}")

    def reset(self) -> None:
        self.call("/_reset")

    def stats(self) -> dict[str, int]:
        return self.call("/_stats")  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.010)
    parser.add_argument("--stories", type=int, default=20000)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.feeds, args.hosts, args.latency, args.stories, args.port))


if __name__ == "__main__":
    main()
