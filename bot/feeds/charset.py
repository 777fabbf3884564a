"""Guess the encoding of feed bytes that neither UTF-8 nor their declaration reads well.

The only module that imports charset-normalizer. :mod:`bot.feeds.parse` asks it only
when the usual reading (declared or windows-1252) fails or looks like mojibake, so
valid UTF-8 (almost every feed) never pays for detection.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes


def detect(body: bytes, usual: str) -> str | None:
    """The encoding charset-normalizer reads ``body`` in, when it reads it better than
    ``usual`` (a Python codec name): a guess no less chaotic than the usual reading is
    no reason to change it. ``None`` when there is no better guess."""
    best = from_bytes(body).best()
    if best is None:
        return None
    guess = codecs.lookup(best.encoding).name
    if guess == codecs.lookup(usual).name:
        return None
    usual_reading = from_bytes(body, cp_isolation=[usual]).best()
    if usual_reading is not None and usual_reading.chaos <= best.chaos:
        return None
    return guess
