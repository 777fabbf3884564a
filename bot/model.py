"""The things that flow through newswatch: items, matches, summaries and alerts.

Everything here is immutable and free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Field = Literal["title", "summary", "content"]
FIELDS: tuple[Field, ...] = ("title", "summary", "content")
# Seconds a story stays open to later sightings (``stories.window``): an item of the same
# story queued later than this after its alert is alerted again, as a story of its own.
STORY_WINDOW = 72 * 3600.0


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC: naive datetimes are UTC by convention throughout newswatch."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


Priority = Literal["urgent", "normal", "digest"]
Held = Literal["quiet", "cap"]
"""Why an alert that would have gone out on its own waits for a digest: the destination's
quiet hours, or a cap reached."""


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a feed, its text already converted from HTML to plain text.

    ``key`` identifies the item within its feed (guid, else canonical link, else
    a hash). ``language`` is the ISO 639-1 code of its text
    (:mod:`bot.feeds.language`), None when unknown.
    """

    feed_id: str
    key: str
    title: str
    link: str | None = None
    summary: str = ""
    content: str = ""
    published: datetime | None = None
    author: str | None = None
    language: str | None = None

    def text(self, name: Field) -> str:
        return getattr(self, name)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a feed document yields; ``warning`` is set when a lenient parse recovered it."""

    title: str | None
    link: str | None
    items: tuple[Item, ...]
    warning: str | None = None
    ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One matched term: the normalized tokens that matched, and in which field."""

    term: str
    field: Field


@dataclass(frozen=True, slots=True)
class Match:
    """A rule matched an item; ``hits`` explain why (every positive term found)."""

    rule_id: str
    hits: tuple[Hit, ...]

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.term for h in self.hits))


@dataclass(frozen=True, slots=True)
class Summary:
    """A short extract of the item's text with the spans to emphasise (start, end offsets)."""

    text: str
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Folded:
    """One item listed in an overflow message instead of alerted on its own."""

    title: str
    link: str | None
    rule_titles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpikeFacts:
    """What made a spike alert: the rule's stories in the last ``window`` seconds, against
    its usual (median) count over the same span in the past 14 days."""

    count: int
    usual: float
    window: float


@dataclass(frozen=True, slots=True)
class Alert:
    """Everything needed to render one alert, stored in the outbox before it is sent.

    ``terms`` are the matched terms as the rule normalised them (the key summaries are
    made from); ``terms_as_written`` the same terms as they appear in the item, for people.

    An *overflow* alert (``folded_count`` > 0) stands for the matches of one poll
    of one feed over the flood ceiling: it lists the first of them (``folded``)
    and counts them all, so a flood costs a destination one message, not thousands.

    ``language`` is the item's language (ISO 639-1) when it is not the destination's, for
    the alert to say so; None when they are the same or the item's is unknown.

    ``priority`` is the lead rule's (urgent alerts carry the destination's mention);
    ``held`` says why the alert waited for a digest instead of going out at once. A *spike*
    alert (``spike`` set) says a rule's stories suddenly outnumber their usual count; its
    ``folded`` are the top stories, ``folded_count`` the stories in the window.
    """

    rule_id: str
    rule_title: str
    destination: str
    feed_id: str
    source: str
    item_key: str
    title: str
    link: str | None
    published: datetime | None
    first_seen: datetime
    summary: Summary
    terms: tuple[str, ...]
    also_reported_by: tuple[str, ...] = field(default=())
    folded: tuple[Folded, ...] = field(default=())
    folded_count: int = 0
    terms_as_written: tuple[str, ...] = field(default=())
    language: str | None = None
    also_matched: tuple[str, ...] = field(default=())
    outlets: int = 1
    priority: Priority = "normal"
    held: Held | None = None
    spike: SpikeFacts | None = None

    @property
    def rule_titles(self) -> tuple[str, ...]:
        """Every rule that matched the story for this destination: one message names them all."""
        return tuple(dict.fromkeys((self.rule_title, *self.also_matched)))

    @property
    def shown_terms(self) -> tuple[str, ...]:
        """The terms as they appear in the item; alerts stored before that was kept show
        the normalised form."""
        return self.terms_as_written or self.terms

    @property
    def is_overflow(self) -> bool:
        return self.folded_count > 0 and self.spike is None


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a top-level alert landed, so later sightings can reply in its thread and edit it."""

    channel: str  # Slack channel ID
    ts: str  # message timestamp


@dataclass(frozen=True, slots=True)
class Sighting:
    """A later telling of a story already alerted to a destination.

    ``outlets`` counts the distinct sources reporting the story so far, this one
    included; ``follow_up`` says why this telling is a significant development (shown
    flagged), else None; ``story_title`` is the title the story was first alerted
    under, shown where the sighting is read apart from its alert (a digest).
    """

    story_id: int
    destination: str
    source: str
    title: str
    link: str | None
    published: datetime | None
    first_seen: datetime
    rule_titles: tuple[str, ...]
    terms_as_written: tuple[str, ...]
    outlets: int
    follow_up: str | None = None
    language: str | None = None
    story_title: str | None = None


@dataclass(frozen=True, slots=True)
class CapCount:
    """A cap an alert sent on its own counts against: at most ``max`` under ``key`` per
    period (the one ending at ``period_end``). An alert past it waits until ``release_at``
    (the period's end, or the end of quiet hours then) and goes out with the period's others
    as one "N more" digest."""

    key: str
    max: int
    period_end: datetime
    release_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedAlert:
    """An alert to queue, when and how: ``digest`` rows wait for their batch to close;
    ``caps`` are counted by the store when the alert is to go out on its own."""

    alert: Alert
    deliver_at: datetime
    digest: bool = False
    caps: tuple[CapCount, ...] = ()
