"""Synthetic but realistic news text, feed documents (RSS, Atom, JSON Feed) and rule sets.

Everything is deterministic in a seed. Words follow a Zipf-like law over a
vocabulary of common news words and a long tail of proper names, so a rule on a
rare name matches rarely and a rule on ``police`` often, as in real feeds.
About one item in five carries non-ASCII text (accents, curly quotes).
"""

from __future__ import annotations

import bisect
import html
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import ClassVar

PLACES = [
    "Iraq",
    "Mosul",
    "Baghdad",
    "Erbil",
    "Kirkuk",
    "Basra",
    "Syria",
    "Damascus",
    "Aleppo",
    "Turkey",
    "Ankara",
    "Iran",
    "Tehran",
    "Jordan",
    "Amman",
    "Lebanon",
    "Beirut",
    "Israel",
    "Gaza",
    "Egypt",
    "Cairo",
    "Libya",
    "Tripoli",
    "Yemen",
    "Sanaa",
    "Kuwait",
    "Canada",
    "Ottawa",
    "Toronto",
    "Montreal",
    "Vancouver",
    "Calgary",
    "Edmonton",
    "Winnipeg",
    "Halifax",
    "Regina",
    "Quebec",
    "Ontario",
    "Alberta",
    "Manitoba",
    "Saskatchewan",
    "Nunavut",
    "Washington",
    "London",
    "Paris",
    "Berlin",
    "Brussels",
    "Geneva",
    "Vienna",
    "Rome",
    "Madrid",
    "Lisbon",
    "Warsaw",
    "Kyiv",
    "Moscow",
    "Beijing",
    "Tokyo",
    "Seoul",
    "Delhi",
    "Kabul",
    "Islamabad",
    "Nairobi",
    "Lagos",
    "Khartoum",
    "Addis",
    "Ababa",
    "Mogadishu",
    "Kinshasa",
    "Bamako",
    "Niamey",
    "Dakar",
    "Ukraine",
    "Russia",
    "China",
    "Japan",
    "Germany",
    "France",
    "Spain",
    "Italy",
    "Poland",
    "Sudan",
    "Somalia",
    "Mali",
    "Niger",
]
ORGS = [
    "RCMP",
    "OPP",
    "NATO",
    "UN",
    "UNAMI",
    "EU",
    "Interpol",
    "Europol",
    "Pentagon",
    "Kremlin",
    "Parliament",
    "Senate",
    "Congress",
    "Cabinet",
    "CSIS",
    "DND",
    "GAC",
    "CBC",
    "Reuters",
    "AFP",
    "Peshmerga",
    "PMF",
    "ISIS",
    "Hezbollah",
    "Hamas",
    "IAEA",
    "WHO",
    "UNICEF",
    "UNHCR",
    "OSCE",
    "G7",
    "G20",
    "OPEC",
    "IMF",
    "WTO",
]
PHRASE_ORGS = (
    "Canadian police",
    "Canadian Armed Forces",
    "Iraqi police",
    "Iraqi army",
    "Interior Ministry",
    "Foreign Affairs",
    "Global Affairs Canada",
    "Police Task Force",
    "Sûreté du Québec",
    "Ontario Provincial Police",
    "NATO Mission Iraq",
    "Security Council",
    "Supreme Court",
    "Prime Minister",
    "Defence Minister",
    "Public Safety",
    "Red Cross",
    "World Bank",
    "Islamic State",
    "Kurdistan Regional Government",
    "border guards",
    "peacekeeping mission",
)
NOUNS = [
    "police",
    "officers",
    "mission",
    "training",
    "deployment",
    "attack",
    "bombing",
    "ceasefire",
    "election",
    "vote",
    "budget",
    "tax",
    "inflation",
    "economy",
    "oil",
    "gas",
    "pipeline",
    "refinery",
    "drought",
    "flood",
    "wildfire",
    "earthquake",
    "storm",
    "hurricane",
    "protest",
    "strike",
    "union",
    "court",
    "trial",
    "judge",
    "verdict",
    "appeal",
    "sentence",
    "prison",
    "refugees",
    "migrants",
    "border",
    "checkpoint",
    "convoy",
    "militia",
    "troops",
    "soldiers",
    "army",
    "navy",
    "airstrike",
    "drone",
    "missile",
    "rocket",
    "weapons",
    "ammunition",
    "explosives",
    "investigation",
    "inquiry",
    "report",
    "audit",
    "scandal",
    "corruption",
    "fraud",
    "bribery",
    "contract",
    "procurement",
    "hospital",
    "vaccine",
    "outbreak",
    "virus",
    "school",
    "students",
    "teachers",
    "university",
    "research",
    "scientists",
    "climate",
    "emissions",
    "energy",
    "electricity",
    "grid",
    "water",
    "reconstruction",
    "aid",
    "donors",
    "funding",
    "sanctions",
    "talks",
    "summit",
    "treaty",
    "agreement",
    "deal",
    "negotiations",
    "diplomats",
    "embassy",
    "ambassador",
    "minister",
    "president",
    "governor",
    "mayor",
    "council",
    "police",
    "chief",
    "commander",
    "general",
    "sergeant",
    "constable",
    "detective",
    "victims",
    "survivors",
    "hostages",
    "kidnapping",
    "smuggling",
    "trafficking",
    "narcotics",
    "cartel",
    "gang",
    "shooting",
    "stabbing",
    "arrest",
    "charges",
    "warrant",
    "raid",
    "operation",
    "patrol",
    "security",
    "intelligence",
    "surveillance",
    "cyberattack",
    "hackers",
    "data",
    "privacy",
    "software",
    "startup",
    "company",
    "shares",
    "market",
    "investors",
    "bank",
    "loans",
    "housing",
    "rent",
    "wages",
    "jobs",
    "unemployment",
    "workers",
    "farmers",
    "harvest",
    "wheat",
    "prices",
]
VERBS = [
    "announces",
    "confirms",
    "denies",
    "launches",
    "suspends",
    "resumes",
    "extends",
    "ends",
    "expands",
    "cuts",
    "raises",
    "approves",
    "rejects",
    "delays",
    "signs",
    "condemns",
    "investigates",
    "charges",
    "arrests",
    "deploys",
    "withdraws",
    "trains",
    "warns",
    "urges",
    "calls",
    "reports",
    "reveals",
    "probes",
    "defends",
    "questions",
    "sues",
    "appeals",
    "blocks",
]
ADJECTIVES = [
    "new",
    "major",
    "key",
    "former",
    "senior",
    "local",
    "federal",
    "provincial",
    "regional",
    "international",
    "joint",
    "secret",
    "deadly",
    "fresh",
    "urgent",
    "rare",
    "growing",
    "massive",
    "surprise",
    "historic",
    "controversial",
]
FUNCTION = [
    "the",
    "the",
    "the",
    "of",
    "of",
    "in",
    "in",
    "to",
    "to",
    "and",
    "and",
    "a",
    "a",
    "for",
    "on",
    "with",
    "at",
    "by",
    "from",
    "after",
    "as",
    "over",
    "amid",
    "against",
    "into",
    "about",
    "during",
    "under",
    "near",
    "while",
]
ACCENTED = [
    "Sûreté",
    "Québec",
    "Montréal",
    "Trois-Rivières",
    "Gatineau",
    "Lévis",
    "Chicoutimi",
    "fédéral",
    "sécurité",
    "déploiement",
    "policiers",
    "Irak",
    "Mossoul",
    "formation",
    "mission",
    "réfugiés",
    "Bagdad",
    "Erbil",
    "Kurdistan",
    "Zürich",
    "Düsseldorf",
    "Kraków",
    "Łódź",
    "São",
    "Paulo",
    "Bogotá",
    "Ciudad",
    "Juárez",
    "Saint-Jérôme",
]
_SYLLABLES = [
    "ka",
    "ri",
    "mo",
    "sa",
    "le",
    "na",
    "to",
    "vi",
    "ro",
    "da",
    "mi",
    "ne",
    "lu",
    "ba",
    "zi",
    "go",
    "fe",
    "ha",
    "ju",
    "ki",
    "ol",
    "an",
    "er",
    "in",
    "ar",
    "us",
    "ov",
    "ek",
    "al",
    "ad",
    "ur",
    "ma",
    "zo",
    "ta",
    "pe",
    "si",
    "bo",
    "ni",
    "ya",
    "qa",
    "di",
    "ze",
    "wa",
]


def _names(rng: random.Random, count: int) -> list[str]:
    """Pronounceable proper names: the long tail (people, towns, companies)."""
    seen: set[str] = set()
    out = []
    while len(out) < count:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        if name not in seen and len(name) >= 5:
            seen.add(name)
            out.append(name)
    return out


class Vocabulary:
    """Words with Zipf-like weights; ``pick`` draws one, ``rare`` one from the long tail."""

    def __init__(self, seed: int = 7, names: int = 4000) -> None:
        rng = random.Random(seed)
        self.names = _names(rng, names)
        self.places, self.orgs, self.nouns = list(PLACES), list(ORGS), list(NOUNS)
        for words in (self.places, self.orgs, self.nouns, self.names):
            rng.shuffle(words)
        self.words = self.nouns + self.places + self.orgs + self.names

    _cumulative: ClassVar[dict[tuple[int, float], list[float]]] = {}
    """Cumulative weights by (list length, s): they depend on nothing else."""

    @classmethod
    def zipf(cls, rng: random.Random, words: list[str], s: float = 1.0) -> str:
        """A word drawn with weight 1/rank**s (rank 1 the most frequent)."""
        key = (len(words), s)
        cum = cls._cumulative.get(key)
        if cum is None:
            total, cum = 0.0, []
            for rank in range(1, len(words) + 1):
                total += rank**-s
                cum.append(total)
            cls._cumulative[key] = cum
        return words[min(bisect.bisect(cum, rng.random() * cum[-1]), len(words) - 1)]

    def noun(self, rng: random.Random) -> str:
        return self.zipf(rng, self.nouns)

    def place(self, rng: random.Random) -> str:
        return self.zipf(rng, self.places)

    def name(self, rng: random.Random) -> str:
        return self.zipf(rng, self.names, 1.05)

    def org(self, rng: random.Random) -> str:
        return rng.choice(PHRASE_ORGS) if rng.random() < 0.3 else self.zipf(rng, self.orgs)


@dataclass(frozen=True, slots=True)
class Story:
    """One item's text: a plain title and an HTML summary of a few hundred characters."""

    title: str
    summary_html: str
    author: str


def _title(v: Vocabulary, rng: random.Random, accented: bool) -> str:
    form = rng.randrange(6)
    place = rng.choice(ACCENTED) if accented and rng.random() < 0.5 else v.place(rng)
    if form == 0:
        t = f"{v.org(rng)} {rng.choice(VERBS)} {v.noun(rng)} {v.noun(rng)} in {place}"
    elif form == 1:
        t = f"{place}: {rng.choice(ADJECTIVES)} {v.noun(rng)} as {v.noun(rng)} {rng.choice(VERBS)}"
    elif form == 2:
        t = f"{v.name(rng)} {rng.choice(VERBS)} {v.org(rng)} over {v.noun(rng)}"
    elif form == 3:
        t = f"{rng.choice(ADJECTIVES).capitalize()} {v.noun(rng)} hits {place}, {v.name(rng)} says"
    elif form == 4:
        n = rng.randint(2, 400)
        t = f"{n} {v.noun(rng)} {rng.choice(VERBS)} after {v.noun(rng)} near {place}"
    else:
        t = f"What the {v.noun(rng)} {v.noun(rng)} means for {place}"
    if accented and rng.random() < 0.5:
        t = t.replace("'", "\u2019") + " \u2014 " + rng.choice(ACCENTED)
    return t[0].upper() + t[1:]


def _sentence(v: Vocabulary, rng: random.Random, accented: bool) -> str:
    words = []
    for _ in range(rng.randint(12, 26)):
        r = rng.random()
        if r < 0.38:
            words.append(rng.choice(FUNCTION))
        elif r < 0.66:
            words.append(v.noun(rng))
        elif r < 0.74:
            words.append(rng.choice(VERBS))
        elif r < 0.80:
            words.append(rng.choice(ADJECTIVES))
        elif r < 0.83:
            words.append(v.place(rng))
        elif r < 0.86:
            words.append(v.org(rng))
        elif r < 0.97:
            words.append(v.name(rng))
        else:
            words.append(rng.choice(ACCENTED) if accented else str(rng.randint(2, 2025)))
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _summary(v: Vocabulary, rng: random.Random, accented: bool) -> str:
    sentences = [
        html.escape(_sentence(v, rng, accented), quote=False) for _ in range(rng.randint(2, 4))
    ]
    link = f'<a href="https://news.example/{v.name(rng).lower()}">{v.name(rng)}</a>'
    sentences[0] = f"<strong>{v.place(rng).upper()}</strong> \u2014 " + sentences[0]
    if accented:
        sentences[-1] = sentences[-1].replace(" the ", " l\u2019 ", 1)
    middle = len(sentences) // 2
    parts = [
        "<p>" + " ".join(sentences[:middle]) + f" {link} says &amp; adds:</p>",
        "<p><em>" + " ".join(sentences[middle:]) + "</em></p>",
    ]
    if rng.random() < 0.3:
        parts.append(f'<p><img src="https://img.example/{rng.randrange(10**6)}.jpg" alt=""></p>')
    return "".join(parts)


def make_stories(count: int, seed: int = 11, vocabulary: Vocabulary | None = None) -> list[Story]:
    v = vocabulary or Vocabulary()
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        accented = rng.random() < 0.2
        out.append(Story(_title(v, rng, accented), _summary(v, rng, accented), v.name(rng)))
    return out


# ------------------------------------------------------------------ feed documents

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
FORMATS = ("rss", "atom", "json")
CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


def feed_format(feed: int) -> str:
    """The format mix of the served feeds: 70% RSS, 20% Atom, 10% JSON Feed."""
    r = feed % 10
    return "rss" if r < 7 else "atom" if r < 9 else "json"


@dataclass(frozen=True, slots=True)
class FeedItem:
    seq: int
    story: Story
    published: datetime


def feed_items(
    stories: list[Story], feed: int, newest: int, count: int = 50, extra: tuple[FeedItem, ...] = ()
) -> list[FeedItem]:
    """Feed ``feed``'s ``count`` newest items when its newest sequence number is ``newest``."""
    out = list(extra)
    n = len(stories)
    for seq in range(newest, max(-1, newest - count), -1):
        story = stories[(feed * 7919 + seq * 104729) % n]
        out.append(FeedItem(seq, story, T0 + timedelta(minutes=10 * seq + feed % 10)))
    return out[:count]


def _guid(feed: int, seq: int) -> str:
    return f"https://site{feed}.example/news/{seq}"


def render(fmt: str, feed: int, items: list[FeedItem]) -> bytes:
    if fmt == "rss":
        return render_rss(feed, items)
    if fmt == "atom":
        return render_atom(feed, items)
    return render_json(feed, items)


def render_rss(feed: int, items: list[FeedItem]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Site {feed} News</title><link>https://site{feed}.example/</link>"
        f"<description>Latest news from site {feed}</description><language>en-ca</language>"
    ]
    for it in items:
        s = it.story
        parts.append(
            f"<item><title>{html.escape(s.title, quote=False)}</title>"
            f"<link>{_guid(feed, it.seq)}</link>"
            f'<guid isPermaLink="true">{_guid(feed, it.seq)}</guid>'
            f"<pubDate>{format_datetime(it.published)}</pubDate>"
            f"<dc:creator>{s.author}</dc:creator><category>World</category>"
            f"<description><![CDATA[{s.summary_html}]]></description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def render_atom(feed: int, items: list[FeedItem]) -> bytes:
    updated = items[0].published.isoformat() if items else T0.isoformat()
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Site {feed} News</title><id>tag:site{feed}.example,2026:feed</id>"
        f'<link href="https://site{feed}.example/"/><updated>{updated}</updated>'
    ]
    for it in items:
        s = it.story
        parts.append(
            f'<entry><title type="text">{html.escape(s.title, quote=False)}</title>'
            f"<id>tag:site{feed}.example,2026:{it.seq}</id>"
            f'<link rel="alternate" href="{_guid(feed, it.seq)}"/>'
            f"<published>{it.published.isoformat()}</published>"
            f"<updated>{it.published.isoformat()}</updated>"
            f"<author><name>{s.author}</name></author>"
            f'<summary type="html">{html.escape(s.summary_html, quote=False)}</summary></entry>'
        )
    parts.append("</feed>\n")
    return "".join(parts).encode()


def render_json(feed: int, items: list[FeedItem]) -> bytes:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"Site {feed} News",
        "home_page_url": f"https://site{feed}.example/",
        "feed_url": f"https://site{feed}.example/feed.json",
        "items": [
            {
                "id": _guid(feed, it.seq),
                "url": _guid(feed, it.seq),
                "title": it.story.title,
                "content_html": it.story.summary_html,
                "date_published": it.published.isoformat(),
                "authors": [{"name": it.story.author}],
            }
            for it in items
        ],
    }
    return json.dumps(doc, ensure_ascii=False).encode()


# ------------------------------------------------------------------ rule sets


def make_queries(
    count: int,
    seed: int = 5,
    vocabulary: Vocabulary | None = None,
    groups: dict[str, list[str]] | None = None,
    stem_share: float = 1.0,
) -> list[str]:
    """``count`` rule queries: terms, phrases, prefixes, NEAR, NOT, a few regexes.

    Mix per 100 rules: 35 OR-lists of words, 20 phrase AND word, 15 prefix AND
    word, 15 NEAR, 10 with a NOT, 5 with an RE2 regex. Words are drawn uniformly,
    85% from the long tail of names: most rules watch rare things, as real ones do.

    With ``groups`` (a dict the function fills), the same rules (the same draws) are
    written as the issue-16 rule language allows: ``stem_share`` of the words (all by
    default) are ``word~``, and each OR-list of two or more words and each NEAR's right
    side is a term group, ``@gN``.
    """
    v = vocabulary or Vocabulary()
    rng = random.Random(seed)
    stems = random.Random(seed + 1)  # its own draws, so the rules stay the same

    def stem() -> str:
        return "~" if groups is not None and stems.random() < stem_share else ""

    def word() -> str:
        # Rules watch specific things: mostly names and places, seldom the commonest nouns.
        # Never the few commonest entities, which a Zipf law puts in a third of all items.
        r = rng.random()
        if r < 0.85:
            return rng.choice(v.names[200:]) + stem()
        if r < 0.95:
            return rng.choice(v.places[25:]) + stem()
        return rng.choice(v.orgs[12:]) + stem()

    def noun() -> str:
        return v.noun(rng) + stem()

    def phrase() -> str:
        if rng.random() < 0.3:
            return f'"{rng.choice(PHRASE_ORGS[:10])} {rng.choice(v.places[25:])}"'
        return f'"{rng.choice(ADJECTIVES)} {rng.choice(v.nouns)}"'

    def prefix() -> str:
        w = rng.choice([rng.choice(v.nouns), rng.choice(v.names), rng.choice(v.places)])
        return w[: max(4, len(w) - 3)].lower() + "*"

    def either(terms: list[str]) -> str:
        """``a OR b``, or with ``groups`` a group of those terms."""
        if groups is None or len(terms) < 2:
            return " OR ".join(terms)
        name = f"g{len(groups)}"
        groups[name] = terms
        return "@" + name

    out = []
    for i in range(count):
        kind = i % 20
        if kind < 7:
            out.append(either([word() for _ in range(rng.randint(1, 4))]))
        elif kind < 11:
            out.append(f"{phrase()} AND ({either([word(), word()])})")
        elif kind < 14:
            out.append(f"{prefix()} AND {word()}")
        elif kind < 17:
            near = f"{word()} NEAR/{rng.randint(3, 8)}"
            out.append(f"{near} ({either([noun(), prefix()])})")
        elif kind < 19:
            out.append(f"({word()} OR {phrase()}) -{noun()}")
        else:
            name = rng.choice(v.names).lower()
            out.append(f"/{name[:-1]}{name[-1]}?s?\\b/ AND {noun()}")
    return out


def naive_terms(query: str) -> list[str]:
    """The words and phrases of a query, as a naive bot would keep them: any one matches."""
    out, word, quoted = [], [], False
    for ch in query + " ":
        if ch == '"':
            if quoted:
                out.append("".join(word))
                word = []
            quoted = not quoted
        elif quoted:
            word.append(ch)
        elif ch in " ()":
            w = "".join(word)
            word = []
            if w and w not in ("AND", "OR") and not w.startswith(("NEAR", "-")):
                out.append(w)
        else:
            word.append(ch)
    return [t for t in out if t]
