"""Matching items against a set of rules, fast enough to run on every item.

A :class:`RuleSet` interns every term of every rule once and builds one
Aho-Corasick automaton over them. Per item, each field is tokenized once and
joined with spaces (`` canadian police in iraq ``); one automaton pass finds
every term, phrase and prefix at once (a term is `` police ``, a phrase
`` canadian police ``, a prefix `` train``). Only rules that one of their
*trigger* terms hit (a set of terms at least one of which any match needs) are
then evaluated, as closures compiled from the query tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import ahocorasick
import re2

from bot.errors import QueryError
from bot.model import FIELDS, Field, Hit, Item, Match
from bot.query import And, Near, Node, Not, Or, Regex, Term, compile_regex, parse
from bot.settings import MatchGroup, Rule
from bot.text import normalize, token_text

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule's whole condition as one query tree, every leaf scoped to its fields."""

    rule: Rule
    condition: Node
    feed_ids: frozenset[str]
    feed_tags: frozenset[str]

    def applies_to(self, feed_id: str, tags: frozenset[str]) -> bool:
        """``feeds:`` lists feed ids and ``tag:x`` entries; an empty list means every feed."""
        if not self.feed_ids and not self.feed_tags:
            return True
        return feed_id in self.feed_ids or not self.feed_tags.isdisjoint(tags)


def compile_rule(rule: Rule) -> CompiledRule:
    """Parse every query of ``rule``; a :class:`QueryError` says which one failed in ``path``."""
    if rule.query is not None:
        condition = _parse_at(rule.query, ("query",))
    else:
        assert rule.match is not None  # the Rule model guarantees one of the two
        condition = _group(rule.match, ("match",))
    feed_tags = frozenset(f[4:] for f in rule.feeds if f.startswith("tag:"))
    feed_ids = frozenset(f for f in rule.feeds if not f.startswith("tag:"))
    return CompiledRule(rule, scope(condition, rule.fields), feed_ids, feed_tags)


def _parse_at(query: str, path: Path) -> Node:
    try:
        return parse(query)
    except QueryError as exc:
        raise QueryError(exc.message, exc.column, path) from None


def _group(group: MatchGroup, path: Path) -> Node:
    """``all`` AND (one of ``any``) AND NOT (any of ``none``), as one tree."""

    def entry(value: str | MatchGroup, where: Path) -> Node:
        return _parse_at(value, where) if isinstance(value, str) else _group(value, where)

    parts = [entry(e, (*path, "all", i)) for i, e in enumerate(group.all)]
    choices = [entry(e, (*path, "any", i)) for i, e in enumerate(group.any)]
    if choices:
        parts.append(choices[0] if len(choices) == 1 else Or(tuple(choices)))
    parts += [Not(entry(e, (*path, "none", i))) for i, e in enumerate(group.none)]
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def scope(node: Node, fields: tuple[Field, ...]) -> Node:
    """Give every leaf without an explicit ``field:`` the rule's ``fields``."""
    match node:
        case Term(fields=None):
            return Term(node.tokens, node.prefix, fields)
        case Regex(fields=None):
            return Regex(node.pattern, fields)
        case Term() | Regex():
            return node
        case Near(left=left, right=right, distance=distance):
            return Near(_scoped_term(left, fields), _scoped_term(right, fields), distance)
        case Not(child=child):
            return Not(scope(child, fields))
        case And(children=children):
            return And(tuple(scope(c, fields) for c in children))
        case Or(children=children):
            return Or(tuple(scope(c, fields) for c in children))
    raise TypeError(node)


def _scoped_term(term: Term, fields: tuple[Field, ...]) -> Term:
    return term if term.fields is not None else Term(term.tokens, term.prefix, fields)


def term_pattern(term: Term) -> str:
    """The string a term is found as in a space-joined, space-padded token text."""
    return " " + " ".join(term.tokens) + ("" if term.prefix else " ")


def joined_tokens(text: str) -> str:
    """A field's tokens joined and padded with spaces, the text the automaton scans."""
    return f" {token_text(text)} "


def leaves(node: Node, negated: bool = False) -> Iterable[tuple[Term | Regex, bool]]:
    """Every term and regex of a tree, in query order, with whether it counts negatively."""
    match node:
        case Term() | Regex():
            yield node, negated
        case Near(left=left, right=right):
            yield left, negated
            yield right, negated
        case Not(child=child):
            yield from leaves(child, not negated)
        case And(children=children) | Or(children=children):
            for child in children:
                yield from leaves(child, negated)


# ---------------------------------------------------------------- per-item state


class _ItemState:
    """What one item's fields contain: term hits per field, and lazily, regex results."""

    __slots__ = ("found", "item", "joined", "normalized", "regex_results", "regexes")

    def __init__(self, item: Item, regexes: list[re2._Regexp]) -> None:
        self.item = item
        self.found: list[dict[int, list[int]]] = [{}, {}, {}]
        self.joined = ["", "", ""]
        self.normalized: list[str | None] = [None, None, None]
        self.regexes = regexes
        self.regex_results: dict[tuple[int, int], bool] = {}

    def regex(self, regex_id: int, field: int) -> bool:
        key = (regex_id, field)
        result = self.regex_results.get(key)
        if result is None:
            text = self.normalized[field]
            if text is None:
                text = self.normalized[field] = normalize(self.item.text(FIELDS[field]))
            result = self.regexes[regex_id].search(text) is not None
            self.regex_results[key] = result
        return result


Condition = Callable[[_ItemState], bool]


TermInfo = tuple[int, int, int]  # (term id, pattern length, number of tokens)
Report = tuple[str, int | None, int | None, tuple[int, ...]]  # (text, term id, regex id, fields)


def _near_in(state: _ItemState, field: int, left: TermInfo, right: TermInfo, distance: int) -> bool:
    """Whether an occurrence of each term lies within ``distance`` token positions."""
    found = state.found[field]
    left_ends = found.get(left[0])
    right_ends = found.get(right[0])
    if not left_ends or not right_ends:
        return False
    joined = state.joined[field]
    a = [_token_span(joined, end, left) for end in left_ends]
    b = [_token_span(joined, end, right) for end in right_ends]
    return any(max(s2 - e1, s1 - e2, 0) <= distance for s1, e1 in a for s2, e2 in b)


def _token_span(joined: str, end: int, term: TermInfo) -> tuple[int, int]:
    """First and last token positions of a term occurrence ending at char ``end``."""
    _, length, count = term
    first = joined.count(" ", 0, end - length + 1)
    return first, first + count - 1


# ---------------------------------------------------------------- the rule set


class RuleSet:
    """Every enabled rule, compiled once; :meth:`match` is the per-item hot path."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = [compile_rule(r) for r in rules if r.enabled]
        self._terms: dict[str, int] = {}
        self._term_info: list[TermInfo] = []
        self._regex_ids: dict[str, int] = {}
        self._regexes: list[re2._Regexp] = []
        self._conditions = [self._compile(r.condition) for r in self.rules]
        self._reports = [self._reporters(r.condition) for r in self.rules]
        self._triggered_by: list[list[int]] = []
        self._always: list[int] = []
        self._index_triggers()
        self._automaton = self._build_automaton()
        self._fields = sorted(
            {
                f
                for r in self.rules
                for leaf, _ in leaves(r.condition)
                for f in _field_indices(leaf.fields)
            }
        )

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, item: Item, tags: frozenset[str] = frozenset()) -> list[Match]:
        """Every rule the item matches, in rule order, each with the positive terms found."""
        state = _ItemState(item, self._regexes)
        hit: set[int] = set()
        automaton = self._automaton
        for field in self._fields:
            text = item.text(FIELDS[field])
            if not text:
                continue
            joined = state.joined[field] = joined_tokens(text)
            found = state.found[field]
            for end, term_id in automaton.iter(joined):
                ends = found.get(term_id)
                if ends is None:
                    found[term_id] = [end]
                else:
                    ends.append(end)
            hit.update(found)
        candidates = set(self._always)
        for term_id in hit:
            candidates.update(self._triggered_by[term_id])
        matches = []
        for index in sorted(candidates):
            rule = self.rules[index]
            if rule.applies_to(item.feed_id, tags) and self._conditions[index](state):
                matches.append(Match(rule.rule.id, self._hits(index, state)))
        return matches

    # -- compilation

    def _term_id(self, term: Term) -> TermInfo:
        pattern = term_pattern(term)
        term_id = self._terms.setdefault(pattern, len(self._terms))
        if term_id == len(self._term_info):
            self._term_info.append((term_id, len(pattern), len(term.tokens)))
        return self._term_info[term_id]

    def _regex_id(self, pattern: str) -> int:
        regex_id = self._regex_ids.setdefault(pattern, len(self._regex_ids))
        if regex_id == len(self._regexes):
            self._regexes.append(compile_regex(pattern))
        return regex_id

    def _compile(self, node: Node) -> Condition:
        match node:
            case Term():
                return _any_field(self._term_id(node)[0], _field_indices(node.fields))
            case Regex():
                return _any_regex(self._regex_id(node.pattern), _field_indices(node.fields))
            case Near(left=left, right=right, distance=distance):
                return self._near(left, right, distance)
            case Not(child=child):
                inner = self._compile(child)
                return lambda state: not inner(state)
            case And(children=children):
                return _all_of([self._compile(c) for c in _cheap_first(children)])
            case Or(children=children):
                return _any_of([self._compile(c) for c in _cheap_first(children)])
        raise TypeError(node)

    def _near(self, left: Term, right: Term, distance: int) -> Condition:
        a, b = self._term_id(left), self._term_id(right)
        shared = [f for f in _field_indices(left.fields) if f in _field_indices(right.fields)]
        return lambda state: any(_near_in(state, f, a, b, distance) for f in shared)

    def _reporters(self, condition: Node) -> list[Report]:
        """What to report of each positive leaf, deduplicated, in query order."""
        seen: dict[tuple[str, tuple[int, ...]], Report] = {}
        for leaf, negated in leaves(condition):
            if negated:
                continue
            fields = _field_indices(leaf.fields)
            if isinstance(leaf, Term):
                report = (leaf.text, self._term_id(leaf)[0], None, fields)
            else:
                report = (leaf.text, None, self._regex_id(leaf.pattern), fields)
            seen.setdefault((leaf.text, fields), report)
        return list(seen.values())

    def _hits(self, index: int, state: _ItemState) -> tuple[Hit, ...]:
        hits: dict[Hit, None] = {}
        for text, term_id, regex_id, fields in self._reports[index]:
            for field in fields:
                if _present(state, term_id, regex_id, field):
                    hits[Hit(text, FIELDS[field])] = None
        return tuple(hits)

    def _index_triggers(self) -> None:
        self._triggered_by = [[] for _ in self._terms]
        for index, rule in enumerate(self.rules):
            cover = _cover(rule.condition, self._terms)
            if cover is None:
                self._always.append(index)
                continue
            for term_id in cover:
                self._triggered_by[term_id].append(index)

    def _build_automaton(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        for pattern, term_id in self._terms.items():
            automaton.add_word(pattern, term_id)
        if self._terms:
            automaton.make_automaton()
        return automaton


def _present(state: _ItemState, term_id: int | None, regex_id: int | None, field: int) -> bool:
    if term_id is not None:
        return term_id in state.found[field]
    return regex_id is not None and state.regex(regex_id, field)


def _field_indices(fields: tuple[Field, ...] | None) -> tuple[int, ...]:
    return tuple(FIELDS.index(f) for f in fields or FIELDS)


def _any_field(term_id: int, fields: tuple[int, ...]) -> Condition:
    if len(fields) == 1:
        (field,) = fields
        return lambda state: term_id in state.found[field]
    return lambda state: any(term_id in state.found[f] for f in fields)


def _any_regex(regex_id: int, fields: tuple[int, ...]) -> Condition:
    return lambda state: any(state.regex(regex_id, f) for f in fields)


def _all_of(conditions: list[Condition]) -> Condition:
    def check(state: _ItemState) -> bool:
        return all(c(state) for c in conditions)

    return check


def _any_of(conditions: list[Condition]) -> Condition:
    def check(state: _ItemState) -> bool:
        return any(c(state) for c in conditions)

    return check


def _has_regex(node: Node) -> bool:
    return any(isinstance(leaf, Regex) for leaf, _ in leaves(node))


def _cheap_first(children: tuple[Node, ...]) -> list[Node]:
    """Order operands so regexes run last, when term checks have not decided already."""
    return sorted(children, key=_has_regex)


def _cover(node: Node, terms: dict[str, int]) -> frozenset[int] | None:
    """Terms at least one of which must be present for ``node`` to hold; None if no such set."""
    match node:
        case Term():
            return frozenset((terms[term_pattern(node)],))
        case Near(left=left):
            return frozenset((terms[term_pattern(left)],))
        case Not(child=Not(child=child)):
            return _cover(child, terms)
        case And(children=children):
            covers = [c for c in (_cover(child, terms) for child in children) if c is not None]
            return min(covers, key=len, default=None)
        case Or(children=children):
            union: set[int] = set()
            for child in children:
                cover = _cover(child, terms)
                if cover is None:
                    return None
                union |= cover
            return frozenset(union)
    return None
