"""Summaries: matched sentences first, original order, bounded, whole words, exact highlights."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts.summarize import as_written, summarize
from bot.model import Item
from bot.text import tokens


def item(summary: str = "", content: str = "") -> Item:
    return Item(feed_id="f", key="k", title="t", summary=summary, content=content)


def shown(summary_text: str, highlights: tuple[tuple[int, int], ...]) -> list[str]:
    return [summary_text[start:end] for start, end in highlights]


def test_short_text_is_kept_whole_with_every_match_highlighted() -> None:
    result = summarize(
        item("RCMP officers went to Iraq. Canadian police train Iraqi police."),
        ["rcmp", "canadian police", "iraq"],
    )
    assert result.text == "RCMP officers went to Iraq. Canadian police train Iraqi police."
    assert shown(result.text, result.highlights) == ["RCMP", "Iraq", "Canadian police"]


def test_prefers_matched_sentences_in_original_order() -> None:
    filler = "Nothing to see in this sentence at all. " * 12
    text = filler + "The Canadian police arrived in Mosul. " + filler + "Officers met in Baghdad."
    result = summarize(item(text), ["canadian police", "baghdad"])
    assert len(result.text) <= 500
    assert result.text.index("Canadian police") < result.text.index("Baghdad")
    assert shown(result.text, result.highlights) == ["Canadian police", "Baghdad"]
    assert " … " in result.text  # the sentences left out between them are marked


def test_falls_back_to_content_then_nothing() -> None:
    assert summarize(item(content="From the content."), []).text == "From the content."
    assert summarize(item("  "), ["x"]).text == ""
    assert summarize(item(), ["x"]).highlights == ()


def test_terms_match_whole_tokens_accents_and_prefixes() -> None:
    result = summarize(
        item("La Sûreté du Québec et un policeman en training."),
        ["surete du quebec", "police", "train*", "/qu.bec/"],
    )
    assert shown(result.text, result.highlights) == ["Sûreté du Québec", "training"]


def test_whitespace_and_control_characters_are_cleaned() -> None:
    result = summarize(item("Police\n\n in\x1b[31m  Iraq\u2028now"), ["iraq"])
    assert result.text == "Police in[31m Iraq now"
    assert shown(result.text, result.highlights) == ["Iraq"]


def test_one_huge_sentence_is_windowed_around_the_match() -> None:
    text = "word " * 3000 + "Canadian police " + "word " * 3000
    result = summarize(item(content=text), ["canadian police"])
    assert len(result.text) <= 500
    assert result.text.startswith("…") and result.text.endswith("…")
    assert shown(result.text, result.highlights) == ["Canadian police"]


def test_a_single_word_longer_than_the_limit_is_cut() -> None:
    result = summarize(item("x" * 20_000), [])
    assert len(result.text) == 500 and result.text.endswith("…")


def test_deterministic() -> None:
    text = "Alpha police beta. " * 100
    assert summarize(item(text), ["police"]) == summarize(item(text), ["police"])


WORDS = [
    "police",
    "Canadian",
    "Iraq",
    "Mosul",
    "RCMP",
    "training",
    "mission",
    "the",
    "a",
    "Sûreté",
    "Québec",
    "officers",
    "arrived",
    "today",
    "وزارة",
    "警察",
    "x" * 25,
]
word = st.sampled_from(WORDS)
separator = st.sampled_from([" ", " ", " ", ", ", ". ", "! ", "? ", " - ", "\n"])
text_strategy = st.lists(st.tuples(word, separator), max_size=400).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)
terms_strategy = st.lists(
    st.sampled_from(
        [
            "police",
            "canadian police",
            "iraq",
            "train*",
            "surete",
            "quebec",
            "警察",
            "mosul today",
            "/regex/",
        ]
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(text=text_strategy, terms=terms_strategy, limit=st.integers(min_value=60, max_value=600))
def test_summary_properties(text: str, terms: list[str], limit: int) -> None:
    result = summarize(item(text), terms, limit)
    assert len(result.text) <= limit
    # No half words: every token shown is a token of the original text.
    assert set(tokens(result.text)) <= set(tokens(text))
    # Highlights lie inside the text, in order, each on the tokens of one matched term.
    patterns = [(tuple(tokens(t)), t.endswith("*")) for t in terms if not t.startswith("/")]
    previous = (-1, -1)
    for start, end in result.highlights:
        assert 0 <= start < end <= len(result.text)
        assert (start, end) > previous
        previous = (start, end)
        found = tokens(result.text[start:end])
        assert any(
            found[:-1] == list(p[:-1])
            and (found[-1] == p[-1] or (prefix and found[-1].startswith(p[-1])))
            and len(found) == len(p)
            for p, prefix in patterns
        )


def test_terms_are_shown_as_the_item_writes_them() -> None:
    news = Item(
        feed_id="f",
        key="k",
        title="RCMP officers arrive in BAGHDAD",
        summary="The Canadian-Police mission; policing in Iraq.",
        content="More on the Royal Canadian Mounted Police.",
    )
    terms = ["baghdad", "canadian police", "polic*", "mounted police", "/ir[a-z]q/", "absent"]
    assert as_written(news, terms) == (
        "BAGHDAD",  # from the title first
        "Canadian-Police",  # as punctuated in the summary
        "Police",  # a prefix term: the word it matched first
        "Mounted Police",  # found in the content
        "/ir[a-z]q/",  # a regex has no written form: shown as the rule writes it
        "absent",
    )


def test_terms_written_alike_are_shown_once() -> None:
    news = Item(feed_id="f", key="k", title="Iraq news")
    assert as_written(news, ["iraq", "IRAQ"]) == ("Iraq",)
