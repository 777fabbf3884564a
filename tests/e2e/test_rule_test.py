"""`newswatch test`: why a rule matches, on feeds, files and text; no state, nothing sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.cli.rule_test import text_item
from tests.conftest import ConfigDir, Result, run_cli
from tests.e2e.test_once import MOSUL, UNRELATED
from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss

RULES = """
    rules:
      - id: mission
        title: Police mission
        query: '(RCMP OR "police officers") AND (Iraq OR /mos(so)?ul/) -hockey'
"""


def setup(cfg: ConfigDir, feed_url: str) -> None:
    cfg.write(
        "settings.yaml",
        f"""
        store: sqlite:{cfg.store}
        feeds: [{{id: news, url: '{feed_url}'}}]
    """,
    )
    cfg.write("rules.yaml", RULES)


def test_explains_matches_from_the_rules_feeds(config_dir: ConfigDir, feed_server: FeedServer):
    setup(config_dir, feed_server.serve("/n.xml", rss([MOSUL, UNRELATED])))
    result = run_cli("--config", str(config_dir.path), "test", "mission")
    assert result.code == 0, result.stderr
    assert "MATCH     Canada to send officers to «Iraq»" not in result.stdout  # title has no RCMP
    assert result.stdout.startswith("MATCH     Canada to send officers to Iraq")
    assert "«police officers» to «Iraq»" in result.stdout
    assert "«RCMP»" in result.stdout and "«Mosul»" in result.stdout
    assert "Hockey night" not in result.stdout
    assert "mission: 1 of 2 items match" in result.stderr
    assert not config_dir.store.exists()


def test_all_shows_non_matches_with_what_is_missing(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    setup(config_dir, feed_server.serve("/n.xml", rss([UNRELATED])))
    result = run_cli("--config", str(config_dir.path), "test", "mission", "--all")
    assert result.code == 0, result.stderr
    assert "no match  Hockey night" in result.stdout
    assert "missing:  rcmp, police officers, iraq" in result.stdout


def test_text_and_files(config_dir: ConfigDir, feed_server: FeedServer) -> None:
    setup(config_dir, feed_server.url + "/unused")
    feed_file = config_dir.path.parent / "saved.xml"
    feed_file.write_text(rss([MOSUL]))
    result = run_cli(
        "--config",
        str(config_dir.path),
        "test",
        "mission",
        "--text",
        "Les policiers de la GRC quittent Mossoul — RCMP police officers leave Mosul",
        "--feed",
        str(feed_file),
        "--feed",
        str(config_dir.path / "missing.xml"),
    )
    assert result.code == 0, result.stderr
    assert "«Mossoul»" in result.stdout and "«RCMP» «police officers»" in result.stdout
    assert "missing.xml: cannot read" in result.stderr
    assert "mission: 2 of 2 items match (3 sources, 1 unreadable)" in result.stderr
    assert feed_server.requests == []


def test_negated_terms_are_shown_and_unknown_rules_are_usage_errors(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    setup(config_dir, feed_server.url + "/unused")
    hockey = run_cli(
        "--config",
        str(config_dir.path),
        "test",
        "mission",
        "--all",
        "--text",
        "RCMP hockey team visits Iraq",
    )
    assert "no match" in hockey.stdout and "NOT hockey" in hockey.stdout
    unknown = run_cli("--config", str(config_dir.path), "test", "nope", "--text", "x")
    assert unknown.code == 2
    assert "unknown rule 'nope' (known: mission)" in unknown.stderr


def test_text_is_cut_as_a_feed_item_would_be() -> None:
    item = text_item("word " * 100_000, 1_000)
    assert len(item.title) <= 2_048 and item.title.endswith("word")
    assert len(item.summary) <= 1_000 and item.content == item.summary


def test_no_readable_source_is_a_failure_not_zero_matches(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    setup(config_dir, feed_server.url + "/missing.xml")
    result = run_cli("--config", str(config_dir.path), "test", "mission")
    assert result.code == 1, result.stderr
    assert "mission: 0 of 0 items match (1 source, 1 unreadable)" in result.stderr
    assert "http_404" in result.stderr


def test_the_rules_query_is_shown_with_its_groups_written_out(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    setup(config_dir, feed_server.url + "/unused")
    config_dir.write(
        "rules.yaml",
        """
        groups:
          police: [RCMP, police officers, '@surete']
          surete: [Surete du Quebec, SQ]
        rules:
          - id: mission
            title: Police mission
            query: '@police NEAR/8 (Iraq OR Mosul)'
        """,
    )
    result = run_cli(
        "--config", str(config_dir.path), "test", "mission", "--text", "SQ officers reach Mosul"
    )
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        'mission: query: (RCMP OR "police officers" OR "Surete du Quebec" OR SQ)'
        " NEAR/8 (Iraq OR Mosul)"
    )
    assert "«SQ» officers reach «Mosul»" in result.stdout


def test_text_in_a_language_the_rule_does_not_read_says_so(config_dir: ConfigDir) -> None:
    config_dir.write("settings.yaml", f"store: sqlite:{config_dir.store}\n")
    config_dir.write(
        "rules.yaml",
        """
        rules:
          - id: fr
            title: French police
            query: police
            languages: [fr]
        """,
    )
    english = "Canada will send twenty police officers to Iraq to train the local police"
    result = run_cli("--config", str(config_dir.path), "test", "fr", "--text", english, "--all")
    assert result.code == 0, result.stderr
    assert "no match" in result.stdout
    assert "(the rule's languages: do not include en, its language)" in result.stdout
    french = "Le Canada enverra vingt policiers et la police fédérale en Irak"
    result = run_cli("--config", str(config_dir.path), "test", "fr", "--text", french)
    assert result.stdout.startswith("MATCH"), result.stdout


BUDGET_SETTINGS = """
    store: sqlite:{store}
    destinations:
      desk:
        type: slack
        channel: "#iraq"
        token: ${{SLACK_TEST_TOKEN}}
        mention: "@here"
        quiet:
          from: "22:00"
          to: "07:00"
          timezone: America/Toronto
          days: [mon, tue, wed, thu, fri]
        cap: {{per: 1h, max: 2}}
      log: {{type: console}}
"""

# Saturday 7 March 2026, 17:00 UTC: noon in Toronto (EST); it springs forward the next night.
SATURDAY = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)


def police(n: int, at: datetime) -> Entry:
    return Entry(
        f"RCMP officers in Mosul, report {n}", link=f"https://news.example/{n}", published=at
    )


def budget_run(cfg: ConfigDir, priority: str, entries: list[Entry]) -> Result:
    cfg.write("settings.yaml", BUDGET_SETTINGS.format(store=cfg.store))
    cfg.write(
        "rules.yaml",
        f"""
        rules:
          - id: mission
            title: Police mission
            query: RCMP AND Mosul
            priority: {priority}
            cap: {{per: 1h, max: 3}}
        """,
    )
    feed = cfg.path.parent / "saved.xml"
    feed.write_text(rss(entries))
    result = run_cli("--config", str(cfg.path), "test", "mission", "--feed", str(feed))
    assert result.code == 0, result.stderr
    return result


def budget_lines(stdout: str) -> list[list[str]]:
    """Each matched item's arrival and fate lines, as printed under it."""
    return [
        [line for line in block.splitlines() if line.startswith(("  arrives:", "  → "))]
        for block in stdout.strip().split("\n\n")
    ]


def test_what_priority_quiet_hours_and_caps_would_do_with_each_match(
    config_dir: ConfigDir,
) -> None:
    monday_night = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)  # 23:30 Monday in Toronto (EDT)
    burst = [police(n, SATURDAY + timedelta(minutes=n)) for n in range(4)]
    result = budget_run(config_dir, "normal", [*reversed(burst), police(9, monday_night)])
    blocks = budget_lines(result.stdout)
    assert blocks[3] == [  # the first to arrive, read fourth
        "  arrives:  Sat 2026-03-07 17:00 UTC (published)",
        "  → desk (slack): at once",
        "  → log (console): at once",
    ]
    assert blocks[1] == [
        "  arrives:  Sat 2026-03-07 17:02 UTC (published)",
        '  → desk (slack): past the cap (2 per 1h): in the "2 more" message at'
        " Sat 13:00 America/Toronto (18:00 UTC)",
        "  → log (console): at once",
    ]
    assert blocks[0][2:] == [
        '  → log (console): past the rule\'s cap (3 per 1h): in the "1 more" message at'
        " Sat 18:00 UTC"
    ]
    assert blocks[4] == [  # quiet hours on a weekday, after the change to summer time
        "  arrives:  Tue 2026-03-10 03:30 UTC (published)",
        "  → desk (slack): held: quiet hours until Tue 07:00 America/Toronto (11:00 UTC)",
        "  → log (console): at once",
    ]
    assert result.stderr.splitlines()[-2:] == [
        "  → desk (slack): 2 at once (0 urgent), 1 held in quiet hours, 2 past caps,"
        " 0 into digests",
        "  → log (console): 4 at once (0 urgent), 0 held in quiet hours, 1 past caps,"
        " 0 into digests",
    ]


def test_urgent_and_digest_rules_in_the_budget(config_dir: ConfigDir) -> None:
    monday_night = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)
    entries = [police(n, monday_night + timedelta(minutes=n)) for n in range(4)]
    urgent = budget_run(config_dir, "urgent", [*entries, Entry("RCMP back from Mosul")])
    blocks = budget_lines(urgent.stdout)
    assert {line for block in blocks for line in block[1:]} == {
        "  → desk (slack): urgent, at once, mentions @here",
        "  → log (console): urgent, at once",
    }
    assert blocks[4][0].startswith("  arrives:  ") and blocks[4][0].endswith(" UTC (undated: now)")
    assert "  → desk (slack): 5 at once (5 urgent)" in urgent.stderr
    digest = budget_run(config_dir, "digest", entries[:1])
    assert budget_lines(digest.stdout)[0][1:] == [
        "  → desk (slack): into the digest at Tue 07:00 America/Toronto (11:00 UTC)",
        "  → log (console): into the digest at Wed 00:00 UTC",
    ]


def test_no_budget_lines_for_items_that_do_not_match(config_dir: ConfigDir) -> None:
    config_dir.write("settings.yaml", f"store: sqlite:{config_dir.store}\n")
    config_dir.write("rules.yaml", RULES)
    result = run_cli(
        "--config", str(config_dir.path), "test", "mission", "--all", "--text", "Hockey night"
    )
    assert result.code == 0, result.stderr
    assert "→" not in result.stdout + result.stderr
    assert "arrives:" not in result.stdout
