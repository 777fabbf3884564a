"""What ``word~`` terms and term groups cost the matcher, on the real feed corpus.

.venv/bin/python -m bench.stemming                  # 100 and 1,000 rules, 7 passes
.venv/bin/python -m bench.stemming --rules 1000 --repeats 3
.venv/bin/python -m bench.stemming --share 0.3       # a third of the words stemmed

Three rule sets of the same size run in this one process on the same items, passes
alternating: the matcher before ``word~`` existed (``bot/rules/match.py`` at
``--baseline``) with plain rules (``bench.matching``'s: the shipped rules plus
``make_queries``), the current matcher with those same plain rules, and the current
matcher with the same rules written with groups and ``word~`` (``make_queries(...,
groups=...)``: every word stemmed, every OR-list of words and every NEAR's right side a
group). Words come from the corpus itself, so rules fire. Reported: CPU per item of
each (median over passes), the ratio of each to the baseline (median of per-pass
ratios; the target for stemmed rules is at most 1.5x), and how each grows from the
smallest to the largest rule count (sub-linear: well under the 10x more rules).

Items are parsed as the pipeline parses them, so each carries the language detected from
its title and summary (``Item.language``), which the matcher reads a ``word~`` in; the
detection is done once per item by the parser, not by the matcher, so it is timed apart
(printed first, with the items per language) and is not part of the matching figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.corpus import Vocabulary, make_queries
from bench.matching import (
    baseline_module,
    corpus_vocabulary,
    cpu,
    every_match,
    load_documents,
    match_all,
    rule_set_rules,
    shipped_rules,
)
from bot.config.schema import Rule
from bot.feeds.language import item_language
from bot.rules import match as current
from bot.rules.match import expand_rule
from bot.rules.query import resolve_groups
from tests.paths import CORPUS

BASELINE_REF = "9dcf58f"  # main before word~ (issue 16)
RULE_COUNTS = (100, 1000)


def stemmed_rules(count: int, vocabulary: Vocabulary, share: float = 1.0) -> list[Rule]:
    """The shipped rules plus generated ones with groups and ``word~`` (``share`` of their
    words), ``count`` in all, their groups written out as the loader hands them over."""
    shipped = shipped_rules()
    defined: dict[str, list[str]] = {}
    queries = make_queries(
        count - len(shipped), seed=5, vocabulary=vocabulary, groups=defined, stem_share=share
    )
    groups, problems = resolve_groups(defined)
    assert not problems, problems
    generated = [
        expand_rule(Rule(id=f"s{i}", title=f"Rule {i}", query=q), groups)
        for i, q in enumerate(queries)
    ]
    return shipped + generated


def measure(args: argparse.Namespace) -> int:
    if not args.corpus.is_dir():
        print(f"no feed corpus at {args.corpus} (pass --corpus)", file=sys.stderr)
        return 2
    docs = load_documents(args.corpus)
    items = sum(len(d.items) for d in docs)
    print(f"corpus: {len(docs)} documents with items, {items} items")
    every = [item for d in docs for item in d.items]
    languages = Counter(item.language or "unknown" for item in every)
    print("languages:", ", ".join(f"{code} {n}" for code, n in languages.most_common()))
    detect = min(
        cpu(lambda: [item_language(i.title, i.summary or i.content) for i in every])
        for _ in range(3)
    )
    print(
        f"language detection (by the parser, not timed below): {detect / items * 1e6:.1f} us/item"
    )
    vocabulary = corpus_vocabulary(docs)
    baseline = baseline_module(args.baseline)
    per_item: dict[tuple[str, int], float] = {}
    for count in args.rules:
        plain = rule_set_rules(count, vocabulary)
        variants: dict[str, Any] = {
            "baseline plain": baseline.RuleSet(plain),
            "current plain": current.RuleSet(plain),
            "current stemmed": current.RuleSet(stemmed_rules(count, vocabulary, args.share)),
        }
        found = {name: every_match(rs, docs) for name, rs in variants.items()}
        if found["baseline plain"] != found["current plain"]:
            print(f"{count} rules: the matchers disagree on plain rules", file=sys.stderr)
            return 1
        runs: dict[str, Callable[[], int]] = {n: match_all(rs, docs) for n, rs in variants.items()}
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(args.repeats):  # alternate the order, so drift cancels
            for name in sorted(variants, reverse=bool(repeat % 2)):
                samples[name].append(cpu(runs[name]))
        print(f"\n{count:,} rules")
        for name, times in samples.items():
            per_item[name, count] = statistics.median(times) / items * 1e6
            matches = sum(map(len, found[name]))
            ratio = statistics.median(
                t / b for t, b in zip(times, samples["baseline plain"], strict=True)
            )
            print(
                f"  {name:16} {per_item[name, count]:7.1f} us/item, {matches:5} matches;"
                f" {ratio:.3f}x the baseline"
            )
    low, high = min(args.rules), max(args.rules)
    if low != high:
        print(f"\ngrowth from {low:,} to {high:,} rules ({high / low:.0f}x the rules):")
        for name in ("baseline plain", "current plain", "current stemmed"):
            print(f"  {name:16} {per_item[name, high] / per_item[name, low]:.2f}x the CPU per item")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--baseline", default=BASELINE_REF, help="git revision")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rules", type=int, nargs="+", default=list(RULE_COUNTS))
    parser.add_argument(
        "--share", type=float, default=1.0, help="of the words written word~ (default all)"
    )
    return measure(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
