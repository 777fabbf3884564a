"""What a user reads points only at what a user has: the repository's own files.

The README, the shipped configuration, the scripts, the container files and the package
(its ``--help`` texts and comments) once sent users to design notes kept outside the
repository ("SPEC §3", "CONTAINER.md"); a fresh clone has none of them.
"""

import re
from pathlib import Path

import pytest

from tests.paths import REPO

SHIPPED = [
    REPO / "README.md",
    REPO / "Dockerfile",
    REPO / "compose.yaml",
    *sorted((REPO / "config").rglob("*.yaml")),
    *sorted(p for p in (REPO / "scripts").iterdir() if p.is_file()),
    *sorted((REPO / "bot").rglob("*.py")),
]
OUTSIDE = re.compile(r"\bSPEC\b|ARCHITECTURE\.md|CONTAINER\.md|\.\./shared|/shared/")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_no_reference_to_files_outside_the_repository(path: Path) -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)


def test_readme_links_to_local_files_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    missing = [t for t in targets if "://" not in t and not (REPO / t).exists()]
    assert not missing
