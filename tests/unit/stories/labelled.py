"""The labelled stories of tests/fixtures/stories/ and how a StoryIndex clusters them."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.config.load import load_rules
from bot.config.schema import Settings
from bot.config.yamlfile import read_tree
from bot.feeds.identity import canonical_link
from bot.model import Item
from bot.rules.match import RuleSet
from bot.stories.cluster import Signature, StoryIndex, signature
from bot.text import tokens
from tests.paths import REPO

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stories"
FIELDS = ("story", "title", "lead", "link", "language", "source", "published")


@dataclass(frozen=True)
class Labelled:
    story: str
    title: str
    lead: str
    link: str
    language: str
    source: str
    published: datetime
    where: str  # file:index, for messages

    @property
    def signature(self) -> Signature:
        """As the poller makes it: with the words the shipped rules match as its topic."""
        return signature(
            self.title, self.lead, self.link, self.language, told=self.published, topic=self.topic
        )

    @functools.cached_property
    def topic(self) -> tuple[str, ...]:
        item = Item("labelled", self.where, self.title, summary=self.lead, language=self.language)
        return tuple(h.term for m in _shipped_rules().match(item) for h in m.hits)


@functools.cache
def _shipped_rules() -> RuleSet:
    rules, _ = load_rules(REPO / "config", Settings(), {})
    return RuleSet(rules)


def load() -> list[Labelled]:
    items = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        for index, entry in enumerate(read_tree(path.read_text(encoding="utf-8"))):
            assert set(entry) == set(FIELDS), f"{path.name}:{index}: fields {sorted(entry)}"
            published = datetime.fromisoformat(str(entry["published"])).astimezone(UTC)
            values = {k: str(entry[k]) for k in FIELDS if k != "published"}
            items.append(Labelled(**values, published=published, where=f"{path.name}:{index}"))
    return items


def cluster(items: Iterable[Labelled], *, collapse_time: bool = False) -> list[list[Labelled]]:
    """Feed ``items`` in the given order through one StoryIndex, each at its own time (or
    all at one moment, so that the window separates nothing); the clusters found."""
    index = StoryIndex()
    clusters: dict[int, list[Labelled]] = {}
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    for item in items:
        now = moment if collapse_time else item.published
        index.expire(now)
        sig = item.signature
        story = index.find(sig, now)
        if story is None:
            story = len(clusters)
            clusters[story] = []
        clusters[story].append(item)
        index.add(story, sig, now)
    return list(clusters.values())


def wrong_merges(clusters: list[list[Labelled]]) -> list[list[Labelled]]:
    """The clusters holding more than one labelled story."""
    return [c for c in clusters if len({i.story for i in c}) > 1]


def partition(clusters: list[list[Labelled]]) -> frozenset[frozenset[str]]:
    return frozenset(frozenset(i.where for i in c) for c in clusters)


def clusters_per_story(clusters: list[list[Labelled]]) -> dict[str, dict[str, int]]:
    """For each story: clusters in all ("*") and per language holding its items."""
    found: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for number, members in enumerate(clusters):
        for item in members:
            found[item.story]["*"].add(number)
            found[item.story][item.language].add(number)
    return {story: {k: len(v) for k, v in langs.items()} for story, langs in found.items()}


def by_exact_keys(items: list[Labelled]) -> list[set[str]]:
    """The clusters that identity by exact canonical link or normalised title gives."""
    clusters: list[tuple[set[str], set[str]]] = []  # (keys, items)
    for item in items:
        keys = {" ".join(tokens(item.title))} | (
            {canonical_link(item.link)} if item.link else set()
        )
        joined = [c for c in clusters if c[0] & keys]
        merged = (keys.union(*(c[0] for c in joined)), {item.where}.union(*(c[1] for c in joined)))
        clusters = [c for c in clusters if c not in joined] + [merged]
    return [members for _, members in clusters]


def report() -> str:
    """The figures: clusters (top-level alerts) per story, in all and per language."""
    items = load()
    ordered = sorted(items, key=lambda i: i.published)
    found = cluster(ordered)
    lines = [
        f"{len(items)} items, {len({i.story for i in items})} stories: {len(found)} clusters "
        f"(by exact link or normalised title, as before: {len(by_exact_keys(items))})"
    ]
    lines.append(f"wrong merges: {len(wrong_merges(found))} (all at once: ")
    lines[-1] += f"{len(wrong_merges(cluster(ordered, collapse_time=True)))})"
    tellings = defaultdict(lambda: defaultdict(int))
    for item in items:
        tellings[item.story][item.language] += 1
    for story, counts in sorted(clusters_per_story(found).items()):
        langs = ", ".join(
            f"{lang} {counts[lang]} of {n}" for lang, n in sorted(tellings[story].items())
        )
        lines.append(
            f"  {story}: {counts['*']} clusters for {sum(tellings[story].values())} items ({langs})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
