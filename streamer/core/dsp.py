"""Signal processing shared by the streams: Butterworth design and causal IIR filtering of many rows at once.

`lfilter` runs its recursion sample by sample along each row, with the state carried in `zi`, so a row's
output does not depend on how its stream was cut into blocks, nor on which other rows share the call
(both tested): this is what makes streaming equal offline and a pool of streams equal each stream alone.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter as _butter
from scipy.signal import lfilter, lfilter_zi


class IirDesign:
    """A Butterworth filter in transfer-function form (orders used here are <= 4, where that form is exact
    enough), with the state that makes a constant input give a constant output (no start-up transient)."""

    def __init__(self, order: int, cutoff_hz: float | tuple[float, float], kind: str, fs: float) -> None:
        b, a = _butter(order, cutoff_hz, btype=kind, fs=fs)
        self.b = np.asarray(b, dtype=np.float64)
        self.a = np.asarray(a, dtype=np.float64)
        self.zi_unit = np.asarray(lfilter_zi(self.b, self.a), dtype=np.float64)

    @property
    def order(self) -> int:
        return len(self.zi_unit)

    def run(self, x: np.ndarray, zi: np.ndarray, started: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter rows `x` (n, L) from states `zi` (n, order); rows not `started` begin in steady state
        for their first sample. Returns (y, new states)."""
        zi = np.array(zi, dtype=np.float64)  # a copy: the caller stores the new states itself
        fresh = ~started
        if fresh.any():
            zi[fresh] = self.zi_unit[None, :] * x[fresh, :1]
        y, zf = lfilter(self.b, self.a, x, axis=1, zi=zi)
        return y, zf
