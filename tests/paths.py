"""Where the tests find the repository, their fixture files and the optional real-feed corpus."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "feeds"
CONFORMANCE = REPO / "tests" / "fixtures" / "conformance"
"""Hand-written documents, one per parsing case met in other projects' test suites."""
CORPUS = Path(os.environ.get("NEWSWATCH_CORPUS") or REPO.parent / "shared" / "corpus" / "feeds")
"""A folder of real-world feed files, not part of the repository (``NEWSWATCH_CORPUS``, else
where the developers keep it beside their checkout): tests marked ``corpus`` and the
benchmarks that measure real documents read it."""
