"""Matching items against a set of rules, fast enough to run on every item.

Per item, each field is tokenized once into a space-joined, space-padded text
(`` canadian police in iraq ``), in which a term is a substring: a word is
`` police ``, a phrase `` canadian police ``, a prefix `` train``.

A :class:`RuleSet` reduces every rule to *clauses* of keys (a word of a term,
the first letters of a prefix, a literal run a regex cannot match without, the
word or a stem key of a ``word~`` term), one alternative of which must occur
for the rule to match -- ``(a OR "b c") d`` needs {a} or {b, c}, and {d}. Per
item, one C-level set intersection of the tokens with all known words gives the
keys present (and, when some rule has a ``word~`` term, of the tokens with those
whose stem keys are in use, each token stemmed once per rule set and item language: an
item of known language is stemmed in that language only); each rule is indexed by
the clause whose keys are rarest in the items seen so far (any clause is exact,
so the pick only changes speed), and only rules whose index key occurs are
evaluated, by closures built from the rule's query tree: a word is a set
lookup, a phrase or prefix one substring search, a regex a literal search
before RE2. (Rules were once compiled to generated Python source instead; on
the real feed corpus that was at most 1.1-1.25x faster at matching, with 1,000
rules firing 5 times per item, and 1.02-1.07x per poll: short of the 1.5x a
second evaluator must earn. ``python -m bench.matching`` measures it again.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter

from bot.config.schema import MatchGroup, Rule
from bot.errors import QueryError
from bot.model import FIELDS, Field, Hit, Item, Match
from bot.rules.query import (
    NO_GROUPS,
    And,
    Groups,
    Near,
    Node,
    Not,
    Or,
    QueryWarning,
    Regex,
    Term,
    expand,
    lint,
    parse,
)
from bot.rules.regex import Pattern, RegexSet, compile_regex, regex_set
from bot.rules.stem import (
    NAMED_MARK,
    READS_ACCENTS,
    STEM_MARK,
    compared_in,
    stem_keys,
    term_keys,
)
from bot.text import accented_tokens, normalize, tokens

Path = tuple[str | int, ...]
_KINDS = ("all", "any", "none")  # a match group's lists


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule's whole condition as one query tree, every leaf scoped to its fields."""

    rule: Rule
    condition: Node
    feed_ids: frozenset[str]
    feed_tags: frozenset[str]
    languages: frozenset[str] = frozenset()

    def applies_to(self, feed_id: str, tags: frozenset[str]) -> bool:
        """``feeds:`` lists feed ids and ``tag:x`` entries; an empty list means every feed."""
        if not self.feed_ids and not self.feed_tags:
            return True
        return feed_id in self.feed_ids or not self.feed_tags.isdisjoint(tags)

    def reads(self, language: str | None) -> bool:
        """``languages:`` lists the languages the rule reads (none: every language); an item
        of unknown language is read, since missing a story costs more than a stray alert."""
        return not self.languages or language is None or language in self.languages


def compile_rule(rule: Rule, groups: Groups = NO_GROUPS) -> CompiledRule:
    """Parse every query of ``rule``; a :class:`QueryError` says which one failed in ``path``."""
    if rule.query is not None:
        condition = _parse_at(rule.query, ("query",), groups)
    else:
        assert rule.match is not None  # the Rule model guarantees one of the two
        condition = _group(rule.match, ("match",), groups)
    feed_tags = frozenset(f[4:] for f in rule.feeds if f.startswith("tag:"))
    feed_ids = frozenset(f for f in rule.feeds if not f.startswith("tag:"))
    languages = frozenset(rule.languages)
    return CompiledRule(rule, scope(condition, rule.fields), feed_ids, feed_tags, languages)


def rule_queries(rule: Rule) -> Iterator[tuple[Path, str]]:
    """Every query string of ``rule``, with where it is in the rule (as in :class:`QueryError`)."""
    if rule.query is not None:
        yield ("query",), rule.query
        return
    pending: list[tuple[MatchGroup, Path]] = [(rule.match, ("match",))] if rule.match else []
    while pending:
        group, path = pending.pop(0)
        for kind in _KINDS:
            for index, entry in enumerate(getattr(group, kind)):
                if isinstance(entry, str):
                    yield (*path, kind, index), entry
                else:
                    pending.append((entry, (*path, kind, index)))


def expand_rule(rule: Rule, groups: Groups) -> Rule:
    """``rule`` with its ``@group`` references written out (:func:`expand`): what runs and
    what ``newswatch test`` shows. The rule itself when it uses no group."""
    if rule.query is not None:
        query = expand(rule.query, groups)
        return rule if query == rule.query else rule.model_copy(update={"query": query})
    assert rule.match is not None  # the Rule model guarantees one of the two
    match = _expand_group(rule.match, groups)
    return rule if match == rule.match else rule.model_copy(update={"match": match})


def _expand_group(group: MatchGroup, groups: Groups) -> MatchGroup:
    def entry(value: str | MatchGroup) -> str | MatchGroup:
        return expand(value, groups) if isinstance(value, str) else _expand_group(value, groups)

    return group.model_copy(
        update={kind: tuple(entry(e) for e in getattr(group, kind)) for kind in _KINDS}
    )


def lint_rule(rule: Rule) -> list[tuple[Path, str, QueryWarning]]:
    """The warnings of every query of a rule that compiles, each with its path and query."""
    return [(path, query, w) for path, query in rule_queries(rule) for w in lint(query)]


def _parse_at(query: str, path: Path, groups: Groups) -> Node:
    try:
        return parse(query, groups)
    except QueryError as exc:
        raise QueryError(exc.message, exc.column, path) from None


def _group(group: MatchGroup, path: Path, groups: Groups) -> Node:
    """``all`` AND (one of ``any``) AND NOT (any of ``none``), as one tree."""

    def entry(value: str | MatchGroup, where: Path) -> Node:
        if isinstance(value, str):
            return _parse_at(value, where, groups)
        return _group(value, where, groups)

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
            return replace(node, fields=fields)
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
    return term if term.fields is not None else replace(term, fields=fields)


def term_pattern(term: Term) -> str:
    """The substring a term is, in a space-joined, space-padded token text (a ``word~``
    term's word itself)."""
    return " " + " ".join(term.tokens) + ("" if term.prefix else " ")


def stem_term_keys(term: Term) -> frozenset[str]:
    """The stem keys of a ``word~`` term in every language it is stemmed in: a token sharing
    one is one of its forms in some language (the matcher reads an item of known language
    in that language only, :func:`bot.rules.stem.compared_in`)."""
    return term_keys(term.written, term.languages)


def _stem_keys(term: Term) -> frozenset[str]:
    """The keys the matcher looks up for a ``word~`` term: a bare ``word~``'s under
    :data:`STEM_MARK`, met by an item's words in the item's language; a ``word~xx``'s under
    :data:`NAMED_MARK`, met by every item's words in ``xx``."""
    return term_keys(term.written, term.languages, NAMED_MARK if term.stem else STEM_MARK)


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


StemTokens = dict[str, frozenset[str]]  # an item field's tokens with stem keys -> those keys
_NO_STEMS: list[StemTokens] = [{}, {}, {}]


class _ItemState:
    """One item's regex results, computed on demand, and its tokens' stem keys.

    Called as ``R(regex_id, field)``: whether a regex matches a field.
    """

    __slots__ = (
        "fields",
        "item",
        "keys",
        "normalized",
        "padded",
        "regex_results",
        "regexes",
        "stem_index",
        "stems",
    )

    def __init__(
        self,
        item: Item,
        regexes: _Regexes,
        fields: list[list[str]],
        keys: list[frozenset[str]],
        stems: list[StemTokens] = _NO_STEMS,
        padded: Sequence[str] = ("", "", ""),
    ) -> None:
        self.item = item
        self.regexes = regexes
        self.fields = fields
        self.keys = keys  # each field's known words and stem keys
        self.stems = stems
        self.padded = padded
        self.stem_index: list[dict[str, list[str]] | None] = [None, None, None]
        self.normalized: list[str | None] = [None, None, None]
        self.regex_results: dict[int, frozenset[int] | dict[int, bool]] = {}

    def forms(self, field: int, words: frozenset[str], keys: frozenset[str]) -> list[str]:
        """The tokens of ``field`` that are forms of ``word~`` terms (one of their ``words``
        itself, or a token sharing one of their stem ``keys``), in the order they first occur.

        Only the field's tokens with stem keys in use are looked at, not every token.
        """
        present = keys.intersection(self.keys[field])
        found = dict.fromkeys(t for key in present for t in self._by_key(field)[key])
        found.update(dict.fromkeys(words.intersection(self.keys[field])))
        if len(found) > 1:  # by first place in the padded text, found in C
            padded = self.padded[field]
            return sorted(found, key=lambda token: padded.find(f" {token} "))
        return list(found)

    def _by_key(self, field: int) -> dict[str, list[str]]:
        """The field's tokens by stem key, built on first use."""
        by_key = self.stem_index[field]
        if by_key is None:
            by_key = self.stem_index[field] = {}
            for token, keys in self.stems[field].items():
                for key in keys:
                    by_key.setdefault(key, []).append(token)
        return by_key

    def __call__(self, regex_id: int, field: int) -> bool:
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


class _Regexes(list[Pattern]):
    """A rule set's regexes by id, plus all of them as one case-insensitive ``re2.Set``.

    ``regex_set`` is built by :meth:`seal` once every regex is known; it stays None
    when there are no regexes or RE2 cannot compile the set (then each regex is
    searched on its own, as before).
    """

    regex_set: RegexSet | None = None

    def seal(self) -> None:
        self.regex_set = regex_set(self)


# Trigger keys: a token, PREFIX_MARK + the first PREFIX_HEAD letters of a prefix,
# LITERAL_MARK + a run of at least MIN_LITERAL characters a regex cannot match without,
# or a stem key (STEM_MARK or NAMED_MARK + language + ":" + stem) of a word~ term.
PREFIX_MARK = "\x00"
LITERAL_MARK = "\x01"
MIN_LITERAL = 3
TOKEN_CACHE = 1 << 18  # tokens whose literals are remembered, before starting over
PREFIX_HEAD = 3
_HEAD = itemgetter(slice(PREFIX_HEAD))
_ALL_FIELDS = tuple(range(len(FIELDS)))
_NO_KEYS: frozenset[str] = frozenset()


def _positions(padded: str, pattern: str) -> list[int]:
    """Token positions where ``pattern`` starts in a padded token text, in order.

    Spaces are counted from one occurrence to the next, so the whole text is
    counted once however many occurrences there are.
    """
    found = []
    position = counted = 0
    start = padded.find(pattern)
    while start >= 0:
        position += padded.count(" ", counted, start)
        counted = start
        found.append(position)
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
    return bool(a) and _any_within(a, _occurrences(padded, right), distance)


def _any_within(a: list[tuple[int, int]], b: list[tuple[int, int]], distance: int) -> bool:
    """Whether some (s1, e1) of ``a`` and (s2, e2) of ``b`` have s2 - e1 and s1 - e2 <= distance.

    One sweep rather than every pair: taking ``b`` by its end, the occurrences of
    ``a`` that start early enough only grow, and the one of them ending last is
    the best partner for every start in ``b``.
    """
    a.sort()
    b.sort(key=itemgetter(1))
    furthest = -1 - distance  # the latest end among the occurrences of ``a`` admitted
    i = 0
    for s2, e2 in b:
        while i < len(a) and a[i][0] <= e2 + distance:
            furthest = max(furthest, a[i][1])
            i += 1
        if furthest >= s2 - distance:
            return True
    return False


# ---------------------------------------------------------------- the rule set

# The index adapts to the stream: every SAMPLE_EVERY-th item's keys are counted,
# and each rule is re-indexed by its rarest requirement after FIRST_RETUNE
# samples, then after four times as many each time, up to every MAX_RETUNE.
SAMPLE_EVERY = 4
FIRST_RETUNE = 64
MAX_RETUNE = 1 << 16


class RuleSet:
    """Every enabled rule, compiled once; :meth:`match` is the per-item hot path.

    :meth:`match` updates the key counts and the index it picks from them, so one
    RuleSet serves one thread (the daemon matches on its event loop only).
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = [compile_rule(r) for r in rules if r.enabled]
        self._regex_ids: dict[str, int] = {}
        self._regexes = _Regexes()
        build = _Builder(self._regex_id)
        self._conditions = [build.condition(r.condition) for r in self.rules]
        self._hits = [build.hits(_reported(r.condition)) for r in self.rules]
        self._regexes.seal()
        clauses = [_clauses(r.condition) for r in self.rules]
        terms = [leaf for r in self.rules for leaf, _ in leaves(r.condition)]
        self._words = frozenset(w for t in terms if isinstance(t, Term) for w in _known_words(t))
        stemmed = [t for t in terms if isinstance(t, Term) and t.stem is not None]
        # Bare word~ terms are stemmed in these languages (all in DEFAULT_LANGUAGES), word~xx
        # terms in these: an item's words get keys in each (bot.rules.stem.compared_in).
        self._bare_languages = tuple(
            sorted({x for t in stemmed if not t.stem for x in t.languages})
        )
        self._named_languages = tuple(sorted({t.stem for t in stemmed if t.stem}))
        self._stem_keys = frozenset().union(*map(_stem_keys, stemmed))
        # Per language an item is read in (None: every language of the bare terms), the
        # tokens and written forms seen, with their keys in use, and those having some.
        self._token_stems: dict[str | None, dict[str, frozenset[str]]] = {}
        self._stem_tokens: dict[str | None, set[str]] = {}
        self._priors = _priors(terms, clauses)
        self._all_heads = frozenset(k[len(PREFIX_MARK) :] for k in self._priors if _is_head(k))
        self._all_literals = frozenset(
            k[len(LITERAL_MARK) :] for k in self._priors if _is_literal(k)
        )
        self._literal_sizes = sorted({len(literal) for literal in self._all_literals})
        self._token_literals: dict[str, tuple[str, ...]] = {}  # token -> literal keys in it
        self._literal_tokens: set[str] = set()  # the tokens holding some literal
        # Rules with one possible pick are indexed once; the others at every retune;
        # rules with no clause at all are looked at for every item.
        self._fixed: dict[str, list[int]] = {}
        always: list[int] = []
        self._variable: list[tuple[int, list[Choice]]] = []
        for i, choices in enumerate(map(_choices, clauses)):
            if len(choices) == 1 and all(len(keys) == 1 for keys in choices[0]):
                for (key,) in choices[0]:
                    self._fixed.setdefault(key, []).append(i)
            elif choices:
                self._variable.append((i, choices))
            else:
                always.append(i)
        self._always = tuple(always)
        self._fields = sorted({f for t in terms for f in _fields(t)})
        self._counts: Counter[str] = Counter()
        self._countdown = SAMPLE_EVERY
        self._samples = 0
        self._retune_at = FIRST_RETUNE
        self._retune()

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, item: Item, tags: frozenset[str] = frozenset()) -> list[Match]:
        """Every rule the item matches, in rule order, each with the positive terms found."""
        fields: list[list[str]] = [[], [], []]
        keys_by_field = [_NO_KEYS, _NO_KEYS, _NO_KEYS]
        stems = _NO_STEMS
        known = self._words
        language = item.language if item.language in self._bare_languages else None
        for field in self._fields:
            text = item.text(FIELDS[field])
            if text:
                words = fields[field] = tokens(text)
                keys_by_field[field] = known.intersection(words)
                if self._stem_keys:
                    if stems is _NO_STEMS:
                        stems = [{}, {}, {}]
                    same = next(
                        (f for f in self._fields if f < field and item.text(FIELDS[f]) == text),
                        None,
                    )
                    found = (
                        stems[same]
                        if same is not None
                        else self._present_stems(words, text, language)
                    )
                    stems[field] = found
                    if found:
                        keys_by_field[field] = keys_by_field[field].union(*found.values())
        keys = keys_by_field[0].union(keys_by_field[1], keys_by_field[2])
        self._countdown -= 1
        if not self._countdown:
            self._sample(keys, fields)
        index = self._index
        candidates = set(self._always)
        for key in keys.intersection(self._index_keys):  # in C: most keys index no rule
            candidates.update(index[key])
        if self._heads:
            for head in self._present_heads(self._heads, fields):
                candidates.update(index[head])
        if self._literals_indexed:
            for literal in self._present_literals(fields):
                rules = index.get(literal)
                if rules is not None:
                    candidates.update(rules)
        if not candidates:
            return []
        padded = [f" {' '.join(words)} " if words else "" for words in fields]
        whole = "\n".join(padded)
        regex = _ItemState(item, self._regexes, fields, keys_by_field, stems, padded)
        conditions = self._conditions
        matches = []
        for i in sorted(candidates):
            if conditions[i](keys, keys_by_field, whole, padded, regex):
                rule = self.rules[i]
                if rule.applies_to(item.feed_id, tags) and rule.reads(item.language):
                    hits = self._hits[i](keys_by_field, padded, regex)
                    matches.append(Match(rule.rule.id, hits))
        return matches

    @staticmethod
    def _present_heads(heads: frozenset[str], fields: list[list[str]]) -> set[str]:
        found: set[str] = set()
        for words in fields:
            if words:
                found.update(heads.intersection(map(_HEAD, words)))
        return {PREFIX_MARK + head for head in found}

    def _present_stems(self, words: list[str], text: str, language: str | None) -> StemTokens:
        """The tokens of one field that have stem keys some rule uses, with those keys, for
        an item read in ``language`` (None: in every language of the bare ``word~`` terms).

        A token's keys are looked up once per rule set and language (set operations in C
        do the rest), and a token written with accents adds the keys of its written form.
        """
        unique = set(words)
        known = self._token_stems.get(language)
        if known is None or len(known) > TOKEN_CACHE:
            known = self._token_stems[language] = {}
            self._stem_tokens[language] = set()
        stem_tokens = self._stem_tokens[language]
        for word in unique.difference(known):
            self._remember_stems(word, language, known, stem_tokens)
        found = {word: known[word] for word in unique.intersection(stem_tokens)}
        if not self._reads_accents(language):
            return found
        for token, form in accented_tokens(text):
            keys = known.get(form)
            if keys is None:
                keys = self._remember_stems(form, language, known, stem_tokens)
            if keys:
                found[token] = found[token] | keys if token in found else keys
        return found

    def _reads_accents(self, language: str | None) -> bool:
        """Whether an item read in ``language`` is stemmed in some language that reads the
        written forms of words."""
        bare = compared_in(self._bare_languages, language)
        return not READS_ACCENTS.isdisjoint((*bare, *self._named_languages))

    def _remember_stems(
        self, word: str, language: str | None, known: dict[str, frozenset[str]], has: set[str]
    ) -> frozenset[str]:
        bare = compared_in(self._bare_languages, language)
        keys = self._stem_keys.intersection(stem_keys(word, bare)) if bare else _NO_KEYS
        if self._named_languages:
            named = stem_keys(word, self._named_languages, NAMED_MARK)
            keys = keys.union(self._stem_keys.intersection(named))
        known[word] = keys
        if keys:
            has.add(word)
        return keys

    def _present_literals(self, fields: list[list[str]]) -> set[str]:
        """The literal keys of the regexes that occur inside some token of the item."""
        words = set().union(*fields)
        known = self._token_literals
        if len(known) > TOKEN_CACHE:
            known.clear()
            self._literal_tokens.clear()
        for word in words.difference(known):
            found = known[word] = tuple(
                LITERAL_MARK + word[start : start + size]
                for size in self._literal_sizes
                for start in range(len(word) - size + 1)
                if word[start : start + size] in self._all_literals
            )
            if found:
                self._literal_tokens.add(word)
        return {key for word in words.intersection(self._literal_tokens) for key in known[word]}

    # -- the adaptive index

    def _sample(self, keys: frozenset[str], fields: list[list[str]]) -> None:
        """Count one item's keys; re-index the rules when enough items were counted."""
        self._countdown = SAMPLE_EVERY
        self._counts.update(keys)
        if self._all_heads:
            self._counts.update(self._present_heads(self._all_heads, fields))
        if self._all_literals:
            self._counts.update(self._present_literals(fields))
        self._samples += 1
        if self._samples >= self._retune_at:
            self._retune_at = self._samples + min(3 * self._samples, MAX_RETUNE)
            self._retune()

    def _retune(self) -> None:
        """Index every rule by the clause whose keys were seen least (any clause is exact)."""
        counts = self._counts
        weights = {key: counts[key] + prior for key, prior in self._priors.items()}
        index = {key: list(rules) for key, rules in self._fixed.items()}
        for i, choices in self._variable:
            for key in _pick(choices, weights):
                index.setdefault(key, []).append(i)
        self._index = index
        self._index_keys = frozenset(index)
        self._literals_indexed = any(map(_is_literal, index))
        self._heads = frozenset(k[len(PREFIX_MARK) :] for k in index if _is_head(k))

    # -- compilation

    def _regex_id(self, pattern: str) -> int:
        regex_id = self._regex_ids.setdefault(pattern, len(self._regex_ids))
        if regex_id == len(self._regexes):
            self._regexes.append(compile_regex(pattern))
        return regex_id


def _reported(condition: Node) -> list[Term | Regex]:
    """The positive leaves a match reports, deduplicated, in query order."""
    seen: dict[tuple[str, tuple[int, ...]], Term | Regex] = {}
    for leaf, negated in leaves(condition):
        if not negated:
            seen.setdefault((leaf.text, _fields(leaf)), leaf)
    return list(seen.values())


def _fields(leaf: Term | Regex) -> tuple[int, ...]:
    return tuple(FIELDS.index(f) for f in leaf.fields or FIELDS)


def _words(term: Term) -> tuple[str, ...]:
    """The tokens of a term that must occur whole (all but a prefix; none of ``word~``)."""
    if term.stem is not None:
        return ()
    return term.tokens[:-1] if term.prefix else term.tokens


def _known_words(term: Term) -> tuple[str, ...]:
    """The tokens of a term the matcher looks for in an item (``word~``: the word itself)."""
    return term.tokens if term.stem is not None else _words(term)


# ---------------------------------------------------------------- requirements

# Whenever a node holds, every one of its clauses holds: some alternative of the
# clause has all its keys among the item's keys. ``(a OR "b c") d`` has the
# clauses {{a}, {b, c}} and {{d}}.
Alternative = frozenset[str]
Clause = frozenset[Alternative]


def _is_head(key: str) -> bool:
    return key.startswith(PREFIX_MARK)


def _is_literal(key: str) -> bool:
    return key.startswith(LITERAL_MARK)


def _term_clause(term: Term) -> Clause | None:
    """Keys that all occur when ``term`` does: its whole words, else its prefix's head; a
    ``word~`` term, the word or one of its stem keys."""
    if term.stem is not None:
        keys = (term.tokens[0], *_stem_keys(term))
        return frozenset(frozenset((key,)) for key in keys)
    words = _words(term)
    if words:
        return frozenset((frozenset(words),))
    head = term.tokens[-1]
    if len(head) < PREFIX_HEAD:
        return None
    return frozenset((frozenset((PREFIX_MARK + head[:PREFIX_HEAD],)),))


def _clauses(node: Node) -> list[Clause]:
    """Clauses that all hold whenever ``node`` holds (none when nothing is known)."""
    match node:
        case Term():
            clause = _term_clause(node)
            return [clause] if clause else []
        case Near(left=left, right=right):
            return _clauses(Or(left)) + _clauses(Or(right))
        case Not(child=Not(child=child)):
            return _clauses(child)
        case And(children=children):
            return [clause for child in children for clause in _clauses(child)]
        case Regex(pattern=pattern):
            literals = [s for s in regex_literals(pattern) if len(s) >= MIN_LITERAL]
            return [frozenset((frozenset((LITERAL_MARK + s,)),)) for s in literals]
        case Or(children=children):
            alternatives: set[Alternative] = set()
            for child in children:
                clauses = _clauses(child)
                if not clauses:
                    return []
                alternatives |= _one_clause(clauses)
            return [frozenset(alternatives)]
    return []


def _one_clause(clauses: list[Clause]) -> Clause:
    """One clause implied by several: all keys of the single-alternative ones, else the shortest."""
    single = [alternative for clause in clauses if len(clause) == 1 for alternative in clause]
    return frozenset((frozenset().union(*single),)) if single else min(clauses, key=len)


def _priors(terms: Iterable[Term | Regex], clauses: Iterable[list[Clause]]) -> dict[str, float]:
    """Each key's cost before any item is counted, in items per ~400.

    A word searched for on its own is taken for a name (rare); a word met only
    inside phrases for an ordinary word (``police`` in ``"local police"``); a
    prefix head covers many words, a short regex literal is part of many.
    """
    alone = {t.tokens[0] for t in terms if isinstance(t, Term) and len(t.tokens) == 1}
    alone |= {
        LITERAL_MARK + s
        for t in terms
        if isinstance(t, Regex)
        for s in regex_literals(t.pattern)
        if len(s) > 4
    }
    return {
        key: 4.0 if _is_head(key) else 0.25 if key in alone else 2.0
        for rule in clauses
        for clause in rule
        for alternative in clause
        for key in alternative
    }


Choice = tuple[tuple[str, ...], ...]  # a clause, as the keys each alternative may be indexed by


def _choices(clauses: list[Clause]) -> list[Choice]:
    """The clauses a rule may be indexed by: each alternative by one of its words.

    Prefix heads are a last resort (clauses with an alternative of heads only
    count when no other clause exists): they cost a pass over every item's
    words, made only while some rule is indexed by one.
    """
    ranked = []
    for clause in clauses:
        choice = []
        for alternative in clause:
            words = tuple(sorted(k for k in alternative if not _is_head(k)))
            choice.append(words or tuple(sorted(alternative)))
        ranked.append((any(_is_head(keys[0]) for keys in choice), tuple(sorted(choice))))
    best = min((needs_head for needs_head, _ in ranked), default=False)
    return [choice for needs_head, choice in ranked if needs_head == best]


def _pick(choices: list[Choice], weights: dict[str, float]) -> frozenset[str]:
    """The keys of the clause whose keys weigh least, each alternative by its lightest key."""
    best: frozenset[str] = frozenset()
    best_weight = float("inf")
    for choice in choices:
        keys = frozenset(min(keys, key=weights.__getitem__) for keys in choice)
        weight = sum(map(weights.__getitem__, keys))
        if weight < best_weight:
            best, best_weight = keys, weight
    return best


# ---------------------------------------------------------------- evaluation

# Every rule's condition becomes one closure of (K, F, A, P, R), built from its tree:
# K the item's known words (and stem keys) in any field, F those of each field, A the
# padded texts of all fields joined by newlines, P each field's padded text, R the
# item's state (R(regex_id, field) the regex check, R.forms the forms of a word~ term).
# A one-word term is a set lookup, a word~ term a disjointness test of its word and stem
# keys; a phrase looks its words up before searching A; a regex searches the literals
# it cannot match without before running.
RegexCheck = _ItemState
Check = Callable[[frozenset[str], list[frozenset[str]], str, list[str], RegexCheck], bool]
HitCheck = Callable[[list[frozenset[str]], list[str], RegexCheck], bool]
Hits = Callable[[list[frozenset[str]], list[str], RegexCheck], tuple[Hit, ...]]
# A step of a rule's hits: a leaf's hit and check in one field, or for a word~ term (no
# check) the field, the word, its stem keys, both, and the field's name.
_HitStep = tuple[Hit, HitCheck | None, int, frozenset[str], frozenset[str], frozenset[str], Field]
_NO_HIT = Hit("", "title")


class _Builder:
    """Closures for the conditions and the hits of one rule set, sharing its regex ids."""

    def __init__(self, regex_id: Callable[[str], int]) -> None:
        self.regex_id = regex_id

    def condition(self, node: Node) -> Check:
        """The closure of ``node``; AND and OR try their cheapest children first."""
        match node:
            case Term():
                return _term_check(node)
            case Regex():
                return _regex_check(self.regex_id(node.pattern), node)
            case Near():
                return _near_check(node)
            case Not(child=child):
                return _not(self.condition(child))
            case And(children=children):
                return _all(tuple(self.condition(c) for c in sorted(children, key=_cost)))
            case Or(children=children):
                words, others = _word_alternatives(children)
                checks = [_words_check(keys, fields) for fields, keys in words.items()]
                checks += [self.condition(c) for c in sorted(others, key=_cost)]
                return checks[0] if len(checks) == 1 else _any(tuple(checks))
        raise TypeError(node)

    def hits(self, reported: list[Term | Regex]) -> Hits:
        """The hits of a matched rule, in report order: each positive leaf in each field."""
        checks: list[tuple[Hit, HitCheck]] = []
        # Each leaf in each field, in report order: a plain leaf's hit and check, or (no
        # check) a word~ term's field, word, stem keys and both, whose hits are the item's
        # words, found per item (one loop, not a closure per leaf and field).
        steps: list[_HitStep] = []
        for leaf in reported:
            for field in _fields(leaf):
                if isinstance(leaf, Term) and leaf.stem is not None:
                    word, stems = frozenset(leaf.tokens), _stem_keys(leaf)
                    steps.append((_NO_HIT, None, field, word, stems, stems | word, FIELDS[field]))
                    continue
                if isinstance(leaf, Regex):
                    check = _regex_field_check(self.regex_id(leaf.pattern), leaf.pattern, field)
                elif len(leaf.tokens) == 1 and not leaf.prefix:
                    check = _word_in_field(leaf.tokens[0], field)
                else:
                    check = _pattern_in_field(term_pattern(leaf), field)
                checks.append((Hit(leaf.text, FIELDS[field]), check))
                steps.append(
                    (checks[-1][0], check, field, _NO_KEYS, _NO_KEYS, _NO_KEYS, FIELDS[field])
                )
        texts = [leaf.text for leaf in reported]
        unique = len(set(texts)) == len(texts)  # else a hit may repeat: keep its first place
        if len(checks) < len(steps):

            def stemmed(F: list[frozenset[str]], P: list[str], R: RegexCheck) -> tuple[Hit, ...]:
                found: dict[Hit, None] = {}
                for hit, check, field, word, stems, keys, name in steps:
                    if check is not None:
                        if check(F, P, R):
                            found[hit] = None
                    elif not keys.isdisjoint(F[field]):
                        for form in R.forms(field, word, stems):
                            found[Hit(form, name)] = None
                return tuple(found)

            return stemmed

        def hits(F: list[frozenset[str]], P: list[str], R: RegexCheck) -> tuple[Hit, ...]:
            found = tuple([hit for hit, check in checks if check(F, P, R)])
            return found if unique else tuple(dict.fromkeys(found))

        return hits


def _cost(node: Node) -> int:
    """A rough evaluation cost, so cheap checks run first and often decide alone."""
    match node:
        case Term(tokens=(_,), prefix=False, stem=None):
            return 1
        case Term():
            return 2
        case Near():
            return 4
        case Regex():
            return 8
        case Not(child=child):
            return _cost(child)
        case And(children=children) | Or(children=children):
            return sum(map(_cost, children))
    raise TypeError(node)


def _not(child: Check) -> Check:
    return lambda K, F, A, P, R: not child(K, F, A, P, R)


# AND and OR loop rather than call all()/any() on a generator: one Python frame per
# level of the tree, not two, so the deepest rule the config accepts (100 levels of
# parentheses and NOT in a query, inside match groups) stays far from the recursion limit.


def _all(children: tuple[Check, ...]) -> Check:
    def check(
        K: frozenset[str], F: list[frozenset[str]], A: str, P: list[str], R: RegexCheck
    ) -> bool:
        for child in children:  # noqa: SIM110 -- one frame per level (above)
            if not child(K, F, A, P, R):
                return False
        return True

    return check


def _any(children: tuple[Check, ...]) -> Check:
    def check(
        K: frozenset[str], F: list[frozenset[str]], A: str, P: list[str], R: RegexCheck
    ) -> bool:
        for child in children:  # noqa: SIM110 -- one frame per level (above)
            if child(K, F, A, P, R):
                return True
        return False

    return check


def _word_in_field(word: str, field: int) -> HitCheck:
    return lambda F, P, R: word in F[field]


def _pattern_in_field(pattern: str, field: int) -> HitCheck:
    return lambda F, P, R: pattern in P[field]


def _term_check(term: Term) -> Check:
    """A word is a lookup in the known words of its fields; a phrase or prefix needs its
    whole words known before one substring search of its fields' padded text."""
    fields = _fields(term)
    if term.stem is not None:
        return _stem_check(term)
    words = frozenset(_words(term))
    if len(term.tokens) == 1 and not term.prefix:
        (word,) = words
        if fields == _ALL_FIELDS:
            return lambda K, F, A, P, R: word in K
        return lambda K, F, A, P, R: any(word in F[f] for f in fields)
    pattern = term_pattern(term)
    if fields == _ALL_FIELDS:
        return lambda K, F, A, P, R: words <= K and pattern in A
    return lambda K, F, A, P, R: words <= K and any(pattern in P[f] for f in fields)


def _word_alternatives(
    children: Iterable[Node],
) -> tuple[dict[tuple[int, ...], frozenset[str]], list[Node]]:
    """An OR's one-word and ``word~`` terms as the keys any of which makes it hold, by
    fields (one set lookup for a whole OR-list or group), and its other children."""
    words: dict[tuple[int, ...], frozenset[str]] = {}
    others: list[Node] = []
    for child in children:
        if isinstance(child, Term) and len(child.tokens) == 1 and not child.prefix:
            keys = frozenset(child.tokens)
            if child.stem is not None:
                keys |= _stem_keys(child)
            fields = _fields(child)
            words[fields] = words.get(fields, frozenset()) | keys
        else:
            others.append(child)
    return words, others


def _words_check(keys: frozenset[str], fields: tuple[int, ...]) -> Check:
    if fields == _ALL_FIELDS:
        return lambda K, F, A, P, R: not keys.isdisjoint(K)
    return lambda K, F, A, P, R: any(not keys.isdisjoint(F[f]) for f in fields)


def _stem_check(term: Term) -> Check:
    """``word~``: the word itself or one of its stem keys among the keys of its fields."""
    fields = _fields(term)
    keys = frozenset((term.tokens[0], *_stem_keys(term)))
    if fields == _ALL_FIELDS:
        return lambda K, F, A, P, R: not keys.isdisjoint(K)
    return lambda K, F, A, P, R: any(not keys.isdisjoint(F[f]) for f in fields)


def _regex_check(regex_id: int, regex: Regex) -> Check:
    """Over every field, the literals are searched once in the joined text."""
    fields = _fields(regex)
    if fields == _ALL_FIELDS:
        literals = regex_literals(regex.pattern)
        return lambda K, F, A, P, R: (
            all(s in A for s in literals) and any(R(regex_id, f) for f in fields)
        )
    per_field = tuple(_regex_field_check(regex_id, regex.pattern, f) for f in fields)
    return lambda K, F, A, P, R: any(check(F, P, R) for check in per_field)


def _regex_field_check(regex_id: int, pattern: str, field: int) -> HitCheck:
    literals = regex_literals(pattern)
    return lambda F, P, R: all(s in P[field] for s in literals) and R(regex_id, field)


def _near_check(near: Near) -> Check:
    """NEAR holds in one field, looking only at the terms scoped to it; its clauses go first."""
    sides = []
    stemmed = []
    for field in range(len(FIELDS)):
        left = [t for t in near.left if field in _fields(t)]
        right = [t for t in near.right if field in _fields(t)]
        if left and right:
            sides.append((field, _near_side(left), _near_side(right)))
            stemmed.append((field, _stemmed(left), _stemmed(right)))
    if not sides:
        return lambda K, F, A, P, R: False
    clauses = tuple(c for c in map(_clause_words, _clauses(near)) if c)
    distance = near.distance
    if not any(a or b for _, a, b in stemmed):
        return lambda K, F, A, P, R: (
            all(any(words <= K for words in clause) for clause in clauses)
            and any(_near_in(P[f], a, b, distance) for f, a, b in sides)
        )
    both = tuple((f, a, b, sa, sb) for (f, a, b), (_, sa, sb) in zip(sides, stemmed, strict=True))

    def check(
        K: frozenset[str], F: list[frozenset[str]], A: str, P: list[str], R: RegexCheck
    ) -> bool:
        if not all(any(words <= K for words in clause) for clause in clauses):
            return False
        for f, a, b, sa, sb in both:
            if not P[f]:
                continue
            keys = F[f]  # a side's other forms are looked for only if the field has its keys
            left = a + _form_patterns(R, f, sa) if sa and not sa[1].isdisjoint(keys) else a
            right = b + _form_patterns(R, f, sb) if sb and not sb[1].isdisjoint(keys) else b
            if _near_in(P[f], left, right, distance):
                return True
        return False

    return check


Stemmed = tuple[frozenset[str], frozenset[str]] | None  # the words~ of a side, their keys


def _stemmed(terms: Iterable[Term]) -> Stemmed:
    stemmed = [t for t in terms if t.stem is not None]
    if not stemmed:
        return None
    words = frozenset(t.tokens[0] for t in stemmed)
    return words, frozenset().union(*map(_stem_keys, stemmed))


def _form_patterns(
    R: RegexCheck, field: int, stemmed: tuple[frozenset[str], frozenset[str]]
) -> NearSide:
    """The patterns of the other forms of a side's ``word~`` terms found in a field (the
    words themselves are patterns of the side already)."""
    words, keys = stemmed
    return tuple((f" {form} ", 1) for form in R.forms(field, _NO_KEYS, keys) if form not in words)


def _clause_words(clause: Clause) -> tuple[frozenset[str], ...]:
    """A clause as the whole words of each alternative (none when an alternative has only
    a prefix head, which the known words cannot show)."""
    alternatives = []
    for alternative in clause:
        words = frozenset(k for k in alternative if not _is_head(k))
        if not words:
            return ()
        alternatives.append(words)
    return tuple(alternatives)


# ---------------------------------------------------------------- regex literals

# Escapes that stand for a class or an assertion, never for a letter or digit.
_CLASS_ESCAPES = frozenset("bBdDsSwWAz")


def regex_literals(pattern: str) -> tuple[str, ...]:
    """Lower-case ASCII letter/digit runs that every match of RE2 ``pattern`` contains.

    A regex runs on normalized text, where such a run always lies inside one
    token, so a field whose padded token text lacks the run cannot match. Only
    plain top-level characters count; anything unusual (an alternation, a flag
    group, ``\\Q``, a numeric or property escape) yields nothing.
    """
    runs: list[str] = []
    run: list[str] = []

    def close() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "|" or (
            pattern.startswith("(?", i) and not pattern.startswith(("(?:", "(?P<"), i)
        ):
            return ()
        if char in "?*{":  # the atom before may be absent: drop it from the run
            if run:
                run.pop()
            close()
            if char == "{":
                i = pattern.find("}", i)
                if i < 0:
                    return ()
        elif char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if not escaped or (
                escaped.isascii() and escaped.isalnum() and escaped not in _CLASS_ESCAPES
            ):
                return ()
            close()
            i += 1
        elif char in "([":
            close()
            i = (_group_end if char == "(" else _class_end)(pattern, i)
            if i < 0:
                return ()
            continue
        elif char.isascii() and char.isalnum():
            run.append(char.lower())
        else:  # + . ^ $ and every other character end the run
            close()
        i += 1
    close()
    return tuple(runs)


def _class_end(pattern: str, start: int) -> int:
    """The index after the bracketed class opening at ``start`` (-1 if unclosed)."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
        elif pattern[i] == "]":
            return i + 1
        elif pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end < 0:
                return -1
            i = end + 2
        else:
            i += 1
    return -1


def _group_end(pattern: str, start: int) -> int:
    """The index after the group opening at ``start`` (-1 if unclosed or holding ``\\Q``)."""
    depth = 0
    i = start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if pattern.startswith("Q", i + 1):
                return -1
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            if i < 0:
                return -1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if not depth:
                return i + 1
        i += 1
    return -1
