"""Edits settings.yaml in place, keeping the user's comments, order and layout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.config.opml import OpmlFeed, feed_id
from bot.config.yamlfile import Editor
from bot.feeds.identity import canonical_link


def add_feeds(settings_file: Path, feeds: Sequence[OpmlFeed]) -> tuple[list[str], list[str]]:
    """Appends ``feeds`` not configured yet (by canonical URL); returns (added, skipped)."""
    editor = Editor()
    document = editor.load(settings_file.read_text(encoding="utf-8"))
    existing = document.get("feeds")
    if existing is None:
        existing = document["feeds"] = editor.sequence()
    known_urls = {canonical_link(str(f.get("url", ""))) for f in existing}
    taken = {str(f.get("id")) for f in existing}
    added, skipped = [], []
    for feed in feeds:
        if canonical_link(feed.url) in known_urls:
            skipped.append(feed.url)
            continue
        known_urls.add(canonical_link(feed.url))
        entry = editor.mapping(id=feed_id(feed.title, taken), url=feed.url, title=feed.title)
        if feed.categories:
            entry["tags"] = [feed_id(feed.categories[-1], set())]
        existing.append(entry)
        added.append(entry["id"])
    if added:
        with settings_file.open("w", encoding="utf-8") as out:
            editor.dump(document, out)
    return added, skipped
