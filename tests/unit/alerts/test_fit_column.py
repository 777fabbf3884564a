"""`newswatch feeds` fits its widest column, the error, to the terminal."""

from __future__ import annotations

from bot.alerts.stats import MIN_FITTED, fit_column

ROWS: list[tuple[str, ...]] = [
    ("FEED", "ERROR", "ITEMS"),
    ("short", "timeout", "3"),
    ("long", "warning: " + "the server sent a document that is not a feed " * 5, "12"),
]


def test_the_error_column_is_cut_so_every_line_fits() -> None:
    fitted = fit_column(ROWS, 1, 80)
    widths = [max(len(r[i]) for r in fitted) for i in range(3)]
    assert sum(widths) + 2 * 2 <= 80
    assert fitted[1] == ROWS[1]  # what fits stays whole
    assert fitted[2][1].endswith("…") and ROWS[2][1].startswith(fitted[2][1][:-1])
    assert (fitted[2][0], fitted[2][2]) == ("long", "12")


def test_a_narrow_terminal_keeps_a_readable_part_of_the_error() -> None:
    fitted = fit_column(ROWS, 1, 10)
    assert len(fitted[2][1]) == MIN_FITTED
