"""The query parser: the trees it builds and the errors users see."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import QueryError
from bot.rules.query import And, Near, Not, Or, Regex, Term, expand, lint, parse, resolve_groups


def t(*words: str, prefix: bool = False, fields: tuple[str, ...] | None = None) -> Term:
    return Term(tuple(words), prefix, fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("police", t("police")),
        ("Sûreté", t("surete")),
        ("train*", t("train", prefix=True)),
        ('"Canadian police"', t("canadian", "police")),
        ('"police train*"', t("police", "train", prefix=True)),
        ("anti-terror", t("anti", "terror")),
        ("Sûreté du Québec", And((t("surete"), t("du"), t("quebec")))),
        ("a b", And((t("a"), t("b")))),
        ("a AND b", And((t("a"), t("b")))),
        ("a OR b", Or((t("a"), t("b")))),
        ("a b OR c", Or((And((t("a"), t("b"))), t("c")))),
        ("a OR b c", Or((t("a"), And((t("b"), t("c")))))),
        ("(a OR b) c", And((Or((t("a"), t("b"))), t("c")))),
        ("a NOT b", And((t("a"), Not(t("b"))))),
        ("a -b", And((t("a"), Not(t("b"))))),
        ("a -(b OR c)", And((t("a"), Not(Or((t("b"), t("c"))))))),
        ("a and b", And((t("a"), t("and"), t("b")))),
        ("a NEAR/5 b", Near((t("a"),), (t("b"),), 5)),
        ("a NEAR/5 (b OR c)", Near((t("a"),), (t("b"), t("c")), 5)),
        ("a NEAR/2 b c", And((Near((t("a"),), (t("b"),), 2), t("c")))),
        ("title:a", t("a", fields=("title",))),
        ("title:(a OR b)", Or((t("a", fields=("title",)), t("b", fields=("title",))))),
        ("title:(a summary:b)", And((t("a", fields=("title",)), t("b", fields=("summary",))))),
        ("/mos+oul/", Regex("mos+oul")),
        ("content:/x\\/y/", Regex("x/y", ("content",))),
        ("a & b", And((t("a"), t("b")))),
        ("a - b", And((t("a"), t("b")))),
        ("10:30", t("10", "30")),
        ("NOT NOT a", Not(Not(t("a")))),
    ],
)
def test_parse(query: str, tree: object) -> None:
    assert parse(query) == tree


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("&", 1, "empty query"),
        ("NOT x", 1, "NOT cannot stand alone"),
        ("-x", 1, "- cannot stand alone"),
        ("a OR NOT b", 6, "NOT cannot stand alone"),
        ("NOT", 1, "NOT needs a term right after it"),
        ("a NOT", 3, "NOT needs a term right after it"),
        ("a (b", 3, "unclosed parenthesis opened at column 3"),
        ("((a)", 1, "unclosed parenthesis opened at column 1"),
        ("a)", 2, "unmatched closing parenthesis"),
        ("()", 1, "empty parentheses"),
        ("a AND", 3, "AND needs a term on both sides"),
        ("AND a", 1, "AND needs a term on both sides"),
        ("a OR", 3, "OR needs a term on both sides"),
        ("OR b", 1, "OR needs a term on both sides"),
        ("a OR OR b", 3, "OR needs a term on both sides"),
        ("a NEAR/3", 3, "NEAR needs a term on both sides"),
        ("NEAR/3 b", 1, "NEAR needs a term on both sides"),
        ("a NEAR b", 3, "NEAR needs a distance, like NEAR/5"),
        ("a NEAR/0 b", 3, "NEAR distance must be between 1 and 1000"),
        ("a NEAR/3 /x/", 3, "NEAR joins terms, phrases or prefixes"),
        ("a NEAR/3 (b c)", 3, "NEAR joins terms, phrases or prefixes"),
        ("a NEAR/3 b NEAR/3 c", 12, "NEAR joins terms, phrases or prefixes"),
        ('a "b', 3, "unclosed quote opened at column 3"),
        ('""', 1, "'' has no letters or digits to match"),
        ("a /b", 3, "unclosed regex opened at column 3"),
        ("//", 1, "empty regex //"),
        ("/a(/", 1, "invalid regex: missing )"),
        ("/(?<=a)b/", 1, "invalid regex"),
        ("/x*/", 1, "/x*/ matches empty text"),
        ("/abc/i", 6, "unexpected 'i' right after a regex: regex flags are not supported"),
        ("titel:x", 1, "unknown field 'titel'"),
        ("title:", 1, "title: needs a term, phrase, (parentheses) or @group right after it"),
        ("title:-x", 1, "title: needs a term"),
        ("po*lice", 3, "'*' can only end a word"),
        ('"a * b"', 4, "'*' can only end a word"),
        ("a-*", 1, "'*' must directly follow a letter or digit"),
    ],
)
def test_errors(query: str, column: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.column == column


@settings(max_examples=500)
@given(st.lists(st.sampled_from([*'ab ()"*-/:\\é', "NOT", "AND", "OR", "NEAR/2", "title:"])))
def test_parse_only_ever_raises_query_errors(parts: list[str]) -> None:
    query = "".join(parts)
    try:
        parse(query)
    except QueryError as exc:
        assert 1 <= exc.column <= len(query) + 1
        assert exc.message


@given(st.text())
def test_parse_survives_any_unicode(query: str) -> None:
    with contextlib.suppress(QueryError):
        parse(query)


def test_nesting_is_bounded_at_the_opening_that_goes_too_deep() -> None:
    assert parse("(" * 100 + "a" + ")" * 100) == t("a")
    with pytest.raises(QueryError) as caught:
        parse("(" * 2000 + "a" + ")" * 2000)
    assert (caught.value.column, caught.value.message) == (
        101,
        "nested more than 100 levels deep (parentheses and NOT)",
    )


def test_negation_chains_are_bounded() -> None:
    assert parse("a " + "NOT " * 100 + "b") == And((t("a"), _negated(t("b"), 100)))
    with pytest.raises(QueryError) as caught:
        parse("a " + "-" * 2000 + "b")
    assert caught.value.column == 103


def _negated(node: object, times: int) -> object:
    for _ in range(times):
        node = Not(node)  # type: ignore[arg-type]
    return node


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("RCMP or Iraq", [(6, "or")]),
        ("RCMP And Iraq Not army", [(6, "And"), (15, "Not")]),
        ("Iraq near/5 police", [(6, "near/5")]),
        ("police | army && navy", [(8, "|"), (15, "&&")]),
        ("RCMP - Iraq", [(6, "-")]),
        ("/sûreté/", [(3, "û"), (7, "é")]),
        ("/anti–terror/ OR /الشرطة/", [(6, "–")]),
    ],
)
def test_lint_finds_the_silent_traps(query: str, found: list[tuple[int, str]]) -> None:
    parse(query)  # each parses: the traps are silent
    assert [(w.column, w.text) for w in lint(query)] == found
    assert all(query[w.column - 1 :].startswith(w.text) for w in lint(query))


@pytest.mark.parametrize(
    "query",
    ["RCMP OR Iraq", '"or" police', '"police and army"', "a NEAR/5 b", "-army police", "/surete/"],
)
def test_lint_leaves_meant_queries_alone(query: str) -> None:
    assert lint(query) == []


@pytest.mark.parametrize(
    ("query", "column"), [("a NEAR/x b", 3), ("NEAR/ b", 1), ("a NEAR/5km", 3)]
)
def test_near_slash_without_a_number_is_an_error(query: str, column: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.column == column
    assert "NEAR/ needs a distance, a number like NEAR/5" in caught.value.message


# ---------------------------------------------------------------- groups (@name)

GROUPS = {
    "police": ["police", "policier*", "police officers"],
    "services": ["RCMP", '"Surete du Quebec"'],
    "canada": ["Canada", "@services", "/canad(a|ien)/"],
}


def test_groups_flatten_nested_groups_into_their_terms() -> None:
    resolved, problems = resolve_groups(GROUPS)
    assert problems == []
    assert resolved["canada"] == ("Canada", "RCMP", '"Surete du Quebec"', "/canad(a|ien)/")
    assert resolved["police"] == ("police", "policier*", '"police officers"')


def test_a_group_is_the_or_of_its_terms_inside_near_and_not() -> None:
    resolved, _ = resolve_groups(GROUPS)
    police = (t("police"), t("policier", prefix=True), t("police", "officers"))
    tree = parse("@police NEAR/8 @services NOT @police", resolved)
    assert tree == And((Near(police, (t("rcmp"), t("surete", "du", "quebec")), 8), Not(Or(police))))
    assert parse("title:@services", resolved) == Or(
        (t("rcmp", fields=("title",)), t("surete", "du", "quebec", fields=("title",)))
    )


def test_expanding_writes_the_same_query_without_groups() -> None:
    resolved, _ = resolve_groups(GROUPS)
    query = '@police NEAR/8 @services AND NOT @canada AND "@police" title:@services'
    expanded = expand(query, resolved)
    assert expanded == (
        '(police OR policier* OR "police officers") NEAR/8 (RCMP OR "Surete du Quebec")'
        ' AND NOT (Canada OR RCMP OR "Surete du Quebec" OR /canad(a|ien)/) AND "@police"'
        ' title:(RCMP OR "Surete du Quebec")'
    )
    assert parse(expanded) == parse(query, resolved)


def test_group_mistakes_are_each_reported_at_their_entry() -> None:
    _, problems = resolve_groups(
        {
            "a": ["x", "@b"],
            "b": ["@c"],
            "c": ["@a"],
            "empty": [],
            "bad": ["police AND army", "-army", "@nope", "/(/"],
        }
    )
    messages = {(p.name, p.index): p.message for p in problems}
    assert messages[("c", 0)] == "group @c[0]: a cycle: @a -> @b -> @c -> @a"
    assert messages[("empty", None)] == "group @empty is empty: list its terms"
    assert "'police AND army' is not one term" in messages[("bad", 0)]
    assert "column 1: - cannot stand alone" in messages[("bad", 1)]
    assert messages[("bad", 2)].startswith("group @bad[2]: unknown group @nope (known: @a, @b")
    assert messages[("bad", 3)].startswith("group @bad[3]: column 1: invalid regex")
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("police NEAR/5 @iraq", 15, "unknown group @iraq (known: @canada, @police, @services)"),
        ("police AND @Police", 12, "a group is @ and its name"),
        ("@canada NEAR/3 police", 1, "@canada holds the regex /canad(a|ien)/, which NEAR"),
        ("police NEAR/3 title:@canada", 21, "@canada holds the regex"),
        ("(@canada) NEAR/3 police", 11, "NEAR joins terms"),
    ],
)
def test_a_group_reference_error_has_its_column(query: str, column: int, message: str) -> None:
    resolved, _ = resolve_groups(GROUPS)
    with pytest.raises(QueryError) as caught:
        parse(query, resolved)
    assert caught.value.column == column
    assert caught.value.message.startswith(message)
