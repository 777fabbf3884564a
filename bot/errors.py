"""One typed error tree: every failure newswatch reports to a user is one of these."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_FAILED, EXIT_CONFIG, EXIT_STORE = 1, 2, 3
"""Exit codes besides 0, for every command and the daemon: a command's own failure (an
undelivered alert, a failed send), a config or setting to fix, a store that cannot be
opened or used."""


class NewswatchError(Exception):
    """Base of every error newswatch raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a config file a problem is; ``line`` is 1-based, 0 when unknown."""

    file: str
    line: int = 0
    column: int = 0  # 1-based, 0 when unknown or not told

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ConfigError(NewswatchError):
    """The config directory is invalid; carries every problem found, each located."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class QueryError(NewswatchError):
    """A rule query does not parse.

    ``column`` is 1-based within the query string; ``path`` says which query of
    the rule it is, relative to the rule (``("query",)`` or ``("match", "any", 2)``).
    """

    def __init__(self, message: str, column: int, path: tuple[str | int, ...] = ("query",)) -> None:
        self.message = message
        self.column = column
        self.path = path
        super().__init__(f"column {column}: {message}")


class FetchError(NewswatchError):
    """A feed could not be fetched or read.

    ``reason`` is one of a small set of stable keys (``timeout``, ``refused``,
    ``dns``, ``tls``, ``network``, ``bad_url``, ``http_404``, ``http_429``,
    ``http_4xx``, ``http_5xx``, ``too_large``, ``bad_encoding``, ``redirect_loop``,
    ``blocked_redirect``, ``not_a_feed``, ``malformed``) stored on the feed and shown
    to users.
    """

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"{reason}: {detail}" if detail else reason)


class DeliveryError(NewswatchError):
    """A destination refused or failed a message.

    ``retryable`` says whether sending again later can succeed; ``retry_after``
    (seconds) is the peer's own request, when it made one; ``code`` is the
    peer's error code (``channel_not_found``, ``smtp_550`` ...);
    ``maybe_delivered``: the message went out but its answer never came back
    (a timeout, a dropped connection), so it may have arrived.
    """

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        retryable: bool,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        super().__init__(f"{code}: {detail}" if detail else code)


class StoreError(NewswatchError):
    """The store cannot be opened or used."""


class ListenError(NewswatchError):
    """The HTTP server (``/healthz``, ``/metrics``) cannot listen on its configured address."""
