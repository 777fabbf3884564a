"""The Slack destination: ``chat.postMessage`` with a bot token, or an incoming webhook.

slack-sdk's own retries are disabled (``retry_handlers=[]``): a failed send goes
back to the outbox, which retries with backoff across restarts. Every failure
becomes a :class:`DeliveryError` whose text never contains the token or the
webhook URL.

A send whose answer never came back (a timeout, a dropped connection, a replica
killed mid-send) may have been posted. Every message posted with a token carries
its outbox rows and a hash in Slack message ``metadata``; before sending such an
alert again, the channel's history (``conversations.history``, which needs the
``channels:history`` or ``groups:history`` scope) is searched for it, and a
message found there counts as sent. Without that scope, and always with a
webhook (which cannot read history), the alert is sent again: at-least-once.

With a token, a story's later sightings go into the alert's thread: each is a
one-line reply (``thread_ts``), and the alert is edited (``chat.update``) to say how
many outlets report the story. The edit comes first: it is idempotent, so when it
fails nothing has been posted and a retry simply does both again; when the reply's
answer is lost, the retry looks for it among the thread's replies
(``conversations.replies``, the same scopes as the history) and, finding it, sends
nothing (the edit came before it). An edit Slack refuses for good (the alert was
deleted) does not hold the reply back. A webhook cannot thread or edit: a sighting
that is a follow-up is posted as a message of its own, the others are not posted.

A digest too long for one message goes out in parts, split the same way every
time; each part's rows are recorded as sent as soon as it lands (``Attempt.part_sent``),
so a failure or a crash before the last part leaves only the later parts to send.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any, Protocol, TypeGuard
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.alerts.render import (
    SlackMessage,
    is_single,
    message_id,
    slack_digest,
    slack_follow_up,
    slack_message,
    slack_notice,
    slack_reply,
)
from bot.config.schema import SlackDestination
from bot.errors import DeliveryError
from bot.model import Alert, Posted, Sighting
from bot.notify import Attempt
from bot.notify.ratelimit import MAX_PACING_WAIT, paused
from bot.timing import DELIVERY_MAX_WAIT, server_seconds

log = logging.getLogger("newswatch.notify.slack")
# slack-sdk logs request URLs (a webhook URL is a secret) and payloads at DEBUG level,
# and every failure at ERROR level; the DeliveryError raised here already reports it.
_sdk_log = logging.getLogger("newswatch.notify.slack.sdk")
_sdk_log.setLevel(logging.CRITICAL)

# ``ok: false`` errors that say "try again later" rather than "this will never work".
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_CODE = re.compile(r"[a-z0-9_]{1,64}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{8,}")

EVENT_TYPE = "newswatch_alert"
"""The ``metadata.event_type`` of every alert message, so a lost answer can be looked up."""
HISTORY_PAGES = 5
HISTORY_PAGE_SIZE = 200
HISTORY_MARGIN = 120.0
"""Seconds searched before a row's first attempt: replicas' clocks and Slack's differ a little."""
# History errors that will not go away by retrying: post again instead (at-least-once).
_NO_HISTORY = frozenset({"missing_scope", "not_in_channel", "channel_not_found"})
# conversations.replies: the alert is gone, so is its thread; posting says what happens next.
_NO_THREAD = "thread_not_found"


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
            if slot - now > MAX_PACING_WAIT:
                raise paused(slot - now)
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
    """Posts alerts to one Slack channel; one message per alert, or a digest in parts. An
    urgent alert starts with the destination's ``mention``, when it has one."""

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
        # conversations.history takes a channel ID only: the configured one, or the one
        # Slack names in its answer to the first post.
        self._channel_id = (
            destination.channel if _CHANNEL_ID.fullmatch(destination.channel or "") else None
        )
        self._history_off: str | None = None  # why the history cannot be read, once known
        self._warned: set[str] = set()
        self._clock = clock
        self._mention = destination.mention  # from the settings only, never from feed text
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
        self.threads = self._client is not None

    def send(
        self,
        alerts: Sequence[Alert],
        attempt: Attempt | None = None,
        sightings: Sequence[Sighting] = (),
    ) -> Posted | None:
        if not alerts and not sightings:
            return None
        now = self._clock()
        ids = attempt.outbox_ids if attempt is not None else ()
        since = attempt.check_since if attempt is not None else None
        if is_single(alerts, sightings):
            marker = _marker(ids, message_id(alerts))
            return self._deliver(slack_message(alerts[0], now, self._mention), marker, since)
        parts = slack_digest(alerts, now, sightings)
        for part in parts:
            # Marked with its own rows: a retry after a crash mid-part finds it in the
            # history, as the rows not yet sent split into the same parts again.
            part_ids = [ids[i] for i in part.indexes] if ids else []
            key = message_id(
                [alerts[i] for i in part.indexes if i < len(alerts)],
                [sightings[i - len(alerts)] for i in part.indexes if i >= len(alerts)],
            )
            self._deliver(part.message, _marker(part_ids, key), since)
            if len(parts) > 1 and attempt is not None and attempt.part_sent is not None:
                attempt.part_sent(part_ids)
        return None

    def send_sighting(
        self,
        sighting: Sighting,
        parent: Alert,
        posted: Posted | None,
        attempt: Attempt | None = None,
    ) -> None:
        """A reply in the alert's thread and the alert edited to count the outlets; without
        a thread (a webhook, an alert posted in a digest) a follow-up is posted on its own
        and any other sighting is not posted."""
        ids = attempt.outbox_ids if attempt is not None else ()
        since = attempt.check_since if attempt is not None else None
        marker = _marker(ids, message_id((), (sighting,)))
        if posted is None or self._client is None:
            if sighting.follow_up is None:
                log.debug("%s: a later sighting with no thread to go to", self.destination_id)
                return
            self._deliver(slack_follow_up(sighting, parent), marker, since)
            return
        if since is not None and self._already_replied(posted, marker, since):
            log.info(
                "%s: an earlier reply whose answer was lost did arrive; not posting it again",
                self.destination_id,
                extra={"destination": self.destination_id, "event": "delivery_reconciled"},
            )
            return
        edited = replace(parent, outlets=max(parent.outlets, sighting.outlets))
        self._update(posted, slack_message(edited, self._clock(), self._mention))
        self._post(slack_reply(sighting), marker, channel=posted.channel, thread_ts=posted.ts)

    def send_notice(self, title: str, text: str) -> None:
        self._post(slack_notice(title, text))

    def close(self) -> None:
        """Nothing to release: slack-sdk opens one connection per request."""

    def __repr__(self) -> str:
        via = "token" if self._client is not None else "webhook"
        return f"SlackNotifier({self.destination_id!r}, channel={self._channel!r}, via={via!r})"

    def _deliver(
        self, message: SlackMessage, marker: dict[str, Any], since: datetime | None
    ) -> Posted | None:
        """Post ``message``, unless an earlier send whose answer was lost already did;
        where it landed either way (with a token, when known)."""
        if since is not None and (ts := self._already_posted(marker, since)) is not None:
            log.info(
                "%s: an earlier send whose answer was lost did arrive; not posting it again",
                self.destination_id,
                extra={"destination": self.destination_id, "event": "delivery_reconciled"},
            )
            return Posted(self._channel_id, ts) if self._channel_id and ts else None
        return self._post(message, marker)

    def _already_posted(self, marker: dict[str, Any], since: datetime) -> str | None:
        """The ``ts`` of the message carrying ``marker`` in the channel's recent history,
        or None when there is none (or the history cannot be read)."""
        client = self._client
        if client is None:
            self._warn_once("webhook", "a webhook cannot read the channel's history")
            return None
        if self._history_off is not None:
            return None
        channel = self._channel_id
        if channel is None:
            self._warn_once(
                "channel_id",
                f"channel {self._channel!r} is a name and no post has told its ID yet"
                " (configure the channel ID, C…, to check from the start)",
            )
            return None
        oldest = f"{since.timestamp() - HISTORY_MARGIN:.6f}"

        def page(cursor: str | None) -> Any:
            return client.conversations_history(
                channel=channel,
                oldest=oldest,
                include_all_metadata=True,
                limit=HISTORY_PAGE_SIZE,
                cursor=cursor,
            )

        return self._search(marker, page, "conversations.history")

    def _already_replied(self, posted: Posted, marker: dict[str, Any], since: datetime) -> bool:
        """Whether the alert's thread holds a reply carrying ``marker`` (posted since ``since``)."""
        client = self._client
        if client is None or self._history_off is not None:
            return False
        oldest = f"{since.timestamp() - HISTORY_MARGIN:.6f}"

        def page(cursor: str | None) -> Any:
            return client.conversations_replies(
                channel=posted.channel,
                ts=posted.ts,
                oldest=oldest,
                include_all_metadata=True,
                limit=HISTORY_PAGE_SIZE,
                cursor=cursor,
            )

        return self._search(marker, page, "conversations.replies") is not None

    def _search(
        self, marker: dict[str, Any], page_of: Callable[[str | None], Any], method: str
    ) -> str | None:
        """The ``ts`` of the first message carrying ``marker`` in at most ``HISTORY_PAGES``
        pages of ``method``'s answers, or None."""
        cursor: str | None = None
        try:
            for _ in range(HISTORY_PAGES):
                page = page_of(cursor)
                for message in page.get("messages") or ():
                    if _carries(message, marker):
                        return str(message.get("ts") or "")
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except SlackApiError as error:
            response = error.response
            code = response.get("error")
            if code == _NO_THREAD:
                return None
            if code not in _NO_HISTORY:
                raise self._failure(response.status_code, response.data, response.headers) from None
            self._history_off = code
            self._warn_once(code, f"Slack answered {code} to {method}")
        except (OSError, HTTPException, SlackClientError) as error:
            raise self._connection_failure(error) from None
        return None

    def _update(self, posted: Posted, message: SlackMessage) -> None:
        """Edit the alert at ``posted``. A refusal that retrying cannot change (the alert
        was deleted) is logged and does not hold back the reply; anything else is raised,
        before the reply is posted, so a retry does both again."""
        client = self._client
        assert client is not None  # only a token can edit
        self._limiter.wait()
        try:
            client.chat_update(
                channel=posted.channel, ts=posted.ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as error:
            response = error.response
            failure = self._failure(response.status_code, response.data, response.headers)
            if failure.retryable:
                raise failure from None
            log.warning(
                "%s: Slack refused to edit a story's alert (%s); replying in its thread anyway",
                self.destination_id,
                failure.code,
                extra={"destination": self.destination_id, "event": "edit_refused"},
            )
        except (OSError, HTTPException, SlackClientError) as error:
            raise self._connection_failure(error) from None

    def _warn_once(self, reason: str, why: str) -> None:
        """Say once per destination that a lost answer means a possible duplicate."""
        if reason in self._warned:
            return
        self._warned.add(reason)
        log.warning(
            "%s: %s, so an alert whose answer was lost is posted again and may appear twice"
            " (grant channels:history, or groups:history for a private channel, to prevent it)",
            self.destination_id,
            why,
            extra={"destination": self.destination_id, "event": "at_least_once", "code": reason},
        )

    def _post(
        self,
        message: SlackMessage,
        metadata: dict[str, Any] | None = None,
        *,
        channel: str | None = None,
        thread_ts: str | None = None,
    ) -> Posted | None:
        """Post ``message`` (in the thread of ``thread_ts``); where it landed, with a token."""
        self._limiter.wait()
        landed: Posted | None = None
        try:
            if self._client is not None:
                answer = self._client.chat_postMessage(
                    channel=channel or self._channel or "",
                    text=message.text,
                    blocks=message.blocks,
                    mrkdwn=False,
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata=metadata,
                    thread_ts=thread_ts,
                )
                answered, ts = answer.get("channel"), answer.get("ts")
                if isinstance(answered, str) and isinstance(ts, str):
                    landed = Posted(answered, ts)
                    if self._channel_id is None and channel is None:
                        self._channel_id = answered
            else:
                assert self._webhook is not None
                # The fallback ``text`` is for notifications: not parsed as mrkdwn either.
                response = self._webhook.send_dict(
                    {
                        "text": message.text,
                        "blocks": message.blocks,
                        "mrkdwn": False,
                        "unfurl_links": False,
                        "unfurl_media": False,
                    }
                )
                self._check_webhook(response.status_code, response.body, response.headers)
        except SlackApiError as error:
            response = error.response
            raise self._failure(response.status_code, response.data, response.headers) from None
        except (OSError, HTTPException, SlackClientError) as error:
            raise self._connection_failure(error) from None
        log.debug("sent a message to %s", self.destination_id)
        return landed

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
        # urllib wraps in a URLError what fails before the request is sent; anything later
        # (no answer in time, a connection dropped) may have left the message posted.
        sent = not isinstance(error, URLError)
        return DeliveryError(code, detail, retryable=True, maybe_delivered=sent)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[secret]") if self._secret else text


def _marker(outbox_ids: Sequence[int], key: str) -> dict[str, Any]:
    """The message metadata that lets a later attempt find this message in the history."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {"outbox_ids": list(outbox_ids), "hash": digest},
    }


def _carries(message: Any, marker: dict[str, Any]) -> bool:
    metadata = message.get("metadata") if isinstance(message, dict) else None
    return (
        isinstance(metadata, dict)
        and metadata.get("event_type") == marker["event_type"]
        and metadata.get("event_payload") == marker["event_payload"]
    )


def _is_code(value: object) -> TypeGuard[str]:
    """Slack error codes are short snake_case words; anything else is not shown as one."""
    return isinstance(value, str) and _CODE.fullmatch(value) is not None


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                seconds = server_seconds(float(raw))
            except (TypeError, ValueError):
                return None
            return None if seconds is None else min(seconds, DELIVERY_MAX_WAIT)
    return None
