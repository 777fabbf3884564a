"""Edits settings.yaml in place, keeping the user's comments, order and layout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.config.opml import OpmlFeed, feed_id
from bot.feeds.identity import canonical_link


def add_feeds(settings_file: Path, feeds: Sequence[OpmlFeed]) -> tuple[list[str], list[str]]:
    """Appends ``feeds`` not configured yet (by canonical URL); returns (added, skipped)."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    document = yaml.load(settings_file.read_text(encoding="utf-8")) or CommentedMap()
    existing = document.get("feeds")
    if existing is None:
        existing = document["feeds"] = CommentedSeq()
    known_urls = {canonical_link(str(f.get("url", ""))) for f in existing}
    taken = {str(f.get("id")) for f in existing}
    added, skipped = [], []
    for feed in feeds:
        if canonical_link(feed.url) in known_urls:
            skipped.append(feed.url)
            continue
        known_urls.add(canonical_link(feed.url))
        entry = CommentedMap(id=feed_id(feed.title, taken), url=feed.url, title=feed.title)
        if feed.categories:
            entry["tags"] = [feed_id(feed.categories[-1], set())]
        existing.append(entry)
        added.append(entry["id"])
    if added:
        with settings_file.open("w", encoding="utf-8") as out:
            yaml.dump(document, out)
    return added, skipped
