"""Text normalization and tokenization shared by matching, summaries and story keys.

``normalize`` and ``tokens`` sit on the hot path (every field of every item), so
they work on whole strings with C-level operations only; ``token_spans`` is the
slow path that also maps each token back to offsets in the original text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right


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


_NEEDS_TRANSLATE = re.compile(
    "[" + re.escape(_DASHES + _SINGLE_QUOTES + _DOUBLE_QUOTES + "".join(_UNDECOMPOSABLE)) + "]"
    f"|[{_ARABIC_MARKS}]"
)


def normalize(text: str) -> str:
    """NFKC, case fold, strip Latin/Greek/Cyrillic accents and Arabic diacritics.

    The form every comparison uses, so ``Sûreté`` and ``SURETE`` are the same text.
    """
    if text.isascii():
        return text.lower()
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = _ACCENTS.sub(r"\1", unicodedata.normalize("NFD", text.casefold()))
    text = unicodedata.normalize("NFC", text)
    return text.translate(_TRANSLATE) if _NEEDS_TRANSLATE.search(text) else text


# Tokenizing works on UTF-8 bytes: ASCII punctuation becomes a space in one
# ``bytes.translate``, and ASCII words are final once lower-cased. Of the other
# words (runs between ASCII spaces and punctuation), those made of "plain"
# letters only need case folding; the rest go through full normalization, one
# cached word at a time. The result is the tokens of ``normalize(text)``, up to
# exotic cases where normalization would combine across ASCII punctuation
# ("=" + U+0338 is "≠").
_ASCII_SEPARATORS = bytes(b if b >= 0x80 or chr(b).isalnum() else 0x20 for b in range(256))
_ASCII_SEPARATOR = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
_UTF8 = ("utf-8", "surrogatepass")
_HANGUL_JAMO = re.compile("[\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff\u3130-\u318f]")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


def _is_plain(char: str) -> bool:
    """A letter or digit that normalization leaves alone, and that composes with nothing."""
    return (
        _LETTER_OR_DIGIT.match(char) is not None
        and not unicodedata.decomposition(char)
        and not _HANGUL_JAMO.match(char)
        and char not in _ARABIC_MARKS
        and char not in _UNDECOMPOSABLE
    )


@functools.cache
def _special_word() -> re.Pattern[str]:
    """Words holding a non-ASCII character that is not plain (built on first use: ~0.2 s)."""
    plain = []
    for code in range(0x80, 0x10000):
        char = chr(code)
        folded = char.casefold()
        if _is_plain(char) and len(folded) == 1 and _is_plain(folded):
            plain.append(char)
    ordinary = "0-9a-z" + re.escape("".join(plain))
    # From a word start, skip ordinary characters without backtracking, then
    # require a special one: linear in the length of the text.
    return re.compile(f"(?<![^ ])[{ordinary}]*+[^ {ordinary}][^ ]*")


def _word_tokens(word: str) -> str:
    """The space-joined tokens of one word (no ASCII separators, ASCII lower-cased)."""
    normalized = normalize(word)
    return " ".join(_token_regex(normalized).findall(normalized))


def _nonascii_tokens(word: str) -> list[str]:
    """The tokens of one space-free word holding a non-ASCII byte."""
    special = _special_word().match(word) is not None
    return (_word_tokens(word) if special else word).casefold().split()


# Words repeat (names, places), so their tokens are cached; a longer "word" is
# mostly a run of CJK or Thai text without spaces, which seldom repeats and would
# only fill the cache, so it is not kept.
_CACHED_WORD = 64
_cached_nonascii_tokens = functools.lru_cache(maxsize=65536)(_nonascii_tokens)


def _nonascii_word_tokens(word: str) -> list[str]:
    """:func:`_nonascii_tokens`, cached for words of ordinary length (do not mutate)."""
    if len(word) > _CACHED_WORD:
        return _nonascii_tokens(word)
    return _cached_nonascii_tokens(word)


_NON_ASCII_MARK = bytes(b if b < 0x80 else 0x80 for b in range(256))


def tokens(text: str) -> list[str]:
    """The normalized word tokens of ``text``: runs of letters, marks and digits."""
    data = text.encode(*_UTF8).lower().translate(_ASCII_SEPARATORS)
    if data.isascii():
        return data.decode("ascii").split()
    # Most words stay ASCII (one dash or accent per sentence is typical), so the
    # ASCII stretches are split in bulk and only the words around a non-ASCII
    # byte, found by a C-level find in a byte mask, take the per-word path.
    mask = data.translate(_NON_ASCII_MARK)
    found: list[str] = []
    done = 0
    high = mask.find(b"\x80")
    while high >= 0:
        start = mask.rfind(b" ", done, high) + 1 or done
        end = mask.find(b" ", high)
        if end < 0:
            end = len(data)
        found += data[done:start].decode("ascii").split()
        found += _nonascii_word_tokens(data[start:end].decode(*_UTF8))
        done = end
        high = mask.find(b"\x80", end)
    found += data[done:].decode("ascii").split()
    return found


def accented_tokens(text: str) -> list[tuple[str, str]]:
    """``(token, form)`` for each token of ``tokens(text)`` that normalization changed
    beyond case: ``form`` is the word as written, lower-cased, accents kept (``policière``
    for ``policiere``), which stemmers of accented languages need."""
    if text.isascii():
        return []
    found: list[tuple[str, str]] = []
    for word in _NONASCII_WORD.findall(text):
        found += _accented(word) if len(word) > _CACHED_WORD else _cached_accented(word)
    return found


# A word (a run between ASCII separators) holding a non-ASCII character: from a word
# start, ASCII letters and digits are skipped without backtracking, so this is linear.
_NONASCII_WORD = re.compile(
    r"(?<![0-9A-Za-z\x80-\U0010ffff])[0-9A-Za-z]*+[^\x00-\x7f][^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]*"
)


def _accented(word: str) -> list[tuple[str, str]]:
    """:func:`accented_tokens` of one word without ASCII separators."""
    written = unicodedata.normalize("NFC", word.casefold())
    forms = _token_regex(written).findall(written)
    folded = _nonascii_word_tokens(word)
    if len(forms) != len(folded):  # normalization joined or split tokens: pair what is one
        pairs = [(one[0], form) for form in forms if len(one := _word_tokens(form).split()) == 1]
    else:
        pairs = list(zip(folded, forms, strict=True))
    return [(token, form) for token, form in pairs if token != form]


_cached_accented = functools.lru_cache(maxsize=65536)(_accented)


def _token_regex(normalized: str) -> re.Pattern[str]:
    return _ASTRAL_TOKEN if normalized and max(normalized) > "\uffff" else _TOKEN


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """Each token of ``tokens(text)`` with its (start, end) offsets in ``text``.

    The slow path (summaries, highlighting): splits at ASCII separators like
    :func:`tokens`, then maps each word's tokens back to the original text.
    """
    spans: list[tuple[str, int, int]] = []
    start = 0
    for separator in [*_ASCII_SEPARATOR.finditer(text), None]:
        end = separator.start() if separator else len(text)
        if start < end:
            word = text[start:end]
            if not _special_word().search(word):
                spans.append((word.casefold(), start, end))
            else:
                spans += [(t, start + a, start + b) for t, a, b in _word_spans(word)]
        start = separator.end() if separator else end
    return spans


def _word_spans(word: str) -> list[tuple[str, int, int]]:
    """Tokens of one word (no ASCII separators) with offsets into it."""
    whole, origins = normalized_offsets(word.translate(_ASCII_LOWER))
    return [
        (m.group(), origins[m.start()][0], origins[m.end() - 1][1])
        for m in _token_regex(whole).finditer(whole)
    ]


def normalized_offsets(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``normalize(text)``, and for each of its characters the span of ``text`` it came from.

    Normalizes one combining sequence at a time to know where each character
    came from; when that differs from normalizing the whole text (rare), the
    whole-text result wins and offsets are aligned approximately.
    """
    whole = normalize(text)
    if text.isascii():
        return whole, [(i, i + 1) for i in range(len(text))]
    starts: list[int] = []  # where each chunk's normalized output begins
    origins: list[tuple[int, int]] = []
    pieces: list[str] = []
    position = 0
    for chunk in _CHUNK.finditer(text):
        starts.append(position)
        origins.append(chunk.span())
        pieces.append(normalize(chunk.group()))
        position += len(pieces[-1])
    local = "".join(pieces)
    if not local:
        return whole, [(0, len(text))] * len(whole)
    to_local = range(len(whole)) if local == whole else _alignment(whole, local)
    return whole, [origins[bisect_right(starts, offset) - 1] for offset in to_local]


_ASCII_LOWER = str.maketrans({c: c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})


# How far ahead :func:`_alignment` looks, in both texts together, to get back in step.
_RESYNC = 6


def _alignment(whole: str, local: str) -> list[int]:
    """For each offset of ``whole``, the nearest corresponding offset of ``local``.

    The two differ only where normalization acted across chunks, a few characters
    at a time, so one forward walk keeps them in step: on a difference, the
    nearest pair of equal characters a few places ahead resumes the walk, and
    what was skipped in ``whole`` maps to where ``local`` stood. Linear, unlike
    a general diff (difflib is quadratic in the length of such a text).
    """
    mapping: list[int] = []
    last = len(local) - 1
    i = j = 0
    while i < len(whole):
        if j < len(local) and whole[i] == local[j]:
            mapping.append(j)
            i, j = i + 1, j + 1
            continue
        skip_whole, skip_local = _resync(whole, local, i, j)
        mapping += [min(j, last)] * skip_whole
        i, j = i + skip_whole, j + skip_local
    return mapping


def _resync(whole: str, local: str, i: int, j: int) -> tuple[int, int]:
    """How many characters of each text to skip so that they agree again.

    The fewest in total (at most ``_RESYNC``); one of each when nothing nearby agrees.
    """
    for total in range(1, _RESYNC + 1):
        for a in range(total + 1):
            b = total - a
            if i + a < len(whole) and j + b < len(local) and whole[i + a] == local[j + b]:
                return a, b
    return 1, 1
