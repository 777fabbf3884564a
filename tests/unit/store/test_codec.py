"""What the outbox stores: alerts with their rules, outlets and language, sightings, and
where an alert landed, read back as written, and rows of other versions still readable."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bot.model import Posted
from bot.store.codec import (
    alert_from_json,
    alert_to_json,
    posted_from_json,
    posted_to_json,
    sighting_from_json,
    sighting_to_json,
)
from tests.factories import sample_alert, sample_sighting


def test_an_alert_keeps_the_other_rules_and_the_outlet_count() -> None:
    alert = sample_alert(also_matched=("Police abroad", "Iraq"), outlets=4)
    assert alert_from_json(alert_to_json(alert)) == alert


def test_an_alert_stored_before_stories_names_one_rule_and_one_outlet() -> None:
    alert = sample_alert()
    data = json.loads(alert_to_json(alert))
    del data["also_matched"], data["outlets"]
    read = alert_from_json(json.dumps(data))
    assert read == alert and read.rule_titles == ("Canadian police mission in Iraq",)


@given(
    follow_up=st.none() | st.text(max_size=40),
    language=st.none() | st.sampled_from(["en", "fr", "ar", "fa"]),
    title=st.text(max_size=80),
    published=st.booleans(),
)
def test_a_sighting_reads_back_as_written(
    follow_up: str | None, language: str | None, title: str, published: bool
) -> None:
    sighting = sample_sighting(
        follow_up=follow_up,
        language=language,
        title=title,
        **({} if published else {"published": None}),
    )
    assert sighting_from_json(sighting_to_json(sighting)) == sighting


def test_a_sighting_from_another_version_is_read_what_this_one_knows_of_it() -> None:
    sighting = sample_sighting()
    data = json.loads(sighting_to_json(sighting))
    del data["follow_up"], data["language"], data["story_title"]
    data["a_later_field"] = [1, 2]
    assert sighting_from_json(json.dumps(data)) == sighting


def test_where_an_alert_landed_reads_back() -> None:
    posted = Posted("C0123456789", "1714575600.000123")
    assert posted_from_json(posted_to_json(posted)) == posted


def test_the_language_round_trips() -> None:
    alert = sample_alert(language="fr")
    assert json.loads(alert_to_json(alert))["language"] == "fr"
    assert alert_from_json(alert_to_json(alert)) == alert
    assert alert_from_json(alert_to_json(sample_alert())).language is None


def test_a_payload_written_before_languages_reads_as_none() -> None:
    data = json.loads(alert_to_json(sample_alert(language="fr")))
    del data["language"]
    assert alert_from_json(json.dumps(data)) == sample_alert()
