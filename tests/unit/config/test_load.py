"""Loading rule files as the daemon reloads them: hostile YAML is refused early and small."""

from __future__ import annotations

import textwrap
import tracemalloc
from pathlib import Path

import pytest

from bot.config.load import load_config, load_rules
from bot.config.schema import Settings
from bot.errors import ConfigError
from bot.service.app import config_secrets
from tests.e2e.test_check import BILLION_LAUGHS


def _rules_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return tmp_path


def test_an_alias_bomb_is_refused_at_its_alias_with_little_memory(tmp_path: Path) -> None:
    directory = _rules_dir(tmp_path, BILLION_LAUGHS)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as caught:
            load_rules(directory, Settings(), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [problem] = caught.value.problems
    assert (problem.location.file, problem.location.line) == (str(directory / "rules.yaml"), 4)
    assert "expand to more than 10000 values" in problem.message
    assert peak < 5_000_000  # the expanded document would be 10^9 strings


def test_aliases_within_the_bounds_are_expanded(tmp_path: Path) -> None:
    directory = _rules_dir(
        tmp_path,
        """
        rules:
          - {id: a, title: A, query: police, fields: &fields [title, summary]}
          - {id: b, title: B, query: army, fields: *fields}
        """,
    )
    rules = load_rules(directory, Settings(), {})
    assert [(r.id, r.fields) for r in rules] == [
        ("a", ("title", "summary")),
        ("b", ("title", "summary")),
    ]


def test_secret_looking_environment_values_are_hidden_and_others_kept(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        textwrap.dedent(
            """
            schedule: {interval: "${INTERVAL}s"}
            http: {user_agent: "newswatch ${SHORT}"}
            feeds:
              - {id: a, url: "https://x.example/a?key=${API_KEY}", enabled: "${ENABLED}"}
              - {id: b, url: "https://x.example/b?key=${UNSET_KEY:-default-value}"}
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "rules.yaml").write_text("rules: [{id: r, title: R, query: x}]\n")
    environ = {"INTERVAL": "600", "SHORT": "ab12", "API_KEY": "0123456789abcdef", "ENABLED": "true"}
    config = load_config(tmp_path, environ)
    assert config.secrets == {"0123456789abcdef"}
    assert set(config_secrets(config)) == {"0123456789abcdef"}


def test_a_problem_quoting_an_environment_value_hides_it(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("store: ${STORE}\n", encoding="utf-8")
    (tmp_path / "rules.yaml").write_text("rules: [{id: r, title: R, query: x}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {"STORE": "mysql://app:pw-0a1b2c@db/news"})
    [problem] = caught.value.problems
    assert problem.message == "(top level): store '***' must start with sqlite: or postgresql://"
