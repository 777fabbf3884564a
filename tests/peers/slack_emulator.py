"""A Slack Web API emulator on loopback, for the real slack-sdk client (``base_url``).

It implements ``chat.postMessage`` (bearer token checked) and an incoming webhook,
records every request, enforces Block Kit's limits the way Slack does (an
``invalid_blocks`` error), and can be scripted to answer the next requests with
429 + Retry-After, a 5xx, an ``ok: false`` error, or a dropped connection.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.peers.httpbase import LoopbackServer, QuietHandler

TOKEN = "xoxb-emulator-token-0000"
WEBHOOK_PATH = "/services/T0000/B0000/emulatorsecret"


@dataclass(frozen=True)
class Fault:
    kind: str  # "ratelimited" | "server_error" | "error" | "disconnect"
    retry_after: int = 1
    status: int = 503
    code: str = "channel_not_found"


@dataclass
class Posted:
    via: str  # "api" | "webhook"
    payload: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.payload.get("blocks") or [])

    @property
    def channel(self) -> str | None:
        return self.payload.get("channel")


def block_kit_violations(payload: dict[str, Any]) -> list[str]:
    """What Slack would reject or truncate in ``payload``; empty when it is within limits."""
    problems = []
    blocks = payload.get("blocks") or []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks > 50")
    for block in blocks:
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
        self.faults: deque[Fault] = deque()
        self.lock = threading.Lock()
        self.delivered = threading.Condition(self.lock)
        super().__init__(_SlackHandler)

    @property
    def base_url(self) -> str:
        return self.url + "/api/"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def fail_next(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Posted]:
        """Block until ``count`` messages were accepted (a condition, not a sleep)."""
        with self.delivered:
            self.delivered.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


class _SlackHandler(QuietHandler):
    def do_POST(self) -> None:
        emu: SlackEmulator = self.owner
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        with emu.lock:
            emu.requests.append((self.path, dict(self.headers.items())))
            fault = emu.faults.popleft() if emu.faults else None
        is_webhook = self.path == WEBHOOK_PATH
        if fault is not None and self._answer_fault(fault, is_webhook):
            return
        payload = self._decode(raw)
        if is_webhook:
            self._webhook(emu, payload)
        elif self.path == "/api/chat.postMessage":
            self._post_message(emu, payload)
        elif self.path == "/api/auth.test":
            self._auth_test()
        else:
            self._json(404, {"ok": False, "error": "unknown_method"})

    def _decode(self, raw: bytes) -> dict[str, Any]:
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw or b"{}")
        from urllib.parse import parse_qsl

        return dict(parse_qsl(raw.decode()))

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
        self._accept(emu, Posted("api", payload))
        self._json(200, {"ok": True, "channel": payload["channel"], "ts": f"{time.time():.6f}"})

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

    def _accept(self, emu: SlackEmulator, posted: Posted) -> None:
        with emu.delivered:
            emu.messages.append(posted)
            emu.delivered.notify_all()

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._raw(status, json.dumps(body).encode(), {}, "application/json; charset=utf-8")

    def _raw(
        self, status: int, body: bytes, headers: dict[str, str], ctype: str = "application/json"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
