"""The email destination: one SMTP connection per message, TLS verified, auth only over TLS.

SMTP answers map onto :class:`DeliveryError`: 4xx (try later) is retryable, 5xx
(will never work) is not. Once the server has accepted the message, the send
counts as done even if closing the connection fails, so nothing is sent twice.

A mailbox cannot be threaded into or edited: a story is one email. A later sighting
that is a follow-up is mailed on its own as a reply to the story's alert
(``In-Reply-To``); the others wait for the next digest, or are only recorded.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage

from bot.alerts.render import email_message, follow_up_email, notice_email, one_line
from bot.config.schema import EmailDestination, Smtp
from bot.errors import DeliveryError
from bot.model import Alert, Posted, Sighting
from bot.notify import Attempt

log = logging.getLogger("newswatch.notify.email")


class EmailNotifier:
    """Mails alerts (one message each, or a digest) to the configured recipients only."""

    threads = False

    def __init__(
        self,
        destination_id: str,
        destination: EmailDestination,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.destination_id = destination_id
        self._sender = destination.from_
        self._recipients = tuple(destination.to)
        self._smtp = destination.smtp
        self._clock = clock

    def send(
        self,
        alerts: Sequence[Alert],
        attempt: Attempt | None = None,
        sightings: Sequence[Sighting] = (),
    ) -> Posted | None:
        """Mails the alerts (and a digest's sightings); a mailbox cannot be searched, so a
        resend after an unknown outcome repeats the mail, under the same Message-ID."""
        if not alerts and not sightings:
            return None
        self._deliver(
            email_message(
                alerts,
                self._clock(),
                sender=self._sender,
                recipients=self._recipients,
                sightings=sightings,
            )
        )
        return None

    def send_sighting(
        self,
        sighting: Sighting,
        parent: Alert,
        posted: Posted | None,
        attempt: Attempt | None = None,
    ) -> None:
        """A follow-up is mailed as a reply to the story's alert; a plain sighting is not
        mailed (one email per story): the pipeline records it."""
        if sighting.follow_up is None:
            log.debug("%s: a later sighting of a story is not mailed", self.destination_id)
            return
        self._deliver(
            follow_up_email(
                sighting, parent, self._clock(), sender=self._sender, recipients=self._recipients
            )
        )

    def send_notice(self, title: str, text: str) -> None:
        self._deliver(
            notice_email(
                title, text, self._clock(), sender=self._sender, recipients=self._recipients
            )
        )

    def close(self) -> None:
        """Nothing to release: each message uses its own connection."""

    def __repr__(self) -> str:
        smtp = self._smtp
        return (
            f"EmailNotifier({self.destination_id!r}, smtp={smtp.host}:{smtp.port}, "
            f"security={smtp.security!r})"
        )

    def _deliver(self, message: EmailMessage) -> None:
        try:
            client = _connect(self._smtp)
        except (smtplib.SMTPException, OSError) as error:
            raise _failure(error, self._smtp) from None
        try:
            refused = client.send_message(
                message, from_addr=self._sender, to_addrs=list(self._recipients)
            )
        except (smtplib.SMTPException, OSError) as error:
            client.close()
            raise _failure(error, self._smtp) from None
        _quit(client)
        if refused:
            log.warning(
                "%s: delivered, but the server refused %s",
                self.destination_id,
                _describe(refused),
            )


def _connect(smtp: Smtp) -> smtplib.SMTP:
    """An open SMTP session, TLS established and verified first, then authenticated."""
    context = ssl.create_default_context(cafile=smtp.ca_file)
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)  # raises when the server does not offer it
            client.ehlo()
        if smtp.security != "none" and smtp.username and smtp.password is not None:
            client.login(smtp.username, smtp.password.get_secret_value())
    except BaseException:
        client.close()
        raise
    return client


def _quit(client: smtplib.SMTP) -> None:
    """End the session politely; the message is already accepted, so errors here do not count."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def _failure(error: BaseException, smtp: Smtp) -> DeliveryError:
    """The error as a code and a one-line detail with every form of the password hidden
    (a server may echo the AUTH line back in its reply)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return _all_refused(error.recipients)
    if isinstance(error, smtplib.SMTPResponseException):
        status = error.smtp_code
        detail = _text(error.smtp_error, smtp)
        return DeliveryError(f"smtp_{status}", detail, retryable=400 <= status < 500)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return DeliveryError("smtp_unsupported", _redact(str(error), smtp), retryable=False)
    if isinstance(error, ssl.SSLError):
        # A certificate can be renewed or the CA fixed: keep the alert and retry.
        return DeliveryError("tls", _redact(one_line(str(error)), smtp), retryable=True)
    code = "timeout" if isinstance(error, TimeoutError) else "connection"
    detail = _redact(f"{type(error).__name__}: {one_line(str(error))}", smtp)
    return DeliveryError(code, detail, retryable=True)


def _all_refused(refused: Mapping[str, tuple[int, bytes]]) -> DeliveryError:
    """Every recipient refused: retryable only if one of them was a temporary (4xx) refusal."""
    temporary = any(400 <= code < 500 for code, _ in refused.values())
    detail = f"every recipient was refused: {_describe(refused)}"
    return DeliveryError("recipients_refused", detail, retryable=temporary)


def _describe(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{addr} ({code} {_text(text)})" for addr, (code, text) in refused.items())


def _text(value: bytes | str, smtp: Smtp | None = None) -> str:
    """One line of a server's reply, at most 300 characters, the password hidden first
    (cutting first could leave part of an echoed AUTH string to show)."""
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return one_line(_redact(raw, smtp) if smtp is not None else raw)[:300]


def auth_strings(smtp: Smtp) -> tuple[str, ...]:
    """The password and the base64 forms AUTH PLAIN and AUTH LOGIN send it in."""
    if smtp.password is None:
        return ()
    password = smtp.password.get_secret_value()
    plain = f"\0{smtp.username or ''}\0{password}"
    return (password, *(_base64(text) for text in (password, plain)))


def _base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _redact(text: str, smtp: Smtp) -> str:
    for secret in sorted(auth_strings(smtp), key=len, reverse=True):
        text = text.replace(secret, "[secret]")
    return text
