"""Conversion to the model's rate, done once at the edge: mono mix, then a streaming soxr resampler.

`StreamResampler.process(block)` takes any block length and returns what is ready; `flush()` returns the
tail. Concatenated, the pieces equal one-shot `soxr.resample` of the whole signal (tested): soxr compensates
its filter delay, so nothing is shifted, but output lags input by `delay()` samples until `flush()`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import soxr

HISTORY_S = 0.2  # s of input kept for a restore (soxr HQ needs ~0.1 s at 192 kHz -> 8 kHz; tested)
MAX_CYCLE = 1 << 16  # input samples: phase cycles longer than this are approximated (non-integer rates)
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
    """Mono mix and resample `in_rate` -> `out_rate` block by block, state kept across blocks.

    soxr's state cannot be read out, so saving a stream keeps the last input samples instead: a new
    resampler fed them again lands in the same internal state (its filter phase repeats every `cycle` input
    samples, and the history starts on such a boundary), and the outputs it gives for them are dropped.
    Outputs after a restore equal the uninterrupted ones to float32 rounding (~5e-7, tested).
    """

    def __init__(self, in_rate: float, out_rate: float, channels_in: int = 1) -> None:
        if in_rate <= 0 or out_rate <= 0 or channels_in < 1:
            raise ValueError(f"bad resampler config: {in_rate} Hz -> {out_rate} Hz, {channels_in} channels")
        self.in_rate = float(in_rate)
        self.out_rate = float(out_rate)
        self.channels_in = channels_in
        self.passthrough = self.in_rate == self.out_rate
        self.cycle = _cycle(self.in_rate, self.out_rate)
        history = int(HISTORY_S * self.in_rate)
        self.keep = 0 if self.passthrough else self.cycle * max(1, -(-history // self.cycle)) + self.cycle
        self._stream: soxr.ResampleStream | None = None
        self.reset()

    def reset(self) -> None:
        """Forget all history: the next block starts a new signal."""
        self.consumed = 0  # mono input samples taken
        self.produced = 0  # output samples given
        self.history = np.zeros(0, dtype=np.float32)  # the newest input, starting on a phase-cycle boundary
        self._skip = 0  # outputs of a re-primed resampler still to drop
        self._ahead = np.zeros(0, dtype=np.float32)  # ... or outputs it gave early, still to hand out
        if not self.passthrough:
            self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=QUALITY)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Mono float32 samples at `out_rate` that are ready after this block (may be empty)."""
        x = mono(block, self.channels_in)
        if self._stream is None:
            return x.copy()
        self._remember(x)
        return self._give(np.asarray(self._stream.resample_chunk(x), dtype=np.float32))

    def flush(self) -> np.ndarray:
        """The tail held back by the filter; then the resampler is reset for a new signal."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._give(np.asarray(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True),
                                     dtype=np.float32))
        self.reset()
        return tail

    def delay(self) -> float:
        """Output samples held back so far (what `flush()` would add, roughly)."""
        return 0.0 if self._stream is None else float(self._stream.delay())

    def state(self) -> dict[str, object]:
        return {"consumed": self.consumed, "produced": self.produced, "history": self.history.copy()}

    def restore(self, state: dict[str, object]) -> None:
        """Continue from `state()`: re-prime a new resampler with the kept input (see the class doc)."""
        self.reset()
        if self._stream is None:
            return
        history = np.asarray(state["history"], dtype=np.float32)
        consumed, produced = int(state["consumed"]), int(state["produced"])  # type: ignore[call-overload]
        start = consumed - len(history)  # a cycle boundary: its output index is exact
        first_out = start // self.cycle * _out_per_cycle(self.in_rate, self.out_rate, self.cycle)
        primed = np.asarray(self._stream.resample_chunk(history), dtype=np.float32)
        given = produced - first_out  # of the primed outputs, those the stream had already given
        self._skip = max(0, given - len(primed))
        self._ahead = primed[given:] if given < len(primed) else np.zeros(0, dtype=np.float32)
        self.consumed, self.produced, self.history = consumed, produced, history

    def _remember(self, x: np.ndarray) -> None:
        self.consumed += len(x)
        h = np.concatenate([self.history, x]) if len(self.history) else x.copy()
        if len(h) > self.keep:  # keep whole cycles counted from the stream's start
            start = self.consumed - len(h)
            cut = len(h) - self.keep
            cut += (-(start + cut)) % self.cycle
            h = h[cut:]
        self.history = h

    def _give(self, out: np.ndarray) -> np.ndarray:
        if len(self._ahead):
            out, self._ahead = np.concatenate([self._ahead, out]), self._ahead[:0]
        if self._skip:
            n = min(self._skip, len(out))
            self._skip -= n
            out = out[n:]
        self.produced += len(out)
        return out


def _cycle(in_rate: float, out_rate: float) -> int:
    """Input samples after which the resampler's phase repeats (integer rates; else a bounded best guess)."""
    if in_rate == out_rate:
        return 1
    if float(in_rate).is_integer() and float(out_rate).is_integer():
        return int(in_rate) // math.gcd(int(in_rate), int(out_rate))
    return int(Fraction(in_rate / out_rate).limit_denominator(MAX_CYCLE).numerator)


def _out_per_cycle(in_rate: float, out_rate: float, cycle: int) -> int:
    return int(round(cycle * out_rate / in_rate))


def resample(signal: np.ndarray, in_rate: float, out_rate: float) -> np.ndarray:
    """One-shot mono float32 resampling with the same filter as `StreamResampler`."""
    x = np.ascontiguousarray(signal, dtype=np.float32)
    if float(in_rate) == float(out_rate):
        return x.copy()
    return np.asarray(soxr.resample(x, in_rate, out_rate, quality=QUALITY), dtype=np.float32)
