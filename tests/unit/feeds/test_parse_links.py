"""Link resolution: the shortcut for plain absolute links gives what urljoin gives."""

from __future__ import annotations

import itertools
from urllib.parse import urljoin, urlsplit

from bot.feeds.parse import _absolute

SCHEMES = ["http://", "https://", "HTTPS://", "ftp://", "javascript:", "//", ""]
HOSTS = [
    "a.example",
    "A.Example",
    "[::1]",
    "[::1",
    "a.example:80",
    "u:p@a.example",
    "é.example",
    "",
]
PATHS = ["", "/", "/a/b", "/a;p", "/a;", "//x", "/a b", "/a\tb", "b/c", "../c", "/é"]
QUERIES = ["", "?", "?x=1&y", "?a?b", "?q;r"]
FRAGMENTS = ["", "#", "#f", "#f g", "#?x;y"]


def _by_urljoin(link: str | None, base: str) -> str | None:
    """What ``_absolute`` computed before its shortcut: no link where urljoin refuses."""
    if not link or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
        parts = urlsplit(absolute)
    except ValueError:
        return None
    return absolute if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def test_absolute_equals_urljoin() -> None:
    urls = ["".join(p) for p in itertools.product(SCHEMES, HOSTS, PATHS, QUERIES, FRAGMENTS)]
    bases = ["https://site.example/d/", "http://site.example", "https://[::1/x", "", *urls[::2500]]
    for base in bases:
        for link in urls:
            assert _absolute(link, base) == _by_urljoin(link, base), (
                link,
                base,
            )
    assert _absolute("  https://a.example/x?y=1#z ", "https://b.example/") == (
        "https://a.example/x?y=1#z"
    )
