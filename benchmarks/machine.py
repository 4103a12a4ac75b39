"""The machine a benchmark's figures come from, printed with them: cores, memory, system, and how fast
one core runs plain Python. Figures from two machines compare only as far as these lines do: one
session's machine, which ran this loop at 84-122 ns a step (idle), loaded the national dataset of
20,000 patients at 3,579 resources/s where an earlier machine with the same cores and memory had
loaded it at 15,825-16,646.
"""

from __future__ import annotations

import os
import platform
import time

LOOP_STEPS = 1_000_000
ROUNDS = 3


def python_step_ns() -> float:
    """Nanoseconds per step of a plain Python loop (an addition), the best of a few rounds."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        total = 0
        for step in range(LOOP_STEPS):
            total += step
        best = min(best, time.perf_counter() - started)
    return best / LOOP_STEPS * 1e9


def describe() -> str:
    """One line: cores, memory, system, Python and its speed on one core."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()} "
        f"({python_step_ns():.0f} ns per loop step on one core)"
    )
