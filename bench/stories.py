"""What story clustering costs per item, beside what matching the item costs.

Used by the ``stories`` scenario of ``python -m bench`` (bench/run.py). An item that a rule
matched is clustered once: ``signature()`` of its title and lead, ``StoryIndex.find()`` among
the open stories and ``add()``. Both costs are CPU time (``time.process_time``) on the same
items in the same process: the synthetic corpus of the other scenarios, whose stories recur
across feeds as wire copies do.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.workloads import corpus_items, rules_of
from bot.feeds.parse import parse_feed
from bot.model import Item
from bot.rules.match import RuleSet
from bot.stories.cluster import Signature, StoryIndex, signature

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LEAD = 300  # characters of the summary a sighting is judged by


@dataclass(frozen=True)
class Costs:
    open_stories: int
    cluster_us: float  # signature + find + add, per item
    signature_us: float
    match_us: float  # RuleSet.match at ``rules`` rules, per item
    matched_share: float  # of items, those with at least one match (the ones clustered)
    joined_share: float  # of clustered items, those that joined an open story

    @property
    def ratio(self) -> float:
        return self.cluster_us / self.match_us

    @property
    def per_polled_item(self) -> float:
        """Clustering's cost per polled item (only matched items are clustered) / matching's."""
        return self.ratio * self.matched_share


def _sig(item: Item, topic: tuple[str, ...] = ()) -> Signature:
    """As the poller makes it: its time, and the words the rules matched as its topic."""
    return signature(
        item.title, item.summary[:LEAD], item.link, told=item.published or NOW, topic=topic
    )


def _index(filler: list[Signature], size: int) -> StoryIndex:
    index = StoryIndex()
    for number, sig in enumerate(filler[:size]):
        index.add(number, sig, NOW)
    return index


def _cluster_pass(
    index: StoryIndex, probe: list[Item], topics: dict[str, tuple[str, ...]] | None = None
) -> tuple[float, int]:
    start, joined = time.process_time(), 0
    for number, item in enumerate(probe):
        sig = _sig(item, topics.get(item.key, ()) if topics else ())
        story = index.find(sig, NOW)
        joined += story is not None
        index.add(-1 - number if story is None else story, sig, NOW)
    return time.process_time() - start, joined


def measure(
    open_counts: tuple[int, ...] = (100, 10_000),
    probes: int = 2000,
    rules: int = 100,
    repeats: int = 3,
) -> list[Costs]:
    """For each count of open stories: the costs per item, medians over ``repeats``."""
    items = corpus_items(max(open_counts) + probes)
    filler = [_sig(item) for item in items[: max(open_counts)]]
    probe = items[max(open_counts) :]
    ruleset = RuleSet(rules_of(rules))
    tags: frozenset[str] = frozenset()
    matched = sum(1 for item in probe if ruleset.match(item, tags)) / len(probe)
    results = []
    for count in open_counts:
        cluster, sign, match, joined = [], [], [], 0
        for _ in range(repeats):
            seconds, joined = _cluster_pass(_index(filler, count), probe)
            cluster.append(seconds)
            start = time.process_time()
            for item in probe:
                ruleset.match(item, tags)
            match.append(time.process_time() - start)
            start = time.process_time()
            for item in probe:
                _sig(item)
            sign.append(time.process_time() - start)
        per = 1e6 / len(probe)
        results.append(
            Costs(
                count,
                statistics.median(cluster) * per,
                statistics.median(sign) * per,
                statistics.median(match) * per,
                matched,
                joined / len(probe),
            )
        )
    return results


def measure_corpus(folder: Path, rules: int = 100, repeats: int = 3) -> dict[str, float]:
    """The same costs on the real feed corpus (``tests.paths.CORPUS``), with the rule set of
    ``bench.matching`` (the shipped rules plus rules of the corpus's own words): every item
    is clustered into an index filled to 10,000 open stories, and matched; and reading
    the documents (``parse_feed``: XML, HTML to text, language detection) per item, which a
    polled item costs before it is matched."""
    from bench.matching import corpus_vocabulary, load_documents, rule_set_rules

    docs = load_documents(folder)
    items = [item for doc in docs for item in doc.items]
    ruleset = RuleSet(rule_set_rules(rules, corpus_vocabulary(docs)))
    tags: frozenset[str] = frozenset()
    topics = {
        item.key: tuple(h.term for m in matches for h in m.hits)
        for item in items
        if (matches := ruleset.match(item, tags))
    }
    filler = [_sig(item) for item in corpus_items(10_000)]
    cluster, match, read = [], [], []
    for _ in range(repeats):
        cluster.append(_cluster_pass(_index(filler, len(filler)), items, topics)[0])
        start = time.process_time()
        for item in items:
            ruleset.match(item, tags)
        match.append(time.process_time() - start)
        start = time.process_time()
        for doc in docs:
            parse_feed(doc.body, feed_id=doc.name, url="https://example.org/")
        read.append(time.process_time() - start)
    per = 1e6 / len(items)
    cluster_us, match_us = statistics.median(cluster) * per, statistics.median(match) * per
    read_us, matched = statistics.median(read) * per, len(topics) / len(items)
    return {
        "items": len(items),
        "cluster_us": cluster_us,
        "match_us": match_us,
        "read_us": read_us,
        "ratio": cluster_us / match_us,
        "matched_share": matched,
        "per_polled_item": cluster_us / match_us * matched,
        "of_read_and_match": cluster_us * matched / (read_us + match_us),
    }


def main() -> int:
    """``python -m bench.stories``: the synthetic scenario, then the real corpus if present."""
    from tests.paths import CORPUS

    for costs in measure():
        print(
            f"{costs.open_stories:>6,} open stories: clustering {costs.cluster_us:.0f} us/item "
            f"(signature {costs.signature_us:.0f}), matching {costs.match_us:.0f} us/item: "
            f"{costs.ratio:.2f}x per clustered item; {costs.matched_share:.1%} of items "
            f"matched, so {costs.per_polled_item:.3f}x per polled item"
        )
    if CORPUS.is_dir():
        real = measure_corpus(CORPUS)
        print(
            f"real corpus, {real['items']:.0f} items: clustering {real['cluster_us']:.0f} us/item, "
            f"matching {real['match_us']:.0f} us/item: {real['ratio']:.2f}x per clustered item; "
            f"{real['matched_share']:.1%} of items matched, so {real['per_polled_item']:.3f}x "
            f"per polled item; reading an item costs {real['read_us']:.0f} us, and clustering "
            f"is {real['of_read_and_match']:.1%} of reading and matching per polled item"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
