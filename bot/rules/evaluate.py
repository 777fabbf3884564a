"""``newswatch eval``: the rules scored against items a person labelled relevant or not.

A labelled file is YAML (a mapping whose ``items:`` lists the records, with an
optional file-wide ``relevant:`` default) or JSON lines (``.jsonl``/``.ndjson``,
one record per line). A record: ``title``, ``summary``, ``content`` (at least
one), ``relevant`` (true/false), and optionally ``id``, ``language``, ``source``
(where the text came from), ``class`` (a label of your own) and ``rules`` (the
ids of the rules that should match it). A record without ``language`` gets the one
the caller's detector tells, so rules' ``languages:`` apply and figures per language
count it. Pure: text in, records and report lines out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from bot.config.schema import Rule
from bot.config.yamlfile import YamlProblem, line_of, read_tree
from bot.errors import ConfigError, ConfigProblem, Location
from bot.model import Item
from bot.rules.explain import explain, found_terms
from bot.rules.match import RuleSet

JSON_LINES = (".jsonl", ".ndjson")
Detector = Callable[[str, str], str | None]
"""The language of an item from its title and summary, None when unknown."""
TEXT_KEYS = ("title", "summary", "content")
KEYS = (*TEXT_KEYS, "id", "relevant", "language", "rules", "source", "class")


@dataclass(frozen=True, slots=True)
class Labelled:
    """One record of a labelled file; ``where`` is its ``file:line``."""

    item: Item
    relevant: bool
    where: str
    language: str | None = None
    rules: tuple[str, ...] = ()
    source: str | None = None
    kind: str | None = None  # the record's ``class``


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the rules did with one record: the ids of the rules that matched it."""

    case: Labelled
    matched: tuple[str, ...]

    @property
    def alerted(self) -> bool:
        return bool(self.matched)


@dataclass(frozen=True, slots=True)
class Score:
    """Counts behind recall (``found`` of ``expected``) and precision (``correct`` of
    ``alerts``); a figure is None when its denominator is 0."""

    found: int = 0
    expected: int = 0
    correct: int = 0
    alerts: int = 0

    @property
    def recall(self) -> float | None:
        return self.found / self.expected if self.expected else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.alerts if self.alerts else None


# ---------------------------------------------------------------- reading


def parse_labelled(
    text: str, name: str, known_rules: Collection[str], detect: Detector | None = None
) -> list[Labelled]:
    """Every record of the file ``name``; raises :class:`ConfigError` listing each malformed
    one as ``file:line: message``. ``detect`` gives a language to records without one."""
    problems: list[ConfigProblem] = []
    if name.endswith(JSON_LINES):
        records = list(_json_lines(text, name, problems))
    else:
        records = _yaml_records(text, name, problems)
    cases = []
    for index, data, default, line_of_key in records:
        case = _record(data, default, index, name, line_of_key, known_rules, problems)
        if case is not None and case.language is None and detect is not None:
            item = case.item
            language = detect(item.title, item.summary or item.content)
            case = replace(case, item=replace(item, language=language), language=language)
        if case is not None:
            cases.append(case)
    if problems:
        raise ConfigError(problems)
    return cases


Record = tuple[int, object, bool | None, Callable[[str | None], int]]


def _json_lines(text: str, name: str, problems: list[ConfigProblem]) -> Iterable[Record]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(ConfigProblem(Location(name, number), f"not JSON: {err.msg}"))
            continue
        yield number, data, None, _constant(number)


def _constant(line: int) -> Callable[[str | None], int]:
    """Every key of a JSON line is on that line."""
    return lambda _key: line


def _yaml_records(text: str, name: str, problems: list[ConfigProblem]) -> list[Record]:
    try:
        tree = read_tree(text)
    except YamlProblem as err:
        problems.append(ConfigProblem(Location(name, err.line), err.message))
        return []
    items = tree.get("items") if isinstance(tree, Mapping) else None
    if not isinstance(items, list):
        problems.append(ConfigProblem(Location(name, 1), "expected a mapping with items: [...]"))
        return []
    default = tree.get("relevant")
    if default is not None and not isinstance(default, bool):
        line = line_of(tree, ("relevant",))
        problems.append(ConfigProblem(Location(name, line), "relevant: must be true or false"))
        default = None
    extra = sorted(set(tree) - {"items", "relevant"})
    if extra:
        line = line_of(tree, (extra[0],), key=True)
        problems.append(
            ConfigProblem(Location(name, line), f"{extra[0]}: unknown key (items, relevant)")
        )

    def at(index: int) -> Callable[[str | None], int]:
        return lambda key: line_of(tree, ("items", index) if key is None else ("items", index, key))

    return [(i, entry, default, at(i)) for i, entry in enumerate(items)]


def _record(
    data: object,
    default: bool | None,
    index: int,
    name: str,
    line_of_key: Callable[[str | None], int],
    known_rules: Collection[str],
    problems: list[ConfigProblem],
) -> Labelled | None:
    """One record, checked; None (its problems added) when malformed."""
    where = f"items[{index}]" if not name.endswith(JSON_LINES) else "record"
    before = len(problems)

    def problem(key: str | None, message: str) -> None:
        label = where if key is None else f"{where}.{key}"
        problems.append(ConfigProblem(Location(name, line_of_key(key)), f"{label}: {message}"))

    if not isinstance(data, Mapping):
        problem(None, "expected a mapping of keys (title, summary, relevant, ...)")
        return None
    for key in data:
        if key not in KEYS:
            problem(None, f"unknown key {key!r} (known: {', '.join(KEYS)})")
    for key in (*TEXT_KEYS, "id", "language", "source", "class"):
        if data.get(key) is not None and not isinstance(data[key], str):
            problem(key, "must be text")
    texts = {k: str(data.get(k) or "") for k in TEXT_KEYS}
    if not any(t.strip() for t in texts.values()):
        problem(None, "has no title, summary or content to match")
    relevant = data.get("relevant", default)
    if not isinstance(relevant, bool):
        problem("relevant" if "relevant" in data else None, "relevant: must be true or false")
    rules = data.get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        problem("rules", "must be a list of rule ids")
        rules = []
    elif rules and relevant is False:
        problem("rules", "names rules that should match an item that is not relevant")
    for rule_id in rules:
        if rule_id not in known_rules:
            problem("rules", f"unknown rule {rule_id!r} (known: {', '.join(sorted(known_rules))})")
    if len(problems) > before:
        return None
    line = line_of_key(None)
    key = str(data.get("id") or f"{name}:{line}")
    language = str(data["language"]) if data.get("language") else None
    item = Item(
        "eval",
        key,
        texts["title"],
        summary=texts["summary"],
        content=texts["content"],
        language=language,
    )
    return Labelled(
        item,
        bool(relevant),
        f"{name}:{line}",
        language,
        tuple(rules),
        str(data["source"]) if data.get("source") else None,
        str(data["class"]) if data.get("class") else None,
    )


# ---------------------------------------------------------------- scoring


def evaluate(rules: Sequence[Rule], cases: Iterable[Labelled]) -> list[Outcome]:
    """Every case through the real matcher; a rule's ``feeds:`` are ignored (the text is
    what is evaluated, not where it was published)."""
    ruleset = RuleSet([r.model_copy(update={"feeds": ()}) for r in rules])
    return [Outcome(case, tuple(m.rule_id for m in ruleset.match(case.item))) for case in cases]


def score(outcomes: Iterable[Outcome]) -> Score:
    """Whether any rule alerted, against each item's ``relevant``."""
    found = expected = correct = alerts = 0
    for o in outcomes:
        expected += o.case.relevant
        found += o.case.relevant and o.alerted
        alerts += o.alerted
        correct += o.alerted and o.case.relevant
    return Score(found, expected, correct, alerts)


def score_rule(outcomes: Iterable[Outcome], rule_id: str) -> Score:
    """Recall over the items whose ``rules:`` name the rule; precision over all it matched."""
    found = expected = correct = alerts = 0
    for o in outcomes:
        hit = rule_id in o.matched
        wanted = rule_id in o.case.rules
        expected += wanted
        found += wanted and hit
        alerts += hit
        correct += hit and o.case.relevant
    return Score(found, expected, correct, alerts)


def shortfalls(total: Score, min_recall: float | None, min_precision: float | None) -> list[str]:
    """Why the overall score fails the thresholds (nothing when it passes); a figure with
    nothing to count (no relevant item, no alert) never fails."""
    out = []
    recall, precision = total.recall, total.precision
    if min_recall is not None and recall is not None and recall < min_recall:
        out.append(f"recall {recall:.2f} is under --min-recall {min_recall:.2f}")
    if min_precision is not None and precision is not None and precision < min_precision:
        out.append(f"precision {precision:.2f} is under --min-precision {min_precision:.2f}")
    return out


# ---------------------------------------------------------------- the report


def figures(s: Score) -> str:
    """``recall 0.95 (19/20), precision 1.00 (19/19)``; ``-`` when there is nothing to count."""

    def one(name: str, value: float | None, part: int, whole: int) -> str:
        return f"{name} -" if value is None else f"{name} {value:.2f} ({part}/{whole})"

    return (
        one("recall", s.recall, s.found, s.expected)
        + ", "
        + one("precision", s.precision, s.correct, s.alerts)
    )


def report(rules: Sequence[Rule], outcomes: Sequence[Outcome]) -> Iterable[str]:
    """The figures overall, per language and per rule, then every miss and false alert with
    the terms of each rule that did and did not occur in it."""
    relevant = sum(o.case.relevant for o in outcomes)
    yield f"{len(outcomes)} items, {relevant} relevant"
    yield f"overall: {figures(score(outcomes))}"
    languages = sorted({o.case.language for o in outcomes if o.case.language})
    for language in languages:
        of = [o for o in outcomes if o.case.language == language]
        yield f"  language {language}: {figures(score(of))}"
    for rule in rules:
        if rule.enabled:
            yield f"  rule {rule.id}: {figures(score_rule(outcomes, rule.id))}"
    by_id = {r.id: r for r in rules}
    for o in outcomes:
        missed = [r for r in o.case.rules if r not in o.matched]
        if o.case.relevant and not o.alerted:
            yield f"miss: {_label(o.case)}"
            explained = missed or [r.id for r in rules if r.enabled]
            yield from _explained(o.case, [by_id[r] for r in explained], quiet=not missed)
        elif missed:
            yield f"miss: {_label(o.case)} (matched by {', '.join(o.matched)})"
            yield from _explained(o.case, [by_id[r] for r in missed], quiet=False)
        elif not o.case.relevant and o.alerted:
            yield f"false alert: {_label(o.case)}"
            yield from _explained(o.case, [by_id[r] for r in o.matched], quiet=False)


def _label(case: Labelled) -> str:
    """``file:line id [language, class]: title``, and its source on the next line."""
    tags = ", ".join(t for t in (case.language, case.kind) if t)
    title = case.item.title or case.item.summary[:80]
    source = f"\n    source: {case.source}" if case.source else ""
    named = f" {case.item.key}" if case.item.key != case.where else ""  # an item's own id
    return f"{case.where}{named}{f' [{tags}]' if tags else ''}: {title}{source}"


def _explained(case: Labelled, rules: Sequence[Rule], *, quiet: bool) -> Iterable[str]:
    """One line per rule: the terms found and those missing. ``quiet`` leaves out the rules
    none of whose terms occur (a miss explained by every configured rule)."""
    shown = 0
    for rule in rules:
        explanation = explain(rule, case.item)
        if quiet and not any(not h.negated for h in explanation.hits):
            continue
        shown += 1
        found = found_terms(explanation) or "-"
        missing = ", ".join(explanation.missing) or "-"
        yield f"    {rule.id}: found {found}; missing {missing}"
    if not shown:
        yield "    no rule's terms occur in it"
