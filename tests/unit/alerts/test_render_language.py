"""An alert on an item in another language than its destination's says which, in every format."""

from __future__ import annotations

import email
import email.policy

from bot.alerts.render import email_message, slack_digest, slack_message, text_message
from tests.factories import NOW, sample_alert
from tests.peers.slack_emulator import block_kit_violations

FRENCH = sample_alert(title="Des policiers canadiens en Irak", language="fr")
SAME = sample_alert()


def test_slack_says_the_language_after_the_source() -> None:
    message = slack_message(FRENCH, NOW)
    assert "' · in French · '" in str(message.blocks)
    assert block_kit_violations({"text": message.text, "blocks": message.blocks}) == []
    assert "in English" not in str(slack_message(SAME, NOW).blocks)
    assert " · in " not in str(slack_message(SAME, NOW).blocks)


def test_a_slack_digest_says_it_per_item() -> None:
    [part] = slack_digest([FRENCH, SAME], NOW)
    assert str(part.message.blocks).count("in French") == 1


def test_plain_text_says_the_language_on_the_source_line() -> None:
    lines = text_message(FRENCH, NOW).splitlines()
    assert any(line.startswith("Source: RCMP news · in French · ") for line in lines)
    assert " · in " not in text_message(SAME, NOW)


def test_email_says_it_in_both_parts() -> None:
    raw = email_message(FRENCH, NOW, sender="s@x.org", recipients=["r@x.org"]).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    plain, rich = (part.get_content() for part in parsed.iter_parts())
    assert "RCMP news · in French" in plain
    assert "RCMP news · in French" in rich


def test_a_language_without_a_two_letter_code_is_named_by_its_code() -> None:
    assert "Source: RCMP news · in lrc · " in text_message(sample_alert(language="lrc"), NOW)
