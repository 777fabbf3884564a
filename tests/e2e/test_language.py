"""`newswatch once` end to end: an alert on a French item sent to an English-reading Slack
destination says the item is in French; a rule with ``languages:`` skips other languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import ConfigDir, run_cli
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import SlackEmulator

NOW = datetime.now(UTC)
OLD = Entry("Budget tabled in Ottawa", "Nothing to see.", "https://news.example/old")
# Real headlines and leads (journalmetro.com, thestar.com, zeit.de), August 2017 and 2014.
FRENCH = Entry(
    "Ottawa enverra jusqu'à 20 policiers en Irak",
    "Le gouvernement fédéral déploiera jusqu'à 20 agents de police en Irak dans le cadre"
    " de la lutte contre le groupe armé État islamique.",
    "https://news.example/fr",
    published=NOW - timedelta(hours=1),
)
ENGLISH = Entry(
    "Canada to send as many as 20 police officers to Iraq as part of fight against Daesh",
    "The police officers will support efforts to re-establish a local police presence.",
    "https://news.example/en",
    published=NOW - timedelta(hours=1),
)
GERMAN = Entry(
    "Kanada hat 69 Soldaten im Nordirak im Einsatz",
    "Kanada hat Soldaten der Spezialkräfte in den Nordirak geschickt, um die irakische Armee"
    " beim Kampf gegen den Islamischen Staat zu unterstützen; Polizei folgt.",
    "https://news.example/de",
    published=NOW - timedelta(hours=1),
)


def test_an_alert_on_a_french_item_to_an_english_desk_says_french(
    config_dir: ConfigDir, feed_server: FeedServer, slack: SlackEmulator
) -> None:
    url = feed_server.serve("/news.xml", rss([OLD]))
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        http: {{timeout: 5s}}
        feeds: [{{id: news, url: '{url}'}}]
        destinations:
          desk:
            type: slack
            channel: "#iraq"
            token: ${{SLACK_TEST_TOKEN}}
            base_url: {slack.base_url}
        """,
    )
    config_dir.write(
        "rules.yaml",
        """
        rules:
          - id: police-iraq
            title: Police in Iraq
            query: '(polic* OR Polizei) AND (Iraq OR Irak OR Nordirak)'
            languages: [en, fr]
        """,
    )
    assert run_cli("--config", str(config_dir.path), "once").code == 0
    feed_server.serve("/news.xml", rss([FRENCH, ENGLISH, GERMAN, OLD]))
    result = run_cli("--config", str(config_dir.path), "once")
    assert result.code == 0, result.stderr
    by_link = {
        link: message
        for message in slack.messages
        for link in ("news.example/fr", "news.example/en", "news.example/de")
        if link in str(message.blocks)
    }
    assert set(by_link) == {"news.example/fr", "news.example/en"}
    assert "in French" in str(by_link["news.example/fr"].blocks)
    assert " · in " not in str(by_link["news.example/en"].blocks)
