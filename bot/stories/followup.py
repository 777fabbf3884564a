"""When a later sighting of a story is a significant development, flagged in its reply."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.text import tokens
from bot.timing import rough

# A sighting this long after the story's latest one is news again: the story had gone quiet.
FOLLOW_UP_GAP = 86400.0


def follow_up(
    earlier_titles: Sequence[str],
    last_seen: datetime,
    title_terms: Sequence[str],
    now: datetime,
) -> str | None:
    """Why a later sighting is a follow-up, or None.

    Its title carries a term the rules matched that no earlier title of the story had
    (the mission "suspended"), or it comes more than :data:`FOLLOW_UP_GAP` after the
    story's latest sighting. Terms are compared as the matcher normalised them, word
    for word, so "police" in an earlier title does not hide "police officers".
    """
    seen = [f" {' '.join(tokens(title))} " for title in earlier_titles]
    new = [term for term in dict.fromkeys(title_terms) if not any(f" {term} " in s for s in seen)]
    if new:
        return "new in the title: " + ", ".join(new)
    gap = (now - last_seen).total_seconds()
    if gap > FOLLOW_UP_GAP:
        return f"first report in {rough(gap)}"
    return None
