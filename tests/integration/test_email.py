"""The email notifier against a real loopback SMTP server (aiosmtpd): TLS, auth, errors, content."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from bot.config.schema import EmailDestination
from bot.errors import DeliveryError
from bot.model import Alert, Sighting, Summary
from bot.notify import build_notifier
from bot.notify.email import EmailNotifier
from tests.factories import NOW, sample_alert, sample_sighting
from tests.peers.smtp_server import HOST, Received, SmtpServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiosmtpd's own

TO = ("analysts@example.org", "desk@example.org")


def alert(**changes: Any) -> Alert:
    return sample_alert(**{"destination": "analysts", **changes})


def sighting(**changes: Any) -> Sighting:
    return sample_sighting(**{"destination": "analysts", **changes})


def notifier(server: SmtpServer, security: str, **smtp: Any) -> EmailNotifier:
    destination = EmailDestination.model_validate(
        {
            "type": "email",
            "to": list(TO),
            "from": "newswatch@example.org",
            "smtp": {"host": HOST, "port": server.port, "security": security, "timeout": 5, **smtp},
        }
    )
    return EmailNotifier("analysts", destination, clock=lambda: NOW)


@pytest.fixture
def plain() -> Iterator[SmtpServer]:
    with SmtpServer("plain") as server:
        yield server


@pytest.fixture(params=["starttls", "ssl"])
def tls(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    with SmtpServer(request.param, users={"bot": "s3cret-pw"}) as server:
        yield server


def sent(server: SmtpServer) -> Received:
    (received,) = server.messages
    return received


def failure(target: EmailNotifier, alerts: list[Alert] | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        target.send(alerts or [alert()])
    return caught.value


def test_plain_delivery_to_the_configured_recipients_only(plain: SmtpServer) -> None:
    notifier(plain, "none").send([alert()])
    received = sent(plain)
    assert received.mail_from == "newswatch@example.org"
    assert received.rcpt_tos == TO
    message = received.message
    assert message["To"] == ", ".join(TO)
    assert message["Subject"].strip() == (
        "[newswatch] Canadian police mission in Iraq: RCMP officers arrive in Baghdad"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[0-9a-f]{32}@newswatch>", message["Message-ID"].strip())
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_tls_is_verified_and_auth_happens_only_over_it(tls: SmtpServer) -> None:
    security = tls.mode
    error = failure(notifier(tls, security, username="bot", password="s3cret-pw"))
    assert error.code == "tls" and "CERTIFICATE_VERIFY_FAILED" in error.detail
    assert tls.messages == [] and tls.auth_attempts == []
    notifier(tls, security, username="bot", password="s3cret-pw", ca_file=tls.ca_file).send(
        [alert()]
    )
    received = sent(tls)
    assert received.tls and received.login == "bot"
    assert [(a.login, a.tls, a.ok) for a in tls.auth_attempts] == [("bot", True, True)]


def test_starttls_required_but_not_offered_sends_nothing(plain: SmtpServer) -> None:
    target = notifier(plain, "starttls", username="bot", password="pw", ca_file=plain.ca_file)
    error = failure(target)
    assert (error.code, error.retryable) == ("smtp_unsupported", False)
    assert plain.messages == [] and plain.auth_attempts == []


def test_a_password_without_tls_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="without TLS"):
        EmailDestination.model_validate(
            {
                "type": "email",
                "to": ["a@x.org"],
                "from": "b@x.org",
                "smtp": {"host": "x", "security": "none", "username": "u", "password": "p"},
            }
        )


def test_wrong_password_is_not_retryable_and_not_shown() -> None:
    with SmtpServer("starttls", users={"bot": "right"}) as server:
        target = notifier(
            server, "starttls", username="bot", password="wrong-pw", ca_file=server.ca_file
        )
        error = failure(target)
        assert error.code == "smtp_535" and not error.retryable
        assert "wrong-pw" not in f"{error} {error.detail} {target!r}"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_server_echoing_the_auth_line_gets_no_form_of_the_password_through(
    mechanism: str,
) -> None:
    others = tuple({"PLAIN", "LOGIN"} - {mechanism})
    with SmtpServer(
        "starttls", users={"bot": "right"}, echo_auth=True, exclude_mechanisms=others
    ) as server:
        target = notifier(
            server, "starttls", username="bot", password="wrong-pw-123", ca_file=server.ca_file
        )
        error = failure(target)
    assert error.code == "smtp_535"
    assert error.detail.startswith(f"5.7.8 rejected AUTH {mechanism} ")
    assert "[secret]" in error.detail
    password = "wrong-pw-123"
    forms = {
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0bot\0{password}".encode()).decode(),
    }
    assert not any(form in str(error) for form in forms), error


@pytest.mark.parametrize(
    ("command", "answer", "code", "retryable"),
    [
        ("MAIL", "451 4.3.0 try again later", "smtp_451", True),
        ("DATA", "452 4.3.1 insufficient storage", "smtp_452", True),
        ("MAIL", "550 5.7.1 sender rejected", "smtp_550", False),
        ("DATA", "554 5.6.0 message refused", "smtp_554", False),
    ],
)
def test_4xx_is_retryable_and_5xx_is_not(
    plain: SmtpServer, command: str, answer: str, code: str, retryable: bool
) -> None:
    plain.answer_next(command, answer)
    error = failure(notifier(plain, "none"))
    assert (error.code, error.retryable) == (code, retryable)
    assert plain.messages == []


def test_some_recipients_refused_is_delivered_and_reported(
    plain: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    plain.refuse("desk@example.org")
    with caplog.at_level(logging.WARNING, logger="newswatch.notify.email"):
        notifier(plain, "none").send([alert()])
    assert sent(plain).rcpt_tos == ("analysts@example.org",)
    assert "desk@example.org" in caplog.text and "550" in caplog.text
    assert "analysts@example.org" not in caplog.text


def test_every_recipient_refused_fails_naming_them(plain: SmtpServer) -> None:
    for address in TO:
        plain.refuse(address)
    error = failure(notifier(plain, "none"))
    assert (error.code, error.retryable) == ("recipients_refused", False)
    assert all(address in error.detail for address in TO)


def test_every_recipient_refused_temporarily_is_retryable(plain: SmtpServer) -> None:
    plain.refuse(TO[0], "450 4.2.1 greylisted")
    plain.refuse(TO[1], "550 5.1.1 unknown")
    assert failure(notifier(plain, "none")).retryable


def test_connection_refused_is_retryable() -> None:
    with SmtpServer("plain") as server:
        target = notifier(server, "none")
    error = failure(target)
    assert (error.code, error.retryable) == ("connection", True)


def test_hostile_content_arrives_inert(plain: SmtpServer) -> None:
    hostile = alert(
        rule_title="Rule *bold* <!channel>",
        title="Title\r\nBcc: victim@example.org\u2028X-Evil: 1\n",
        summary=Summary("<script>alert(1)</script> <@U123> *not bold* " + "word " * 4000),
        link="javascript:alert(2)",
        source="<img src=x onerror=alert(3)>",
    )
    notifier(plain, "none").send([hostile])
    received = sent(plain)
    message = received.message
    assert received.rcpt_tos == TO and message["Bcc"] is None and message["X-Evil"] is None
    assert len(message.get_all("Subject")) == 1
    subject = message["Subject"].strip()
    assert subject == (
        "[newswatch] Rule *bold* <!channel>: Title Bcc: victim@example.org X-Evil: 1"
    )
    html = message.get_body(("html",)).get_content()
    assert not re.search(r"<(script|img|iframe|form|style)|javascript:", html, re.I)
    assert "&lt;script&gt;" in html
    plain_text = message.get_body(("plain",)).get_content()
    assert "<script>alert(1)</script>" in plain_text  # plain text is shown, never run
    assert len(received.data) < 200_000


def test_non_ascii_subjects_and_bodies(plain: SmtpServer) -> None:
    notifier(plain, "none").send(
        [alert(title="Sûreté du Québec — 警察 — وزارة الداخلية", summary=Summary("Ça va: 警察."))]
    )
    message = sent(plain).message
    assert message["Subject"].strip() == (
        "[newswatch] Canadian police mission in Iraq: Sûreté du Québec — 警察 — وزارة الداخلية"
    )
    assert "Ça va: 警察." in message.get_body(("plain",)).get_content()
    assert "Ça va: 警察." in message.get_body(("html",)).get_content()


def test_digest_is_one_message_grouped_by_rule(plain: SmtpServer) -> None:
    alerts = [
        alert(item_key="1", title="One"),
        alert(rule_id="b", rule_title="Rule B", item_key="2", title="Two"),
        alert(item_key="3", title="Three"),
    ]
    notifier(plain, "none").send(alerts)
    message = sent(plain).message
    subject = message["Subject"].strip()
    assert subject == "[newswatch] 3 alerts: Canadian police mission in Iraq, Rule B"
    text = message.get_body(("plain",)).get_content()
    assert text.index("One") < text.index("Three") < text.index("Rule B (1)") < text.index("Two")


def test_an_urgent_alert_is_marked_important(plain: SmtpServer) -> None:
    mailer = notifier(plain, "none")
    mailer.send([alert(priority="urgent", title="Officers\r\nBcc: victim@example.org")])
    mailer.send([alert()])
    urgent, normal = (received.message for received in plain.messages)
    assert urgent["Subject"].strip() == (
        "[urgent] [newswatch] Canadian police mission in Iraq: Officers Bcc: victim@example.org"
    )
    assert (urgent["Importance"], urgent["X-Priority"], urgent["Bcc"]) == ("high", "1", None)
    assert (
        urgent.get_body(("plain",))
        .get_content()
        .startswith("[URGENT] Canadian police mission in Iraq\n")
    )
    assert normal["Importance"] is None and normal["X-Priority"] is None
    assert not normal["Subject"].strip().startswith("[urgent]")


def test_capped_alerts_are_one_n_more_alerts_mail_listing_every_one(plain: SmtpServer) -> None:
    capped = [
        alert(item_key=str(i), title=f"Item {i}", link=f"https://news.example/{i}", held="cap")
        for i in range(5)
    ]
    notifier(plain, "none").send(capped)
    message = sent(plain).message
    subject = " ".join(message["Subject"].split())
    assert subject == "[newswatch] 5 more alerts (cap reached): Canadian police mission in Iraq"
    assert message["Importance"] is None
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("5 more alerts (cap reached)\n")
    assert all(f"https://news.example/{i}\n" in text for i in range(5))


def test_send_notice_through_the_factory(plain: SmtpServer) -> None:
    destination = EmailDestination.model_validate(
        {
            "type": "email",
            "to": ["ops@example.org"],
            "from": "newswatch@example.org",
            "smtp": {"host": HOST, "port": plain.port, "security": "none"},
        }
    )
    build_notifier("ops", destination).send_notice("Feed rcmp is failing", "timeout\r\nsince 24 h")
    message = sent(plain).message
    assert message["Subject"].strip() == "[newswatch] Feed rcmp is failing"
    assert message.get_content().strip() == "timeout\nsince 24 h"


def test_a_story_is_one_email_and_a_later_sighting_is_not_mailed(plain: SmtpServer) -> None:
    target = notifier(plain, "none")
    assert not target.threads
    assert target.send([alert()]) is None
    target.send_sighting(sighting(), alert(), None)
    assert len(plain.messages) == 1


def test_a_follow_up_is_mailed_as_a_reply_to_the_story_s_alert(plain: SmtpServer) -> None:
    target = notifier(plain, "none")
    target.send([alert()])
    later = sighting(follow_up="new term: suspended", title="RCMP mission suspended")
    target.send_sighting(later, alert(), None)
    first, follow_up = (received.message for received in plain.messages)
    assert follow_up["In-Reply-To"] == first["Message-ID"] == follow_up["References"]
    assert follow_up["Message-ID"] != first["Message-ID"]
    assert follow_up["Subject"].strip() == (
        "[newswatch] Follow-up: new term: suspended — RCMP mission suspended"
    )
    text = follow_up.get_body(("plain",)).get_content()
    assert text.splitlines()[:5] == [
        "Canadian police mission in Iraq",
        "Follow-up: new term: suspended",
        "RCMP mission suspended",
        "https://www.cbc.ca/news/world/rcmp-iraq-1.123",
        "Source: CBC News · 2024-05-01 14:00 UTC (1 h ago)",
    ]
    assert "Reported by 2 outlets" in text
    assert "Earlier: RCMP officers arrive in Baghdad\nhttps://www.rcmp-grc.gc.ca/en/news/1" in text
    html = follow_up.get_body(("html",)).get_content()
    assert "<strong>Follow-up: new term: suspended</strong>" in html
    assert 'Earlier: <a href="https://www.rcmp-grc.gc.ca/en/news/1"' in html


def test_a_hostile_follow_up_cannot_inject_headers_or_markup(plain: SmtpServer) -> None:
    later = sighting(
        follow_up="gap\r\nBcc: victim@example.org",
        title="Title\u2028X-Evil: 1 <script>alert(1)</script>",
        link="javascript:alert(2)",
    )
    notifier(plain, "none").send_sighting(later, alert(title="Earlier <img src=x>"), None)
    received = sent(plain)
    message = received.message
    assert received.rcpt_tos == TO and message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"].strip() == (
        "[newswatch] Follow-up: gap Bcc: victim@example.org — Title X-Evil: 1"
        " <script>alert(1)</script>"
    )
    html = message.get_body(("html",)).get_content()
    assert not re.search(r"<(script|img)|javascript:", html, re.I)


def test_a_digest_lists_the_later_sightings_of_earlier_stories(plain: SmtpServer) -> None:
    sightings = [sighting(source="Reuters", story_title="RCMP in Iraq"), sighting(follow_up="gap")]
    target = notifier(plain, "none")
    target.send(
        [alert(item_key="1", title="One"), alert(item_key="2", title="Two")], None, sightings
    )
    target.send([], None, sightings[:1])
    digest, only_sightings = (received.message for received in plain.messages)
    assert digest["Subject"].strip() == (
        "[newswatch] 2 alerts (+2 later reports): Canadian police mission in Iraq"
    )
    text = digest.get_body(("plain",)).get_content()
    assert text.index("Two") < text.index("Follow-ups (1)") < text.index("Also reported (1)")
    assert "- Follow-up: gap · CBC News: Canadian police to train Iraqi officers · " in text
    assert "- Reuters: Canadian police to train" in text and "story: RCMP in Iraq" in text
    html = digest.get_body(("html",)).get_content()
    assert "<h2>Follow-ups (1)</h2>" in html and "<h2>Also reported (1)</h2>" in html
    assert only_sightings["Subject"].strip() == "[newswatch] 1 later report of earlier stories"
