"""When a later telling of a story is a follow-up: a matched term new to the story's titles
and leads, or a day of quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.stories.cluster import signature
from bot.stories.followup import follow_up

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
EARLIER = [
    signature(
        "RCMP officers head to Mosul",
        "Canadian police will train Iraqi officers, the RCMP said. Les policiers partent.",
        "https://a.example/1",
    )
]


@pytest.mark.parametrize(
    ("terms", "gap_hours", "expected"),
    [
        (("rcmp", "mosul"), 2, None),
        (("canadian police",), 2, None),  # told in the lead
        (("policiers",), 2, None),  # a form of a word told
        (("suspended",), 2, "new in the title: suspended"),
        (("rcmp", "suspended", "suspended"), 2, "new in the title: suspended"),
        (("rcmp",), 25, "first report in 25h"),
        ((), 23, None),
    ],
)
def test_follow_ups(terms: tuple[str, ...], gap_hours: float, expected: str | None) -> None:
    last = NOW - timedelta(hours=gap_hours)
    assert follow_up(EARLIER, last, terms, NOW) == expected


def test_a_new_term_is_new_against_every_earlier_telling() -> None:
    later = signature("RCMP mission suspended", "The mission was suspended.", None)
    assert follow_up([*EARLIER, later], NOW, ("suspended",), NOW) is None
