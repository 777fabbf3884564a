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

from bench.workloads import corpus_items, rules_of
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


def _sig(item: Item) -> Signature:
    return signature(item.title, item.summary[:LEAD], item.link)


def _index(filler: list[Signature], size: int) -> StoryIndex:
    index = StoryIndex()
    for number, sig in enumerate(filler[:size]):
        index.add(number, sig, NOW)
    return index


def _cluster_pass(index: StoryIndex, probe: list[Item]) -> tuple[float, int]:
    start, joined = time.process_time(), 0
    for number, item in enumerate(probe):
        sig = _sig(item)
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
