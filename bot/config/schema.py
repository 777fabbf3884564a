"""The shape of ``settings.yaml`` and the rule files, as pydantic models: the one module
that speaks pydantic.

Pure data and validation: loading files, ``${VAR}`` substitution and locating
errors in the YAML live in :mod:`bot.config.load`, which sees validation failures as
plain :class:`Invalid` records. :func:`json_schema` gives editors the same shapes.
"""

from __future__ import annotations

import difflib
import json
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
    WithJsonSchema,
    model_validator,
)

from bot import __version__
from bot.config.units import (
    DURATION_PATTERN,
    SIZE_PATTERN,
    format_duration,
    parse_duration,
    parse_size,
)
from bot.languages import check_code
from bot.model import FIELDS, STORY_WINDOW
from bot.model import Field as ItemField
from bot.schedule import check_cron

VARIABLE = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}"
"""``${VAR}`` or ``${VAR:-default}``, replaced before validation (:mod:`bot.config.load`)."""

Duration = Annotated[
    float,
    BeforeValidator(
        parse_duration,
        json_schema_input_type=Annotated[float, Field(ge=0)]
        | Annotated[str, Field(pattern=DURATION_PATTERN)],
    ),
]
Size = Annotated[
    int,
    BeforeValidator(
        parse_size,
        json_schema_input_type=Annotated[int, Field(gt=0)]
        | Annotated[str, Field(pattern=SIZE_PATTERN)],
    ),
]


def _one_or_many(value: object) -> object:
    """A single string where a list is expected is a list of one: ``to: desk@example.org``."""
    return (value,) if isinstance(value, str) else value


Strings = Annotated[
    tuple[str, ...],
    BeforeValidator(_one_or_many, json_schema_input_type=str | tuple[str, ...]),
]

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{value!r} is not a valid id (lower-case letters, digits, '-', '_', '.')")
    return value


Id = Annotated[
    str, AfterValidator(_check_id), WithJsonSchema({"type": "string", "pattern": _ID.pattern})
]


_HTTP_URL = re.compile(r"^[hH][tT][tT][pP][sS]?://[^\s/]+")  # no flags: also JSON Schema's


def _check_http_url(value: str) -> str:
    if not _HTTP_URL.match(value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


HttpUrl = Annotated[
    str,
    AfterValidator(_check_http_url),
    WithJsonSchema({"type": "string", "pattern": _HTTP_URL.pattern}),
]


Language = Annotated[
    str, AfterValidator(check_code), WithJsonSchema({"type": "string", "pattern": "^[a-z]{2}$"})
]
"""An ISO 639-1 language code: en, fr, ar, fa, ku, ru, ..."""


class Strict(BaseModel):
    """Every config object rejects unknown keys: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Schedule(Strict):
    """When feeds are polled."""

    interval: Duration = 600.0
    """How often a feed is polled, unless it says otherwise (30s, 10m, 2h, 1d or seconds)."""
    jitter: Duration = 30.0
    """Random extra wait, so feeds are not polled in lockstep."""
    lease: Duration = Field(30.0, ge=1.0)
    """How long a replica's claim on a feed or an alert lasts without renewal (renewed every
    third of it while the work runs): how soon another replica takes over a dead one's work."""


class Http(Strict):
    """How feeds are fetched."""

    timeout: Duration = 20.0
    """Total time allowed for one fetch, body included."""
    max_bytes: Size = 10_000_000
    """A larger body, counted after decompression, is cut off as too_large (500KB, 10MB)."""
    concurrency: int = Field(50, ge=1, le=10_000)
    """Fetches at once, in all."""
    per_host: int = Field(4, ge=1, le=1_000)
    """Fetches at once to one host."""
    max_redirects: int = Field(5, ge=0, le=30)
    """More redirects than this is a redirect_loop."""
    user_agent: str = f"newswatch/{__version__} (+https://github.com/newswatch/newswatch)"
    """Sent with every fetch."""
    max_delay: Duration = Field(86400.0, gt=0)
    """Ceiling on every delay a server asks for (max-age, <ttl>, Retry-After): a CDN's
    year-long max-age must not silence a feed for a year."""
    allow_private_redirects: bool = False
    """Follow redirects from a public address to loopback, private or link-local ones."""


DEGRADED_AFTER_MIN = 3600.0


class Server(Strict):
    """Where `newswatch run` serves /healthz and /metrics."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    metrics_token: SecretStr | None = None
    """When set (from the environment), /metrics requires "Authorization: Bearer <token>"."""
    degraded_after: Duration | None = Field(None, gt=0)
    """/healthz says "degraded" (and `feeds` warns) when no feed has been read for this long;
    unset: three poll intervals, at least an hour."""


class Delivery(Strict):
    """How alerts are sent."""

    retry_for: Duration = 86400.0
    """How long a failing alert is retried before it is marked dead."""
    max_alerts_per_poll: int = Field(20, ge=1, le=10_000)
    """Single alerts one poll of one feed may queue for one destination; the rest
    are folded into one "N more matches" message."""


class Limits(Strict):
    """How much of an item's text is kept: bounds the cost of every step after parsing."""

    text: Size = Field(100_000, ge=1_000)
    """The most text kept from an item's summary and from its content (at least 1000)."""


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


class Stories(Strict):
    """When items count as one story: one alert per destination, later tellings replying
    to it (README: Stories).

    ``window``: how long after its latest sighting a story takes more; a telling after
    that starts a new story, alerted again.
    """

    window: Annotated[Duration, AfterValidator(_between("1h", "30d"))] = STORY_WINDOW


class Feed(Strict):
    """One RSS, Atom or JSON feed to poll."""

    id: Id
    """A slug (lower-case letters, digits, '-', '_', '.'), named by rules and in alerts."""
    url: HttpUrl
    title: str | None = None
    interval: Duration | None = None
    """How often this feed is polled (default: schedule.interval)."""
    tags: Strings = ()
    """Rules select groups of feeds by tag (feeds: [tag:NAME])."""
    backfill: Duration | None = None
    """On the first fetch, alert the items published within this long (default: none)."""
    enabled: bool = True


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class DigestEvery(Strict):
    """One message per period instead of one per alert."""

    every: Duration = Field(gt=0)


class DigestCron(Strict):
    """One message at the times of a cron expression."""

    cron: str
    """Five fields: minute hour day-of-month month day-of-week ("0 8 * * 1-5")."""
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    """An IANA time zone, such as America/Toronto."""

    @model_validator(mode="after")
    def _valid_cron(self) -> DigestCron:
        check_cron(self.cron, self.timezone)
        return self


Digest = DigestEvery | DigestCron

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _check_clock(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError(f'{value!r} is not a time of day (HH:MM, 24-hour: "22:00")')
    return value


ClockTime = Annotated[
    str, AfterValidator(_check_clock), WithJsonSchema({"type": "string", "pattern": _CLOCK.pattern})
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)


def _some_days(value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
    if not value:
        raise ValueError(f"name at least one day ({', '.join(WEEKDAYS)})")
    return value


class Quiet(Strict):
    """Quiet hours: normal alerts are held and sent as one digest when they end; urgent ones
    still go out at once."""

    model_config = ConfigDict(populate_by_name=True)

    from_: ClockTime = Field(alias="from")
    """When quiet hours begin, local time ("22:00")."""
    to: ClockTime
    """When they end ("07:00": the next morning when earlier than from; equal to from: 24 h)."""
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    """An IANA time zone, such as America/Toronto: quiet hours follow its clock changes."""
    days: Annotated[tuple[Weekday, ...], AfterValidator(_some_days)] = Field(
        WEEKDAYS, json_schema_extra={"minItems": 1}
    )
    """The days quiet hours begin on (default: every day)."""

    @model_validator(mode="after")
    def _ends(self) -> Quiet:
        if self.from_ == self.to and set(self.days) == set(WEEKDAYS):
            raise ValueError("quiet hours all day every day would hold every alert for ever")
        return self


class Cap(Strict):
    """At most ``max`` alerts on their own per period; the rest of the period's alerts wait
    for its end and go out as one "N more" message, each listed."""

    per: Annotated[Duration, AfterValidator(_between("1m", "7d"))]
    """The period, counted from the epoch in UTC (1h: on the hour)."""
    max: int = Field(ge=1, le=100_000)


def _hours(value: float) -> float:
    if value % 3600:
        raise ValueError(
            f"must be whole hours (stories are counted by the hour), not {format_duration(value)}"
        )
    return value


_SPIKE_LONGEST = "3d"
SPIKE_WINDOW_MAX = parse_duration(_SPIKE_LONGEST)


class Spike(Strict):
    """One message when a rule's stories in ``window`` number more than ``factor`` times
    their median over the past 14 days, and at least ``min``; at most one per window."""

    window: Annotated[
        Duration,
        AfterValidator(_between("1h", format_duration(SPIKE_WINDOW_MAX))),
        AfterValidator(_hours),
    ] = 6 * 3600.0
    """Whole hours: stories are counted by the hour."""
    factor: float = Field(3.0, gt=1, le=1_000)
    min: int = Field(5, ge=1, le=100_000)


_MENTION = re.compile(r"^(@here|@channel|<!subteam\^[A-Z0-9]+>|<@[UW][A-Z0-9]+>)$")


def _check_mention(value: str) -> str:
    if not _MENTION.match(value):
        raise ValueError(
            f"{value!r} is not a mention: write @here, @channel, <!subteam^S0123ABC> (a user"
            " group) or <@U0123ABC> (a user)"
        )
    return value


Mention = Annotated[
    str,
    AfterValidator(_check_mention),
    WithJsonSchema({"type": "string", "pattern": _MENTION.pattern}),
]


class ConsoleDestination(Strict):
    """Prints alerts on standard output."""

    type: Literal["console"]
    language: Language = "en"
    """The language its readers read: an alert on an item in another says which."""
    quiet: Quiet | None = None
    cap: Cap | None = None


class SlackDestination(Strict):
    """A Slack channel, through a bot token (with channel) or an incoming webhook."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["token"]}, {"required": ["webhook_url"]}],
            "dependentRequired": {"token": ["channel"]},
        }
    )

    type: Literal["slack"]
    channel: str | None = None
    """Channel id (C0123456789) or name (#news); invite the bot to it."""
    token: SecretStr | None = None
    """A bot token (xoxb-...) with chat:write: write ${SLACK_BOT_TOKEN}, never the token."""
    webhook_url: SecretStr | None = None
    """An incoming webhook URL, instead of token and channel (its channel is fixed)."""
    base_url: HttpUrl | None = None
    """The Slack Web API's address: an override, for proxies and tests."""
    digest: Digest | None = None
    language: Language = "en"
    """The language its readers read: an alert on an item in another says which."""
    quiet: Quiet | None = None
    cap: Cap | None = None
    mention: Mention | None = None
    """Who urgent alerts notify: @here, @channel, <!subteam^ID> or <@USER_ID>."""

    @model_validator(mode="after")
    def _one_way_in(self) -> SlackDestination:
        if (self.token is None) == (self.webhook_url is None):
            raise ValueError("a slack destination needs exactly one of token or webhook_url")
        if self.token is not None and not self.channel:
            raise ValueError("a slack destination with a token needs a channel")
        return self


class Smtp(Strict):
    """The mail server; its certificate is always verified."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    """Write ${SMTP_PASSWORD}, never the password."""
    ca_file: str | None = None
    """CA certificates (PEM) to verify the server with, instead of the system's."""
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _no_plaintext_auth(self) -> Smtp:
        if self.security == "none" and self.password is not None:
            raise ValueError("refusing to send an SMTP password without TLS (security: none)")
        return self


class EmailDestination(Strict):
    """Email over SMTP."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["email"]
    to: Strings = Field(min_length=1)
    from_: str = Field(alias="from")
    smtp: Smtp
    digest: Digest | None = None
    language: Language = "en"
    """The language its readers read: an alert on an item in another says which."""
    quiet: Quiet | None = None
    cap: Cap | None = None


Destination = Annotated[
    ConsoleDestination | SlackDestination | EmailDestination, Field(discriminator="type")
]


class FeedFailure(Strict):
    """One message when a feed has failed this long, one when it recovers."""

    after: Duration = 86400.0
    notify: Strings = Field(min_length=1)
    """Destination ids."""


class FeedSilence(Strict):
    """A feed answering but publishing nothing new for much longer than its usual gap is
    flagged whatever this says; ``after`` is the least quiet that counts, and ``notify``
    (when given) hears once when a feed goes silent and once when it publishes again."""

    after: Duration = 3 * 86400.0
    """The least quiet that counts as silence, however often the feed usually publishes."""
    notify: Strings = ()
    """Destination ids told when a feed goes silent and when it publishes again."""


def _console_only() -> dict[str, Destination]:
    """Without configured destinations, alerts go to the console."""
    return {"console": ConsoleDestination(type="console")}


STORES = ("sqlite:", "postgresql://", "postgres://")


class Settings(Strict):
    """newswatch's settings.yaml."""

    store: str = Field(
        "sqlite:data/newswatch.db",
        json_schema_extra={"pattern": "^(" + "|".join(map(re.escape, STORES)) + ")"},
    )
    """Where state lives: sqlite:PATH (relative to the working directory) or
    postgresql://user@host/db (for several replicas)."""
    schedule: Schedule = Schedule()
    http: Http = Http()
    server: Server = Server()
    delivery: Delivery = Delivery()
    limits: Limits = Limits()
    retention: Retention = Retention()
    stories: Stories = Stories()
    feeds: tuple[Feed, ...] = ()
    destinations: dict[Id, Destination] = Field(default_factory=_console_only)
    """Where alerts go, by id (rules name them in notify); default: the console only."""
    on_feed_failure: FeedFailure | None = None
    """Tell someone when a feed has been failing for a while, and when it recovers."""
    on_feed_silence: FeedSilence = FeedSilence()
    """Flag feeds that answer but publish nothing new for much longer than usual."""

    @model_validator(mode="after")
    def _known_store(self) -> Settings:
        if not self.store.startswith(STORES):
            raise ValueError(f"store {self.store!r} must start with sqlite: or postgresql://")
        return self

    @model_validator(mode="after")
    def _story_outlives_no_alert(self) -> Settings:
        """A story is pruned with its items, its alert with the sent ones: a window set
        cannot outlast either (the default one simply ends earlier under a shorter one)."""
        window = self.stories.window
        if "window" not in self.stories.model_fields_set:
            return self
        for name, kept in (("sent", self.retention.sent), ("seen", self.retention.seen)):
            if window > kept:
                raise ValueError(
                    f"stories.window ({format_duration(window)}) must not be longer"
                    f" than retention.{name} ({format_duration(kept)}): a story is"
                    f" forgotten with its {'sent alert' if name == 'sent' else 'items'}"
                )
        return self

    def feed_interval(self, feed: Feed) -> float:
        return feed.interval if feed.interval is not None else self.schedule.interval

    @property
    def degraded_after(self) -> float:
        """Seconds without a successful feed read before the bot calls itself degraded.

        By default long enough that feeds which merely back off or honour a
        server's max-age do not trip it: three poll intervals, at least an hour.
        """
        if self.server.degraded_after is not None:
            return self.server.degraded_after
        return max(DEGRADED_AFTER_MIN, 3 * self.schedule.interval)


class MatchGroup(Strict):
    """``all`` entries must all match, one ``any`` entry must (when given), no ``none`` entry."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["all"]}, {"required": ["any"]}]}
    )

    all: tuple[str | MatchGroup, ...] = ()
    any: tuple[str | MatchGroup, ...] = ()
    none: tuple[str | MatchGroup, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> MatchGroup:
        if not (self.all or self.any):
            raise ValueError("a match group needs at least one 'all' or 'any' entry")
        return self


class Rule(Strict):
    """One watch rule: a query, or match groups of queries."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["query"]}, {"required": ["match"]}]}
    )

    id: Id
    title: str
    """Shown in every alert of this rule."""
    query: str | None = None
    """Words, "phrases", AND, OR, NOT, NEAR/n, field:word, /regex/ (README: Watch rules)."""
    match: MatchGroup | None = None
    fields: tuple[ItemField, ...] = FIELDS
    """Which parts of an item the rule reads."""
    feeds: Strings = ()
    """Feed ids and tag:NAME entries this rule reads (default: every feed)."""
    notify: Strings | None = None
    """Destination ids (default: every destination)."""
    languages: tuple[Language, ...] = ()
    """Match only items in these languages (ISO 639-1: fr, en, ...); an item whose language
    is unknown still matches. Default: every language."""
    priority: Literal["urgent", "normal", "digest"] = "normal"
    """urgent: at once, even in quiet hours; normal: at once outside quiet hours; digest:
    only in digests."""
    cap: Cap | None = None
    """At most so many of this rule's alerts on their own, per destination and period."""
    spike: Spike | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _one_form(self) -> Rule:
        if (self.query is None) == (self.match is None):
            raise ValueError("a rule needs exactly one of query or match")
        if not self.fields:
            raise ValueError("fields cannot be empty")
        return self


class RulesFile(Strict):
    """A newswatch rules file (rules.yaml or rules/*.yaml)."""

    groups: dict[Id, tuple[str, ...]] = Field(default_factory=dict)
    """Named lists of terms any rule's query uses as @name: the OR of them (README: Watch
    rules). An entry is a word, "phrase", prefix*, /regex/ or another @group."""
    rules: tuple[Rule, ...] = ()


DOCUMENTS: dict[str, type[Strict]] = {"settings": Settings, "rules": RulesFile}
"""The documents a config directory holds, by the name ``newswatch schema`` takes."""

_VARIABLE_REF = {"$ref": "#/$defs/Variable"}
_VARIABLE_SCHEMA = {
    "type": "string",
    "pattern": VARIABLE,
    "description": "${VAR} or ${VAR:-default}: the environment variable's value, checked once"
    " substituted.",
}
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
_ANNOTATIONS = ("title", "description", "default")


def json_schema(model: type[Strict]) -> dict[str, Any]:
    """``model`` as a JSON Schema of the YAML a user writes, for editors (yaml-language-server).

    It accepts what the loader accepts: durations and sizes as text or numbers, one string
    for a list of strings, and a ``${VAR}`` string wherever a number, a boolean or a
    restricted string is expected, since the loader substitutes before it validates.
    """
    schema = _with_variables(model.model_json_schema(mode="validation"))
    schema.setdefault("$defs", {})["Variable"] = _VARIABLE_SCHEMA
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def json_schema_text(model: type[Strict]) -> str:
    """:func:`json_schema` as the text of the shipped ``config/schema/*.schema.json`` files."""
    return json.dumps(json_schema(model), indent=2, ensure_ascii=False) + "\n"


def _with_variables(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a ``${VAR}`` alternative beside every value a plain string cannot be."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS:
            out[key] = {name: _with_variables(child) for name, child in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [
                child if key == "anyOf" and _substitutable(child) else _with_variables(child)
                for child in value
            ]
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _with_variables(value)
        elif key == "description":  # a docstring's lines, as one line for an editor's tooltip
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    if "patternProperties" in out:  # a dict with constrained keys: no other key either
        out.setdefault("additionalProperties", False)
    if any(_substitutable(child) for child in out.get("anyOf", ())):
        out["anyOf"] = [*out["anyOf"], _VARIABLE_REF]
    elif _substitutable(out):
        kept = {key: out.pop(key) for key in _ANNOTATIONS if key in out}
        return {**kept, "anyOf": [out, _VARIABLE_REF]}
    return out


def _substitutable(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind in ("number", "integer", "boolean") or (
        kind == "string" and ("pattern" in node or "enum" in node)
    )


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
