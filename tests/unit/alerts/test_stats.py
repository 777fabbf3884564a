"""``newswatch stats`` as text: sparklines, the rule and feed tables, fitted to a terminal."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.alerts.stats import BLOCKS, StatsInput, budget_settings, sparkline, stats_lines, window
from bot.config.schema import Rule, Settings

counts = st.lists(st.integers(0, 10**9), max_size=400)
LAST = date(2026, 12, 3)
DAYS = window(LAST, 30)


@given(counts)
def test_a_sparkline_has_one_block_per_day(values: list[int]) -> None:
    line = sparkline(values)
    assert len(line) == len(values)
    assert set(line) <= set(BLOCKS)


@given(counts)
def test_a_sparkline_keeps_the_order_of_its_values(values: list[int]) -> None:
    levels = [BLOCKS.index(block) for block in sparkline(values)]
    pairs = set(zip(values, levels, strict=True))
    assert len(pairs) == len(set(values))  # equal values, equal blocks
    assert [level for _, level in sorted(pairs)] == sorted(level for _, level in pairs)


@given(counts.filter(any))
def test_nothing_is_the_lowest_block_anything_more_shows_and_the_peak_is_full(
    values: list[int],
) -> None:
    line = sparkline(values)
    for value, block in zip(values, line, strict=True):
        assert (block == BLOCKS[0]) == (value == 0)
    assert line[values.index(max(values))] == BLOCKS[-1]


def test_sparklines_of_known_days() -> None:
    assert sparkline([0, 1, 7, 14, 0]) == "▁▂▅█▁"
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([]) == ""


def test_the_window_ends_today_oldest_first() -> None:
    assert window(LAST, 3) == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    assert len(DAYS) == 30 and DAYS[-1] == LAST


def report(**more: object) -> StatsInput:
    base: dict[str, object] = {
        "days": DAYS,
        "rules": ["quiet", "busy", "rare", "never"],
        "feeds": ["wire", "blog"],
        "matches": {
            "busy": {LAST: 7, LAST - timedelta(days=29): 2},
            "rare": {LAST - timedelta(days=3): 1},
            "quiet": {LAST - timedelta(days=45): 9},  # before the window
            "gone": {LAST: 4},
        },
        "alerts": {"busy": {LAST: 5}, "rare": {LAST - timedelta(days=3): 2}, "gone": {LAST: 4}},
        "items": {"wire": {LAST: 30, LAST - timedelta(days=1): 15}},
        "last_match": {
            "busy": LAST,
            "rare": LAST - timedelta(days=3),
            "quiet": LAST - timedelta(days=45),
            "gone": LAST,
        },
    }
    base.update(more)
    return StatsInput(**base)  # type: ignore[arg-type]


def test_the_report_lists_busy_rules_first_then_the_quiet_ones_then_the_feeds() -> None:
    lines = stats_lines(report())
    assert lines[0] == "Rules, 2026-11-04 – 2026-12-03 UTC (30-day window)"
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
    assert lines[2].split() == ["busy", "9", "5", "▃" + "▁" * 28 + "█", "2026-12-03"]
    assert lines[3].split() == ["rare", "1", "2", "▁" * 26 + "█▁▁▁", "2026-11-30"]
    assert lines[4:8] == [
        "",
        "No match in the 30-day window — check their query:",
        "  quiet (last match 2026-10-19)",
        "  never (never matched)",
    ]
    assert "  gone: matches 4, alerts 4" in lines
    feeds = lines[lines.index("Feeds, new items per day (a feed's first read not counted)") :]
    assert [line.split() for line in feeds[1:]] == [
        ["FEED", "ITEMS", "PER", "DAY"],
        ["wire", "45", "▁" * 28 + "▅█"],
        ["blog", "0", "▁" * 30],
    ]


def test_numbers_are_right_aligned() -> None:
    lines = stats_lines(report(matches={"busy": {LAST: 1234}, "rare": {LAST: 5}}))
    header, busy, rare = lines[1:4]
    end = header.index("MATCHES") + len("MATCHES")
    assert busy[:end].endswith("1234") and rare[:end].endswith("   5")


def test_overflow_messages_are_named_and_rules_no_longer_counted_are_left_out() -> None:
    lines = stats_lines(
        report(
            alerts={"+overflow": {LAST: 3}, "old": {LAST - timedelta(days=60): 8}},
            matches={"busy": {LAST: 1}},
        )
    )
    gone = lines[lines.index("Counted for rules not configured now (renamed or removed):") + 1 :]
    assert gone[0] == "  +overflow (flood overflow messages): matches 0, alerts 3"
    assert not any("old" in line for line in lines)


def test_a_narrow_terminal_keeps_the_latest_days_of_each_sparkline() -> None:
    lines = stats_lines(report(), width=60)
    assert all(len(line) <= 60 for line in lines)
    busy = lines[2].split()
    assert busy[3] == "…" + "▁" * 23 + "█"
    assert stats_lines(report(), width=None)[2].split()[3] == "▃" + "▁" * 28 + "█"


def test_nothing_counted_yet_still_names_every_rule_and_feed() -> None:
    lines = stats_lines(report(matches={}, alerts={}, items={}, last_match={}))
    assert lines[1] == "  no rule matched"
    assert lines[3] == "No match in the 30-day window — check their query:"
    assert [line.strip() for line in lines[4:8]] == [
        f"{rule} (never matched)" for rule in ("quiet", "busy", "rare", "never")
    ]


def test_the_attention_budgets_counters_stand_beside_the_alerts_once_any_is_counted() -> None:
    assert "URGENT" not in stats_lines(report(urgent={"busy": {LAST - timedelta(days=40): 3}}))[1]
    lines = stats_lines(
        report(
            urgent={"busy": {LAST: 2}},
            held={"busy": {LAST: 1}, "rare": {LAST - timedelta(days=3): 1}},
            capped={"busy": {LAST: 12, LAST - timedelta(days=40): 5}, "gone": {LAST: 3}},
        )
    )
    header, busy, rare = lines[1:4]
    assert header.split()[:6] == ["RULE", "MATCHES", "ALERTS", "URGENT", "HELD", "CAPPED"]
    assert busy.split() == ["busy", "9", "5", "2", "1", "12", "▃" + "▁" * 28 + "█", "2026-12-03"]
    assert rare.split() == ["rare", "1", "2", "0", "1", "0", "▁" * 26 + "█▁▁▁", "2026-11-30"]
    end = header.index("CAPPED") + len("CAPPED")
    assert busy[:end].endswith(" 12") and rare[:end].endswith("  0")  # right-aligned
    assert "  gone: matches 4, alerts 4, urgent 0, held 0, capped 3" in lines
    narrow = stats_lines(report(capped={"busy": {LAST: 1}}), width=80)
    assert all(len(line) <= 80 for line in narrow) and narrow[2].split()[6].startswith("…")


def test_the_attention_budgets_settings_in_a_compact_form() -> None:
    rules = [
        Rule.model_validate({"id": "plain", "title": "Plain", "query": "x"}),
        Rule.model_validate(
            {"id": "alarm", "title": "Alarm", "query": "x", "priority": "urgent", "spike": {}}
        ),
        Rule.model_validate(
            {
                "id": "slow",
                "title": "Slow",
                "query": "x",
                "priority": "digest",
                "cap": {"per": "2h", "max": 4},
            }
        ),
    ]
    settings = Settings.model_validate(
        {
            "store": "sqlite::memory:",
            "destinations": {
                "desk": {
                    "type": "console",
                    "quiet": {"from": "22:00", "to": "07:00", "timezone": "America/Toronto"},
                    "cap": {"per": "1h", "max": 10},
                },
                "log": {"type": "console"},
            },
        }
    )
    found = budget_settings(rules, settings.destinations)
    assert found == [
        ("rule", "alarm", "urgent; spike over 3× usual in 6h, at least 5"),
        ("rule", "slow", "digest; cap 4 per 2h"),
        ("destination", "desk", "quiet 22:00–07:00 America/Toronto; cap 10 per 1h"),
    ]
    lines = stats_lines(report(settings=found))
    shown = lines[lines.index("Attention budget settings") + 1 :][:3]
    assert shown == [
        "  rule         alarm  urgent; spike over 3× usual in 6h, at least 5",
        "  rule         slow   digest; cap 4 per 2h",
        "  destination  desk   quiet 22:00–07:00 America/Toronto; cap 10 per 1h",
    ]
    assert "Attention budget settings" not in stats_lines(report())
