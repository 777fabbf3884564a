"""Rendering a story: every rule named in one message, the outlets counted, later sightings
as thread replies, follow-ups and digest sections, and the console's one line a sighting."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts.render import (
    SLACK_BLOCKS_MAX,
    email_message,
    slack_digest,
    slack_follow_up,
    slack_message,
    slack_reply,
    text_digest,
    text_message,
    text_sighting,
)
from bot.model import Alert, Sighting
from bot.notify.console import ConsoleNotifier
from tests.factories import NOW, sample_alert, sample_sighting
from tests.peers.slack_emulator import Posted, block_kit_violations

HOSTILE = "<!channel> <@U1> <http://evil.example|x> *b* _i_ `c` 1_200 a&b \x1b[2J\u202e"

alert = sample_alert
sighting = sample_sighting


def shown(message: Any) -> list[str]:
    """What a Slack reader sees of each rich_text section, as the emulator reads it."""
    return Posted("api", {"text": message.text, "blocks": message.blocks}).rich_texts()


def headers(message: Any) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "header"]


def test_one_message_names_every_rule_that_matched_the_story() -> None:
    story = alert(also_matched=("Police abroad", "Canadian police mission in Iraq", "Iraq"))
    assert story.rule_titles == ("Canadian police mission in Iraq", "Police abroad", "Iraq")
    rules = "Canadian police mission in Iraq, Police abroad, Iraq"
    assert headers(slack_message(story, NOW)) == [rules]
    assert slack_message(story, NOW).text.startswith(rules + ": RCMP officers")
    assert text_message(story, NOW).splitlines()[0] == rules
    mail = email_message(story, NOW, sender="a@x.org", recipients=["b@x.org"])
    assert mail["Subject"] == f"[newswatch] {rules}: RCMP officers arrive in Baghdad"
    # In a digest, grouped under its first rule, the item names the others.
    digest = text_digest([story, alert(item_key="2")], NOW)
    assert "Also matched: Police abroad, Canadian police mission in Iraq, Iraq" in digest
    (part,) = slack_digest([story, alert(item_key="2")], NOW)
    assert "Also matched: Police abroad, Canadian police mission in Iraq, Iraq" in shown(
        part.message
    )


def test_the_outlet_count_shows_only_once_there_are_several() -> None:
    one, three = alert(), alert(outlets=3)
    assert "outlets" not in str(slack_message(one, NOW)) + text_message(one, NOW)
    assert shown(slack_message(three, NOW))[2] == "Reported by 3 outlets"
    assert slack_message(three, NOW).text.endswith(" · reported by 3 outlets")
    assert "\nReported by 3 outlets\n" in text_message(three, NOW)
    mail = email_message(three, NOW, sender="a@x.org", recipients=["b@x.org"])
    html = mail.get_body(("html",))
    assert html is not None and "<p>Reported by 3 outlets</p>" in html.get_content()


def test_a_reply_is_one_line_of_rich_text_with_a_date_that_never_goes_stale() -> None:
    reply = slack_reply(sighting())
    assert shown(reply) == [
        "CBC News · Canadian police to train Iraqi officers · 2024-05-01 14:00 UTC"
    ]
    (section,) = reply.blocks[0]["elements"]
    date = section["elements"][-1]
    assert date["type"] == "date"
    assert date["timestamp"] == int((NOW - timedelta(hours=1)).timestamp())
    undated = shown(slack_reply(sighting(published=None)))[0]
    assert undated.endswith(" · date unknown (first seen 2024-05-01 15:00 UTC)")
    assert shown(slack_reply(sighting(source="")))[0].startswith("unknown source · ")


def test_hostile_sighting_text_is_never_parsed_and_loses_its_control_characters() -> None:
    later = sighting(title=HOSTILE, source=HOSTILE, follow_up=HOSTILE, story_title=HOSTILE)
    messages = [slack_reply(later), slack_follow_up(later, alert(title=HOSTILE))]
    messages += [part.message for part in slack_digest([], NOW, [later])]
    for message in messages:
        assert not block_kit_violations({"text": message.text, "blocks": message.blocks})
        assert "<!channel>" not in message.text  # the fallback is escaped, when it has feed text
        assert all("mrkdwn" not in str(block) for block in message.blocks)
        assert "1_200" in "".join(shown(message))  # exact characters, no look-alikes
        assert "\x1b" not in str(message) and "\u202e" not in str(message)
    assert "&lt;!channel&gt;" in messages[0].text and "&lt;!channel&gt;" in messages[1].text
    line = text_sighting(later, NOW, story=HOSTILE)
    assert "\x1b" not in line and "\u202e" not in line and "\n" not in line


def test_a_follow_up_of_its_own_names_the_story_s_earlier_title() -> None:
    later = sighting(follow_up="after a gap of 30 h", rule_titles=())
    message = slack_follow_up(later, alert(also_matched=("Police abroad",)))
    assert headers(message) == ["Canadian police mission in Iraq, Police abroad"]  # the alert's
    assert shown(message)[0] == "Follow-up: after a gap of 30 h"
    assert shown(message)[-1] == "Earlier: RCMP officers arrive in Baghdad"


def test_a_digest_lists_follow_ups_then_the_other_sightings() -> None:
    sightings = [sighting(source="Reuters"), sighting(follow_up="new term: suspended")]
    (part,) = slack_digest([alert()], NOW, sightings)
    assert headers(part.message) == [
        "Canadian police mission in Iraq (1)",
        "Follow-ups (1)",
        "Also reported (1)",
    ]
    assert part.indexes == (0, 2, 1)  # sightings counted after the alerts
    text = text_digest([], NOW, sightings)
    assert text.splitlines()[:3] == [
        "Follow-ups (1)",
        "==============",
        "- Follow-up: new term: suspended · CBC News: Canadian police to train Iraqi officers"
        " · https://www.cbc.ca/news/world/rcmp-iraq-1.123 · 2024-05-01 14:00 UTC (1 h ago)"
        " · 2 outlets",
    ]


@settings(max_examples=25, deadline=None)
@given(
    alerts=st.integers(0, 70),
    sightings=st.integers(0, 250),
    title=st.text(min_size=0, max_size=600),
)
def test_a_digest_of_any_size_carries_every_row_once_within_slack_s_limits(
    alerts: int, sightings: int, title: str
) -> None:
    batch = [alert(item_key=str(i), title=title) for i in range(alerts)]
    later = [sighting(title=title, story_title=title) for _ in range(sightings)]
    parts = slack_digest(batch, NOW, later)
    carried = [i for part in parts for i in part.indexes]
    assert sorted(carried) == list(range(alerts + sightings))
    for part in parts:
        assert len(part.message.blocks) <= SLACK_BLOCKS_MAX
        assert not block_kit_violations({"text": part.message.text, "blocks": part.message.blocks})
    # Split the same way again: what a retry of the parts not yet sent relies on.
    assert [p.indexes for p in slack_digest(batch, NOW, later)] == [p.indexes for p in parts]


def test_the_console_prints_every_sighting_as_one_line_naming_the_story() -> None:
    stream = io.StringIO()
    console = ConsoleNotifier("out", stream=stream, clock=lambda: NOW)
    assert not console.threads
    parent: Alert = alert()
    assert console.send([parent]) is None
    console.send_sighting(sighting(), parent, None)
    console.send_sighting(sighting(follow_up="new term: suspended", outlets=3), parent, None)
    printed = stream.getvalue().split("\n\n")
    assert printed[-3] == (
        "↳ CBC News: Canadian police to train Iraqi officers"
        " · https://www.cbc.ca/news/world/rcmp-iraq-1.123 · 2024-05-01 14:00 UTC (1 h ago)"
        " · 2 outlets · story: RCMP officers arrive in Baghdad"
    )
    assert printed[-2].startswith("↳ Follow-up: new term: suspended · CBC News: ")
    assert " · 3 outlets · story: RCMP officers arrive in Baghdad" in printed[-2]


def test_the_console_prints_a_digest_s_sightings_after_its_alerts() -> None:
    stream = io.StringIO()
    later: list[Sighting] = [sighting(story_title="RCMP in Iraq")]
    ConsoleNotifier("out", stream=stream, clock=lambda: NOW).send([alert()], None, later)
    out = stream.getvalue()
    assert out.index("RCMP officers arrive") < out.index("Also reported (1)")
    assert "- CBC News: Canadian police to train Iraqi officers" in out
    assert "story: RCMP in Iraq" in out
