"""The stored alert payload keeps the item's language, and reads payloads written without it."""

from __future__ import annotations

import json

from bot.store.codec import alert_from_json, alert_to_json
from tests.factories import sample_alert


def test_the_language_round_trips() -> None:
    alert = sample_alert(language="fr")
    assert json.loads(alert_to_json(alert))["language"] == "fr"
    assert alert_from_json(alert_to_json(alert)) == alert
    assert alert_from_json(alert_to_json(sample_alert())).language is None


def test_a_payload_written_before_languages_reads_as_none() -> None:
    data = json.loads(alert_to_json(sample_alert(language="fr")))
    del data["language"]
    assert alert_from_json(json.dumps(data)) == sample_alert()
