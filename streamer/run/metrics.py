"""Engine metrics: counters, drops with reasons, latency histograms, real-time factor.

Owned by the engine and updated on the data path without printing; the dashboard and the summary read
`snapshot()`. Latencies go into a log-spaced histogram (fixed memory however long the run), so
percentiles are exact to the bin width (`BINS_PER_DECADE`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

BINS_PER_DECADE = 200  # ~1.2% bin width
MIN_S, MAX_S = 1e-7, 1e3  # histogram range, seconds


class LatencyHistogram:
    """Fixed-size log histogram of durations in seconds."""

    def __init__(self) -> None:
        self.n_bins = int(BINS_PER_DECADE * math.log10(MAX_S / MIN_S)) + 1
        self.counts = np.zeros(self.n_bins, dtype=np.int64)
        self.total = 0
        self.sum_s = 0.0
        self.max_s = 0.0
        self.min_s = math.inf

    def add(self, seconds: float, n: int = 1) -> None:
        s = min(max(seconds, MIN_S), MAX_S)
        self.counts[int(BINS_PER_DECADE * math.log10(s / MIN_S))] += n
        self.total += n
        self.sum_s += seconds * n
        self.max_s = max(self.max_s, seconds)
        self.min_s = min(self.min_s, seconds)

    def percentile(self, q: float) -> float:
        """q-th percentile in seconds: its bin's geometric centre, kept within the smallest and largest value
        seen (a bin centre can lie above the maximum: one batch would read p99 > max); NaN when empty."""
        if self.total == 0:
            return float("nan")
        rank = q / 100.0 * self.total
        idx = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1), side="left"))
        centre = MIN_S * 10 ** ((idx + 0.5) / BINS_PER_DECADE)
        return min(max(centre, self.min_s), self.max_s)

    def summary_ms(self) -> dict[str, float]:
        return {f"p{q}": round(1e3 * self.percentile(q), 4) for q in (50, 95, 99)} | {
            "max": round(1e3 * self.max_s, 4), "mean": round(1e3 * self.sum_s / max(self.total, 1), 4)}


class RecentSamples:
    """The last `n` samples of a stream, for the dashboard: a numpy ring, cheap to add to per block."""

    def __init__(self, n: int) -> None:
        self.data = np.zeros(max(1, n))
        self.filled = 0
        self.end = 0  # index after the newest sample
        self.lock = threading.Lock()

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x)[-len(self.data):]
        n, size = len(x), len(self.data)
        with self.lock:
            first = min(n, size - self.end)  # up to the end of the ring, then wrap to its start
            self.data[self.end:self.end + first] = x[:first]
            self.data[:n - first] = x[first:]
            self.end = (self.end + n) % size
            self.filled = min(size, self.filled + n)

    def get(self) -> np.ndarray:
        with self.lock:
            return np.roll(self.data, -self.end)[len(self.data) - self.filled:].copy()


class Metrics:
    """Counters and timings for one run. Thread-safe snapshot for the dashboard."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.items_in = 0  # model inputs framed
        self.items_out = 0  # model outputs handled
        self.batches = 0
        self.drops: dict[str, int] = {}
        self.model_time = LatencyHistogram()  # per item (batch time / batch size)
        self.latency = LatencyHistogram()  # per item, arrival of its last sample -> result written
        self.stream_s = 0.0  # seconds of signal consumed
        self.busy_s = 0.0  # wall time spent processing (not waiting for input or pacing)
        self.started = clock()

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            with self.lock:
                self.drops[reason] = self.drops.get(reason, 0) + n

    def batch(self, n: int, model_s: float) -> None:
        with self.lock:
            self.items_in += n
            self.batches += 1
            self.model_time.add(model_s / max(n, 1), n)

    def done_batch(self, latency_s: float, n: int) -> None:
        """`n` items finished together, all with the same latency (one histogram update, any n)."""
        with self.lock:
            self.items_out += n
            self.latency.add(latency_s, n)

    def consumed(self, stream_s: float, busy_s: float) -> None:
        with self.lock:
            self.stream_s += stream_s
            self.busy_s += busy_s

    @property
    def realtime_factor(self) -> float:
        """Processing time per second of signal: < 1 keeps up with real time."""
        return self.busy_s / self.stream_s if self.stream_s > 0 else float("nan")

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "items_in": self.items_in, "items_out": self.items_out, "batches": self.batches,
                "drops": dict(self.drops), "dropped": sum(self.drops.values()),
                "model_ms": self.model_time.summary_ms(), "latency_ms": self.latency.summary_ms(),
                "stream_s": self.stream_s, "busy_s": self.busy_s,
                "realtime_factor": self.realtime_factor, "wall_s": self.clock() - self.started,
            }
