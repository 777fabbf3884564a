"""`newswatch check`: every broken config is a located `file:line: message`, exit 2."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, ConfigDir, run_cli

SETTINGS = """
    store: sqlite:state.db
    feeds:
      - id: news
        url: https://news.example/rss
        tags: [canada]
    destinations:
      console: {type: console}
"""
RULES = """
    rules:
      - id: watch
        title: Watch
        query: 'RCMP AND Iraq'
"""
# "Billion laughs": under 1 KB that expand to 10^9 strings (55 s and 1.2 GB before aliases
# were bounded). Line 4 is where the expansion first passes 10,000 values.
BILLION_LAUGHS = """
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
    rules: *i
"""


def _with_query(query: str) -> str:
    return RULES.replace("'RCMP AND Iraq'", f"'{query}'")


def _nested_match(levels: int) -> str:
    group = "'RCMP'"
    for _ in range(levels):
        group = "{all: [" + group + "]}"
    return RULES.replace("query: 'RCMP AND Iraq'", "match: " + group)


def check(cfg: ConfigDir, settings: str = SETTINGS, rules: str = RULES, **env: str):
    cfg.write("settings.yaml", settings)
    cfg.write("rules.yaml", rules)
    return run_cli("--config", str(cfg.path), "check", env=env)


def test_the_shipped_config_is_valid_without_any_environment() -> None:
    result = run_cli("--config", str(REPO / "config"), "check")
    assert result.code == 0, result.stderr
    assert "OK" in result.stdout


def test_the_example_config_is_valid_with_its_secrets() -> None:
    example = REPO / "config" / "examples" / "bc-wildfire"
    secrets = {"SLACK_BOT_TOKEN": "xoxb-0123456789", "SMTP_PASSWORD": "correct horse"}
    result = run_cli("check", "--config", str(example), env=secrets)
    assert result.code == 0, result.stderr
    assert "6 feeds, 3 rules, 2 destinations (fire-desk, partners)" in result.stdout
    missing = run_cli("check", "--config", str(example))
    assert missing.code == 2
    assert "environment variable SLACK_BOT_TOKEN is not set" in missing.stderr
    assert "environment variable SMTP_PASSWORD is not set" in missing.stderr


def test_a_valid_config_passes(config_dir: ConfigDir) -> None:
    result = check(config_dir)
    assert result.code == 0, result.stderr
    assert "1 feed, 1 rule" in result.stdout


@pytest.mark.parametrize(
    ("settings", "rules", "expected"),
    [
        pytest.param(
            SETTINGS.replace("tags: [canada]", "tags: [canada"),
            RULES,
            "settings.yaml:6: YAML syntax error: expected ',' or ']', but got ':' (in the flow"
            " sequence started at line 5)",
            id="yaml-syntax",
        ),
        pytest.param(
            SETTINGS.replace("tags:", "tagz:"),
            RULES,
            "settings.yaml:5: feeds[0].tagz: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            SETTINGS.replace("        url: https://news.example/rss\n", ""),
            RULES,
            "settings.yaml:3: feeds[0].url: missing required key",
            id="missing-key",
        ),
        pytest.param(
            SETTINGS.replace("https://news.example/rss", "ftp://x"),
            RULES,
            "settings.yaml:4: feeds[0].url: 'ftp://x' is not an http(s) URL",
            id="bad-url",
        ),
        pytest.param(
            SETTINGS + "    schedule: {interval: soon}\n",
            RULES,
            "settings.yaml:8: schedule.interval: 'soon' is not a duration",
            id="bad-duration",
        ),
        pytest.param(
            SETTINGS,
            RULES + "        notify: [slack-desk]\n",
            "rules.yaml:5: rule 'watch': notify[0]: unknown destination 'slack-desk'",
            id="unknown-destination",
        ),
        pytest.param(
            SETTINGS,
            RULES + "        feeds: [tag:police]\n",
            "rules.yaml:5: rule 'watch': feeds[0]: no feed has tag 'police'",
            id="unknown-tag",
        ),
        pytest.param(
            SETTINGS,
            RULES.replace("'RCMP AND Iraq'", "'RCMP AND (Iraq'"),
            "rules.yaml:4: rule 'watch': query: column 10:",
            id="bad-query",
        ),
        pytest.param(
            SETTINGS,
            RULES + RULES.replace("    rules:\n", ""),
            "rules.yaml:6: rules[1].id: duplicate rule id 'watch' (first in ",
            id="duplicate-rule",
        ),
        pytest.param(
            SETTINGS.replace("store: sqlite:state.db", "store: ${NOPE_STORE}"),
            RULES,
            "settings.yaml:1: store: environment variable NOPE_STORE is not set",
            id="unset-env",
        ),
        pytest.param(
            SETTINGS + "      x: {type: slack, channel: '#a'}\n",
            RULES,
            "settings.yaml:8: destinations.x: a slack destination needs exactly one of",
            id="slack-without-credentials",
        ),
        pytest.param(
            SETTINGS,
            BILLION_LAUGHS,
            "rules.yaml:4: YAML aliases (*name) expand to more than 10000 values in one file",
            id="alias-bomb",
        ),
        pytest.param(
            SETTINGS,
            "rules: &r [*r]\n",
            "rules.yaml:1: a YAML alias inside the node it names",
            id="alias-cycle",
        ),
        pytest.param(
            SETTINGS,
            "rules: &r x\nmore: [" + ", ".join(["*r"] * 101) + "]\n",
            "rules.yaml:2: more than 100 YAML aliases (*name) in one file",
            id="too-many-aliases",
        ),
        pytest.param(
            SETTINGS,
            "rules: " + "[" * 2000 + "]" * 2000 + "\n",
            "rules.yaml:1: nested more than 50 levels deep",
            id="deep-yaml",
        ),
        pytest.param(
            SETTINGS,
            _with_query("RCMP AND " + "(" * 2000 + "Iraq" + ")" * 2000),
            "rules.yaml:4: rule 'watch': query: column 110: nested more than 100 levels deep",
            id="deep-query",
        ),
        pytest.param(
            SETTINGS,
            _with_query("RCMP AND " + "NOT " * 2000 + "Iraq"),
            "rules.yaml:4: rule 'watch': query: column 410: nested more than 100 levels deep",
            id="deep-negation",
        ),
        pytest.param(
            SETTINGS,
            _nested_match(12),
            "rules.yaml:4: rule 'watch': match" + ".all[0]" * 10 + ": match groups nested more",
            id="deep-match-groups",
        ),
    ],
)
def test_broken_configs_are_located_errors(
    config_dir: ConfigDir, settings: str, rules: str, expected: str
) -> None:
    result = check(config_dir, settings, rules)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    lines = [line.removeprefix(str(config_dir.path) + "/") for line in result.stderr.splitlines()]
    assert any(line.startswith(expected) for line in lines), result.stderr


def test_every_problem_is_reported_not_just_the_first(config_dir: ConfigDir) -> None:
    settings = SETTINGS.replace("tags:", "tagz:").replace("https://news.example/rss", "nope")
    result = check(config_dir, settings, RULES.replace("        title: Watch\n", ""))
    assert result.code == 2
    assert "feeds[0].tagz: unknown key" in result.stderr
    assert "feeds[0].url:" in result.stderr
    assert "rules[0].title: missing required key" in result.stderr


def test_env_default_and_value(config_dir: ConfigDir) -> None:
    settings = SETTINGS.replace("store: sqlite:state.db", "store: ${MY_STORE:-sqlite:a.db}")
    assert check(config_dir, settings).code == 0
    assert check(config_dir, settings, MY_STORE="nonsense").code == 2


def test_missing_config_directory_is_a_located_error(tmp_path) -> None:
    result = run_cli("--config", str(tmp_path / "nowhere"), "check")
    assert result.code == 2
    assert "settings.yaml: file not found" in result.stderr


def test_a_few_aliases_and_deep_but_bounded_nesting_load(config_dir: ConfigDir) -> None:
    deep = "(" * 99 + "Iraq" + ")" * 99
    nots = "NOT " * 99 + "army"
    rules = f"""
        rules:
          - id: first
            title: First
            query: 'RCMP AND {deep}'
            feeds: &both [news, tag:canada]
          - id: second
            title: Second
            query: 'police {nots}'
            feeds: *both
    """
    result = check(config_dir, SETTINGS, rules)
    assert result.code == 0, result.stderr
    assert "2 rules" in result.stdout
    assert check(config_dir, SETTINGS, _nested_match(10)).code == 0


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["once"],
        ["once", "--dry-run"],
        ["feeds"],
        ["run"],
        ["test", "watch", "--text", "RCMP in Iraq"],
        ["send-test", "console"],
        ["feeds", "import", "feeds.opml"],
    ],
    ids=" ".join,
)
def test_every_command_refuses_an_alias_bomb_with_a_located_line(
    config_dir: ConfigDir, command: list[str]
) -> None:
    config_dir.write("settings.yaml", SETTINGS)
    config_dir.write("rules.yaml", BILLION_LAUGHS)
    opml = config_dir.write("feeds.opml", "<opml><body/></opml>")
    args = [str(opml) if arg == "feeds.opml" else arg for arg in command]
    result = run_cli("--config", str(config_dir.path), *args)
    assert result.code == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"{config_dir.path}/rules.yaml:4: YAML aliases (*name) expand to more than 10000 values"
        " in one file",
        f"1 problem(s) in {config_dir.path}",
    ]


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_accepted_before_or_after_the_command(config_dir: ConfigDir, where: str) -> None:
    config_dir.write("settings.yaml", SETTINGS)
    config_dir.write("rules.yaml", RULES)
    option = ["--config", str(config_dir.path)]
    args = [*option, "check"] if where == "before" else ["check", *option]
    result = run_cli(*args)
    assert result.code == 0, result.stderr
    assert "config: OK — 1 feed, 1 rule" in result.stdout + result.stderr


TRAPS = """
    rules:
      - id: lower
        title: Lower-case operators
        query: 'RCMP or Mounties and Iraq'
      - id: folded
        title: Folded over lines
        query: >-
          (Toronto OR Ottawa) police
            near/5 Iraq | Mosul
      - id: grouped
        title: In a match group
        match:
          all: ['Iraq']
          any:
            - "RCMP"
            - '/sûreté/ OR "or" OR not-a-trap'
"""


def test_silent_traps_are_warnings_at_file_line_column(config_dir: ConfigDir) -> None:
    result = check(config_dir, rules=TRAPS)
    assert result.code == 0, result.stderr
    assert "3 rules, 1 destination (console), 6 warnings" in result.stdout
    prefix = str(config_dir.path / "rules.yaml") + ":"
    warnings = [line.removeprefix(prefix) for line in result.stderr.splitlines()]
    assert warnings == [
        "4:18: warning: rule 'lower': query: 'or' is searched as a word: operators are upper"
        ' case (OR); quote it ("or") to search the word',
        "4:30: warning: rule 'lower': query: 'and' is searched as a word: operators are upper"
        ' case (AND); quote it ("and") to search the word',
        "9:9: warning: rule 'folded': query: 'near/5' is searched as words: write NEAR/5 for"
        " nearness",
        "9:21: warning: rule 'folded': query: '|' has no letters or digits, so it is ignored:"
        " write OR for either side, AND for both, NOT to exclude",
        "16:14: warning: rule 'grouped': match.any[1]: /sûreté/ holds 'û', which the normalized"
        " text a regex searches never holds (case folded, accents and Arabic vowel marks"
        " removed, dashes and quotes made plain): write 'u'",
        "16:18: warning: rule 'grouped': match.any[1]: /sûreté/ holds 'é', which the normalized"
        " text a regex searches never holds (case folded, accents and Arabic vowel marks"
        " removed, dashes and quotes made plain): write 'e'",
    ]
    source = (config_dir.path / "rules.yaml").read_text().splitlines()
    for warning, text in zip(warnings, ["or", "and", "near/5", "|", "û", "é"], strict=True):
        line, column = map(int, warning.split(":")[:2])
        assert source[line - 1][column - 1 :].startswith(text), warning


@pytest.mark.parametrize("near", ["NEAR/x", "NEAR/", "NEAR/5km"])
def test_near_without_a_number_is_an_error(config_dir: ConfigDir, near: str) -> None:
    result = check(config_dir, rules=_with_query(f"RCMP {near} Iraq"))
    assert result.code == 2
    expected = "rules.yaml:4: rule 'watch': query: column 6: NEAR/ needs a distance"
    assert expected in result.stderr


def test_group_mistakes_are_located_errors(config_dir: ConfigDir) -> None:
    config_dir.write("rules/lexicon.yaml", "groups:\n  police: [police]\n  loop: ['@loop']\n")
    rules = """
        groups:
          police: [officers]
          canada: [Canada, '@mounties']
        rules:
          - id: watch
            title: Watch
            query: '@police NEAR/8 @canada'
    """
    result = check(config_dir, SETTINGS, rules)
    assert result.code == 2
    lines = [line.removeprefix(str(config_dir.path) + "/") for line in result.stderr.splitlines()]
    assert lines == [
        "rules/lexicon.yaml:2: groups.police: duplicate group @police (first in"
        f" {config_dir.path}/rules.yaml:2)",
        "rules.yaml:3: group @canada[1]: unknown group @mounties (known: @canada, @loop, @police)",
        "rules/lexicon.yaml:3: group @loop[0]: a cycle: @loop -> @loop",
        f"3 problem(s) in {config_dir.path}",
    ]
