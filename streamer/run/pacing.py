"""Replay pacing: a recorded stream delivered as if live, at `speed` times real time, or as fast as possible.

The clock and sleep are injected so that pacing is testable without sleeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

MAX_SPEED = float("inf")


def parse_speed(text: str) -> float:
    """'1', '2.5', 'max' -> factor (inf for max)."""
    if text.strip().lower() == "max":
        return MAX_SPEED
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError("speed must be a finite number > 0, or 'max'")
    return value


class Pacer:
    """Waits until stream time `t` is due: wall = start + t / speed."""

    def __init__(self, speed: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self.start: float | None = None

    @property
    def unpaced(self) -> bool:
        return self.speed == MAX_SPEED

    def wait_until(self, stream_t: float) -> float:
        """Block until `stream_t` (seconds from stream start) is due; returns the seconds slept."""
        if self.unpaced:
            return 0.0
        now = self.clock()
        if self.start is None:
            self.start = now
        delay = self.start + stream_t / self.speed - now
        if delay > 0:
            self.sleep(delay)
            return delay
        return 0.0
