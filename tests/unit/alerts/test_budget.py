"""What the attention budget would do with a rule's alerts over items read (``newswatch test``):
the routes and caps of bot.alerts.attention, replayed in time order and counted as the store
counts them, and how each fate is told."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.alerts.budget import (
    Fate,
    arrival_text,
    cap_text,
    fate_text,
    moment_text,
    quiet_text,
    replay,
    spike_text,
    tally_text,
)
from bot.config.schema import Cap, Destination, Quiet, Rule, Settings, Spike

# Monday 9 March 2026: Toronto is on EDT (UTC-4) since the night before.
MONDAY = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
TORONTO = {"from": "22:00", "to": "07:00", "timezone": "America/Toronto"}


def rule(**more: Any) -> Rule:
    return Rule.model_validate(
        {"id": "mission", "title": "Police mission", "query": "police", **more}
    )


def destinations(**specs: dict[str, Any]) -> dict[str, Destination]:
    """Destinations by id, from their settings as a user writes them (console unless typed)."""
    documents = {
        name: {"type": "console", **spec}
        if spec.get("type", "console") == "console"
        else {"token": "xoxb-test", "channel": "C1", **spec}
        for name, spec in specs.items()
    }
    return dict(
        Settings.model_validate(
            {"store": "sqlite::memory:", "destinations": documents}
        ).destinations
    )


def minutes(*offsets: int, start: datetime = MONDAY) -> list[datetime]:
    return [start + timedelta(minutes=m) for m in offsets]


def outcomes(rows: list[tuple[Fate, ...]], dest_id: str = "desk") -> list[str]:
    return [next(f.outcome for f in row if f.destination == dest_id) for row in rows]


def test_a_burst_past_the_cap_waits_for_one_message_at_the_periods_end() -> None:
    desk = destinations(desk={"cap": {"per": "1h", "max": 2}})
    rows = replay(rule(), desk, minutes(0, 5, 10, 20, 59, 60, 61))
    assert outcomes(rows) == ["at once", "at once", "cap", "cap", "cap", "at once", "at once"]
    capped = [row[0] for row in rows if row[0].outcome == "cap"]
    assert {f.deliver_at for f in capped} == {MONDAY + timedelta(hours=1)}
    assert {f.batch for f in capped} == {3} and {f.over for f in capped} == {("destination",)}


def test_items_are_replayed_in_the_order_they_arrive_not_the_order_read() -> None:
    desk = destinations(desk={"cap": {"per": "1h", "max": 1}})
    rows = replay(rule(), desk, minutes(30, 10, 20))
    assert outcomes(rows) == ["cap", "at once", "cap"]


def test_urgent_alerts_go_at_once_in_quiet_hours_and_past_caps_and_count_against_none() -> None:
    desk = destinations(
        desk={"type": "slack", "mention": "@here", "quiet": TORONTO, "cap": {"per": "1h", "max": 1}}
    )
    urgent = rule(priority="urgent", cap={"per": "1h", "max": 1})
    night = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 23:00 in Toronto
    rows = replay(urgent, desk, [*minutes(0, 1, 2), night])
    assert outcomes(rows) == ["urgent"] * 4
    assert rows[3][0].deliver_at == night
    assert fate_text(rows[3][0], urgent, desk["desk"]) == "urgent, at once, mentions @here"
    normal = rule()
    assert fate_text(replay(normal, desk, minutes(0))[0][0], normal, desk["desk"]) == "at once"


def test_alerts_in_quiet_hours_are_held_to_their_end_and_not_counted_against_the_cap() -> None:
    desk = destinations(desk={"quiet": TORONTO, "cap": {"per": "1h", "max": 1}})
    night = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # Monday 23:00 in Toronto
    morning = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # Tuesday 07:00 in Toronto
    rows = replay(rule(), desk, minutes(0, 10, start=night) + minutes(1, start=morning))
    assert outcomes(rows) == ["quiet", "quiet", "at once"]
    assert rows[0][0].deliver_at == morning
    assert fate_text(rows[0][0], rule(), desk["desk"]) == (
        "held: quiet hours until Tue 07:00 America/Toronto (11:00 UTC)"
    )


def test_a_cap_period_ending_in_quiet_hours_releases_its_more_message_when_they_end() -> None:
    desk = destinations(desk={"quiet": TORONTO, "cap": {"per": "1h", "max": 1}})
    evening = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)  # Monday 21:30 in Toronto
    rows = replay(rule(), desk, minutes(0, 5, start=evening))
    assert outcomes(rows) == ["at once", "cap"]
    assert rows[1][0].deliver_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)


def test_the_rules_cap_counts_per_destination_and_both_caps_are_named_when_both_are_passed() -> (
    None
):
    dests = destinations(desk={"cap": {"per": "1h", "max": 2}}, wire={})
    capped = rule(cap={"per": "1h", "max": 1})
    rows = replay(capped, dests, minutes(0, 1, 2))
    assert outcomes(rows, "wire") == ["at once", "cap", "cap"]
    assert [row[0].over for row in rows] == [(), ("rule",), ("destination", "rule")]
    desk = dests["desk"]
    assert fate_text(rows[1][0], capped, desk) == (
        'past the rule\'s cap (1 per 1h): in the "2 more" message at Mon 16:00 UTC'
    )
    assert fate_text(rows[2][0], capped, desk) == (
        "past the cap (2 per 1h) and the rule's cap (1 per 1h):"
        ' in the "2 more" message at Mon 16:00 UTC'
    )


def test_only_the_destinations_the_rule_notifies() -> None:
    dests = destinations(desk={}, wire={}, night={})
    rows = replay(rule(notify=["night", "desk"]), dests, minutes(0))
    assert [f.destination for f in rows[0]] == ["night", "desk"]


def test_digest_rules_and_digest_destinations_go_into_digests_uncounted() -> None:
    dests = destinations(
        desk={"cap": {"per": "1h", "max": 1}},
        daily={"type": "slack", "digest": {"every": "6h"}, "cap": {"per": "1h", "max": 1}},
    )
    digest = rule(priority="digest")
    rows = replay(digest, dests, minutes(0, 1, 2))
    assert {f.outcome for row in rows for f in row} == {"digest"}
    assert fate_text(rows[0][0], digest, dests["desk"]) == "into the digest at Tue 00:00 UTC"
    assert fate_text(rows[0][1], digest, dests["daily"]) == "into the digest at Mon 18:00 UTC"
    assert outcomes(replay(rule(), dests, minutes(0, 1)), "daily") == ["digest", "digest"]


@given(
    st.lists(st.integers(0, 6 * 60), max_size=60),
    st.integers(1, 5),
    st.sampled_from([600.0, 3600.0, 7200.0]),
)
def test_a_period_has_at_most_the_cap_on_their_own_and_the_rest_only_once_it_is_reached(
    offsets: list[int], most: int, per: float
) -> None:
    desk = destinations(desk={"cap": {"per": per, "max": most}})
    rows = replay(rule(), desk, minutes(*offsets))
    alone = Counter(
        f.deliver_at.timestamp() // per for row in rows for f in row if f.outcome == "at once"
    )
    capped = [f for row in rows for f in row if f.outcome == "cap"]
    assert sum(alone.values()) + len(capped) == len(offsets)
    assert all(count <= most for count in alone.values())
    for fate in capped:  # released at the end of a period whose cap was reached
        assert fate.deliver_at.timestamp() % per == 0
        assert alone[fate.deliver_at.timestamp() // per - 1] == most


def test_the_totals_of_a_destination() -> None:
    fates = [
        Fate("desk", outcome, MONDAY)
        for outcome in ("urgent", "at once", "at once", "quiet", "cap", "cap", "digest")
    ]
    assert tally_text(fates) == (
        "3 at once (1 urgent), 1 held in quiet hours, 2 past caps, 1 into digests"
    )
    assert (
        tally_text([]) == "0 at once (0 urgent), 0 held in quiet hours, 0 past caps, 0 into digests"
    )


def test_times_are_told_on_the_quiet_hours_clock_across_the_dst_change() -> None:
    quiet = Quiet.model_validate(TORONTO)
    # Toronto springs forward at 02:00 on Sunday 8 March 2026: 07:00 is 11:00 UTC, not 12:00.
    assert moment_text(datetime(2026, 3, 8, 11, 0, tzinfo=UTC), quiet) == (
        "Sun 07:00 America/Toronto (11:00 UTC)"
    )
    assert moment_text(datetime(2026, 3, 7, 12, 0, tzinfo=UTC), quiet) == (
        "Sat 07:00 America/Toronto (12:00 UTC)"
    )
    assert moment_text(datetime(2026, 3, 10, 2, 0, tzinfo=UTC), quiet) == (
        "Mon 22:00 America/Toronto (Tue 02:00 UTC)"
    )
    assert moment_text(MONDAY) == "Mon 15:00 UTC"
    assert (
        moment_text(MONDAY, Quiet.model_validate({"from": "22:00", "to": "06:00"}))
        == "Mon 15:00 UTC"
    )
    assert arrival_text(MONDAY) == "Mon 2026-03-09 15:00 UTC"


def test_settings_in_a_compact_form() -> None:
    assert cap_text(Cap(per=3600, max=10)) == "10 per 1h"
    assert cap_text(Cap(per=90 * 60, max=1)) == "1 per 90m"
    assert quiet_text(Quiet.model_validate(TORONTO)) == "22:00–07:00 America/Toronto"
    weekdays = Quiet.model_validate({**TORONTO, "days": ["fri", "mon", "tue", "wed", "thu"]})
    assert quiet_text(weekdays) == "22:00–07:00 America/Toronto, mon–fri"
    odd = Quiet.model_validate(
        {"from": "00:00", "to": "00:00", "days": ["sun", "sat", "mon", "wed", "thu", "fri"]}
    )
    assert quiet_text(odd) == "00:00–00:00 UTC, mon wed–sun"
    assert spike_text(Spike(window=6 * 3600, factor=3, min=5)) == "over 3× usual in 6h, at least 5"
    assert spike_text(Spike(window=3600, factor=2.5, min=1)) == "over 2.5× usual in 1h, at least 1"
