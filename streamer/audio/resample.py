"""Conversion to the model's rate, done once at the edge: mono mix, then a streaming soxr resampler.

`StreamResampler.process(block)` takes any block length and returns what is ready; `flush()` returns the
tail. Concatenated, the pieces equal one-shot `soxr.resample` of the whole signal (tested): soxr compensates
its filter delay, so nothing is shifted, but output lags input by `delay()` samples until `flush()`.
"""

from __future__ import annotations

import numpy as np
import soxr

QUALITY = "HQ"  # soxr preset: 20-bit precision, passband to 91 % of Nyquist; the same for files and devices


def mono(block: np.ndarray, channels: int) -> np.ndarray:
    """(n,) or (n, channels) -> contiguous float32 (n,): the mean of the channels."""
    x = np.asarray(block, dtype=np.float32)
    if x.ndim == 2:
        if x.shape[1] != channels:
            raise ValueError(f"block has {x.shape[1]} channels, resampler expects {channels}")
        x = x[:, 0] if channels == 1 else x.mean(axis=1, dtype=np.float32)
    elif x.ndim != 1:
        raise ValueError(f"block must be (n,) or (n, channels), got shape {x.shape}")
    return np.ascontiguousarray(x)


class StreamResampler:
    """Mono mix and resample `in_rate` -> `out_rate` block by block, state kept across blocks."""

    def __init__(self, in_rate: float, out_rate: float, channels_in: int = 1) -> None:
        if in_rate <= 0 or out_rate <= 0 or channels_in < 1:
            raise ValueError(f"bad resampler config: {in_rate} Hz -> {out_rate} Hz, {channels_in} channels")
        self.in_rate = float(in_rate)
        self.out_rate = float(out_rate)
        self.channels_in = channels_in
        self.passthrough = self.in_rate == self.out_rate
        self._stream: soxr.ResampleStream | None = None
        self.reset()

    def reset(self) -> None:
        """Forget all history: the next block starts a new signal."""
        if not self.passthrough:
            self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=QUALITY)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Mono float32 samples at `out_rate` that are ready after this block (may be empty)."""
        x = mono(block, self.channels_in)
        if self._stream is None:
            return x.copy()
        return np.asarray(self._stream.resample_chunk(x), dtype=np.float32)

    def flush(self) -> np.ndarray:
        """The tail held back by the filter; then the resampler is reset for a new signal."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = np.asarray(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True), dtype=np.float32)
        self.reset()
        return tail

    def delay(self) -> float:
        """Output samples held back so far (what `flush()` would add, roughly)."""
        return 0.0 if self._stream is None else float(self._stream.delay())


def resample(signal: np.ndarray, in_rate: float, out_rate: float) -> np.ndarray:
    """One-shot mono float32 resampling with the same filter as `StreamResampler`."""
    x = np.ascontiguousarray(signal, dtype=np.float32)
    if float(in_rate) == float(out_rate):
        return x.copy()
    return np.asarray(soxr.resample(x, in_rate, out_rate, quality=QUALITY), dtype=np.float32)
