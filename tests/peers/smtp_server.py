"""A real SMTP server (aiosmtpd) on loopback and a free port, for the email notifier's tests.

Modes: ``plain``, ``starttls`` (STARTTLS offered and required before mail) and
``ssl`` (implicit TLS), with a certificate for 127.0.0.1 signed by a throw-away
``trustme`` CA whose PEM is at ``ca_file``. Optional AUTH (only offered over
TLS). Scripted answers for the next MAIL/RCPT/DATA commands, per-recipient
refusals, and a record of every accepted message. With ``echo_auth`` a refused AUTH
is answered with the client's AUTH data in the reply, as some servers do.
"""

from __future__ import annotations

import base64
import email
import email.policy
import socket
import ssl
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        """The message as a mail client would parse it."""
        lines = self.data.replace(b"\r\n", b"\n")  # as a mail client stores it
        parsed = email.message_from_bytes(lines, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class AuthAttempt:
    login: str
    tls: bool
    ok: bool


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _echo(mechanism: str, auth_data: LoginPassword) -> str:
    """A refusal quoting what the client sent: the base64 strings of AUTH PLAIN or LOGIN."""
    login, password = auth_data.login, auth_data.password
    sent = [b"\0" + login + b"\0" + password] if mechanism == "PLAIN" else [login, password]
    quoted = " ".join(base64.b64encode(part).decode() for part in sent)
    return f"535 5.7.8 rejected AUTH {mechanism} {quoted}"


def _over_tls(server: Any) -> bool:
    """Whether the session runs over TLS, from STARTTLS or from the first byte."""
    return server.transport.get_extra_info("ssl_object") is not None


class SmtpServer:
    """Runs until closed; ``port``, ``ca_file``, ``messages``, ``auth_attempts`` for assertions."""

    def __init__(
        self,
        mode: str = "plain",
        *,
        users: dict[str, str] | None = None,
        echo_auth: bool = False,
        exclude_mechanisms: tuple[str, ...] = (),
    ) -> None:
        if mode not in ("plain", "starttls", "ssl"):
            raise ValueError(mode)
        self.mode = mode
        self.users = dict(users or {})
        self.echo_auth = echo_auth
        self.exclude_mechanisms = list(exclude_mechanisms)
        self.messages: list[Received] = []
        self.auth_attempts: list[AuthAttempt] = []
        self.refused: dict[str, str] = {}
        self.answers: dict[str, deque[str]] = {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
        self.lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory(prefix="smtp-peer-")
        self.ca = trustme.CA()
        self.ca_file = str(Path(self._dir.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.port = _free_port()
        options = self._options()
        self._controller = Controller(_Handler(self), hostname=HOST, port=self.port, **options)
        self._controller.start()

    def _options(self) -> dict[str, Any]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(HOST, "localhost").configure_cert(context)
        options: dict[str, Any] = {
            "auth_require_tls": True,
            "auth_exclude_mechanism": self.exclude_mechanisms,
        }
        if self.users:
            options["authenticator"] = self._authenticate
        if self.mode == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif self.mode == "ssl":
            # aiosmtpd only counts STARTTLS as TLS for AUTH; implicit TLS is TLS from the start.
            options.update(ssl_context=context, auth_require_tls=False)
        return options

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        ok = self.users.get(login) == auth_data.password.decode()
        with self.lock:
            self.auth_attempts.append(AuthAttempt(login, _over_tls(server), ok))
        # handled=False: aiosmtpd sends the 235/535 answer itself (or the message given).
        message = None if ok or not self.echo_auth else _echo(mechanism, auth_data)
        return AuthResult(
            success=ok, handled=False, auth_data=auth_data if ok else None, message=message
        )

    def answer_next(self, command: str, *answers: str) -> None:
        """The next ``command`` (MAIL, RCPT or DATA) gets ``answer`` (e.g. ``451 4.3.0 busy``)."""
        with self.lock:
            self.answers[command].extend(answers)

    def refuse(self, address: str, answer: str = "550 5.1.1 no such user") -> None:
        with self.lock:
            self.refused[address] = answer

    def scripted(self, command: str) -> str | None:
        with self.lock:
            queue = self.answers[command]
            return queue.popleft() if queue else None

    def close(self) -> None:
        self._controller.stop()
        self._dir.cleanup()

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if (answer := self.owner.scripted("MAIL")) is not None:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.owner.refused:
            return self.owner.refused[address]
        if (answer := self.owner.scripted("RCPT")) is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if (answer := self.owner.scripted("DATA")) is not None:
            return answer
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        received = Received(
            envelope.mail_from,
            tuple(envelope.rcpt_tos),
            bytes(envelope.original_content or envelope.content),
            _over_tls(server),
            login,
        )
        with self.owner.lock:
            self.owner.messages.append(received)
        return "250 2.0.0 accepted"
