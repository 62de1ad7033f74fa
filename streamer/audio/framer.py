"""Audio framing: a sample stream cut into fixed model frames, and the reconstructed frames put back together.

`hop == frame` (the default) is the lecture's behaviour: frames side by side, no window; each frame's
reconstruction is the output. `hop <= frame // 2` overlaps frames: every reconstructed frame is weighted by
a periodic Hann window and the overlapping frames are summed and divided by the sum of the windows at that
sample (weighted overlap-add), so frame edges fade in and out instead of clicking. The stream is padded
with `frame - hop` zeros in front (and zeros at the end on flush), so every real sample is covered by
the same number of frames; an identity model then gives back its input exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_OVERLAP = 64  # frames covering one sample at most (hop >= frame / MAX_OVERLAP)


def min_hop(frame: int) -> int:
    """The smallest hop: frame/64 (64 samples for 4096), 64 model calls per frame of input. A smaller one buys
    nothing audible and its cost grows without bound (hop 1: 4096 frames per 4096 samples, 5.8 GB)."""
    return max(1, frame // MAX_OVERLAP)


def check_hop(frame: int, hop: int) -> None:
    """Hops between frame/2 and frame would leave samples under a single, near-zero window weight."""
    if not (hop == frame or min_hop(frame) <= hop <= frame // 2):
        raise ValueError(f"hop must be {frame} (no overlap) or between {min_hop(frame)} and {frame // 2} "
                         f"(overlap-add), not {hop}")


def synthesis_window(frame: int, hop: int) -> np.ndarray:
    if hop == frame:
        return np.ones(frame)
    n = np.arange(frame)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / frame)  # periodic Hann


@dataclass
class AudioFrame:
    samples: np.ndarray  # (frame,) float64, zero-padded where outside the stream
    start: int  # stream index of samples[0]; negative for the padded first frames
    valid: int  # how many samples are real stream samples (< frame only for padded frames)
    gain: float = 1.0  # normalisation applied to the model input (set by the task, undone on output)


class FrameCutter:
    """Blocks in, frames out: frame `k` starts at `k * hop - pad` (pad = frame - hop)."""

    def __init__(self, frame: int, hop: int) -> None:
        check_hop(frame, hop)
        self.frame = frame
        self.hop = hop
        self.pad = frame - hop
        self.reset()

    def reset(self) -> None:
        self.buffer = np.zeros(self.pad)  # stream samples from `self.buffer_start` on
        self.buffer_start = -self.pad
        self.received = 0  # real samples seen

    def state(self) -> dict[str, Any]:
        return {"buffer": self.buffer.copy(), "buffer_start": self.buffer_start, "received": self.received}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.buffer = np.asarray(state["buffer"], dtype=np.float64)
        self.buffer_start = int(state["buffer_start"])
        self.received = int(state["received"])

    def feed(self, samples: np.ndarray) -> list[AudioFrame]:
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float64)])
        self.received += len(samples)
        return self._cut(self.received)

    def flush(self) -> list[AudioFrame]:
        """Cuts the remaining frames, zero-padded, up to the last frame that covers a received sample."""
        if self.received == 0:
            return []
        last_start = (self.received - 1 + self.pad) // self.hop * self.hop - self.pad
        need = last_start + self.frame - (self.buffer_start + len(self.buffer))
        if need > 0:
            self.buffer = np.concatenate([self.buffer, np.zeros(need)])
        frames = self._cut(last_start + self.frame)
        self.buffer = self.buffer[:0]
        return frames

    def _cut(self, end: int) -> list[AudioFrame]:
        frames = []
        while self.buffer_start + self.frame <= end:
            start = self.buffer_start
            valid = min(start + self.frame, self.received) - max(start, 0)
            frames.append(AudioFrame(self.buffer[:self.frame].copy(), start, int(valid)))
            self.buffer = self.buffer[self.hop:]
            self.buffer_start += self.hop
        return frames


class OverlapAdd:
    """Reconstructed frames in (in stream order), finished output samples out.

    After the frame starting at `s` is added, no later frame touches samples before `s + hop`, so they
    are final and returned.
    """

    def __init__(self, frame: int, hop: int) -> None:
        check_hop(frame, hop)
        self.frame = frame
        self.hop = hop
        self.window = synthesis_window(frame, hop)
        self.reset()

    def reset(self) -> None:
        self.acc = np.zeros(self.frame)  # weighted sum for stream samples from `self.acc_start` on
        self.weight = np.zeros(self.frame)  # sum of windows over the same samples
        self.acc_start = -(self.frame - self.hop)
        self.emitted = 0  # output samples returned so far (stream indices 0 .. emitted-1)

    def state(self) -> dict[str, Any]:
        return {"acc": self.acc.copy(), "weight": self.weight.copy(), "acc_start": self.acc_start,
                "emitted": self.emitted}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.acc = np.asarray(state["acc"], dtype=np.float64)
        self.weight = np.asarray(state["weight"], dtype=np.float64)
        self.acc_start = int(state["acc_start"])
        self.emitted = int(state["emitted"])

    def add(self, start: int, reconstruction: np.ndarray, stream_end: int | None = None) -> np.ndarray:
        """Adds the next frame; returns the output samples now final (possibly none).

        `stream_end` (the number of real samples, known once the stream has ended) trims the padding.
        """
        if start != self.acc_start:
            raise ValueError(f"frames must arrive in order: expected start {self.acc_start}, got {start}")
        if self.hop == self.frame:  # no overlap: the frame is the output (the per-frame fast path)
            end = start + self.frame if stream_end is None else min(start + self.frame, stream_end)
            self.acc_start += self.hop
            self.emitted = end
            return np.asarray(reconstruction, dtype=np.float64)[:end - start]
        self.acc += self.window * np.asarray(reconstruction, dtype=np.float64)
        self.weight += self.window
        out = self._take(start + self.hop if stream_end is None else min(start + self.hop, stream_end))
        self.acc = np.concatenate([self.acc[self.hop:], np.zeros(self.hop)])
        self.weight = np.concatenate([self.weight[self.hop:], np.zeros(self.hop)])
        self.acc_start += self.hop
        return out

    def finish(self, stream_end: int) -> np.ndarray:
        """After the last frame: the samples up to `stream_end` that the last frames completed."""
        if self.hop == self.frame:
            return np.zeros(0)
        return self._take(stream_end)

    def _take(self, until: int) -> np.ndarray:
        lo = self.emitted - self.acc_start  # first sample not yet returned, as an index into acc
        n = max(0, until - self.emitted)
        out = self.acc[lo:lo + n] / self.weight[lo:lo + n]
        self.emitted += n
        return out
