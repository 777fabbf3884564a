"""The shape of ``settings.yaml`` and the rule files, as pydantic models: the one module
that speaks pydantic.

Pure data and validation: loading files, ``${VAR}`` substitution and locating
errors in the YAML live in :mod:`bot.config.load`, which sees validation failures as
plain :class:`Invalid` records.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from bot import __version__
from bot.config.units import parse_duration, parse_size
from bot.model import FIELDS
from bot.model import Field as ItemField
from bot.schedule import check_cron

Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


def _one_or_many(value: object) -> object:
    """A single string where a list is expected is a list of one: ``to: desk@example.org``."""
    return (value,) if isinstance(value, str) else value


Strings = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{value!r} is not a valid id (lower-case letters, digits, '-', '_', '.')")
    return value


Id = Annotated[str, AfterValidator(_check_id)]


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class Strict(BaseModel):
    """Every config object rejects unknown keys: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(Strict):
    interval: Duration = 600.0
    jitter: Duration = 30.0
    # How long a replica's claim on a feed or an alert lasts without renewal (renewed every
    # third of it while the work runs): how soon another replica takes over a dead one's work.
    lease: Duration = Field(30.0, ge=1.0)


class Http(Strict):
    timeout: Duration = 20.0
    max_bytes: Size = 10_000_000
    concurrency: int = Field(50, ge=1, le=10_000)
    per_host: int = Field(4, ge=1, le=1_000)
    max_redirects: int = Field(5, ge=0, le=30)
    user_agent: str = f"newswatch/{__version__} (+https://github.com/newswatch/newswatch)"
    # Ceiling on every delay a server asks for (max-age, <ttl>, Retry-After): a CDN's
    # year-long max-age must not silence a feed for a year.
    max_delay: Duration = Field(86400.0, gt=0)
    # Follow redirects from a public address to loopback, private or link-local ones.
    allow_private_redirects: bool = False


class Server(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    metrics_token: SecretStr | None = None


class Delivery(Strict):
    retry_for: Duration = 86400.0
    # Single alerts one poll of one feed may queue for one destination; the rest
    # are folded into one "N more matches" message.
    max_alerts_per_poll: int = Field(20, ge=1, le=10_000)


class Limits(Strict):
    """How much of an item's text is kept: bounds the cost of every step after parsing."""

    text: Size = Field(100_000, ge=1_000)


def _between(low: str, high: str) -> Callable[[float], float]:
    """A check that a duration lies within ``low``..``high``, saying so in durations."""
    least, most = parse_duration(low), parse_duration(high)

    def check(value: float) -> float:
        if not least <= value <= most:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


class Retention(Strict):
    """How long the store keeps what it no longer needs (pruned hourly by ``newswatch run``).

    ``sent``: outbox rows sent or given up on, and with them the memory that a story was
    alerted (a later item of the same story alerts again). ``seen``: items their feed no
    longer serves (an item still served is kept however old: it is never alerted twice).
    """

    sent: Annotated[Duration, AfterValidator(_between("1d", "3650d"))] = 30 * 86400.0
    seen: Annotated[Duration, AfterValidator(_between("7d", "3650d"))] = 180 * 86400.0


class Feed(Strict):
    id: Id
    url: HttpUrl
    title: str | None = None
    interval: Duration | None = None
    tags: Strings = ()
    backfill: Duration | None = None
    enabled: bool = True


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class DigestEvery(Strict):
    every: Duration = Field(gt=0)


class DigestCron(Strict):
    cron: str
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"

    @model_validator(mode="after")
    def _valid_cron(self) -> DigestCron:
        check_cron(self.cron, self.timezone)
        return self


Digest = DigestEvery | DigestCron


class ConsoleDestination(Strict):
    type: Literal["console"]


class SlackDestination(Strict):
    type: Literal["slack"]
    channel: str | None = None
    token: SecretStr | None = None
    webhook_url: SecretStr | None = None
    base_url: HttpUrl | None = None
    digest: Digest | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> SlackDestination:
        if (self.token is None) == (self.webhook_url is None):
            raise ValueError("a slack destination needs exactly one of token or webhook_url")
        if self.token is not None and not self.channel:
            raise ValueError("a slack destination with a token needs a channel")
        return self


class Smtp(Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _no_plaintext_auth(self) -> Smtp:
        if self.security == "none" and self.password is not None:
            raise ValueError("refusing to send an SMTP password without TLS (security: none)")
        return self


class EmailDestination(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    to: Strings = Field(min_length=1)
    from_: str = Field(alias="from")
    smtp: Smtp
    digest: Digest | None = None


Destination = Annotated[
    ConsoleDestination | SlackDestination | EmailDestination, Field(discriminator="type")
]


class FeedFailure(Strict):
    after: Duration = 86400.0
    notify: Strings = Field(min_length=1)


def _console_only() -> dict[str, Destination]:
    """Without configured destinations, alerts go to the console."""
    return {"console": ConsoleDestination(type="console")}


class Settings(Strict):
    store: str = "sqlite:data/newswatch.db"
    schedule: Schedule = Schedule()
    http: Http = Http()
    server: Server = Server()
    delivery: Delivery = Delivery()
    limits: Limits = Limits()
    retention: Retention = Retention()
    feeds: tuple[Feed, ...] = ()
    destinations: dict[Id, Destination] = Field(default_factory=_console_only)
    on_feed_failure: FeedFailure | None = None

    @model_validator(mode="after")
    def _known_store(self) -> Settings:
        if not self.store.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError(f"store {self.store!r} must start with sqlite: or postgresql://")
        return self

    def feed_interval(self, feed: Feed) -> float:
        return feed.interval if feed.interval is not None else self.schedule.interval


class MatchGroup(Strict):
    """``all`` entries must all match, one ``any`` entry must (when given), no ``none`` entry."""

    all: tuple[str | MatchGroup, ...] = ()
    any: tuple[str | MatchGroup, ...] = ()
    none: tuple[str | MatchGroup, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> MatchGroup:
        if not (self.all or self.any):
            raise ValueError("a match group needs at least one 'all' or 'any' entry")
        return self


class Rule(Strict):
    id: Id
    title: str
    query: str | None = None
    match: MatchGroup | None = None
    fields: tuple[ItemField, ...] = FIELDS
    feeds: Strings = ()
    notify: Strings | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _one_form(self) -> Rule:
        if (self.query is None) == (self.match is None):
            raise ValueError("a rule needs exactly one of query or match")
        if not self.fields:
            raise ValueError("fields cannot be empty")
        return self


class RulesFile(Strict):
    rules: tuple[Rule, ...] = ()


M = TypeVar("M", bound=Strict)


@dataclass(frozen=True, slots=True)
class Invalid:
    """One reason a document does not fit its model: where (pydantic's path, which includes
    union tags), what kind (``missing``, ``extra_forbidden``, ...) and a message for users."""

    loc: tuple[str | int, ...]
    kind: str
    message: str


class SchemaError(ValueError):
    """A document that does not fit its model, with every reason."""

    def __init__(self, problems: list[Invalid]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def validate(model: type[M], data: Mapping[str, Any]) -> M:
    """``data`` as ``model``; :class:`SchemaError` lists every problem otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SchemaError(
            [
                Invalid(tuple(d["loc"]), d["type"], _message(d))
                for d in err.errors(include_url=False)
            ]
        ) from None


def _message(detail: Mapping[str, Any]) -> str:
    """pydantic's message in the words of this project's docs, with a hint where one helps."""
    kind, ctx = detail["type"], detail.get("ctx") or {}
    if kind == "union_tag_invalid":
        known = [t.strip().strip("'") for t in str(ctx["expected_tags"]).split(",")]
        what = str(ctx["discriminator"]).strip("'")
        return f"unknown {what} {ctx['tag']!r} (one of: {', '.join(known)})" + _did_you_mean(
            str(ctx["tag"]), known
        )
    if kind in ("tuple_type", "list_type"):
        return "expected a list: [a, b], or one '- item' per line"
    msg = str(detail["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def unknown_key_hint(model: type[Strict], loc: Sequence[str | int]) -> str:
    """``; did you mean 'query'?`` for the unknown key at ``loc``, when a known one is close."""
    current: Any = model
    for step in loc[:-1]:
        current = _child(current, step)
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return ""
    return _did_you_mean(str(loc[-1]), list(current.model_fields))


def _child(tp: Any, step: str | int) -> Any:
    """The type at ``step`` below ``tp``, through models, unions (by tag), tuples and dicts."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(step))
        return field.annotation if field is not None else None
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, UnionType):
        for member in args:
            tag = getattr(member, "model_fields", {}).get("type")
            if tag is not None and step in get_args(tag.annotation):
                return member
        models = [m for m in args if isinstance(m, type) and issubclass(m, BaseModel)]
        return _child(models[0], step) if len(models) == 1 else None
    if origin in (tuple, list) and isinstance(step, int):
        return args[0] if args else None
    if origin is dict:
        return args[1]
    return None


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def secret_values(model: BaseModel) -> Iterator[str]:
    """Every ``SecretStr`` value in ``model``, however deep, so logs can scrub them."""
    for value in model.__dict__.values():
        yield from _secrets_in(value)


def _secrets_in(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        yield from secret_values(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _secrets_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _secrets_in(v)
