"""``newswatch stats`` as text: sparklines of daily counts, tables that fit a terminal.

Users prune and tune rules from this: which rules are noisy, which never match,
how busy each feed is. Pure: the counts come in as mappings, lines go out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.alerts.budget import cap_text, quiet_text, spike_text
from bot.alerts.flood import OVERFLOW_RULE
from bot.config.schema import Destination, Rule

BLOCKS = "▁▂▃▄▅▆▇█"
"""A sparkline's levels: the lowest is a day with nothing, the highest the busiest day."""
MIN_FITTED = 20  # characters of a cut column that stay, however narrow the terminal
OVERFLOW_NOTE = "flood overflow messages"
BUDGET_COUNTS = ("urgent", "held", "capped")
"""The attention budget's day counters, shown beside a rule's alerts once any is counted."""

PerDay = Mapping[date, int]


def window(last: date, days: int) -> list[date]:
    """The ``days`` days ending with ``last``, oldest first."""
    return [last - timedelta(days=n) for n in range(days - 1, -1, -1)]


def sparkline(values: Sequence[int]) -> str:
    """One block per value: zero the lowest, any other value one of the seven above it in
    proportion to the largest (so a single item still shows, and the peak is a full block)."""
    peak = max(values, default=0)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[math.ceil(v * top / peak) if v > 0 else 0] for v in values)


def table_lines(rows: Sequence[tuple[str, ...]], right: frozenset[int] = frozenset()) -> list[str]:
    """``rows`` as aligned columns two spaces apart; ``right`` columns (numbers) right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def fit_column(
    rows: list[tuple[str, ...]], column: int, width: int, *, keep_end: bool = False
) -> list[tuple[str, ...]]:
    """``rows`` with ``column`` cut (``…`` marking the cut) so each line fits ``width``
    characters; ``keep_end`` cuts the start instead (a sparkline keeps its latest days)."""
    others = sum(max(len(r[i]) for r in rows) + 2 for i in range(len(rows[0])) if i != column)
    room = max(MIN_FITTED, width - others)

    def cut(cell: str) -> str:
        if len(cell) <= room:
            return cell
        return "…" + cell[len(cell) - room + 1 :] if keep_end else cell[: room - 1] + "…"

    return [(*r[:column], cut(r[column]), *r[column + 1 :]) for r in rows]


@dataclass(frozen=True, slots=True)
class StatsInput:
    """What the report is made of: the window's days (one at least), the configured rules
    and feeds (in config order), and the stored counts per rule or feed and day."""

    days: Sequence[date]
    rules: Sequence[str]
    feeds: Sequence[str]
    matches: Mapping[str, PerDay] = field(default_factory=dict)
    alerts: Mapping[str, PerDay] = field(default_factory=dict)
    items: Mapping[str, PerDay] = field(default_factory=dict)
    last_match: Mapping[str, date] = field(default_factory=dict)
    urgent: Mapping[str, PerDay] = field(default_factory=dict)
    held: Mapping[str, PerDay] = field(default_factory=dict)
    capped: Mapping[str, PerDay] = field(default_factory=dict)
    settings: Sequence[tuple[str, str, str]] = ()
    """The attention budget's settings (:func:`budget_settings`)."""

    def budget(self, rule: str) -> tuple[int, int, int]:
        """The rule's urgent, held and capped alerts in the window."""
        urgent, held, capped = (
            _total(counts.get(rule), self.days) for counts in (self.urgent, self.held, self.capped)
        )
        return urgent, held, capped


def budget_settings(
    rules: Sequence[Rule], destinations: Mapping[str, Destination]
) -> list[tuple[str, str, str]]:
    """Each rule's priority (when not normal), cap and spike, and each destination's quiet
    hours and cap, as (``rule``/``destination``, id, settings); those with none left out."""
    found = []
    for rule in rules:
        parts: list[str] = [rule.priority] if rule.priority != "normal" else []
        parts += [f"cap {cap_text(rule.cap)}"] if rule.cap else []
        parts += [f"spike {spike_text(rule.spike)}"] if rule.spike else []
        found += [("rule", rule.id, "; ".join(parts))] if parts else []
    for dest_id, destination in destinations.items():
        parts = [f"quiet {quiet_text(destination.quiet)}"] if destination.quiet else []
        parts += [f"cap {cap_text(destination.cap)}"] if destination.cap else []
        found += [("destination", dest_id, "; ".join(parts))] if parts else []
    return found


def stats_lines(data: StatsInput, width: int | None = None) -> list[str]:
    """The report: matched rules (noisiest first), the rules with no match in the window,
    counts kept for rules no longer configured, then each feed's new items per day.
    ``width``: the terminal's, to fit the sparklines into (None: never cut)."""
    n = len(data.days)
    out = [f"Rules, {data.days[0]} – {data.days[-1]} UTC ({n}-day window)"]
    configured = set(data.rules)
    quiet = [r for r in data.rules if not _total(data.matches.get(r), data.days)]
    busy = sorted(
        (r for r in data.rules if r not in quiet),
        key=lambda r: (-_total(data.matches.get(r), data.days), r),
    )
    if busy:
        counters = any(any(data.budget(rule)) for rule in busy)
        extra = tuple(c.upper() for c in BUDGET_COUNTS) if counters else ()
        rows: list[tuple[str, ...]] = [
            ("RULE", "MATCHES", "ALERTS", *extra, "MATCHES PER DAY", "LAST MATCH")
        ]
        for rule in busy:
            per_day = _series(data.matches.get(rule), data.days)
            rows.append(
                (
                    rule,
                    str(sum(per_day)),
                    str(_total(data.alerts.get(rule), data.days)),
                    *(map(str, data.budget(rule)) if counters else ()),
                    sparkline(per_day),
                    str(data.last_match.get(rule, "-")),
                )
            )
        numbers = 3 + len(extra)
        out += _fitted(rows, numbers, width, frozenset(range(1, numbers)))
    else:
        out.append("  no rule matched")
    if quiet:
        out += ["", f"No match in the {n}-day window — check their query:"]
        for rule in quiet:
            last = data.last_match.get(rule)
            out.append(f"  {rule}" + (f" (last match {last})" if last else " (never matched)"))
    gone = []
    for rule in sorted((data.matches.keys() | data.alerts.keys()) - configured):
        matches = _total(data.matches.get(rule), data.days)
        alerts = _total(data.alerts.get(rule), data.days)
        if matches or alerts:
            note = f" ({OVERFLOW_NOTE})" if rule == OVERFLOW_RULE else ""
            budget = data.budget(rule)
            counts = "".join(
                f", {name} {count}" for name, count in zip(BUDGET_COUNTS, budget, strict=True)
            )
            gone.append(
                f"  {rule}{note}: matches {matches}, alerts {alerts}"
                + (counts if any(budget) else "")
            )
    if gone:
        out += ["", "Counted for rules not configured now (renamed or removed):", *gone]
    if data.settings:
        out += ["", "Attention budget settings"]
        out += ["  " + line for line in table_lines(data.settings)]
    out += ["", "Feeds, new items per day (a feed's first read not counted)"]
    rows = [("FEED", "ITEMS", "PER DAY")]
    for feed in data.feeds:
        per_day = _series(data.items.get(feed), data.days)
        rows.append((feed, str(sum(per_day)), sparkline(per_day)))
    out += _fitted(rows, 2, width, frozenset({1})) if data.feeds else ["  no feed configured"]
    return out


def _fitted(
    rows: list[tuple[str, ...]], column: int, width: int | None, right: frozenset[int]
) -> list[str]:
    if width is not None:
        rows = fit_column(rows, column, width, keep_end=True)
    return table_lines(rows, right)


def _series(counts: PerDay | None, days: Sequence[date]) -> list[int]:
    return [counts.get(day, 0) if counts else 0 for day in days]


def _total(counts: PerDay | None, days: Sequence[date]) -> int:
    return sum(_series(counts, days))
