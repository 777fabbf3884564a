"""The flood ceiling: one poll of one feed sends a destination at most N single alerts.

A feed that suddenly serves thousands of matching items (a republished archive,
regenerated guids, a hostile feed) would otherwise hold a Slack channel for
hours at one message a second, every other feed's alerts queued behind it. The
matches over the ceiling are folded into one overflow alert per destination,
which lists the first of them and counts them all.

Pure: no I/O.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.alerts.render import TITLE_MAX, URL_MAX
from bot.model import Alert, Folded, QueuedAlert, Summary

OVERFLOW_RULE = "+overflow"
"""The rule id of overflow alerts: not a valid rule id, so it never meets a real rule's."""
FOLDED_LISTED = 100
"""Items an overflow alert stores (the rest are only counted): bounds its outbox payload."""


@dataclass(frozen=True, slots=True)
class Fold:
    """What folding did for one destination: ``alerts`` folded, about ``items`` items."""

    destination: str
    alerts: int
    items: int


def fold(
    queued: Sequence[QueuedAlert], ceiling: int, now: datetime
) -> tuple[list[QueuedAlert], list[Fold]]:
    """``queued`` with at most ``ceiling`` single alerts per destination, the rest folded.

    Digest alerts pass through: a digest already sends a batch as a few messages; so do
    urgent ones, which go out on their own whatever the flood.
    The newest matches stay single (the likeliest to be news when a feed floods
    with its archive); each destination over the ceiling gets one overflow alert
    after its singles. Alerts not folded keep their order.
    """
    by_destination: dict[str, list[int]] = {}
    for index, q in enumerate(queued):
        if not q.digest and q.alert.priority != "urgent":
            by_destination.setdefault(q.alert.destination, []).append(index)
    dropped: set[int] = set()
    overflows: list[QueuedAlert] = []
    folds: list[Fold] = []
    for destination, indices in by_destination.items():
        if len(indices) <= ceiling:
            continue
        excess = _excess(queued, indices, ceiling, now)
        dropped.update(excess)
        overflow = overflow_alert([queued[i] for i in excess], now)
        overflows.append(overflow)
        folds.append(Fold(destination, len(excess), overflow.alert.folded_count))
    kept = [q for index, q in enumerate(queued) if index not in dropped]
    return kept + overflows, folds


def _excess(
    queued: Sequence[QueuedAlert], indices: list[int], ceiling: int, now: datetime
) -> list[int]:
    """The ``indices`` of ``queued`` past the ``ceiling`` newest: the next newest first (the
    ones an overflow lists), then the rest in feed order. Undated and future-dated items count
    as published ``now`` (a feed cannot jump the queue by dating its items ahead); ties keep
    feed order. A partial selection, not a sort: linear in a flood of any size."""

    def published(index: int) -> datetime:
        moment = queued[index].alert.published
        if moment is None:
            return now
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return min(moment, now)

    newest = heapq.nlargest(ceiling + FOLDED_LISTED, indices, key=published)
    ranked = set(newest)
    return newest[ceiling:] + [i for i in indices if i not in ranked]


def overflow_alert(folded: Sequence[QueuedAlert], now: datetime) -> QueuedAlert:
    """One alert standing for ``folded`` (one feed, one destination, at least one alert).

    It is anchored to the first folded item: the store queues it only with that
    item's first sighting, and its story key (feed and anchor item) is unique, so
    a replay of the same poll never queues it twice.
    """
    first = folded[0].alert
    alerts: dict[str, Alert] = {}
    rules: dict[str, dict[str, None]] = {}
    for q in folded:
        key = q.alert.item_key
        titles = rules.get(key)
        if titles is None:
            alerts[key], titles = q.alert, rules.setdefault(key, {})
        titles.update(dict.fromkeys((q.alert.rule_title, *q.alert.also_matched)))
    listed = tuple(
        Folded(
            title=alert.title[:TITLE_MAX],
            link=alert.link if alert.link and len(alert.link) <= URL_MAX else None,
            rule_titles=tuple(title[:TITLE_MAX] for title in rules[key]),
        )
        for key, alert in itertools.islice(alerts.items(), FOLDED_LISTED)
    )
    overflow = replace(
        first,
        rule_id=OVERFLOW_RULE,
        rule_title="More matches",
        title=f"{len(alerts)} more matches",
        link=None,
        published=None,
        first_seen=now,
        summary=Summary(""),
        terms=(),
        terms_as_written=(),
        also_reported_by=(),
        also_matched=(),
        folded=listed,
        folded_count=len(alerts),
        priority="normal",
        held=None,
    )
    return QueuedAlert(overflow, folded[0].deliver_at)
