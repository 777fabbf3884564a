"""Which fetched items are new: items without guid, link or title, and guids a publisher
reuses for another story."""

from __future__ import annotations

import logging

import pytest

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
