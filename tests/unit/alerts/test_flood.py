"""The flood ceiling: at most N single alerts per poll, feed and destination, the rest folded."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.alerts.flood import FOLDED_LISTED, OVERFLOW_RULE, fold
from bot.model import Alert, QueuedAlert
from bot.store.codec import alert_from_json, alert_to_json
from tests.factories import NOW, sample_alert
from tests.linearity import assert_linear


def queued(
    n: int,
    dest: str = "desk",
    *,
    rule: str = "iraq",
    digest: bool = False,
    age: timedelta | None = None,
) -> QueuedAlert:
    """Alert ``n`` of a feed: item ``n``, published ``age`` (default ``n`` minutes) ago."""
    alert = sample_alert(
        rule_id=rule,
        rule_title=f"Rule {rule}",
        destination=dest,
        item_key=f"guid-{n}",
        title=f"Story {n}",
        link=f"https://news.example/{n}",
        published=NOW - (age if age is not None else timedelta(minutes=n)),
    )
    return QueuedAlert(alert, NOW, digest=digest)


def singles(out: list[QueuedAlert]) -> list[Alert]:
    return [q.alert for q in out if not q.alert.is_overflow]


def overflows(out: list[QueuedAlert]) -> list[Alert]:
    return [q.alert for q in out if q.alert.is_overflow]


def test_under_the_ceiling_nothing_changes() -> None:
    alerts = [queued(n) for n in range(20)]
    out, folds = fold(alerts, 20, NOW)
    assert out == alerts
    assert folds == []


def test_over_the_ceiling_the_newest_stay_single_and_the_rest_are_one_overflow() -> None:
    # Feed order is oldest first here: the newest are kept wherever they are in the feed.
    alerts = [queued(n) for n in reversed(range(25))]
    out, folds = fold(alerts, 20, NOW)
    assert [a.item_key for a in singles(out)] == [f"guid-{n}" for n in reversed(range(20))]
    (overflow,) = overflows(out)
    assert out[-1].alert is overflow
    assert overflow.folded_count == 5
    assert [f.title for f in overflow.folded] == [f"Story {n}" for n in range(20, 25)]
    assert overflow.folded[0].link == "https://news.example/20"
    assert overflow.folded[0].rule_titles == ("Rule iraq",)
    assert (overflow.rule_id, overflow.destination, overflow.feed_id) == (
        OVERFLOW_RULE,
        "desk",
        "rcmp",
    )
    assert folds[0].destination == "desk" and folds[0].alerts == 5 and folds[0].items == 5


def test_undated_items_keep_feed_order_and_future_dates_do_not_jump_the_queue() -> None:
    undated = [replace(queued(n), alert=replace(queued(n).alert, published=None)) for n in range(5)]
    future = queued(99, age=-timedelta(days=365))
    out, _ = fold([*undated, future], 3, NOW)
    assert [a.item_key for a in singles(out)] == ["guid-0", "guid-1", "guid-2"]
    assert [f.title for f in overflows(out)[0].folded] == ["Story 3", "Story 4", "Story 99"]


def test_the_ceiling_is_per_destination_and_digests_are_left_alone() -> None:
    alerts = (
        [queued(n, "desk") for n in range(4)]
        + [queued(n, "mail") for n in range(2)]
        + [queued(n, "daily", digest=True) for n in range(50)]
    )
    out, folds = fold(alerts, 2, NOW)
    assert [(a.destination, a.item_key) for a in singles(out) if a.destination != "daily"] == [
        ("desk", "guid-0"),
        ("desk", "guid-1"),
        ("mail", "guid-0"),
        ("mail", "guid-1"),
    ]
    assert sum(1 for q in out if q.digest) == 50
    assert [(a.destination, a.folded_count) for a in overflows(out)] == [("desk", 2)]
    assert [f.destination for f in folds] == ["desk"]


def test_urgent_alerts_are_never_folded_and_the_overflow_is_never_urgent() -> None:
    urgent = [replace(q, alert=replace(q.alert, priority="urgent")) for q in map(queued, range(3))]
    normal = [queued(n) for n in range(3, 8)]
    out, _ = fold([*normal, *urgent], 2, NOW)
    assert [a.item_key for a in singles(out) if a.priority == "urgent"] == [
        "guid-0",
        "guid-1",
        "guid-2",
    ]
    (overflow,) = overflows(out)
    assert overflow.folded_count == 3 and overflow.priority == "normal"


def test_an_item_matching_several_rules_is_listed_once_with_every_rule() -> None:
    alerts = [queued(0), *(queued(n, rule=r) for n in (1, 2) for r in ("iraq", "rcmp"))]
    out, folds = fold(alerts, 1, NOW)
    (overflow,) = overflows(out)
    assert [(f.title, f.rule_titles) for f in overflow.folded] == [
        ("Story 1", ("Rule iraq", "Rule rcmp")),
        ("Story 2", ("Rule iraq", "Rule rcmp")),
    ]
    assert overflow.folded_count == 2
    assert (folds[0].alerts, folds[0].items) == (4, 2)


def test_a_huge_flood_stores_a_bounded_list_and_counts_everything() -> None:
    out, _ = fold([queued(n) for n in range(10_000)], 20, NOW)
    assert len(out) == 21
    (overflow,) = overflows(out)
    assert overflow.folded_count == 9_980
    assert len(overflow.folded) == FOLDED_LISTED
    assert len(alert_to_json(overflow)) < 50_000


def test_hostile_sizes_are_cut_before_they_reach_the_outbox() -> None:
    huge = replace(queued(1).alert, title="x" * 100_000, link="https://e.example/" + "a" * 5000)
    out, _ = fold([queued(0), QueuedAlert(huge, NOW)], 1, NOW)
    (listed,) = overflows(out)[0].folded
    assert len(listed.title) <= 500
    assert listed.link is None


def test_the_overflow_is_deterministic_and_keyed_by_feed_and_its_first_folded_item() -> None:
    alerts = [queued(n) for n in range(30)]
    first, _ = fold(alerts, 20, NOW)
    again, _ = fold(list(alerts), 20, NOW)
    assert first == again
    overflow = first[-1]
    assert overflow.alert.item_key == "guid-20"
    assert not overflow.digest and overflow.deliver_at == NOW


def test_an_overflow_round_trips_through_the_outbox_codec() -> None:
    out, _ = fold([queued(n) for n in range(30)], 20, NOW)
    overflow = out[-1].alert
    assert alert_from_json(alert_to_json(overflow)) == overflow


def test_payloads_written_before_overflows_existed_still_read() -> None:
    alert = sample_alert()
    payload = alert_to_json(alert).replace(',"folded":[],"folded_count":0', "")
    assert "folded" not in payload
    assert alert_from_json(payload) == alert


def test_folding_is_linear() -> None:
    # Sizes whose alerts fit the CPU caches: past them, memory stalls blur the ratio.
    assert_linear(lambda n: [queued(i) for i in range(n)], lambda q: fold(q, 20, NOW), 1_000)


def test_payloads_written_by_a_newer_version_still_read() -> None:
    """During a rolling upgrade an older replica may claim a row a newer one queued."""
    alert = sample_alert()
    payload = alert_to_json(alert).replace('{"', '{"a_later_field":[1,2],"', 1)
    assert alert_from_json(payload) == alert
