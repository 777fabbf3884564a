"""``newswatch stats`` reads the store's day counters into the report: the attention budget's
(urgent, held, capped) beside each rule's alerts."""

from __future__ import annotations

from datetime import date, timedelta

from bot.alerts.stats import stats_lines, window
from bot.cli.main import _stats_input
from bot.store import DailyStats, FeedDay, RuleDay

LAST = date(2026, 3, 9)


def test_the_stores_budget_counters_reach_the_rules_table() -> None:
    daily = DailyStats(
        rules=(
            RuleDay("mission", LAST, matches=6, alerts=5, urgent=0, held=2, capped=3),
            RuleDay("mission", LAST - timedelta(days=1), matches=1, alerts=1, held=1),
            RuleDay("alarm", LAST, matches=2, alerts=2, urgent=2),
            RuleDay("gone", LAST, matches=1, alerts=1, capped=1),
        ),
        feeds=(FeedDay("news", LAST, 9),),
        last_match={"mission": LAST, "alarm": LAST},
    )
    data = _stats_input(daily, window(LAST, 7), ["mission", "alarm"], ["news"])
    lines = stats_lines(data)
    assert [line.split()[:6] for line in lines[1:4]] == [
        ["RULE", "MATCHES", "ALERTS", "URGENT", "HELD", "CAPPED"],
        ["mission", "7", "6", "0", "3", "3"],
        ["alarm", "2", "2", "2", "0", "0"],
    ]
    assert "  gone: matches 1, alerts 1, urgent 0, held 0, capped 1" in lines


def test_without_budget_counters_the_table_is_as_it_was() -> None:
    daily = DailyStats(rules=(RuleDay("mission", LAST, matches=2, alerts=1),))
    lines = stats_lines(_stats_input(daily, window(LAST, 7), ["mission"], []))
    assert lines[1].split() == [
        "RULE",
        "MATCHES",
        "ALERTS",
        "MATCHES",
        "PER",
        "DAY",
        "LAST",
        "MATCH",
    ]
