"""Where the tests find the repository, their fixture files and the optional real-feed corpus."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "feeds"
CORPUS = REPO.parent / "shared" / "corpus" / "feeds"
"""Real feed files beside a developer's checkout; tests marked ``corpus`` run only when present."""
