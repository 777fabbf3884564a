"""Linearity as a ratio, never a wall-clock threshold: the CPU time of ``GROWTH`` times an
input against the input itself, for every step that feed input passes through."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

GROWTH = 8
# Linear work at 8x the input measures 8-11x on a loaded 2-core machine (n log n steps,
# cache effects); quadratic work measures 40-80x. 16x separates the two with margin.
BOUND = 16.0
RESOLUTION = 0.01  # seconds of CPU time the small input is run for, at least
ROUNDS = 5  # alternate timings of each input; the best of each is compared


def cpu_time(run: Callable[[], object], times: int) -> float:
    """The CPU time of ``times`` runs, without garbage collector pauses."""
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(times):
            run()
        return time.process_time() - start
    finally:
        gc.enable()


def assert_linear(make: Callable[[int], T], run: Callable[[T], object], size: int) -> None:
    """``run`` on ``make(GROWTH * size)`` costs less than ``BOUND`` times ``make(size)``.

    Each is timed ``ROUNDS`` times, alternately (so a busy moment of the machine
    weighs on both), and the best times are compared (three rounds let a loaded CI machine,
    its two cores shared with the end-to-end tests' subprocesses, push linear work past the
    bound now and then); both run as many times as
    the small input needs to take ``RESOLUTION``, so timer noise does not count.
    """
    small, large = make(size), make(GROWTH * size)
    times = max(1, math.ceil(RESOLUTION / max(cpu_time(lambda: run(small), 1), 1e-6)))
    best_small = best_large = math.inf
    for _ in range(ROUNDS):
        best_small = min(best_small, cpu_time(lambda: run(small), times))
        best_large = min(best_large, cpu_time(lambda: run(large), times))
    ratio = best_large / best_small
    assert ratio < BOUND, f"{GROWTH}x the input took {ratio:.1f}x the time"
