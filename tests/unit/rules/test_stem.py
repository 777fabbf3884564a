"""``word~``: a word's inflections through Snowball stems, on real forms, and the index."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.rules.match as matcher
from bot.config.schema import Rule
from bot.errors import QueryError
from bot.model import FIELDS, Hit, Item
from bot.rules.explain import explain, found_terms
from bot.rules.match import RuleSet, compile_rule
from bot.rules.query import And, Near, Node, Not, Or, Term, parse
from bot.rules.stem import compared_in, stem_keys, term_keys, written
from bot.text import accented_tokens, token_spans, tokens


def _matches(query: str, text: str) -> bool:
    rule = Rule(id="r", title="t", query=query)
    return bool(RuleSet([rule]).match(Item(feed_id="f", key="k", title=text)))


# Real forms from news text: each query matches every form on its line.
INFLECTED = [
    ("policier~", ["policier", "policiers", "policière", "policières", "Policières"]),
    ("policière~", ["policier", "policiers", "policières", "POLICIÈRES"]),
    ("policiere~", ["policieres", "policière"]),  # written without accents, as users may
    ("police~", ["police", "polices", "policing", "Police"]),
    ("officer~", ["officer", "officers", "Officers"]),
    ("officier~", ["officiers", "officier"]),
    ("train~", ["training", "trained", "trains"]),
    ("trainee~", ["trainees"]),
    ("deploy~", ["deployed", "deployment", "deploys"]),
    ("déployer~", ["déployés", "déployé", "deploye"]),
    ("canadien~", ["canadiens", "canadienne", "canadiennes"]),
    ("canadian~", ["Canadians"]),
    ("iraqi~", ["Iraqis"]),
    ("irakien~", ["irakiens", "irakienne", "irakiennes"]),
    ("полицейский~", ["полицейские", "полицейских", "полицейскими", "Полицейский"]),
    ("полиция~", ["полиции", "полицию", "полицией"]),
    ("канадский~", ["канадские", "канадской", "канадских"]),
    ("شرطة~", ["الشرطة", "بالشرطة", "للشرطة", "شرطة", "الشُّرطة"]),
    ("العراق~", ["عراق", "العراقية"]),
    ("نیرو~", ["نیروهای"]),  # Persian: forces
    ("policía~", ["policías", "policia"]),
    ("poliziotto~", ["poliziotti"]),
    ("polizia~", ["polizie"]),
    ("Polizist~", ["Polizisten"]),
    ("soldat~de", ["Soldaten"]),
]


@pytest.mark.parametrize(
    ("query", "form"), [(query, form) for query, forms in INFLECTED for form in forms]
)
def test_a_stemmed_word_matches_its_inflected_forms(query: str, form: str) -> None:
    assert _matches(query, f"Report: {form} were sent on Monday")


# Words a stemmed query must not match: other words, and cross-language accidents.
NOT_INFLECTED = [
    ("police~", ["policy", "policeman", "polizia"]),
    ("police~en", ["policies"]),
    ("canada~", ["can", "Can", "cane"]),  # Spanish cuts canada to "can": too short, unused
    ("train~en", ["trainee", "trainees"]),  # Snowball keeps the agent noun apart
    ("policier~fr", ["policy", "police"]),  # ~fr: French only (English stems policier too)
    ("полицейский~", ["полиция", "police"]),
    ("irak~", ["iraq", "Iraqi"]),
]


@pytest.mark.parametrize(
    ("query", "word"), [(query, word) for query, words in NOT_INFLECTED for word in words]
)
def test_a_stemmed_word_does_not_match_other_words(query: str, word: str) -> None:
    assert not _matches(query, f"Report: {word} on Monday")


# Every word is stemmed in every default language, since an item's language is not known:
# these merges were measured on real news vocabulary; ~xx leaves them out.
CROSS_LANGUAGE = [
    ("police~", "policies", "police~en"),  # French cuts both to "polic"
    ("policier~", "policy", "policier~fr"),  # English cuts both to "polici"
    ("train~", "trainees", "train~en"),  # Spanish cuts both to "train"
]


@pytest.mark.parametrize(("query", "word", "narrowed"), CROSS_LANGUAGE)
def test_a_language_code_leaves_out_cross_language_merges(
    query: str, word: str, narrowed: str
) -> None:
    assert _matches(query, word)
    assert not _matches(narrowed, word)


def test_a_short_stem_is_not_used_but_the_word_itself_always_is() -> None:
    assert term_keys("canada", ("es",)) == frozenset()  # Spanish "can": unused
    assert stem_keys("can", ("es",)) == frozenset({"\x02es:can"})
    assert _matches("canada~es", "Canada")
    assert _matches("war~", "war") and _matches("war~", "wars")
    assert term_keys("شرطة", ("ar",)) == frozenset({"\x02ar:شرط"})  # Arabic: 3-letter roots


def test_accented_tokens_pair_each_token_with_its_written_form() -> None:
    text = "Des POLICIÈRES — formées à Mossoul; полицейской; الشُّرطة; plain words"
    assert accented_tokens(text) == [
        ("policieres", "policières"),
        ("formees", "formées"),
        ("a", "à"),
        ("полицеискои", "полицейской"),
        ("الشرطة", "الشُّرطة"),
    ]
    assert accented_tokens("all ASCII, nothing to pair") == []


# ---------------------------------------------------------------- the query language


def test_the_term_keeps_the_word_as_written() -> None:
    term = parse("Policière~")
    assert term == Term(("policiere",), stem="", written="policière")
    assert term.text == "policière~"
    assert parse("title:police~fr") == Term(("police",), False, ("title",), "fr", "police")
    assert parse("police~FR") == Term(("police",), stem="fr", written="police")


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ('"police officers"~', 18, "~ stems one word, not a phrase"),
        ('x "police~ officers"', 10, "~ stems one word, not a phrase: write each word"),
        ("/polic/~", 8, "~ stems one word, not a regex"),
        ("train*~", 7, "~ cannot follow a prefix"),
        ("@police~", 8, "~ stems one word, not a group"),
        ("anti-terror~", 12, "~ stems one word, and 'anti-terror' is 2 (anti terror)"),
        ("police~xx", 7, "~xx: no stemmer for language 'xx'"),
        ("~fr", 1, "'~fr': ~ needs a word before it"),
    ],
)
def test_misplaced_stems_are_errors_at_the_tilde(query: str, column: int, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse(query, {"police": ("police",)})
    assert raised.value.column == column
    assert query[column - 1] == "~"
    assert raised.value.message.startswith(message)


# ---------------------------------------------------------------- hits and explanations


def test_hits_name_the_items_words() -> None:
    rule = Rule(id="r", title="t", query="policier~ NEAR/3 canadien~")
    item = Item("f", "k", "Des policières canadiennes", summary="Deux policiers canadiens")
    [match] = RuleSet([rule]).match(item)
    assert match.hits == (
        Hit("policieres", "title"),
        Hit("policiers", "summary"),
        Hit("canadiennes", "title"),
        Hit("canadiens", "summary"),
    )


def test_explain_shows_the_inflected_forms_found() -> None:
    rule = Rule(id="r", title="t", query="policier~ -soldat~")
    item = Item("f", "k", "Des Policières à Mossoul", summary="avec des soldats")
    explanation = explain(rule, item)
    assert not explanation.matched
    assert (
        found_terms(explanation)
        == "policier~ = Policières (title), NOT soldat~ = soldats (summary)"
    )
    [hit] = [h for h in explanation.hits if h.field == "title"]
    assert [item.title[a:b] for a, b in hit.spans] == ["Policières"]


def test_near_counts_positions_of_inflected_forms() -> None:
    assert _matches("policier~ NEAR/2 canada", "policières du Canada")
    assert not _matches("policier~ NEAR/2 canada", "policières de la ville du Canada")
    assert _matches("canada NEAR/1 (policier~ OR gendarme~)", "Canada: gendarmes")


# ---------------------------------------------------------------- properties

_LETTERS = "abcdefghijklmnopqrstuvwxyzéèàçüößñабвгдейклмнопрстуяالشرطةكند"
_word = st.text(alphabet=_LETTERS, min_size=1, max_size=12).filter(
    lambda w: len(tokens(w)) == 1 and w.upper() not in ("AND", "OR", "NOT")
)


@settings(max_examples=300, deadline=None)
@given(_word, st.lists(_word, max_size=6), st.lists(_word, max_size=6), st.booleans())
def test_a_stemmed_word_matches_any_text_holding_the_word_itself(
    word: str, before: list[str], after: list[str], upper: bool
) -> None:
    text = " ".join([*before, word.upper() if upper else word, *after])
    assert _matches(f"{word}~", text)


def _occurs(
    node: Term, words: list[tuple[str, str]], language: str | None = None
) -> list[tuple[int, int]]:
    """Positions of a term among (token, written form) pairs of an item in ``language``, by
    brute force: every form stemmed afresh in the languages the term reads it in."""
    if node.stem is None:
        n = len(node.tokens)
        return [
            (i, i + n - 1)
            for i in range(len(words) - n + 1)
            if [t for t, _ in words[i : i + n]] == list(node.tokens)
        ]
    languages = compared_in(node.languages, language)
    keys = term_keys(node.written, languages)
    return [
        (i, i)
        for i, (token, form) in enumerate(words)
        if token == node.tokens[0] or not keys.isdisjoint(stem_keys(form, languages))
    ]


def _reference(
    node: Node, item: dict[str, list[tuple[str, str]]], language: str | None = None
) -> bool:
    """The meaning of a compiled (scoped) condition on an item in ``language``, naively,
    stemming every token afresh."""
    match node:
        case Term():
            return any(_occurs(node, item[f], language) for f in node.fields or FIELDS)
        case Near(left=left, right=right, distance=d):
            for f in FIELDS:
                a = [
                    o
                    for t in left
                    if f in (t.fields or FIELDS)
                    for o in _occurs(t, item[f], language)
                ]
                b = [
                    o
                    for t in right
                    if f in (t.fields or FIELDS)
                    for o in _occurs(t, item[f], language)
                ]
                if any(max(s2 - e1, s1 - e2, 0) <= d for s1, e1 in a for s2, e2 in b):
                    return True
            return False
        case Not(child=child):
            return not _reference(child, item, language)
        case And(children=children):
            return all(_reference(c, item, language) for c in children)
        case Or(children=children):
            return any(_reference(c, item, language) for c in children)
    raise TypeError(node)


_FORMS = [
    *["policier", "policiers", "policière", "Policières", "police", "policing", "policy"],
    *["officer", "officers", "office", "training", "trains", "Canada", "can", "Canadians"],
    *["canadienne", "canadiens", "Irak", "irakiens", "soldats", "полицейские", "полицейских"],
    *["Канада", "канадской", "الشرطة", "بالشرطة", "كندا", "the", "des", "in", "à"],
]
_STEMMED = ["policier~", "police~", "officer~", "train~", "canada~", "canadien~fr"]
_STEMMED += ["irakien~", "soldat~", "полицейский~", "канада~", "شرطة~", "policier~en"]
_PLAIN = ["irak", "canada", "des", "office", '"police officers"']


def _rule_query(rng: random.Random) -> str:
    def leaf() -> str:
        return rng.choice(_STEMMED) if rng.random() < 0.7 else rng.choice(_PLAIN)

    forms = [
        lambda: leaf(),
        lambda: f"{leaf()} OR {leaf()}",
        lambda: f"{leaf()} {leaf()}",
        lambda: f"({rng.choice(_STEMMED)} OR irak) NEAR/{rng.randint(1, 4)} {rng.choice(_STEMMED)}",
        lambda: f"{leaf()} -{rng.choice(_STEMMED)}",
        lambda: f"title:{rng.choice(_STEMMED)} summary:{leaf()}",
    ]
    return rng.choice(forms)()


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_FORMS) for _ in range(rng.randint(0, 9)))


def _pairs(text: str) -> list[tuple[str, str]]:
    return [(token, written(text[a:b])) for token, a, b in token_spans(text)]


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_index_agrees_with_evaluating_every_rule(rng: random.Random) -> None:
    rules = [Rule(id=f"r{i}", title="t", query=_rule_query(rng)) for i in range(20)]
    ruleset = RuleSet(rules)
    conditions = [compile_rule(r).condition for r in rules]
    for _ in range(6):
        item = Item("f", "k", _text(rng), summary=_text(rng), content=_text(rng))
        fields = {f: _pairs(item.text(f)) for f in FIELDS}
        expected = [r.id for r, c in zip(rules, conditions, strict=True) if _reference(c, fields)]
        assert [m.rule_id for m in ruleset.match(item)] == expected


def test_stem_keys_survive_a_full_token_cache_and_retuning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matcher, "TOKEN_CACHE", 3)
    monkeypatch.setattr(matcher, "SAMPLE_EVERY", 1)
    monkeypatch.setattr(matcher, "FIRST_RETUNE", 8)
    rng = random.Random(5)
    rules = [Rule(id=f"r{i}", title="t", query=_rule_query(rng)) for i in range(40)]
    ruleset = RuleSet(rules)
    conditions = [compile_rule(r).condition for r in rules]
    matched = 0
    for _ in range(200):
        item = Item("f", "k", _text(rng), summary=_text(rng))
        fields = {f: _pairs(item.text(f)) for f in FIELDS}
        expected = [r.id for r, c in zip(rules, conditions, strict=True) if _reference(c, fields)]
        assert [m.rule_id for m in ruleset.match(item)] == expected
        matched += len(expected)
    assert matched > 100


# Items in the languages of the forms above, in one the bare word~ does not stem in (nl: read
# in all of them), and of unknown language.
_ITEM_LANGUAGES = [None, "en", "fr", "ru", "ar", "de", "nl"]


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_index_agrees_with_reading_each_item_in_its_language(rng: random.Random) -> None:
    rules = [Rule(id=f"r{i}", title="t", query=_rule_query(rng)) for i in range(20)]
    ruleset = RuleSet(rules)
    conditions = [compile_rule(r).condition for r in rules]
    for _ in range(6):
        language = rng.choice(_ITEM_LANGUAGES)
        item = Item("f", "k", _text(rng), summary=_text(rng), language=language)
        fields = {f: _pairs(item.text(f)) for f in FIELDS}
        expected = [
            r.id for r, c in zip(rules, conditions, strict=True) if _reference(c, fields, language)
        ]
        assert [m.rule_id for m in ruleset.match(item)] == expected


def _matches_in(query: str, text: str, language: str | None) -> bool:
    rule = Rule(id="r", title="t", query=query)
    return bool(RuleSet([rule]).match(Item("f", "k", text, language=language)))


@pytest.mark.parametrize(("query", "word", "narrowed"), CROSS_LANGUAGE)
def test_an_item_of_known_language_is_read_in_that_language_only(
    query: str, word: str, narrowed: str
) -> None:
    language = narrowed[-2:]  # the merge comes from another language than this one
    assert _matches_in(query, word, None)
    assert not _matches_in(query, word, language)


def test_a_french_item_still_meets_french_inflections() -> None:
    assert _matches_in("policier~", "Policières", "fr")
    assert _matches_in("police~", "policies", "fr")  # French cuts both to "polic"


def test_an_item_in_a_language_the_word_is_not_stemmed_in_is_read_in_all_of_them() -> None:
    assert _matches_in("police~", "policies", "nl")
    assert _matches_in("police~", "policies", "ku")


def test_a_named_language_is_read_whatever_the_item_language() -> None:
    # English cuts both to "polici"; French reads "policy" otherwise.
    assert _matches_in("policier~en", "policy", "fr")
    assert not _matches_in("policier~", "policy", "fr")
    rules = [
        Rule(id="bare", title="t", query="police~"),
        Rule(id="en", title="t", query="policier~en"),
    ]
    found = RuleSet(rules).match(Item("f", "k", "policy policies", language="fr"))
    assert [m.rule_id for m in found] == ["bare", "en"]
    assert found[0].hits == (Hit("policies", "title"),)  # not "policy": read in French
    assert found[1].hits == (Hit("policy", "title"), Hit("policies", "title"))  # English


def test_english_reads_a_word_as_normalized_only() -> None:
    assert stem_keys("protégés", ("en",)) == stem_keys("proteges", ("en",))
    assert _matches_in("protege~en", "Protégés", "en")
