"""Rendering: content, Slack escaping and limits, plain text, and email structure."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts.render import (
    SlackMessage,
    counted,
    email_message,
    fit,
    relative_time,
    slack_digest,
    slack_escape,
    slack_message,
    span,
    summary_section,
    text_message,
)
from bot.model import Alert, Folded, Summary
from tests.factories import NOW, sample_alert
from tests.peers.slack_emulator import block_kit_violations

HOSTILE = (
    "<!channel> <!here> <!everyone> <@U123> <#C456> <!subteam^S789> "
    "<https://evil.example|click me> *bold* _it_ ~strike~ `code` &amp; a & b"
)


def alert(**changes: Any) -> Alert:
    return sample_alert(
        **{
            "rule_id": "canada-police-iraq",
            "feed_id": "rcmp-news",
            "first_seen": NOW - timedelta(hours=2),
            "summary": Summary("Canadian police officers arrived in Iraq.", ((0, 15), (36, 40))),
            **changes,
        }
    )


def parsed_texts(message: SlackMessage) -> list[str]:
    """Every string Slack would parse for markup: the fallback, mrkdwn and plain_text objects."""
    found = [message.text]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") in ("mrkdwn", "plain_text"):
                found.append(value["text"])
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(message.blocks)
    return found


def elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline elements of a rich_text block, every section's in order."""
    out = []
    for container in block["elements"]:
        sections = container["elements"] if container["type"] == "rich_text_list" else [container]
        for section in sections:
            out += section["elements"]
    return out


def section_text(section: dict[str, Any]) -> str:
    return "".join(e.get("text") or e.get("fallback", "") for e in section["elements"])


def payload(message: SlackMessage) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks}


def assert_inert(message: SlackMessage) -> None:
    """Nothing is mrkdwn; what Slack parses (fallback, headers) holds only its three escapes;
    rich_text holds text, links, dates: no mention or broadcast element."""
    assert '"mrkdwn"' not in repr(message.blocks).replace("'", '"')
    for text in parsed_texts(message):
        assert "<" not in text and ">" not in text, text
        assert "&" not in re.sub(r"&(amp|lt|gt);", "", text), text
    for block in message.blocks:
        if block["type"] == "rich_text":
            assert {e["type"] for e in elements(block)} <= {"text", "link", "date"}


def test_slack_message_says_what_matched_where_and_when() -> None:
    message = slack_message(alert(terms_as_written=("Canadian police", "Iraq")), NOW)
    header, body, summary = message.blocks
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Canadian police mission in Iraq", "emoji": True},
    }
    title, meta = body["elements"]
    assert title["elements"] == [
        {
            "type": "link",
            "url": "https://www.rcmp-grc.gc.ca/en/news/1",
            "text": "RCMP officers arrive in Baghdad",
            "style": {"bold": True},
        }
    ]
    published = int((NOW - timedelta(hours=3)).timestamp())
    assert meta["elements"] == [
        {"type": "text", "text": "RCMP news"},
        {"type": "text", "text": " · "},
        {
            "type": "date",
            "timestamp": published,
            "format": "{date_short_pretty} {time}",
            "fallback": "2024-05-01 12:00 UTC",
        },
        {"type": "text", "text": " · Matched: "},
        {"type": "text", "text": "Canadian police", "style": {"bold": True}},
        {"type": "text", "text": ", "},
        {"type": "text", "text": "Iraq", "style": {"bold": True}},
    ]
    assert elements(summary) == [
        {"type": "text", "text": "Canadian police", "style": {"bold": True}},
        {"type": "text", "text": " officers arrived in "},
        {"type": "text", "text": "Iraq", "style": {"bold": True}},
        {"type": "text", "text": "."},
    ]
    assert "ago" not in repr(message)  # nothing frozen that goes stale
    assert "Canadian police mission in Iraq" in message.text
    assert not block_kit_violations(payload(message))


def test_undated_item_says_so_and_when_it_was_first_seen() -> None:
    message = slack_message(alert(published=None, also_reported_by=("CBC", "<!here>")), NOW)
    meta = message.blocks[1]["elements"][1]
    assert section_text(meta).startswith(
        "RCMP news · date unknown (first seen 2024-05-01 13:00 UTC) · Matched:"
    )
    assert meta["elements"][3]["timestamp"] == int((NOW - timedelta(hours=2)).timestamp())
    assert elements(message.blocks[-1]) == [
        {"type": "text", "text": "Also reported by: CBC, <!here>"}
    ]
    plain = text_message(alert(published=None), NOW)
    assert "Source: RCMP news · date unknown (first seen 2024-05-01 13:00 UTC, 2 h ago)" in plain


def test_feed_text_arrives_exactly_and_cannot_ping_or_forge_links() -> None:
    hostile = alert(
        title=HOSTILE,
        source=HOSTILE,
        rule_title=HOSTILE,
        summary=Summary(HOSTILE + " police", ((len(HOSTILE) + 1, len(HOSTILE) + 7),)),
        terms=("police", "<!channel>"),
        also_reported_by=(HOSTILE,),
    )
    message = slack_message(hostile, NOW)
    assert_inert(message)
    assert message.blocks[1]["elements"][0]["elements"][0]["text"] == HOSTILE
    assert section_text(message.blocks[2]["elements"][0]) == HOSTILE + " police"
    assert elements(message.blocks[2])[-1] == {
        "type": "text",
        "text": "police",
        "style": {"bold": True},
    }
    assert "&lt;!channel&gt;" in message.text and "*bold* _it_" in message.text
    for digest in slack_digest([hostile, hostile], NOW):
        assert_inert(digest.message)
        assert not block_kit_violations(payload(digest.message))


def test_copied_text_is_the_feed_text() -> None:
    """No look-alike characters: "1_200" is "1_200", "*" is "*", "`" is "`"."""
    text = "Casualties 1_200 *rising* `grid` ~down~ a&b"
    message = slack_message(alert(title=text, summary=Summary(text)), NOW)
    assert message.blocks[1]["elements"][0]["elements"][0]["text"] == text
    assert section_text(message.blocks[2]["elements"][0]) == text
    assert "1_200 *rising* `grid` ~down~ a&amp;b" in message.text


def test_links_are_http_only() -> None:
    for bad in ("javascript:alert(1)", "data:text/html,x", "ftp://x.org/a", "//x.org", ""):
        title = slack_message(alert(link=bad), NOW).blocks[1]["elements"][0]["elements"]
        assert title == [
            {"type": "text", "text": "RCMP officers arrive in Baghdad", "style": {"bold": True}}
        ]
    title = slack_message(alert(link="https://x.org/a?b=1&c=|x>y <z"), NOW).blocks[1]
    assert title["elements"][0]["elements"][0]["url"] == "https://x.org/a?b=1&c=%7Cx%3Ey%20%3Cz"


def test_huge_item_stays_within_block_kit_limits() -> None:
    words = ("Canadian police & <!here> *officers* " * 700).strip()  # ~25 KB
    big = alert(
        rule_title=words,
        title=words,
        source=words,
        summary=Summary(words, ((0, 15),)),
        terms=tuple(f"term{i}" for i in range(500)),
        also_reported_by=tuple(f"feed {i}" for i in range(500)),
        link="https://x.org/" + "a" * 5000,
    )
    message = slack_message(big, NOW)
    assert not block_kit_violations(payload(message))
    assert_inert(message)
    for text in parsed_texts(message):
        assert not re.search(r"&(a|am|l|g)?$", text)  # no escape cut in half
    digests = slack_digest([big] * 120, NOW)
    assert all(not block_kit_violations(payload(d.message)) for d in digests)


def test_an_overflow_lists_links_and_stays_within_limits() -> None:
    folded = tuple(
        Folded(f"Item {i} *x* <!here>", f"https://x.org/{i}", ("Rule A", "Rule B"))
        for i in range(2000)
    )
    message = slack_message(alert(folded=folded, folded_count=2500), NOW)
    assert not block_kit_violations(payload(message))
    assert_inert(message)
    first = elements(message.blocks[2])[:3]
    assert first == [
        {
            "type": "link",
            "url": "https://x.org/0",
            "text": "Item 0 *x* <!here>",
            "style": {"bold": True},
        },
        {"type": "text", "text": " · "},
        {"type": "text", "text": "Rule A, Rule B"},
    ]
    intro = message.blocks[1]["elements"][0]["elements"]
    seen = int((NOW - timedelta(hours=2)).timestamp())  # when the flood was seen
    assert intro[2]["type"] == "date" and intro[2]["timestamp"] == seen
    assert "date unknown" not in section_text(message.blocks[1]["elements"][0])
    listed = sum(len(b["elements"][0]["elements"]) for b in message.blocks[2:-1])
    assert section_text(message.blocks[-1]["elements"][0]) == f"and {2500 - listed} more"


def test_digest_groups_by_rule_and_splits_at_fifty_blocks() -> None:
    alerts = [
        alert(
            rule_id=f"rule-{i % 3}",
            rule_title=f"Rule {i % 3}",
            item_key=f"item-{i}",
            title=f"Item {i}",
        )
        for i in range(120)
    ]
    parts = slack_digest(alerts, NOW)
    messages = [p.message for p in parts]
    assert len(messages) > 1
    assert all(len(m.blocks) <= 50 for m in messages)
    assert all(not block_kit_violations(payload(m)) for m in messages)
    items = [
        b["elements"][0]["elements"][0]
        for m in messages
        for b in m.blocks
        if b["type"] == "rich_text"
    ]
    assert len(items) == 120
    assert items[0] == {
        "type": "link",
        "url": "https://www.rcmp-grc.gc.ca/en/news/1",
        "text": "Item 0",
        "style": {"bold": True},
    }
    headers = [b["text"]["text"] for b in messages[0].blocks if b["type"] == "header"]
    assert headers[0] == "Rule 0 (40)"
    order = [int(item["text"].split()[1]) % 3 for item in items]
    assert order == sorted(order)  # grouped by rule
    continued = [b for m in messages[1:] for b in m.blocks[:1]]
    assert all(b["type"] == "header" for b in continued)
    assert "(part 1/" in messages[0].text
    # Each part names the alerts it carries: every alert in exactly one part, in its order.
    carried = [alerts[i].title for p in parts for i in p.indexes]
    assert sorted(carried) == sorted(a.title for a in alerts) and len(carried) == 120
    assert [item["text"] for item in items] == carried


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from("ab1_*`~&<>!@#|: \u00e9\u0634"), min_size=1, max_size=400
    ),
    starts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
    limit=st.integers(min_value=2, max_value=500),
)
def test_rich_text_concatenates_back_to_exactly_the_cut_text(
    text: str, starts: list[int], limit: int
) -> None:
    """For any feed text, the summary is plain ``text`` runs (never mrkdwn, no mention)
    whose concatenation is exactly the text, or a prefix of it and an ellipsis."""
    text = " ".join(text.split())
    section = summary_section(Summary(text, tuple((s, s + 3) for s in starts)), limit)
    runs = section["elements"]
    assert all(set(e) <= {"type", "text", "style"} and e["type"] == "text" for e in runs)
    joined = "".join(e["text"] for e in runs)
    assert len(joined) <= limit
    if len(text) <= limit:
        assert joined == (text or "-")
    else:
        assert joined.endswith("…") and text.startswith(joined.removesuffix("…"))
    for run in runs:
        if run.get("style"):
            assert run["style"] == {"bold": True} and run["text"] in text


def test_relative_time() -> None:
    assert relative_time(NOW - timedelta(seconds=30), NOW) == "just now"
    assert relative_time(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert relative_time(NOW - timedelta(hours=3, minutes=59), NOW) == "3 h ago"
    assert relative_time(NOW - timedelta(days=3), NOW) == "3 d ago"
    assert relative_time(NOW + timedelta(minutes=10), NOW) == "in 10 min"
    assert relative_time(NOW + timedelta(seconds=30), NOW) == "in under a minute"


def test_span_rounds_down_to_one_unit() -> None:
    assert [span(s) for s in (1.9, 59, 60, 3599, 3600, 47 * 3600 + 59, 49 * 3600)] == [
        "1 s",
        "59 s",
        "1 min",
        "59 min",
        "1 h",
        "47 h",
        "2 d",
    ]
    assert relative_time(datetime(2024, 5, 1, 14), NOW) == "1 h ago"  # naive means UTC


def test_text_message_is_plain_and_free_of_terminal_escapes() -> None:
    text = text_message(
        alert(
            title="Title \x1b[2J\x1b]0;pwned\x07 end\r\nmore",
            terms_as_written=("Canadian police", "Iraq"),
        ),
        NOW,
    )
    assert text.splitlines()[:5] == [
        "Canadian police mission in Iraq",
        "Title [2J]0;pwned end more",
        "https://www.rcmp-grc.gc.ca/en/news/1",
        "Source: RCMP news · 2024-05-01 12:00 UTC (3 h ago)",
        "Matched: Canadian police, Iraq",
    ]
    assert text.endswith("*Canadian police* officers arrived in *Iraq*.")
    assert "\x1b" not in text and "\x07" not in text


def parsed(message: email.message.EmailMessage) -> email.message.EmailMessage:
    """What the receiving side sees: the message through bytes and back."""
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)


def test_email_structure_and_headers() -> None:
    message = parsed(
        email_message(alert(), NOW, sender="newswatch@example.org", recipients=["a@example.org"])
    )
    # Python's parser keeps the space of a header folded right after its name.
    assert message["Subject"].strip() == (
        "[newswatch] Canadian police mission in Iraq: RCMP officers arrive in Baghdad"
    )
    assert message["To"] == "a@example.org"
    assert message["From"] == "newswatch@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[0-9a-f]{32}@newswatch>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert rich.get_content_type() == "text/html"
    assert "*Canadian police* officers" in plain.get_content()
    assert "<strong>Canadian police</strong> officers" in rich.get_content()
    assert 'href="https://www.rcmp-grc.gc.ca/en/news/1"' in rich.get_content()


def test_message_id_is_stable_per_rule_destination_and_item() -> None:
    def message_id(a: Alert) -> str:
        return email_message(a, NOW, sender="s@x.org", recipients=["r@x.org"])["Message-ID"]

    assert message_id(alert()) == message_id(alert(title="edited", summary=Summary("x")))
    assert message_id(alert()) != message_id(alert(destination="other"))
    assert message_id(alert()) != message_id(alert(rule_id="other"))
    assert message_id(alert()) != message_id(alert(item_key="other"))


def test_email_header_injection_is_impossible() -> None:
    for title in ("A\r\nBcc: victim@example.org", "A\nX: y\n", "A\u2028B\u2029C\x85D\x00E\x0bF\n"):
        raw = email_message(alert(title=title), NOW, sender="s@x.org", recipients=["r@x.org"])
        message = parsed(raw)
        assert message["Bcc"] is None and message["X"] is None
        assert len(message.get_all("Subject")) == 1
        subject = message["Subject"]
        assert not re.search(r"[\r\n\x00-\x1f\x85\u2028\u2029]", subject), subject


def test_long_and_non_ascii_subjects() -> None:
    raw = email_message(
        alert(title="Sûreté du Québec — 警察 " * 100), NOW, sender="s@x.org", recipients=["r@x.org"]
    )
    subject = parsed(raw)["Subject"].strip()
    prefix = "[newswatch] Canadian police mission in Iraq: Sûreté du Québec — 警察"
    assert subject.startswith(prefix)
    assert len(subject) <= 200 and subject.endswith("…")
    assert all(len(line) <= 78 for line in raw.as_bytes().splitlines())


def test_email_html_is_sanitised() -> None:
    nasty = alert(
        title='<img src=x onerror=alert(1)>"><script>alert(2)</script>',
        summary=Summary('<script>alert(3)</script><iframe src="https://x"></iframe><form>'),
        link="javascript:alert(4)",
        source="<style>body{}</style>",
    )
    html = parsed(email_message(nasty, NOW, sender="s@x.org", recipients=["r@x.org"]))
    body = html.get_body(("html",)).get_content()
    assert not re.search(r"<(script|img|iframe|form|style)|javascript:|<[^>]* on\w+=", body, re.I)
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in body  # shown as text, not run


def test_email_digest_groups_by_rule() -> None:
    alerts = [
        alert(rule_id="b", rule_title="Rule B", item_key="1", title="One"),
        alert(rule_id="a", rule_title="Rule A", item_key="2", title="Two"),
        alert(rule_id="b", rule_title="Rule B", item_key="3", title="Three"),
    ]
    message = parsed(email_message(alerts, NOW, sender="s@x.org", recipients=["r@x.org"]))
    assert message["Subject"] == "[newswatch] 3 alerts: Rule B, Rule A"
    plain = message.get_body(("plain",)).get_content()
    assert plain.index("Rule B (2)") < plain.index("One") < plain.index("Three")
    assert plain.index("Three") < plain.index("Rule A (1)") < plain.index("Two")
    body = message.get_body(("html",)).get_content()
    assert body.index("<h2>Rule B (2)</h2>") < body.index("<h2>Rule A (1)</h2>")


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab &<>*_ \n"), max_size=300),
    limit=st.integers(min_value=2, max_value=120),
)
def test_fit_never_cuts_an_escape_or_exceeds_the_limit(text: str, limit: int) -> None:
    rendered = fit(text, limit, lambda prefix, cut: slack_escape(prefix + ("…" if cut else "")))
    assert len(rendered) <= limit
    assert "&" not in re.sub(r"&(amp|lt|gt);", "", rendered)


def test_counted_says_one_thing_or_many() -> None:
    assert counted(1, "destination") == "1 destination"
    assert counted(0, "feed") == "0 feeds"
    assert counted(2, "match", "matches") == "2 matches"
