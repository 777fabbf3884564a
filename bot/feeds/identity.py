"""Who an item is: its key within a feed, and whether a guid seen before now tells another
story (which story an item tells across feeds is :mod:`bot.stories.cluster`'s to say).

Keys are plain strings with a kind prefix (``guid:``, ``link:``, ``hash:``) so that a
guid can never collide with a link or a hash.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.model import Item
from bot.text import tokens

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Words kept in a text's fingerprint: the smallest hashes of its distinct words (a bottom-k
# sketch), so two fingerprints estimate how many words two texts share, in 8 hex digits each.
SKETCH_WORDS = 16
# Below this share of words in common (Jaccard), two titles or texts tell different stories:
# a typo fixed, a lead updated or an "UPDATED:" prefixed keeps far more than that.
RETOLD_BELOW = 0.2
_TRACKING = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid"})
# A URL already canonical up to its query and fragment, so that urlsplit is not
# needed: lower-case http(s) scheme and host name, no port, user, trailing dot
# or whitespace (which urlsplit would drop).
_PLAIN = re.compile(
    r"(https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*)(/[^\s?#]*)?(?:\?([^\s#]*))?(?:#\S*)?", re.ASCII
)


def canonical_link(url: str) -> str:
    """``url`` with what varies between sightings of one page removed.

    Lower-case scheme and host, no fragment, no default port, no tracking
    parameters (``utm_*``, ``fbclid``, ``gclid`` ...); the rest is kept as given,
    since paths and other parameters can be case- and order-sensitive.
    """
    url = url.strip()
    plain = _PLAIN.fullmatch(url)
    if plain is not None:
        scheme_and_host, path, query = plain.group(1, 2, 3)
        query = _strip_tracking(query or "")
        return scheme_and_host + (path or "/") + ("?" + query if query else "")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username is not None:
        netloc = parts.netloc.rpartition("@")[0] + "@" + netloc
    query = _strip_tracking(parts.query)
    return urlunsplit((scheme, netloc, parts.path or ("/" if netloc else ""), query, ""))


def _strip_tracking(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not _is_tracking(k.lower())]
    return query if len(kept) == len(pairs) else urlencode(kept)


def _is_tracking(name: str) -> bool:
    return name.startswith("utm_") or name in _TRACKING


def item_key(
    guid: str | None, link: str | None, title: str, published: datetime | None, text: str = ""
) -> str:
    """The item's identity within its feed: guid, else canonical link, else a hash of its
    normalised title, else of its normalised ``text`` (summary and content), with its date.

    ``text`` is read only when there is no title: an item with neither is told apart by
    what it says, not folded into every other such item of its feed.
    """
    if guid and guid.strip():
        return "guid:" + guid.strip()
    if link and link.strip():
        return "link:" + canonical_link(link)
    stamp = published.isoformat() if published is not None else ""
    normalized = _normalized_title(title)
    if not normalized and (words := " ".join(tokens(text))):
        return "hash:" + _sha256("text\n" + words + "\n" + stamp)
    return "hash:" + _sha256(normalized + "\n" + stamp)


def keyed_by_text(guid: str | None, link: str | None, title: str) -> bool:
    """Whether :func:`item_key` needs the item's text: no guid, link or title words."""
    return not (guid and guid.strip()) and not (link and link.strip()) and not tokens(title)


def fingerprint(text: str) -> str:
    """A short sketch of ``text``'s words, for :func:`rewritten` to compare with a later one."""
    hashes = sorted({zlib.crc32(word.encode("utf-8")) for word in set(tokens(text))})
    return "".join(f"{h:08x}" for h in hashes[:SKETCH_WORDS])


def text_fingerprint(item: Item) -> str:
    """:func:`fingerprint` of an item's text, as :meth:`bot.feeds.parse.Draft.fingerprint`
    gives it before conversion (the same words: the content repeats no summary)."""
    return fingerprint(f"{item.summary} {item.content}")


def retitled(
    key: str, seen_title: str, title: str, seen_link: str | None = None, link: str | None = None
) -> bool:
    """Whether a guid-keyed item seen titled ``seen_title`` now has a title sharing almost no
    words with it, at another address: the first sign of a guid reused for another story (see
    :func:`rewritten`). An item that kept its link is the same page, however retitled."""
    if not key.startswith("guid:") or seen_title == title:
        return False
    if seen_link and link and canonical_link(seen_link) == canonical_link(link):
        return False
    return _jaccard(set(tokens(seen_title)), set(tokens(title))) < RETOLD_BELOW


def rewritten(seen_fingerprint: str | None, text_fingerprint: str) -> bool:
    """Whether a text shares almost no words with the one seen (a retitled item whose text
    is rewritten too tells another story: a new item).

    A text missing on one side does not hold it back; an unknown one (an item recorded
    before fingerprints were kept, ``None``) does, and so does no text on either side:
    nothing but the title says that it changed.
    """
    if seen_fingerprint is None or not (seen_fingerprint or text_fingerprint):
        return False
    return _resemblance(seen_fingerprint, text_fingerprint) < RETOLD_BELOW


def reused_key(key: str, title: str, text_fingerprint: str) -> str:
    """The key of an item whose key was reused for another story: the key and that story's
    title and text, so the same retelling keys the same again."""
    return f"{key}#{_sha256(_normalized_title(title) + chr(10) + text_fingerprint)[:16]}"


def _jaccard(one: set[str], other: set[str]) -> float:
    union = one | other
    return len(one & other) / len(union) if union else 0.0


def _resemblance(one: str, other: str) -> float:
    """The share of words two texts have in common, estimated from their fingerprints: of
    the smallest hashes of both, the part that is in each."""
    a, b = _sketch(one), _sketch(other)
    union = sorted(a | b)[:SKETCH_WORDS]
    return sum(1 for h in union if h in a and h in b) / len(union) if union else 0.0


def _sketch(fingerprint: str) -> set[int]:
    return {int(fingerprint[i : i + 8], 16) for i in range(0, len(fingerprint), 8)}


def _normalized_title(title: str) -> str:
    return " ".join(tokens(title))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
