"""Loads the config directory: YAML with line numbers, ``${VAR}`` substitution,
validation, cross-references and rule compilation, every problem located as
``file:line: message``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config.schema import (
    VARIABLE,
    Invalid,
    M,
    MatchGroup,
    Rule,
    RulesFile,
    SchemaError,
    Settings,
    unknown_key_hint,
    validate,
)
from bot.config.yamlfile import YamlProblem, column_of, line_of, read_tree
from bot.errors import ConfigError, ConfigProblem, Location, QueryError
from bot.rules.query import Groups, resolve_groups

SETTINGS_FILE = "settings.yaml"
RULES_FILE = "rules.yaml"
RULES_DIR = "rules"

MAX_MATCH_DEPTH = 10  # match groups nested in match groups
MIN_SECRET = 6  # shorter values from the environment are not hidden (see _Environment)

_VAR = re.compile(r"\$\$|" + VARIABLE)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Config:
    """A validated config directory."""

    directory: Path
    settings: Settings
    rules: tuple[Rule, ...]
    secrets: frozenset[str] = frozenset()  # values from the environment to hide (see _Environment)
    warnings: tuple[ConfigProblem, ...] = ()  # rule queries that most likely mean something else


class _Environment:
    """The environment as ``${VAR}`` sees it, remembering the values it hands out that
    could be credentials: a key can sit anywhere (in a feed URL), so all are hidden.

    Values shorter than :data:`MIN_SECRET` characters or that are numbers are not:
    hiding ``8080`` or ``true`` everywhere would mangle every line and hide nothing.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.secrets: set[str] = set()

    def get(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is not None and _secret_looking(value):
            self.secrets.add(value)
        return value

    def error(self, problems: _Problems) -> ConfigError:
        """Every problem, with these values hidden (a validation message quotes the value)."""
        hidden = sorted(self.secrets, key=len, reverse=True)
        return ConfigError([_hide(problem, hidden) for problem in problems.items])


def _secret_looking(value: str) -> bool:
    if len(value) < MIN_SECRET:
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _hide(problem: ConfigProblem, secrets: Sequence[str]) -> ConfigProblem:
    message = problem.message
    for secret in secrets:
        message = message.replace(secret, "***")
    return ConfigProblem(problem.location, message)


@dataclass
class _Document:
    """One parsed YAML file: plain data plus the ruamel tree that knows line numbers."""

    file: str
    tree: Any
    data: Any
    text: str = ""

    def line(self, path: Path_, *, key: bool = False) -> int:
        return line_of(self.tree, path, key=key)

    def column(self, path: Path_) -> int:
        return column_of(self.tree, path)


class _Problems:
    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def add(self, file: str, line: int, message: str) -> None:
        self.items.append(ConfigProblem(Location(file, line), message))


def load_config(directory: Path, environ: Mapping[str, str]) -> Config:
    """Everything in ``directory``, validated; raises :class:`ConfigError` listing every problem."""
    problems, env = _Problems(), _Environment(environ)
    settings_doc = _read(directory / SETTINGS_FILE, env, problems, required=True)
    settings = _validate(settings_doc, Settings, problems) if settings_doc else None
    if settings_doc and settings is not None:
        _check_settings(settings, settings_doc, problems)
    rules = _load_rules(directory, env, settings, problems)
    if problems.items or settings is None:
        raise env.error(problems)
    return Config(directory, settings, rules, frozenset(env.secrets), tuple(problems.warnings))


def load_rules(
    directory: Path, settings: Settings, environ: Mapping[str, str]
) -> tuple[tuple[Rule, ...], tuple[ConfigProblem, ...]]:
    """Only the rule files (for reloading them while running), checked against ``settings``;
    with the warnings about their queries, which do not stop them loading."""
    problems, env = _Problems(), _Environment(environ)
    rules = _load_rules(directory, env, settings, problems)
    if problems.items:
        raise env.error(problems)
    return rules, tuple(problems.warnings)


def rule_file_paths(directory: Path) -> tuple[Path, ...]:
    single = directory / RULES_FILE
    many = sorted((directory / RULES_DIR).glob("*.yaml")) + sorted(
        (directory / RULES_DIR).glob("*.yml")
    )
    return ((single,) if single.is_file() else ()) + tuple(many)


def _load_rules(
    directory: Path,
    environ: _Environment,
    settings: Settings | None,
    problems: _Problems,
) -> tuple[Rule, ...]:
    files = rule_file_paths(directory)
    if not files:
        problems.add(
            str(directory / RULES_FILE), 0, f"no rules: create {RULES_FILE} or {RULES_DIR}/*.yaml"
        )
    docs = [doc for path in files if (doc := _read(path, environ, problems, required=True))]
    parsed = [(doc, _validate(doc, RulesFile, problems)) for doc in docs]
    groups = _load_groups(parsed, problems)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for doc, valid_file in parsed:
        valid = enumerate(valid_file.rules) if valid_file is not None else _valid_rules(doc)
        for index, rule in valid:
            where = ("rules", index)
            if rule.id in seen:
                problems.add(
                    doc.file,
                    doc.line((*where, "id")),
                    f"rules[{index}].id: duplicate rule id {rule.id!r} (first in {seen[rule.id]})",
                )
                continue
            seen[rule.id] = f"{doc.file}:{doc.line((*where, 'id'))}"
            if settings is not None:
                _check_rule(rule, where, doc, settings, problems)
            if _check_match_depth(rule, where, doc, problems) and _compile(
                rule, where, doc, groups, problems
            ):
                _lint(rule, where, doc, problems)
            rules.append(_expanded(rule, groups))
    return tuple(rules)


def _load_groups(
    parsed: Sequence[tuple[_Document, RulesFile | None]], problems: _Problems
) -> Groups:
    """The ``groups`` of every rule file, one namespace for all: each flattened to its terms."""
    defined: dict[str, tuple[str, ...]] = {}
    where: dict[str, tuple[_Document, str]] = {}
    for doc, valid_file in parsed:
        for name, terms in (valid_file.groups if valid_file else _valid_groups(doc)).items():
            line = doc.line(("groups", name), key=True)
            if name in where:
                problems.add(
                    doc.file,
                    line,
                    f"groups.{name}: duplicate group @{name} (first in {where[name][1]})",
                )
                continue
            defined[name], where[name] = terms, (doc, f"{doc.file}:{line}")
    resolved, wrong = resolve_groups(defined)
    for problem in wrong:
        doc = where[problem.name][0]
        path: Path_ = ("groups", problem.name)
        if problem.index is not None:
            path = (*path, problem.index)
        problems.add(doc.file, doc.line(path, key=problem.index is None), problem.message)
    return resolved


def _valid_groups(doc: _Document) -> dict[str, tuple[str, ...]]:
    """The groups of an invalid rules file that are well-formed (its problems are listed),
    so its rules' references to them are not reported as unknown too."""
    groups = doc.data.get("groups") if isinstance(doc.data, dict) else None
    if not isinstance(groups, dict):
        return {}
    return {
        name: tuple(terms)
        for name, terms in groups.items()
        if isinstance(terms, list) and all(isinstance(t, str) for t in terms)
    }


def _expanded(rule: Rule, groups: Groups) -> Rule:
    """The rule as it runs: its ``@group`` references written out (when they all resolve)."""
    from bot.rules.match import expand_rule

    try:
        return expand_rule(rule, groups)
    except QueryError:
        return rule  # already reported by _compile; the load fails


def _valid_rules(doc: _Document) -> list[tuple[int, Rule]]:
    """The entries of an invalid rules file that are valid on their own (their problems are
    already listed), so their query errors are reported in the same run, not the next."""
    entries = doc.data.get("rules") if isinstance(doc.data, dict) else None
    if not isinstance(entries, list):
        return []
    valid = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict):
            try:
                valid.append((index, validate(Rule, entry)))
            except SchemaError:
                continue
    return valid


def _check_settings(settings: Settings, doc: _Document, problems: _Problems) -> None:
    seen: set[str] = set()
    for index, feed in enumerate(settings.feeds):
        if feed.id in seen:
            problems.add(
                doc.file,
                doc.line(("feeds", index, "id")),
                f"feeds[{index}].id: duplicate feed id {feed.id!r}",
            )
        seen.add(feed.id)
    watchers = {
        "on_feed_failure": settings.on_feed_failure.notify if settings.on_feed_failure else (),
        "on_feed_silence": settings.on_feed_silence.notify,
    }
    for key, notify in watchers.items():
        for index, dest in enumerate(notify):
            if dest not in settings.destinations:
                problems.add(
                    doc.file,
                    doc.line((key, "notify", index)),
                    f"{key}.notify[{index}]: unknown destination {dest!r}"
                    + _known(settings.destinations),
                )


def _check_rule(
    rule: Rule, where: Path_, doc: _Document, settings: Settings, problems: _Problems
) -> None:
    for index, dest in enumerate(rule.notify or ()):
        if dest not in settings.destinations:
            problems.add(
                doc.file,
                doc.line((*where, "notify", index)),
                f"rule {rule.id!r}: notify[{index}]: unknown destination {dest!r}"
                + _known(settings.destinations),
            )
    feed_ids = {feed.id for feed in settings.feeds}
    tags = {tag for feed in settings.feeds for tag in feed.tags}
    for index, entry in enumerate(rule.feeds):
        tag = entry.removeprefix("tag:") if entry.startswith("tag:") else None
        if (tag is not None and tag not in tags) or (tag is None and entry not in feed_ids):
            what = f"no feed has tag {tag!r}" if tag is not None else f"unknown feed {entry!r}"
            problems.add(
                doc.file,
                doc.line((*where, "feeds", index)),
                f"rule {rule.id!r}: feeds[{index}]: {what}",
            )


def _check_match_depth(rule: Rule, where: Path_, doc: _Document, problems: _Problems) -> bool:
    """Whether the rule's ``match`` groups nest at most :data:`MAX_MATCH_DEPTH` deep."""
    pending: list[tuple[MatchGroup, Path_, int]] = (
        [(rule.match, ("match",), 1)] if rule.match else []
    )
    while pending:
        group, path, depth = pending.pop()
        if depth > MAX_MATCH_DEPTH:
            problems.add(
                doc.file,
                doc.line((*where, *path)),
                f"rule {rule.id!r}: {dotted(path)}: match groups nested more than"
                f" {MAX_MATCH_DEPTH} deep",
            )
            return False
        for kind in ("all", "any", "none"):
            for index, entry in enumerate(getattr(group, kind)):
                if isinstance(entry, MatchGroup):
                    pending.append((entry, (*path, kind, index), depth + 1))
    return True


def _compile(rule: Rule, where: Path_, doc: _Document, groups: Groups, problems: _Problems) -> bool:
    from bot.rules.match import compile_rule, rule_queries

    try:
        compile_rule(rule, groups)
    except QueryError as err:
        path = (*where, *err.path)
        line, column = doc.line(path), 0
        query = dict(rule_queries(rule)).get(err.path, "")
        if query[err.column - 1 : err.column] == "~":  # a misplaced ~: point at it in the file
            line, column = _position(doc, path, query, "~", err.column)
        problems.items.append(
            ConfigProblem(
                Location(doc.file, line, column),
                f"rule {rule.id!r}: {dotted(err.path)}: column {err.column}: {err.message}",
            )
        )
        return False
    return True


def _lint(rule: Rule, where: Path_, doc: _Document, problems: _Problems) -> None:
    from bot.rules.match import lint_rule

    for path, query, warning in lint_rule(rule):
        line, column = _position(doc, (*where, *path), query, warning.text, warning.column)
        problems.warnings.append(
            ConfigProblem(
                Location(doc.file, line, column),
                f"warning: rule {rule.id!r}: {dotted(path)}: {warning.message}",
            )
        )


def _position(doc: _Document, path: Path_, query: str, text: str, column: int) -> tuple[int, int]:
    """The file line and column of ``text`` found at ``column`` of ``query``, the value at
    ``path``: the same occurrence of ``text``, counted from where the value starts, since
    quoting and folding a YAML value move its text but never split a word. The value's line
    (column unknown) when it is not there (a ``${VAR}`` put it in)."""
    line = doc.line(path)
    lines = doc.text.split("\n")
    at = sum(len(x) + 1 for x in lines[: line - 1]) + doc.column(path) - 1
    for _ in range(_occurrences(query[: column - 1 + len(text) - 1], text) + 1):
        at = doc.text.find(text, at + 1)
        if at < 0:
            return line, 0
    return doc.text.count("\n", 0, at) + 1, at - doc.text.rfind("\n", 0, at)


def _occurrences(text: str, part: str) -> int:
    """How many times ``part`` occurs in ``text``, overlaps included."""
    found, at = 0, text.find(part)
    while at >= 0:
        found, at = found + 1, text.find(part, at + 1)
    return found


def _known(ids: Mapping[str, object]) -> str:
    return f" (known: {', '.join(sorted(ids))})" if ids else ""


def _read(
    path: Path, environ: _Environment, problems: _Problems, *, required: bool
) -> _Document | None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            problems.add(name, 0, "file not found")
        return None
    except (OSError, UnicodeDecodeError) as err:
        problems.add(name, 0, f"cannot read: {err}")
        return None
    try:
        tree = read_tree(text)
    except YamlProblem as err:
        problems.add(name, err.line, err.message)
        return None
    doc = _Document(name, tree, None, text)
    doc.data = _substitute(tree, (), doc, environ, problems)
    return doc


def _substitute(
    node: Any, path: Path_, doc: _Document, environ: _Environment, problems: _Problems
) -> Any:
    """Plain Python data with ``${VAR}`` and ``${VAR:-default}`` replaced in every string."""
    if isinstance(node, Mapping):
        return {
            str(k): _substitute(v, (*path, str(k)), doc, environ, problems) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute(v, (*path, i), doc, environ, problems) for i, v in enumerate(node)]
    if isinstance(node, str):
        return _VAR.sub(lambda m: _expand(m, path, doc, environ, problems), str(node))
    return node


def _expand(
    m: re.Match[str], path: Path_, doc: _Document, environ: _Environment, problems: _Problems
) -> str:
    if m.group(0) == "$$":
        return "$"
    name, default = m.group(1), m.group(2)
    value = environ.get(name)
    if value is None or (value == "" and default is not None):
        if default is not None:
            return default
        problems.add(
            doc.file,
            doc.line(path),
            f"{dotted(path)}: environment variable {name} is not set"
            f" (or write ${{{name}:-default}})",
        )
        return ""
    return value


def _validate(doc: _Document, model: type[M], problems: _Problems) -> M | None:
    if not isinstance(doc.data, dict):
        problems.add(doc.file, doc.line(()), "expected a mapping of keys at the top level")
        return None
    try:
        return validate(model, doc.data)
    except SchemaError as err:
        problems.items.extend(_located(invalid, doc, model) for invalid in err.problems)
        return None


def _located(invalid: Invalid, doc: _Document, model: type[M]) -> ConfigProblem:
    loc = invalid.loc
    where = dotted(_yaml_path(loc, doc))
    if invalid.kind == "extra_forbidden":
        hint = unknown_key_hint(model, loc)
        line, message = doc.line(loc, key=True), f"{where}: unknown key{hint}"
    elif invalid.kind == "missing":
        where = dotted((*_yaml_path(loc[:-1], doc), loc[-1]))
        line, message = doc.line(loc[:-1]), f"{where}: missing required key"
    else:
        line, message = doc.line(loc), f"{where}: {invalid.message}"
    return ConfigProblem(Location(doc.file, line), message)


def _yaml_path(loc: Sequence[str | int], doc: _Document) -> Path_:
    """``loc`` without the steps pydantic adds for unions (tags, model names)."""
    node, kept = doc.data, []
    for step in loc:
        # Two branches, not one `or`: only the second narrows step to an int for the list.
        if isinstance(node, dict) and step in node:  # noqa: SIM114
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        elif isinstance(node, dict | list):
            continue
        kept.append(step)
    return tuple(kept)


def dotted(path: Path_) -> str:
    """Where a value is, as problems name it: ``rules[2].match.any[0]``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "(top level)"
