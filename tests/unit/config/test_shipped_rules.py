"""The shipped rules (config/rules.yaml) against the labelled evaluation set (scored by
``newswatch eval`` in tests/e2e/test_eval.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bot.config.load import load_rules
from bot.config.schema import Rule, Settings
from bot.model import Item
from bot.rules.match import RuleSet
from tests.paths import REPO

ROOT = REPO
RULES = ROOT / "config" / "rules.yaml"
EVAL = ROOT / "tests" / "fixtures" / "eval"


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _rules() -> tuple[Rule, ...]:
    """As the loader hands them out: their @groups written out."""
    rules, _ = load_rules(RULES.parent, Settings(), {})
    return rules


def _labelled() -> list[tuple[dict[str, Any], bool]]:
    """Every hand-written evaluation item with its label: positives.yaml alerts, near_misses.yaml
    does not (the real-*.yaml set is held to its own targets in tests/e2e/test_eval_real.py)."""
    labelled = []
    for path in (EVAL / "positives.yaml", EVAL / "near_misses.yaml"):
        alert = path.stem == "positives"
        labelled += [(entry, alert) for entry in _load(path)["items"]]
    return labelled


def _alerts(rules: RuleSet, entry: dict[str, Any]) -> list[str]:
    item = Item(feed_id="eval", key=entry["id"], title=entry["title"], summary=entry["summary"])
    return [m.rule_id for m in rules.match(item, frozenset())]


def test_every_shipped_rule_notifies_console() -> None:
    for rule in _rules():
        assert rule.notify == ("console",), rule.id


def test_shipped_rules_use_both_forms() -> None:
    rules = _rules()
    assert any(r.query for r in rules) and any(r.match for r in rules)


def test_evaluation_set_is_large_and_covers_every_class() -> None:
    labelled = _labelled()
    assert len(labelled) >= 60
    classes = {e.get("class") for e, alert in labelled if not alert}
    assert {
        "military",
        "iraqi-police",
        "canadian-police",
        "other-country",
        "veteran",
        "reconstruction",
    } <= classes
    assert {e["language"] for e, alert in labelled if alert} == {"en", "fr", "ar"}


@pytest.mark.parametrize(
    "entry", [e for e, alert in _labelled() if e["id"].startswith("seed")], ids=lambda e: e["id"]
)
def test_seed_articles_alert(entry: dict[str, Any]) -> None:
    assert _alerts(RuleSet(_rules()), entry)
