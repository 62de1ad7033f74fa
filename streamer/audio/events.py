"""What an audio stream returns: one event per model frame, with the output it finished."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(slots=True)  # not frozen: creating frozen instances costs 4x, and there are many
class AudioFrameEvent:
    """One reconstructed frame.

    `samples` are the output samples this frame made final (at the model's rate; with overlap-add a frame
    finishes `hop` samples, the last one also the tail), starting at output index `start`; `reference`
    holds the input samples at the same positions (mono, at the model's rate), so any consumer can measure
    the reconstruction. `snr_db` is the frame's own SNR (NaN for a silent frame).
    """

    stream: Hashable
    frame: int  # frame number in the stream, from 0
    t: float  # s, the frame's start in the stream (0 for the padded first frames of overlap-add)
    start: int  # output sample index of samples[0] (model rate)
    samples: np.ndarray  # float64 reconstruction made final by this frame
    reference: np.ndarray  # float64 input at the same positions
    snr_db: float
    gain: float  # the normalisation gain the frame went through the model with

    def to_dict(self) -> dict[str, Any]:
        """JSON fields (the samples themselves go to audio sinks, not to the event log)."""
        snr = None if not np.isfinite(self.snr_db) else round(float(self.snr_db), 3)
        return {"stream": self.stream, "frame": self.frame, "t": round(self.t, 4), "start": self.start,
                "samples": len(self.samples), "snr_db": snr}
