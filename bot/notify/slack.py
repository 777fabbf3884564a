"""The Slack destination: ``chat.postMessage`` with a bot token, or an incoming webhook.

slack-sdk's own retries are disabled: a failed send goes back to the outbox,
which retries with backoff across restarts. Every failure becomes a
:class:`DeliveryError` whose text never contains the token or the webhook URL.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.errors import DeliveryError
from bot.model import Alert
from bot.render import SlackMessage, message_id, slack_digest, slack_message, slack_notice
from bot.settings import SlackDestination

log = logging.getLogger("newswatch.notify.slack")
# slack-sdk logs request URLs (a webhook URL is a secret) and payloads at DEBUG level,
# and every failure at ERROR level; the DeliveryError raised here already reports it.
_sdk_log = logging.getLogger("newswatch.notify.slack.sdk")
_sdk_log.setLevel(logging.CRITICAL)

# ``ok: false`` errors that say "try again later" rather than "this will never work".
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_REMEMBERED_PARTS = 512
_CODE = re.compile(r"[a-z0-9_]{1,64}")


SLACK_INTERVAL = 1.0
"""Seconds between two messages to one channel: Slack's posting limit."""


class Limiter(Protocol):
    """Paces the messages of one channel; a store-backed one can pace several replicas."""

    def wait(self) -> None:
        """Block until the next message may be sent (and reserve that slot)."""

    def defer(self, seconds: float) -> None:
        """Send nothing for ``seconds``: Slack said Retry-After."""


class ChannelLimiter:
    """At most one message per ``interval`` seconds: Slack's posting limit for a channel.

    Each caller reserves the next free slot under a lock, then sleeps until it, so
    concurrent senders queue up instead of bursting.
    """

    def __init__(
        self,
        interval: float = SLACK_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)

    def defer(self, seconds: float) -> None:
        """Slack asked for a pause (Retry-After): no slot before it ends."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


_limiters: dict[str, ChannelLimiter] = {}
_limiters_lock = threading.Lock()


def channel_limiter(key: str) -> ChannelLimiter:
    """The process-wide limiter of one channel, shared by every destination posting to it."""
    with _limiters_lock:
        return _limiters.setdefault(key, ChannelLimiter())


def channel_key(destination: SlackDestination) -> str:
    """Names the channel a destination posts to, without revealing a webhook URL."""
    if destination.webhook_url is not None:
        secret = destination.webhook_url.get_secret_value()
        return "webhook " + hashlib.sha256(secret.encode()).hexdigest()
    return f"api {_base_url(destination)} {destination.channel}"


def _base_url(destination: SlackDestination) -> str:
    """slack-sdk joins method names onto the base URL, which therefore needs its final slash."""
    base_url = destination.base_url or WebClient.BASE_URL
    return base_url if base_url.endswith("/") else base_url + "/"


class SlackNotifier:
    """Posts alerts to one Slack channel; one message per alert, or a digest in parts."""

    def __init__(
        self,
        destination_id: str,
        destination: SlackDestination,
        *,
        limiter: Limiter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: int = 30,
    ) -> None:
        self.destination_id = destination_id
        self._channel = destination.channel
        self._clock = clock
        self._client: WebClient | None = None
        self._webhook: WebhookClient | None = None
        if destination.token is not None:
            self._secret = destination.token.get_secret_value()
            self._client = WebClient(
                token=self._secret,
                base_url=_base_url(destination),
                timeout=timeout,
                retry_handlers=[],
                logger=_sdk_log,
            )
        else:
            assert destination.webhook_url is not None  # the settings validator guarantees one
            self._secret = destination.webhook_url.get_secret_value()
            self._webhook = WebhookClient(
                self._secret, timeout=timeout, retry_handlers=[], logger=_sdk_log
            )
        self._limiter = limiter or channel_limiter(channel_key(destination))
        # Digest parts already delivered, so retrying a half-sent digest does not repeat them.
        self._sent_parts: OrderedDict[str, None] = OrderedDict()

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        now = self._clock()
        if len(alerts) == 1:
            self._post(slack_message(alerts[0], now))
            return
        parts = slack_digest(alerts, now)
        batch = message_id(alerts)
        for number, part in enumerate(parts, 1):
            key = f"{batch} {number}/{len(parts)}"
            if key in self._sent_parts:
                continue
            self._post(part)
            self._remember(key)

    def send_notice(self, title: str, text: str) -> None:
        self._post(slack_notice(title, text))

    def close(self) -> None:
        """Nothing to release: slack-sdk opens one connection per request."""

    def __repr__(self) -> str:
        via = "token" if self._client is not None else "webhook"
        return f"SlackNotifier({self.destination_id!r}, channel={self._channel!r}, via={via!r})"

    def _remember(self, key: str) -> None:
        self._sent_parts[key] = None
        while len(self._sent_parts) > _REMEMBERED_PARTS:
            self._sent_parts.popitem(last=False)

    def _post(self, message: SlackMessage) -> None:
        self._limiter.wait()
        try:
            if self._client is not None:
                self._client.chat_postMessage(
                    channel=self._channel or "",
                    text=message.text,
                    blocks=message.blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            else:
                assert self._webhook is not None
                response = self._webhook.send(
                    text=message.text,
                    blocks=message.blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                self._check_webhook(response.status_code, response.body, response.headers)
        except SlackApiError as error:
            response = error.response
            raise self._failure(response.status_code, response.data, response.headers) from None
        except (OSError, HTTPException, SlackClientError) as error:
            raise self._connection_failure(error) from None
        log.debug("sent a message to %s", self.destination_id)

    def _check_webhook(self, status: int, body: str, headers: Mapping[str, Any]) -> None:
        if status != 200:
            raise self._failure(status, {"error": body.strip()}, headers)

    def _failure(self, status: int, data: Any, headers: Mapping[str, Any]) -> DeliveryError:
        """Slack's answer as a DeliveryError: 429 and 5xx can be retried, ``ok: false`` not."""
        error = data.get("error") if isinstance(data, dict) else None
        if status == 429:
            retry_after = _retry_after(headers)
            if retry_after is not None:
                self._limiter.defer(retry_after)
            return DeliveryError(
                "ratelimited", "Slack rate limit", retryable=True, retry_after=retry_after
            )
        if status >= 500:
            return DeliveryError(f"http_{status}", "Slack server error", retryable=True)
        code = error if _is_code(error) else f"http_{status}"
        return DeliveryError(
            code, f"Slack refused the message (HTTP {status})", retryable=code in _TRANSIENT_ERRORS
        )

    def _connection_failure(self, error: BaseException) -> DeliveryError:
        reason = getattr(error, "reason", error)
        code = "timeout" if isinstance(reason, TimeoutError) else "connection"
        detail = self._redact(f"{type(error).__name__}: {error}")
        return DeliveryError(code, detail, retryable=True)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[secret]") if self._secret else text


def _is_code(value: object) -> bool:
    """Slack error codes are short snake_case words; anything else is not shown as one."""
    return isinstance(value, str) and _CODE.fullmatch(value) is not None


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                return None
    return None

