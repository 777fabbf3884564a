"""RuleSet against an obviously-correct reference, plus rule-level behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config.schema import Rule
from bot.errors import QueryError
from bot.model import FIELDS, Hit, Item
from bot.rules.explain import explain
from bot.rules.match import RuleSet, compile_rule
from bot.rules.query import And, Near, Node, Not, Or, Regex, Term, parse
from bot.text import tokens

# ---------------------------------------------------------------- reference


def _occurs(words: list[str], term: Term) -> list[tuple[int, int]]:
    """(first, last) positions where ``term`` occurs, by brute force over the token list."""
    n = len(term.tokens)
    found = []
    for i in range(len(words) - n + 1):
        window = words[i : i + n]
        head_ok = window[:-1] == list(term.tokens[:-1])
        last = window[-1]
        last_ok = last.startswith(term.tokens[-1]) if term.prefix else last == term.tokens[-1]
        if head_ok and last_ok:
            found.append((i, i + n - 1))
    return found


def _reference(node: Node, item: dict[str, list[str]], default: tuple[str, ...]) -> bool:
    """The language's meaning, evaluated naively on token lists."""
    match node:
        case Term():
            return any(_occurs(item[f], node) for f in node.fields or default)
        case Near(left=left, right=right, distance=d):
            for f in FIELDS:
                a = [o for t in left if f in (t.fields or default) for o in _occurs(item[f], t)]
                b = [o for t in right if f in (t.fields or default) for o in _occurs(item[f], t)]
                if any(max(s2 - e1, s1 - e2, 0) <= d for s1, e1 in a for s2, e2 in b):
                    return True
            return False
        case Not(child=child):
            return not _reference(child, item, default)
        case And(children=children):
            return all(_reference(c, item, default) for c in children)
        case Or(children=children):
            return any(_reference(c, item, default) for c in children)
        case Regex():
            raise AssertionError("no regexes in generated queries")
    raise TypeError(node)


VOCAB = ["a", "b", "c", "ab", "abc", "abcd", "b-c"]
_word = st.sampled_from(VOCAB)
_leaf = st.one_of(
    _word,
    _word.map(lambda w: w[:1] + "*"),
    _word.map(lambda w: w + "*"),
    st.lists(_word, min_size=2, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"'),
    st.tuples(st.sampled_from(["title:", "summary:"]), _word).map("".join),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from([" ", " AND ", " OR "]), children).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"
        ),
        st.tuples(children, children).map(lambda t: f"{t[0]} NOT {t[1]}"),
        st.tuples(_leaf, st.integers(1, 3), _leaf).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}"),
    )


_query = st.recursive(_leaf, _combine, max_leaves=6)
_text = st.lists(st.sampled_from([*VOCAB, "abcd", "x", "A", "B-C", "."]), max_size=8).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_query, min_size=1, max_size=4),
    st.lists(st.tuples(_text, _text), min_size=1, max_size=4),
    st.sampled_from([("title", "summary"), ("title",), ("summary",)]),
)
def test_ruleset_agrees_with_reference(
    queries: list[str], texts: list[tuple[str, str]], fields: tuple[str, ...]
) -> None:
    rules = []
    for i, query in enumerate(queries):
        try:
            parse(query)
        except QueryError:
            continue  # generated negative-only queries are refused, as they should be
        rules.append(Rule(id=f"r{i}", title="t", query=query, fields=fields))
    ruleset = RuleSet(rules)
    for title, summary in texts:
        item = Item(feed_id="f", key="k", title=title, summary=summary)
        words = {"title": tokens(title), "summary": tokens(summary), "content": []}
        expected = [r.id for r in rules if _reference(parse(r.query or ""), words, fields)]
        assert [m.rule_id for m in ruleset.match(item)] == expected


# ---------------------------------------------------------------- rules


def _item(title: str = "", summary: str = "", content: str = "", feed: str = "f") -> Item:
    return Item(feed_id=feed, key="k", title=title, summary=summary, content=content)


def test_hits_list_positive_terms_with_their_fields() -> None:
    rule = Rule(id="r", title="t", query='(RCMP OR "Canadian police") Iraq* NOT army')
    [match] = RuleSet([rule]).match(_item("RCMP in Iraq", "Canadian police, Iraqi police"))
    assert match.hits == (
        Hit("rcmp", "title"),
        Hit("canadian police", "summary"),
        Hit("iraq*", "title"),
        Hit("iraq*", "summary"),
    )
    assert match.terms == ("rcmp", "canadian police", "iraq*")


def test_regex_hits_are_reported_and_run_on_normalized_text() -> None:
    rule = Rule(id="r", title="t", query="irak /mos+oul/")
    [match] = RuleSet([rule]).match(_item("Irak", "À MOSSOUL"))
    assert match.hits == (Hit("irak", "title"), Hit("/mos+oul/", "summary"))


def test_rules_match_in_rule_order_and_disabled_rules_are_skipped() -> None:
    rules = [
        Rule(id="z", title="t", query="police"),
        Rule(id="off", title="t", query="police", enabled=False),
        Rule(id="a", title="t", query="iraq"),
    ]
    ruleset = RuleSet(rules)
    assert len(ruleset) == 2
    assert [m.rule_id for m in ruleset.match(_item("Police in Iraq"))] == ["z", "a"]


def test_feeds_select_by_id_or_tag() -> None:
    rules = [
        Rule(id="by-id", title="t", query="police", feeds=("cbc",)),
        Rule(id="by-tag", title="t", query="police", feeds=("tag:canada",)),
        Rule(id="all", title="t", query="police"),
    ]
    ruleset = RuleSet(rules)

    def ids(feed: str, tags: frozenset[str]) -> list[str]:
        return [m.rule_id for m in ruleset.match(_item("police", feed=feed), tags)]

    assert ids("cbc", frozenset()) == ["by-id", "all"]
    assert ids("other", frozenset({"canada"})) == ["by-tag", "all"]
    assert ids("other", frozenset({"iraq"})) == ["all"]


def test_fields_default_and_field_scoping_override() -> None:
    rules = [
        Rule(id="title-only", title="t", query="police", fields=("title",)),
        Rule(id="scoped", title="t", query="summary:police", fields=("title",)),
        Rule(id="content", title="t", query="police"),
    ]
    ruleset = RuleSet(rules)
    assert [m.rule_id for m in ruleset.match(_item(summary="police"))] == ["scoped", "content"]
    assert [m.rule_id for m in ruleset.match(_item(content="police"))] == ["content"]


def test_match_group_semantics() -> None:
    rule = Rule.model_validate(
        {
            "id": "g",
            "title": "t",
            "match": {
                "all": ["Iraq OR Iraqi"],
                "any": ['"police training"', "police NEAR/5 train*"],
                "none": ['"Iraqi army"'],
            },
        }
    )
    ruleset = RuleSet([rule])
    assert ruleset.match(_item("Police will train recruits in Iraq"))
    assert not ruleset.match(_item("Police in Iraq"))
    assert not ruleset.match(_item("Police training for the Iraqi army"))


def test_nested_match_groups() -> None:
    rule = Rule.model_validate(
        {"id": "g", "title": "t", "match": {"all": ["iraq", {"any": ["rcmp", "opp"]}]}}
    )
    ruleset = RuleSet([rule])
    assert ruleset.match(_item("OPP in Iraq"))
    assert not ruleset.match(_item("Iraq"))


def test_match_groups_nested_as_deep_as_the_config_allows_are_evaluated() -> None:
    """250 levels (the rule schema refuses 254): evaluation must not hit the recursion limit."""
    group: dict[str, object] = {"all": ["police"]}
    for level in range(250):
        group = (
            {"all": [group], "any": [f"w{level}", "police"]}
            if level % 2
            else {"any": [group, "zzz"], "none": [f"n{level}"]}
        )
    ruleset = RuleSet([Rule.model_validate({"id": "g", "title": "t", "match": group})])
    assert ruleset.match(_item("Police"))
    assert not ruleset.match(_item("Police", "n0"))  # the innermost group's NOT
    assert not ruleset.match(_item("army"))


@pytest.mark.parametrize(
    ("data", "path", "column"),
    [
        ({"query": "a AND"}, ("query",), 3),
        ({"match": {"any": ["ok", "ok", "(oops"]}}, ("match", "any", 2), 1),
        ({"match": {"all": [{"any": ["ok", "NOT x"]}]}}, ("match", "all", 0, "any", 1), 1),
        ({"match": {"all": ["ok"], "none": ["x OR"]}}, ("match", "none", 0), 3),
    ],
)
def test_compile_errors_say_which_query(
    data: dict[str, object], path: tuple[object, ...], column: int
) -> None:
    rule = Rule.model_validate({"id": "r", "title": "t", **data})
    with pytest.raises(QueryError) as caught:
        compile_rule(rule)
    assert caught.value.path == path
    assert caught.value.column == column


def test_an_empty_ruleset_matches_nothing() -> None:
    assert RuleSet([]).match(_item("anything")) == []


def test_regex_only_rules_are_evaluated_on_every_item() -> None:
    ruleset = RuleSet([Rule(id="r", title="t", query="/\\bpol[a-z]+/")])
    assert ruleset.match(_item("policiers"))
    assert not ruleset.match(_item("army"))


def test_short_prefixes_still_match() -> None:
    ruleset = RuleSet([Rule(id="r", title="t", query="po*")])
    assert ruleset.match(_item("Police"))
    assert not ruleset.match(_item("Army"))


# ---------------------------------------------------------------- explain


def test_explain_gives_spans_in_the_original_text() -> None:
    rule = Rule(id="r", title="t", query='"Sûreté du Québec" NEAR/5 (Irak OR Iraq) train* -army')
    item = _item("La SÛRETÉ du Québec en IRAK : formation", "training, army")
    explanation = explain(rule, item)
    assert not explanation.matched
    assert explanation.feed_selected
    assert explanation.missing == ("iraq",)
    shown = {
        (h.term, h.field, h.negated): [item.text(h.field)[a:b] for a, b in h.spans]
        for h in explanation.hits
    }
    assert shown == {
        ("surete du quebec", "title", False): ["SÛRETÉ du Québec"],
        ("irak", "title", False): ["IRAK"],
        ("train*", "summary", False): ["training"],
        ("army", "summary", True): ["army"],
    }


def test_explain_regex_spans_map_back_through_normalization() -> None:
    rule = Rule(id="r", title="t", query="/mos+oul/")
    item = _item("Policiers à MOSSOUL, Mossoul")
    explanation = explain(rule, item)
    assert explanation.matched
    [hit] = explanation.hits
    assert [item.title[a:b] for a, b in hit.spans] == ["MOSSOUL", "Mossoul"]


def test_explain_reports_feed_selection_and_evaluates_disabled_rules() -> None:
    rule = Rule(id="r", title="t", query="police", feeds=("cbc",), enabled=False)
    assert explain(rule, _item("police", feed="cbc")).matched
    explanation = explain(rule, _item("police", feed="other"))
    assert not explanation.matched
    assert not explanation.feed_selected


@settings(max_examples=200, deadline=None)
@given(_query, _text, _text)
def test_explain_agrees_with_the_ruleset(query: str, title: str, summary: str) -> None:
    try:
        parse(query)
    except QueryError:
        return
    rule = Rule(id="r", title="t", query=query)
    item = _item(title, summary)
    explanation = explain(rule, item)
    assert explanation.matched == bool(RuleSet([rule]).match(item))
    for hit in explanation.hits:
        assert hit.spans
