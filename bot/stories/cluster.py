"""Stand-in clustering (replaced by the real core): same canonical link or same title."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.feeds.identity import canonical_link
from bot.text import tokens


@dataclass(frozen=True, slots=True)
class Signature:
    title: str
    link: str | None

    def to_json(self) -> str:
        return json.dumps({"t": self.title, "l": self.link})

    @classmethod
    def from_json(cls, text: str) -> Signature:
        data = json.loads(text)
        return cls(data["t"], data["l"])


def signature(title: str, lead: str, link: str | None, language: str | None = None) -> Signature:
    return Signature(" ".join(tokens(title)), canonical_link(link) if link else None)


class StoryIndex:
    def __init__(self, window: float) -> None:
        self._window = timedelta(seconds=window)
        self._stories: dict[int, tuple[list[Signature], datetime]] = {}

    def add(self, story_id: int, sig: Signature, at: datetime) -> None:
        sigs, last = self._stories.get(story_id, ([], at))
        sigs.append(sig)
        self._stories[story_id] = (sigs, max(last, at))

    def find(self, sig: Signature, now: datetime) -> int | None:
        for story_id, (sigs, last) in sorted(self._stories.items()):
            if now - last > self._window:
                continue
            if any(
                (s.link and s.link == sig.link) or (s.title and s.title == sig.title) for s in sigs
            ):
                return story_id
        return None

    def expire(self, now: datetime) -> None:
        for story_id, (_, last) in list(self._stories.items()):
            if now - last > self._window:
                del self._stories[story_id]

    def __len__(self) -> int:
        return len(self._stories)
