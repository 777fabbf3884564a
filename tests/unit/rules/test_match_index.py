"""The adaptive trigger index and regex literals: pruning that never changes a result."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.rules.match as matcher
from bot.config.schema import Rule
from bot.model import Item
from bot.rules.match import RuleSet, regex_literals
from bot.rules.regex import compile_regex
from bot.text import normalize, tokens


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("mos+oul", ("mos", "oul")),
        (r"ivanov?s?\b", ("ivano",)),
        ("IRAK", ("irak",)),
        (r"\bott?awa\b", ("ot", "awa")),
        ("[a-z]+abc[]x]d", ("abc", "d")),
        ("ab{0,2}c", ("a", "c")),
        ("ab*?c(de|f)g", ("a", "c", "g")),
        (r"x\.y\d{4}z", ("x", "y", "z")),
        ("[[:alpha:]x]yz", ("yz",)),
        ("a|b", ()),
        ("(?i)abc", ()),
        (r"\pLabc", ()),
        (r"\x41bc", ()),
        (r"\Qab\E", ()),
        (r"(\Q)\E)abc", ()),
        ("qu[eé]bec", ("qu", "bec")),
        ("café", ("caf",)),
    ],
)
def test_regex_literals(pattern: str, literals: tuple[str, ...]) -> None:
    assert regex_literals(pattern) == literals


_PIECES = st.sampled_from(
    [
        *["a", "b", "k", "s", "i", "K", "S", "x1", "é", "-", " ", ".", r"\b", r"\d", "[ab]"],
        *["[^a]", "(a|b)", "(?:ks)", "?", "*", "+", "{2}", "{0,1}", "^", "$", r"\w", "ſ"],
    ]
)
_TEXT = st.text(
    alphabet=st.sampled_from(
        [*"abksiKSIx1 -.,'é", "\u212a", "ſ", "İ", "ﬁ", "ａ", "\u0301", "ß", "—", "’"]
    ),
    max_size=24,
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=8).map("".join), _TEXT)
def test_a_matching_regex_has_its_literals_in_the_tokens(pattern: str, text: str) -> None:
    """Whenever a regex matches normalized text, each literal lies inside a token."""
    try:
        regex = compile_regex(pattern)
    except ValueError:
        return
    if regex.search(normalize(text)):
        padded = " ".join(tokens(text))
        for literal in regex_literals(pattern):
            assert literal in padded


_NAMES = [f"n{c}{d}" for c in "abcdefgh" for d in "xyz"]
_COMMON = ["police", "army", "report", "local", "federal"]


def _rules(rng: random.Random) -> list[Rule]:
    forms = [
        lambda: " OR ".join(rng.sample(_NAMES, 2)),
        lambda: f'"{rng.choice(_COMMON)} {rng.choice(_COMMON)}" ({rng.choice(_NAMES)} OR police)',
        lambda: f'({rng.choice(_NAMES)} OR "local {rng.choice(_COMMON)}") -{rng.choice(_COMMON)}',
        lambda: f"/{rng.choice(_NAMES)[:-1]}[xz]?s?/ AND {rng.choice(_COMMON)}",
        lambda: f"{rng.choice(_NAMES)} NEAR/2 ({rng.choice(_COMMON)} OR rep*)",
        lambda: f"title:pol* {rng.choice(_NAMES)}",
        lambda: f"/^{rng.choice(_COMMON)}/ OR summary:{rng.choice(_NAMES)}",
    ]
    return [Rule(id=f"r{i}", title="t", query=rng.choice(forms)()) for i in range(60)]


def _items(rng: random.Random, count: int, common: list[str]) -> list[Item]:
    def text() -> str:
        words = [rng.choice(common) if rng.random() < 0.7 else rng.choice(_NAMES) for _ in range(6)]
        return " ".join(w + rng.choice(["", "s", "z"]) if rng.random() < 0.3 else w for w in words)

    return [Item(feed_id="f", key=f"k{i}", title=text(), summary=text()) for i in range(count)]


def test_retuning_the_index_changes_no_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    rules = _rules(rng)
    frozen = RuleSet(rules)
    frozen._sample = lambda keys, fields: None  # type: ignore[method-assign]
    monkeypatch.setattr(matcher, "SAMPLE_EVERY", 1)
    monkeypatch.setattr(matcher, "FIRST_RETUNE", 8)
    adaptive = RuleSet(rules)
    initial = adaptive._index
    # Word frequencies shift halfway, so the second half is matched with an index
    # tuned on the first.
    stream = _items(rng, 150, _COMMON[:2]) + _items(rng, 150, _COMMON[2:] + _NAMES[:3])
    matched = 0
    for item in stream:
        expected = frozen.match(item)
        assert adaptive.match(item) == expected
        matched += len(expected)
    assert matched > 50
    assert adaptive._index != initial
    assert adaptive._literals_indexed


def test_literal_keys_survive_a_full_token_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matcher, "TOKEN_CACHE", 2)
    ruleset = RuleSet([Rule(id="r", title="t", query="/ivanov?/")])
    assert ruleset._literals_indexed
    for text in ["a b c", "d e Ivanova", "xivanovs f g", "nothing here"]:
        expected = ["r"] if "ivano" in text.lower() else []
        assert [
            m.rule_id for m in ruleset.match(Item(feed_id="f", key="k", title=text))
        ] == expected
