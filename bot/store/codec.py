"""Alerts and notices to and from JSON, and datetimes to and from epoch seconds, as stored."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any, overload

from bot.model import Alert, Folded, Posted, Sighting, SpikeFacts, Summary

_ALERT_FIELDS = frozenset(f.name for f in fields(Alert))  # what this version can read
_SIGHTING_FIELDS = frozenset(f.name for f in fields(Sighting))


@overload
def to_epoch(value: datetime) -> float: ...
@overload
def to_epoch(value: datetime | None) -> float | None: ...
def to_epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def alert_to_json(alert: Alert) -> str:
    data = asdict(alert)
    data["published"] = alert.published.isoformat() if alert.published else None
    data["first_seen"] = alert.first_seen.isoformat()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def alert_from_json(text: str, also_reported_by: tuple[str, ...] = ()) -> Alert:
    """The alert ``text`` encodes; payloads written before overflow alerts existed lack
    ``folded`` and ``folded_count`` and read as ordinary alerts; those written before
    ``terms_as_written`` show their normalised terms, those before ``language`` name no
    language, and those written before stories name one rule and one outlet. Keys this
    version does not know
    (written by a newer replica during a rolling upgrade) are ignored, not fatal."""
    data: dict[str, Any] = {k: v for k, v in json.loads(text).items() if k in _ALERT_FIELDS}
    summary = data.pop("summary")
    published = data.pop("published")
    folded = data.pop("folded", ())
    spike = data.pop("spike", None)
    return Alert(
        **{
            **data,
            "published": datetime.fromisoformat(published) if published else None,
            "first_seen": datetime.fromisoformat(data["first_seen"]),
            "summary": Summary(summary["text"], tuple(map(tuple, summary["highlights"]))),
            "terms": tuple(data["terms"]),
            "terms_as_written": tuple(data.get("terms_as_written", ())),
            "also_matched": tuple(data.get("also_matched", ())),
            "also_reported_by": tuple(
                dict.fromkeys((*data["also_reported_by"], *also_reported_by))
            ),
            "folded": tuple(Folded(f["title"], f["link"], tuple(f["rule_titles"])) for f in folded),
            "spike": SpikeFacts(**spike) if spike else None,
        }
    )


def sighting_to_json(sighting: Sighting) -> str:
    data = asdict(sighting)
    data["published"] = sighting.published.isoformat() if sighting.published else None
    data["first_seen"] = sighting.first_seen.isoformat()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def sighting_from_json(text: str) -> Sighting:
    """The sighting ``text`` encodes; keys this version does not know are ignored, and
    the optional ones a row lacks take their defaults."""
    data: dict[str, Any] = {k: v for k, v in json.loads(text).items() if k in _SIGHTING_FIELDS}
    published = data.pop("published")
    return Sighting(
        **{
            **data,
            "published": datetime.fromisoformat(published) if published else None,
            "first_seen": datetime.fromisoformat(data["first_seen"]),
            "rule_titles": tuple(data["rule_titles"]),
            "terms_as_written": tuple(data.get("terms_as_written", ())),
        }
    )


def posted_to_json(posted: Posted) -> str:
    return json.dumps({"channel": posted.channel, "ts": posted.ts}, separators=(",", ":"))


def posted_from_json(text: str) -> Posted:
    data: dict[str, str] = json.loads(text)
    return Posted(data["channel"], data["ts"])


def notice_to_json(title: str, text: str) -> str:
    return json.dumps({"title": title, "text": text}, ensure_ascii=False, separators=(",", ":"))


def notice_from_json(text: str) -> tuple[str, str]:
    """(title, text) of a stored notice."""
    data: dict[str, str] = json.loads(text)
    return data["title"], data["text"]
