"""The ``newswatch`` command line."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from bot import __version__
from bot.alerts.render import counted, relative_time, span, text_message
from bot.alerts.stats import (
    StatsInput,
    budget_settings,
    fit_column,
    stats_lines,
    table_lines,
    window,
)
from bot.cli.progress import Progress
from bot.cli.rule_test import budget_lines, explain_all, query_lines, read_sources, render
from bot.cli.stories import story_lines
from bot.config.edit import add_feeds
from bot.config.load import SETTINGS_FILE, Config, load_config
from bot.config.opml import OpmlError, parse_opml
from bot.config.schema import DOCUMENTS, DigestCron, json_schema_text
from bot.config.units import parse_duration
from bot.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_STORE,
    ConfigError,
    DeliveryError,
    NewswatchError,
    StoreError,
)
from bot.feeds.language import item_language
from bot.logs import scrub, setup_logging
from bot.notify import build_notifier
from bot.pipeline.base import utcnow
from bot.pipeline.poll import CycleReport
from bot.rules.evaluate import evaluate, parse_labelled, report, score, shortfalls
from bot.service.app import close_all, config_secrets, open_notifiers, open_synced_store, run_once
from bot.service.daemon import serve
from bot.service.health import last_read
from bot.store import DailyStats, DigestHeld, FeedState, Store, store_error
from bot.timing import rough

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass
class Context:
    config_dir: Path
    log_format: str
    verbosity: int
    config: Config | None = None

    def load(self) -> Config:
        """The validated config, or every problem on stderr and exit 2."""
        try:
            config = load_config(self.config_dir, os.environ)
        except ConfigError as err:
            for problem in err.problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(err.problems)} problem(s) in {self.config_dir}", err=True)
            raise SystemExit(EXIT_CONFIG) from None
        setup_logging(self.log_format, self.verbosity, config_secrets(config))
        self.config = config
        return config

    @staticmethod
    def echo(message: str = "", *, err: bool = False) -> None:
        """Print a line of command output, hiding the secrets the logs hide."""
        click.echo(scrub(message), err=err)


class DurationType(click.ParamType):
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            return parse_duration(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


def _config_after(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).config_dir = value


config_option = click.option(
    "--config",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    expose_value=False,
    callback=_config_after,
    help="Config directory, as before the command (newswatch --config DIR ...).",
)
"""``--config`` after a command too: people write ``newswatch check --config DIR``."""


def handles_errors(func: F) -> F:
    """Failures end as one clear line and a documented exit code, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StoreError as err:
            _fail(str(err), EXIT_STORE)
        except NewswatchError as err:
            _fail(str(err), EXIT_FAILED)
        except RecursionError:
            _fail("input nested too deeply to process", EXIT_FAILED)
        except Exception as err:
            failure = _store_failure(err)
            if failure is None:
                raise
            _fail(str(failure), EXIT_STORE)

    return wrapper  # type: ignore[return-value]


def _store_failure(err: Exception) -> StoreError | None:
    """``err`` as a failure of the loaded config's store (a database driver's error), or None."""
    obj = click.get_current_context().find_object(Context)
    if obj is None or obj.config is None:
        return None
    return store_error(obj.config.settings.store, err)


def _fail(message: str, code: int) -> None:
    Context.echo(f"newswatch: {message}", err=True)
    raise SystemExit(code) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newswatch")
@click.option(
    "--config",
    "config_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="NEWSWATCH_CONFIG",
    default="config",
    show_default=True,
    help="Config directory (settings.yaml, rules.yaml, rules/*.yaml). Env: NEWSWATCH_CONFIG.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log line format (on stderr).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v: debug).")
@click.option("-q", "--quiet", count=True, help="Less logging (warnings and errors only).")
@click.pass_context
def main(ctx: click.Context, config_dir: Path, log_format: str, verbose: int, quiet: int) -> None:
    """Watch news feeds and alert Slack or email when stories match your rules."""
    ctx.obj = Context(config_dir, log_format, verbose - quiet)
    setup_logging(log_format, verbose - quiet)


@main.command()
@config_option
@click.pass_obj
@handles_errors
def check(obj: Context) -> None:
    """Validate settings and rules; print every problem and warning; send nothing."""
    config = obj.load()
    for warning in config.warnings:
        obj.echo(str(warning), err=True)
    s = config.settings
    warned = f", {counted(len(config.warnings), 'warning')}" if config.warnings else ""
    obj.echo(
        f"{obj.config_dir}: OK — {counted(len(s.feeds), 'feed')}, "
        f"{counted(len(config.rules), 'rule')}, "
        f"{counted(len(s.destinations), 'destination')} ({', '.join(sorted(s.destinations))})"
        + warned
    )


@main.command()
@config_option
@click.option(
    "--dry-run", is_flag=True, help="Print alerts instead of sending them; change no state at all."
)
@click.option(
    "--backfill",
    type=DurationType(),
    default=None,
    metavar="DURATION",
    help="On a feed's first fetch, alert items published within DURATION.",
)
@click.pass_obj
@handles_errors
def once(obj: Context, dry_run: bool, backfill: float | None) -> None:
    """Poll every feed once, deliver pending alerts, and exit (1 if any is undelivered)."""
    config = obj.load()
    store = open_synced_store(config, read_only=dry_run)
    notifiers = {} if dry_run else open_notifiers(config, store)
    try:
        with Progress(sum(1 for f in config.settings.feeds if f.enabled)) as progress:
            result = asyncio.run(
                run_once(
                    config, store, notifiers, backfill=backfill, dry_run=dry_run, events=progress
                )
            )
    finally:
        close_all(store, notifiers)
    now = utcnow()
    if dry_run:
        for alert in result.cycle.alerts:
            obj.echo(text_message(alert, now))
            obj.echo()
    cycle = result.cycle
    obj.echo(
        f"{counted(len(cycle.feeds), 'feed')} polled, {len(cycle.failed)} failed, "
        f"{counted(sum(f.new_items for f in cycle.feeds), 'new item')}, "
        f"{counted(len(cycle.alerts), 'alert')}"
        + ("" if dry_run else f", {result.sent} sent, {result.undelivered} undelivered")
        + "".join(_held_note(held, config, now, len(result.held)) for held in result.held),
        err=True,
    )
    for failed in cycle.failed:
        obj.echo(f"  {failed.feed_id}: {failed.status} {failed.detail}".rstrip(), err=True)
    for undelivered in result.failures:
        obj.echo(
            f"  {undelivered.destination}: {undelivered.count} not delivered after"
            f" {undelivered.attempts} attempt(s), kept for the next run: {undelivered.error}",
            err=True,
        )
    if note := _first_fetch_note(cycle, backfill):
        obj.echo(note, err=True)
    if len(cycle.failed) > 1 and len(cycle.failed) == len(cycle.feeds):
        obj.echo(
            "every feed failed: check this machine's network, DNS and proxy (HTTPS_PROXY,"
            " NO_PROXY) before the feeds themselves",
            err=True,
        )
    if result.undelivered:
        raise SystemExit(EXIT_FAILED)


def _held_note(held: DigestHeld, config: Config, now: datetime, destinations: int) -> str:
    """ ", 5 held for the 09:00 UTC digest" (or, without a digest, alerts held by quiet hours or
    a cap: ", 5 held until 07:00 EDT"): when they go, in the time zone of the destination's
    digest schedule or quiet hours (with the date unless it is today there)."""
    destination = config.settings.destinations.get(held.destination)
    digest = getattr(destination, "digest", None)
    quiet = getattr(destination, "quiet", None)
    if isinstance(digest, DigestCron):
        zone = ZoneInfo(digest.timezone)
    elif digest is None and quiet is not None:
        zone = ZoneInfo(quiet.timezone)
    else:
        zone = ZoneInfo("UTC")
    closes = held.closes_at.astimezone(zone)
    day = "" if closes.date() == now.astimezone(zone).date() else f"{closes:%Y-%m-%d} "
    of = f" of {held.destination}" if destinations > 1 else ""
    when = f"{day}{closes:%H:%M} {closes.tzname()}"
    if digest is None:
        return f", {held.count} held until {when}{of}"
    return f", {held.count} held for the {when} digest{of}"


def _first_fetch_note(cycle: CycleReport, backfill: float | None) -> str:
    """Why a first run alerts on nothing, and when ``--backfill`` could not change that."""
    first = sum(1 for f in cycle.feeds if f.status == "baseline")
    if first and backfill is None:
        return (
            f"{first} feed(s) fetched for the first time: their items are marked seen, not"
            " alerted; only stories published from now on alert (--backfill DURATION alerts"
            " a first fetch's recent items)"
        )
    if backfill is not None and not first:
        return "--backfill had no effect: every feed had been fetched before"
    return ""


@main.command("run")
@config_option
@click.pass_obj
@handles_errors
def run_daemon(obj: Context) -> None:
    """Run the daemon: poll feeds, deliver alerts, serve /healthz and /metrics (SIGHUP reloads)."""
    config = obj.load()
    open_synced_store(config).close()  # an unusable store is one line and exit 3, not a crash
    raise SystemExit(serve(config, os.environ))


@main.command("test")
@config_option
@click.argument("rule_id")
@click.option(
    "--feed",
    "locations",
    multiple=True,
    metavar="URL_OR_FILE",
    help="A feed URL or a feed file to test on (repeatable). Default: the rule's feeds.",
)
@click.option("--text", default=None, help="A text to test on (as title, summary and content).")
@click.option("--all", "show_all", is_flag=True, help="Show items that do not match too.")
@click.pass_obj
@handles_errors
def test_rule(
    obj: Context, rule_id: str, locations: tuple[str, ...], text: str | None, show_all: bool
) -> None:
    """Show which items RULE_ID matches and why, and what its priority and the destinations'
    quiet hours and caps would do with each. Changes nothing, sends nothing."""
    config = obj.load()
    rule = next((r for r in config.rules if r.id == rule_id), None)
    if rule is None:
        known = ", ".join(r.id for r in config.rules)
        raise click.UsageError(f"unknown rule {rule_id!r} (known: {known})")
    sources = asyncio.run(read_sources(config, rule, locations, text))
    tty = sys.stdout.isatty()

    def highlight(fragment: str) -> str:
        return click.style(fragment, fg="yellow", bold=True) if tty else f"«{fragment}»"

    results = explain_all(rule, sources)
    for line in query_lines(rule):
        obj.echo(line, err=True)
    for source in sources:
        if source.error:
            obj.echo(f"{source.name}: {source.error}", err=True)
    matched_items = [item for _, item, e in results if e.matched]
    fates, totals = budget_lines(rule, config.settings.destinations, matched_items, utcnow())
    budget = iter(fates)
    for _, item, explanation in results:
        if explanation.matched or show_all:
            for line in render(explanation, item, highlight, show_fields=True):
                obj.echo(line)
            for line in next(budget) if explanation.matched else ():
                obj.echo(line)
            obj.echo()
    matched = len(matched_items)
    failed = sum(1 for source in sources if source.error)
    unread = f", {failed} unreadable" if failed else ""
    obj.echo(
        f"{rule.id}: {matched} of {len(results)} items match"
        f" ({counted(len(sources), 'source')}{unread})",
        err=True,
    )
    for line in totals if matched else ():
        obj.echo(line, err=True)
    if sources and failed == len(sources):
        raise SystemExit(EXIT_FAILED)  # nothing was tested: "0 of 0 match" is no answer


@main.command("eval")
@config_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--min-recall",
    type=click.FloatRange(0, 1),
    default=None,
    help="Exit 1 when the overall recall is under this (0 to 1).",
)
@click.option(
    "--min-precision",
    type=click.FloatRange(0, 1),
    default=None,
    help="Exit 1 when the overall precision is under this (0 to 1).",
)
@click.pass_obj
@handles_errors
def eval_rules(
    obj: Context, files: tuple[Path, ...], min_recall: float | None, min_precision: float | None
) -> None:
    """Score the rules on FILES of items labelled relevant or not (YAML, or JSON lines)."""
    config = obj.load()
    known = {r.id for r in config.rules}
    cases, problems = [], []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
            cases += parse_labelled(text, str(file), known, item_language)
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{file}: cannot read: {getattr(err, 'strerror', None) or err}")
        except ConfigError as err:
            problems += [str(problem) for problem in err.problems]
    for problem in problems:
        obj.echo(problem, err=True)
    if problems:
        raise SystemExit(EXIT_CONFIG)
    outcomes = evaluate(config.rules, cases)
    for line in report(config.rules, outcomes):
        obj.echo(line)
    failures = shortfalls(score(outcomes), min_recall, min_precision)
    for failure in failures:
        obj.echo(f"newswatch: {failure}", err=True)
    if failures:
        raise SystemExit(EXIT_FAILED)


@main.group(invoke_without_command=True)
@config_option
@click.pass_context
@handles_errors
def feeds(ctx: click.Context) -> None:
    """Show every feed's health: last fetch, status, items, next poll, error."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    config = obj.load()
    states, counts = _read(
        config,
        lambda store: ({s.feed_id: s for s in store.feed_states()}, store.outbox_counts(utcnow())),
    )
    now = utcnow()
    rows: list[tuple[str, ...]] = [
        ("FEED", "STATUS", "LAST SUCCESS", "ERROR", "ITEMS", "NEXT POLL", "FAILURES")
    ]
    for feed in config.settings.feeds:
        s = states.get(feed.id)
        if s is None:
            rows.append((feed.id, "new", "-", "-", "0", "now", "0"))
            continue
        rows.append(
            (
                feed.id,
                _status(s, now) if feed.enabled else "disabled",
                _ago(s.last_success_at, now),
                s.last_error or (f"warning: {s.warning}" if s.warning else "-"),
                str(s.item_count),
                _ago(s.next_poll_at, now),
                str(s.consecutive_failures),
            )
        )
    width = _terminal_width(obj)
    if width is not None:  # an error can be a paragraph, and -v shows it whole
        rows = fit_column(rows, ERROR_COLUMN, width)
    for line in table_lines(rows):
        obj.echo(line)
    obj.echo(
        f"\noutbox: {counts.pending} pending, {counts.waiting_digest} waiting for a digest, "
        f"{counts.sent} sent, {counts.dead} dead"
    )
    enabled = {f.id for f in config.settings.feeds if f.enabled}
    read = last_read(s for s in states.values() if s.feed_id in enabled)
    quiet = (now - read).total_seconds() if read is not None else 0.0
    if quiet > config.settings.degraded_after:
        obj.echo(
            f"warning: no feed has been read for {span(quiet)}: check that the daemon runs and"
            " can reach the network (a proxy?)",
            err=True,
        )


ERROR_COLUMN = 3


def _terminal_width(obj: Context) -> int | None:
    """The width to fit a table into: the terminal's; None (whole lines) when the output is
    piped (scripts, grep) or ``-v`` asks for everything."""
    if obj.verbosity <= 0 and sys.stdout.isatty():
        return shutil.get_terminal_size((120, 24)).columns
    return None


@main.command()
@config_option
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="How many days, up to today (UTC), to count.",
)
@click.pass_obj
@handles_errors
def stats(obj: Context, days: int) -> None:
    """Per rule: matches and alerts per day (urgent, held, capped once any is), and the rules
    with none; the attention budget's settings; per feed: new items per day. Read-only."""
    config = obj.load()
    today = utcnow().date()
    daily = _read(config, lambda store: store.daily_stats(today - timedelta(days=days - 1)))
    data = _stats_input(
        daily,
        window(today, days),
        [r.id for r in config.rules],
        [f.id for f in config.settings.feeds],
    )
    data = replace(data, settings=budget_settings(config.rules, config.settings.destinations))
    for line in stats_lines(data, _terminal_width(obj)):
        obj.echo(line)


def _read(config: Config, read: Callable[[Store], T]) -> T:
    """What ``read`` finds in the store, opened read-only (a command that changes nothing)."""
    store = open_synced_store(config, read_only=True)
    try:
        return read(store)
    finally:
        store.close()


def _stats_input(
    daily: DailyStats, days: list[date], rules: list[str], feeds: list[str]
) -> StatsInput:
    """The store's rows as the per-day mappings the report is made of."""
    matches: dict[str, dict[date, int]] = defaultdict(dict)
    alerts: dict[str, dict[date, int]] = defaultdict(dict)
    items: dict[str, dict[date, int]] = defaultdict(dict)
    urgent: dict[str, dict[date, int]] = defaultdict(dict)
    held: dict[str, dict[date, int]] = defaultdict(dict)
    capped: dict[str, dict[date, int]] = defaultdict(dict)
    for r in daily.rules:
        matches[r.rule_id][r.day] = r.matches
        alerts[r.rule_id][r.day] = r.alerts
        urgent[r.rule_id][r.day] = r.urgent
        held[r.rule_id][r.day] = r.held
        capped[r.rule_id][r.day] = r.capped
    for f in daily.feeds:
        items[f.feed_id][f.day] = f.items
    return StatsInput(
        days, rules, feeds, matches, alerts, items, daily.last_match, urgent, held, capped
    )


@main.command()
@config_option
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True),
    default=72,
    show_default=True,
    help="Stories sighted within this many hours.",
)
@click.pass_obj
@handles_errors
def stories(obj: Context, hours: float) -> None:
    """Recent stories: each telling (outlet, title, rules) and where the story went (its
    alert, its thread, its later sightings). Read-only: changes nothing."""
    config = obj.load()
    now = utcnow()
    recent = _read(config, lambda store: store.recent_stories(now - timedelta(hours=hours)))
    for line in story_lines(recent):
        obj.echo(line)


@feeds.command("import")
@config_option
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@handles_errors
def feeds_import(obj: Context, opml_file: Path) -> None:
    """Add the feeds of OPML_FILE to settings.yaml (comments kept, duplicates skipped)."""
    obj.load()
    try:
        found = parse_opml(opml_file.read_bytes())
    except OpmlError as err:
        obj.echo(f"{opml_file}: {err}", err=True)
        raise SystemExit(EXIT_CONFIG) from None
    settings_file = obj.config_dir / SETTINGS_FILE
    original = settings_file.read_text(encoding="utf-8")
    added, skipped = add_feeds(settings_file, found)
    try:
        load_config(obj.config_dir, os.environ)
    except ConfigError as err:
        settings_file.write_text(original, encoding="utf-8")
        obj.echo("the imported feeds would make the config invalid; nothing changed:", err=True)
        for problem in err.problems:
            obj.echo(f"  {problem}", err=True)
        raise SystemExit(EXIT_CONFIG) from None
    for url in skipped:
        obj.echo(f"skipped (already configured): {url}")
    obj.echo(f"added {len(added)} feed(s) to {settings_file}: {', '.join(added) or '-'}")


def _ago(moment: datetime | None, now: datetime) -> str:
    return "-" if moment is None else relative_time(moment, now)


def _status(state: FeedState, now: datetime) -> str:
    """A feed's status; a silent one says for how long, beside how often it used to publish."""
    if state.status != "silent" or state.last_new_at is None or state.usual_gap is None:
        return state.status
    quiet = (now - state.last_new_at).total_seconds()
    return f"silent {rough(quiet)} (usual gap {rough(state.usual_gap)})"


@main.command("send-test")
@config_option
@click.argument("destination_id")
@click.pass_obj
@handles_errors
def send_test(obj: Context, destination_id: str) -> None:
    """Send one test message to DESTINATION_ID to check its credentials."""
    config = obj.load()
    destination = config.settings.destinations.get(destination_id)
    if destination is None:
        known = ", ".join(sorted(config.settings.destinations))
        raise click.UsageError(f"unknown destination {destination_id!r} (known: {known})")
    notifier = build_notifier(destination_id, destination)
    try:
        notifier.send_notice(
            "newswatch test message",
            f"If you can read this, newswatch can post to {destination_id}.",
        )
    except DeliveryError as err:
        obj.echo(f"send-test {destination_id}: failed: {err}", err=True)
        raise SystemExit(EXIT_FAILED) from None
    finally:
        notifier.close()
    obj.echo(f"send-test {destination_id}: sent")


@main.command("schema")
@click.argument("document", type=click.Choice(sorted(DOCUMENTS)))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the schema to this file instead of standard output.",
)
def schema(document: str, output: Path | None) -> None:
    """Print the JSON Schema of settings.yaml or of a rules file, for editors.

    With the YAML extension of VS Code (or any yaml-language-server editor), a first line
    `# yaml-language-server: $schema=schema/settings.schema.json` completes and checks keys.
    """
    text = json_schema_text(DOCUMENTS[document])
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        _fail(f"cannot write {output}: {err.strerror}", EXIT_FAILED)


def run() -> None:
    """Entry point that never shows a traceback for a broken pipe (``newswatch feeds | head``)."""
    try:
        main(prog_name="newswatch")
    except BrokenPipeError:
        sys.stderr.close()
        raise SystemExit(0) from None
