"""Turning alerts into messages: Slack Block Kit, plain text and email.

Pure functions. Every feed-derived string (titles, summaries, sources, links) is
hostile: it is cleaned of control characters and escaped for its medium *after*
it has been cut to size, so a cut never lands inside an escape sequence, and
the cut itself always falls between words when a word boundary fits.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from string import Template
from typing import Any
from urllib.parse import quote, urlsplit

import nh3

from bot.alerts.attention import HOUR
from bot.languages import language_name
from bot.model import Alert, Folded, Sighting, Summary, as_utc

SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_BLOCKS_MAX = 50
SLACK_TEXT_MAX = 4000
TITLE_MAX = 500
SUBJECT_MAX = 200
URL_MAX = 2000
DIGEST_SUMMARY_MAX = 300
FOLDED_TITLE_MAX = 300
ELLIPSIS = "…"

# Bidi overrides and isolates can make a title read differently from what it is.
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
_INVISIBLE = {ord(c): None for c in _BIDI}
_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_URL_SAFE = "%/:=&?#+!$,;'@()*[]~-._"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One ``chat.postMessage`` payload: the ``text`` fallback and the Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]]


# --- cleaning and cutting ---------------------------------------------------------------


def clean_text(text: str) -> str:
    """Drop control characters (terminal escapes, NUL, bidi overrides), keep newlines and tabs."""
    text = text.translate(_INVISIBLE)
    if text.isprintable():
        return text
    return (
        "".join(
            c for c in text if c in "\n\t" or not unicodedata.category(c).startswith(("Cc", "Cs"))
        )
        .replace("\u2028", "\n")
        .replace("\u2029", "\n")
    )


def one_line(text: str) -> str:
    """``text`` cleaned, on one line: each run of whitespace (CR, LF, U+2028 ...) is one space."""
    return " ".join(clean_text(text).split())


def _cut_points(text: str) -> list[int]:
    """Offsets where a cut keeps every word whole: the ends of words."""
    return [m.end() for m in re.finditer(r"\S+", text)]


def fit(text: str, limit: int, render: Callable[[str, bool], str]) -> str:
    """The rendering of the longest prefix of ``text`` whose rendering is within ``limit``.

    ``render(prefix, cut)`` escapes and decorates a prefix (adding an ellipsis when
    ``cut``); cutting before rendering means no escape sequence is ever split. Cuts
    fall at word ends; inside a word only when a single word is too long.
    """
    whole = render(text, False)
    if len(whole) <= limit:
        return whole
    for points in (_cut_points(text), range(1, len(text))):
        best = _longest_fitting(text, list(points), limit, render)
        if best is not None:
            return best
    return render("", True)[:limit]


def _longest_fitting(
    text: str, points: list[int], limit: int, render: Callable[[str, bool], str]
) -> str | None:
    """Binary search over cut points: rendering length grows with the prefix.

    The search starts below a bound found by doubling, so the prefixes rendered
    stay near the size that fits, however long the text is.
    """
    low, high, best = 0, len(points) - 1, None
    bound = 1
    while bound < high and len(render(text[: points[bound]].rstrip(), True)) <= limit:
        bound *= 2
    high = min(bound, high)
    while low <= high:
        middle = (low + high) // 2
        rendered = render(text[: points[middle]].rstrip(), True)
        if len(rendered) <= limit:
            best, low = rendered, middle + 1
        else:
            high = middle - 1
    return best


def _plain(prefix: str, cut: bool) -> str:
    return prefix + ELLIPSIS if cut else prefix


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut between words."""
    return fit(one_line(text), limit, _plain)


# --- links and time ---------------------------------------------------------------------


def safe_url(url: str | None) -> str | None:
    """``url`` percent-encoded so it cannot break out of a link, or None unless http(s)."""
    if not url:
        return None
    # Like browsers: surrounding whitespace goes, tabs and newlines inside are dropped.
    url = re.sub(r"[\t\n\r]", "", clean_text(url).strip())
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    encoded = quote(url, safe=_URL_SAFE)
    return encoded if len(encoded) <= URL_MAX else None


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 feed``, ``2 feeds``: lines users read should not say "1 destinations"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def relative_time(moment: datetime, now: datetime) -> str:
    """``3 h ago`` style distance from ``now`` (``in 5 min`` for a future time)."""
    seconds = (as_utc(now) - as_utc(moment)).total_seconds()
    if abs(seconds) < 60:
        return "just now" if seconds >= 0 else "in under a minute"
    amount = span(seconds)
    return f"{amount} ago" if seconds > 0 else f"in {amount}"


def span(seconds: float) -> str:
    """A rounded-down length of time for people: ``42 s``, ``5 min``, ``3 h``, ``4 d``."""
    size = abs(seconds)
    if size < 60:
        return f"{int(size)} s"
    if size < 3600:
        return f"{int(size // 60)} min"
    if size < 48 * 3600:
        return f"{int(size // 3600)} h"
    return f"{int(size // 86400)} d"


def when(alert: Alert | Sighting, now: datetime) -> str:
    """Published time in UTC and relative; an undated item says so, and when it was first seen:
    a made-up publication time would mislead."""
    if alert.published is None:
        seen = as_utc(alert.first_seen)
        return f"date unknown (first seen {seen:%Y-%m-%d %H:%M} UTC, {relative_time(seen, now)})"
    return _at(alert.published, now)


def _at(moment: datetime, now: datetime) -> str:
    moment = as_utc(moment)
    return f"{moment:%Y-%m-%d %H:%M} UTC ({relative_time(moment, now)})"


def _source(alert: Alert) -> str:
    return alert.source or alert.feed_id


def rules_line(alert: Alert) -> str:
    """Every rule that matched the story, on one line: one message names them all."""
    return ", ".join(one_line(title) for title in alert.rule_titles)


def outlets_line(count: int) -> str:
    """``Reported by 3 outlets`` once a story has more than one; empty before."""
    return f"Reported by {count} outlets" if count > 1 else ""


def in_language(alert: Alert) -> str:
    """`` · in French`` after the source when the item is not in the destination's language
    (:attr:`Alert.language`), else nothing."""
    return f" · in {language_name(alert.language)}" if alert.language else ""


# --- emphasis ---------------------------------------------------------------------------


def _segments(text: str, spans: list[tuple[int, int]], end: int) -> Iterable[tuple[str, bool]]:
    """``text`` up to ``end`` as (piece, emphasised) pairs, given its merged highlight spans."""
    position = 0
    for start, stop in spans:
        if start >= end:
            break
        stop = min(stop, end)
        if start > position:
            yield text[position:start], False
        yield text[start:stop], True
        position = stop
    if position < end:
        yield text[position:end], False


def merge_spans(highlights: Iterable[tuple[int, int]], end: int) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans within ``[0, end)``, so overlaps are emphasised once."""
    spans: list[tuple[int, int]] = []
    for start, stop in sorted(highlights):
        start, stop = max(start, 0), min(stop, end)
        if start >= stop:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(stop, spans[-1][1]))
        else:
            spans.append((start, stop))
    return spans


def _emphasised(
    summary: Summary, limit: int, escape: Callable[[str], str], strong: Callable[[str], str]
) -> str:
    """The summary escaped, highlights wrapped by ``strong``, cut to ``limit`` between words."""

    def emphasise(piece: str) -> str:
        # Spaces stay outside the markers: Slack ignores "* bold *".
        core = piece.strip()
        if not core:
            return escape(piece)
        lead, trail = piece[: piece.index(core)], piece[piece.index(core) + len(core) :]
        return escape(lead) + strong(escape(core)) + escape(trail)

    spans = merge_spans(summary.highlights, len(summary.text))

    def render(prefix: str, cut: bool) -> str:
        pieces = (
            emphasise(piece) if emphasised else escape(piece)
            for piece, emphasised in _segments(summary.text, spans, len(prefix))
        )
        return "".join(pieces) + (ELLIPSIS if cut else "")

    return fit(summary.text, limit, render)


# --- Slack ------------------------------------------------------------------------------
#
# Feed text goes into Block Kit ``rich_text`` elements, which Slack never parses as
# mrkdwn: it arrives character for character, and a ``<!channel>`` in it is text, not
# a mention. Only the ``text`` fallback (notifications) and ``plain_text`` headers
# carry Slack's three escapes; the fallback is sent with ``mrkdwn: false``.

RichElement = dict[str, Any]
_BOLD = {"bold": True}
_DATE_FORMAT = "{date_short_pretty} {time}"


def slack_escape(text: str) -> str:
    """Slack's escaping (``&``, ``<``, ``>``): inert in the ``text`` fallback and headers."""
    return clean_text(text).translate(_SLACK_ESCAPES)


def _slack_line(text: str, limit: int) -> str:
    return fit(one_line(text), limit, lambda prefix, cut: slack_escape(_plain(prefix, cut)))


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """The longest prefix of ``text`` fitting ``limit`` with an ellipsis, and whether it is cut."""
    if len(text) <= limit:
        return text, False
    return fit(text, limit, _plain).removesuffix(ELLIPSIS), True


def rich_text(text: str, bold: bool = False) -> RichElement:
    """A ``text`` element: shown exactly as given, never parsed as mrkdwn."""
    element: RichElement = {"type": "text", "text": text}
    return {**element, "style": _BOLD} if bold else element


def _run(text: str, limit: int, bold: bool = False) -> list[RichElement]:
    """``text`` on one line, cut to ``limit``, as one element (none when it is empty)."""
    shown = shorten(text, limit)
    return [rich_text(shown, bold)] if shown else []


def _section(*runs: Iterable[RichElement]) -> RichElement:
    elements = [e for run in runs for e in run]
    return {"type": "rich_text_section", "elements": elements or [rich_text("-")]}


def _rich_block(*sections: RichElement) -> dict[str, Any]:
    return {"type": "rich_text", "elements": list(sections)}


def _weight(section: RichElement) -> int:
    """The characters of a rich_text_section, link targets counted as ``<url|text>`` in
    mrkdwn counted them, so a packed list weighs what its mrkdwn did."""
    return sum(
        len(e.get("text", "")) + len(e.get("url", "")) + len(e.get("fallback", ""))
        for e in section["elements"]
    )


def slack_link(url: str | None, label: str, limit: int = TITLE_MAX) -> RichElement:
    """A bold ``link`` element for http(s) links (label cut to ``limit``), else bold text."""
    shown = shorten(label, limit) or "(untitled)"
    target = safe_url(url)
    if target is None:
        return rich_text(shown, bold=True)
    return {"type": "link", "url": target, "text": shown, "style": _BOLD}


def slack_date(moment: datetime) -> RichElement:
    """A ``date`` element: every reader sees it in their own time zone, and it never goes stale."""
    moment = as_utc(moment)
    return {
        "type": "date",
        "timestamp": int(moment.timestamp()),
        "format": _DATE_FORMAT,
        "fallback": f"{moment:%Y-%m-%d %H:%M} UTC",
    }


def _slack_when(alert: Alert | Sighting) -> list[RichElement]:
    if alert.published is None:
        return [
            rich_text("date unknown (first seen "),
            slack_date(alert.first_seen),
            rich_text(")"),
        ]
    return [slack_date(alert.published)]


def _slack_terms(terms: Sequence[str], limit: int = 1000) -> list[RichElement]:
    """The terms in bold, comma-separated, the list cut to ``limit`` characters."""
    shown, cut = _cut("\n".join(one_line(t) for t in terms), limit)
    elements: list[RichElement] = []
    for term in filter(None, shown.split("\n")):
        elements += [rich_text(", ")] if elements else []
        elements.append(rich_text(term, bold=True))
    return elements + ([rich_text(" " + ELLIPSIS)] if cut else [])


def _slack_meta(alert: Alert, terms_limit: int = 1000) -> RichElement:
    runs: list[Iterable[RichElement]] = [
        _run(_source(alert), 300),
        [rich_text(in_language(alert) + " · ")],
        _slack_when(alert),
    ]
    if alert.shown_terms:
        runs += [[rich_text(" · Matched: ")], _slack_terms(alert.shown_terms, terms_limit)]
    return _section(*runs)


def summary_section(summary: Summary, limit: int) -> RichElement:
    """The summary cut to ``limit``, its highlights in bold: text runs, exact characters."""
    text = summary.text
    shown, cut = _cut(text, limit)
    spans = merge_spans(summary.highlights, len(shown))
    # Summaries are made on one line; a stray control character or newline is dropped
    # piece by piece, so the highlights still index the text they were made for.
    elements = [
        rich_text(_flat(piece), bold)
        for piece, bold in _segments(text, spans, len(shown))
        if _flat(piece)
    ]
    return _section(elements + ([rich_text(ELLIPSIS)] if cut else []))


def _flat(text: str) -> str:
    return re.sub(r"[\n\t]", " ", clean_text(text))


def _also_reported(alert: Alert, limit: int = 1000) -> str:
    names = ", ".join(one_line(name) for name in alert.also_reported_by)
    return "Also reported by: " + fit(names, limit, _plain)


def _plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _slack_line(text, limit) or "-", "emoji": True}


# --- the attention budget: urgent alerts, held digests, spikes ---------------------------
#
# A mention is the one thing newswatch puts in a message that Slack acts on, so it comes
# only from the destination's settings (``mention``, validated there), is turned into a
# mention element here, and is refused in any other form.

URGENT = "Urgent"
_URGENT_MARK = "[URGENT] "
_BROADCASTS = {"@here": "here", "@channel": "channel"}
_USERGROUP = re.compile(r"<!subteam\^([A-Z0-9]+)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)>")
_SPIKE = "Spike:"
_SPIKE_INTRO = (
    "the usual count is the median over the past 14 days · top stories, most reported first"
)


def mention_parts(mention: str) -> tuple[RichElement, str]:
    """A configured mention as a rich_text mention element and as the Slack syntax that
    notifies from the ``text`` fallback (``<!here>``, ``<!subteam^ID>``, ``<@ID>``)."""
    if mention in _BROADCASTS:
        wide = _BROADCASTS[mention]
        return {"type": "broadcast", "range": wide}, f"<!{wide}>"
    if (group := _USERGROUP.fullmatch(mention)) is not None:
        return {"type": "usergroup", "usergroup_id": group[1]}, mention
    if (user := _USER.fullmatch(mention)) is not None:
        return {"type": "user", "user_id": user[1]}, mention
    raise ValueError("a mention is @here, @channel, <!subteam^ID> or <@USER_ID>")


@dataclass(frozen=True, slots=True)
class Lead:
    """What a Slack message starts with: for an urgent alert, a block with the mention and
    the urgent mark, and the same (``prefix``) before its ``text`` fallback."""

    blocks: tuple[dict[str, Any], ...] = ()
    prefix: str = ""

    def message(self, fallback: str, blocks: list[dict[str, Any]]) -> SlackMessage:
        """``fallback`` (feed text: escaped, cut to fit after the prefix) and ``blocks``,
        led by this lead."""
        text = self.prefix + _slack_line(fallback, SLACK_TEXT_MAX - len(self.prefix))
        return SlackMessage(text, [*self.blocks, *blocks])


NO_LEAD = Lead()


def urgent_lead(alert: Alert, mention: str | None) -> Lead:
    """An urgent alert's lead: ``mention`` (when configured) and the urgent mark; others
    start as before."""
    if alert.priority != "urgent":
        return NO_LEAD
    elements, prefix = [rich_text(URGENT, bold=True)], f"{URGENT}: "
    if mention is not None:
        element, syntax = mention_parts(mention)
        elements = [element, rich_text(" "), *elements]
        prefix = f"{syntax} {prefix}"
    return Lead((_rich_block(_section(elements)),), prefix)


def urgent_mark(alert: Alert) -> str:
    """``[URGENT] `` before an urgent alert's first line in plain text and email, else nothing."""
    return _URGENT_MARK if alert.priority == "urgent" else ""


def is_single(alerts: Sequence[Alert], sightings: Sequence[Sighting] = ()) -> bool:
    """Whether a batch is one alert's own message: a held alert alone is too, so that later
    tellings of its story can reply in its thread."""
    return len(alerts) == 1 and not sightings


def digest_title(alerts: Sequence[Alert]) -> str | None:
    """``3 more alerts (cap reached)`` when every alert of a digest waited for a cap,
    ``3 alerts held during quiet hours`` when every one waited for quiet hours to end;
    None for any other digest."""
    held = {alert.held for alert in alerts}
    if held == {"cap"}:
        return f"{counted(len(alerts), 'more alert')} (cap reached)"
    if held == {"quiet"}:
        return f"{counted(len(alerts), 'alert')} held during quiet hours"
    return None


def spike_heading(alert: Alert) -> str:
    """``Spike: RULE — 12 stories in 6 hours (usually 2)``, not yet escaped."""
    return f"{_SPIKE} {one_line(alert.rule_title)} — {_spike_tail(alert)}"


def _spike_tail(alert: Alert) -> str:
    facts = alert.spike
    assert facts is not None, "a spike alert carries its facts"
    hours = max(1, round(facts.window / HOUR))
    usual = f"{facts.usual:.0f}" if facts.usual.is_integer() else f"{facts.usual:.1f}"
    stories = counted(facts.count, "story", "stories")
    return f"{stories} in {counted(hours, 'hour')} (usually {usual})"


def list_heading(alert: Alert) -> str | None:
    """The heading of an alert that lists items (a spike's top stories, an overflow's
    matches), not yet escaped; None for an alert about one item."""
    if alert.spike is not None:
        return spike_heading(alert)
    return overflow_heading(alert) if alert.is_overflow else None


def slack_message(alert: Alert, now: datetime, mention: str | None = None) -> SlackMessage:
    """One alert as Block Kit: rule title, linked item title, source, time, terms, summary.

    An urgent alert starts with ``mention`` (the destination's, from the settings: never
    from feed text) as a real mention, and is marked urgent."""
    lead = urgent_lead(alert, mention)
    if alert.spike is not None:
        return slack_spike(alert, now, lead)
    if alert.is_overflow:
        return slack_overflow(alert, now, lead)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain_text(rules_line(alert), SLACK_HEADER_MAX)},
        _rich_block(
            _section([slack_link(alert.link, alert.title)]),
            _slack_meta(alert),
            *_slack_outlets(alert.outlets),
        ),
    ]
    if alert.summary.text.strip():
        blocks.append(_rich_block(summary_section(alert.summary, SLACK_SECTION_MAX)))
    if alert.also_reported_by:
        blocks.append(_rich_block(_section([rich_text(_also_reported(alert))])))
    fallback = f"{rules_line(alert)}: {alert.title} ({_source(alert)})"
    if alert.outlets > 1:
        fallback += f" · {outlets_line(alert.outlets).lower()}"
    return lead.message(fallback, blocks)


def _slack_outlets(count: int) -> list[RichElement]:
    """The count of outlets as a section of its own, once there is more than one."""
    return [_section([rich_text(outlets_line(count), bold=True)])] if count > 1 else []


def _also_matched(alert: Alert) -> str:
    return "Also matched: " + shorten(", ".join(alert.also_matched), 500)


def overflow_heading(alert: Alert) -> str:
    """``N more matches from SOURCE``: the title of an overflow alert, not yet escaped."""
    return f"{alert.folded_count} more matches from {one_line(_source(alert))}"


_OVERFLOW_INTRO = "too many matches in one poll to send one by one"


def _overflow_intro(alert: Alert, now: datetime) -> str:
    return f"{_at(alert.first_seen, now)} · {_OVERFLOW_INTRO}"


def _slack_folded(folded: Folded, rules: bool = True) -> RichElement:
    """One listed item: its linked title, and (``rules``) the rules it matched."""
    # At most 300 + 3 + 300 characters: one line always fits in a block.
    title = [slack_link(folded.link, folded.title, FOLDED_TITLE_MAX)]
    if not rules or not folded.rule_titles:
        return _section(title)
    return _section(
        title, [rich_text(" · ")], _run(", ".join(folded.rule_titles), FOLDED_TITLE_MAX)
    )


def _pack(
    lines: Iterable[RichElement], limit: int, most: int
) -> tuple[list[list[RichElement]], int]:
    """``lines`` grouped into at most ``most`` lists of at most ``limit`` characters each
    (no line is longer); returns the lists and how many lines they hold."""
    lists: list[list[RichElement]] = []
    sizes: list[int] = []
    used = 0
    for line in lines:
        size = _weight(line)
        if lists and sizes[-1] + size <= limit:
            lists[-1].append(line)
            sizes[-1] += size
        elif len(lists) < most:
            lists.append([line])
            sizes.append(size)
        else:
            break
        used += 1
    return lists, used


def slack_overflow(alert: Alert, now: datetime, lead: Lead | None = None) -> SlackMessage:
    """An overflow alert as one message: what fits of its list, then how many more."""
    count = alert.folded_count
    intro = _section(
        _run(_source(alert), 300),
        [rich_text(" · "), slack_date(alert.first_seen), rich_text(f" · {_OVERFLOW_INTRO}:")],
    )
    header = _fitted_header(_source(alert), lambda source: f"{count} more matches from {source}")
    return _slack_list(alert, header, intro, overflow_heading(alert), lead or NO_LEAD)


def slack_spike(alert: Alert, now: datetime, lead: Lead | None = None) -> SlackMessage:
    """A spike alert as one message: what the spike is, then the top stories, linked."""
    tail = _spike_tail(alert)
    header = _fitted_header(alert.rule_title, lambda rule: f"{_SPIKE} {rule} — {tail}")
    intro = _section([slack_date(alert.first_seen), rich_text(f" · {_SPIKE_INTRO}:")])
    return _slack_list(alert, header, intro, spike_heading(alert), lead or NO_LEAD, rules=False)


def _fitted_header(variable: str, template: Callable[[str], str]) -> dict[str, Any]:
    """A header block of ``template(variable)``, the variable part cut so the whole fits."""
    text = fit(
        one_line(variable),
        SLACK_HEADER_MAX,
        lambda prefix, cut: slack_escape(template(_plain(prefix, cut))),
    )
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _slack_list(
    alert: Alert,
    header: dict[str, Any],
    intro: RichElement,
    fallback: str,
    lead: Lead,
    *,
    rules: bool = True,
) -> SlackMessage:
    """A message listing an alert's folded items: header, intro, what fits of the list,
    then how many more.

    The lead (urgent), header, intro and the closing count take at most four blocks; the
    list packs its lines into the others, bulleted ``rich_text`` blocks of at most 3,000
    characters.
    """
    count = alert.folded_count
    room = SLACK_BLOCKS_MAX - 3 - len(lead.blocks)
    lines = (_slack_folded(folded, rules) for folded in alert.folded)
    lists, listed = _pack(lines, SLACK_SECTION_MAX, room)
    blocks: list[dict[str, Any]] = [
        header,
        _rich_block(intro),
        *(_rich_block(_bullets(items)) for items in lists),
    ]
    if count > listed:
        blocks.append(_rich_block(_section([rich_text(f"and {count - listed} more")])))
    return lead.message(fallback, blocks)


def slack_notice(title: str, text: str) -> SlackMessage:
    """A message that is not an alert (feed failure, ``send-test``): its text shown exactly."""
    body, cut = _cut(clean_text(text), SLACK_SECTION_MAX)
    header = {"type": "header", "text": _plain_text(title, SLACK_HEADER_MAX)}
    blocks: list[dict[str, Any]] = [header]
    if body.strip():
        blocks.append(_rich_block(_section([rich_text(body + (ELLIPSIS if cut else ""))])))
    return SlackMessage(_slack_line(f"{title}: {text}", SLACK_TEXT_MAX), blocks)


def group_by_rule(alerts: Sequence[Alert]) -> list[list[Alert]]:
    """Alerts grouped by rule, rules and items in the order they first appear."""
    return [[alerts[i] for i in group] for group in _rule_groups(alerts)]


def _rule_groups(alerts: Sequence[Alert]) -> list[list[int]]:
    """:func:`group_by_rule` as the alerts' indexes (a digest part records what it carries)."""
    groups: dict[str, list[int]] = {}
    for i, alert in enumerate(alerts):
        groups.setdefault(alert.rule_id, []).append(i)
    return list(groups.values())


def _digest_item(alert: Alert) -> dict[str, Any]:
    heading = list_heading(alert)
    if heading is not None:
        return _digest_list(alert, heading)
    # At most 500 + 860 + 300 + 520 characters shown: well within a block's 3,000.
    sections = [_section([slack_link(alert.link, alert.title)]), _slack_meta(alert, 500)]
    if alert.also_matched:
        sections.append(_section([rich_text(_also_matched(alert))]))
    sections += _slack_outlets(alert.outlets)
    if alert.summary.text.strip():
        sections.append(summary_section(alert.summary, DIGEST_SUMMARY_MAX))
    if alert.also_reported_by:
        sections.append(_section([rich_text(_also_reported(alert, 500))]))
    return _rich_block(*sections)


def _digest_list(alert: Alert, heading: str) -> dict[str, Any]:
    """A spike (or overflow) alert in a digest: its heading, then what fits of its list in
    the one block (at most 500 + 2,400 + a count of characters), then how many more."""
    lines = (_slack_folded(folded, rules=alert.spike is None) for folded in alert.folded)
    lists, listed = _pack(lines, SLACK_SECTION_MAX - 600, 1)
    parts = [_section(_run(heading, TITLE_MAX, bold=True)), *map(_bullets, lists)]
    if alert.folded_count > listed:
        parts.append(_section([rich_text(f"and {alert.folded_count - listed} more")]))
    return _rich_block(*parts)


def _rule_header(alerts: Sequence[Alert], continued: bool) -> dict[str, Any]:
    return _group_header(alerts[0].rule_title, len(alerts), continued)


def _group_header(title: str, count: int, continued: bool) -> dict[str, Any]:
    suffix = f" ({count}{', continued' if continued else ''})"
    text = fit(
        one_line(title),
        SLACK_HEADER_MAX,
        lambda prefix, cut: slack_escape(_plain(prefix, cut)) + suffix,
    )
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


@dataclass(frozen=True, slots=True)
class DigestPart:
    """One message of a digest and which of the digest's alerts (their indexes) it carries,
    so each part can be recorded as delivered when it lands."""

    message: SlackMessage
    indexes: tuple[int, ...]


def slack_digest(
    alerts: Sequence[Alert], now: datetime, sightings: Sequence[Sighting] = ()
) -> list[DigestPart]:
    """A digest grouped by rule (a header per rule), then the later sightings of earlier
    stories (follow-ups first), split into messages of at most 50 blocks.

    A part's ``indexes`` count the alerts first, then the sightings (sighting ``i`` is
    index ``len(alerts) + i``). The split depends only on what is sent, so what the parts
    not yet sent carry splits the same way again when retried."""
    title = digest_title(alerts)
    # A titled digest (every alert held for a cap, or for quiet hours) repeats its title
    # at the top of every part, so the rows of the parts not yet sent split the same way.
    top = [{"type": "header", "text": _plain_text(title, SLACK_HEADER_MAX)}] if title else []
    pages: list[list[dict[str, Any]]] = [[*top]]
    carried: list[list[int]] = [[]]

    def new_page(*blocks: dict[str, Any]) -> None:
        pages.append([*top, *blocks])
        carried.append([])

    for numbers in _rule_groups(alerts):
        group = [alerts[i] for i in numbers]
        if len(pages[-1]) > SLACK_BLOCKS_MAX - 2:
            new_page()
        pages[-1].append(_rule_header(group, continued=False))
        for i in numbers:
            if len(pages[-1]) >= SLACK_BLOCKS_MAX:
                new_page(_rule_header(group, continued=True))
            pages[-1].append(_digest_item(alerts[i]))
            carried[-1].append(i)
    for heading, numbers in sighting_sections(sightings):
        lines = [(len(alerts) + i, _slack_sighting(sightings[i], story=True)) for i in numbers]
        if len(pages[-1]) > SLACK_BLOCKS_MAX - 2:
            new_page()
        pages[-1].append(_group_header(heading, len(numbers), continued=False))
        for indexes, section in _pack_indexed(lines, SLACK_SECTION_MAX):
            if len(pages[-1]) >= SLACK_BLOCKS_MAX:
                new_page(_group_header(heading, len(numbers), continued=True))
            pages[-1].append(_rich_block(_bullets(section)))
            carried[-1].extend(indexes)
    kept = [(page, ids) for page, ids in zip(pages, carried, strict=True) if page]
    return [
        DigestPart(
            SlackMessage(_digest_fallback(alerts, sightings, number, len(kept)), page), tuple(ids)
        )
        for number, (page, ids) in enumerate(kept, 1)
    ]


def _digest_fallback(
    alerts: Sequence[Alert], sightings: Sequence[Sighting], number: int, total: int
) -> str:
    part = f" (part {number}/{total})" if total > 1 else ""
    rules = ", ".join(f"{g[0].rule_title} ({len(g)})" for g in group_by_rule(alerts))
    title = digest_title(alerts)
    what = [rules if title else f"{counted(len(alerts), 'alert')}: {rules}"] if alerts else []
    if sightings:
        what.append(counted(len(sightings), "later report") + " of earlier stories")
    return _slack_line(f"{title or 'newswatch digest'}{part}: {'; '.join(what)}", SLACK_TEXT_MAX)


def _bullets(sections: list[RichElement]) -> RichElement:
    return {"type": "rich_text_list", "style": "bullet", "elements": sections}


def _pack_indexed(
    lines: Sequence[tuple[int, RichElement]], limit: int
) -> list[tuple[list[int], list[RichElement]]]:
    """Numbered lines in order, grouped into lists of at most ``limit`` characters each,
    with the numbers each list carries."""
    packs: list[tuple[list[int], list[RichElement]]] = []
    size = 0
    for index, line in lines:
        weight = _weight(line)
        if packs and size + weight <= limit:
            packs[-1][0].append(index)
            packs[-1][1].append(line)
            size += weight
        else:
            packs.append(([index], [line]))
            size = weight
    return packs


# --- later sightings of a story ---------------------------------------------------------
#
# A sighting is a later telling of a story already alerted: a one-line reply in the
# alert's Slack thread, a line of a digest, or (a follow-up, where the destination
# cannot thread) a message of its own that names the story's earlier title.

FOLLOW_UPS = "Follow-ups"
ALSO_REPORTED = "Also reported"
_UNKNOWN_SOURCE = "unknown source"


def sighting_sections(sightings: Sequence[Sighting]) -> list[tuple[str, list[int]]]:
    """The sightings' indexes under their digest headings: follow-ups first, then the rest."""
    follow_ups = [i for i, s in enumerate(sightings) if s.follow_up]
    others = [i for i, s in enumerate(sightings) if not s.follow_up]
    return [(name, ids) for name, ids in ((FOLLOW_UPS, follow_ups), (ALSO_REPORTED, others)) if ids]


def follow_up_flag(sighting: Sighting) -> str:
    """``Follow-up: <why>`` for a significant development, else empty."""
    return f"Follow-up: {shorten(sighting.follow_up, 300)}" if sighting.follow_up else ""


def _sighting_source(sighting: Sighting) -> str:
    return sighting.source or _UNKNOWN_SOURCE


def _sighting_rules(sighting: Sighting, parent: Alert | None = None) -> str:
    titles = sighting.rule_titles or (parent.rule_titles if parent is not None else ())
    return ", ".join(one_line(title) for title in titles)


def _slack_sighting(sighting: Sighting, *, story: bool) -> RichElement:
    """One line: [follow-up flag ·] source · linked title · date [· the story's first title]."""
    runs: list[Iterable[RichElement]] = []
    if sighting.follow_up:
        runs.append([rich_text(follow_up_flag(sighting), bold=True), rich_text(" · ")])
    runs += [
        _run(_sighting_source(sighting), 300),
        [rich_text(" · "), slack_link(sighting.link, sighting.title, FOLDED_TITLE_MAX)],
        [rich_text(" · ")],
        _slack_when(sighting),
    ]
    if story and sighting.story_title:
        runs += [[rich_text(" · story: ")], _run(sighting.story_title, FOLDED_TITLE_MAX)]
    return _section(*runs)


def _sighting_fallback(sighting: Sighting) -> str:
    flag = follow_up_flag(sighting) + " · " if sighting.follow_up else ""
    return f"{flag}{_sighting_source(sighting)}: {sighting.title}"


def slack_reply(sighting: Sighting) -> SlackMessage:
    """A sighting as a one-line reply in its story's thread."""
    return SlackMessage(
        _slack_line(_sighting_fallback(sighting), SLACK_TEXT_MAX),
        [_rich_block(_slack_sighting(sighting, story=False))],
    )


def slack_follow_up(sighting: Sighting, parent: Alert) -> SlackMessage:
    """A follow-up as a message of its own, for a channel that cannot thread: the flag,
    the new item, and the story's earlier title."""
    meta: list[Iterable[RichElement]] = [
        _run(_sighting_source(sighting), 300),
        [rich_text(" · ")],
        _slack_when(sighting),
    ]
    if sighting.terms_as_written:
        meta += [[rich_text(" · Matched: ")], _slack_terms(sighting.terms_as_written)]
    rich = _rich_block(
        _section([rich_text(follow_up_flag(sighting), bold=True)]),
        _section([slack_link(sighting.link, sighting.title)]),
        _section(*meta),
        *_slack_outlets(sighting.outlets),
        _section([rich_text("Earlier: "), slack_link(parent.link, parent.title, FOLDED_TITLE_MAX)]),
    )
    header = {
        "type": "header",
        "text": _plain_text(_sighting_rules(sighting, parent), SLACK_HEADER_MAX),
    }
    return SlackMessage(_slack_line(_sighting_fallback(sighting), SLACK_TEXT_MAX), [header, rich])


# --- plain text -------------------------------------------------------------------------


def _text_summary(summary: Summary) -> str:
    return _emphasised(summary, len(summary.text) + 200, clean_text, lambda s: f"*{s}*")


def _text_block(alert: Alert, now: datetime, *, with_rule: bool) -> list[str]:
    if (heading := list_heading(alert)) is not None:
        # In a digest: the heading, then the list (the rule is the group's heading).
        return [shorten(heading, TITLE_MAX), *_text_list(alert)]
    lines = [shorten(rules_line(alert), TITLE_MAX)] if with_rule else []
    lines.append(shorten(alert.title, TITLE_MAX) or "(untitled)")
    if (url := safe_url(alert.link)) is not None:
        lines.append(url)
    source = shorten(_source(alert), 300) + in_language(alert)
    lines.append(f"Source: {source} · {when(alert, now)}")
    if alert.shown_terms:
        lines.append("Matched: " + shorten(", ".join(alert.shown_terms), 1000))
    if alert.also_matched and not with_rule:
        lines.append(_also_matched(alert))
    if alert.outlets > 1:
        lines.append(outlets_line(alert.outlets))
    if alert.also_reported_by:
        lines.append(_also_reported(alert))
    if alert.summary.text.strip():
        lines += ["", _text_summary(alert.summary)]
    return lines


def text_message(alert: Alert, now: datetime) -> str:
    """One alert as plain text (console, email): no control characters, terms in ``*stars*``;
    an urgent one starts ``[URGENT]``."""
    if alert.spike is not None:
        text = text_spike(alert, now)
    elif alert.is_overflow:
        text = text_overflow(alert, now)
    else:
        text = "\n".join(_text_block(alert, now, with_rule=True))
    return urgent_mark(alert) + text


def text_overflow(alert: Alert, now: datetime) -> str:
    """An overflow alert as plain text: each listed item's title, link and rules."""
    intro = _overflow_intro(alert, now) + ":"
    return "\n".join([shorten(overflow_heading(alert), TITLE_MAX), intro, *_text_list(alert)])


def text_spike(alert: Alert, now: datetime) -> str:
    """A spike alert as plain text: what the spike is, then each top story's title and link."""
    intro = f"{_at(alert.first_seen, now)} · {_SPIKE_INTRO}:"
    return "\n".join([shorten(spike_heading(alert), TITLE_MAX), intro, *_text_list(alert)])


def _text_list(alert: Alert) -> list[str]:
    """An alert's folded items, each title, link and (but a spike's stories) rules, then how
    many more."""
    lines = []
    for folded in alert.folded:
        lines += ["", "- " + (shorten(folded.title, FOLDED_TITLE_MAX) or "(untitled)")]
        if (url := safe_url(folded.link)) is not None:
            lines.append("  " + url)
        if alert.spike is None and folded.rule_titles:
            lines.append("  Rules: " + shorten(", ".join(folded.rule_titles), FOLDED_TITLE_MAX))
    if (more := alert.folded_count - len(alert.folded)) > 0:
        lines += ["", f"and {more} more"]
    return lines


def text_digest(alerts: Sequence[Alert], now: datetime, sightings: Sequence[Sighting] = ()) -> str:
    """Several alerts as plain text, grouped by rule, then the later sightings of earlier
    stories, one line each; titled when every alert waited for a cap or for quiet hours."""
    title = digest_title(alerts)
    parts = [_underlined(title)] if title else []
    for group in group_by_rule(alerts):
        parts.append(_underlined(f"{shorten(group[0].rule_title, TITLE_MAX)} ({len(group)})"))
        parts += ["\n".join(_text_block(alert, now, with_rule=False)) for alert in group]
    for heading, numbers in sighting_sections(sightings):
        lines = [
            text_sighting(sightings[i], now, story=sightings[i].story_title, mark="- ")
            for i in numbers
        ]
        parts.append(_underlined(f"{heading} ({len(numbers)})") + "\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _underlined(title: str) -> str:
    return f"{title}\n{'=' * min(len(title), 72)}"


def text_sighting(
    sighting: Sighting, now: datetime, *, story: str | None = None, mark: str = "↳ "
) -> str:
    """A sighting on one line: [follow-up flag ·] source: title · link · when [· story]."""
    pieces = [follow_up_flag(sighting)] if sighting.follow_up else []
    title = shorten(sighting.title, TITLE_MAX) or "(untitled)"
    pieces.append(f"{shorten(_sighting_source(sighting), 300)}: {title}")
    if (url := safe_url(sighting.link)) is not None:
        pieces.append(url)
    pieces.append(when(sighting, now))
    if sighting.outlets > 1:
        pieces.append(counted(sighting.outlets, "outlet"))
    if story:
        pieces.append("story: " + shorten(story, FOLDED_TITLE_MAX))
    return mark + " · ".join(pieces)


def text_follow_up(sighting: Sighting, parent: Alert, now: datetime) -> str:
    """A follow-up as a plain-text message of its own, naming the story's earlier title."""
    lines = [shorten(_sighting_rules(sighting, parent), TITLE_MAX), follow_up_flag(sighting)]
    lines.append(shorten(sighting.title, TITLE_MAX) or "(untitled)")
    if (url := safe_url(sighting.link)) is not None:
        lines.append(url)
    lines.append(f"Source: {shorten(_sighting_source(sighting), 300)} · {when(sighting, now)}")
    if sighting.terms_as_written:
        lines.append("Matched: " + shorten(", ".join(sighting.terms_as_written), 1000))
    if sighting.outlets > 1:
        lines.append(outlets_line(sighting.outlets))
    lines += ["", "Earlier: " + (shorten(parent.title, TITLE_MAX) or "(untitled)")]
    if (url := safe_url(parent.link)) is not None:
        lines.append(url)
    return "\n".join(lines)


# --- email ------------------------------------------------------------------------------


class Markup(str):
    """HTML that is already safe: the template inserts it without escaping again."""

    __slots__ = ()


def html_template(template: str, **values: str) -> Markup:
    """Auto-escaping substitution: every value is escaped unless it is :class:`Markup`."""
    return Markup(
        Template(template).substitute(
            {k: v if isinstance(v, Markup) else html.escape(v) for k, v in values.items()}
        )
    )


_ALLOWED_TAGS = {"a", "p", "br", "strong", "em", "h2", "h3", "div", "span", "small", "hr"}
_ALERT_HTML = """<div>
<h3>$rule</h3>
<p><strong>$title</strong></p>
<p><small>$source · $when</small></p>
$terms$matched$outlets$also$summary</div>
"""


def sanitize_html(fragment: str) -> str:
    """nh3 with an explicit allow-list: no script, style, img, iframe or forms; http(s) links."""
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _html_link(url: str | None, label: str) -> Markup:
    target = safe_url(url)
    label = shorten(label, TITLE_MAX) or "(untitled)"
    if target is None:
        return html_template("$label", label=label)
    return html_template('<a href="$href">$label</a>', href=target, label=label)


def _html_alert(alert: Alert, now: datetime, *, with_rule: bool) -> Markup:
    summary = alert.summary
    rendered = _emphasised(summary, len(summary.text) + 200, html.escape, _html_strong)
    return html_template(
        _ALERT_HTML if with_rule else _ALERT_HTML.replace("<h3>$rule</h3>\n", ""),
        rule=urgent_mark(alert) + shorten(rules_line(alert), TITLE_MAX),
        title=_html_link(alert.link, alert.title),
        source=shorten(_source(alert), 300) + in_language(alert),
        when=when(alert, now),
        terms=_html_paragraph(
            "Matched: " + shorten(", ".join(alert.shown_terms), 1000), alert.shown_terms
        ),
        matched=_html_paragraph(_also_matched(alert), alert.also_matched if not with_rule else ()),
        outlets=_html_paragraph(outlets_line(alert.outlets), ("",) if alert.outlets > 1 else ()),
        also=_html_paragraph(_also_reported(alert), alert.also_reported_by),
        summary=Markup(f"<p>{rendered}</p>\n") if summary.text.strip() else Markup(""),
    )


_LIST_HTML = """<div>
<h3>$heading</h3>
$intro$items$more</div>
"""
_FOLDED_HTML = "<p>$title$rules</p>\n"


def _html_list(alert: Alert, now: datetime | None) -> Markup:
    """An alert listing items (a spike's top stories, an overflow's matches): its heading,
    (on its own, ``now`` given) when and why, each item linked, then how many more."""
    spike = alert.spike is not None
    items = "".join(
        html_template(
            _FOLDED_HTML,
            title=_html_link(folded.link, folded.title),
            rules=html_template(
                "<br>\n<small>$rules</small>",
                rules=shorten(", ".join(folded.rule_titles), FOLDED_TITLE_MAX),
            )
            if not spike and folded.rule_titles
            else "",
        )
        for folded in alert.folded
    )
    intro = ""
    if now is not None:
        why = _SPIKE_INTRO if spike else _OVERFLOW_INTRO
        intro = html_template(
            "<p><small>$when · $why:</small></p>\n", when=_at(alert.first_seen, now), why=why
        )
    more = alert.folded_count - len(alert.folded)
    return html_template(
        _LIST_HTML,
        heading=urgent_mark(alert) + shorten(list_heading(alert) or "", TITLE_MAX),
        intro=intro,
        items=Markup(items),
        more=html_template("<p>and $more more</p>\n", more=str(more)) if more > 0 else "",
    )


def _html_strong(text: str) -> str:
    return f"<strong>{text}</strong>"


def _html_paragraph(text: str, present: Sequence[str]) -> Markup:
    return html_template("<p>$text</p>\n", text=text) if present else Markup("")


def _html_group(alerts: Sequence[Alert], now: datetime) -> str:
    rule = f"{shorten(alerts[0].rule_title, 300)} ({len(alerts)})"
    items = "<hr>\n".join(
        _html_list(alert, None) if list_heading(alert) else _html_alert(alert, now, with_rule=False)
        for alert in alerts
    )
    return html_template("<h2>$rule</h2>\n", rule=rule) + items


_SIGHTING_HTML = "<p>$flag$title<br>\n<small>$source · $when$story</small></p>\n"
_FOLLOW_UP_HTML = """<div>
<h3>$rules</h3>
<p><strong>$flag</strong></p>
<p><strong>$title</strong></p>
<p><small>$source · $when</small></p>
$terms$outlets<p>Earlier: $earlier</p>
</div>
"""


def _html_sighting(sighting: Sighting, now: datetime) -> Markup:
    flag = follow_up_flag(sighting)
    story = sighting.story_title
    return html_template(
        _SIGHTING_HTML,
        flag=html_template("<strong>$flag</strong><br>\n", flag=flag) if flag else "",
        title=_html_link(sighting.link, sighting.title),
        source=shorten(_sighting_source(sighting), 300),
        when=when(sighting, now),
        story=" · story: " + shorten(story, FOLDED_TITLE_MAX) if story else "",
    )


def _html_sightings(sightings: Sequence[Sighting], now: datetime) -> str:
    return "".join(
        html_template("<h2>$heading</h2>\n", heading=f"{heading} ({len(numbers)})")
        + "".join(_html_sighting(sightings[i], now) for i in numbers)
        for heading, numbers in sighting_sections(sightings)
    )


def _html_follow_up(sighting: Sighting, parent: Alert, now: datetime) -> Markup:
    terms = sighting.terms_as_written
    return html_template(
        _FOLLOW_UP_HTML,
        rules=shorten(_sighting_rules(sighting, parent), TITLE_MAX),
        flag=follow_up_flag(sighting),
        title=_html_link(sighting.link, sighting.title),
        source=shorten(_sighting_source(sighting), 300),
        when=when(sighting, now),
        terms=_html_paragraph("Matched: " + shorten(", ".join(terms), 1000), terms),
        outlets=_html_paragraph(
            outlets_line(sighting.outlets), ("",) if sighting.outlets > 1 else ()
        ),
        earlier=_html_link(parent.link, parent.title),
    )


def _html_document(
    alerts: Sequence[Alert], now: datetime, sightings: Sequence[Sighting] = ()
) -> str:
    if is_single(alerts, sightings) and list_heading(alerts[0]) is not None:
        body = _html_list(alerts[0], now)
    elif is_single(alerts, sightings):
        body = _html_alert(alerts[0], now, with_rule=True)
    else:
        title = digest_title(alerts)
        top = html_template("<h2>$title</h2>\n", title=title) if title else ""
        groups = "".join(_html_group(group, now) for group in group_by_rule(alerts))
        body = Markup(top + groups + _html_sightings(sightings, now))
    return _html_page(body)


def _html_page(body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        + sanitize_html(body)
        + "\n</body></html>\n"
    )


def header_value(text: str, limit: int = SUBJECT_MAX) -> str:
    """A safe one-line header value: no control characters, CR/LF or U+2028/9; cut to ``limit``."""
    return shorten(text, limit)


def email_subject(alerts: Sequence[Alert], sightings: Sequence[Sighting] = ()) -> str:
    """``[newswatch] …``: the rule and title, a list's heading, or what a digest holds; an
    urgent alert's subject starts ``[urgent] ``."""
    later = counted(len(sightings), "later report")
    if is_single(alerts, sightings):
        alert = alerts[0]
        what = list_heading(alert) or f"{rules_line(alert)}: {one_line(alert.title)}"
        urgent = "[urgent] " if alert.priority == "urgent" else ""
        raw = f"{urgent}[newswatch] {what}"
    elif not alerts:
        raw = f"[newswatch] {later} of earlier stories"
    else:
        rules = ", ".join(one_line(g[0].rule_title) for g in group_by_rule(alerts))
        more = f" (+{later})" if sightings else ""
        what = digest_title(alerts) or counted(len(alerts), "alert")
        raw = f"[newswatch] {what}{more}: {rules}"
    return header_value(raw)


def message_id(alerts: Sequence[Alert], sightings: Sequence[Sighting] = ()) -> str:
    """Stable per alert (rule, destination, item) and sighting, so a resend is recognisably
    the same mail (and the same Slack message)."""
    keys = sorted("\x1f".join((a.rule_id, a.destination, a.feed_id, a.item_key)) for a in alerts)
    keys += sorted(map(_sighting_key, sightings))
    # 128 bits of SHA-256 is unique enough and keeps the header on one line.
    digest = hashlib.sha256("\x1e".join(keys).encode()).hexdigest()[:32]
    return f"<{digest}@newswatch>"


def _sighting_key(sighting: Sighting) -> str:
    parts = (str(sighting.story_id), sighting.destination, sighting.source, sighting.title)
    return "\x1f".join(("sighting", *parts, sighting.link or ""))


def email_message(
    alerts: Alert | Sequence[Alert],
    now: datetime,
    *,
    sender: str,
    recipients: Sequence[str],
    sightings: Sequence[Sighting] = (),
) -> EmailMessage:
    """One alert, or a digest grouped by rule with the later sightings of earlier stories,
    as multipart/alternative (plain text, then HTML)."""
    batch = [alerts] if isinstance(alerts, Alert) else list(alerts)
    if not batch and not sightings:
        raise ValueError("an email needs at least one alert or sighting")
    message = _email(email_subject(batch, sightings), now, sender, recipients)
    message["Message-ID"] = message_id(batch, sightings)
    single = is_single(batch, sightings)
    if single and batch[0].priority == "urgent":
        message["Importance"] = "high"
        message["X-Priority"] = "1"
    plain = text_message(batch[0], now) if single else text_digest(batch, now, sightings)
    message.set_content(plain + "\n")
    message.add_alternative(_html_document(batch, now, sightings), subtype="html")
    return message


def follow_up_email(
    sighting: Sighting, parent: Alert, now: datetime, *, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    """A follow-up as a mail of its own, a reply to the story's alert (``In-Reply-To``), so
    mail clients that thread show it under the alert."""
    title = f"{follow_up_flag(sighting)} — {one_line(sighting.title)}"
    message = _email(header_value(f"[newswatch] {title}"), now, sender, recipients)
    message["Message-ID"] = message_id((), (sighting,))
    message["In-Reply-To"] = message_id((parent,))
    message["References"] = message_id((parent,))
    message.set_content(text_follow_up(sighting, parent, now) + "\n")
    message.add_alternative(_html_page(_html_follow_up(sighting, parent, now)), subtype="html")
    return message


def _email(subject: str, now: datetime, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = header_value(sender, 998)
    message["To"] = ", ".join(header_value(r, 998) for r in recipients)
    message["Date"] = format_datetime(as_utc(now))
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    return message


def notice_email(
    title: str, text: str, now: datetime, *, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    """A message that is not an alert (feed failure, ``send-test``), plain text only."""
    message = EmailMessage()
    message["Subject"] = header_value(f"[newswatch] {one_line(title)}")
    message["From"] = header_value(sender, 998)
    message["To"] = ", ".join(header_value(r, 998) for r in recipients)
    message["Date"] = format_datetime(as_utc(now))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(clean_text(text) + "\n")
    return message
