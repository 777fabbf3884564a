"""The Slack notifier against the loopback Slack Web API emulator, through the real slack-sdk."""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.alerts.attention import spike_alert
from bot.config.schema import SlackDestination
from bot.errors import DeliveryError
from bot.model import Alert, Folded, Posted, QueuedAlert, SpikeFacts, Summary
from bot.notify import Attempt, build_notifier
from bot.notify.slack import ChannelLimiter, SlackNotifier
from bot.timing import DELIVERY_MAX_WAIT
from tests.factories import NOW, sample_alert, sample_sighting
from tests.peers.slack_emulator import TOKEN, Fault, SlackEmulator, block_kit_violations

HOSTILE = "<!channel> <!here> <!everyone> <@U123> <#C456> <!subteam^S1> <https://x.org|y> *a*"


alert = sample_alert
sighting = sample_sighting


def api(
    slack: SlackEmulator,
    token: str = TOKEN,
    channel: str = "#iraq",
    timeout: int = 30,
    *,
    paced: bool = True,
    mention: str | None = None,
) -> SlackNotifier:
    """A notifier posting with a token; ``paced=False`` for tests not about pacing."""
    destination = SlackDestination(
        type="slack", channel=channel, token=token, base_url=slack.base_url, mention=mention
    )
    limiter = None if paced else ChannelLimiter(0)
    return SlackNotifier(
        "iraq-desk", destination, clock=lambda: NOW, timeout=timeout, limiter=limiter
    )


def webhook(
    slack: SlackEmulator, timeout: int = 30, *, mention: str | None = None
) -> SlackNotifier:
    destination = SlackDestination(type="slack", webhook_url=slack.webhook_url, mention=mention)
    return SlackNotifier("hook", destination, clock=lambda: NOW, timeout=timeout)


def failure(
    notifier: SlackNotifier, alerts: list[Alert] | None = None, attempt: Attempt | None = None
) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        notifier.send(alerts or [alert()], attempt)
    return caught.value


def test_bot_token_posts_with_unfurling_off(slack: SlackEmulator) -> None:
    notifier = build_notifier(
        "iraq-desk",
        SlackDestination(type="slack", channel="#iraq", token=TOKEN, base_url=slack.base_url),
    )
    notifier.send([alert()])
    (posted,) = slack.wait_for(1)
    assert posted.via == "api" and posted.channel == "#iraq"
    assert posted.payload["unfurl_links"] is False and posted.payload["unfurl_media"] is False
    assert posted.blocks[0]["text"]["text"] == "Canadian police mission in Iraq"
    assert "Canadian police mission in Iraq" in posted.text
    path, headers = slack.requests[0]
    assert path == "/api/chat.postMessage"
    assert headers["Authorization"] == f"Bearer {TOKEN}"


def test_webhook_posts_with_unfurling_off(slack: SlackEmulator) -> None:
    webhook(slack).send([alert()])
    (posted,) = slack.wait_for(1)
    assert posted.via == "webhook"
    assert posted.payload["unfurl_links"] is False and posted.payload["unfurl_media"] is False
    assert posted.payload["mrkdwn"] is False
    assert posted.entities == ["link:https://www.rcmp-grc.gc.ca/en/news/1"]


@pytest.mark.parametrize("make", [api, webhook])
def test_rate_limited_is_retryable_with_retry_after(slack: SlackEmulator, make: Any) -> None:
    slack.fail_next(Fault("ratelimited", retry_after=7))
    error = failure(make(slack))
    assert (error.code, error.retryable, error.retry_after) == ("ratelimited", True, 7.0)
    assert slack.messages == []


@pytest.mark.parametrize("retry_after", [10**12, 10**400])
@pytest.mark.parametrize("make", [api, webhook])
def test_an_absurd_retry_after_is_capped_and_fails_later_sends_instead_of_sleeping(
    slack: SlackEmulator, make: Any, retry_after: int
) -> None:
    notifier = make(slack)
    slack.fail_next(Fault("ratelimited", retry_after=retry_after))
    error = failure(notifier)
    assert (error.code, error.retry_after) == ("ratelimited", DELIVERY_MAX_WAIT)
    # The channel is paused a day: the next send fails at once (the outbox reschedules
    # it) rather than a delivery thread sleeping through the day and through shutdown.
    paused = failure(notifier)
    assert paused.code == "ratelimited" and paused.retryable
    assert DELIVERY_MAX_WAIT - 60 < paused.retry_after <= DELIVERY_MAX_WAIT
    assert len(slack.requests) == 1


@pytest.mark.parametrize("make", [api, webhook])
def test_server_errors_are_retryable(slack: SlackEmulator, make: Any) -> None:
    slack.fail_next(Fault("server_error", status=503))
    error = failure(make(slack))
    assert (error.code, error.retryable) == ("http_503", True)


@pytest.mark.parametrize("make", [api, webhook])
def test_disconnect_is_retryable_and_not_resent_by_slack_sdk(
    slack: SlackEmulator, make: Any
) -> None:
    slack.fail_next(Fault("disconnect"))
    error = failure(make(slack))
    assert (error.code, error.retryable, error.maybe_delivered) == ("connection", True, True)
    # slack-sdk's default retry handlers would post again at once, behind the outbox's back.
    assert len(slack.requests) == 1


def test_connection_refused_is_retryable_and_surely_not_delivered(slack: SlackEmulator) -> None:
    notifier = api(slack)
    slack.close()
    error = failure(notifier)
    assert (error.code, error.retryable, error.maybe_delivered) == ("connection", True, False)


@pytest.mark.parametrize("code", ["channel_not_found", "invalid_blocks", "not_in_channel"])
def test_ok_false_is_not_retryable(slack: SlackEmulator, code: str) -> None:
    slack.fail_next(Fault("error", code=code))
    error = failure(api(slack))
    assert (error.code, error.retryable) == (code, False)


def test_webhook_refusal_is_not_retryable(slack: SlackEmulator) -> None:
    slack.fail_next(Fault("error", code="no_service"))
    error = failure(webhook(slack))
    assert (error.code, error.retryable) == ("no_service", False)


def test_a_wrong_token_is_invalid_auth_and_never_shown(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "xoxb-wrong-secret-token"
    notifier = api(slack, token=secret)
    error = failure(notifier)
    assert (error.code, error.retryable) == ("invalid_auth", False)
    assert secret not in f"{error!s} {error!r} {error.detail} {notifier!r}"
    assert secret not in caplog.text


def test_webhook_url_never_appears_in_errors_logs_or_repr(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = webhook(slack)
    notifier.send([alert()])
    for fault in (Fault("disconnect"), Fault("server_error"), Fault("error", code="no_service")):
        slack.fail_next(fault)
        error = failure(notifier)
        assert "emulatorsecret" not in f"{error!s} {error!r} {error.detail}"
    assert "emulatorsecret" not in repr(notifier) + caplog.text
    destination = SlackDestination(type="slack", webhook_url=slack.webhook_url)
    assert "emulatorsecret" not in repr(destination)


def test_hostile_feed_text_cannot_ping(slack: SlackEmulator) -> None:
    hostile = alert(
        title=HOSTILE, source=HOSTILE, summary=Summary(HOSTILE), also_reported_by=(HOSTILE,)
    )
    notifier = api(slack)
    notifier.send([hostile])
    notifier.send([hostile, replace(hostile, rule_id="other", rule_title=HOSTILE)])
    link = "link:https://www.rcmp-grc.gc.ca/en/news/1"
    single, digest = slack.wait_for(2)
    assert single.entities == [link] and digest.entities == [link, link]  # the bot's own
    for posted in (single, digest):
        assert "&lt;!channel&gt;" in posted.text and posted.payload["mrkdwn"] is False


@pytest.mark.parametrize("make", [api, webhook])
def test_feed_text_arrives_as_rich_text_with_its_exact_characters(
    slack: SlackEmulator, make: Any
) -> None:
    """ "1_200" stays "1_200" (no look-alikes), and nothing in it pings or links."""
    text = "Toll 1_200 *bold* <!channel> <@U123> <http://evil.example|trusted> `x` a&b"
    make(slack).send([alert(title=text, source=text, summary=Summary(text, ((5, 10),)), link=None)])
    (posted,) = slack.wait_for(1)
    assert not block_kit_violations(posted.payload)
    assert posted.entities == []
    assert posted.rich_texts()[0] == text
    assert posted.rich_texts()[1].startswith(text + " · ")
    assert posted.rich_texts()[2] == text
    summary = posted.blocks[2]["elements"][0]["elements"]
    assert summary[1] == {"type": "text", "text": "1_200", "style": {"bold": True}}
    assert {block["type"] for block in posted.blocks} == {"header", "rich_text"}


def _rich(*elements: dict[str, Any], kind: str = "rich_text_section") -> dict[str, Any]:
    return {"type": "rich_text", "elements": [{"type": kind, "elements": list(elements)}]}


@pytest.mark.parametrize(
    "bad",
    [
        _rich(),
        _rich({"type": "text", "text": "x"}, kind="section"),
        _rich({"type": "text"}),
        _rich({"type": "link", "text": "x"}),
        _rich({"type": "link", "url": "javascript:alert(1)"}),
        _rich({"type": "date", "timestamp": "soon", "format": "{time}"}),
        _rich({"type": "text", "text": "x", "style": {"bold": "yes"}}),
        _rich({"type": "broadcast", "range": "everybody"}),
        _rich({"type": "usergroup"}),
        _rich({"type": "user", "user_id": ""}),
        _rich({"type": "channel", "channel_id": "C0123ABCD"}),
        _rich({"type": "text", "text": "x"}, kind="rich_text_list"),
        _rich({"type": "text", "text": "x" * 3001}),
    ],
)
def test_a_malformed_rich_text_block_is_refused_as_slack_would(
    slack: SlackEmulator, bad: dict[str, Any]
) -> None:
    """The emulator checks rich_text shapes, so a renderer that makes a bad one fails here."""
    client = WebClient(token=TOKEN, base_url=slack.base_url)
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="#iraq", text="x", blocks=[bad])
    assert refused.value.response["error"] == "invalid_blocks"
    assert slack.messages == []


def test_a_20_kb_item_stays_within_limits(slack: SlackEmulator) -> None:
    words = "Canadian police & officers <b>in</b> Iraq " * 500
    big = alert(title=words, source=words, rule_title=words, summary=Summary(words, ((0, 15),)))
    notifier = api(slack)
    notifier.send([big])
    notifier.send([big] * 60)  # a digest, split into messages of at most 50 blocks
    posted = slack.wait_for(3)
    assert len(posted) >= 3
    assert all(not block_kit_violations(p.payload) for p in posted)


def test_at_most_one_message_per_second_per_channel(slack: SlackEmulator) -> None:
    notifier = api(slack)
    second = api(slack)  # another destination posting to the same channel shares the limit
    threads = [
        threading.Thread(target=n.send, args=([alert(item_key=str(i))],))
        for i, n in enumerate([notifier, notifier, second, notifier])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrivals = sorted(p.at for p in slack.wait_for(4))
    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.95, gaps


def test_other_channels_are_not_slowed_down(slack: SlackEmulator) -> None:
    api(slack, channel="#a").send([alert()])
    api(slack, channel="#b").send([alert()])
    first, second = slack.wait_for(2)
    assert second.at - first.at < 0.9


def test_each_digest_part_reports_its_rows_as_it_lands(slack: SlackEmulator) -> None:
    class FailSecondPost(ChannelLimiter):
        calls = 0

        def wait(self) -> None:
            self.calls += 1
            if self.calls == 2:
                slack.fail_next(Fault("server_error"))

    alerts = [alert(item_key=str(i), title=f"Item {i}") for i in range(60)]
    ids = tuple(range(100, 160))
    destination = SlackDestination(type="slack", channel="#c", token=TOKEN, base_url=slack.base_url)
    notifier = SlackNotifier("d", destination, limiter=FailSecondPost(0), clock=lambda: NOW)
    landed: list[list[int]] = []
    with pytest.raises(DeliveryError) as failed:
        notifier.send(alerts, Attempt(ids, part_sent=lambda rows: landed.append(list(rows))))
    assert failed.value.retryable  # part 1 delivered, part 2 failed
    assert landed == [list(ids[:49])]  # so only the rows of part 2 are sent again
    (posted,) = slack.messages
    assert posted.text.startswith("newswatch digest (part 1/2)")
    assert posted.metadata is not None
    assert posted.metadata["event_payload"]["outbox_ids"] == list(ids[:49])


MENTIONS = [
    ("@here", "<!here>", {"type": "broadcast", "range": "here"}),
    ("@channel", "<!channel>", {"type": "broadcast", "range": "channel"}),
    (
        "<!subteam^S0123ABC>",
        "<!subteam^S0123ABC>",
        {"type": "usergroup", "usergroup_id": "S0123ABC"},
    ),
    ("<@U0123ABC>", "<@U0123ABC>", {"type": "user", "user_id": "U0123ABC"}),
]


@pytest.mark.parametrize("make", [api, webhook])
@pytest.mark.parametrize(("mention", "syntax", "element"), MENTIONS)
def test_an_urgent_alert_notifies_the_configured_mention_and_no_one_feed_text_names(
    slack: SlackEmulator, make: Any, mention: str, syntax: str, element: dict[str, str]
) -> None:
    hostile = alert(priority="urgent", title=HOSTILE, source=HOSTILE, summary=Summary(HOSTILE))
    make(slack, mention=mention).send([hostile])
    (posted,) = slack.wait_for(1)
    assert not block_kit_violations(posted.payload)
    assert posted.blocks[0]["elements"][0]["elements"] == [
        element,
        {"type": "text", "text": " "},
        {"type": "text", "text": "Urgent", "style": {"bold": True}},
    ]
    assert posted.text.startswith(
        f"{syntax} Urgent: Canadian police mission in Iraq: &lt;!channel&gt;"
    )
    assert posted.entities == [
        syntax,  # the fallback's, for the notification
        f"{element['type']}:{element}",  # the message's own
        "link:https://www.rcmp-grc.gc.ca/en/news/1",
    ]


def test_the_mention_is_configured_in_the_settings_and_only_urgent_alerts_carry_it(
    slack: SlackEmulator,
) -> None:
    settings = {"type": "slack", "channel": "#iraq", "token": TOKEN, "base_url": slack.base_url}
    notifier = build_notifier(
        "iraq-desk", SlackDestination.model_validate({**settings, "mention": "@here"})
    )
    notifier.send([alert()])
    notifier.send([alert(item_key="2", priority="digest"), alert(item_key="3")])
    notifier.send([alert(item_key="4", priority="urgent")])
    normal, digest, urgent = slack.wait_for(3)
    assert [e for e in normal.entities + digest.entities if not e.startswith("link:")] == []
    assert [e for e in urgent.entities if not e.startswith("link:")] == [
        "<!here>",
        "broadcast:{'type': 'broadcast', 'range': 'here'}",
    ]


@pytest.mark.parametrize("make", [api, webhook])
def test_a_spike_lists_its_top_stories_and_hostile_titles_cannot_ping(
    slack: SlackEmulator, make: Any
) -> None:
    top = [Folded(f"{HOSTILE} {n}", f"https://news.example/{n}", ()) for n in range(10)]
    template = QueuedAlert(alert(priority="urgent"), NOW)
    spike = spike_alert(template, SpikeFacts(14, 3.0, 6 * 3600), top).alert
    make(slack, mention="<!subteam^S0123ABC>").send([spike])
    (posted,) = slack.wait_for(1)
    assert not block_kit_violations(posted.payload)
    assert posted.text == (
        "<!subteam^S0123ABC> Urgent: Spike: Canadian police mission in Iraq"
        " — 14 stories in 6 hours (usually 3)"
    )
    assert posted.entities == [
        "<!subteam^S0123ABC>",
        "usergroup:{'type': 'usergroup', 'usergroup_id': 'S0123ABC'}",
        *(f"link:https://news.example/{n}" for n in range(10)),
    ]
    assert f"{HOSTILE} 3" in posted.rich_texts()
    assert posted.rich_texts()[-1] == "and 4 more"


def test_capped_alerts_go_out_as_one_n_more_message_listing_every_one(
    slack: SlackEmulator,
) -> None:
    capped = [
        alert(item_key=str(i), title=f"Item {i}", link=f"https://news.example/{i}", held="cap")
        for i in range(12)
    ]
    api(slack, mention="@here").send(capped, Attempt(tuple(range(12))))
    (posted,) = slack.wait_for(1)
    assert not block_kit_violations(posted.payload)
    assert posted.text == "12 more alerts (cap reached): Canadian police mission in Iraq (12)"
    assert posted.blocks[0]["text"]["text"] == "12 more alerts (cap reached)"
    assert posted.entities == [f"link:https://news.example/{i}" for i in range(12)]


def test_send_notice(slack: SlackEmulator) -> None:
    api(slack).send_notice("Feed rcmp is failing", "timeout since <!here> 24 h")
    (posted,) = slack.wait_for(1)
    assert posted.blocks[0]["text"]["text"] == "Feed rcmp is failing"
    assert posted.rich_texts() == ["timeout since <!here> 24 h"]
    assert posted.entities == []


def test_channel_limiter_reserves_slots_and_honours_retry_after() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    limiter = ChannelLimiter(clock=lambda: now[0], sleep=sleep)
    limiter.wait()
    limiter.wait()
    limiter.wait()
    assert sleeps == [1.0, 2.0]
    now[0] = 110.0
    limiter.defer(8)
    limiter.wait()
    assert sleeps[-1] == 8.0
    limiter.defer(30)  # past MAX_PACING_WAIT: the send fails for the outbox to reschedule
    with pytest.raises(DeliveryError) as caught:
        limiter.wait()
    assert (caught.value.code, caught.value.retry_after) == ("ratelimited", 30.0)
    assert sleeps[-1] == 8.0


def _lost_answer(slack: SlackEmulator, notifier: SlackNotifier, ids: tuple[int, ...]) -> datetime:
    """One post whose message arrives but whose answer never comes; returns when it started."""
    started = datetime.now(UTC)
    before = len(slack.messages)
    slack.fail_next(Fault("lost_answer"))
    error = failure(notifier, attempt=Attempt(ids))
    assert (error.code, error.retryable, error.maybe_delivered) == ("timeout", True, True)
    assert len(slack.messages) == before + 1
    return started


@pytest.mark.parametrize("channel", ["id", "name"])
def test_a_post_whose_answer_was_lost_is_found_in_the_history_not_posted_twice(
    slack: SlackEmulator, channel: str
) -> None:
    notifier = api(
        slack, channel=slack.channel_id("#iraq") if channel == "id" else "#iraq", timeout=1
    )
    if channel == "name":  # a first post tells the channel's ID
        notifier.send([alert(item_key="earlier")], Attempt((6,)))
    started = _lost_answer(slack, notifier, (7,))
    notifier.send([alert()], Attempt((7,), check_since=started))
    posted = slack.in_channel("#iraq")
    assert len(posted) == (1 if channel == "id" else 2)  # the lost one, not posted again
    assert posted[-1].metadata == {
        "event_type": "newswatch_alert",
        "event_payload": {"outbox_ids": [7], "hash": posted[-1].metadata["event_payload"]["hash"]},
    }
    (history,) = slack.history_requests()
    assert history["include_all_metadata"] == "1"
    assert float(history["oldest"]) < started.timestamp()
    # Another alert, or the same rows' alert changed, is not mistaken for it.
    notifier.send([alert(item_key="other")], Attempt((7,), check_since=started))
    notifier.send([alert()], Attempt((8,), check_since=started))
    assert len(slack.in_channel("#iraq")) == len(posted) + 2


def test_the_history_is_searched_page_by_page_from_the_first_attempt(
    slack: SlackEmulator,
) -> None:
    notifier = api(slack, channel=slack.channel_id("#iraq"), timeout=1)
    started = _lost_answer(slack, notifier, (7,))
    for n in range(450):  # a busy channel: the lost message is on the third page
        slack.post_directly("#iraq", f"chatter {n}")
    notifier.send([alert()], Attempt((7,), check_since=started))
    assert len(slack.in_channel("#iraq")) == 451
    pages = slack.history_requests()
    assert len(pages) == 3 and [p.get("cursor") for p in pages][1:] == ["200", "400"]
    # Searching from long after the first attempt would not find it: posted again.
    notifier.send([alert()], Attempt((7,), check_since=datetime.now(UTC) + timedelta(hours=1)))
    assert len(slack.in_channel("#iraq")) == 452


def test_without_the_history_scope_a_lost_answer_means_a_repeat_said_once(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    slack.history_error = "missing_scope"
    notifier = api(slack, channel=slack.channel_id("#iraq"), timeout=1)
    started = _lost_answer(slack, notifier, (7,))
    with caplog.at_level(logging.WARNING, logger="newswatch.notify.slack"):
        notifier.send([alert()], Attempt((7,), check_since=started))
        notifier.send([alert(item_key="b")], Attempt((8,), check_since=started))
    assert len(slack.in_channel("#iraq")) == 3  # at-least-once: the lost one twice
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "missing_scope" in warning.getMessage() and "channels:history" in warning.getMessage()
    assert len(slack.history_requests()) == 1  # known to fail: not asked again


def test_a_webhook_cannot_look_and_posts_a_lost_answer_again(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = webhook(slack, timeout=1)
    started = _lost_answer(slack, notifier, (7,))
    with caplog.at_level(logging.WARNING, logger="newswatch.notify.slack"):
        notifier.send([alert()], Attempt((7,), check_since=started))
    assert len(slack.messages) == 2
    assert "webhook" in caplog.text


# --- the story thread ------------------------------------------------------------------


def _parent(slack: SlackEmulator, notifier: SlackNotifier) -> tuple[Alert, Posted]:
    """A story's alert, posted; where it landed."""
    parent = alert()
    posted = notifier.send([parent], Attempt((1,)))
    assert posted is not None
    return parent, posted


def test_a_single_alert_sent_with_a_token_says_where_it_landed(slack: SlackEmulator) -> None:
    notifier = api(slack)  # a channel name: Slack's answer names the channel's ID
    posted = notifier.send([alert()])
    (message,) = slack.wait_for(1)
    assert posted == Posted(slack.channel_id("#iraq"), message.ts)
    assert notifier.threads
    assert notifier.send([alert(item_key="a"), alert(item_key="b")]) is None  # a digest
    hook = webhook(slack)
    assert not hook.threads and hook.send([alert()]) is None


def test_later_sightings_reply_in_the_thread_and_the_alert_counts_the_outlets(
    slack: SlackEmulator,
) -> None:
    notifier = api(slack, paced=False)
    parent, posted = _parent(slack, notifier)
    for outlets, source in enumerate(["CBC News", "Reuters"], 2):
        later = sighting(source=source, title=f"{source} headline", outlets=outlets)
        notifier.send_sighting(later, parent, posted, Attempt((outlets,)))
    (top,) = slack.top_level("#iraq")
    replies = slack.replies(posted.ts)
    assert [r.rich_texts() for r in replies] == [
        ["CBC News · CBC News headline · 2024-05-01 14:00 UTC"],
        ["Reuters · Reuters headline · 2024-05-01 14:00 UTC"],
    ]
    assert [r.metadata["event_payload"]["outbox_ids"] for r in replies if r.metadata] == [[2], [3]]
    assert [r.entities for r in replies] == [
        ["link:https://www.cbc.ca/news/world/rcmp-iraq-1.123"]
    ] * 2
    assert all(not block_kit_violations(r.payload) for r in replies)
    # The alert was edited twice, the count growing, its text otherwise unchanged.
    assert len(top.edits) == 2
    assert top.rich_texts()[:3] == [
        "RCMP officers arrive in Baghdad",
        "RCMP news · 2024-05-01 12:00 UTC · Matched: canadian police, iraq",
        "Reported by 3 outlets",
    ]
    assert "reported by 3 outlets" in top.text
    assert "Reported by 2 outlets" in "".join(
        e.get("text", "") for b in top.edits[1]["blocks"] for e in _elements(b)
    )
    assert top.metadata is not None  # the edit keeps the alert findable
    # Each edit comes before its reply: a failed edit leaves nothing posted.
    methods = [method for method, _ in slack.calls]
    assert methods == ["chat.postMessage"] + ["chat.update", "chat.postMessage"] * 2
    assert {c["ts"] for c in slack.calls_to("chat.update")} == {posted.ts}


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for section in block.get("elements", []) for e in section.get("elements", [])]


def test_a_follow_up_reply_is_flagged_in_bold(slack: SlackEmulator) -> None:
    notifier = api(slack, paced=False)
    parent, posted = _parent(slack, notifier)
    later = sighting(follow_up="new term: suspended", title="RCMP mission suspended")
    notifier.send_sighting(later, parent, posted)
    (reply,) = slack.replies(posted.ts)
    assert reply.rich_texts() == [
        "Follow-up: new term: suspended · CBC News · RCMP mission suspended · 2024-05-01 14:00 UTC"
    ]
    flag = reply.blocks[0]["elements"][0]["elements"][0]
    assert flag == {
        "type": "text",
        "text": "Follow-up: new term: suspended",
        "style": {"bold": True},
    }
    assert reply.text.startswith("Follow-up: new term: suspended · CBC News: RCMP mission")


def test_hostile_sighting_text_arrives_exactly_and_cannot_ping(slack: SlackEmulator) -> None:
    notifier = api(slack, paced=False)
    parent, posted = _parent(slack, notifier)
    notifier.send_sighting(
        sighting(title=HOSTILE, source=HOSTILE, follow_up=HOSTILE, link=None), parent, posted
    )
    (reply,) = slack.replies(posted.ts)
    assert reply.entities == []
    assert reply.rich_texts()[0].startswith(f"Follow-up: {HOSTILE} · {HOSTILE} · {HOSTILE} · ")
    assert "&lt;!channel&gt;" in reply.text and reply.payload["mrkdwn"] is False


def test_a_reply_whose_answer_was_lost_is_found_in_the_thread_not_posted_twice(
    slack: SlackEmulator,
) -> None:
    notifier = api(slack, channel=slack.channel_id("#iraq"), timeout=1, paced=False)
    parent, posted = _parent(slack, notifier)
    started = datetime.now(UTC)
    slack.fail_next(Fault("lost_answer", method="chat.postMessage"))
    with pytest.raises(DeliveryError) as lost:
        notifier.send_sighting(sighting(), parent, posted, Attempt((2,)))
    assert (lost.value.code, lost.value.maybe_delivered) == ("timeout", True)
    assert len(slack.replies(posted.ts)) == 1
    notifier.send_sighting(sighting(), parent, posted, Attempt((2,), check_since=started))
    assert len(slack.replies(posted.ts)) == 1  # found in the thread: not posted again
    (top,) = slack.top_level("#iraq")
    assert len(top.edits) == 1  # nor edited again: the edit came before the reply
    (replies,) = slack.calls_to("conversations.replies")
    assert replies["ts"] == posted.ts and replies["include_all_metadata"] == "1"
    assert float(replies["oldest"]) < started.timestamp()
    # The history shows top-level messages only: the reply is not mistaken for an alert.
    assert notifier.send([parent], Attempt((2,), check_since=started)) is not None
    assert len(slack.top_level("#iraq")) == 2
    # Another sighting's row is another reply.
    notifier.send_sighting(sighting(), parent, posted, Attempt((3,), check_since=started))
    assert len(slack.replies(posted.ts)) == 2


def test_a_busy_thread_is_searched_page_by_page(slack: SlackEmulator) -> None:
    notifier = api(slack, channel=slack.channel_id("#iraq"), timeout=1, paced=False)
    parent, posted = _parent(slack, notifier)
    started = datetime.now(UTC)
    for n in range(250):  # people discuss the story in its thread first
        slack.post_directly("#iraq", f"comment {n}", thread_ts=posted.ts)
    slack.fail_next(Fault("lost_answer", method="chat.postMessage"))
    with pytest.raises(DeliveryError):
        notifier.send_sighting(sighting(), parent, posted, Attempt((2,)))
    notifier.send_sighting(sighting(), parent, posted, Attempt((2,), check_since=started))
    assert len(slack.replies(posted.ts)) == 251
    pages = slack.calls_to("conversations.replies")
    assert [p.get("cursor") for p in pages] == [None, "200"]


def test_an_edit_that_fails_posts_no_reply_and_the_retry_does_both_once(
    slack: SlackEmulator,
) -> None:
    notifier = api(slack, paced=False)
    parent, posted = _parent(slack, notifier)
    slack.fail_next(Fault("server_error", method="chat.update"))
    with pytest.raises(DeliveryError) as failed:
        notifier.send_sighting(sighting(), parent, posted, Attempt((2,)))
    assert failed.value.retryable
    assert slack.replies(posted.ts) == []
    notifier.send_sighting(sighting(), parent, posted, Attempt((2,)))
    assert len(slack.replies(posted.ts)) == 1
    (top,) = slack.top_level("#iraq")
    assert len(top.edits) == 1


def test_an_edit_slack_refuses_for_good_does_not_hold_back_the_reply(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = api(slack, paced=False)
    parent, posted = _parent(slack, notifier)
    slack.fail_next(Fault("error", code="cant_update_message", method="chat.update"))
    with caplog.at_level(logging.WARNING, logger="newswatch.notify.slack"):
        notifier.send_sighting(sighting(), parent, posted, Attempt((2,)))
    assert len(slack.replies(posted.ts)) == 1
    assert "cant_update_message" in caplog.text


def test_an_alert_whose_answer_was_lost_is_found_with_its_ts_so_its_thread_is_kept(
    slack: SlackEmulator,
) -> None:
    notifier = api(slack, channel=slack.channel_id("#iraq"), timeout=1, paced=False)
    started = _lost_answer(slack, notifier, (7,))
    posted = notifier.send([alert()], Attempt((7,), check_since=started))
    (top,) = slack.top_level("#iraq")
    assert posted == Posted(top.channel_id or "", top.ts)
    notifier.send_sighting(sighting(), alert(), posted, Attempt((8,)))
    assert len(slack.replies(top.ts)) == 1 and len(top.edits) == 1


def test_without_the_history_scope_a_lost_reply_is_posted_again_said_once(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = api(slack, channel=slack.channel_id("#iraq"), timeout=1, paced=False)
    parent, posted = _parent(slack, notifier)
    slack.history_error = "missing_scope"
    started = datetime.now(UTC)
    slack.fail_next(Fault("lost_answer", method="chat.postMessage"))
    with pytest.raises(DeliveryError):
        notifier.send_sighting(sighting(), parent, posted, Attempt((2,)))
    with caplog.at_level(logging.WARNING, logger="newswatch.notify.slack"):
        notifier.send_sighting(sighting(), parent, posted, Attempt((2,), check_since=started))
    assert len(slack.replies(posted.ts)) == 2  # at-least-once
    assert "conversations.replies" in caplog.text and "channels:history" in caplog.text


@pytest.mark.parametrize("make", [webhook, api])
def test_without_a_thread_a_follow_up_is_its_own_message_and_a_sighting_is_not_posted(
    slack: SlackEmulator, make: Any
) -> None:
    """A webhook cannot thread; an alert posted in a digest has no thread of its own."""
    notifier = make(slack)
    parent = alert()
    notifier.send_sighting(sighting(), parent, None, Attempt((2,)))
    assert slack.messages == []
    notifier.send_sighting(sighting(follow_up="after a gap of 30 h"), parent, None, Attempt((3,)))
    (posted,) = slack.wait_for(1)
    assert posted.thread_ts is None
    assert posted.blocks[0]["text"]["text"] == "Canadian police mission in Iraq"
    assert posted.rich_texts() == [
        "Follow-up: after a gap of 30 h",
        "Canadian police to train Iraqi officers",
        "CBC News · 2024-05-01 14:00 UTC · Matched: Canadian police, Iraq",
        "Reported by 2 outlets",
        "Earlier: RCMP officers arrive in Baghdad",
    ]
    assert posted.text.startswith("Follow-up: after a gap of 30 h · CBC News: Canadian police")
    assert not block_kit_violations(posted.payload)


def test_a_digest_lists_later_sightings_after_its_alerts(slack: SlackEmulator) -> None:
    sightings = [sighting(follow_up="new term: suspended"), sighting(source="Reuters")]
    alerts = [alert(), alert(item_key="b", title="Second story")]
    api(slack, paced=False).send(alerts, Attempt((1, 2, 3, 4)), sightings)
    (posted,) = slack.wait_for(1)
    headers = [b["text"]["text"] for b in posted.blocks if b["type"] == "header"]
    assert headers == ["Canadian police mission in Iraq (2)", "Follow-ups (1)", "Also reported (1)"]
    texts = posted.rich_texts()
    assert texts[-2].startswith("Follow-up: new term: suspended · CBC News · Canadian police")
    assert texts[-1].startswith("Reuters · Canadian police to train Iraqi officers · ")
    assert posted.metadata is not None
    assert posted.metadata["event_payload"]["outbox_ids"] == [1, 2, 3, 4]
    assert "2 later reports of earlier stories" in posted.text


def test_a_long_digest_with_sightings_splits_into_parts_each_row_in_one(
    slack: SlackEmulator,
) -> None:
    words = "Canadian police & officers in Iraq " * 20
    alerts = [alert(item_key=str(i), title=f"Item {i}") for i in range(60)]
    sightings = [sighting(title=f"{words} {i}", story_title=words) for i in range(300)]
    ids = tuple(range(1000, 1360))
    landed: list[int] = []
    api(slack, paced=False).send(alerts, Attempt(ids, part_sent=landed.extend), sightings)
    parts = slack.messages
    assert len(parts) > 2
    assert all(not block_kit_violations(p.payload) for p in parts)
    assert sorted(landed) == list(ids) and len(landed) == len(ids)
    assert [
        i for p in parts if p.metadata for i in p.metadata["event_payload"]["outbox_ids"]
    ] == list(ids)
