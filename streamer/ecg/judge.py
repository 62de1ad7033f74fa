"""One stream's judge: a beat's score against the threshold, once the stream has warmed up.

The threshold is the model's, a fixed one, or calibrated on the stream's own first seconds (`calibrate_s`):
beats in that time are scored but not judged, then the threshold is set from their scores by the model's
threshold method (or the one given). The first `warmup_beats` beats of a stream are scored but not judged
either: the patient's running template and score level are still filling. A beat whose signal quality is
poor (`streamer.ecg.quality`) is scored but never judged: it cannot raise an alarm and it does not join a
calibration (state `noise`, "unjudged: noise").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from streamer.ecg.threshold import threshold_from

MIN_CALIBRATION_BEATS = 10  # fewer scores than this say nothing about a patient's normal beats

WARMUP, CALIBRATING, JUDGED, NOISE = "warmup", "calibrating", "judged", "noise"


class Judge:
    def __init__(self, threshold: float, source: str, warmup_beats: int, calibrate_s: float = 0.0,
                 method: tuple[str, float] = ("percentile", 99.0)) -> None:
        self.initial = (float(threshold), source)
        self.warmup_beats = int(warmup_beats)
        self.calibrate_s = float(calibrate_s)
        self.method = (str(method[0]), float(method[1]))
        self.reset()

    def reset(self) -> None:
        self.threshold, self.source = self.initial
        self.calibrating = self.calibrate_s > 0
        self.calibration: list[float] = []

    def judge(self, index: int, time_s: float, score: float, good: bool = True, shape: bool = True
              ) -> tuple[bool, str]:
        """(anomaly, state) of beat number `index` at `time_s` with `score`; `good`: its signal quality;
        `shape`: its shape passes the model's morphology gate (an alarm needs both the score and that)."""
        if self.calibrating and time_s >= self.calibrate_s:
            self._finish_calibration()
        if index < self.warmup_beats:
            return False, WARMUP
        if not good:
            return False, NOISE
        if self.calibrating:
            self.calibration.append(score)
            return False, CALIBRATING
        return score > self.threshold and shape, JUDGED

    def _finish_calibration(self) -> None:
        self.calibrating = False
        n = len(self.calibration)
        if n < MIN_CALIBRATION_BEATS:
            self.source += f" (calibration saw only {n} beats, fewer than {MIN_CALIBRATION_BEATS})"
            return
        method, param = self.method
        self.threshold = threshold_from(np.asarray(self.calibration), method, param)["value"]
        self.source = f"calibrated on {n} beats ({method} {param:g})"

    @property
    def phase(self) -> str:
        return CALIBRATING if self.calibrating else JUDGED

    def state(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "source": self.source, "calibrating": self.calibrating,
                "calibration": list(self.calibration)}

    def set_state(self, values: Mapping[str, Any]) -> None:
        self.threshold = float(values["threshold"])
        self.source = str(values["source"])
        self.calibrating = bool(values["calibrating"])
        self.calibration = [float(v) for v in values["calibration"]]
