"""Rendering the overflow message of a flood: Slack within Block Kit's limits, hostile text
inert, email with a one-line subject, the console."""

from __future__ import annotations

import email
import email.policy
import io
import re
from dataclasses import replace
from datetime import timedelta

from bot.alerts.flood import fold
from bot.alerts.render import email_message, slack_message, text_message
from bot.model import Alert, QueuedAlert
from bot.notify.console import ConsoleNotifier
from tests.factories import NOW, sample_alert
from tests.peers.slack_emulator import block_kit_violations

HOSTILE = "<!channel> *bold* <http://x|y> _it_ ~s~ `c` & <@U1>"


def flood(
    n: int,
    *,
    title: str = "Story {n}",
    link: str = "https://news.example/{n}",
    rule_title: str = "Police in Iraq",
    source: str = "RCMP news",
    ceiling: int = 20,
) -> Alert:
    """The overflow alert of a poll that matched ``n`` items."""
    alerts = [
        QueuedAlert(
            sample_alert(
                item_key=f"guid-{i}",
                title=title.format(n=i),
                link=link.format(n=i),
                rule_title=rule_title,
                source=source,
                published=NOW - timedelta(minutes=i),
            ),
            (),
            NOW,
        )
        for i in range(n)
    ]
    out, _ = fold(alerts, ceiling, NOW)
    return out[-1].alert


def payload(alert: Alert) -> dict[str, object]:
    message = slack_message(alert, NOW)
    return {"text": message.text, "blocks": message.blocks}


def texts(alert: Alert) -> list[str]:
    """Every string Slack would show: the fallback, headers, sections, context elements."""
    message = slack_message(alert, NOW)
    found = [message.text]
    for block in message.blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [e["text"] for e in block.get("elements", [])]
    return found


def listed(alert: Alert) -> int:
    return sum(t.count("\n• ") + t.startswith("• ") for t in texts(alert))


def more(alert: Alert) -> int:
    last = slack_message(alert, NOW).blocks[-1]
    found = (
        re.fullmatch(r"and (\d+) more", last["elements"][0]["text"]) if "elements" in last else None
    )
    return int(found.group(1)) if found else 0


def test_ten_thousand_folded_items_are_one_slack_message_within_limits() -> None:
    overflow = flood(10_020)
    message = slack_message(overflow, NOW)
    assert block_kit_violations(payload(overflow)) == []
    assert message.blocks[0]["text"]["text"] == "10000 more matches from RCMP news"
    assert "10000 more matches" in message.text
    assert listed(overflow) == 100
    assert more(overflow) == 9_900
    assert "• <https://news.example/20|Story 20> · Police in Iraq" in "\n".join(texts(overflow))


def test_the_longest_lines_still_fit_and_the_count_covers_what_did_not() -> None:
    overflow = flood(
        5_000,
        title="word " * 2_000,
        link="https://news.example/{n}/" + "a" * 1_950,
        rule_title="rule " * 500,
        source="source " * 500,
    )
    assert block_kit_violations(payload(overflow)) == []
    assert len(slack_message(overflow, NOW).blocks) <= 50
    assert listed(overflow) == 47  # one line per section
    assert listed(overflow) + more(overflow) == overflow.folded_count


def test_hostile_titles_sources_and_rules_are_inert_in_slack() -> None:
    overflow = flood(
        30,
        title=HOSTILE + " {n}",
        rule_title=HOSTILE,
        source=HOSTILE,
        link="https://news.example/{n}",
    )
    assert block_kit_violations(payload(overflow)) == []
    for text in texts(overflow):
        assert "<!channel>" not in text and "<@U1>" not in text
        assert "<http://x|y>" not in text
        assert "*bold*" not in text and "_it_" not in text and "`c`" not in text
    joined = "\n".join(texts(overflow))
    assert "&lt;!channel&gt;" in joined
    # The bot's own links survive: one per listed item, to the item.
    assert len(re.findall(r"<https://news\.example/\d+\|", joined)) == 10


def test_unsafe_links_are_listed_without_a_link() -> None:
    overflow = flood(21, link="javascript:alert({n})")
    joined = "\n".join(texts(overflow))
    assert "javascript" not in joined
    assert "• Story 20 · Police in Iraq" in joined


def test_a_single_alert_with_a_long_ampersand_url_stays_within_a_section() -> None:
    alert = sample_alert(link="https://news.example/?" + "a=1&" * 490)
    message = slack_message(alert, NOW)
    assert block_kit_violations({"text": message.text, "blocks": message.blocks}) == []


def test_email_has_a_one_line_subject_and_an_escaped_list() -> None:
    overflow = flood(
        150,
        title=HOSTILE + " <script>x</script> {n}",
        source="Evil\r\nBcc: victim@example.org\u2028feed",
    )
    message = email_message(overflow, NOW, sender="bot@example.org", recipients=["a@example.org"])
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    subject = parsed["Subject"]
    assert subject.startswith("[newswatch] 130 more matches from Evil Bcc: victim@example.org")
    assert "\n" not in subject and "\r" not in subject
    assert parsed["Bcc"] is None
    plain = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "and 30 more" in plain and "and 30 more" in html
    assert plain.count("\n- ") == 100
    assert "https://news.example/20" in plain
    assert "<script" not in html and "&lt;!channel&gt;" in html
    assert '<a href="https://news.example/20" rel="noopener noreferrer nofollow">' in html


def test_console_prints_the_list_and_the_count() -> None:
    stream = io.StringIO()
    ConsoleNotifier("out", stream=stream, clock=lambda: NOW).send([flood(105)])
    out = stream.getvalue()
    assert out.startswith("85 more matches from RCMP news\n")
    assert "- Story 20\n  https://news.example/20\n  Rules: Police in Iraq\n" in out
    assert out.count("\n- ") == 85
    assert "and " not in out


def test_console_text_has_no_control_characters() -> None:
    overflow = flood(21, title="Story \x1b[2J{n}\u202e", source="RCMP\x07 news")
    text = text_message(overflow, NOW)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_an_overflow_in_a_digest_batch_still_renders() -> None:
    # A destination switched to digest while an overflow waited in the outbox.
    overflow = flood(25)
    message = email_message(
        [sample_alert(), replace(overflow)],
        NOW,
        sender="bot@example.org",
        recipients=["a@example.org"],
    )
    assert "5 more matches" in message.get_body(("plain",)).get_content()
