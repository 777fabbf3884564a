"""Sample values the notifier tests share, so each test states only what it changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.model import Alert, Sighting, Summary

NOW = datetime(2024, 5, 1, 15, tzinfo=UTC)


def sample_alert(**changes: Any) -> Alert:
    """An alert about the RCMP in Iraq, published three hours before ``NOW``."""
    base = Alert(
        rule_id="iraq",
        rule_title="Canadian police mission in Iraq",
        destination="iraq-desk",
        feed_id="rcmp",
        source="RCMP news",
        item_key="guid-1",
        title="RCMP officers arrive in Baghdad",
        link="https://www.rcmp-grc.gc.ca/en/news/1",
        published=NOW - timedelta(hours=3),
        first_seen=NOW,
        summary=Summary("Canadian police officers arrived in Iraq.", ((0, 15),)),
        terms=("canadian police", "iraq"),
    )
    return replace(base, **changes)


def sample_sighting(**changes: Any) -> Sighting:
    """A later telling of :func:`sample_alert`'s story by another outlet, an hour before ``NOW``."""
    base = Sighting(
        story_id=17,
        destination="iraq-desk",
        source="CBC News",
        title="Canadian police to train Iraqi officers",
        link="https://www.cbc.ca/news/world/rcmp-iraq-1.123",
        published=NOW - timedelta(hours=1),
        first_seen=NOW,
        rule_titles=("Canadian police mission in Iraq",),
        terms_as_written=("Canadian police", "Iraq"),
        outlets=2,
    )
    return replace(base, **changes)


def distinct(n: int) -> str:
    """Words no other generated story ``n`` has (each a different five-letter start), so that
    story clustering tells generated stories apart (titles alike but for a number are one
    story to it)."""

    def word(k: int) -> str:
        letters = ""
        for _ in range(6):
            k, digit = divmod(k, 26)
            letters += chr(ord("a") + digit)
        return letters

    return " ".join(word(6 * n + part) for part in range(6))
