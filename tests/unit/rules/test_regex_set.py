"""A RuleSet's regexes run as one re2.Set per field: the same matches as rule by rule."""

from __future__ import annotations

import random
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config.schema import Rule
from bot.model import Item, Match
from bot.rules.match import RuleSet

_WORDS = ["mossoul", "irak", "police", "ottawa", "québec", "réseau", "cafe", "2024", "a1b2", "x"]
_REGEXES = [
    "mos+oul",
    "^irak",
    "police$",
    r"\bott?awa\b",
    "qu[eé]bec",
    "r[ée]seau",
    "caf(e|é)",
    r"\d{4}",
    r"[a-z]\d[a-z]\d",
    "x",
    "IRAK",
    "Police",
    r"^\w+ \w+$",
    "(?i)MOSSOUL",
    "polic[^ ]",
    "zzz-never",
    r"\s\w",
    "é",
    "^(irak|police) ",
    "a.{0,12}b",
    ".",
]


def _rules(patterns: list[str], rng: random.Random) -> list[Rule]:
    rules = []
    for n, pattern in enumerate(patterns):
        form = rng.randrange(6)
        if form == 0:
            query = f"/{pattern}/"
        elif form == 1:
            query = f"title:/{pattern}/"
        elif form == 2:
            query = f"{rng.choice(_WORDS)} OR /{pattern}/"
        elif form == 3:
            query = f"/{pattern}/ NOT /{rng.choice(patterns)}/"
        elif form == 4:
            query = f"summary:/{pattern}/ {rng.choice(_WORDS)}"
        else:
            query = f"/{pattern}/ OR /{rng.choice(patterns)}/"
        rules.append(Rule(id=f"r{n}", title="t", query=query))
    return rules


def _items(rng: random.Random, count: int) -> list[Item]:
    def text() -> str:
        return " ".join(
            rng.choice(_WORDS).upper() if rng.random() < 0.2 else rng.choice(_WORDS)
            for _ in range(rng.randrange(0, 8))
        )

    return [
        Item(feed_id="f", key=f"k{i}", title=text(), summary=text(), content=text())
        for i in range(count)
    ]


@cache
def _alone(query: str) -> RuleSet:
    """A RuleSet of one rule, its regexes searched one at a time (no Set).

    Built once per query for every item and example: building is what costs,
    and a RuleSet's results never depend on the items it matched before.
    """
    single = RuleSet([Rule(id="alone", title="t", query=query)])
    single._regexes.regex_set = None
    return single


def _one_by_one(rules: list[Rule], item: Item) -> list[Match]:
    """Each rule in its own RuleSet, its regexes searched one at a time (no Set)."""
    found = []
    for rule in rules:
        assert rule.query is not None
        found += [Match(rule.id, m.hits) for m in _alone(rule.query).match(item)]
    return found


def test_many_regexes_match_as_rules_one_by_one() -> None:
    rng = random.Random(7)
    patterns = [f"{p}" for p in _REGEXES] + [f"{w}{rng.randrange(10)}?" for w in _WORDS * 30]
    rules = _rules(patterns, rng)
    ruleset = RuleSet(rules)
    assert ruleset._regexes.regex_set is not None
    assert len(ruleset._regexes) > 100
    matched = 0
    for item in _items(rng, 300):
        expected = _one_by_one(rules, item)
        assert ruleset.match(item) == expected
        matched += len(expected)
    assert matched > 0


def test_a_ruleset_without_regexes_has_no_set() -> None:
    ruleset = RuleSet([Rule(id="a", title="t", query="police")])
    assert ruleset._regexes.regex_set is None
    assert [m.rule_id for m in ruleset.match(Item(feed_id="f", key="k", title="Police"))] == ["a"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(_REGEXES), min_size=1, max_size=12),
    st.integers(0, 2**32 - 1),
)
def test_set_and_single_searches_agree(patterns: list[str], seed: int) -> None:
    rng = random.Random(seed)
    rules = _rules(patterns, rng)
    ruleset = RuleSet(rules)
    for item in _items(rng, 20):
        assert ruleset.match(item) == _one_by_one(rules, item)
