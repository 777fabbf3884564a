"""Matching items against a set of rules, fast enough to run on every item.

Per item, each field is tokenized once into a space-joined, space-padded text
(`` canadian police in iraq ``), in which a term is a substring: a word is
`` police ``, a phrase `` canadian police ``, a prefix `` train``.

A :class:`RuleSet` reduces every rule to *requirements*: sets of keys (a word
of a term, or the first letters of a prefix) of which at least one must occur in
the item for the rule to match -- ``(a OR b) c`` requires {a, b} and {c}. Per
item, one C-level set intersection of the tokens with all known keys gives the
keys present; rules are indexed by their smallest requirement, so only rules
whose index key occurs are looked at, the rest of their requirements are
checked by set operations, and only the survivors are evaluated, as closures
compiled once from the query tree, each term check being one substring search.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter

import re2

from bot.errors import QueryError
from bot.model import FIELDS, Field, Hit, Item, Match
from bot.query import And, Near, Node, Not, Or, Regex, Term, compile_regex, parse
from bot.settings import MatchGroup, Rule
from bot.text import normalize, tokens

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
            return Near(
                tuple(_scoped_term(t, fields) for t in left),
                tuple(_scoped_term(t, fields) for t in right),
                distance,
            )
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
    """The substring a term is, in a space-joined, space-padded token text."""
    return " " + " ".join(term.tokens) + ("" if term.prefix else " ")


def leaves(node: Node, negated: bool = False) -> Iterable[tuple[Term | Regex, bool]]:
    """Every term and regex of a tree, in query order, with whether it counts negatively."""
    match node:
        case Term() | Regex():
            yield node, negated
        case Near(left=left, right=right):
            for term in (*left, *right):
                yield term, negated
        case Not(child=child):
            yield from leaves(child, not negated)
        case And(children=children) | Or(children=children):
            for child in children:
                yield from leaves(child, negated)


# ---------------------------------------------------------------- per-item state


class _ItemState:
    """One item's fields as padded token texts, plus regex results computed on demand."""

    __slots__ = ("item", "joined", "normalized", "padded", "regex_results", "regexes")

    def __init__(self, item: Item, padded: list[str], regexes: _Regexes) -> None:
        self.item = item
        self.padded = padded
        self.regexes = regexes
        self.joined: dict[tuple[int, ...], str] = {}
        self.normalized: list[str | None] = [None, None, None]
        self.regex_results: dict[int, frozenset[int] | dict[int, bool]] = {}

    def text(self, fields: tuple[int, ...]) -> str:
        """Several fields' padded texts in one string, so one search covers them all.

        The separator never occurs in a term, so no term is found across two fields.
        """
        text = self.joined.get(fields)
        if text is None:
            text = self.joined[fields] = "\n".join([self.padded[f] for f in fields])
        return text

    def regex(self, regex_id: int, field: int) -> bool:
        """Whether regex ``regex_id`` matches ``field``'s normalized text.

        With a compiled set, the first regex asked for a field runs every regex of
        the rule set over that text in one pass; the others are then lookups.
        """
        results = self.regex_results.get(field)
        if results is None:
            text = self.normalized[field]
            if text is None:
                text = self.normalized[field] = normalize(self.item.text(FIELDS[field]))
            regex_set = self.regexes.regex_set
            if regex_set is not None:
                results = self.regex_results[field] = frozenset(regex_set.Match(text) or ())
            else:
                results = self.regex_results[field] = {}
        if isinstance(results, frozenset):
            return regex_id in results
        result = results.get(regex_id)
        if result is None:
            text = self.normalized[field]
            assert text is not None
            result = results[regex_id] = self.regexes[regex_id].search(text) is not None
        return result


class _Regexes(list[re2._Regexp]):
    """A rule set's regexes by id, plus all of them as one case-insensitive ``re2.Set``.

    ``regex_set`` is built by :meth:`seal` once every regex is known; it stays None
    when there are no regexes or RE2 cannot compile the set (then each regex is
    searched on its own, as before).
    """

    regex_set: re2.Set | None = None

    def seal(self) -> None:
        self.regex_set = None
        if not self:
            return
        options = re2.Options()
        options.case_sensitive = False  # as compile_regex
        options.log_errors = False
        # A Set that exhausts its DFA memory answers "no match" without an error,
        # which would silently drop alerts: give it a budget far beyond the 8 MiB
        # default (allocated lazily, only as the DFA actually grows).
        options.max_mem = SET_MAX_MEM
        regex_set = re2.Set.SearchSet(options)
        try:
            for index, regex in enumerate(self):
                if regex_set.Add(regex.pattern) != index:
                    return
            regex_set.Compile()
        except re2.error:
            return
        self.regex_set = regex_set


Condition = Callable[[_ItemState], bool]
Report = tuple[str, str | None, int | None, tuple[int, ...]]  # (text, pattern, regex id, fields)
# Trigger keys: a token, or PREFIX_MARK + the first PREFIX_HEAD letters of a prefix.
PREFIX_MARK = "\x00"
SET_MAX_MEM = 256 << 20
PREFIX_HEAD = 3
_HEAD = itemgetter(slice(PREFIX_HEAD))


def _positions(padded: str, pattern: str) -> list[int]:
    """Token positions where ``pattern`` starts in a padded token text."""
    found = []
    start = padded.find(pattern)
    while start >= 0:
        found.append(padded.count(" ", 0, start))
        start = padded.find(pattern, start + 1)
    return found


NearSide = tuple[tuple[str, int], ...]  # (pattern, number of tokens) of each term


def _near_side(terms: Iterable[Term]) -> NearSide:
    return tuple((term_pattern(t), len(t.tokens)) for t in terms)


def _occurrences(padded: str, side: NearSide) -> list[tuple[int, int]]:
    """(first, last) token positions of every occurrence of any term of ``side``."""
    return [
        (start, start + length - 1)
        for pattern, length in side
        if pattern in padded
        for start in _positions(padded, pattern)
    ]


def _near_in(padded: str, left: NearSide, right: NearSide, distance: int) -> bool:
    """Whether occurrences of a left and a right term lie within ``distance`` positions.

    The distance between two occurrences is the number of token positions from
    the end of one to the start of the other (0 when they overlap): ``a b`` is 1.
    """
    if not any(p in padded for p, _ in right):
        return False
    a = _occurrences(padded, left)
    b = _occurrences(padded, right) if a else []
    return any(max(s2 - e1, s1 - e2, 0) <= distance for s1, e1 in a for s2, e2 in b)


# ---------------------------------------------------------------- the rule set


class RuleSet:
    """Every enabled rule, compiled once; :meth:`match` is the per-item hot path."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = [compile_rule(r) for r in rules if r.enabled]
        self._regex_ids: dict[str, int] = {}
        self._regexes = _Regexes()
        self._conditions = [self._compile(r.condition) for r in self.rules]
        self._reports = [self._reporters(r.condition) for r in self.rules]
        self._regexes.seal()
        # Rules are indexed by their smallest requirement, preferring whole words:
        # prefix heads cost a pass over the item's words, made only when some rule
        # can be found no other way. Pre-checks use whole-word requirements only.
        self._requirements: list[tuple[frozenset[str], ...]] = []
        self._index: dict[str, list[int]] = {}
        self._always: list[int] = []
        for index, rule in enumerate(self.rules):
            requirements = _requirements(rule.condition)
            words_only = tuple(r for r in requirements if not any(map(_is_head, r)))
            self._requirements.append(words_only)
            if not requirements:
                self._always.append(index)
            for key in min(words_only or requirements, key=len, default=()):
                self._index.setdefault(key, []).append(index)
        self._keys = frozenset(k for k in self._index if not _is_head(k)).union(
            k for reqs in self._requirements for req in reqs for k in req
        )
        self._heads = frozenset(k[len(PREFIX_MARK) :] for k in self._index if _is_head(k))
        used = {f for r in self.rules for leaf, _ in leaves(r.condition) for f in _fields(leaf)}
        self._fields = sorted(used)

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, item: Item, tags: frozenset[str] = frozenset()) -> list[Match]:
        """Every rule the item matches, in rule order, each with the positive terms found."""
        fields: list[list[str]] = [[], [], []]
        keys: set[str] = set()
        for field in self._fields:
            text = item.text(FIELDS[field])
            words = fields[field] = tokens(text) if text else []
            if words:
                keys |= self._present_keys(words)
        candidates = set(self._always)
        index = self._index
        for key in keys:
            candidates.update(index.get(key, ()))
        if not candidates:
            return []
        padded = [f" {' '.join(words)} " if words else "" for words in fields]
        state = _ItemState(item, padded, self._regexes)
        matches = []
        for i in sorted(candidates):
            rule = self.rules[i]
            if (
                _meets(self._requirements[i], keys)
                and rule.applies_to(item.feed_id, tags)
                and self._conditions[i](state)
            ):
                matches.append(Match(rule.rule.id, self._hits(i, state)))
        return matches

    def _present_keys(self, words: list[str]) -> frozenset[str]:
        keys = self._keys.intersection(words)
        heads = self._heads.intersection(map(_HEAD, words)) if self._heads else ()
        return keys.union([PREFIX_MARK + head for head in heads]) if heads else keys

    # -- compilation

    def _regex_id(self, pattern: str) -> int:
        regex_id = self._regex_ids.setdefault(pattern, len(self._regex_ids))
        if regex_id == len(self._regexes):
            self._regexes.append(compile_regex(pattern))
        return regex_id

    def _compile(self, node: Node) -> Condition:
        match node:
            case Term():
                return _term_condition(term_pattern(node), _fields(node))
            case Regex():
                return _regex_condition(self._regex_id(node.pattern), _fields(node))
            case Near(left=left, right=right, distance=distance):
                return _near_condition(left, right, distance)
            case Not(child=child):
                inner = self._compile(child)
                return lambda state: not inner(state)
            case And(children=children):
                return _all_of([self._compile(c) for c in _cheap_first(children)])
            case Or(children=children):
                return _any_of([self._compile(c) for c in _cheap_first(children)])
        raise TypeError(node)

    def _reporters(self, condition: Node) -> list[Report]:
        """What to report of each positive leaf, deduplicated, in query order."""
        seen: dict[tuple[str, tuple[int, ...]], Report] = {}
        for leaf, negated in leaves(condition):
            if negated:
                continue
            if isinstance(leaf, Term):
                report = (leaf.text, term_pattern(leaf), None, _fields(leaf))
            else:
                report = (leaf.text, None, self._regex_id(leaf.pattern), _fields(leaf))
            seen.setdefault((leaf.text, _fields(leaf)), report)
        return list(seen.values())

    def _hits(self, index: int, state: _ItemState) -> tuple[Hit, ...]:
        hits: dict[Hit, None] = {}
        for text, pattern, regex_id, fields in self._reports[index]:
            for field in fields:
                if _present(state, pattern, regex_id, field):
                    hits[Hit(text, FIELDS[field])] = None
        return tuple(hits)


def _present(state: _ItemState, pattern: str | None, regex_id: int | None, field: int) -> bool:
    if pattern is not None:
        return pattern in state.padded[field]
    return regex_id is not None and state.regex(regex_id, field)


def _fields(leaf: Term | Regex) -> tuple[int, ...]:
    return tuple(FIELDS.index(f) for f in leaf.fields or FIELDS)


def _term_condition(pattern: str, fields: tuple[int, ...]) -> Condition:
    if len(fields) == 1:
        (field,) = fields
        return lambda state: pattern in state.padded[field]
    return lambda state: pattern in state.text(fields)


def _regex_condition(regex_id: int, fields: tuple[int, ...]) -> Condition:
    return lambda state: any(state.regex(regex_id, f) for f in fields)


def _near_condition(left: tuple[Term, ...], right: tuple[Term, ...], distance: int) -> Condition:
    """NEAR holds in one field, looking only at the terms scoped to it."""
    per_field = []
    for field in range(len(FIELDS)):
        a = _near_side(t for t in left if field in _fields(t))
        b = _near_side(t for t in right if field in _fields(t))
        if a and b:
            per_field.append((field, a, b))
    return lambda state: any(_near_in(state.padded[f], a, b, distance) for f, a, b in per_field)


def _all_of(conditions: list[Condition]) -> Condition:
    def check(state: _ItemState) -> bool:
        for condition in conditions:  # noqa: SIM110 -- a plain loop beats all(<genexpr>)
            if not condition(state):
                return False
        return True

    return check


def _any_of(conditions: list[Condition]) -> Condition:
    def check(state: _ItemState) -> bool:
        for condition in conditions:  # noqa: SIM110 -- a plain loop beats any(<genexpr>)
            if condition(state):
                return True
        return False

    return check


def _has_regex(node: Node) -> bool:
    return any(isinstance(leaf, Regex) for leaf, _ in leaves(node))


def _cheap_first(children: tuple[Node, ...]) -> list[Node]:
    """Order operands so regexes run last, when term checks have not decided already."""
    return sorted(children, key=_has_regex)


def _term_key(term: Term) -> str | None:
    """The trigger key of a term: its longest whole word (likely the rarest), else its prefix."""
    words = term.tokens[:-1] if term.prefix else term.tokens
    if words:
        return max(words, key=len)
    head = term.tokens[-1]
    return PREFIX_MARK + head[:PREFIX_HEAD] if len(head) >= PREFIX_HEAD else None


def _cover(node: Node) -> frozenset[str] | None:
    """Trigger keys at least one of which occurs whenever ``node`` holds; None if unknown."""
    match node:
        case Term():
            key = _term_key(node)
            return frozenset((key,)) if key else None
        case Near(left=left, right=right):
            return _cover(Or(left)) or _cover(Or(right))
        case Not(child=Not(child=child)):
            return _cover(child)
        case And(children=children):
            return min(_requirements(node), key=len, default=None)
        case Or(children=children):
            union: set[str] = set()
            for child in children:
                cover = _cover(child)
                if cover is None:
                    return None
                union |= cover
            return frozenset(union)
    return None


def _is_head(key: str) -> bool:
    return key.startswith(PREFIX_MARK)


def _requirements(node: Node) -> tuple[frozenset[str], ...]:
    """Key sets that must each have a key present for ``node`` to hold (none: no filter)."""
    match node:
        case And(children=children):
            return tuple(r for child in children for r in _requirements(child))
        case Near(left=left, right=right):
            return tuple(c for c in (_cover(Or(left)), _cover(Or(right))) if c is not None)
        case Not(child=Not(child=child)):
            return _requirements(child)
    cover = _cover(node)
    return (cover,) if cover is not None else ()


def _meets(requirements: tuple[frozenset[str], ...], keys: set[str]) -> bool:
    for requirement in requirements:  # noqa: SIM110 -- a plain loop beats all(<genexpr>)
        if keys.isdisjoint(requirement):
            return False
    return True
