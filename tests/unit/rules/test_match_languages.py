"""``languages:`` on a rule: it matches items in those languages, and those of unknown language."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.config.load import load_config
from bot.config.schema import Rule
from bot.errors import ConfigError
from bot.model import Item
from bot.rules.evaluate import evaluate, parse_labelled, report
from bot.rules.explain import explain
from bot.rules.match import RuleSet


def item(title: str, language: str | None) -> Item:
    return Item("feed", title, title, language=language)


FR = item("Des policiers canadiens en Irak", "fr")
EN = item("Canadian police in Iraq", "en")
UNKNOWN = item("Irak Iraq police", None)


def matched(rules: list[Rule], *items: Item) -> list[list[str]]:
    ruleset = RuleSet(rules)
    return [[m.rule_id for m in ruleset.match(i)] for i in items]


def test_a_rule_reads_only_its_languages_and_items_of_unknown_language() -> None:
    french = Rule(id="fr", title="FR", query="polic* AND (Irak OR Iraq)", languages=("fr",))
    assert matched([french], FR, EN, UNKNOWN) == [["fr"], [], ["fr"]]


def test_a_rule_without_languages_reads_every_language() -> None:
    every = Rule(id="all", title="All", query="polic* AND (Irak OR Iraq)")
    assert matched([every], FR, EN, UNKNOWN) == [["all"], ["all"], ["all"]]


def test_rules_of_several_languages_share_one_ruleset() -> None:
    rules = [
        Rule(id="fr", title="FR", query="policiers AND irak", languages=("fr",)),
        Rule(id="en", title="EN", query="police AND iraq", languages=("en", "fr")),
        Rule(id="none", title="None", query="police AND iraq", languages=("de",)),
    ]
    both = item("Police Iraq, policiers Irak", "fr")
    assert matched(rules, FR, EN, both) == [["fr"], ["en"], ["fr", "en"]]


def test_a_language_that_is_not_iso_639_1_is_a_located_config_error(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        "destinations:\n  desk: {type: console, language: english}\n", encoding="utf-8"
    )
    (tmp_path / "rules.yaml").write_text(
        textwrap.dedent(
            """\
            rules:
              - id: r
                title: R
                query: police
                languages: [fr, fre]
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    found = [f"{Path(p.location.file).name}:{p.location.line}" for p in caught.value.problems]
    messages = " ".join(p.message for p in caught.value.problems)
    assert "settings.yaml:2" in found
    assert "rules.yaml:5" in found
    assert "'english' is not an ISO 639-1 language code" in messages
    assert "'fre' is not an ISO 639-1 language code" in messages


def test_eval_detects_the_language_of_records_without_one() -> None:
    text = textwrap.dedent(
        """\
        relevant: true
        items:
          - title: Des policiers canadiens en Irak pour former la police irakienne
          - title: Canadian police officers deployed to Iraq to train police
          - title: Polizisten aus Kanada im Irak
            language: de
        """
    )
    detected = {"Des": "fr", "Canadian": "en"}
    cases = parse_labelled(text, "x.yaml", set(), lambda t, _s: detected.get(t.split()[0]))
    assert [c.language for c in cases] == ["fr", "en", "de"]
    assert [c.item.language for c in cases] == ["fr", "en", "de"]
    rules = [Rule(id="fr", title="FR", query="police OR polizisten", languages=("fr", "de"))]
    lines = list(report(rules, evaluate(rules, cases)))
    assert "  language en: recall 0.00 (0/1), precision -" in lines
    assert "  language fr: recall 1.00 (1/1), precision 1.00 (1/1)" in lines


def test_explain_says_when_the_language_keeps_a_rule_from_matching() -> None:
    rule = Rule(id="fr", title="FR", query="police", languages=("fr",))
    english = explain(rule, EN)
    assert english.hits and not english.matched and not english.language_selected
    assert explain(rule, UNKNOWN).language_selected
