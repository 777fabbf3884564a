"""The rule query language (README, "Watch rules"): a hand-written recursive-descent parser.

Grammar, loosest binding first::

    or    := and ("OR" and)*
    and   := near (["AND"] near)*           adjacent operands are an implicit AND
    near  := unary ("NEAR/n" unary)*        each side: a term, phrase or prefix, or an OR of them
    unary := ("NOT" | "-") unary | primary
    primary := "(" or ")" | FIELD ":" primary | word | word~ | word~xx | "phrase" | /regex/
             | @group

``word~`` matches the word's inflections: every token whose Snowball stem equals the
word's in some language of :data:`bot.rules.stem.DEFAULT_LANGUAGES` (``word~fr``: in
French only). It applies to one word; on a phrase, prefix, regex or group it is an error.

A ``@group`` stands for the OR of a named group's terms (``groups:`` in a rule file), so
the matcher and its index see plain terms: :func:`resolve_groups` flattens the groups,
:func:`expand` writes a query without them.

Terms are normalized exactly like item text (:func:`bot.text.tokens`), so the
matcher only compares tokens. Errors carry a 1-based column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

from bot.errors import QueryError
from bot.model import FIELDS, Field
from bot.rules.regex import compile_regex
from bot.rules.stem import DEFAULT_LANGUAGES, LANGUAGES, written
from bot.text import normalize, tokens

MAX_NEAR = 1000
MAX_DEPTH = 100  # nested parentheses and NOTs: the parser and every tree walk recurse per level


@dataclass(frozen=True, slots=True)
class Term:
    """Consecutive tokens; with ``prefix`` the last one need only start the item token.

    ``fields`` is ``None`` when the rule's own ``fields`` apply. ``stem`` is set on a
    ``word~`` term (one token): ``""`` to stem it in :data:`DEFAULT_LANGUAGES`, a language
    code for ``word~fr``; ``written`` is then the word as written, accents kept.
    """

    tokens: tuple[str, ...]
    prefix: bool = False
    fields: tuple[Field, ...] | None = None
    stem: str | None = None
    written: str = ""

    @property
    def text(self) -> str:
        """How the term is reported: ``canadian police``, ``train*``, ``policière~`` (as
        written, lower-cased)."""
        if self.stem is not None:
            return f"{self.written}~{self.stem}"
        return " ".join(self.tokens) + ("*" if self.prefix else "")

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages a ``word~`` term is stemmed in (none for other terms)."""
        if self.stem is None:
            return ()
        return (self.stem,) if self.stem else DEFAULT_LANGUAGES


@dataclass(frozen=True, slots=True)
class Regex:
    """An RE2 pattern searched case-insensitively in the normalized field text."""

    pattern: str
    fields: tuple[Field, ...] | None = None

    @property
    def text(self) -> str:
        return f"/{self.pattern}/"


@dataclass(frozen=True, slots=True)
class Near:
    """One term of each side occurs in one field, at most ``distance`` token positions apart.

    Each side is one term, or several from a parenthesized OR: ``veteran* NEAR/4 (Iraq OR war)``.
    """

    left: tuple[Term, ...]
    right: tuple[Term, ...]
    distance: int


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Regex | Near | Not | And | Or


@dataclass(frozen=True, slots=True)
class QueryWarning:
    """A query that parses but most likely does not mean what it says: ``text`` is the part
    of the query it is about, from 1-based ``column``."""

    message: str
    column: int
    text: str


Groups = Mapping[str, tuple[str, ...]]
"""Each group's terms as written (``police``, ``"police officers"``, ``/mos(s)?oul/``),
its groups' terms included; ``()`` for a group that is itself in error."""

NO_GROUPS: Groups = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class GroupProblem:
    """Why group ``name`` (its term ``index``, or the whole group when ``None``) is wrong."""

    name: str
    index: int | None
    message: str


def parse(query: str, groups: Groups = NO_GROUPS) -> Node:
    """Parse one query string; raises :class:`QueryError` with a column on any mistake."""
    return _Parser(query, groups).parse()


def expand(query: str, groups: Groups) -> str:
    """``query`` with every ``@group`` written out as ``(term OR term ...)``: the same tree
    for :func:`parse` without groups, so the loaded rules need no groups to run."""
    out: list[str] = []
    i = done = 0
    while i < len(query):
        space = _SPACE.match(query, i)
        if space:
            i = space.end()
            continue
        start = i
        token, i = _lex_one(query, i)
        if token is not None and token.kind == "group":
            out += [query[done:start], "(" + " OR ".join(_members(token, groups)) + ")"]
            done = i
    return "".join(out) + query[done:]


def resolve_groups(
    defined: Mapping[str, Sequence[str]],
) -> tuple[dict[str, tuple[str, ...]], list[GroupProblem]]:
    """Every group as the flat list of its terms (``@other`` replaced by other's terms),
    with what is wrong: a term that is not one term, an unknown group, a cycle, no terms."""
    problems: list[GroupProblem] = []
    entries: dict[str, list[tuple[int, str, str | None]]] = {}
    for name, members in defined.items():
        if not members:
            problems.append(GroupProblem(name, None, f"group @{name} is empty: list its terms"))
        entries[name] = []
        for index, text in enumerate(members):
            entry = _group_entry(text, defined)
            if isinstance(entry, str):
                problems.append(GroupProblem(name, index, f"group @{name}[{index}]: {entry}"))
            else:
                entries[name].append((index, *entry))
    resolved: dict[str, tuple[str, ...]] = {}

    def visit(name: str, path: tuple[str, ...]) -> tuple[str, ...]:
        if name in resolved:
            return resolved[name]
        terms: list[str] = []
        for index, text, ref in entries[name]:
            if ref is None:
                terms.append(text)
            elif ref in path:
                cycle = " -> ".join(f"@{n}" for n in (*path[path.index(ref) :], ref))
                problems.append(
                    GroupProblem(name, index, f"group @{name}[{index}]: a cycle: {cycle}")
                )
            else:
                terms += visit(ref, (*path, ref))
        resolved[name] = tuple(dict.fromkeys(terms))
        return resolved[name]

    for name in defined:
        visit(name, (name,))
    return resolved, problems


_GROUP_REF = re.compile(r"@([^\s()\"]*)")
_NOT_ONE_TERM = (
    "{!r} is not one term: a group lists terms (words, phrases, prefix*, /regex/, @group),"
    " one per entry; combine them in the rule's query"
)


def _group_entry(text: str, defined: Mapping[str, object]) -> tuple[str, str | None] | str:
    """``(term, None)`` for one term as a query writes it, ``("", name)`` for ``@name``, or
    what is wrong with the entry. Several words are a phrase: ``police officers``."""
    text = text.strip()
    ref = _GROUP_REF.fullmatch(text)
    if ref:
        name = ref.group(1)
        return ("", name) if name in defined else f"unknown group @{name}" + _known(defined)
    words = text.split()
    if len(words) > 1 and text[0] not in '"/':
        if any(w in _OPERATORS or w.startswith("NEAR") for w in words):
            return _NOT_ONE_TERM.format(text)
        text = f'"{text}"'
    try:
        node = parse(text)
    except QueryError as err:
        return f"column {err.column}: {err.message}"
    if not isinstance(node, Term | Regex):
        return _NOT_ONE_TERM.format(text)
    return (text, None)


def _known(defined: Mapping[str, object]) -> str:
    if not defined:
        return " (no groups are defined: groups: in a rule file names them)"
    return f" (known: {', '.join('@' + n for n in sorted(defined))})"


def _members(token: _Token, groups: Groups) -> tuple[str, ...]:
    members = groups.get(token.value)
    if members is None:
        raise QueryError(f"unknown group @{token.value}" + _known(groups), token.column)
    if not members:
        raise QueryError(f"group @{token.value} has errors (see them above)", token.column)
    return members


def lint(query: str) -> list[QueryWarning]:
    """The silent traps of a query that parses: operators written in lower case (searched as
    words), words with nothing to search (``|``, ``&``), regex characters that normalized
    text never holds (``é``, ``’``)."""
    warnings: list[QueryWarning] = []
    _lex(query, warnings)
    return warnings


# ---------------------------------------------------------------- lexer

_SPACE = re.compile(r"\s+")
_FIELD = re.compile(r"([A-Za-z]+):")
_NEAR = re.compile(r"NEAR(?:/(\d+))?(?=[\s()\"]|$)")
_LOWER_NEAR = re.compile(r"near/\d+", re.IGNORECASE)
_WORD = re.compile(r"[^\s()\"]+")
_OPERATORS = {"AND", "OR", "NOT"}
_GROUP_NAME = re.compile(r"@([a-z0-9][a-z0-9_.-]*)(?=[\s()\"]|$)")
_NO_STEM = "~ stems one word, not {what}: put it on a word (police~)"
_STEMMED_GROUP = re.compile(r"@[a-z0-9][a-z0-9_.-]*~")
_STEM = re.compile(r"~([A-Za-z]*)$")  # police~, police~fr: the end of a word
_STEM_IN_PHRASE = re.compile(r"(?<=\w)~[A-Za-z]*(?=\s|$)")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word phrase regex ( ) AND OR NOT - NEAR field group
    column: int
    value: str = ""
    distance: int = 0


def _lex(query: str, warnings: list[QueryWarning] | None = None) -> list[_Token]:
    """Split a query into tokens; words without letters or digits are dropped (a warning)."""
    out: list[_Token] = []
    i = 0
    while i < len(query):
        space = _SPACE.match(query, i)
        if space:
            i = space.end()
            continue
        start = i
        token, i = _lex_one(query, i)
        if token is not None:
            out.append(token)
        if warnings is not None:
            warnings += _traps(token, query[start:i], start + 1)
    return out


def _lex_one(query: str, i: int) -> tuple[_Token | None, int]:
    column = i + 1
    char = query[i]
    if char in "()":
        return _Token(char, column), i + 1
    if char == '"':
        end = query.find('"', i + 1)
        if end < 0:
            raise QueryError(f"unclosed quote opened at column {column}", column)
        if query.startswith("~", end + 1):
            raise QueryError(_NO_STEM.format(what="a phrase"), end + 2)
        return _Token("phrase", column, query[i + 1 : end]), end + 1
    if char == "/":
        return _lex_regex(query, i)
    if char == "@" and _continues(query, i + 1) and query[i + 1] not in '()"':
        return _lex_group(query, i)
    if char == "-" and _continues(query, i + 1) and query[i + 1] != ")":
        return _Token("-", column), i + 1
    near = _NEAR.match(query, i)
    if near:
        return _near_token(near, column), near.end()
    if query.startswith("NEAR/", i):
        raise QueryError("NEAR/ needs a distance, a number like NEAR/5", column)
    field = _FIELD.match(query, i)
    if field and (field.group(1) in FIELDS or _continues(query, field.end())):
        return _field_token(field, column), field.end()
    word = cast(re.Match[str], _WORD.match(query, i))
    value = word.group()
    if value in _OPERATORS:
        return _Token(value, column), word.end()
    if not tokens(value):
        return None, word.end()
    return _Token("word", column, value), word.end()


def _traps(token: _Token | None, text: str, column: int) -> list[QueryWarning]:
    """What a token (None: a dropped word) most likely does not mean as written."""
    if token is None:
        return [
            QueryWarning(
                f"{text!r} has no letters or digits, so it is ignored: write OR for either"
                " side, AND for both, NOT to exclude",
                column,
                text,
            )
        ]
    if token.kind == "word" and text.upper() in _OPERATORS:
        return [
            QueryWarning(
                f"{text!r} is searched as a word: operators are upper case ({text.upper()});"
                f' quote it ("{text}") to search the word',
                column,
                text,
            )
        ]
    if token.kind == "word" and _LOWER_NEAR.fullmatch(text):
        return [
            QueryWarning(
                f"{text!r} is searched as words: write {text.upper()} for nearness",
                column,
                text,
            )
        ]
    if token.kind == "regex":
        return [
            QueryWarning(
                f"/{token.value}/ holds {char!r}, which the normalized text a regex searches"
                " never holds (case folded, accents and Arabic vowel marks removed, dashes"
                " and quotes made plain): "
                + (f"write {plain!r}" if (plain := normalize(char)) else "leave it out"),
                column + offset,
                char,
            )
            for offset, char in enumerate(text)
            if not char.isascii() and normalize(char) not in (char, char.lower())
        ]
    return []


def _lex_regex(query: str, i: int) -> tuple[_Token, int]:
    column = i + 1
    j = i + 1
    while j < len(query) and query[j] != "/":
        j += 2 if query[j] == "\\" else 1
    if j >= len(query):
        raise QueryError(f"unclosed regex opened at column {column}: end it with /", column)
    pattern = query[i + 1 : j].replace("\\/", "/")
    if not pattern:
        raise QueryError("empty regex //", column)
    if query.startswith("~", j + 1):
        raise QueryError(_NO_STEM.format(what="a regex"), j + 2)
    if _continues(query, j + 1) and query[j + 1] != ")":
        raise QueryError(
            f"unexpected {query[j + 1]!r} right after a regex: regex flags are not "
            "supported (matching is always case-insensitive)",
            j + 2,
        )
    try:
        compile_regex(pattern)
    except ValueError as exc:
        raise QueryError(f"invalid regex: {exc}", column) from None
    return _Token("regex", column, pattern), j + 1


def _lex_group(query: str, i: int) -> tuple[_Token, int]:
    group = _GROUP_NAME.match(query, i)
    stemmed = _STEMMED_GROUP.match(query, i)
    if group is None and stemmed is not None:
        raise QueryError(
            "~ stems one word, not a group: put ~ on the group's words (police~)", stemmed.end()
        )
    if group is None:
        raise QueryError(
            "a group is @ and its name: lower-case letters, digits, '-', '_', '.' (@police);"
            ' quote it ("@word") to search the text',
            i + 1,
        )
    return _Token("group", i + 1, group.group(1)), group.end()


def _continues(query: str, i: int) -> bool:
    return i < len(query) and not query[i].isspace()


def _near_token(near: re.Match[str], column: int) -> _Token:
    if near.group(1) is None:
        raise QueryError("NEAR needs a distance, like NEAR/5", column)
    distance = int(near.group(1))
    if not 1 <= distance <= MAX_NEAR:
        raise QueryError(f"NEAR distance must be between 1 and {MAX_NEAR}", column)
    return _Token("NEAR", column, distance=distance)


def _field_token(field: re.Match[str], column: int) -> _Token:
    name = field.group(1)
    if name not in FIELDS:
        raise QueryError(
            f"unknown field {name!r}: use title:, summary: or content: "
            '(quote the text to search for a colon: "' + field.group() + '...")',
            column,
        )
    return _Token("field", column, name)


# ---------------------------------------------------------------- parser

_OPERAND_START = {"word", "phrase", "regex", "(", "NOT", "-", "field", "group"}
Scope = tuple[Field, ...] | None


class _Parser:
    def __init__(self, query: str, groups: Groups = NO_GROUPS) -> None:
        self.query = query
        self.groups = groups
        self.tokens = _lex(query)
        self.pos = 0
        self.depth = 0
        self.first_negation: _Token | None = None
        self.regex_columns: dict[str, int] = {}

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError("empty query", 1)
        node = self.or_expr(None)
        if self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            raise QueryError("unmatched closing parenthesis", token.column)
        self.check_not_everything(node)
        return node

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def operand_follows(self) -> bool:
        token = self.peek()
        return token is not None and token.kind in _OPERAND_START

    def need_operand(self, operator: _Token, message: str) -> None:
        if not self.operand_follows():
            raise QueryError(message, operator.column)

    def or_expr(self, scope: Scope) -> Node:
        children = [self.and_expr(scope)]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            self.need_operand(token, "OR needs a term on both sides")
            children.append(self.and_expr(scope))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self, scope: Scope) -> Node:
        children = [self.near_expr(scope)]
        while (token := self.peek()) is not None:
            if token.kind == "AND":
                self.take()
                self.need_operand(token, "AND needs a term on both sides")
            elif token.kind not in _OPERAND_START:
                break
            children.append(self.near_expr(scope))
        return children[0] if len(children) == 1 else And(tuple(children))

    def near_expr(self, scope: Scope) -> Node:
        first: int | None = self.pos
        left = self.unary(scope)
        while (token := self.peek()) is not None and token.kind == "NEAR":
            self.take()
            self.need_operand(token, "NEAR needs a term on both sides")
            second = self.pos
            right = self.unary(scope)
            self.near_group(left, first)
            self.near_group(right, second)
            left = Near(_near_side(left, token), _near_side(right, token), token.distance)
            first = None
        return left

    def unary(self, scope: Scope) -> Node:
        token = self.peek()
        if token is not None and token.kind in ("NOT", "-"):
            self.take()
            self.first_negation = self.first_negation or token
            name = "NOT" if token.kind == "NOT" else "-"
            self.need_operand(token, f"{name} needs a term right after it")
            self.descend(token)
            node = Not(self.unary(scope))
            self.depth -= 1
            return node
        return self.primary(scope)

    def near_group(self, node: Node, start: int | None) -> None:
        """A NEAR side that is a ``@group`` (``title:@group``) holding a regex: say which."""
        if start is None:
            return
        token = self.tokens[start + (self.tokens[start].kind == "field")]
        leaves = node.children if isinstance(node, Or) else (node,)
        regex = next((leaf for leaf in leaves if isinstance(leaf, Regex)), None)
        if token.kind == "group" and regex is not None:
            raise QueryError(
                f"@{token.value} holds the regex {regex.text}, which NEAR cannot join:"
                " NEAR joins terms, phrases and prefixes",
                token.column,
            )

    def descend(self, token: _Token) -> None:
        """Count one more level of nesting; refuse more than :data:`MAX_DEPTH`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(
                f"nested more than {MAX_DEPTH} levels deep (parentheses and NOT)", token.column
            )

    def primary(self, scope: Scope) -> Node:
        token = self.peek()
        if token is None:
            raise QueryError("the query ends where a term was expected", len(self.query) + 1)
        if token.kind in ("AND", "OR", "NEAR"):
            raise QueryError(f"{token.kind} needs a term on both sides", token.column)
        if token.kind == ")":
            raise QueryError("unmatched closing parenthesis", token.column)
        self.take()
        if token.kind == "(":
            return self.group(token, scope)
        if token.kind == "field":
            return self.scoped(token)
        if token.kind == "regex":
            self.regex_columns.setdefault(token.value, token.column)
            return Regex(token.value, scope)
        if token.kind == "group":
            return self.group_ref(token, scope)
        if token.kind == "phrase":
            return self.term(token, scope, quoted=True)
        return self.term(token, scope, quoted=False)

    def group(self, opening: _Token, scope: Scope) -> Node:
        following = self.peek()
        if following is not None and following.kind == ")":
            raise QueryError("empty parentheses", opening.column)
        self.descend(opening)
        node = self.or_expr(scope)
        self.depth -= 1
        closing = self.peek()
        if closing is None or closing.kind != ")":
            column = opening.column
            raise QueryError(f"unclosed parenthesis opened at column {column}", column)
        self.take()
        return node

    def group_ref(self, token: _Token, scope: Scope) -> Node:
        """The OR of the group's terms, each parsed as if written here (``title:@police``)."""
        nodes = tuple(_Parser(term).primary(scope) for term in _members(token, self.groups))
        return nodes[0] if len(nodes) == 1 else Or(nodes)

    def scoped(self, field: _Token) -> Node:
        following = self.peek()
        if following is None or following.kind not in ("word", "phrase", "regex", "(", "group"):
            raise QueryError(
                f"{field.value}: needs a term, phrase, (parentheses) or @group right after it",
                field.column,
            )
        return self.primary((cast(Field, field.value),))

    def term(self, token: _Token, scope: Scope, *, quoted: bool) -> Term:
        text = token.value.strip() if quoted else token.value
        stem = _STEM_IN_PHRASE.search(text) if quoted else _STEM.search(text)
        if quoted and stem:
            raise QueryError(
                "~ stems one word, not a phrase: write each word with ~ and join them with"
                " NEAR/1 (police~ NEAR/1 officer~)",
                token.column + token.value.index(stem.group()) + 1,
            )
        if stem:
            return self.stemmed(token, text[: stem.start()], stem.group(1) or "", scope)
        prefix = text.endswith("*")
        body = text[:-1] if prefix else text
        if "*" in body:
            column = token.column + token.value.index("*") + quoted
            raise QueryError("'*' can only end a word (train*)", column)
        words = tuple(tokens(body))
        if not words:
            raise QueryError(f"{token.value!r} has no letters or digits to match", token.column)
        if prefix and not normalize(body).endswith(words[-1]):
            raise QueryError("'*' must directly follow a letter or digit (train*)", token.column)
        return Term(words, prefix, scope)

    def stemmed(self, token: _Token, body: str, language: str, scope: Scope) -> Term:
        """``word~`` or ``word~fr``: one word, matched in all its Snowball inflections."""
        column = token.column + len(body)
        language = language.lower()
        if language and language not in LANGUAGES:
            raise QueryError(
                f"~{language}: no stemmer for language {language!r}"
                f" (known: {', '.join(LANGUAGES)}; a bare ~ stems in"
                f" {', '.join(DEFAULT_LANGUAGES)})",
                column,
            )
        if body.endswith("*"):
            raise QueryError(
                "~ cannot follow a prefix: train* already matches every ending; write train~"
                " for the forms of one word",
                column,
            )
        words = tokens(body)
        if not words:
            raise QueryError(f"{token.value!r}: ~ needs a word before it (police~)", column)
        if len(words) > 1:
            raise QueryError(
                f"~ stems one word, and {body!r} is {len(words)} ({' '.join(words)}): write"
                " each word with ~ and join them with NEAR/1",
                column,
            )
        return Term((words[0],), False, scope, language, written(body))

    def check_not_everything(self, node: Node) -> None:
        """Refuse queries an empty item satisfies: they would alert on nearly every item."""
        if not _matches_empty(node):
            return
        regex = _first_empty_regex(node)
        if regex is not None:
            raise QueryError(
                f"/{regex.pattern}/ matches empty text, so it would match every item",
                self.regex_columns[regex.pattern],
            )
        negation = cast(_Token, self.first_negation)
        raise QueryError(
            f"{negation.kind} cannot stand alone: add a term that must be present "
            "(police NOT army)",
            negation.column,
        )


def _near_side(node: Node, near: _Token) -> tuple[Term, ...]:
    if isinstance(node, Term):
        return (node,)
    if isinstance(node, Or) and all(isinstance(c, Term) for c in node.children):
        return cast(tuple[Term, ...], node.children)
    raise QueryError(
        "NEAR joins terms, phrases or prefixes, or (a OR b) groups of them "
        "(not a regex, a NOT, an AND or another NEAR)",
        near.column,
    )


def _matches_empty(node: Node) -> bool:
    match node:
        case Term() | Near():
            return False
        case Regex(pattern=pattern):
            return compile_regex(pattern).search("") is not None
        case Not(child=child):
            return not _matches_empty(child)
        case And(children=children):
            return all(_matches_empty(c) for c in children)
        case Or(children=children):
            return any(_matches_empty(c) for c in children)
    raise TypeError(node)


def _first_empty_regex(node: Node) -> Regex | None:
    match node:
        case Regex(pattern=pattern) if compile_regex(pattern).search("") is not None:
            return node
        case And(children=children) | Or(children=children):
            return next((r for c in children if (r := _first_empty_regex(c))), None)
    return None
