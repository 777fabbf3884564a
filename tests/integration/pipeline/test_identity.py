"""Which fetched items are new: items without guid, link or title, and guids a publisher
reuses for another story."""

from __future__ import annotations

import logging

import pytest

from bot.model import Posted
from bot.store import Store
from tests.integration.pipeline.harness import Harness, rule, settings, url
from tests.peers.rss import Entry

POLICE = rule("police", "RCMP")


def test_items_without_guid_link_or_title_are_each_seen(store: Store) -> None:
    h = Harness(store, settings(), [POLICE])
    old = Entry("", "RCMP budget tabled in Ottawa.")
    h.fetcher.serve(url("a"), [old])
    h.poll()
    mosul = Entry("", "RCMP officers head to Mosul for a police mission.")
    h.fetcher.serve(url("a"), [mosul, old])
    report = h.poll()
    assert [(f.status, f.new_items) for f in report.feeds] == [("ok", 1)]
    assert [a.feed_id for a in report.alerts] == ["a"]
    assert h.deliver().sent == 1
    h.fetcher.serve(url("a"), [old, mosul, Entry("", "Hockey night: the Leafs won.")])
    again = h.poll()
    assert [(f.new_items, len(f.alerts)) for f in again.feeds] == [(1, 0)]


BUDGET = Entry(
    "RCMP budget tabled",
    "The RCMP spending plans for next year were tabled in Ottawa on Tuesday.",
    "https://news.example/budget",
    guid="g1",
)
MOSUL = Entry(
    "RCMP officers head to Mosul",
    "A police mission will train Iraqi forces, the force said in a statement.",
    "https://news.example/mosul",
    guid="g1",
)
HOCKEY = Entry("Hockey night", "The Leafs won.", "https://news.example/hockey", guid="g2")


def test_a_guid_reused_for_another_story_alerts_it_once_and_says_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [BUDGET])
    h.poll()
    h.fetcher.serve(url("a"), [MOSUL])
    with caplog.at_level(logging.INFO, logger="newswatch"):
        report = h.poll()
    assert [a.title for a in report.alerts] == [MOSUL.title]
    reused = [r for r in caplog.records if getattr(r, "event", None) == "guid_reused"]
    assert [r.getMessage() for r in reused] == ["feed a: guid g1 reused for a different story"]
    assert h.deliver().sent == 1
    # Served again (with more, and its lead updated), it is the story now seen under g1.
    updated = Entry(
        "UPDATED: RCMP officers head to Mosul",
        MOSUL.summary + " More officers may follow.",
        MOSUL.link,
        guid="g1",
    )
    h.fetcher.serve(url("a"), [HOCKEY, updated])
    again = h.poll()
    assert [(f.new_items, len(f.alerts)) for f in again.feeds] == [(1, 0)]
    h.fetcher.serve(url("a"), [HOCKEY, MOSUL])
    assert h.poll().alerts == []
    assert h.deliver().sent == 0


def test_a_known_guid_retitled_or_rewritten_alone_is_the_same_item(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [BUDGET])
    h.poll()
    typo = Entry("RCMP budgte tabled", BUDGET.summary, BUDGET.link, guid="g1")
    new_lead = Entry(BUDGET.title, MOSUL.summary + " RCMP.", BUDGET.link, guid="g1")
    new_title = Entry(MOSUL.title, BUDGET.summary, BUDGET.link, guid="g1")
    with caplog.at_level(logging.INFO, logger="newswatch"):
        for entry in (typo, new_lead, new_title):
            h.fetcher.serve(url("a"), [entry])
            assert [f.new_items for f in h.poll().feeds] == [0]
    assert not [r for r in caplog.records if getattr(r, "event", None) == "guid_reused"]


def test_a_retitled_and_rewritten_item_at_the_same_link_is_the_same_page(store: Store) -> None:
    """A live page rewritten under its guid and its address is an edit, not a reuse."""
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [BUDGET])
    h.poll()
    h.fetcher.serve(url("a"), [Entry(MOSUL.title, MOSUL.summary, BUDGET.link, guid="g1")])
    assert h.poll().alerts == []


def test_a_guid_that_goes_back_to_its_first_story_does_not_alert_it_again(
    store: Store,
) -> None:
    """Days apart, past ``stories.window``: only the item's own identity holds it back."""
    h = Harness(store, settings(), [POLICE])
    h.fetcher.serve(url("a"), [HOCKEY])
    h.poll()
    sent = 0
    for entry in (BUDGET, MOSUL, BUDGET, MOSUL):
        h.time.skip(4 * 86400)
        h.fetcher.serve(url("a"), [HOCKEY, entry])
        h.poll()
        sent += h.deliver().sent
    assert sent == 2


@pytest.mark.parametrize(("window", "later_alerts"), [("72h", 0), ("2h", 1)])
def test_a_same_titled_item_joins_the_story_only_within_stories_window(
    store: Store, window: str, later_alerts: int
) -> None:
    h = Harness(store, settings(feeds=("a", "b"), stories={"window": window}), [POLICE])
    first = Entry("RCMP officers head to Mosul", "A police mission.", "https://a.example/1")
    copy = Entry("RCMP officers head to Mosul", "A police mission.", "https://b.example/9")
    for feed in ("a", "b"):
        h.fetcher.serve(url(feed), [])
    h.poll()
    h.fetcher.serve(url("a"), [first])
    h.poll()
    assert h.deliver().sent == 1
    h.time.skip(3 * 3600)
    h.fetcher.serve(url("b"), [copy])
    report = h.poll()
    assert [a.feed_id for a in report.alerts] == ["b"]  # matched either way...
    assert h.deliver().sent == 1
    # ...alerted anew only past the window; within it, a reply to the first alert.
    desk = h.notifiers["desk"]
    assert len(desk.alerts) == 1 + later_alerts
    assert [(s.title, p.link, posted) for s, p, posted in desk.sightings] == [
        (copy.title, first.link, Posted("C1", "1.0"))
    ] * (1 - later_alerts)
