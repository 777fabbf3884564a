"""`newswatch schema`: the JSON Schemas shipped in config/schema/ are its output, never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import EXIT_FAILED
from tests.conftest import REPO, run_cli

SHIPPED = REPO / "config" / "schema"


@pytest.mark.parametrize("document", ["settings", "rules"])
def test_the_shipped_schema_is_the_commands_output(document: str) -> None:
    result = run_cli("schema", document)
    assert result.code == 0, result.stderr
    shipped = (SHIPPED / f"{document}.schema.json").read_text(encoding="utf-8")
    assert result.stdout == shipped, (
        f"config/schema/{document}.schema.json is stale: regenerate it with"
        f" newswatch schema {document} -o config/schema/{document}.schema.json"
    )


def test_output_goes_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "rules.schema.json"
    result = run_cli("schema", "rules", "-o", str(target))
    assert (result.code, result.stdout) == (0, "")
    assert target.read_text(encoding="utf-8") == run_cli("schema", "rules").stdout


def test_an_unwritable_output_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_cli("schema", "settings", "-o", str(tmp_path / "missing" / "s.json"))
    assert result.code == EXIT_FAILED
    assert result.stderr.strip().splitlines() == [
        f"newswatch: cannot write {tmp_path / 'missing' / 's.json'}: No such file or directory"
    ]
