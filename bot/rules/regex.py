"""Every use of RE2: user regexes compile the one way queries use them, alone or as a set.

RE2 runs in time linear in the text, so a user's pattern cannot hang the matcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import re2

# re2 ships no type information (mypy sees Any): the aliases name its classes for readers.
Pattern: TypeAlias = re2._Regexp
RegexSet: TypeAlias = re2.Set

SET_MAX_MEM = 256 << 20
"""A Set that exhausts its DFA memory answers "no match" without an error, which would
silently drop alerts: it gets a budget far beyond the 8 MiB default (allocated lazily,
only as the DFA actually grows)."""


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return options


def compile_regex(pattern: str) -> Pattern:
    """Compile ``pattern`` the one way queries use it: RE2, case-insensitive, quiet.

    Raises ``ValueError`` with RE2's explanation when the pattern is invalid.
    """
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(str(detail)) from None


def regex_set(regexes: Sequence[Pattern]) -> RegexSet | None:
    """All of ``regexes`` as one set whose matches are their indices, or None when there
    are none or RE2 cannot compile the set (then each regex is searched on its own)."""
    if not regexes:
        return None
    options = _options()
    options.max_mem = SET_MAX_MEM
    compiled = re2.Set.SearchSet(options)
    try:
        for index, regex in enumerate(regexes):
            if compiled.Add(regex.pattern) != index:
                return None
        compiled.Compile()
    except re2.error:
        return None
    return compiled
