"""Rendering the overflow message of a flood: Slack within Block Kit's limits, hostile text
inert, email with a one-line subject, the console."""

from __future__ import annotations

import email
import email.policy
import io
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

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
    """What Slack would show: the fallback, headers, and each rich_text line, its list items
    as "• ..." and its links written here as ``[text](url)``."""
    message = slack_message(alert, NOW)
    found = [message.text]

    def line(section: dict[str, Any]) -> str:
        return "".join(
            f"[{e['text']}]({e['url']})"
            if e["type"] == "link"
            else e.get("text", e.get("fallback"))
            for e in section["elements"]
        )

    for block in message.blocks:
        if block["type"] == "header":
            found.append(block["text"]["text"])
        for container in block.get("elements", []):
            assert container["type"] in ("rich_text_section", "rich_text_list")
            if container["type"] == "rich_text_list":
                found += ["• " + line(item) for item in container["elements"]]
            else:
                found.append(line(container))
    return found


def json_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline elements of a rich_text block, in lists too."""
    out = []
    for container in block["elements"]:
        items = container["elements"] if container["type"] == "rich_text_list" else [container]
        out += [e for item in items for e in item["elements"]]
    return out


def listed(alert: Alert) -> int:
    return sum(t.startswith("• ") for t in texts(alert))


def more(alert: Alert) -> int:
    found = re.fullmatch(r"and (\d+) more", texts(alert)[-1])
    return int(found.group(1)) if found else 0


def test_ten_thousand_folded_items_are_one_slack_message_within_limits() -> None:
    overflow = flood(10_020)
    message = slack_message(overflow, NOW)
    assert block_kit_violations(payload(overflow)) == []
    assert message.blocks[0]["text"]["text"] == "10000 more matches from RCMP news"
    assert "10000 more matches" in message.text
    assert listed(overflow) == 100
    assert more(overflow) == 9_900
    assert "• [Story 20](https://news.example/20) · Police in Iraq" in texts(overflow)


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
    assert listed(overflow) == 47  # one line per block
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
    message = slack_message(overflow, NOW)
    assert "<" not in message.text and "&lt;!channel&gt;" in message.text
    assert "<" not in message.blocks[0]["text"]["text"]
    # Feed text is shown exactly, as text: rich_text never parses it as mrkdwn or mentions.
    shown = texts(overflow)
    assert shown[2].startswith(HOSTILE + " · ")
    assert f"• [{HOSTILE} 20](https://news.example/20) · {HOSTILE}" in shown
    kinds = {e["type"] for b in message.blocks[1:] for e in json_elements(b)}
    assert kinds <= {"text", "link", "date"}
    # The bot's own links survive: one per listed item, to the item.
    assert sum("](https://news.example/" in t for t in shown) == 10


def test_unsafe_links_are_listed_without_a_link() -> None:
    overflow = flood(21, link="javascript:alert({n})")
    assert "javascript" not in repr(slack_message(overflow, NOW).blocks)
    assert "• Story 20 · Police in Iraq" in texts(overflow)


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
