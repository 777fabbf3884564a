"""Why a rule did or did not match an item: the data behind ``newswatch test``.

Pure: returns dataclasses with offsets into the item's original text, so the
CLI can highlight them however its output allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config.schema import Rule
from bot.model import FIELDS, Field, Item
from bot.rules.match import RuleSet, compile_rule, leaves, stem_term_keys
from bot.rules.query import Regex, Term
from bot.rules.regex import compile_regex
from bot.rules.stem import stem_keys, written
from bot.text import normalized_offsets, token_spans

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class TermHit:
    """One term of the rule found in one field, with where it occurs in that field's text.

    ``negated`` terms count against the rule (under NOT, ``-``, or in ``none:``);
    ``forms`` are the words of the item a ``word~`` term found, as the item writes them.
    """

    term: str
    field: Field
    spans: tuple[Span, ...]
    negated: bool = False
    forms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    """The verdict and its reasons.

    ``feed_selected`` is False when the rule's ``feeds:`` exclude the item's feed,
    ``language_selected`` when its ``languages:`` exclude the item's language;
    ``missing`` lists the positive terms found in none of their fields.
    """

    rule_id: str
    matched: bool
    feed_selected: bool
    hits: tuple[TermHit, ...]
    missing: tuple[str, ...]
    language_selected: bool = True


def explain(rule: Rule, item: Item, tags: frozenset[str] = frozenset()) -> Explanation:
    """Evaluate ``rule`` on ``item`` (even when disabled) and say which terms occur where.

    Raises :class:`bot.errors.QueryError` when a query of the rule is invalid.
    """
    enabled = rule.model_copy(update={"enabled": True})
    compiled = compile_rule(enabled)
    matched = bool(RuleSet([enabled]).match(item, tags))
    hits: dict[tuple[str, Field, bool], TermHit] = {}
    missing: dict[str, None] = {}
    for leaf, negated in leaves(compiled.condition):
        found = False
        for field in leaf.fields or FIELDS:
            text = item.text(field)
            spans = _spans(leaf, text)
            if spans:
                found = True
                forms = (
                    _forms(text, spans) if isinstance(leaf, Term) and leaf.stem is not None else ()
                )
                hits.setdefault(
                    (leaf.text, field, negated), TermHit(leaf.text, field, spans, negated, forms)
                )
        if not found and not negated:
            missing[leaf.text] = None
    feed_selected = compiled.applies_to(item.feed_id, tags)
    return Explanation(
        rule.id,
        matched,
        feed_selected,
        tuple(hits.values()),
        tuple(missing),
        compiled.reads(item.language),
    )


def found_terms(explanation: Explanation) -> str:
    """``rcmp (title, summary), NOT soldiers (summary), police~ = Policières (title)``: every
    term found, with its fields; a ``word~`` term with the item's words it found."""
    fields_of: dict[str, list[str]] = {}
    forms_of: dict[str, dict[str, None]] = {}
    for hit in explanation.hits:
        term = ("NOT " if hit.negated else "") + hit.term
        fields_of.setdefault(term, []).append(hit.field)
        forms_of.setdefault(term, {}).update(dict.fromkeys(hit.forms))
    return ", ".join(
        t + (f" = {', '.join(forms_of[t])}" if forms_of[t] else "") + f" ({', '.join(f)})"
        for t, f in fields_of.items()
    )


def _spans(leaf: Term | Regex, text: str) -> tuple[Span, ...]:
    if not text:
        return ()
    return _regex_spans(leaf, text) if isinstance(leaf, Regex) else _term_spans(leaf, text)


def _term_spans(term: Term, text: str) -> tuple[Span, ...]:
    """Where the term's tokens occur consecutively (the last one as a prefix for ``x*``);
    for ``word~``, each token that is the word or shares one of its stem keys."""
    spans = token_spans(text)
    if term.stem is not None:
        keys = stem_term_keys(term)
        return tuple(
            (start, end)
            for token, start, end in spans
            if token == term.tokens[0]
            or not keys.isdisjoint(stem_keys(written(text[start:end]), term.languages))
        )
    words = [word for word, _, _ in spans]
    n = len(term.tokens)
    found = []
    for i in range(len(words) - n + 1):
        last = words[i + n - 1]
        if words[i : i + n - 1] == list(term.tokens[:-1]) and (
            last.startswith(term.tokens[-1]) if term.prefix else last == term.tokens[-1]
        ):
            found.append((spans[i][1], spans[i + n - 1][2]))
    return tuple(found)


def _forms(text: str, spans: tuple[Span, ...]) -> tuple[str, ...]:
    """The distinct words at ``spans``, as the text writes them."""
    return tuple(dict.fromkeys(text[start:end] for start, end in spans))


def _regex_spans(regex: Regex, text: str) -> tuple[Span, ...]:
    """Where the regex matches the normalized text, mapped back to the original."""
    normalized, origins = normalized_offsets(text)
    return tuple(
        (origins[m.start()][0], origins[m.end() - 1][1])
        for m in compile_regex(regex.pattern).finditer(normalized)
        if m.end() > m.start()
    )
