"""Scoring labelled items (bot.rules.evaluate): the figures, the thresholds, the file format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config.schema import Rule
from bot.errors import ConfigError
from bot.model import Item
from bot.rules.evaluate import (
    Labelled,
    Outcome,
    Score,
    evaluate,
    parse_labelled,
    score,
    score_rule,
    shortfalls,
)

RULE_IDS = ("a", "b", "c")


@st.composite
def outcomes(draw: st.DrawFn) -> list[Outcome]:
    """Random labelled items, each matched by a random subset of the rules."""
    out = []
    for i in range(draw(st.integers(0, 30))):
        relevant = draw(st.booleans())
        expected = tuple(draw(st.sets(st.sampled_from(RULE_IDS)))) if relevant else ()
        matched = tuple(draw(st.sets(st.sampled_from(RULE_IDS))))
        item = Item(feed_id="eval", key=str(i), title="t")
        out.append(Outcome(Labelled(item, relevant, f"f:{i}", rules=expected), matched))
    return out


def _in_unit(value: float | None) -> bool:
    return value is None or 0.0 <= value <= 1.0


@given(outcomes())
def test_figures_lie_between_0_and_1_and_are_none_only_with_nothing_to_count(
    cases: list[Outcome],
) -> None:
    for s in [score(cases), *(score_rule(cases, r) for r in RULE_IDS)]:
        assert _in_unit(s.recall) and _in_unit(s.precision)
        assert (s.recall is None) == (s.expected == 0)
        assert (s.precision is None) == (s.alerts == 0)


@given(outcomes())
def test_a_perfect_ruleset_scores_1(cases: list[Outcome]) -> None:
    """Rules that match exactly the expected rules of relevant items, and alert on them."""
    perfect = [Outcome(o.case, o.case.rules or (("a",) if o.case.relevant else ())) for o in cases]
    for s in [score(perfect), *(score_rule(perfect, r) for r in RULE_IDS)]:
        assert s.recall in (None, 1.0) and s.precision in (None, 1.0)
    if any(o.case.relevant for o in cases):
        assert score(perfect).recall == score(perfect).precision == 1.0


@given(outcomes())
def test_silence_has_no_precision_and_no_recall_but_of_nothing(cases: list[Outcome]) -> None:
    silent = score([Outcome(o.case, ()) for o in cases])
    assert silent.precision is None
    assert silent.recall == (0.0 if any(o.case.relevant for o in cases) else None)


def test_thresholds() -> None:
    s = Score(found=9, expected=10, correct=9, alerts=12)
    assert shortfalls(s, 0.9, 0.75) == []
    assert shortfalls(s, 0.95, 0.8) == [
        "recall 0.90 is under --min-recall 0.95",
        "precision 0.75 is under --min-precision 0.80",
    ]
    assert shortfalls(Score(), 1.0, 1.0) == []  # nothing to count never fails


def test_feeds_of_a_rule_do_not_hide_its_matches() -> None:
    rule = Rule(id="r", title="R", query="RCMP", feeds=("elsewhere",))
    case = Labelled(Item(feed_id="eval", key="k", title="RCMP"), True, "f:1")
    assert evaluate([rule], [case])[0].matched == ("r",)


def test_yaml_file_default_and_keys() -> None:
    text = (
        "relevant: false\n"
        "items:\n"
        "  - {id: one, title: T, language: fr, source: 'https://x.example/1'}\n"
        "  - summary: S\n"
        "    relevant: true\n"
        "    rules: [r]\n"
    )
    first, second = parse_labelled(text, "e.yaml", {"r"})
    assert (first.item.key, first.relevant, first.language) == ("one", False, "fr")
    assert first.source == "https://x.example/1" and first.where == "e.yaml:3"
    assert (second.item.key, second.relevant, second.rules) == ("e.yaml:4", True, ("r",))
    assert second.item.summary == "S"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("items: [{title: T}]", "e.yaml:1: items[0]: relevant: must be true or false"),
        ("items: [{relevant: true}]", "e.yaml:1: items[0]: has no title, summary or content"),
        ("items:\n  - {title: T, relevant: false, rules: [r]}", "e.yaml:2: items[0].rules: names"),
        ("items: [{title: 3, relevant: true}]", "e.yaml:1: items[0].title: must be text"),
        ("item: []", "e.yaml:1: expected a mapping with items: [...]"),
        ("relevant: true\nitems: []\nsort: x", "e.yaml:3: sort: unknown key"),
        ("items: [", "e.yaml:1: YAML syntax error"),
    ],
)
def test_malformed_yaml_is_located(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_labelled(text, "e.yaml", {"r"})
    assert str(caught.value.problems[0]).startswith(message)
