"""Rendering the attention budget: urgent alerts (the destination's mention, never feed text),
digests held for a cap or for quiet hours, and spike alerts with their top stories."""

from __future__ import annotations

import email
import email.policy
import io
from dataclasses import replace
from typing import Any

import pytest

from bot.alerts.attention import spike_alert
from bot.alerts.render import (
    email_message,
    mention_parts,
    slack_digest,
    slack_message,
    text_digest,
    text_message,
)
from bot.model import Alert, Folded, QueuedAlert, SpikeFacts, Summary
from bot.notify.console import ConsoleNotifier
from tests.factories import NOW, sample_alert
from tests.peers.slack_emulator import Posted, block_kit_violations

RULE = "Canadian police mission in Iraq"
HOSTILE = "<!channel> @here <!here> <@U0BAD> <!subteam^SBAD> <https://evil.example|x> *b*"
ALERT_LINK = "link:https://www.rcmp-grc.gc.ca/en/news/1"


def spike(
    count: int = 12,
    usual: float = 2.0,
    window: float = 6 * 3600,
    *,
    titles: str = "Story {n}",
    listed: int = 3,
    **changes: Any,
) -> Alert:
    """A spike alert as the poll makes it (``spike_alert``), listing ``listed`` top stories."""
    top = [Folded(titles.format(n=n), f"https://news.example/{n}", (RULE,)) for n in range(listed)]
    template = QueuedAlert(sample_alert(**changes), NOW)
    return spike_alert(template, SpikeFacts(count, usual, window), top).alert


def entities(message: Any) -> list[str]:
    """The mentions and links Slack would make of a message (the emulator's reading)."""
    return Posted("api", {"text": message.text, "blocks": message.blocks}).entities


def mail(alerts: Alert | list[Alert]) -> email.message.EmailMessage:
    built = email_message(alerts, NOW, sender="bot@example.org", recipients=["a@example.org"])
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def subject(message: email.message.EmailMessage) -> str:
    """The subject, its whitespace runs as one space: Python's generator folds long subjects
    leaving a space before the fold (a doubled space, or a leading one, once unfolded)."""
    return " ".join(str(message["Subject"]).split())


def body(message: email.message.EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


# --- urgent -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mention", "element", "syntax"),
    [
        ("@here", {"type": "broadcast", "range": "here"}, "<!here>"),
        ("@channel", {"type": "broadcast", "range": "channel"}, "<!channel>"),
        ("<!subteam^S0123ABC>", {"type": "usergroup", "usergroup_id": "S0123ABC"}, None),
        ("<@U0123ABC>", {"type": "user", "user_id": "U0123ABC"}, None),
    ],
)
def test_an_urgent_alert_starts_with_the_configured_mention(
    mention: str, element: dict[str, str], syntax: str | None
) -> None:
    message = slack_message(sample_alert(priority="urgent"), NOW, mention)
    lead = message.blocks[0]
    assert lead == {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [
                    element,
                    {"type": "text", "text": " "},
                    {"type": "text", "text": "Urgent", "style": {"bold": True}},
                ],
            }
        ],
    }
    assert message.text == (
        f"{syntax or mention} Urgent: {RULE}: RCMP officers arrive in Baghdad (RCMP news)"
    )
    assert message.blocks[1]["text"]["text"] == RULE  # then the alert as before
    assert block_kit_violations({"text": message.text, "blocks": message.blocks}) == []


def test_an_urgent_alert_without_a_mention_is_marked_and_pings_nobody() -> None:
    message = slack_message(sample_alert(priority="urgent"), NOW)
    assert message.blocks[0]["elements"][0]["elements"] == [
        {"type": "text", "text": "Urgent", "style": {"bold": True}}
    ]
    assert message.text.startswith("Urgent: Canadian police")
    assert entities(message) == [ALERT_LINK]


@pytest.mark.parametrize("priority", ["normal", "digest"])
def test_only_urgent_alerts_carry_the_mention(priority: str) -> None:
    plain = slack_message(sample_alert(), NOW)
    message = slack_message(sample_alert(priority=priority), NOW, "@channel")
    assert message == plain
    assert entities(message) == [ALERT_LINK]


@pytest.mark.parametrize(
    "bad", ["<!everyone>", "<!channel>", "here", "@here ", "<!subteam^S1|x>", "<@U1> hi", ""]
)
def test_a_mention_in_any_other_form_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="a mention is"):
        mention_parts(bad)


def test_hostile_feed_text_in_an_urgent_alert_pings_only_the_configured_mention() -> None:
    hostile = sample_alert(
        priority="urgent", title=HOSTILE, source=HOSTILE, summary=Summary(HOSTILE)
    )
    message = slack_message(hostile, NOW, "<!subteam^S0123ABC>")
    found = entities(message)
    assert found[0] == "<!subteam^S0123ABC>"  # the fallback's, first
    assert [e for e in found if e.startswith("<")] == ["<!subteam^S0123ABC>"]
    mentions = [e for e in found if not e.startswith(("<", "link:"))]
    assert mentions == ["usergroup:{'type': 'usergroup', 'usergroup_id': 'S0123ABC'}"]
    assert "&lt;!channel&gt; @here &lt;!here&gt;" in message.text


def test_an_overlong_urgent_alert_keeps_its_mention_within_slack_s_limits() -> None:
    words = "Canadian <police> & officers " * 800
    big = sample_alert(priority="urgent", title=words, source=words, rule_title=words)
    message = slack_message(big, NOW, "@here")
    assert block_kit_violations({"text": message.text, "blocks": message.blocks}) == []
    assert message.text.startswith("<!here> Urgent: Canadian &lt;police&gt; &amp; officers")
    assert len(message.text) <= 4000


def test_an_urgent_overflow_keeps_to_fifty_blocks_with_its_lead() -> None:
    folded = tuple(
        Folded("word " * 60, f"https://news.example/{n}/" + "a" * 1950, (RULE,)) for n in range(100)
    )
    overflow = sample_alert(priority="urgent", folded=folded, folded_count=5000)
    message = slack_message(overflow, NOW, "@here")
    assert block_kit_violations({"text": message.text, "blocks": message.blocks}) == []
    assert len(message.blocks) == 50
    assert message.blocks[1]["text"]["text"] == "5000 more matches from RCMP news"
    assert message.blocks[-1]["elements"][0]["elements"][0]["text"] == "and 4954 more"


def test_console_and_email_text_mark_an_urgent_alert() -> None:
    text = text_message(sample_alert(priority="urgent"), NOW)
    assert text.startswith(f"[URGENT] {RULE}\nRCMP officers arrive in Baghdad\n")
    assert not text_message(sample_alert(), NOW).startswith("[URGENT]")


def test_an_urgent_email_says_so_in_its_subject_and_headers() -> None:
    urgent = mail(sample_alert(priority="urgent"))
    assert subject(urgent) == f"[urgent] [newswatch] {RULE}: RCMP officers arrive in Baghdad"
    assert (urgent["Importance"], urgent["X-Priority"]) == ("high", "1")
    assert body(urgent, "plain").startswith(f"[URGENT] {RULE}\n")
    assert f"<h3>[URGENT] {RULE}</h3>" in body(urgent, "html")
    normal = mail(sample_alert())
    assert subject(normal) == f"[newswatch] {RULE}: RCMP officers arrive in Baghdad"
    assert normal["Importance"] is None and normal["X-Priority"] is None


# --- held digests -----------------------------------------------------------------------


def held(why: str | None, n: int, **changes: Any) -> list[Alert]:
    return [
        sample_alert(item_key=f"guid-{i}", title=f"Item {i}", held=why, **changes) for i in range(n)
    ]


def test_a_digest_of_capped_alerts_is_an_n_more_alerts_message_listing_each() -> None:
    capped = held("cap", 3)
    (part,) = slack_digest(capped, NOW)
    assert part.message.text == f"3 more alerts (cap reached): {RULE} (3)"
    assert part.message.blocks[0]["text"]["text"] == "3 more alerts (cap reached)"
    assert part.message.blocks[1]["text"]["text"] == f"{RULE} (3)"
    links = [e for e in entities(part.message) if e.startswith("link:")]
    assert links == [ALERT_LINK] * 3  # every alert listed with its link
    assert text_digest(capped, NOW).startswith(
        f"3 more alerts (cap reached)\n{'=' * 27}\n\n{RULE} (3)\n"
    )
    message = mail(capped)
    assert subject(message) == f"[newswatch] 3 more alerts (cap reached): {RULE}"
    assert "<h2>3 more alerts (cap reached)</h2>" in body(message, "html")
    assert body(message, "plain").count("https://www.rcmp-grc.gc.ca/en/news/1") == 3


def test_a_digest_held_through_quiet_hours_says_so() -> None:
    quiet = held("quiet", 2)
    (part,) = slack_digest(quiet, NOW)
    assert part.message.text == f"2 alerts held during quiet hours: {RULE} (2)"
    assert part.message.blocks[0]["text"]["text"] == "2 alerts held during quiet hours"
    assert subject(mail(quiet)) == f"[newswatch] 2 alerts held during quiet hours: {RULE}"
    assert text_digest(quiet, NOW).startswith("2 alerts held during quiet hours\n")


@pytest.mark.parametrize("mix", [[None, None], ["cap", "quiet"], ["quiet", None]])
def test_any_other_digest_is_as_before(mix: list[str | None]) -> None:
    alerts = [replace(a, held=why) for a, why in zip(held(None, 2), mix, strict=True)]
    (part,) = slack_digest(alerts, NOW)
    assert part.message.text == f"newswatch digest: 2 alerts: {RULE} (2)"
    assert part.message.blocks[0]["text"]["text"] == f"{RULE} (2)"
    assert subject(mail(alerts)) == f"[newswatch] 2 alerts: {RULE}"
    assert text_digest(alerts, NOW).startswith(f"{RULE} (2)\n")


def test_one_held_alert_goes_as_its_own_alert_so_that_its_story_can_thread() -> None:
    (alone,) = held("cap", 1)
    assert subject(mail(alone)) == f"[newswatch] {RULE}: Item 0"
    stream = io.StringIO()
    ConsoleNotifier("out", stream=stream, clock=lambda: NOW).send([alone])
    assert stream.getvalue().startswith(f"{RULE}\nItem 0\n")


def test_the_console_titles_a_held_digest() -> None:
    stream = io.StringIO()
    ConsoleNotifier("out", stream=stream, clock=lambda: NOW).send(held("quiet", 2))
    out = stream.getvalue()
    assert out.startswith(f"2 alerts held during quiet hours\n\n{RULE}\nItem 0\n")
    assert out.count(f"\n\n{RULE}\n") == 2


def test_every_part_of_a_long_capped_digest_carries_the_title_and_splits_the_same_again() -> None:
    capped = held("cap", 120)
    parts = slack_digest(capped, NOW)
    assert len(parts) == 3
    for number, part in enumerate(parts, 1):
        payload = {"text": part.message.text, "blocks": part.message.blocks}
        assert block_kit_violations(payload) == []
        assert part.message.blocks[0]["text"]["text"] == "120 more alerts (cap reached)"
        assert part.message.text.startswith(f"120 more alerts (cap reached) (part {number}/3): ")
    assert sorted(i for p in parts for i in p.indexes) == list(range(120))
    # A retry of what was not yet sent splits into the same parts as before.
    rest = [capped[i] for p in parts[1:] for i in p.indexes]
    again = slack_digest(rest, NOW)
    assert [len(p.indexes) for p in again] == [len(p.indexes) for p in parts[1:]]


# --- spikes -----------------------------------------------------------------------------


def test_a_spike_says_what_the_spike_is_and_links_its_top_stories_in_slack() -> None:
    message = slack_message(spike(), NOW)
    heading = f"Spike: {RULE} — 12 stories in 6 hours (usually 2)"
    assert message.text == heading
    assert message.blocks[0]["text"]["text"] == heading
    intro = message.blocks[1]["elements"][0]["elements"]
    assert intro[0]["type"] == "date" and intro[0]["timestamp"] == int(NOW.timestamp())
    assert intro[1]["text"] == (
        " · the usual count is the median over the past 14 days · top stories, most reported first:"
    )
    (stories,) = message.blocks[2]["elements"]
    assert stories["type"] == "rich_text_list"
    assert [item["elements"] for item in stories["elements"]] == [
        [
            {
                "type": "link",
                "url": f"https://news.example/{n}",
                "text": f"Story {n}",
                "style": {"bold": True},
            }
        ]
        for n in range(3)
    ]
    assert message.blocks[3]["elements"][0]["elements"] == [{"type": "text", "text": "and 9 more"}]
    assert block_kit_violations({"text": message.text, "blocks": message.blocks}) == []


@pytest.mark.parametrize(
    ("count", "usual", "window", "said"),
    [
        (1, 0.0, 3600, "1 story in 1 hour (usually 0)"),
        (7, 2.5, 3 * 3600, "7 stories in 3 hours (usually 2.5)"),
        (500, 120.0, 48 * 3600, "500 stories in 48 hours (usually 120)"),
    ],
)
def test_a_spike_heading_counts_in_words(
    count: int, usual: float, window: float, said: str
) -> None:
    text = text_message(spike(count, usual, window), NOW)
    assert text.startswith(f"Spike: {RULE} — {said}\n")


def test_a_spike_in_plain_text_lists_each_story_and_its_link() -> None:
    assert text_message(spike(), NOW) == "\n".join(
        [
            f"Spike: {RULE} — 12 stories in 6 hours (usually 2)",
            "2024-05-01 15:00 UTC (just now) · the usual count is the median over the past"
            " 14 days · top stories, most reported first:",
            "",
            "- Story 0",
            "  https://news.example/0",
            "",
            "- Story 1",
            "  https://news.example/1",
            "",
            "- Story 2",
            "  https://news.example/2",
            "",
            "and 9 more",
        ]
    )


def test_an_urgent_spike_leads_with_the_mention_everywhere() -> None:
    urgent = spike(priority="urgent")
    message = slack_message(urgent, NOW, "@here")
    assert message.text == f"<!here> Urgent: Spike: {RULE} — 12 stories in 6 hours (usually 2)"
    assert message.blocks[0]["elements"][0]["elements"][0] == {"type": "broadcast", "range": "here"}
    assert text_message(urgent, NOW).startswith(f"[URGENT] Spike: {RULE} — 12 stories")
    assert subject(mail(urgent)) == (
        f"[urgent] [newswatch] Spike: {RULE} — 12 stories in 6 hours (usually 2)"
    )


def test_hostile_story_titles_in_a_spike_cannot_ping_or_inject() -> None:
    urgent = spike(titles=HOSTILE + " {n} <script>x</script>\r\nBcc: v@example.org", listed=10)
    urgent = replace(urgent, priority="urgent")
    message = slack_message(urgent, NOW, "@here")
    found = entities(message)
    assert [e for e in found if not e.startswith("link:")] == [
        "<!here>",
        "broadcast:{'type': 'broadcast', 'range': 'here'}",
    ]
    assert [e for e in found if e.startswith("link:")] == [
        f"link:https://news.example/{n}" for n in range(10)
    ]
    listed = [item["elements"][0]["text"] for item in message.blocks[3]["elements"][0]["elements"]]
    assert listed[4] == HOSTILE + " 4 <script>x</script> Bcc: v@example.org"
    parsed = mail(urgent)
    assert parsed["Bcc"] is None
    html = body(parsed, "html")
    assert "<script" not in html and "&lt;!channel&gt; @here" in html
    assert '<a href="https://news.example/4" rel="noopener noreferrer nofollow">' in html
    assert "\n- <!channel> @here <!here>" in body(parsed, "plain")


def test_a_spike_email_lists_the_stories_as_links() -> None:
    parsed = mail(spike())
    assert subject(parsed) == f"[newswatch] Spike: {RULE} — 12 stories in 6 hours (usually 2)"
    html = body(parsed, "html")
    assert f"<h3>Spike: {RULE} — 12 stories in 6 hours (usually 2)</h3>" in html
    assert html.count("<a href=") == 3 and "<p>and 9 more</p>" in html
    assert "Rules:" not in body(parsed, "plain")


def test_a_spike_held_through_quiet_hours_renders_inside_the_digest() -> None:
    quiet = [
        *held("quiet", 2),
        replace(spike(listed=10, titles="Story {n} " + "x" * 290), held="quiet"),
    ]
    (part,) = slack_digest(quiet, NOW)
    assert block_kit_violations({"text": part.message.text, "blocks": part.message.blocks}) == []
    assert part.message.blocks[0]["text"]["text"] == "3 alerts held during quiet hours"
    item = part.message.blocks[-1]["elements"]
    assert item[0]["elements"] == [
        {
            "type": "text",
            "text": f"Spike: {RULE} — 12 stories in 6 hours (usually 2)",
            "style": {"bold": True},
        }
    ]
    shown = len(item[1]["elements"])
    assert 1 <= shown < 10  # what fits of the list in the digest's block
    assert item[2]["elements"] == [{"type": "text", "text": f"and {12 - shown} more"}]
    text = text_digest(quiet, NOW)
    assert f"Spike: {RULE} — 12 stories in 6 hours (usually 2)\n\n- Story 0 " in text
    assert "  https://news.example/9\n\nand 2 more" in text
    html = body(mail(quiet), "html")
    assert html.count('<a href="https://news.example/') == 10
