"""Content decoders: exact round trips however the body is cut, pieces of bounded size."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from itertools import pairwise

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import FetchError
from bot.fetch.decoding import STEP, decoder_for


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": _raw_deflate,
    "br": brotli.compress,
    "identity": bytes,
}


def decode_in(header: str, body: bytes, cuts: list[int]) -> list[bytes]:
    """The pieces ``body`` decodes to when it arrives cut at ``cuts``."""
    decoder = decoder_for(header)
    bounds = [0, *sorted({c % (len(body) + 1) for c in cuts}), len(body)]
    pieces = [p for a, b in pairwise(bounds) for p in decoder.decode(body[a:b])]
    return pieces + list(decoder.flush())


@settings(max_examples=60, deadline=None)
@given(
    encoding=st.sampled_from(sorted(ENCODERS)),
    data=st.binary(max_size=3000).map(lambda b: b * 50),
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_any_cut_of_the_body_decodes_to_the_original(
    encoding: str, data: bytes, cuts: list[int]
) -> None:
    header = "deflate" if encoding == "raw-deflate" else encoding
    assert b"".join(decode_in(header, ENCODERS[encoding](data), cuts)) == data


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_each_piece_is_bounded_however_much_one_chunk_expands(encoding: str) -> None:
    """64 MiB of zeros in one received chunk come out in steps, never whole."""
    data = bytes(64 << 20)
    # Brotli's quality 5 packs the zeros as small as its default 11 (~100 bytes), 25x faster.
    body = brotli.compress(data, quality=5) if encoding == "br" else ENCODERS[encoding](data)
    pieces = decode_in(encoding, body, [])
    assert sum(map(len, pieces)) == len(data)
    assert max(map(len, pieces)) <= 2 * STEP  # brotli may overshoot by less than a block


def test_deflate_cut_inside_its_header_is_still_recognised() -> None:
    data = b"<rss>" * 200
    for body in (zlib.compress(data), _raw_deflate(data)):
        assert b"".join(decode_in("deflate", body, list(range(1, 10)))) == data


@pytest.mark.parametrize(
    "header", ["gzip, gzip", "br, gzip", "gzip,deflate", "deflate, identity, br"]
)
def test_stacked_codings_are_refused(header: str) -> None:
    with pytest.raises(FetchError) as caught:
        decoder_for(header)
    assert caught.value.reason == "bad_encoding"
    assert "stacked" in caught.value.detail


@pytest.mark.parametrize("header", ["compress", "zstd", "x-compress", "gzip;q=1", "b" * 500])
def test_unknown_codings_are_refused_with_a_short_detail(header: str) -> None:
    with pytest.raises(FetchError) as caught:
        decoder_for(header)
    assert caught.value.reason == "bad_encoding"
    assert len(caught.value.detail) < 80


@pytest.mark.parametrize("header", ["", "identity", " Identity ", ", ,"])
def test_no_coding_passes_bytes_through(header: str) -> None:
    assert decode_in(header, b"<rss/>", [3]) == [b"<rss/>"[:3], b"<rss/>"[3:]]


@pytest.mark.parametrize(
    ("header", "body"),
    [
        ("gzip", b"\x1f\x8b\x08not gzip at all"),
        ("deflate", b"\x78\x9cnot deflate"),
        ("br", b"\xff\xff\xff\xff not brotli"),
        ("deflate", b"x"),
    ],
)
def test_corrupt_bodies_are_malformed(header: str, body: bytes) -> None:
    with pytest.raises(FetchError) as caught:
        decode_in(header, body, [])
    assert caught.value.reason == "malformed"
