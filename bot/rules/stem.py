"""Snowball stems for ``word~`` terms: the one module that imports PyStemmer.

A stem is reduced to a *key*, ``STEM_MARK + language + ":" + stem``: a ``word~`` term
matches an item's token when, in some language of the term, their keys are equal. A
word is stemmed twice, as written (lower-cased, accents kept: Snowball's French and
Russian rules read ``è`` and ``й``) and as normalized (accents removed, as the matcher
sees it), and each stem is then normalized, so ``policière`` (French ``polici``) meets
``policiers`` and a text written without accents still meets its rule. A word is only
stemmed by the stemmers of its alphabet (a Latin word by en, fr, es, it, de; a Cyrillic
one by ru; an Arabic-script one by ar and fa): the others would leave it as it is.

Stemming every word in every language merges words across languages; one merge is
harmful enough to rule out: a stemmer that cuts a word down to a few letters
(Spanish ``canada`` -> ``can``) would make ``canada~`` match English "can". A stem
of a rule's word shorter than :data:`MIN_STEM` letters (3 in Arabic script, where
stems are roots of three letters) is therefore not used, unless it is the word itself
(the text's stems are all kept: ``war~`` matches "wars", stemmed "war").

An item whose language is known is read in that language only (:func:`compared_in`):
a bare ``word~`` meets an English item's words through English stems alone, so
``policies`` (which French, not English, cuts to ``polic`` like ``police``) no longer
meets ``police~`` there, while ``word~en``, whose writer named the language, meets every
item's words through English stems. English, whose stemmer knows only a-z, reads words
as normalized only (:data:`READS_ACCENTS`).
"""

from __future__ import annotations

import functools
import unicodedata

import Stemmer

from bot.text import normalize

STEM_MARK = "\x02"
NAMED_MARK = "\x03"
"""The mark of the keys of ``word~xx`` terms (named language), which an item's words get in
``xx`` whatever the item's language, apart from the keys of bare ``word~`` terms."""
MIN_STEM = 4
_MIN_STEM_BY_LANGUAGE = {"ar": 3, "fa": 3}

# ISO 639-1 codes of the Snowball stemmers PyStemmer ships.
_ALGORITHMS = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "eo": "esperanto",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "st": "sesotho",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
LANGUAGES: tuple[str, ...] = tuple(
    sorted(code for code, name in _ALGORITHMS.items() if name in Stemmer.algorithms())
)
"""The language codes ``word~xx`` accepts."""

DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "it", "de", "ru", "ar", "fa")
"""What a bare ``word~`` is stemmed in: the languages of the news this bot is tuned on that
Snowball covers (Kurdish has no Snowball stemmer)."""


@functools.cache
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_ALGORITHMS[language])


def written(word: str) -> str:
    """A word as a stemmer wants it: lower-cased and composed, accents kept."""
    return unicodedata.normalize("NFC", word.casefold())


def _min_stem(language: str) -> int:
    return _MIN_STEM_BY_LANGUAGE.get(language, MIN_STEM)


def compared_in(languages: tuple[str, ...], item_language: str | None) -> tuple[str, ...]:
    """The languages in which a ``word~`` term stemmed in ``languages`` meets the words of
    an item in ``item_language``: that language alone when it is one of the term's (a
    French item is read as French), else all of them (an unknown language, or one the
    term is not stemmed in, such as Dutch for a bare ``word~``)."""
    return (item_language,) if item_language in languages else languages


@functools.lru_cache(maxsize=1 << 16)
def stem_keys(word: str, languages: tuple[str, ...], mark: str = STEM_MARK) -> frozenset[str]:
    """The keys of an item's ``word`` (a token, or a token's written form) in each of
    ``languages``.

    News vocabulary repeats, so a word is stemmed once per set of languages in use.
    """
    folded = normalize(word)
    script = _script(folded)
    both = (word, folded) if word != folded else (folded,)
    return frozenset(
        f"{mark}{language}:{normalize(_stemmer(language).stemWord(form))}"
        for language in languages
        if script in _SCRIPTS[language]
        for form in (both if language in READS_ACCENTS else (folded,))
    )


READS_ACCENTS = frozenset(LANGUAGES) - {"en"}
"""The stemmers that read a word as written: all but English's, whose alphabet is a-z and
which reads a word as normalized only (``protégés`` as ``proteges``), so an item read in
English alone needs no written forms."""


# The alphabets each stemmer reads: a stemmer leaves a word of another alphabet as it is,
# a stem that only the word itself has, so the word is not stemmed in that language.
_SCRIPTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_ALGORITHMS, ("LATIN",)),
    "ar": ("ARABIC",),
    "fa": ("ARABIC",),
    "el": ("GREEK",),
    "hi": ("DEVANAGARI",),
    "hy": ("ARMENIAN",),
    "ne": ("DEVANAGARI",),
    "ru": ("CYRILLIC",),
    "sr": ("CYRILLIC", "LATIN"),
    "ta": ("TAMIL",),
    "yi": ("HEBREW",),
}


def _script(word: str) -> str | None:
    """The alphabet of a word's first letter (``LATIN``, ``CYRILLIC``, ...)."""
    letter = next((c for c in word if c.isalpha()), None)
    return unicodedata.name(letter, "").partition(" ")[0] if letter else None


def term_keys(word: str, languages: tuple[str, ...], mark: str = STEM_MARK) -> frozenset[str]:
    """The keys of a ``word~`` term's word as written: those of :func:`stem_keys` but the
    stems cut shorter than :data:`MIN_STEM` (the word itself always matches)."""
    folded = normalize(word)
    kept = set()
    for key in stem_keys(word, languages, mark):
        language, _, stem = key[len(mark) :].partition(":")
        if len(stem) >= _min_stem(language) or stem == folded:
            kept.add(key)
    return frozenset(kept)
