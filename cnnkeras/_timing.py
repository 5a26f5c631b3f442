"""Timing one call, the one way every latency figure here is taken: warm-up calls first
(tracing, delegate set-up), then each call timed on its own; the sorted milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def call_times_ms(step: Callable[[], object], runs: int, warmup: int = 10) -> list[float]:
    """Milliseconds of ``runs`` calls of ``step`` after ``min(warmup, runs)`` untimed ones,
    sorted (the median and p90 read from them)."""
    for _ in range(min(warmup, runs)):
        step()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - started))
    return sorted(times)


def median_ms(step: Callable[[], object], runs: int, warmup: int = 10) -> float:
    return statistics.median(call_times_ms(step, runs, warmup))
