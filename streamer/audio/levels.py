"""Amplitude: the model's normalisation (peak scaling, undone on output) and level metering."""

from __future__ import annotations

from typing import Any

import numpy as np

PEAK_FLOOR = 1e-3  # live input quieter than -60 dBFS is not amplified further (it would only lift noise)


def dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3 dBFS); -inf for silence."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.dot(x, x) / len(x)))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


class PeakNormaliser:
    """Scales frames so the piece's peak sits at `target`, as in training.

    A file's peak is known before replay starts (`known_peak`), which matches training exactly; a live
    stream only knows the loudest sample so far, so its gain falls as louder passages arrive.
    """

    def __init__(self, normalisation: dict[str, Any], known_peak: float | None = None) -> None:
        kind = normalisation.get("kind")
        if kind != "peak":
            raise ValueError(f"normalisation kind {kind!r} not supported (peak)")
        self.target = float(normalisation.get("target", 1.0))
        self.fixed = known_peak is not None
        self.initial = float(known_peak) if known_peak is not None else 0.0
        self.peak = self.initial

    def reset(self) -> None:
        self.peak = self.initial

    def gain(self, frame: np.ndarray) -> float:
        if not self.fixed and len(frame):
            self.peak = max(self.peak, float(np.max(np.abs(frame))))
        if self.peak <= 0.0:
            return 1.0  # silence so far: nothing to scale
        return self.target / max(self.peak, PEAK_FLOOR if not self.fixed else self.peak)
