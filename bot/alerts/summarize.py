"""Short extracts of an item's own text for alerts, built around the matched terms.

Pure, offline and deterministic: the same item and terms always give the same
summary, so a retried alert renders identically.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from bot.alerts.render import ELLIPSIS, one_line
from bot.model import Item, Summary
from bot.text import token_spans, tokens

# The end of a sentence: terminal punctuation, closing quotes or brackets, then a
# space not followed by a lower-case letter (so "e.g. the" does not split).
# Matches start only at the first mark of a run, and take it whole: a long run of
# dots is read once, not once from each of its dots.
_SENTENCE_END = re.compile(r"(?<![.!?…。！？])[.!?…。！？]++[\"'”’»)\]]*+ (?![a-z])")
_GAP = f" {ELLIPSIS} "
# When the one sentence worth showing is too long, it starts this share of the
# budget before the first match, so the match is shown with some lead-in.
_LEAD_IN = 3

Pattern = tuple[tuple[str, ...], bool]


def summarize(item: Item, terms: Sequence[str], limit: int = 500) -> Summary:
    """At most ``limit`` characters of the item's summary (else content), matched sentences first.

    Sentences keep their original order; ``…`` marks where text was left out or
    cut, and cuts fall between words. ``highlights`` are the spans of the matched
    terms in the returned text (regex terms have no token form and are not shown).
    """
    text = one_line(item.summary) or one_line(item.content)
    patterns = _patterns(terms)
    if len(text) > limit:
        text = _extract(text, patterns, limit)
    return Summary(text, tuple(_find(text, patterns)) if text else ())


def as_written(item: Item, terms: Sequence[str]) -> tuple[str, ...]:
    """Each term as it first appears in the item (title, then summary, then content), so a
    reader sees "Canadian Police", not the normalised "canadian police"; a term not found
    there (a regex) is shown as written in the rule."""
    texts = [one_line(item.title), one_line(item.summary), one_line(item.content)]
    shown = []
    for term in terms:
        patterns = _patterns([term])
        found = (
            (text, spans[0]) for text in texts if patterns and (spans := _find(text, patterns))
        )
        text, (start, end) = next(found, (term, (0, len(term))))
        shown.append(text[start:end])
    return tuple(dict.fromkeys(shown))


def _patterns(terms: Sequence[str]) -> list[Pattern]:
    """Each term as (tokens, last token is a prefix); ``/regex/`` terms are skipped."""
    patterns = []
    for term in terms:
        term = term.strip()
        if len(term) > 1 and term.startswith("/") and term.endswith("/"):
            continue
        words = tuple(tokens(term))
        if words:
            patterns.append((words, term.endswith("*")))
    return patterns


def _find(text: str, patterns: list[Pattern]) -> list[tuple[int, int]]:
    """Sorted (start, end) offsets in ``text`` of every occurrence of every pattern."""
    if not patterns:
        return []
    spans = token_spans(text)
    words = [word for word, _, _ in spans]
    found = set()
    for i in range(len(words)):
        for pattern, prefix in patterns:
            last = i + len(pattern) - 1
            if last < len(words) and _matches(words[i : last + 1], pattern, prefix):
                found.add((spans[i][1], spans[last][2]))
    return sorted(found)


def _matches(words: list[str], pattern: tuple[str, ...], prefix: bool) -> bool:
    if words[:-1] != list(pattern[:-1]):
        return False
    return words[-1] == pattern[-1] or (prefix and words[-1].startswith(pattern[-1]))


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        spans.append((start, end.end() - 1))
        start = end.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _extract(text: str, patterns: list[Pattern], limit: int) -> str:
    """Matched sentences first, then the others in order, as many as fit."""
    sentences = _sentences(text)
    starts = [start for start, _ in sentences]
    matches = _find(text, patterns)
    matched: set[int] = set()
    for start, _ in matches:
        i = bisect_right(starts, start) - 1
        if i >= 0 and start < sentences[i][1]:
            matched.add(i)
    ranked = sorted(matched) + [i for i in range(len(sentences)) if i not in matched]
    first = sentences[ranked[0]]
    if first[1] - first[0] > limit:
        k = bisect_left(matches, (first[0], 0))
        focus = matches[k][0] if k < len(matches) and matches[k][0] < first[1] else first[0]
        return _window(text, first, focus, limit)
    return _join(text, [sentences[i] for i in _fitting(text, sentences, ranked, limit)])


def _fitting(
    text: str, sentences: list[tuple[int, int]], ranked: list[int], limit: int
) -> list[int]:
    """The sentences picked in ``ranked`` order while their :func:`_join` fits ``limit``.

    The joined length is kept up to date as each sentence comes between two
    picked ones, rather than joined again for every candidate.
    """

    def gap(before: int, after: int) -> int:
        if after == before + 1 and not text[sentences[before][1] : sentences[after][0]].strip():
            return 1
        return len(_GAP)

    picked = [ranked[0]]
    length = sentences[ranked[0]][1] - sentences[ranked[0]][0]
    for i in ranked[1:]:
        grown = length + sentences[i][1] - sentences[i][0]
        if grown - 1 > limit:  # it cannot fit: between two picked ones it adds one less
            continue
        place = bisect_right(picked, i)
        if place:
            grown += gap(picked[place - 1], i)
        if place < len(picked):
            grown += gap(i, picked[place])
            if place:
                grown -= gap(picked[place - 1], picked[place])
        if grown <= limit:
            picked.insert(place, i)
            length = grown
    return picked


def _join(text: str, picked: list[tuple[int, int]]) -> str:
    """The sentences in text order; an ellipsis stands for every sentence left out between them."""
    parts: list[str] = []
    previous_end = None
    for start, end in sorted(picked):
        if previous_end is not None:
            parts.append(" " if text[previous_end:start].strip() == "" else _GAP)
        parts.append(text[start:end])
        previous_end = end
    return "".join(parts)


def _window(text: str, sentence: tuple[int, int], focus: int, limit: int) -> str:
    """Part of one over-long sentence around ``focus``, cut at word boundaries."""
    start, end = sentence
    lead = ""
    if focus - start > limit // _LEAD_IN:
        space = text.find(" ", focus - limit // _LEAD_IN, focus)
        if space != -1:
            start, lead = space + 1, ELLIPSIS
    piece = text[start:end]
    if len(lead) + len(piece) <= limit:
        return lead + piece
    room = limit - len(lead) - len(ELLIPSIS)
    cut = piece.rfind(" ", 0, room + 1)
    piece = piece[:cut] if cut > 0 else piece[:room]
    return lead + piece.rstrip() + ELLIPSIS
