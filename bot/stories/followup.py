"""When a later sighting of a story is a significant development, flagged in its reply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from bot.stories.cluster import Signature, stems
from bot.timing import rough

# A sighting this long after the story's latest one is news again: the story had gone quiet.
FOLLOW_UP_GAP = 86400.0


def follow_up(
    earlier: Iterable[Signature],
    last_seen: datetime,
    title_terms: Sequence[str],
    now: datetime,
) -> str | None:
    """Why a later sighting is a follow-up, or None.

    Its title carries a term the rules matched that no earlier telling of the story had in
    its title or lead (the mission "suspended"), or it comes more than
    :data:`FOLLOW_UP_GAP` after the story's latest sighting. Words are compared by their
    stems, as stories are: "policiers" is not new where "policier" was told, nor is
    "Canadian police" where the lead said the RCMP's Canadian officers were police.
    """
    told: set[str] = set()
    for signature in earlier:
        told |= signature.words
    new = [term for term in dict.fromkeys(title_terms) if not stems(term) <= told]
    if new:
        return "new in the title: " + ", ".join(new)
    gap = (now - last_seen).total_seconds()
    if gap > FOLLOW_UP_GAP:
        return f"first report in {rough(gap)}"
    return None
