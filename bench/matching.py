"""What a rule set's evaluator costs per poll, on the real feed corpus.

.venv/bin/python -m bench.matching                    # current matcher vs BASELINE_REF
.venv/bin/python -m bench.matching --repeats 9 --connection-ms 3.2
.venv/bin/python -m bench.matching --baseline none    # current matcher only

A poll of one changed document costs a new HTTPS connection + GET (a fixed CPU
cost, ``--connection-ms``, measured by the fetch benchmarks), ``parse_feed`` of
the document and ``RuleSet.match`` of its items. This measures the last two, in
CPU time (``time.process_time``), on every document of the real corpus
(``tests.paths.CORPUS``: ``NEWSWATCH_CORPUS``, or ``--corpus``), for rule sets of 10, 100 and 1,000
rules: the shipped config/rules.yaml plus rules from ``bench.corpus.make_queries``,
once with its synthetic vocabulary (which real text never contains, so the index
prunes nearly every rule) and once with words drawn from the corpus itself (so
rules do fire and their conditions are evaluated).

The baseline is ``bot/rules/match.py`` at a git revision (``--baseline``, by
default the last one that compiled rules into generated Python source), loaded
beside the current module, so both run in this one process on the same items:
passes alternate between the two, and the ratio is taken per pass, then its
median reported. A fast path earns its keep at >= 1.5x per poll (issue 14).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.corpus import Vocabulary, make_queries
from bot.config.load import load_rules
from bot.config.schema import Rule, Settings
from bot.errors import FetchError
from bot.feeds.parse import parse_feed
from bot.model import Item, Match
from bot.rules import match as current
from bot.text import tokens
from tests.paths import CORPUS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = ROOT / "config" / "rules.yaml"
BASELINE_REF = "e9400b7"  # the last revision whose RuleSet exec'd generated source
RULE_COUNTS = (10, 100, 1000)


@dataclass(frozen=True)
class Document:
    name: str
    body: bytes
    items: list[Item]


def load_documents(folder: Path) -> list[Document]:
    """Every document of the corpus that yields items, parsed as the pipeline parses it."""
    docs = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".tsv":
            continue
        body = path.read_bytes()
        try:
            items = list(parse_feed(body, feed_id=path.stem, url="https://example.org/").items)
        except FetchError:  # malformed or not a feed: no items to match
            continue
        if items:
            docs.append(Document(path.name, body, items))
    return docs


def baseline_module(ref: str) -> ModuleType:
    """``bot/rules/match.py`` as it was at ``ref``, importable beside the current one."""
    source = subprocess.run(
        ["git", "show", f"{ref}:bot/rules/match.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = "bench_baseline_match"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    exec(compile(source, f"{ref}:bot/rules/match.py", "exec"), module.__dict__)
    return module


# ---------------------------------------------------------------- rules


def shipped_rules() -> list[Rule]:
    """As the loader hands them out: their @groups written out."""
    rules, _ = load_rules(SHIPPED_RULES.parent, Settings(), {})
    return list(rules)


def corpus_vocabulary(docs: list[Document], seed: int = 3) -> Vocabulary:
    """``make_queries``' vocabulary, made of the corpus's own words.

    Names are words found in 1-5 items (what watch rules mostly look for: each
    such rule matches 0.1-0.5% of items), places and organisations words in
    6-40 items, nouns the frequent words, by rank.
    """
    in_items: Counter[str] = Counter()
    for doc in docs:
        for item in doc.items:
            in_items.update({w for w in tokens(f"{item.title} {item.summary}") if len(w) > 3})
    ranked = sorted((w for w in in_items if w.isalpha()), key=lambda w: (-in_items[w], w))
    rng = random.Random(seed)
    v = Vocabulary()
    v.names = [w for w in ranked if 1 <= in_items[w] <= 5]
    rng.shuffle(v.names)
    middle = [w for w in ranked if 6 <= in_items[w] <= 40]
    rng.shuffle(middle)
    v.places, v.orgs = middle[: len(middle) // 2], middle[len(middle) // 2 :]
    v.nouns = [w for w in ranked if in_items[w] > 40][:400]
    v.words = v.nouns + v.places + v.orgs + v.names
    return v


def rule_set_rules(count: int, vocabulary: Vocabulary | None) -> list[Rule]:
    """The shipped rules plus generated ones, ``count`` in all."""
    shipped = shipped_rules()
    queries = make_queries(count - len(shipped), seed=5, vocabulary=vocabulary)
    generated = [Rule(id=f"g{i}", title=f"Rule {i}", query=q) for i, q in enumerate(queries)]
    return shipped + generated


# ---------------------------------------------------------------- timing


def cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def build(
    modules: dict[str, ModuleType], rules: list[Rule]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Each module's RuleSet of ``rules``, and the CPU milliseconds it took to build."""
    built, build_ms = {}, {}
    for name, module in modules.items():
        start = time.process_time()
        built[name] = module.RuleSet(rules)
        build_ms[name] = (time.process_time() - start) * 1e3
    return built, build_ms


def every_match(ruleset: Any, docs: list[Document]) -> list[list[Match]]:
    """Each item's matches (this also warms the rule set's index and caches)."""
    return [ruleset.match(item, frozenset()) for doc in docs for item in doc.items]


def match_all(ruleset: Any, docs: list[Document]) -> Callable[[], int]:
    def run() -> int:
        tags: frozenset[str] = frozenset()
        return sum(len(ruleset.match(item, tags)) for doc in docs for item in doc.items)

    return run


def parse_all(docs: list[Document]) -> Callable[[], int]:
    def run() -> int:
        return sum(
            len(parse_feed(d.body, feed_id="f", url="https://example.org/").items) for d in docs
        )

    return run


def measure(args: argparse.Namespace) -> int:
    if not args.corpus.is_dir():
        print(f"no feed corpus at {args.corpus} (pass --corpus)", file=sys.stderr)
        return 2
    docs = load_documents(args.corpus)
    items = sum(len(d.items) for d in docs)
    polls = len(docs)
    print(f"corpus: {polls} documents with items, {items} items (mean {items / polls:.1f}/poll)")
    modules = {"current": current}
    if args.baseline != "none":
        modules["baseline"] = baseline_module(args.baseline)

    parse_cpu = statistics.median(cpu(parse_all(docs)) for _ in range(args.repeats))
    parse_ms = parse_cpu / polls * 1e3
    fixed_ms = args.connection_ms
    print(
        f"parse_feed: {parse_cpu / items * 1e6:.1f} us/item, {parse_ms:.2f} ms/poll; "
        f"connection + GET: {fixed_ms:.2f} ms/poll (given)"
    )
    vocabularies = {"synthetic": None, "corpus": corpus_vocabulary(docs)}
    for label, vocabulary in vocabularies.items():
        for count in args.rules:
            rules = rule_set_rules(count, vocabulary)
            built, build_ms = build(modules, rules)
            outcomes = {name: every_match(ruleset, docs) for name, ruleset in built.items()}
            if any(found != outcomes["current"] for found in outcomes.values()):
                print(f"{count} rules, {label}: the matchers disagree", file=sys.stderr)
                return 1
            matches = sum(map(len, outcomes["current"]))
            samples: dict[str, list[float]] = {name: [] for name in built}
            for repeat in range(args.repeats):  # alternate the order, so drift cancels
                for name in sorted(built, reverse=bool(repeat % 2)):
                    samples[name].append(cpu(match_all(built[name], docs)))
            report(label, count, matches, items, polls, parse_ms, fixed_ms, samples, build_ms)
    return 0


def report(
    label: str,
    count: int,
    matches: int,
    items: int,
    polls: int,
    parse_ms: float,
    fixed_ms: float,
    samples: dict[str, list[float]],
    build_ms: dict[str, float],
) -> None:
    print(f"\n{count:,} rules, {label} vocabulary: {matches} matches over {items} items")
    for name, times in samples.items():
        match_ms = statistics.median(times) / polls * 1e3
        poll_ms = fixed_ms + parse_ms + match_ms
        print(
            f"  {name:8} match {statistics.median(times) / items * 1e6:7.1f} us/item "
            f"{match_ms:6.3f} ms/poll = {match_ms / poll_ms:5.1%} of a {poll_ms:.2f} ms poll; "
            f"RuleSet built in {build_ms[name]:.1f} ms CPU"
        )
    if "baseline" not in samples:
        return
    passes = list(zip(samples["current"], samples["baseline"], strict=True))
    per_pass = [c / b for c, b in passes]
    ratio = statistics.median(per_pass)

    def per_poll(fixed: float) -> float:
        """The median over passes of (fixed + parse + match) current / baseline, per poll."""
        return statistics.median(
            (fixed + parse_ms + c / polls * 1e3) / (fixed + parse_ms + b / polls * 1e3)
            for c, b in passes
        )

    bare, polled = per_poll(0.0), per_poll(fixed_ms)
    print(
        f"  current/baseline CPU: matching {ratio:.3f}x (passes {min(per_pass):.3f}-"
        f"{max(per_pass):.3f}); per poll {polled:.3f}x ({bare:.3f}x without the connection)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--baseline", default=BASELINE_REF, help="git revision, or none")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--connection-ms", type=float, default=3.0)
    parser.add_argument("--rules", type=int, nargs="+", default=list(RULE_COUNTS))
    return measure(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
