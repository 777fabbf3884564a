"""What the attention budget would do with a rule's alerts over items read: its priority, the
destinations' quiet hours and caps, as ``newswatch test`` and ``newswatch stats`` tell them.

Pure: the same :func:`~bot.alerts.attention.route` and :func:`~bot.alerts.attention.caps` the
poll uses, and the counting the store does at queue time, replayed over the items in the
order they arrive, so a user sees a burst hit the cap before one does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from bot.alerts.attention import caps, notified, route
from bot.config.schema import WEEKDAYS, Cap, Destination, Quiet, Rule, Spike
from bot.config.units import format_duration
from bot.model import as_utc

Outcome = Literal["urgent", "at once", "quiet", "digest", "cap"]
CapOwner = Literal["destination", "rule"]


@dataclass(frozen=True, slots=True)
class Fate:
    """What would become of one alert of the rule in one destination: ``outcome``, and when
    it goes out. Past a cap: whose caps it went over, and ``batch``, how many of the alerts
    replayed share its "N more" message."""

    destination: str
    outcome: Outcome
    deliver_at: datetime
    over: tuple[CapOwner, ...] = ()
    batch: int = 0


def replay(
    rule: Rule, destinations: Mapping[str, Destination], arrivals: Sequence[datetime]
) -> list[tuple[Fate, ...]]:
    """For each arrival time (an item's), the fate of the rule's alert in each destination it
    notifies. Alerts are replayed in time order (ties in the order given); an alert going out
    on its own, and not urgent, counts against every cap it is under (per cap and period, as
    the store counts), and past any of them waits for the "N more" message at the period's
    end. Only these arrivals are counted: the destination's other rules are not."""
    counts: Counter[tuple[str, datetime]] = Counter()
    fates: list[list[Fate]] = [[] for _ in arrivals]
    for index in sorted(range(len(arrivals)), key=lambda i: as_utc(arrivals[i])):
        at = as_utc(arrivals[index])
        for dest_id in notified(rule, destinations):
            destination = destinations[dest_id]
            plan = route(rule.priority, destination, at)
            if rule.priority == "urgent":
                fate = Fate(dest_id, "urgent", plan.deliver_at)
            elif plan.digest:
                fate = Fate(dest_id, "quiet" if plan.held else "digest", plan.deliver_at)
            else:
                over = []
                for count in caps(rule, dest_id, destination, at):
                    counts[count.key, count.period_end] += 1
                    if counts[count.key, count.period_end] > count.max:
                        over.append(count)
                fate = Fate(dest_id, "at once", at)
                if over:
                    owners = tuple(_owner(c.key) for c in over)
                    fate = Fate(dest_id, "cap", max(c.release_at for c in over), owners)
            fates[index].append(fate)
    batches = Counter(
        (f.destination, f.deliver_at) for row in fates for f in row if f.outcome == "cap"
    )
    return [
        tuple(
            replace(f, batch=batches[f.destination, f.deliver_at]) if f.outcome == "cap" else f
            for f in row
        )
        for row in fates
    ]


def _owner(key: str) -> CapOwner:
    return "rule" if key.startswith("rule:") else "destination"


def fate_text(fate: Fate, rule: Rule, destination: Destination) -> str:
    """One alert's fate for people: ``urgent, at once, mentions @here``, ``at once``,
    ``held: quiet hours until …``, ``into the digest at …``, or
    ``past the cap (10 per 1h): in the "3 more" message at …``."""
    at = moment_text(fate.deliver_at, destination.quiet)
    if fate.outcome == "urgent":
        mention = getattr(destination, "mention", None)
        return "urgent, at once" + (f", mentions {mention}" if mention else "")
    if fate.outcome == "at once":
        return "at once"
    if fate.outcome == "quiet":
        return f"held: quiet hours until {at}"
    if fate.outcome == "digest":
        return f"into the digest at {at}"
    settings = {"destination": ("the cap", destination.cap), "rule": ("the rule's cap", rule.cap)}
    over = " and ".join(
        f"{whose} ({cap_text(cap)})"
        for whose, cap in (settings[owner] for owner in fate.over)
        if cap is not None
    )
    return f'past {over}: in the "{fate.batch} more" message at {at}'


def tally_text(fates: Iterable[Fate]) -> str:
    """One destination's fates added up: ``3 at once (1 urgent), 2 held in quiet hours, …``."""
    seen = Counter(f.outcome for f in fates)
    return (
        f"{seen['at once'] + seen['urgent']} at once ({seen['urgent']} urgent),"
        f" {seen['quiet']} held in quiet hours, {seen['cap']} past caps,"
        f" {seen['digest']} into digests"
    )


def arrival_text(at: datetime) -> str:
    """When an item arrives, dated: ``Tue 2026-12-01 03:10 UTC``."""
    return f"{as_utc(at):%a %Y-%m-%d %H:%M} UTC"


def moment_text(at: datetime, quiet: Quiet | None = None) -> str:
    """A time an alert goes out: ``Tue 11:00 UTC``, or on the clock of the destination's quiet
    hours, ``Tue 07:00 America/Toronto (11:00 UTC)`` (the UTC day too when it is not the same)."""
    at = as_utc(at)
    if quiet is None or quiet.timezone == "UTC":
        return f"{at:%a %H:%M} UTC"
    local = at.astimezone(ZoneInfo(quiet.timezone))
    utc = f"{at:%H:%M}" if local.date() == at.date() else f"{at:%a %H:%M}"
    return f"{local:%a %H:%M} {quiet.timezone} ({utc} UTC)"


def cap_text(cap: Cap) -> str:
    """``10 per 1h``."""
    return f"{cap.max} per {format_duration(cap.per)}"


def quiet_text(quiet: Quiet) -> str:
    """``22:00–07:00 America/Toronto, mon–fri`` (no days: every day)."""
    days = "" if set(quiet.days) == set(WEEKDAYS) else ", " + _days(quiet.days)
    return f"{quiet.from_}–{quiet.to} {quiet.timezone}{days}"


def spike_text(spike: Spike) -> str:
    """``over 3× usual in 6h, at least 5``."""
    return f"over {spike.factor:g}× usual in {format_duration(spike.window)}, at least {spike.min}"


def _days(days: Sequence[str]) -> str:
    """Weekdays in week order, a run of three or more as ``mon–fri``."""
    ordered = [i for i, day in enumerate(WEEKDAYS) if day in days]
    runs: list[list[int]] = []
    for i in ordered:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{WEEKDAYS[run[0]]}–{WEEKDAYS[run[-1]]}")
        else:
            parts += [WEEKDAYS[i] for i in run]
    return " ".join(parts)
