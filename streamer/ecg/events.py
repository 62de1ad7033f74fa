"""What an ECG stream returns: one event per beat."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)  # not frozen: creating frozen instances costs 4x, and there are many
class BeatEvent:
    """One scored beat.

    `state` is `judged` (compared with the threshold), `warmup` (one of the stream's first beats: scored,
    not judged), `calibrating` (in the stream's calibration seconds: scored, not judged) or `noise` (poor
    signal quality: scored, not judged); only judged beats can be anomalies. `quality` is the beat's signal
    quality verdict (`good`, `not yet known` in a stream's first seconds, or why not: `noise (bSQI 0.42)`,
    `noise (0.25 of QRS)`, `flat line`, `saturated`) and `bsqi` the agreement of two detectors around it, the
    lower of its two windows (None while it cannot be measured). `morphology` is the score of the beat's shape
    alone, which must also pass the model's morphology threshold for an alarm (None for models without one).
    """

    stream: Hashable
    beat: int  # beat number in the stream, from 0
    t: float  # s, R peak time from the stream's start
    r_sample: int  # R peak, sample index from the stream's start (the stream's rate)
    score: float  # anomaly score (the model's definition: reconstruction error, maybe patient-adaptive)
    threshold: float  # the stream's threshold when the beat was judged
    anomaly: bool
    rr_ms: float  # interval from the previous R peak
    state: str
    quality: str = "good"
    bsqi: float = float("nan")
    morphology: float = float("nan")  # the score of the beat's shape alone (models with a shape gate)

    def to_dict(self) -> dict[str, Any]:
        # Written out rather than dataclasses.asdict (which deep-copies): the monitor service calls this for
        # every beat of thousands of patients.
        return {"stream": self.stream, "beat": int(self.beat), "t": round(float(self.t), 4),
                "r_sample": int(self.r_sample), "score": float(self.score), "threshold": float(self.threshold),
                "anomaly": bool(self.anomaly), "rr_ms": round(float(self.rr_ms), 1), "state": self.state,
                "quality": self.quality, "bsqi": round(float(self.bsqi), 3) if self.bsqi == self.bsqi else None,
                "morphology": float(self.morphology) if self.morphology == self.morphology else None}
