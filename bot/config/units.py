"""Human durations (``30s``, ``10m``, ``2h``, ``1d``, plain seconds) and sizes (``10MB``)."""

from __future__ import annotations

import re

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    None: 1,
}


def _any_case(word: str) -> str:
    """``kb`` as ``[kK][bB]``: the pattern is also a JSON Schema one, which has no flags."""
    return "".join(f"[{c}{c.upper()}]" for c in word)


DURATION_PATTERN = (
    r"^\s*(\d+(?:\.\d+)?)\s*(" + "|".join(u for u in _DURATION_UNITS if u) + r")?\s*$"
)
"""A duration written as text; also the JSON Schema's (:mod:`bot.config.schema`)."""
SIZE_PATTERN = (
    r"^\s*(\d+(?:\.\d+)?)\s*(" + "|".join(_any_case(u) for u in _SIZE_UNITS if u) + r")?\s*$"
)
"""A size written as text, any case; also the JSON Schema's."""
_DURATION = re.compile(DURATION_PATTERN)
_SIZE = re.compile(SIZE_PATTERN)


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; raises ValueError with a message fit for a user."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a duration (use 30s, 10m, 2h, 1d or seconds)")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size(value: str | int) -> int:
    """Bytes in ``value`` (``10MB`` = 10,000,000; ``10MiB`` = 10,485,760)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MB")
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a size (use 500KB, 10MB, 1GiB or bytes)")
        unit = m.group(2).lower() if m.group(2) else None
        size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


def format_duration(seconds: float) -> str:
    """The shortest exact unit form of ``seconds`` (``90`` → ``90s``, ``7200`` → ``2h``)."""
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{seconds:g}s"
