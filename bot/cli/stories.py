"""``newswatch stories`` as text: each recent story, its tellings, and where it went."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.alerts.render import counted, safe_url, shorten
from bot.store import DeliveryView, StoryView

TITLE_WIDTH = 80


def story_lines(stories: Sequence[StoryView]) -> list[str]:
    """Latest story first: a heading (title, sightings, outlets), one line per sighting (time,
    source, language, rules, title, link) and one per destination (the alert's status, its
    thread, its later sightings). Feed text is cleaned to one line: it is untrusted."""
    if not stories:
        return ["no stories sighted in this window"]
    lines: list[str] = []
    for story in stories:
        outlets = len({s.source for s in story.sightings})
        lines.append(
            f"story {story.id}: {shorten(story.title, TITLE_WIDTH)}"
            f" ({counted(len(story.sightings), 'sighting')}, {counted(outlets, 'outlet')},"
            f" {_stamp(story.created_at)} to {_stamp(story.last_at)})"
        )
        for s in story.sightings:
            language = f" [{s.language}]" if s.language else ""
            link = safe_url(s.link)
            lines.append(
                f"  {_stamp(s.seen_at)}  {shorten(s.source, 40)}{language}"
                f" · {shorten(s.title, TITLE_WIDTH)}"
                + (f" · {link}" if link else "")
                + f" · rules: {', '.join(s.rules)}"
            )
        lines.extend(f"  → {_delivery(d)}" for d in story.deliveries)
    return lines


def _delivery(d: DeliveryView) -> str:
    where = "in a thread" if d.threaded else "not threaded"
    later = f"{d.sightings_sent}/{d.sightings} later sightings sent" if d.sightings else ""
    return ", ".join(filter(None, (f"{d.destination}: alert {d.status}", where, later)))


def _stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"
