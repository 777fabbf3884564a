"""Content-Encoding decoders whose output per step is bounded, so a bomb cannot blow up memory.

A few KB of brotli or nested gzip decode to gigabytes. httpx decodes each received
chunk whole before anyone can count it, so the fetcher reads the raw bytes and
decodes them here instead: each step yields at most about :data:`STEP` bytes
(zlib's ``max_length``, brotli's ``output_buffer_limit``) and the caller stops
as soon as the total passes its limit. One coding layer at most is accepted
(``identity`` aside): nobody compresses a feed twice except to attack.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

from bot.errors import FetchError

STEP = 65536
"""Decoded bytes asked for per step; brotli may overshoot it by its last block (< 64 KiB)."""

_GZIP = zlib.MAX_WBITS | 16
_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 §8.4.1.3


class Decoder(Protocol):
    """Turns received bytes into decoded pieces of bounded size."""

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The pieces ``data`` decodes to, so far."""
        ...

    def flush(self) -> Iterator[bytes]:
        """What is left once the body has ended."""
        ...


def decoder_for(content_encoding: str) -> Decoder:
    """The decoder for a ``Content-Encoding`` header (values of repeated headers joined by
    commas); unknown and stacked codings raise ``FetchError("bad_encoding")``."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [_ALIASES.get(c, c) for c in codings if c and c != "identity"]
    if len(codings) > 1:
        raise FetchError("bad_encoding", f"stacked content codings: {content_encoding.strip()}")
    if not codings:
        return _Identity()
    if codings[0] == "gzip":
        return _Zlib(_GZIP)
    if codings[0] == "deflate":
        return _Deflate()
    if codings[0] == "br":
        return _Brotli()
    raise FetchError("bad_encoding", f"unknown content coding: {codings[0][:40]}")


class _Identity:
    def decode(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Zlib:
    """gzip or zlib-wrapped deflate; bytes after the end of the stream are ignored (as httpx)."""

    def __init__(self, wbits: int) -> None:
        self._inflate = zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> Iterator[bytes]:
        inflate = self._inflate
        try:
            while data and not inflate.eof:
                piece = inflate.decompress(data, STEP)
                if piece:
                    yield piece
                data = inflate.unconsumed_tail
        except zlib.error as error:
            raise FetchError("malformed", f"content encoding: {error}") from error

    def flush(self) -> Iterator[bytes]:
        # All input is consumed: what remains is at most the tail of one back-reference.
        try:
            piece = self._inflate.flush()
        except zlib.error as error:
            raise FetchError("malformed", f"content encoding: {error}") from error
        if piece:
            yield piece


class _Deflate:
    """``deflate`` is meant to be zlib-wrapped (RFC 9110), but some servers send it raw:
    the first two bytes tell which, as a zlib header is a multiple of 31."""

    def __init__(self) -> None:
        self._head = b""
        self._inner: _Zlib | None = None

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inner is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._inner = _Zlib(zlib.MAX_WBITS if _zlib_header(data) else -zlib.MAX_WBITS)
        yield from self._inner.decode(data)

    def flush(self) -> Iterator[bytes]:
        if self._inner is None and self._head:
            raise FetchError("malformed", "content encoding: deflate body of one byte")
        if self._inner is not None:
            yield from self._inner.flush()


def _zlib_header(data: bytes) -> bool:
    return data[0] & 0x0F == zlib.DEFLATED and (data[0] << 8 | data[1]) % 31 == 0


class _Brotli:
    """brotli >= 1.2 bounds each call's output; what it holds back comes with empty input."""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        decompressor = self._decompressor
        try:
            piece = decompressor.process(data, output_buffer_limit=STEP)
            while True:
                if piece:
                    yield piece
                elif decompressor.can_accept_more_data():
                    return
                piece = decompressor.process(b"", output_buffer_limit=STEP)
        except brotli.error as error:
            raise FetchError("malformed", f"content encoding: brotli: {error}") from error

    def flush(self) -> Iterator[bytes]:
        return iter(())
