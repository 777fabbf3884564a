"""Normalization and tokenization: the ground every match stands on."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text import _token_regex, normalize, normalized_offsets, token_spans, tokens


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Sûreté du Québec", "surete du quebec"),
        ("MOSSOUL", "mossoul"),
        ("Straße", "strasse"),
        ("ＲＣＭＰ", "rcmp"),
        ("ﬁnance", "finance"),
        ("l’Irak", "l'irak"),
        ("« Irak »", '" irak "'),
        ("anti–terror — x", "anti-terror - x"),
        ("Ολυμπία", "ολυμπια"),
        ("Ёлка Йошкар", "елка иошкар"),
        ("الْمَوْصِلُ", "الموصل"),
        ("شرطـــة", "شرطة"),
        ("東京 警察", "東京 警察"),
        ("हिन्दी", "हिन्दी"),
        ("Łódź Øresund", "lodz oresund"),
        ("e\u0301te\u0301", "ete"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Canada's RCMP, in Iraq!", ["canada", "s", "rcmp", "in", "iraq"]),
        ("anti-terror", ["anti", "terror"]),
        ("policeman police_force", ["policeman", "police", "force"]),
        ("d’Irak (Mossoul)", ["d", "irak", "mossoul"]),
        ("كندا، الموصل.", ["كندا", "الموصل"]),
        ("हिन्दी विकिपीडिया", ["हिन्दी", "विकिपीडिया"]),
        ("2017-01-05 20 officers", ["2017", "01", "05", "20", "officers"]),
        ("", []),
        ("   ...  ", []),
        ("\x00\ud800\U0010ffff", []),
    ],
)
def test_tokens(raw: str, expected: list[str]) -> None:
    assert tokens(raw) == expected


def test_token_spans_point_into_the_original() -> None:
    text = "La Sûreté du Québec — à Mossoul"
    spans = token_spans(text)
    assert [t for t, _, _ in spans] == ["la", "surete", "du", "quebec", "a", "mossoul"]
    assert [text[s:e] for _, s, e in spans] == ["La", "Sûreté", "du", "Québec", "à", "Mossoul"]


def test_token_spans_cover_decomposed_accents() -> None:
    text = "Sure\u0301te\u0301!"
    assert token_spans(text) == [("surete", 0, 8)]


@settings(max_examples=500)
@given(st.text())
def test_token_spans_agree_with_tokens(text: str) -> None:
    spans = token_spans(text)
    assert [t for t, _, _ in spans] == tokens(text)
    previous_start = 0  # one character can yield several tokens: "¼" is "1", "4"
    for _, start, end in spans:
        assert previous_start <= start < end <= len(text)
        previous_start = start


_READABLE = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 -'.,éÉüçœß’—«»") + list("الموصلَُ") + ["е", "й"])
)


@settings(max_examples=300)
@given(_READABLE)
def test_each_span_tokenizes_to_its_token(text: str) -> None:
    for token, start, end in token_spans(text):
        assert tokens(text[start:end]) == [token]


@settings(max_examples=500)
@given(st.text())
def test_normalize_is_idempotent_on_tokens(text: str) -> None:
    assert tokens(normalize(text)) == tokens(text)


@given(st.text())
def test_tokens_are_normalized_and_never_empty(text: str) -> None:
    for token in tokens(text):
        assert token
        assert " " not in token


def _whole_string_tokens(text: str) -> list[str]:
    """The definition: tokenize the whole normalized text (slow, obviously right)."""
    normalized = normalize(text)
    return _token_regex(normalized).findall(normalized)


def _no_mark_after_ascii_punctuation(text: str) -> bool:
    """Exclude the documented exotic case: "=" + U+0338 normalizes to "≠" as a whole only."""
    return not any(
        unicodedata.category(b).startswith("M") and a.isascii() and not a.isalnum()
        for a, b in itertools.pairwise(text)
    )


@settings(max_examples=1000)
@given(st.text().filter(_no_mark_after_ascii_punctuation))
def test_fast_tokens_equal_whole_string_tokens(text: str) -> None:
    assert tokens(text) == _whole_string_tokens(text)


@settings(max_examples=300)
@given(_READABLE)
def test_fast_tokens_equal_whole_string_tokens_on_news_like_text(text: str) -> None:
    assert tokens(text) == _whole_string_tokens(text)


_WORDS_AND_GAPS = st.lists(
    st.tuples(
        st.sampled_from(["police", "Québec", "l’Irak", "—", "ŁÓDŹ", "ﬁnance", "東京", "x2", "é"]),
        st.sampled_from([" ", "  ", "\t", ", ", "-", "\n", "'", ""]),
    ),
    max_size=30,
)


@settings(max_examples=300)
@given(_WORDS_AND_GAPS)
def test_fast_tokens_equal_whole_string_tokens_across_many_words(
    parts: list[tuple[str, str]],
) -> None:
    """Long texts mixing ASCII stretches with non-ASCII words anywhere, as news text does."""
    text = "".join(word + gap for word, gap in parts)
    assert tokens(text) == _whole_string_tokens(text)


def test_normalized_offsets_map_back_to_the_original() -> None:
    text = "À MOSSOUL, ﬁn"
    normalized, origins = normalized_offsets(text)
    assert normalized == "a mossoul, fin"
    assert len(origins) == len(normalized)
    assert text[origins[0][0] : origins[0][1]] == "À"
    assert text[origins[-1][0] : origins[-1][1]] == "n"
    assert origins[-3] == origins[-2] == (11, 12)  # "fi" both come from "ﬁ"
