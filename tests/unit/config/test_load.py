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
    rules, _ = load_rules(directory, Settings(), {})
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


def _problems(tmp_path: Path, settings: str, rules: str) -> list[str]:
    (tmp_path / "settings.yaml").write_text(textwrap.dedent(settings).lstrip(), encoding="utf-8")
    _rules_dir(tmp_path, rules)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    return [
        f"{Path(p.location.file).name}:{p.location.line}: {p.message}"
        for p in caught.value.problems
    ]


def test_every_problem_in_one_run_in_the_projects_words_with_the_nearest_key(
    tmp_path: Path,
) -> None:
    problems = _problems(
        tmp_path,
        """
        feeds:
          - {id: a, url: "https://x.example/f", tag: [x]}
        destinations:
          d: {type: slak}
          e: {type: slack, chanel: "#x", token: t}
        schedul: {interval: 5m}
        """,
        """
        rules:
          - {id: r, title: R, query: "RCMP AND ("}
          - {id: s, titel: S, query: x}
        """,
    )
    assert problems == [
        "settings.yaml:2: feeds[0].tag: unknown key; did you mean 'tags'?",
        "settings.yaml:4: destinations.d: unknown type 'slak' (one of: console, slack, email);"
        " did you mean 'slack'?",
        "settings.yaml:5: destinations.e.chanel: unknown key; did you mean 'channel'?",
        "settings.yaml:6: schedul: unknown key; did you mean 'schedule'?",
        "rules.yaml:3: rules[1].title: missing required key",
        "rules.yaml:3: rules[1].titel: unknown key; did you mean 'title'?",
        # the valid rule of an invalid file is still compiled: its query error shows now
        "rules.yaml:2: rule 'r': query: column 11: the query ends where a term was expected",
    ]


def test_a_single_value_where_a_list_is_expected_is_a_list_of_one(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        textwrap.dedent(
            """
            feeds:
              - {id: a, url: "https://x.example/f", tags: canada}
            destinations:
              mail: {type: email, to: desk@example.org, from: bot@example.org, smtp: {host: h}}
            """
        ).lstrip(),
        encoding="utf-8",
    )
    _rules_dir(tmp_path, "rules: [{id: r, title: R, query: RCMP, notify: mail, feeds: a}]\n")
    config = load_config(tmp_path, {})
    assert config.settings.feeds[0].tags == ("canada",)
    assert config.settings.destinations["mail"].to == ("desk@example.org",)  # type: ignore[union-attr]
    assert (config.rules[0].notify, config.rules[0].feeds) == (("mail",), ("a",))


def test_feed_health_notices_name_known_destinations_where_they_are_written(
    tmp_path: Path,
) -> None:
    problems = _problems(
        tmp_path,
        """
        destinations:
          ops: {type: console}
        on_feed_failure: {after: 1h, notify: [ops, opz]}
        on_feed_silence:
          after: 2d
          notify: [pager]
        """,
        "rules: [{id: r, title: R, query: x}]\n",
    )
    assert problems == [
        "settings.yaml:3: on_feed_failure.notify[1]: unknown destination 'opz' (known: ops)",
        "settings.yaml:6: on_feed_silence.notify[0]: unknown destination 'pager' (known: ops)",
    ]


def test_silence_is_watched_with_a_three_day_floor_unless_told_otherwise(tmp_path: Path) -> None:
    assert Settings().on_feed_silence.after == 3 * 86400 and Settings().on_feed_silence.notify == ()
    (tmp_path / "settings.yaml").write_text(
        "destinations: {ops: {type: console}}\non_feed_silence: {after: 36h, notify: ops}\n",
        encoding="utf-8",
    )
    _rules_dir(tmp_path, "rules: [{id: r, title: R, query: x}]\n")
    silence = load_config(tmp_path, {}).settings.on_feed_silence
    assert (silence.after, silence.notify) == (36 * 3600, ("ops",))


@pytest.mark.parametrize(
    ("yaml", "seconds"),
    [
        ("{}", 3600.0),  # three 10-minute intervals are less than the hour minimum
        ("schedule: {interval: 30m}", 5400.0),
        ("server: {degraded_after: 15m}\nschedule: {interval: 30m}", 900.0),
    ],
)
def test_degraded_after_defaults_to_three_poll_intervals_and_at_least_an_hour(
    tmp_path: Path, yaml: str, seconds: float
) -> None:
    _rules_dir(tmp_path, "rules: [{id: a, title: A, query: police}]")
    (tmp_path / "settings.yaml").write_text(yaml + "\n", encoding="utf-8")
    assert load_config(tmp_path, {}).settings.degraded_after == seconds


def test_degraded_after_must_be_positive(tmp_path: Path) -> None:
    _rules_dir(tmp_path, "rules: [{id: a, title: A, query: police}]")
    (tmp_path / "settings.yaml").write_text("server: {degraded_after: 0s}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    [problem] = caught.value.problems
    assert "server.degraded_after: Input should be greater than 0" in str(problem)


def test_retention_defaults_and_bounds_are_said_in_durations(tmp_path: Path) -> None:
    assert (Settings().retention.sent, Settings().retention.seen) == (30 * 86400, 180 * 86400)
    problems = _problems(tmp_path, "retention: {sent: 1h, seen: 3d}\n", "rules: []\n")
    assert problems == [
        "settings.yaml:1: retention.sent: must be between 1d and 3650d",
        "settings.yaml:1: retention.seen: must be between 7d and 3650d",
    ]
    (tmp_path / "settings.yaml").write_text("retention: {sent: 2d, seen: 400d}\n")
    kept = load_config(tmp_path, {}).settings.retention
    assert (kept.sent, kept.seen) == (2 * 86400, 400 * 86400)


def test_the_story_window_defaults_to_72h_is_bounded_and_no_longer_than_retention(
    tmp_path: Path,
) -> None:
    assert Settings().stories.window == 72 * 3600
    problems = _problems(tmp_path, "stories: {window: 30m}\n", "rules: []\n")
    assert problems == ["settings.yaml:1: stories.window: must be between 1h and 30d"]
    (tmp_path / "settings.yaml").write_text("stories: {window: 5d}\nretention: {sent: 4d}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert "stories.window (5d) must not be longer than retention.sent (4d)" in str(caught.value)
    (tmp_path / "settings.yaml").write_text("stories: {window: 10d}\nretention: {seen: 7d}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert "stories.window (10d) must not be longer than retention.seen (7d)" in str(caught.value)
    (tmp_path / "settings.yaml").write_text("stories: {window: 12h}\nretention: {sent: 1d}\n")
    assert load_config(tmp_path, {}).settings.stories.window == 12 * 3600


def test_groups_from_every_rule_file_are_written_out_and_reread_on_reload(tmp_path: Path) -> None:
    """Rules run with their @groups expanded, from any rule file; reloading re-reads them."""
    directory = _rules_dir(
        tmp_path,
        """
        rules:
          - id: mission
            title: Mission
            match:
              all: ['@police NEAR/8 @canada']
              none: ['@army']
        """,
    )
    lexicon = directory / "rules" / "lexicon.yaml"
    lexicon.parent.mkdir()
    lexicon.write_text(
        "groups:\n  police: [police, policier*]\n  canada: [Canada, '@mounties']\n"
        "  mounties: [RCMP]\n  army: [soldiers]\n",
        encoding="utf-8",
    )
    (rule,), _ = load_rules(directory, Settings(), {})
    assert rule.match is not None
    assert rule.match.all == ("(police OR policier*) NEAR/8 (Canada OR RCMP)",)
    assert rule.match.none == ("(soldiers)",)
    lexicon.write_text(lexicon.read_text().replace("[RCMP]", "[RCMP, GRC]"), encoding="utf-8")
    (rule,), _ = load_rules(directory, Settings(), {})
    assert rule.match is not None
    assert rule.match.all == ("(police OR policier*) NEAR/8 (Canada OR RCMP OR GRC)",)


def test_group_problems_are_located_in_their_file(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "store: sqlite:state.db\n",
        """
        groups:
          police: [police, '@nope']
          a: ['@b']
          b: ['@a']
          empty: []
        rules:
          - id: mission
            title: Mission
            query: 'RCMP AND @iraq'
          - id: empty
            title: Empty
            query: 'RCMP NOT @empty'
        """,
    )
    assert problems == [
        "rules.yaml:2: group @police[1]: unknown group @nope (known: @a, @b, @empty, @police)",
        "rules.yaml:5: group @empty is empty: list its terms",
        "rules.yaml:4: group @b[0]: a cycle: @a -> @b -> @a",
        "rules.yaml:9: rule 'mission': query: column 10: unknown group @iraq"
        " (known: @a, @b, @empty, @police)",
        "rules.yaml:12: rule 'empty': query: column 10: group @empty has errors (see them above)",
    ]


def test_a_misplaced_tilde_is_an_error_at_its_file_line_and_column(tmp_path: Path) -> None:
    text = """\
        groups:
          police: [police~, officer~fr]
        rules:
          - id: phrase
            title: P
            query: '@police AND "police officers"~'
          - id: prefix
            title: X
            match:
              any: ['canada~', 'train*~']
        """
    directory = _rules_dir(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_rules(directory, Settings(), {})
    source = (directory / "rules.yaml").read_text().splitlines()
    located = [(p.location.line, p.location.column, p.message) for p in caught.value.problems]
    assert [(line, column) for line, column, _ in located] == [(6, 42), (10, 31)]
    for line, column, _ in located:
        assert source[line - 1][column - 1] == "~"
    assert "not a phrase" in located[0][2] and "cannot follow a prefix" in located[1][2]
