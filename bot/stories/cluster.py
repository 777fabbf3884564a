"""Story clustering: which open story a newly matched item retells.

A sighting is reduced to a :class:`Signature` (word stems of its title and lead, the
proper names, acronyms and numbers it names, its canonical link), and :class:`StoryIndex`
keeps the sightings of the stories seen in the window, indexed by their rarer features so
that a lookup reads a few short posting lists, not every story. Two sightings tell one
story when they share the link, or enough words, names and numbers; a name in one title
that the other text never mentions is evidence of another story, and a name on each side
that the other lacks ("...police in Mosul" / "...Ukrainian police") keeps them apart
whatever else they share: merging two stories costs an alert, splitting one costs a reply.
Pure: no I/O, and the time is passed in.
"""

from __future__ import annotations

import base64
import binascii
import functools
import heapq
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from urllib.parse import urlsplit

from bot.feeds.identity import canonical_link
from bot.model import as_utc
from bot.stories.places import known, place
from bot.text import normalize, tokens

_NONE: frozenset[str] = frozenset()
_PLACE_ENTRY = re.compile(r"\S+[=@][a-z]{2}")  # Signature.places: "trn@ir"
_NAME_STEM_ENTRY = re.compile(r"\S+ \S+")  # Signature.name_stems: "knd canad", "rkmb GRC"
WINDOW = 72 * 3600.0  # seconds a story stays open after its latest sighting
_STEM = 5  # a word's stem is its first letters: "suspended", "suspends" -> "suspe"
# A lookup reads the postings of the query's rarest features only, and compares it with
# the sightings sharing most of them: a retelling shares its rare names, numbers and words.
_RARE_KEYS = 6
_MAX_POSTING = 64  # a feature in more sightings than this says nothing about a story
_CANDIDATES = 6
# Leads alike join two tellings only if their titles share this much too: many feeds give
# every item one boilerplate lead ("Read the full story on our website...").
_SOME_TITLE = 0.2
# Words two short texts must share for their overlap to say anything ("RCMP news." is not
# a story).
_FEW_WORDS = 3
# Tellings this close in time that share a few title words and names, and name nothing the
# other does not, tell one story: wire copies and rewrites come within hours, while a like
# event (a second rocket attack on the same base) comes days later.
_CLOSE = 12 * 3600.0
_MANY_WORDS = 4  # title words besides names that make a near-copy of tellings this close
# Two items of one feed tell one story only with titles this alike (an update retitled).
_SAME_FEED_TITLE = 0.8
_MAX_SIGHTINGS = 64  # per story: the first and the latest are kept
_SIGNATURE_VERSION = 1

# Function words of the languages news feeds are mostly in; never evidence of a story.
_FUNCTION_WORDS = """
    a about after again against all also am an and any are as at be been before being but by
    can could did do does for from had has have he her here his how i if in into is it its
    just more most my new no not now of off on once only or other our out over says said
    she should so some such than that the their them then there these they this those to
    too under until up very was we were what when where which while who why will with would
    you your amid up down into over per via vs
    au aux avec ce ces cette dans de des du elle en est et il ils la le les leur lui mais
    ne nous on ou par pas pour qu que qui sa se ses son sont sur un une y a l d s n c j m t
    apres avant plus selon entre vers lors dont ete etait fait
    der die das und ein eine in im von mit zu den dem des ist hat auf fur nach
    il lo gli i di del della e da per con su dopo
    في من على إلى الى عن أن ان التي الذي بعد مع هذا هذه كان قد او أو ما لا
    در از به با که را این آن است و برای تا یک شد
"""
_STOPWORDS = frozenset(_FUNCTION_WORDS.split())
# What ends a sentence (after which a capital says nothing).
_SENTENCE_ENDS = frozenset(".!?:;—–")
# A word starting with a capital letter (the upper-case letters of the Latin, Greek and
# Cyrillic blocks): found in C, so a lead's lower-case words cost nothing.
_UPPER = "".join(chr(c) for c in range(0x41, 0x530) if chr(c).isupper() and chr(c).isalpha())
# The same words, each with the three characters before it (in a text padded with three
# spaces), which tell whether it opens a sentence: starting at the capital, not at \b, lets
# the scan skip to the next capital.
_CAPITALISED_IN_CONTEXT = re.compile(f"(?s)([{re.escape(_UPPER)}](?<!\\w.)(?<=(...).)[^\\W\\d_]*)")
# " - Publisher", " | Publisher", " – CBC.ca" at the end of a title.
_PUBLISHER = re.compile(r"\s+[-|–—]\s+([^-|–—]{1,40})$")
# "COVID-19", "F-35", "G-20": part of a name, not a count ("Boeing-737", "PS-752" are kept:
# three digits and more single out a model or a flight).
_CODE = re.compile(r"[^\W\d_]-(\d{1,2})(?!\d)")
_GROUPED = re.compile(r"\d[,.\u066b\u066c\u00a0\u202f]\d{3}(?!\d)")
_GROUPED_NUMBER = re.compile(r"\d+(?:[,.\u066b\u066c\u00a0\u202f]\d{3}(?!\d))*")
_SEPARATOR = re.compile(r"\D")
_HOME_PAGE = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#]*/?$")
_NAME_JOINERS = frozenset({"and", "of", "the", "&", "de", "du", "des", "la", "le", "et"})
# Words an acronym skips ("Department of National Defence", "Organisation du traité de
# l'Atlantique Nord"), and single letters (the "l" of "l'Atlantique").
_JOINERS = _NAME_JOINERS | {"for", "on", "les", *"abcdefghijklmnopqrstuvwxyz"}
_ACRONYM = range(3, 6)  # letters of an acronym worth looking for spelt out
_EASTERN_DIGITS = str.maketrans(
    {**{chr(0x660 + i): str(i) for i in range(10)}, **{chr(0x6F0 + i): str(i) for i in range(10)}}
)
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06ff]")
# Acronyms that French spells otherwise, so that "OTAN" and "NATO" are one name.
_ALIASES = {"otan": "nato", "grc": "rcmp", "onu": "un", "ue": "eu", "oms": "who", "daech": "daesh"}
# Demonym and plural endings, so "Canadians", "Canadiens" and "Canada" name one thing.
_NAME_SUFFIX = re.compile(r"(?:iennes|ienne|iens|ien|ians|ian|ais|aise|ese|s)$")


@dataclass(frozen=True, slots=True)
class Signature:
    """What one sighting contributes to its story's identity; opaque to callers."""

    link: str
    language: str
    title: frozenset[str]  # word stems of the title, publisher suffix removed
    lead: frozenset[str]  # word stems of the lead
    title_names: frozenset[str]  # name keys (consonant skeletons) named in the title
    names: frozenset[str]  # name keys named anywhere (title and lead)
    numbers: frozenset[str]
    script_words: frozenset[str]  # skeletons of Arabic-script words (no case: no names)
    feed: str = ""  # the feed it came from ("": not known)
    title_numbers: frozenset[str] = frozenset()  # every number of the title, as written
    # Where its names are: "KEY=cc" for a name of country cc, "KEY@cc" for a city in it.
    places: frozenset[str] = frozenset()
    # "KEY stem" for each name of the title: the word that gives the key, as a stem (a name
    # is mentioned where the word is, even uncapitalised), and an acronym's letters.
    name_stems: frozenset[str] = frozenset()
    # The first letter of each word of title and lead but joiners ("Department of National
    # Defence" gives "dnd"): an acronym is spelt out where its letters are.
    initials: str = ""
    told: float | None = None  # when it was published (else first seen), epoch seconds
    topic: frozenset[str] = frozenset()  # the words the watch rules matched
    words: frozenset[str] = field(init=False, compare=False, repr=False)  # title | lead
    mentions: frozenset[str] = field(init=False, compare=False, repr=False)  # all names
    keys: frozenset[str] = field(init=False, compare=False, repr=False)
    regions: frozenset[str] = field(init=False, compare=False, repr=False)  # its countries
    plain_title: frozenset[str] = field(init=False, compare=False, repr=False)  # not names
    topic_stems: frozenset[str] = field(init=False, compare=False, repr=False)
    topic_keys: frozenset[str] = field(init=False, compare=False, repr=False)  # as names

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", self.title | self.lead)
        object.__setattr__(self, "mentions", self.names | self.script_words)
        regions = frozenset([e[-2:] for e in self.places]) if self.places else _NONE
        object.__setattr__(self, "regions", regions)
        plain = self.title - {e.partition(" ")[2].lower()[:_STEM] for e in self.name_stems}
        object.__setattr__(self, "plain_title", plain if self.name_stems else self.title)
        topic = self.topic
        object.__setattr__(self, "topic_stems", _stems(list(topic)) if topic else _NONE)
        object.__setattr__(self, "topic_keys", frozenset(map(skeleton, topic)) if topic else _NONE)
        # What a story is looked up by: its link, names, numbers, title words and countries
        # (a link has "://", a number only digits, a stem never, a name key only consonants,
        # a country "^" and its code).
        keys = self.numbers.union(self.title, [n for n in self.mentions if len(n) >= 3])
        if regions:
            keys |= {"^" + code for code in regions}
        object.__setattr__(self, "keys", keys | {self.link} if self.link else keys)

    def to_json(self) -> str:
        """A compact form for a TEXT column; :meth:`from_json` reads it back."""
        return json.dumps(
            {
                "v": _SIGNATURE_VERSION,
                "l": self.link,
                "g": self.language,
                "t": sorted(self.title),
                "d": sorted(self.lead),
                "tn": sorted(self.title_names),
                "n": sorted(self.names),
                "#": sorted(self.numbers),
                "s": sorted(self.script_words),
                "f": self.feed,
                "t#": sorted(self.title_numbers),
                "p": sorted(self.places),
                "ns": sorted(self.name_stems),
                "i": self.initials,
                "at": self.told,
                "tp": sorted(self.topic),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Signature:
        """The signature :meth:`to_json` wrote; ``ValueError`` for anything else."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"not a story signature: {error}") from error
        if not isinstance(data, dict) or data.get("v") != _SIGNATURE_VERSION:
            raise ValueError("not a story signature (unknown version)")

        def text_field(key: str) -> str:
            value = data.get(key)
            if not isinstance(value, str):
                raise ValueError(f"not a story signature: {key!r} is not text")
            return value

        def words(key: str) -> frozenset[str]:
            value = data.get(key)
            if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
                raise ValueError(f"not a story signature: {key!r} is not a list of words")
            return frozenset(value)

        def entries(key: str, form: re.Pattern[str]) -> frozenset[str]:
            found = words(key) if key in data else frozenset()
            if not all(form.fullmatch(e) for e in found):
                raise ValueError(f"not a story signature: {key!r} has a malformed entry")
            return found

        return cls(
            link=text_field("l"),
            language=text_field("g"),
            title=words("t"),
            lead=words("d"),
            title_names=words("tn"),
            names=words("n"),
            numbers=words("#"),
            script_words=words("s"),
            feed=text_field("f") if "f" in data else "",
            title_numbers=words("t#") if "t#" in data else frozenset(),
            places=entries("p", _PLACE_ENTRY),
            name_stems=entries("ns", _NAME_STEM_ENTRY),
            initials=text_field("i") if "i" in data else "",
            told=_told(data.get("at")),
            topic=words("tp") if "tp" in data else frozenset(),
        )


def signature(
    title: str,
    lead: str,
    link: str | None,
    language: str | None = None,
    feed: str | None = None,
    told: datetime | None = None,
    topic: Iterable[str] = (),
) -> Signature:
    """The signature of a sighting; ``lead`` is the item's summary (or its text's start),
    ``feed`` the feed it came from, ``told`` when the item was published (else first seen),
    ``topic`` the words the watch rules matched in it (they say why the item matters, not
    which story it tells)."""
    title = strip_publisher(title)
    title_words, lead_words = tokens(title), tokens(lead)
    title_caps, lead_caps = _capitalised(title), _capitalised(lead)
    ascii_text = title.isascii() and lead.isascii()
    lead_names = _names(lead_caps, words=lead_words)
    title_names = _names(title_caps, words=title_words, confirmed=lead_names)
    script_words: frozenset[str] = frozenset()
    if not ascii_text:
        script_words = frozenset(
            s
            for w in title_words + lead_words
            if not w.isascii() and _ARABIC_SCRIPT.match(w) and w not in _STOPWORDS
            for s in [skeleton(w)]
            if s
        )
    return Signature(
        link=_article_link(link) if link else "",
        language=(language or "").strip().lower().split("-")[0],
        title=_stems(title_words),
        lead=_stems(lead_words),
        title_names=title_names,
        names=title_names | lead_names,
        numbers=_numbers(title_words, title) | _numbers(lead_words, lead),
        script_words=script_words,
        feed=feed or "",
        title_numbers=frozenset(w for w in title_words if w.isdigit()),
        places=_places(title_caps + lead_caps, title_words + lead_words, ascii_text),
        name_stems=_name_stems(title_caps, title_names),
        initials=_initials(title_words) + " " + _initials(lead_words),
        told=as_utc(told).timestamp() if told else None,
        topic=frozenset(w for term in topic for w in tokens(term)),
    )


def _told(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError("not a story signature: 'at' is not a time")


def strip_publisher(title: str) -> str:
    """``title`` without a trailing " - Publisher" (aggregators append the source's name)."""
    found = _PUBLISHER.search(title.strip())
    if found is None:
        return title
    words = found.group(1).split()
    rest = title[: found.start()].split()
    looks_like_name = words[0][:1].isupper() and all(
        w[:1].isupper() or "." in w or w in _NAME_JOINERS for w in words
    )
    if len(words) <= 4 and len(rest) >= 3 and looks_like_name:
        return title[: found.start()].rstrip()
    return title


def story_link(url: str) -> str:
    """The canonical link an item points at; a Google News article link decoded when its
    id carries the address (the older ids do), else kept as is (it is still one article)."""
    link = canonical_link(url)
    if "news.google.com" not in link:
        return link
    parts = urlsplit(link)
    if parts.hostname == "news.google.com" and "/articles/" in parts.path:
        decoded = _google_news_target(parts.path.rsplit("/", 1)[-1])
        if decoded:
            return canonical_link(decoded)
        return f"https://news.google.com{parts.path}"
    return link


def _article_link(url: str) -> str:
    """:func:`story_link`, or "" for a site's home page (some feeds link every item there:
    it says nothing about which story an item tells)."""
    link = story_link(url)
    return "" if _HOME_PAGE.match(link) else link


def _google_news_target(article_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (binascii.Error, ValueError):
        return None
    found = re.search(rb"https?://[\x21-\x7e]+", raw)
    return found.group().decode("ascii") if found else None


# ---------------------------------------------------------------- features


def stems(text: str) -> frozenset[str]:
    """The stems of ``text``'s content words, as a signature keeps a title's or a lead's."""
    return _stems(tokens(text))


def _stems(words: list[str]) -> frozenset[str]:
    """The stems of the content words (no function words, numbers or single letters)."""
    content = set(words) - _STOPWORDS
    if all(w.isascii() for w in content):
        return frozenset(w[:_STEM] for w in content if len(w) > 1 and not w.isdigit())
    return frozenset(
        (w if w.isascii() or not _ARABIC_SCRIPT.match(w) else _arabic_stem(w))[:_STEM]
        for w in content
        if len(w) > 1 and not w.isdigit()
    )


def _numbers(words: list[str], text: str) -> frozenset[str]:
    """The numbers among ``words`` (of ``text``), in ASCII digits. A lone digit ("3 Germans")
    says too little, and a short number that is part of a name ("COVID-19", "F-35") is in
    every story about that thing: neither counts."""
    found = {w for w in words if w.isdigit() and len(w) >= 2}
    if found and _GROUPED.search(text):  # "1,200" is one number, not "1" and "200"
        found = {_SEPARATOR.sub("", n) for n in _GROUPED_NUMBER.findall(text)}
        found = {n for n in found if len(n) >= 2}
    if found and "-" in text:
        found -= set(_CODE.findall(text))
    if not found:
        return frozenset()
    return frozenset(w.translate(_EASTERN_DIGITS).lstrip("0") or "0" for w in found)


# Alef written with a hamza or madda, which writers put or leave out ("أوكرانية",
# "اوكرانية"): one letter for comparing words, as Arabic search engines fold it.
_ALEFS = str.maketrans("أإآ", "ااا")


def _places(
    capitalised: list[tuple[str, str]], words: list[str], ascii_text: bool
) -> frozenset[str]:
    """The places a text names (its ``capitalised`` words and its ``words``), as
    :attr:`Signature.places` keeps them: the capitalised words the table knows ("Iran",
    "Canadiens"; "part" or "male" written small are words, not places) and the Arabic-script
    ones, looked up with their article off."""
    found = known(_lower(raw) for raw, _ in capitalised)
    if not ascii_text:
        found |= {w for w in words if _ARABIC_SCRIPT.match(w)}
    if not found:
        return _NONE
    return frozenset(entry for word in found for entry in _place_entries(word))


@functools.lru_cache(maxsize=65536)
def _lower(raw: str) -> str:
    return raw.lower() if raw.isascii() else normalize(raw)


@functools.lru_cache(maxsize=65536)
def _place_entries(word: str) -> tuple[str, ...]:
    found = place(place_word(word))
    if found is None:
        return ()
    key = skeleton(word)
    return (*(f"{key}={c}" for c in found.names), *(f"{key}@{c}" for c in found.cities_of))


def _name_stems(capitalised: list[tuple[str, str]], names: frozenset[str]) -> frozenset[str]:
    """:attr:`Signature.name_stems` of a title's ``capitalised`` words that are its ``names``."""
    return frozenset(
        entry
        for raw, _ in capitalised
        for key, entries in [_stem_entries(raw)]
        if key in names
        for entry in entries
    )


@functools.lru_cache(maxsize=65536)
def _stem_entries(raw: str) -> tuple[str, tuple[str, ...]]:
    """A capitalised word's name key, with the entries :attr:`Signature.name_stems` keeps
    for it: its stem, or, for an acronym, its letters in capitals (and its alias's)."""
    word = _lower(raw)
    alias = _ALIASES.get(word)
    key = skeleton(alias or word)
    if len(raw) >= 2 and raw.isupper():
        forms = (word.upper(), alias.upper()) if alias else (word.upper(),)
    else:
        forms = (word[:_STEM], alias[:_STEM]) if alias else (word[:_STEM],)
    return key, tuple(f"{key} {form}" for form in forms)


def _initials(words: list[str]) -> str:
    return "".join([w[0] for w in words if w not in _JOINERS])


def place_word(word: str) -> str:
    """A token in the form the place table (bot/stories/places.tsv) is keyed by."""
    return _arabic_stem(word) if _ARABIC_SCRIPT.match(word) else word


def _arabic_stem(word: str) -> str:
    """An Arabic-script word without its article, its alefs folded."""
    return _strip_article(word.translate(_ALEFS))


def _strip_article(word: str) -> str:
    for prefix in ("وال", "بال", "فال", "كال", "لل", "ال"):
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            return word[len(prefix) :]
    return word


# Consonant classes shared by the Latin and Arabic scripts: vowels, h, w and y (and the
# Arabic letters written for them) are dropped, so "Tehran", "Téhéran" and "طهران" are
# all "trn", "Soleimani" and "سليماني" are "slmn".
_LATIN_PAIRS = (("ph", "f"), ("ch", "s"), ("sh", "s"), ("kh", "k"), ("gh", "g"), ("ck", "k"))
_SKELETON = str.maketrans(
    {
        **dict.fromkeys("aeiouhwy", None),
        "q": "k",
        "c": "k",
        "x": "ks",
        "v": "f",
        "p": "b",
        **dict.fromkeys("اأإآىءئؤةويیعحهـ\u200c", None),
        "ب": "b",
        "پ": "b",
        "ت": "t",
        "ث": "t",
        "ط": "t",
        "ج": "j",
        "چ": "j",
        "ژ": "j",
        "خ": "k",
        "ق": "k",
        "ك": "k",
        "ک": "k",
        "د": "d",
        "ض": "d",
        "ذ": "z",
        "ز": "z",
        "ظ": "z",
        "ر": "r",
        "س": "s",
        "ش": "s",
        "ص": "s",
        "غ": "g",
        "گ": "g",
        "ف": "f",
        "ل": "l",
        "م": "m",
        "ن": "n",
    }
)


@functools.lru_cache(maxsize=65536)
def skeleton(word: str) -> str:
    """The consonants of a normalised name, in classes both scripts write alike."""
    if _ARABIC_SCRIPT.match(word):
        word = _strip_article(word)
    else:
        word = _NAME_SUFFIX.sub("", word) if len(word) > 4 else word
        for pair, letter in _LATIN_PAIRS:
            word = word.replace(pair, letter)
    consonants = word.translate(_SKELETON)
    return re.sub(r"(.)\1+", r"\1", consonants)


def _capitalised(text: str) -> list[tuple[str, str]]:
    """Each capitalised word of ``text`` as written, with the three characters before it
    (spaces where the text starts): what names, places and name stems are read from."""
    return _CAPITALISED_IN_CONTEXT.findall("   " + text)


def _names(
    found: list[tuple[str, str]], *, words: list[str], confirmed: frozenset[str] | None = None
) -> frozenset[str]:
    """Keys of the proper names and acronyms of a text, from its capitalised words as
    written (``found``, case is the signal); ``words`` are its tokens.

    A capitalised word opening a sentence is not a name. A title (``confirmed`` given: the
    names of its lead) written in Title Case or in capitals has only the acronyms and the
    names its lead confirms.
    """
    if confirmed is None:
        return frozenset(
            key
            for raw, before in found
            for _, acronym, key in [_name_key(raw)]
            if key and (acronym or not _opens(before))
        )
    kept: list[tuple[str, bool]] = []  # (key, is an acronym)
    capitalised = shouting = 0
    for raw, before in found:
        long, acronym, key = _name_key(raw)
        capitalised += long
        shouting += long and acronym
        if key is not None and (acronym or not _opens(before)):
            kept.append((key, acronym))
    letters = sum(1 for w in words if len(w) >= 4 and not w.isdigit()) or 1
    if shouting / letters > 0.5:
        kept = [(k, a) for k, a in kept if k in confirmed]
    elif letters >= 3 and capitalised / letters > 0.6:
        kept = [(k, a) for k, a in kept if a or k in confirmed]
    return frozenset(k for k, _ in kept if k)


@functools.lru_cache(maxsize=65536)
def _name_key(raw: str) -> tuple[bool, bool, str | None]:
    """For a capitalised word as written: whether it is long, whether it is an acronym, and
    its name key (``None`` for a function word, "" when it has no consonant)."""
    acronym = len(raw) >= 2 and raw.isupper()
    word = _lower(raw)
    word = _ALIASES.get(word, word)
    return len(raw) >= 4, acronym, None if word in _STOPWORDS else skeleton(word)


@functools.lru_cache(maxsize=4096)
def _opens(before: str) -> bool:
    """Whether a capitalised word after ``before`` (the three characters before it, spaces
    where the text starts) opens a sentence."""
    written = before.rstrip()
    return not written or written[-1] in _SENTENCE_ENDS or written[-1] == "-" != before[-1]


# ---------------------------------------------------------------- the decision


def _jaccard(one: frozenset[str], other: frozenset[str]) -> float:
    union = len(one | other)
    return len(one & other) / union if union else 0.0


def _unmatched(a: Signature, b: Signature) -> frozenset[str]:
    """Names in ``a``'s title that ``b`` never mentions, nor their place (one-letter keys
    say too little)."""
    return frozenset(
        n
        for n in a.title_names - b.mentions
        if len(n) >= 2 and not _placed(a, n, b) and not _said(a, n, b)
    )


def _said(a: Signature, name: str, b: Signature) -> bool:
    """Whether ``b`` has the word of ``a``'s title name, uncapitalised maybe, or spells its
    acronym out (an acronym's entry is in capitals)."""
    prefix = name + " "
    for entry in a.name_stems:
        if entry.startswith(prefix):
            form = entry[len(prefix) :]
            if not form.isupper():
                if form in b.words:
                    return True
                continue
            letters = form.lower()
            if letters[:_STEM] in b.words or (len(form) in _ACRONYM and letters in b.initials):
                return True
    return False


def _placed(a: Signature, name: str, b: Signature) -> bool:
    """Whether ``b`` names a place in the country ``a``'s name names ("Iran" / "Téhéran").
    A city is matched by nothing but itself: "police in Mosul" is not "police in Iraq", nor
    "police in Baghdad", and a capital is a place, whatever it stands for ("Ottawa says")."""
    return any(e[:-3] == name and _matched(e, b) for e in a.places)


def _matched(entry: str, b: Signature) -> bool:
    """Whether a place entry ("KEY=cc") is a country ``b`` names a place in."""
    return entry[-3] == "=" and entry[-2:] in b.regions


def _shared_places(a: Signature, b: Signature, shared: frozenset[str]) -> int:
    """Countries named on one side that the other names otherwise ("Canada" / "Ottawa",
    "Iran" / "Téhéran"), among the names only one side gives (``shared``: those both give)."""
    codes = {
        e[-2:]
        for one, other in ((a, b), (b, a))
        for e in one.places
        if e[:-3] not in other.mentions and _matched(e, other)
    }
    if codes:  # a place both name ("Baghdad" / "Bagdad") is counted already, not its country
        codes -= {e[-2:] for e in a.places if e[:-3] in shared}
    return len(codes)


def _close(a: Signature, b: Signature) -> bool:
    """Whether ``a`` and ``b`` were told within hours of each other."""
    return a.told is not None and b.told is not None and abs(a.told - b.told) <= _CLOSE


def _specific(numbers: frozenset[str]) -> int:
    """How many of ``numbers`` are counts or codes rather than years."""
    return sum(1 for n in numbers if not (len(n) == 4 and "1900" <= n <= "2099"))


def _other_tongue(a: Signature, b: Signature) -> bool:
    """Whether ``a`` and ``b`` are told in different languages (or scripts), so that their
    words cannot be compared, only their names and numbers."""
    if a.language and b.language and a.language != b.language:
        return True
    return bool(a.script_words) != bool(b.script_words)


def similarity(a: Signature, b: Signature) -> float:
    """How surely ``a`` and ``b`` tell one story: 0 when they must not share one, else a
    score whose larger values mean more evidence (only its order and zero are used)."""
    title = _jaccard(a.title, b.title)
    if a.feed and a.feed == b.feed:
        # Two items of one feed are two posts, however alike its formats ("Quote #17722",
        # "Update: early trades") or its links (untitled posts on one page), unless one
        # retitles the other.
        alike = title >= _SAME_FEED_TITLE and a.title_numbers == b.title_numbers
        return 1.0 + title if alike else 0.0
    if a.link and a.link == b.link:
        return 10.0
    numbers = _specific(a.numbers & b.numbers) if a.numbers and b.numbers else 0
    if numbers == 0 and _specific(a.numbers) and _specific(b.numbers):
        return 0.0  # each gives counts the other never does: "story 1", "story 2"
    shared = a.mentions & b.mentions
    placed = _shared_places(a, b, shared) if a.places and b.places else 0
    names = sum(1 for n in shared if len(n) >= 2) + placed
    long_names = sum(1 for n in shared if len(n) >= 3) + placed  # spelt alike in every script
    if numbers == 0 and names == 0 and title < 0.5 and not (a.words & b.words):
        return 0.0
    text = _jaccard(a.words, b.words)
    common = len(a.words & b.words)
    if a.topic or b.topic:
        # What the watch rules matched says why both matter, not that they are one story
        # ("Canadian police ... Iraq" is in every title of the stream): three counts, names
        # or words beyond it, or nothing.
        beyond = (a.words & b.words) - a.topic_stems - b.topic_stems
        common = sum(1 for w in beyond if skeleton(w) not in shared)  # names count as names
        names_beyond = shared - a.topic_keys - b.topic_keys
        if numbers + common + sum(1 for n in names_beyond if len(n) >= 2) < _FEW_WORDS:
            return 0.0
    score = title + text + 0.1 * (names + numbers)
    if numbers >= 2 and long_names >= 2:  # the same counts of the same people and places
        return score
    only_a, only_b = _unmatched(a, b), _unmatched(b, a)
    if only_a and only_b:  # each names what the other never mentions: two stories
        return 0.0
    other_tongue = _other_tongue(a, b)
    title_words = len(a.title & b.title)  # "told alike": a fifth of the title, or two words
    if (
        long_names >= 2
        and numbers >= 1
        and (title >= 0.2 or title_words >= 2 or other_tongue or common >= 2 * _FEW_WORDS)
    ):
        # The same count, people and places, told alike, in another tongue, or in many
        # of the same words.
        return score
    close = not other_tongue and _close(a, b)
    plain = len(a.plain_title & b.plain_title)  # title words shared besides names
    if only_a or only_b:  # a name on one side only: near-copies, or a shared count
        near = (
            title >= 0.6
            or (text >= 0.5 and title >= _SOME_TITLE and common >= _FEW_WORDS)
            or (title >= 0.3 and numbers >= 1 and names >= 1)
            or (close and plain >= _MANY_WORDS)
        )
        return score if near else 0.0
    if (
        title >= 0.5
        or (text >= 0.4 and title >= _SOME_TITLE and common >= _FEW_WORDS)
        or (title >= 0.4 and names >= 3)
    ):
        return score
    if title >= 0.25 and numbers >= 1 and names + numbers >= 3:
        return score
    if not close:
        return 0.0
    # Told within hours in one language, and sharing title words besides names.
    if plain >= 2 and (title_words >= 3 or names >= 2):
        return score
    # Both titles name the same two things and share a third word ("L'OTAN suspend sa
    # mission de formation en Irak" / "L'OTAN suspend ses activités d'entraînement en
    # Irak"): a rewording rather than another story.
    titled = sum(1 for n in a.title_names & b.title_names if len(n) >= 2)
    if plain >= 1 and titled >= 2 and title_words >= _FEW_WORDS:
        return score
    return 0.0


def same_story(a: Signature, b: Signature) -> bool:
    """Whether two sightings tell one story (time aside)."""
    return similarity(a, b) > 0.0


# ---------------------------------------------------------------- the index


@dataclass(slots=True)
class _Sighting:
    story: int
    signature: Signature
    keys: frozenset[str]


class StoryIndex:
    """The open stories, in memory: a story is open while its latest sighting is within
    ``window`` seconds. A new item joins the story one of whose sightings it is nearest to
    (single link); it never merges two stories, since each may already have its alert."""

    def __init__(self, window: float = WINDOW) -> None:
        self._window = timedelta(seconds=window)
        self._sightings: dict[int, _Sighting] = {}
        self._by_story: dict[int, list[int]] = {}
        self._latest: dict[int, datetime] = {}
        self._postings: dict[str, set[int]] = {}
        self._expiry: list[tuple[datetime, int]] = []  # (latest sighting, story), lazily
        self._next = 0

    def __len__(self) -> int:
        return len(self._by_story)

    def add(self, story_id: int, sig: Signature, at: datetime) -> None:
        """Record a sighting of ``story_id`` (a new story or an existing one) at ``at``."""
        number = self._next
        self._next += 1
        keys = sig.keys
        self._sightings[number] = _Sighting(story_id, sig, keys)
        postings = self._postings
        for key in keys:
            posting = postings.get(key)
            if posting is None:
                postings[key] = {number}
            else:
                posting.add(number)
        sightings = self._by_story.setdefault(story_id, [])
        sightings.append(number)
        if len(sightings) > _MAX_SIGHTINGS:  # keep the first telling and the latest ones
            self._forget(sightings.pop(1))
        latest = self._latest.get(story_id)
        if latest is None or at > latest:
            self._latest[story_id] = at
            heapq.heappush(self._expiry, (at, story_id))

    def find(self, sig: Signature, now: datetime) -> int | None:
        """The open story ``sig`` retells, else ``None``; the best one when it is near two
        (most evidence; on a tie the earliest story id)."""
        opened = now - self._window
        get = self._postings.get
        # The rarest keys, ties broken by the key, so that every process (whatever its hash
        # seed) reads the same postings.
        rare = sorted((len(p), k) for k in sig.keys if (p := get(k)) and len(p) <= _MAX_POSTING)
        hits = Counter(chain.from_iterable(self._postings[k] for _, k in rare[:_RARE_KEYS]))
        # The sightings sharing two features or more (or the link), most shared first.
        linked = get(sig.link, ()) if sig.link else ()
        if linked:
            shared = [n for n, count in hits.items() if count >= 2 or n in linked]
        else:
            shared = [n for n, count in hits.items() if count >= 2]
        ranked = sorted(shared, key=lambda n: (-hits[n], n))  # on a tie, the earliest
        best: tuple[float, int] | None = None
        for number in ranked[:_CANDIDATES]:
            sighting = self._sightings[number]
            if self._latest[sighting.story] < opened:
                continue
            score = similarity(sig, sighting.signature)
            if score > 0 and (best is None or (-score, sighting.story) < (-best[0], best[1])):
                best = (score, sighting.story)
        return best[1] if best else None

    def expire(self, now: datetime) -> None:
        """Drop the stories with no sighting in the window before ``now``."""
        opened = now - self._window
        while self._expiry and self._expiry[0][0] < opened:
            at, story = heapq.heappop(self._expiry)
            if self._latest.get(story) != at:
                continue  # seen again since: a later entry stands for it
            for number in self._by_story.pop(story):
                self._forget(number)
            del self._latest[story]

    def _forget(self, number: int) -> None:
        sighting = self._sightings.pop(number)
        for key in sighting.keys:
            posting = self._postings[key]
            posting.discard(number)
            if not posting:
                del self._postings[key]
