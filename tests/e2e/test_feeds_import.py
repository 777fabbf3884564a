"""`newswatch feeds import`: feeds added to settings.yaml, comments kept, duplicates skipped."""

from __future__ import annotations

from ruamel.yaml import YAML

from tests.conftest import ConfigDir, run_cli
from tests.unit.config.test_opml import OPML

SETTINGS = """
    # my settings: keep this comment
    store: sqlite:state.db
    feeds:
      - id: cbc
        url: https://WWW.cbc.ca/webfeed/rss/rss-world#top   # already here
    destinations:
      console: {type: console}   # the default
"""


def test_import_adds_new_feeds_and_keeps_comments(config_dir: ConfigDir) -> None:
    settings = config_dir.write("settings.yaml", SETTINGS)
    config_dir.write("rules.yaml", "rules: [{id: r, title: R, query: police}]\n")
    opml = config_dir.path.parent / "subs.opml"
    opml.write_bytes(OPML)

    result = run_cli("--config", str(config_dir.path), "feeds", "import", str(opml))
    assert result.code == 0, result.stderr
    assert "skipped (already configured): https://www.cbc.ca/webfeed/rss/rss-world" in result.stdout
    assert "added 2 feed(s)" in result.stdout
    text = settings.read_text()
    assert "# my settings: keep this comment" in text
    assert "# already here" in text and "# the default" in text
    feeds = YAML(typ="safe").load(text)["feeds"]
    assert [f["id"] for f in feeds] == ["cbc", "radio-canada-internationale", "rudaw"]
    assert feeds[1]["tags"] == ["canada"] and "tags" not in feeds[2]
    assert run_cli("--config", str(config_dir.path), "check").code == 0

    again = run_cli("--config", str(config_dir.path), "feeds", "import", str(opml))
    assert "added 0 feed(s)" in again.stdout
    assert settings.read_text() == text


def test_a_broken_opml_file_changes_nothing(config_dir: ConfigDir) -> None:
    settings = config_dir.write("settings.yaml", SETTINGS)
    config_dir.write("rules.yaml", "rules: [{id: r, title: R, query: police}]\n")
    opml = config_dir.path.parent / "bad.opml"
    opml.write_bytes(b"<opml><body><outline")
    result = run_cli("--config", str(config_dir.path), "feeds", "import", str(opml))
    assert result.code == 2
    assert "bad.opml: not well-formed XML" in result.stderr
    assert settings.read_text().lstrip() == SETTINGS.replace("\n    ", "\n").lstrip()
