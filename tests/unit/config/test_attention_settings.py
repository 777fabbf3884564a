"""The attention settings (priority, quiet hours, caps, spikes, mention): their defaults, and a
clear, located message for every value that cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config.schema import (
    WEEKDAYS,
    Quiet,
    Rule,
    SchemaError,
    Settings,
    SlackDestination,
    Spike,
    validate,
)
from tests.conftest import ConfigDir, run_cli
from tests.unit.config.test_load import _problems

RULE = {"id": "watch", "title": "Watch", "query": "police"}
WEBHOOK = {"type": "slack", "webhook_url": "https://hooks.example/x"}


def test_defaults_change_nothing_until_asked() -> None:
    rule = validate(Rule, RULE)
    assert (rule.priority, rule.cap, rule.spike) == ("normal", None, None)
    assert Spike() == Spike(window=6 * 3600, factor=3, min=5)
    desk = validate(SlackDestination, WEBHOOK)
    assert (desk.quiet, desk.cap, desk.mention) == (None, None, None)
    hours = validate(Quiet, {"from": "22:00", "to": "07:00"})
    assert (hours.from_, hours.to, hours.timezone, hours.days) == (
        "22:00",
        "07:00",
        "UTC",
        WEEKDAYS,
    )


def test_attention_settings_as_written() -> None:
    settings = validate(
        Settings,
        {
            "destinations": {
                "desk": {
                    **WEBHOOK,
                    "quiet": {
                        "from": "22:00",
                        "to": "07:00",
                        "timezone": "America/Toronto",
                        "days": ["fri", "sat"],
                    },
                    "cap": {"per": "1h", "max": 10},
                    "mention": "<!subteam^S0123ABC>",
                }
            }
        },
    )
    desk = settings.destinations["desk"]
    assert isinstance(desk, SlackDestination)
    assert desk.quiet == Quiet.model_validate(
        {"from": "22:00", "to": "07:00", "timezone": "America/Toronto", "days": ("fri", "sat")}
    )
    assert desk.cap is not None and (desk.cap.per, desk.cap.max) == (3600, 10)
    rule = validate(
        Rule,
        {**RULE, "priority": "urgent", "cap": {"per": "1d", "max": 3}, "spike": {"window": "2h"}},
    )
    assert rule.priority == "urgent" and rule.spike == Spike(window=7200)
    assert rule.cap is not None and (rule.cap.per, rule.cap.max) == (86400, 3)


def _quiet(**changes: Any) -> dict[str, Any]:
    return {"from": "22:00", "to": "07:00", **changes}


@pytest.mark.parametrize(
    "mention", ["@here", "@channel", "<!subteam^S0123ABC>", "<@U0123ABC>", "<@W9>"]
)
def test_mentions_slack_notifies(mention: str) -> None:
    assert validate(SlackDestination, {**WEBHOOK, "mention": mention}).mention == mention


def test_quiet_hours_of_24_hours_on_some_days_are_allowed() -> None:
    six = tuple(day for day in WEEKDAYS if day != "wed")
    assert validate(Quiet, _quiet(to="22:00", days=six)).days == six


INVALID = [
    ("time-25", Quiet, _quiet(**{"from": "25:00"}), ("from",),
     "'25:00' is not a time of day (HH:MM, 24-hour: \"22:00\")"),
    ("time-one-digit", Quiet, _quiet(to="7:00"), ("to",),
     "'7:00' is not a time of day (HH:MM, 24-hour: \"22:00\")"),
    ("time-24:00", Quiet, _quiet(to="24:00"), ("to",),
     "'24:00' is not a time of day (HH:MM, 24-hour: \"22:00\")"),
    ("time-missing", Quiet, {"to": "07:00"}, ("from",), "Field required"),
    ("zone", Quiet, _quiet(timezone="Mars/Olympus"), ("timezone",),
     "unknown time zone 'Mars/Olympus'"),
    ("zone-not-a-zone-file", Quiet, _quiet(timezone="zone.tab"), ("timezone",),
     "unknown time zone 'zone.tab'"),
    ("zone-path", Quiet, _quiet(timezone="../../etc/passwd"), ("timezone",),
     "unknown time zone '../../etc/passwd'"),
    ("days-empty", Quiet, _quiet(days=[]), ("days",),
     "name at least one day (mon, tue, wed, thu, fri, sat, sun)"),
    ("days-long-name", Quiet, _quiet(days=["monday"]), ("days", 0),
     "Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'"),
    ("always-quiet", Quiet, _quiet(to="22:00"), (),
     "quiet hours all day every day would hold every alert for ever"),
    ("always-quiet-days-named", Quiet, _quiet(to="22:00", days=[*WEEKDAYS, "mon"]), (),
     "quiet hours all day every day would hold every alert for ever"),
    ("cap-seconds", Rule, {**RULE, "cap": {"per": "10s", "max": 5}}, ("cap", "per"),
     "must be between 1m and 7d"),
    ("cap-weeks", Rule, {**RULE, "cap": {"per": "8d", "max": 5}}, ("cap", "per"),
     "must be between 1m and 7d"),
    ("cap-zero", Rule, {**RULE, "cap": {"per": "1h", "max": 0}}, ("cap", "max"),
     "Input should be greater than or equal to 1"),
    ("cap-no-period", Rule, {**RULE, "cap": {"max": 5}}, ("cap", "per"), "Field required"),
    ("spike-factor-1", Rule, {**RULE, "spike": {"factor": 1}}, ("spike", "factor"),
     "Input should be greater than 1"),
    ("spike-min-0", Rule, {**RULE, "spike": {"min": 0}}, ("spike", "min"),
     "Input should be greater than or equal to 1"),
    ("spike-window-short", Rule, {**RULE, "spike": {"window": "30m"}}, ("spike", "window"),
     "must be between 1h and 3d"),
    ("spike-window-part-hour", Rule, {**RULE, "spike": {"window": "90m"}}, ("spike", "window"),
     "must be whole hours (stories are counted by the hour), not 90m"),
    ("priority", Rule, {**RULE, "priority": "high"}, ("priority",),
     "Input should be 'urgent', 'normal' or 'digest'"),
    ("mention-bare-word", SlackDestination, {**WEBHOOK, "mention": "here"}, ("mention",),
     "'here' is not a mention: write @here, @channel, <!subteam^S0123ABC> (a user group) or"
     " <@U0123ABC> (a user)"),
    ("mention-everyone", SlackDestination, {**WEBHOOK, "mention": "<!everyone>"}, ("mention",),
     "'<!everyone>' is not a mention: write @here, @channel, <!subteam^S0123ABC> (a user"
     " group) or <@U0123ABC> (a user)"),
    ("mention-trailing-text", SlackDestination, {**WEBHOOK, "mention": "@here please"},
     ("mention",), "'@here please' is not a mention: write @here, @channel,"
     " <!subteam^S0123ABC> (a user group) or <@U0123ABC> (a user)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "data", "loc", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID],
)
def test_a_value_that_cannot_work_is_one_clear_message(
    model: type[Quiet | Rule | SlackDestination], data: dict[str, Any], loc: tuple, message: str
) -> None:
    with pytest.raises(SchemaError) as caught:
        validate(model, data)
    assert [(p.loc, p.message) for p in caught.value.problems] == [(loc, message)]


@pytest.mark.parametrize("kind", ["console", "email"])
def test_only_slack_destinations_take_a_mention(kind: str) -> None:
    destination = {"type": kind, "mention": "@here"}
    if kind == "email":
        destination |= {"to": "desk@example.org", "from": "bot@example.org", "smtp": {"host": "h"}}
    with pytest.raises(SchemaError) as caught:
        validate(Settings, {"destinations": {"desk": destination}})
    assert [(p.loc[-1], p.kind) for p in caught.value.problems] == [("mention", "extra_forbidden")]


BAD_SETTINGS = """
    destinations:
      desk:
        type: slack
        webhook_url: https://hooks.example/x
        mention: "<!everyone>"
        quiet: {from: "25:00", to: "07:00", timezone: America/Toronto}
        cap:
          per: 10s
          max: 3
      night:
        type: console
        quiet:
          from: "22:00"
          to: "22:00"
"""
BAD_RULES = """
    rules:
      - id: watch
        title: Watch
        query: police
        priority: high
        spike: {window: 90m}
"""
MENTION = (
    "'<!everyone>' is not a mention: write @here, @channel, <!subteam^S0123ABC> (a user group)"
    " or <@U0123ABC> (a user)"
)
LOCATED = [
    "settings.yaml:6: destinations.desk.quiet.from: '25:00' is not a time of day (HH:MM,"
    ' 24-hour: "22:00")',
    "settings.yaml:8: destinations.desk.cap.per: must be between 1m and 7d",
    f"settings.yaml:5: destinations.desk.mention: {MENTION}",
    "settings.yaml:13: destinations.night.quiet: quiet hours all day every day would hold"
    " every alert for ever",
    "rules.yaml:5: rules[0].priority: Input should be 'urgent', 'normal' or 'digest'",
    "rules.yaml:6: rules[0].spike.window: must be whole hours (stories are counted by the"
    " hour), not 90m",
]


def test_bad_attention_settings_are_located_at_their_file_and_line(tmp_path: Path) -> None:
    assert _problems(tmp_path, BAD_SETTINGS, BAD_RULES) == LOCATED


def test_check_reports_bad_attention_settings_and_exits_2(config_dir: ConfigDir) -> None:
    config_dir.write("settings.yaml", BAD_SETTINGS)
    config_dir.write("rules.yaml", BAD_RULES)
    result = run_cli("--config", str(config_dir.path), "check")
    assert result.code == 2
    lines = [line.removeprefix(str(config_dir.path) + "/") for line in result.stderr.splitlines()]
    assert lines == [*LOCATED, f"{len(LOCATED)} problem(s) in {config_dir.path}"]
