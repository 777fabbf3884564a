"""The JSON Schemas editors read (config/schema/) agree with the loader: a document an editor
marks as wrong is one ``newswatch check`` rejects, and one the loader accepts is never marked.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from bot.config.load import load_config, rule_file_paths
from bot.errors import ConfigError
from tests.paths import REPO

CONFIG = REPO / "config"
EXAMPLE = CONFIG / "examples" / "bc-wildfire"
MODELINE = "# yaml-language-server: $schema="


def _schema_errors(document: str, text: str) -> list[str]:
    schema = json.loads((CONFIG / "schema" / f"{document}.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    data: Any = YAML(typ="safe").load(textwrap.dedent(text))
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(data)
    ]


def _loader_errors(tmp_path: Path, settings: str, rules: str, env: dict[str, str]) -> list[str]:
    (tmp_path / "settings.yaml").write_text(textwrap.dedent(settings), encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(textwrap.dedent(rules), encoding="utf-8")
    try:
        load_config(tmp_path, env)
    except ConfigError as err:
        return [str(p) for p in err.problems]
    return []


ENV = {
    "PORT": "9090",
    "FEED_URL": "https://news.example/rss",
    "SLACK_BOT_TOKEN": "xoxb-0123456789",
    "SMTP_PASSWORD": "correct horse",
}
SETTINGS = """
    store: sqlite:state.db
    feeds:
      - {id: news, url: "https://news.example/rss", tags: [canada]}
    destinations:
      desk: {type: slack, channel: C0123, token: "${SLACK_BOT_TOKEN}"}
"""
RULES = """
    rules:
      - {id: watch, title: Watch, query: police, notify: [desk]}
"""

# Documents the loader accepts: the schema must accept each of them too.
GOOD_SETTINGS = {
    "durations-and-sizes-as-text": """
        schedule: {interval: 10m, jitter: 1.5s, lease: 1m}
        http: {timeout: 20, max_bytes: 10MB, max_delay: 1d}
        limits: {text: 200KiB}
        delivery: {retry_for: 24h}
        feeds: [{id: news, url: "https://news.example/rss", interval: 90, backfill: 2h}]
    """,
    "variables-where-numbers-booleans-and-patterns-are": """
        store: ${NEWSWATCH_STORE:-sqlite:state.db}
        schedule: {interval: "${POLL:-10m}"}
        http: {concurrency: "${CONCURRENCY:-10}", allow_private_redirects: "${PRIVATE:-false}"}
        server: {host: "${HOST:-0.0.0.0}", port: "${PORT}", metrics_token: "${SLACK_BOT_TOKEN}"}
        feeds: [{id: news, url: "${FEED_URL}", enabled: "${NEWS_ON:-true}"}]
        destinations:
          mail:
            type: email
            to: desk@example.org
            from: bot@example.org
            smtp: {host: smtp.example.org, port: "${SMTP_PORT:-465}", security: "${TLS:-ssl}"}
    """,
    "one-string-lists-from-and-digests": """
        feeds: [{id: news, url: "https://news.example/rss", tags: canada}]
        destinations:
          desk:
            type: slack
            webhook_url: ${SLACK_BOT_TOKEN}
            digest: {every: 1h}
          mail:
            type: email
            to: desk@example.org
            from: bot@example.org
            smtp: {host: smtp.example.org, username: bot, password: "${SMTP_PASSWORD}"}
            digest: {cron: "0 8 * * 1-5", timezone: America/Toronto}
        on_feed_failure: {after: 2h, notify: desk}
    """,
}

# Documents the loader rejects, for one reason each: the schema must reject each of them too.
BAD_SETTINGS = {
    "typo-at-the-top": "feds: []\n",
    "typo-in-a-feed": 'feeds: [{id: news, url: "https://news.example/rss", intervall: 10m}]\n',
    "typo-in-smtp": (
        "destinations: {mail: {type: email, to: a@example.org, from: b@example.org,"
        " smtp: {host: smtp.example.org, pasword: x}}}\n"
    ),
    "port-not-a-number": "server: {port: eighty}\n",
    "port-out-of-range": "server: {port: 70000}\n",
    "boolean-not-a-boolean": "http: {allow_private_redirects: maybe}\n",
    "duration-in-words": "schedule: {interval: 10 minutes}\n",
    "negative-duration": "schedule: {jitter: -5}\n",
    "size-in-words": "http: {max_bytes: ten megabytes}\n",
    "unknown-destination-type": "destinations: {desk: {type: teams}}\n",
    "slack-with-token-and-webhook": (
        "destinations: {desk: {type: slack, channel: C1, token: a, webhook_url: b}}\n"
    ),
    "slack-token-without-channel": "destinations: {desk: {type: slack, token: xoxb-1}}\n",
    "email-without-from": (
        "destinations: {mail: {type: email, to: a@example.org, smtp: {host: smtp.example.org}}}\n"
    ),
    "smtp-security-unknown": (
        "destinations: {mail: {type: email, to: a@example.org, from: b@example.org,"
        " smtp: {host: smtp.example.org, security: tls}}}\n"
    ),
    "feed-id-not-a-slug": 'feeds: [{id: "Local News", url: "https://news.example/rss"}]\n',
    "feed-url-not-http": 'feeds: [{id: news, url: "ftp://news.example/rss"}]\n',
    "destination-id-not-a-slug": "destinations: {Desk Two: {type: console}}\n",
    "store-unknown": "store: mysql://db/newswatch\n",
    "tags-a-mapping": 'feeds: [{id: news, url: "https://news.example/rss", tags: {a: b}}]\n',
}

GOOD_RULES = {
    "one-strings-and-fields": """
        rules:
          - {id: a, title: A, query: police, feeds: news, notify: desk, fields: [title]}
    """,
    "match-groups-nested": """
        rules:
          - id: b
            title: B
            match: {all: [police], any: [Iraq, {all: [Mosul], none: [army]}], none: [war]}
            feeds: ["tag:canada"]
            enabled: ${B_ON:-true}
    """,
    "groups": """
        groups:
          police: [police, "policier*", police officers, "@services"]
          services: [RCMP, "Surete du Quebec", "/(mos+ul)/"]
        rules:
          - {id: c, title: C, query: "@police AND Iraq"}
    """,
}
BAD_RULES = {
    "typo-in-a-rule": "rules: [{id: a, title: A, qeury: police}]\n",
    "query-and-match": "rules: [{id: a, title: A, query: police, match: {all: [x]}}]\n",
    "neither-query-nor-match": "rules: [{id: a, title: A}]\n",
    "unknown-field": "rules: [{id: a, title: A, query: police, fields: [body]}]\n",
    "match-group-only-none": "rules: [{id: a, title: A, match: {none: [army]}}]\n",
    "rules-not-a-list": "rules: {id: a}\n",
    "group-name-not-a-slug": "groups: {Police Forces: [police]}\n",
    "group-not-a-list": "groups: {police: {a: b}}\n",
    "group-term-not-a-string": "groups: {police: [[police]]}\n",
}


@pytest.mark.parametrize("settings", GOOD_SETTINGS.values(), ids=GOOD_SETTINGS.keys())
def test_settings_the_loader_accepts_fit_the_schema(tmp_path: Path, settings: str) -> None:
    assert _loader_errors(tmp_path, settings, RULES.replace(", notify: [desk]", ""), ENV) == []
    assert _schema_errors("settings", settings) == []


@pytest.mark.parametrize("settings", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_settings_the_loader_rejects_do_not_fit_the_schema(tmp_path: Path, settings: str) -> None:
    assert len(_loader_errors(tmp_path, settings, "rules: []\n", ENV)) == 1  # for this reason
    assert _schema_errors("settings", settings) != []


@pytest.mark.parametrize("rules", GOOD_RULES.values(), ids=GOOD_RULES.keys())
def test_rules_the_loader_accepts_fit_the_schema(tmp_path: Path, rules: str) -> None:
    assert _loader_errors(tmp_path, SETTINGS, rules, ENV) == []
    assert _schema_errors("rules", rules) == []


@pytest.mark.parametrize("rules", BAD_RULES.values(), ids=BAD_RULES.keys())
def test_rules_the_loader_rejects_do_not_fit_the_schema(tmp_path: Path, rules: str) -> None:
    assert len(_loader_errors(tmp_path, SETTINGS, rules, ENV)) == 1  # for this reason
    assert _schema_errors("rules", rules) != []


SHIPPED = sorted(CONFIG.rglob("*.yaml"))


def test_the_shipped_yaml_files_are_the_ones_expected() -> None:
    assert [p.relative_to(CONFIG).as_posix() for p in SHIPPED] == [
        "examples/bc-wildfire/rules.yaml",
        "examples/bc-wildfire/settings.yaml",
        "rules/lexicons.yaml",
        "rules.yaml",
        "settings.yaml",
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(CONFIG).as_posix())
def test_every_shipped_file_names_its_schema_and_fits_it(path: Path) -> None:
    """The modeline is the first line, its relative path exists, and the file validates."""
    first, text = path.read_text("utf-8").split("\n", 1)[0], path.read_text("utf-8")
    assert first == f"{MODELINE}{_relative_schema(path)}"
    assert (path.parent / first.removeprefix(MODELINE)).is_file()
    assert _schema_errors(_document(path), text) == []


def _document(path: Path) -> str:
    """Which document a shipped file is: its name, or ``rules`` for a file in rules/."""
    return "rules" if path.parent.name == "rules" else path.stem


def _relative_schema(path: Path) -> str:
    up = "../" * len(path.parent.relative_to(CONFIG).parts)
    return f"{up}schema/{_document(path)}.schema.json"


def test_the_schema_and_example_folders_are_not_rule_files() -> None:
    assert rule_file_paths(CONFIG) == (CONFIG / "rules.yaml", CONFIG / "rules" / "lexicons.yaml")
    assert rule_file_paths(EXAMPLE) == (EXAMPLE / "rules.yaml",)
