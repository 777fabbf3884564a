"""Measuring story clustering by hand: ``python -m tests.unit.stories.measure [--pairs]
[--corpus]``.

Prints, for the labelled set (tests/fixtures/stories/) polled in time order and in a few
shuffled orders, the clusters per story and language and any cluster mixing stories;
``--pairs`` lists the same-story same-language pairs that do not join and what they
share; ``--corpus`` lists the items of different feeds of the real-feed corpus
(``NEWSWATCH_CORPUS``) that join one story, the joins to read for over-merging.
"""

from __future__ import annotations

import itertools
import random
import sys
from collections import defaultdict
from datetime import UTC, datetime

from bot.errors import FetchError
from bot.feeds.parse import parse_feed
from bot.model import Item
from bot.stories.cluster import (
    Signature,
    StoryIndex,
    _unmatched,
    same_story,
    signature,
    similarity,
)
from tests.paths import CORPUS

from .labelled import Labelled, cluster, clusters_per_story, load, wrong_merges

SHUFFLES = 5
LEAD_CHARS = 300  # as the poller gives a sighting (bot/pipeline/poll.py)


def _figures(found: list[list[Labelled]], items: list[Labelled]) -> str:
    tellings: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in items:
        tellings[item.story][item.language] += 1
    lines = []
    for story, counts in sorted(clusters_per_story(found).items()):
        langs = ", ".join(
            f"{lang} {counts[lang]}/{n}" for lang, n in sorted(tellings[story].items())
        )
        lines.append(f"  {story}: {counts['*']} clusters ({langs})")
    over = sum(
        max(0, v - 1) for c in clusters_per_story(found).values() for k, v in c.items() if k != "*"
    )
    lines.append(f"  {len(found)} clusters; beyond one per story and language: {over}")
    for mixed in wrong_merges(found):
        lines.append("  WRONG MERGE: " + "; ".join(f"{i.story} {i.where}" for i in mixed))
    return "\n".join(lines)


def labelled() -> None:
    items = load()
    ordered = sorted(items, key=lambda i: (i.published, i.where))
    print(f"{len(items)} items, {len({i.story for i in items})} stories")
    print("in time order:")
    print(_figures(cluster(ordered), items))
    for seed in range(SHUFFLES):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        print(f"shuffled (seed {seed}), all at once:")
        print(_figures(cluster(shuffled, collapse_time=True), items))


def pairs() -> None:
    """The same-story same-language pairs that are not one pair, and what they share."""
    items = load()
    for a, b in itertools.combinations(items, 2):
        if a.story != b.story or a.language != b.language:
            continue
        sa, sb = a.signature, b.signature
        if same_story(sa, sb):
            continue
        print(f"{a.story} [{a.language}] {a.where} / {b.where}")
        print(f"    {a.title}\n    {b.title}")
        print(
            f"    title {sorted(sa.title & sb.title)} words {sorted(sa.words & sb.words)}\n"
            f"    names {sorted(sa.mentions & sb.mentions)}"
            f" numbers {sorted(sa.numbers & sb.numbers)}"
            f" | only a {sorted(_unmatched(sa, sb))} only b {sorted(_unmatched(sb, sa))}"
            f" | numbers a {sorted(sa.numbers)} b {sorted(sb.numbers)}"
            f" | {abs(a.published - b.published).total_seconds() / 3600:.0f} h apart"
        )


def _corpus_items() -> list[Item]:
    found: list[Item] = []
    for path in sorted(p for p in CORPUS.glob("*") if p.suffix != ".tsv"):
        try:
            parsed = parse_feed(path.read_bytes(), feed_id=path.name, url="https://corpus.example/")
        except FetchError:
            continue
        found.extend(parsed.items)
    return found


def corpus() -> None:
    """Cluster every corpus item at one moment; print the joins across feeds."""
    index = StoryIndex()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    members: dict[int, list[tuple[Item, Signature]]] = defaultdict(list)
    items = _corpus_items()
    for number, item in enumerate(items):
        lead = (item.summary or item.content)[:LEAD_CHARS]
        told = item.published or now
        sig = signature(item.title, lead, item.link, item.language, item.feed_id, told)
        story = index.find(sig, now)
        story = number if story is None else story
        members[story].append((item, sig))
        index.add(story, sig, now)
    joins = [m for m in members.values() if len({i.feed_id for i, _ in m}) > 1]
    print(f"{len(items)} corpus items, {len(members)} stories, {len(joins)} across feeds")
    for group in joins:
        first = group[0][1]
        print("--")
        for item, sig in group:
            score = similarity(first, sig) if sig is not first else 0.0
            print(f"  [{item.feed_id}] {item.title[:90]!r} (score with the first: {score:.2f})")


if __name__ == "__main__":
    labelled()
    if "--pairs" in sys.argv:
        pairs()
    if "--corpus" in sys.argv:
        corpus()
