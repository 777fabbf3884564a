"""Experiments behind the benchmark's recommendations: NOT the product's figures.

Each experiment monkeypatches one product function in this process only and
measures the same workload before and after, so a recommendation comes with a
measured gain. Nothing here changes ``bot/``.

    .venv/bin/python -m bench.experiments            # all
    .venv/bin/python -m bench.experiments xml        # one: xml, match, regexset
"""

from __future__ import annotations

import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import bot.feedparse as fp
from bot.jsonfeed import Document, Entry, parse_date

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
DC_DATE = "{http://purl.org/dc/elements/1.1/}date"


def _text(element: ET.Element | None) -> str:
    return (element.text or "") if element is not None else ""


def _rss_entry(item: ET.Element) -> Entry:
    guid = item.find("guid")
    link = _text(item.find("link")).strip() or None
    guid_text = _text(guid).strip() or None
    if link is None and guid is not None and guid.get("isPermaLink", "true") == "true":
        link = guid_text
    return Entry(
        guid=guid_text,
        link=link,
        title=_text(item.find("title")),
        summary=_text(item.find("description")),
        content=_text(item.find(CONTENT)),
        published=parse_date(_text(item.find("pubDate")) or _text(item.find(DC_DATE))),
        author=_text(item.find(DC_CREATOR)) or _text(item.find("author")) or None,
    )


def _atom_text(element: ET.Element | None) -> str:
    """Atom text constructs as HTML: ``type="text"`` escaped, ``html`` as is."""
    if element is None:
        return ""
    kind = element.get("type", "text")
    if kind == "xhtml":
        return "".join(ET.tostring(c, encoding="unicode") for c in element)
    value = element.text or ""
    return fp.html.escape(value, quote=False) if kind == "text" else value


def _atom_entry(entry: ET.Element) -> Entry:
    link = None
    for candidate in entry.findall(ATOM + "link"):
        if candidate.get("rel", "alternate") == "alternate":
            link = candidate.get("href")
            break
    published = entry.find(ATOM + "published")
    if published is None:
        published = entry.find(ATOM + "updated")
    author = entry.find(ATOM + "author")
    return Entry(
        guid=_text(entry.find(ATOM + "id")).strip() or None,
        link=link,
        title=_atom_text(entry.find(ATOM + "title")),
        summary=_atom_text(entry.find(ATOM + "summary")),
        content=_atom_text(entry.find(ATOM + "content")),
        published=parse_date(_text(published)),
        author=_text(author.find(ATOM + "name")) or None if author is not None else None,
    )


def make_fast_read_xml(original: Callable[[bytes, str | None], Document]):  # type: ignore[no-untyped-def]
    """A stdlib ElementTree (expat, C) reader for well-formed RSS 2.0 and Atom 1.0.

    Anything else (not well-formed, RSS 0.9x/1.0, unknown roots) goes to the
    original feedparser path, which keeps its leniency where it is needed.
    """

    def fast_read_xml(body: bytes, content_type: str | None) -> Document:
        text, encoding_warning = fp._decode(body, content_type)
        fp._refuse_html(text)
        data = fp._XML_DECLARATION.sub("", text.lstrip(), count=1).encode("utf-8")
        if b"<!DOCTYPE" in data[:2048] or b"<!ENTITY" in data:
            return original(body, content_type)  # entity tricks: leave them to the hardened path
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            return original(body, content_type)
        if root.tag == "rss" and root.get("version", "2.0").startswith("2"):
            channel = root.find("channel")
            if channel is None:
                return original(body, content_type)
            entries = tuple(_rss_entry(i) for i in channel.iterfind("item"))
            return Document(_text(channel.find("title")) or None,
                            _text(channel.find("link")) or None, entries, encoding_warning,
                            fp._ttl(_text(channel.find("ttl")) or None))
        if root.tag == ATOM + "feed":
            site = None
            for candidate in root.findall(ATOM + "link"):
                if candidate.get("rel", "alternate") == "alternate":
                    site = candidate.get("href")
                    break
            entries = tuple(_atom_entry(e) for e in root.iterfind(ATOM + "entry"))
            return Document(_text(root.find(ATOM + "title")) or None, site, entries,
                            encoding_warning)
        return original(body, content_type)

    return fast_read_xml


def experiment_xml(docs_per_format: int = 20) -> dict[str, object]:
    """parse_feed with the ElementTree fast path vs as shipped; items must come out equal."""
    from bench.workloads import documents, parse_ours

    original = fp._read_xml
    out: dict[str, object] = {}
    for fmt in ("rss", "atom"):
        docs = documents(fmt, docs_per_format)
        parse_ours(docs[:2])
        before = min((parse_ours(docs) for _ in range(3)), key=lambda t: t.cpu)
        shipped = [fp.parse_feed(d, feed_id="f", url="https://example.org/").items for d in docs]
        fp._read_xml = make_fast_read_xml(original)
        try:
            after = min((parse_ours(docs) for _ in range(3)), key=lambda t: t.cpu)
            fast = [fp.parse_feed(d, feed_id="f", url="https://example.org/").items for d in docs]
        finally:
            fp._read_xml = original
        same = sum(a == b for a, b in zip(shipped, fast, strict=True))
        out[fmt] = {"before_ms_per_feed": 1000 * before.cpu / before.count,
                    "after_ms_per_feed": 1000 * after.cpu / after.count,
                    "speedup": before.cpu / after.cpu, "identical_feeds": f"{same}/{len(docs)}"}
        print(f"xml {fmt}: {out[fmt]}", flush=True)
    return out


def experiment_match(rule_counts: tuple[int, ...] = (1000, 10000), items: int = 3000) -> dict[str, object]:
    """Where RuleSet.match spends its time: the full match vs candidate selection alone."""
    from bot.matcher import RuleSet
    from bot.model import FIELDS
    from bot.text import token_text

    from bench.workloads import corpus_items, rules_of

    sample = corpus_items(items)
    out: dict[str, object] = {}
    for count in rule_counts:
        ruleset = RuleSet(rules_of(count))
        for item in sample[:300]:
            ruleset.match(item)
        t = time.process_time()
        matches = sum(len(ruleset.match(item)) for item in sample)
        full = time.process_time() - t
        t = time.process_time()
        for item in sample:
            for field in FIELDS:
                token_text(item.text(field))
        tokenize = time.process_time() - t
        out[count] = {"items_per_s": len(sample) / full, "matches_per_item": matches / len(sample),
                      "tokenize_share": tokenize / full}
        print(f"match {count}: {out[count]}", flush=True)
    return out


EXPERIMENTS = {"xml": experiment_xml, "match": experiment_match}


def main(argv: list[str]) -> int:
    from bench.workloads import warm_up

    warm_up()
    for name in argv or list(EXPERIMENTS):
        EXPERIMENTS[name]()
    return 0



def experiment_regex_set(rule_counts: tuple[int, ...] = (1000, 10000), items: int = 2000) -> dict[str, object]:
    """All of a RuleSet's regexes as one ``re2.Set`` searched once per field, vs one search each.

    Patches ``_ItemState.regex``: the first regex asked for a field runs the Set
    over that field's normalized text; every other regex is then a set lookup.
    """
    import re2

    import bot.matcher as m
    from bot.query import compile_regex  # noqa: F401 (the product's own compilation)

    from bench.workloads import corpus_items, rules_of

    sample = corpus_items(items)
    original = m._ItemState.regex
    out: dict[str, object] = {}

    def set_regex(self, regex_id: int, field: int) -> bool:  # type: ignore[no-untyped-def]
        hits = self.regex_results.get(field)
        if hits is None:
            text = self.normalized[field]
            if text is None:
                text = self.normalized[field] = m.normalize(self.item.text(m.FIELDS[field]))
            hits = self.regex_results[field] = frozenset(self.regexes.regex_set.Match(text) or ())
        return regex_id in hits

    class _Regexes(list):  # the RuleSet's regex list, carrying the compiled Set
        regex_set: object

    for count in rule_counts:
        ruleset = m.RuleSet(rules_of(count))
        timings = {}
        for mode in ("shipped", "set"):
            if mode == "set":
                patterns = _Regexes(ruleset._regexes)
                options = re2.Options()
                options.case_sensitive = False
                regex_set = re2.Set.SearchSet(options)
                for regex in ruleset._regexes:
                    regex_set.Add(regex.pattern)
                regex_set.Compile()
                patterns.regex_set = regex_set
                ruleset._regexes = patterns
                m._ItemState.regex = set_regex
            try:
                results = [ruleset.match(i) for i in sample[:200]]
                t = time.process_time()
                results = [ruleset.match(i) for i in sample]
                timings[mode] = (time.process_time() - t, results)
            finally:
                m._ItemState.regex = original
        same = timings["shipped"][1] == timings["set"][1]
        out[count] = {"shipped_items_per_s": len(sample) / timings["shipped"][0],
                      "set_items_per_s": len(sample) / timings["set"][0],
                      "speedup": timings["shipped"][0] / timings["set"][0],
                      "same_matches": same}
        print(f"regex set {count}: {out[count]}", flush=True)
    return out


EXPERIMENTS["regexset"] = experiment_regex_set


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
