"""A Slack Web API emulator on loopback, for the real slack-sdk client (``base_url``).

It implements ``chat.postMessage`` (bearer token checked, message ``metadata`` kept,
``rich_text`` blocks checked for shape and their mentions and links readable as ``entities``,
``thread_ts`` making a reply in a thread), ``chat.update`` (the message found by channel
ID and ``ts``, its text and blocks replaced, each earlier version kept in ``edits``),
``conversations.history`` (channel IDs only, top-level messages only as in Slack,
``oldest``, cursor pagination, metadata only with ``include_all_metadata``),
``conversations.replies`` (a thread, parent first, the same way) and an incoming
webhook, records every request, enforces Block Kit's limits the way Slack does (an
``invalid_blocks`` error), and can be scripted to answer the next requests with
429 + Retry-After, a 5xx, an ``ok: false`` error, a dropped connection, or no answer
at all after accepting the message (``lost_answer``: the answer is held until the
client gives up and hangs up). ``history_error`` makes every history and replies
request fail (``missing_scope``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.peers.httpbase import LoopbackServer, QuietHandler

TOKEN = "xoxb-emulator-token-0000"
WEBHOOK_PATH = "/services/T0000/B0000/emulatorsecret"


@dataclass(frozen=True)
class Fault:
    kind: str  # "ratelimited" | "server_error" | "error" | "disconnect" | "lost_answer"
    retry_after: int = 1
    status: int = 503
    code: str = "channel_not_found"
    method: str | None = None  # only a request to this API method (``chat.update``) takes it

    def applies_to(self, method: str) -> bool:
        return self.method is None or self.method == method


@dataclass
class Posted:
    via: str  # "api" | "webhook"
    payload: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    channel_id: str | None = None
    ts: str = ""
    edits: list[dict[str, Any]] = field(default_factory=list)  # earlier payloads, oldest first

    @property
    def thread_ts(self) -> str | None:
        """The ``ts`` of the message this one replies to in its thread, if it is a reply."""
        value = self.payload.get("thread_ts")
        return str(value) if value else None

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.payload.get("blocks") or [])

    @property
    def channel(self) -> str | None:
        return self.payload.get("channel")

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self.payload.get("metadata")

    @property
    def entities(self) -> list[str]:
        """The mentions and links Slack would make of this message: ``<!…>``, ``<@…>``,
        ``<#…>`` and ``<url|label>`` in the ``text`` fallback and mrkdwn objects (Slack
        parses both), and mention and link elements of rich_text (which it never parses)."""
        found = []
        for text in [self.text, *_mrkdwn_texts(self.blocks)]:
            found += [f"<{inner}>" for inner in re.findall(r"<([!@#][^>]*|[a-z]+://[^>]*)>", text)]
        for element in _rich_elements(self.blocks):
            if element.get("type") in ("user", "channel", "usergroup", "broadcast", "team"):
                found.append(f"{element['type']}:{element}")
            elif element.get("type") == "link":
                found.append(f"link:{element.get('url')}")
        return found

    def rich_texts(self) -> list[str]:
        """Each rich_text section (or list item) as the characters a reader sees and copies."""
        return [
            "".join(e.get("text") or e.get("fallback") or "" for e in section["elements"])
            for section in _rich_sections(self.blocks)
        ]


def _mrkdwn_texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [t for v in value for t in _mrkdwn_texts(v)]
    if not isinstance(value, dict):
        return []
    own = [value["text"]] if value.get("type") == "mrkdwn" else []
    return own + [t for v in value.values() for t in _mrkdwn_texts(v)]


def _rich_sections(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sections = []
    for block in blocks:
        if block.get("type") != "rich_text":
            continue
        for container in block.get("elements", []):
            nested = container.get("type") == "rich_text_list"
            sections += container.get("elements", []) if nested else [container]
    return sections


def _rich_elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for section in _rich_sections(blocks) for e in section.get("elements", [])]


_RICH_CONTAINERS = (
    "rich_text_section",
    "rich_text_list",
    "rich_text_quote",
    "rich_text_preformatted",
)
_STYLES = {
    "bold",
    "italic",
    "strike",
    "code",
    "highlight",
    "client_highlight",
    "underline",
    "unlink",
}
# The inline elements newswatch may send, with their required fields and types: text, and
# the mentions an urgent alert starts with (the destination's, from its settings). Channel
# mentions are refused here: newswatch never sends one.
_RICH_ELEMENTS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "text": {"text": str},
    "link": {"url": str},
    "date": {"timestamp": int, "format": str},
    "emoji": {"name": str},
    "broadcast": {"range": str},
    "usergroup": {"usergroup_id": str},
    "user": {"user_id": str},
}
_BROADCAST_RANGES = ("here", "channel", "everyone")
# newswatch's bound for the text one rich_text block shows (dates as their fallback), as
# for a section: Slack documents no number of its own.
RICH_TEXT_MAX = 3000


def _rich_text_violations(block: dict[str, Any]) -> list[str]:
    """A ``rich_text`` block's shape, as Slack checks it: containers of typed elements."""
    problems = []
    containers = block.get("elements")
    if not isinstance(containers, list) or not containers:
        return ["rich_text without elements"]
    shown = 0
    for container in containers:
        kind = container.get("type")
        if kind not in _RICH_CONTAINERS:
            problems.append(f"rich_text element of type {kind!r}")
            continue
        sections = [container]
        if kind == "rich_text_list":
            if container.get("style") not in ("bullet", "ordered"):
                problems.append("rich_text_list without a bullet or ordered style")
            sections = container.get("elements") or []
            if not sections or any(s.get("type") != "rich_text_section" for s in sections):
                problems.append("rich_text_list of anything but rich_text_sections")
                continue
        for section in sections:
            elements = section.get("elements")
            if not isinstance(elements, list) or not elements:
                problems.append(f"{kind} without elements")
                continue
            for element in elements:
                problems += _inline_violations(element)
                shown += len(element.get("text") or element.get("fallback") or "")
    if shown > RICH_TEXT_MAX:
        problems.append(f"rich_text of {shown} chars > {RICH_TEXT_MAX}")
    return problems


def _inline_violations(element: dict[str, Any]) -> list[str]:
    kind = element.get("type")
    required = _RICH_ELEMENTS.get(str(kind))
    if required is None:
        return [f"inline element of type {kind!r}"]
    problems = [
        f"{kind} element without a {name} of type {wanted}"
        for name, wanted in required.items()
        if not isinstance(element.get(name), wanted) or element.get(name) == ""
    ]
    if kind == "link" and not str(element.get("url", "")).startswith(("http://", "https://")):
        problems.append("link to something other than http(s)")
    if kind == "broadcast" and element.get("range") not in _BROADCAST_RANGES:
        problems.append(f"broadcast of range {element.get('range')!r}")
    style = element.get("style", {})
    if not isinstance(style, dict) or any(
        k not in _STYLES or not isinstance(v, bool) for k, v in style.items()
    ):
        problems.append(f"{kind} element with style {style!r}")
    return problems


def block_kit_violations(payload: dict[str, Any]) -> list[str]:
    """What Slack would reject or truncate in ``payload``; empty when it is within limits."""
    problems = []
    blocks = payload.get("blocks") or []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks > 50")
    for block in blocks:
        if block.get("type") == "rich_text":
            problems += _rich_text_violations(block)
            continue
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "header" and len(text) > 150:
            problems.append(f"header of {len(text)} chars > 150")
        if block.get("type") == "section" and len(text) > 3000:
            problems.append(f"section of {len(text)} chars > 3000")
        for element in block.get("elements") or []:
            if len(element.get("text", "")) > 3000:
                problems.append("context element > 3000")
    if len(str(payload.get("text", ""))) > 4000:
        problems.append("text fallback > 4000")
    return problems


class SlackEmulator(LoopbackServer):
    def __init__(self) -> None:
        self.messages: list[Posted] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (API method, parameters)
        self.faults: deque[Fault] = deque()
        self.history_error: str | None = None
        self.channels: dict[str, str] = {}  # name → ID
        self._ts = itertools.count(1)
        self.lock = threading.Lock()
        self.delivered = threading.Condition(self.lock)
        super().__init__(_SlackHandler)

    @property
    def base_url(self) -> str:
        return self.url + "/api/"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def channel_id(self, name: str) -> str:
        """The ID of channel ``name`` (created on first use), as Slack names it in answers."""
        with self.lock:
            return self._channel_id(name)

    def _channel_id(self, name: str) -> str:
        if name in self.channels.values():
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:10].upper()
        return self.channels.setdefault(name, f"C{digest}")

    def next_ts(self) -> str:
        """Unique and increasing, like Slack's message timestamps."""
        return f"{int(time.time())}.{next(self._ts):06d}"

    def post_directly(self, name: str, text: str, thread_ts: str | None = None) -> Posted:
        """Someone else posts to channel ``name`` (in the thread of ``thread_ts``), with no
        newswatch metadata."""
        payload = {"channel": name, "text": text}
        posted = Posted(
            "api", payload if thread_ts is None else {**payload, "thread_ts": thread_ts}
        )
        with self.delivered:
            posted.channel_id = self._channel_id(name)
            posted.ts = self.next_ts()
            self.messages.append(posted)
            self.delivered.notify_all()
        return posted

    def in_channel(self, name: str) -> list[Posted]:
        """Every message of channel ``name``, replies in threads included."""
        with self.lock:
            channel = self._channel_id(name)
            return [m for m in self.messages if m.channel_id == channel]

    def top_level(self, name: str) -> list[Posted]:
        """What channel ``name`` shows: its messages that are not replies in a thread."""
        return [m for m in self.in_channel(name) if m.thread_ts is None]

    def replies(self, ts: str) -> list[Posted]:
        """The replies in the thread of the message ``ts``, oldest first."""
        with self.lock:
            return [m for m in self.messages if m.thread_ts == ts]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call of API ``method`` (``chat.update`` …), in order."""
        with self.lock:
            return [params for path, params in self.calls if path == method]

    def history_requests(self) -> list[dict[str, str]]:
        return self.calls_to("conversations.history")

    def fail_next(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Posted]:
        """Block until ``count`` messages were accepted (a condition, not a sleep)."""
        with self.delivered:
            self.delivered.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


def _find(emu: SlackEmulator, channel: str, ts: str) -> Posted | None:
    """The message ``ts`` of ``channel`` (a name or an ID); the caller holds the lock."""
    channel_id = emu._channel_id(channel)
    return next((m for m in emu.messages if m.channel_id == channel_id and m.ts == ts), None)


class _SlackHandler(QuietHandler):
    def do_POST(self) -> None:
        emu: SlackEmulator = self.owner
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        with emu.lock:
            emu.requests.append((self.path, dict(self.headers.items())))
            method = urlsplit(self.path).path.removeprefix("/api/")
            fault = next((f for f in emu.faults if f.applies_to(method)), None)
            if fault is not None:
                emu.faults.remove(fault)
        is_webhook = self.path == WEBHOOK_PATH
        self._lose_answer = fault is not None and fault.kind == "lost_answer"
        if fault is not None and not self._lose_answer and self._answer_fault(fault, is_webhook):
            return
        payload = self._decode(raw)
        path = urlsplit(self.path).path
        with emu.lock:
            emu.calls.append((path.removeprefix("/api/"), payload))
        if is_webhook:
            self._webhook(emu, payload)
        elif path == "/api/chat.postMessage":
            self._post_message(emu, payload)
        elif path == "/api/conversations.history":
            self._history(emu, payload)
        elif path == "/api/conversations.replies":
            self._replies(emu, payload)
        elif path == "/api/chat.update":
            self._update(emu, payload)
        elif path == "/api/auth.test":
            self._auth_test()
        else:
            self._json(404, {"ok": False, "error": "unknown_method"})

    def _decode(self, raw: bytes) -> dict[str, Any]:
        query = dict(parse_qsl(urlsplit(self.path).query))
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return {**query, **json.loads(raw or b"{}")}
        return {**query, **dict(parse_qsl(raw.decode()))}

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _answer_fault(self, fault: Fault, is_webhook: bool) -> bool:
        if fault.kind == "disconnect":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.kind == "ratelimited":
            body = b"rate_limited" if is_webhook else b'{"ok": false, "error": "ratelimited"}'
            self._raw(429, body, {"Retry-After": str(fault.retry_after)})
            return True
        if fault.kind == "server_error":
            self._raw(fault.status, b"<html>upstream trouble</html>", {}, "text/html")
            return True
        if fault.kind == "error":
            if is_webhook:
                self._raw(404, fault.code.encode(), {}, "text/plain")
            else:
                self._json(200, {"ok": False, "error": fault.code})
            return True
        raise AssertionError(f"unknown fault {fault.kind}")

    def _post_message(self, emu: SlackEmulator, payload: dict[str, Any]) -> None:
        if not self._authorized():
            self._json(200, {"ok": False, "error": "invalid_auth"})
            return
        if not payload.get("channel"):
            self._json(200, {"ok": False, "error": "channel_not_found"})
            return
        if not payload.get("text") and not payload.get("blocks"):
            self._json(200, {"ok": False, "error": "no_text"})
            return
        if block_kit_violations(payload):
            self._json(200, {"ok": False, "error": "invalid_blocks"})
            return
        thread_ts = payload.get("thread_ts")
        with emu.lock:
            parent = _find(emu, str(payload["channel"]), str(thread_ts)) if thread_ts else None
        if thread_ts and parent is None:
            # Stricter than Slack may be: a reply to a message this channel does not hold
            # is a bug in the caller, and fails the test.
            self._json(200, {"ok": False, "error": "thread_not_found"})
            return
        posted = self._accept(emu, Posted("api", payload))
        self._json(200, {"ok": True, "channel": posted.channel_id, "ts": posted.ts})

    def _update(self, emu: SlackEmulator, payload: dict[str, Any]) -> None:
        """``chat.update``: the message at channel ID + ``ts`` gets the new text and blocks."""
        if not self._authorized():
            self._json(200, {"ok": False, "error": "invalid_auth"})
            return
        channel, ts = str(payload.get("channel") or ""), str(payload.get("ts") or "")
        if channel not in emu.channels.values():  # chat.update takes an ID
            self._json(200, {"ok": False, "error": "channel_not_found"})
            return
        if block_kit_violations(payload):
            self._json(200, {"ok": False, "error": "invalid_blocks"})
            return
        with emu.delivered:
            found = _find(emu, channel, ts)
            if found is not None:
                found.edits.append(dict(found.payload))
                kept = {k: v for k, v in found.payload.items() if k not in ("text", "blocks")}
                new = {k: payload[k] for k in ("text", "blocks") if k in payload}
                found.payload = {**kept, **new}
                emu.delivered.notify_all()
        if found is None:
            self._json(200, {"ok": False, "error": "message_not_found"})
            return
        self._json(200, {"ok": True, "channel": channel, "ts": ts, "text": found.text})

    def _history(self, emu: SlackEmulator, params: dict[str, Any]) -> None:
        """Newest first, after ``oldest``, ``limit`` a page, ``next_cursor`` while more remain."""
        if not self._authorized():
            self._json(200, {"ok": False, "error": "invalid_auth"})
            return
        if emu.history_error is not None:
            self._json(
                200,
                {
                    "ok": False,
                    "error": emu.history_error,
                    "needed": "channels:history",
                    "provided": "chat:write",
                },
            )
            return
        channel = params.get("channel")
        with emu.lock:
            if channel not in emu.channels.values():  # names are not accepted here
                found = None
            else:
                found = [
                    m
                    for m in reversed(emu.messages)
                    if m.channel_id == channel and m.thread_ts is None
                ]
        if found is None:
            self._json(200, {"ok": False, "error": "channel_not_found"})
            return
        oldest = float(params.get("oldest") or 0)
        self._page(params, [m for m in found if float(m.ts) > oldest])

    def _replies(self, emu: SlackEmulator, params: dict[str, Any]) -> None:
        """A thread, parent first then its replies oldest first (those after ``oldest``)."""
        if not self._authorized():
            self._json(200, {"ok": False, "error": "invalid_auth"})
            return
        if emu.history_error is not None:
            self._json(200, {"ok": False, "error": emu.history_error})
            return
        channel, ts = str(params.get("channel") or ""), str(params.get("ts") or "")
        if channel not in emu.channels.values():
            self._json(200, {"ok": False, "error": "channel_not_found"})
            return
        with emu.lock:
            parent = _find(emu, channel, ts)
            replies = [m for m in emu.messages if m.channel_id == channel and m.thread_ts == ts]
        if parent is None:
            self._json(200, {"ok": False, "error": "thread_not_found"})
            return
        oldest = float(params.get("oldest") or 0)
        self._page(params, [parent, *(m for m in replies if float(m.ts) > oldest)])

    def _page(self, params: dict[str, Any], found: list[Posted]) -> None:
        """One page of ``found``: ``limit`` messages from ``cursor``, ``next_cursor`` while more."""
        start = int(params.get("cursor") or 0)
        limit = min(int(params.get("limit") or 100), 999)
        page = found[start : start + limit]
        metadata = str(params.get("include_all_metadata")).lower() in ("1", "true")
        messages = []
        for m in page:
            message = {"type": "message", "ts": m.ts, "text": m.text}
            if m.thread_ts is not None:
                message["thread_ts"] = m.thread_ts
            if metadata and m.metadata is not None:
                message["metadata"] = m.metadata
            messages.append(message)
        more = start + limit < len(found)
        self._json(
            200,
            {
                "ok": True,
                "messages": messages,
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            },
        )

    def _webhook(self, emu: SlackEmulator, payload: dict[str, Any]) -> None:
        if block_kit_violations(payload):
            self._raw(400, b"invalid_blocks", {}, "text/plain")
            return
        self._accept(emu, Posted("webhook", payload))
        self._raw(200, b"ok", {}, "text/plain")

    def _auth_test(self) -> None:
        if not self._authorized():
            self._json(200, {"ok": False, "error": "invalid_auth"})
        else:
            self._json(200, {"ok": True, "user_id": "UEMULATOR", "team": "emulator"})

    def _accept(self, emu: SlackEmulator, posted: Posted) -> Posted:
        with emu.delivered:
            if posted.channel is not None:
                posted.channel_id = emu._channel_id(posted.channel)
            posted.ts = emu.next_ts()
            emu.messages.append(posted)
            emu.delivered.notify_all()
        return posted

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._raw(status, json.dumps(body).encode(), {}, "application/json; charset=utf-8")

    def _raw(
        self, status: int, body: bytes, headers: dict[str, str], ctype: str = "application/json"
    ) -> None:
        if getattr(self, "_lose_answer", False):
            self._hold_until_the_client_hangs_up()
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _hold_until_the_client_hangs_up(self) -> None:
        """The request was processed; its answer never leaves (a lost answer)."""
        emu: SlackEmulator = self.owner
        self.close_connection = True
        while not emu.closing.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            try:
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return  # end of stream: the client timed out and hung up
            except OSError:
                return
