"""The one timing loop every benchmark uses: seconds per call, after warm-up calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any], n: int, warmup: int = 10) -> np.ndarray:
    """Seconds per call over `n` calls, after `warmup` calls (onnxruntime and TF set up lazily)."""
    for _ in range(warmup):
        fn()
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out
