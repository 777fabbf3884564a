"""Text normalization and tokenization shared by matching, summaries and story keys.

``normalize`` and ``tokens`` sit on the hot path (every field of every item), so
they work on whole strings with C-level operations only; ``token_spans`` is the
slow path that also maps each token back to offsets in the original text.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from difflib import SequenceMatcher


def _mark_class(low: int, high: int) -> str:
    """A regex character class matching every combining mark (Mn, Mc, Me) in [low, high)."""
    ranges: list[list[int]] = []
    for code in range(low, high):
        if unicodedata.category(chr(code))[0] != "M":
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


# Python's re tests a class of BMP characters in constant time but a class that
# reaches past U+FFFF range by range, so astral marks get their own, rarely used, class.
_BMP_MARK = _mark_class(0x300, 0x10000)
_ANY_MARK = f"(?:{_BMP_MARK}|{_mark_class(0x10000, 0x20000)}|[\U000e0100-\U000e01ef])"
# Letters whose accents are removed: Latin, Greek and Cyrillic blocks.
_ACCENTABLE = (
    "A-Za-z\u00c0-\u024f\u1e00-\u1eff\u2c60-\u2c7f\ua720-\ua7ff\uab30-\uab6f"
    "\u0370-\u03ff\u1f00-\u1fff\u0400-\u052f\u1c80-\u1c8f\u2de0-\u2dff\ua640-\ua69f"
)
_ACCENTS = re.compile(f"([{_ACCENTABLE}]){_BMP_MARK}+")


def _token_pattern(mark: str) -> re.Pattern[str]:
    """Runs of letters, digits and marks; shaped so letters are consumed in bulk."""
    return re.compile(f"(?:[^\\W_]|{mark})[^\\W_]*(?:{mark}+[^\\W_]*)*")


_TOKEN = _token_pattern(_BMP_MARK)
_ASTRAL_TOKEN = _token_pattern(_ANY_MARK)
_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
# One combining sequence (a character and the marks attached to it), or a run of
# Hangul jamo, which compose into syllables: the units normalization keeps local.
_CHUNK = re.compile(
    "(?s)[\u1100-\u115f\ua960-\ua97f]+[\u1160-\u11a7\ud7b0-\ud7c6]*"
    "[\u11a8-\u11ff\ud7cb-\ud7fb]*"
    "|[\uac00-\ud7a3][\u11a8-\u11ff\ud7cb-\ud7fb]*"
    f"|.{_ANY_MARK}*"
)

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d\u058a\u05be"
_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u2035\u02bc\u02b9\u0060\u00b4"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u2039\u203a"
_ARABIC_MARKS = "".join(chr(c) for c in range(0x064B, 0x0660)) + "\u0670\u0640"
# Latin letters that carry an accent but do not decompose in Unicode.
_UNDECOMPOSABLE = {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "ŧ": "t", "ƀ": "b"}
_TRANSLATE = str.maketrans(
    {
        **{c: "-" for c in _DASHES},
        **{c: "'" for c in _SINGLE_QUOTES},
        **{c: '"' for c in _DOUBLE_QUOTES},
        **{c: None for c in _ARABIC_MARKS},
        **_UNDECOMPOSABLE,
    }
)


def normalize(text: str) -> str:
    """NFKC, case fold, strip Latin/Greek/Cyrillic accents and Arabic diacritics.

    The form every comparison uses, so ``Sûreté`` and ``SURETE`` are the same text.
    """
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _ACCENTS.sub(r"\1", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", text).translate(_TRANSLATE)


def tokens(text: str) -> list[str]:
    """The normalized word tokens of ``text``: runs of letters, marks and digits."""
    if text.isascii():
        return _ASCII_TOKEN.findall(text.lower())
    return _token_regex(text := normalize(text)).findall(text)


def token_text(text: str) -> str:
    """``tokens(text)`` joined by single spaces: what the matcher scans in one pass."""
    if text.isascii():
        return " ".join(_ASCII_TOKEN.findall(text.lower()))
    return " ".join(_token_regex(text := normalize(text)).findall(text))


def _token_regex(normalized: str) -> re.Pattern[str]:
    return _ASTRAL_TOKEN if normalized and max(normalized) > "\uffff" else _TOKEN


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """Each token of ``tokens(text)`` with its (start, end) offsets in ``text``.

    Normalizes one combining sequence at a time to know where each normalized
    character came from; in the rare case this differs from normalizing the whole
    string, the whole-string result wins and offsets are aligned approximately.
    """
    starts: list[int] = []  # normalized offset where each chunk's output begins
    origins: list[tuple[int, int]] = []
    pieces: list[str] = []
    position = 0
    for chunk in _CHUNK.finditer(text):
        starts.append(position)
        origins.append(chunk.span())
        piece = normalize(chunk.group())
        pieces.append(piece)
        position += len(piece)
    local = "".join(pieces)
    whole = normalize(text)

    def origin(offset: int) -> tuple[int, int]:
        return origins[bisect_right(starts, offset) - 1]

    if local == whole:
        return [
            (m.group(), origin(m.start())[0], origin(m.end() - 1)[1])
            for m in _token_regex(whole).finditer(whole)
        ]
    to_local = _alignment(whole, local)
    return [
        (m.group(), origin(to_local[m.start()])[0], origin(to_local[m.end() - 1])[1])
        for m in _token_regex(whole).finditer(whole)
    ]


def _alignment(whole: str, local: str) -> list[int]:
    """For each offset of ``whole``, the nearest corresponding offset of ``local``."""
    mapping = [0] * len(whole)
    blocks = SequenceMatcher(None, whole, local, autojunk=False).get_matching_blocks()
    last = 0
    cursor = 0
    for a, b, size in blocks:
        for offset in range(cursor, min(a, len(whole))):
            mapping[offset] = min(last, max(len(local) - 1, 0))
        for k in range(size):
            mapping[a + k] = b + k
        if size:
            last = b + size - 1
        cursor = a + size
    return mapping
