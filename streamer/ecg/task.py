"""ECG task: online R peaks -> beats -> autoencoder -> anomaly score vs threshold -> beat events.

Framing is `OnlineRPeakDetector` + `BeatFramer`; this module only adds the task logic: scores, the
threshold (the model's, a fixed one, or calibrated on the first seconds of the patient), events, and the
summary, scored against reference annotations when the record has them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamer.ecg.beats import Beat, BeatFramer, BeatSpec
from streamer.ecg.detector import OnlineRPeakDetector
from streamer.ecg.evaluate import PVC_SYMBOL, anomaly_scores, label_peaks, rpeak_scores
from streamer.ecg.readers import Recording
from streamer.ecg.scoring import StreamingScorer, judged_from
from streamer.ecg.threshold import threshold_from
from streamer.core.errors import ModelError
from streamer.core.model import Model
from streamer.run.sources import Block

TRACE_S = 5.0  # seconds of signal kept for the dashboard trace
SCORE_HISTORY = 60  # beats shown in the score sparkline
EVENT_HISTORY = 8  # anomaly events listed on the dashboard
HR_BEATS = 8  # heart rate = 60 / median of this many recent RR intervals
MIN_CALIBRATION_BEATS = 10  # fewer scores than this say nothing about a patient's normal beats
MISFIT_FRACTION = 0.5  # more anomalies than this (after MISFIT_MIN_BEATS beats) means the model does not fit
MISFIT_MIN_BEATS = 50


class EcgTask:
    def __init__(self, model: Model, fs: float, threshold: float | None = None,
                 calibrate_s: float = 0.0, reference: Recording | None = None,
                 calibrate_method: tuple[str, float] | None = None) -> None:
        self.model = model
        self.fs = fs
        try:
            self.spec = BeatSpec.from_meta(model.meta)
            self.scorer = StreamingScorer(self.spec.feature_names, self.spec.length, model.meta["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(model.path, f"beat or score description not understood ({exc})") from None
        model.check_input_size(self.spec.n_inputs)
        self.warmup_beats = judged_from(model.meta["score"])
        self.model_threshold = dict(model.meta["threshold"])
        self.threshold = float(threshold if threshold is not None else self.model_threshold["value"])
        self.threshold_source = "--threshold" if threshold is not None else "model"
        self.calibrate_s = calibrate_s
        self.calibrate_method = calibrate_method or (str(self.model_threshold.get("method", "percentile")),
                                                     float(self.model_threshold.get("param", 99.0)))
        self.calibrating = calibrate_s > 0
        self.reference = reference
        self.detector = OnlineRPeakDetector(fs)
        self.framer = BeatFramer(self.spec, fs)
        self.lock = threading.Lock()
        self.trace: deque[float] = deque(maxlen=int(TRACE_S * fs))
        self.recent_scores: deque[float] = deque(maxlen=SCORE_HISTORY)
        self.recent_events: deque[dict[str, Any]] = deque(maxlen=EVENT_HISTORY)
        self.recent_rr: deque[float] = deque(maxlen=HR_BEATS)
        self.peaks: list[int] = []  # every detected R peak (for Se/PPV)
        self.r_samples: list[int] = []  # scored beats
        self.scores: list[float] = []
        self.flags: list[bool] = []
        self.judged: list[bool] = []  # False while warming up or calibrating
        self.n_anomalies = 0
        self.calibration_scores: list[float] = []
        self.flushed = False  # True once the stream ended normally and every pending peak was decided

    # --- framing ---
    def feed(self, block: Block) -> list[Beat]:
        with self.lock:
            self.trace.extend(block.samples[-self.trace.maxlen:] if self.trace.maxlen else [])
        peaks = self.detector.feed(block.samples)
        self.peaks.extend(peaks)
        return self.framer.feed(block.samples, peaks)

    def flush(self) -> list[Beat]:
        self.flushed = True
        peaks = self.detector.flush()
        self.peaks.extend(peaks)
        return self.framer.feed(np.zeros(0), peaks) + self.framer.flush()

    def inputs(self, beats: Sequence[Beat]) -> np.ndarray:
        return np.stack([b.features for b in beats])

    # --- task logic ---
    def handle(self, beats: Sequence[Beat], inputs: np.ndarray, recon: np.ndarray) -> list[dict[str, Any]]:
        scores = self.scorer.score(inputs, recon)
        return [self._judge(beat, float(score)) for beat, score in zip(beats, scores)]

    def _judge(self, beat: Beat, score: float) -> dict[str, Any]:
        if self.calibrating and beat.time_s >= self.calibrate_s:
            self._finish_calibration()
        warming_up = beat.index < self.warmup_beats
        judged = not self.calibrating and not warming_up
        anomaly = judged and score > self.threshold
        if self.calibrating and not warming_up:
            self.calibration_scores.append(score)
        self.r_samples.append(beat.r_sample)
        self.scores.append(score)
        self.flags.append(anomaly)
        self.n_anomalies += anomaly
        self.judged.append(judged)
        event = {"t": round(beat.time_s, 4), "beat": beat.index, "r_sample": beat.r_sample,
                 "score": score, "threshold": self.threshold, "anomaly": anomaly,
                 "rr_ms": round(1e3 * beat.rr_prev_s, 1)}
        if warming_up:
            event["warming_up"] = True
        elif not judged:
            event["calibrating"] = True
        with self.lock:
            self.recent_scores.append(score)
            self.recent_rr.append(beat.rr_prev_s)
            if anomaly:
                self.recent_events.append(event)
        return event

    def _finish_calibration(self) -> None:
        """The patient's first seconds set the threshold (the model's threshold method unless given)."""
        self.calibrating = False
        n = len(self.calibration_scores)
        if n < MIN_CALIBRATION_BEATS:
            self.threshold_source += f" (calibration saw only {n} beats, fewer than {MIN_CALIBRATION_BEATS})"
            return
        method, param = self.calibrate_method
        self.threshold = threshold_from(np.asarray(self.calibration_scores), method, param)["value"]
        self.threshold_source = f"calibrated on {len(self.calibration_scores)} beats ({method} {param:g})"

    def count(self, items: Sequence[Any]) -> int:
        return len(items)

    def drops(self) -> dict[str, int]:
        return dict(self.framer.dropped)

    # --- reporting ---
    def heart_rate(self) -> float:
        with self.lock:
            rr = list(self.recent_rr)
        return 60.0 / float(np.median(rr)) if rr else float("nan")

    def view(self) -> dict[str, Any]:
        with self.lock:
            trace = np.asarray(self.trace)
            scores = list(self.recent_scores)
            events = list(self.recent_events)
        fields = {"heart rate": f"{self.heart_rate():.0f} bpm", "beats": str(len(self.scores)),
                  "anomalies": str(self.n_anomalies),
                  "threshold": f"{self.threshold:.4g} ({self.threshold_source})"}
        for warning in self.warnings():
            fields["warning"] = warning
        return {"kind": "ecg", "trace": trace, "trace_label": f"ECG ({TRACE_S:g} s)",
                "scores": scores, "threshold": self.threshold, "events": events,
                "fields": fields}

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "beats": len(self.scores), "anomalies": self.n_anomalies,
            "heart_rate_bpm": self._mean_hr(), "peaks_detected": len(self.peaks),
            "threshold": {"value": self.threshold, "source": self.threshold_source},
            "detector_lookahead_ms": 1e3 * OnlineRPeakDetector.LOOKAHEAD_S,
        }
        out.update(self._against_reference(metrics.get("stream_s", 0.0)))
        out["warnings"] = self.warnings()
        return out

    def warnings(self) -> list[str]:
        """Advice when the run's figures say the model does not fit this recording."""
        n, flagged = len(self.flags), self.n_anomalies
        if n >= MISFIT_MIN_BEATS and flagged > MISFIT_FRACTION * n:
            return [f"{flagged} of {n} beats are above the threshold: the model probably does not fit this "
                    "recording (other lead, rate or population); try --calibrate SECONDS, or fit a model "
                    "with `streamer train ecg --records`"]
        return []

    def _mean_hr(self) -> float | None:
        if len(self.r_samples) < 2:
            return None
        return round(60.0 * self.fs / float(np.median(np.diff(self.r_samples))), 1)

    def _against_reference(self, duration_s: float) -> dict[str, Any]:
        """R-peak Se/PPV over the stream seen so far, and PVC detection figures (V beats positive)."""
        ref = self.reference
        if ref is None or ref.ref_samples is None or ref.ref_symbols is None:
            return {}
        # a stream stopped early (Ctrl-C) is scored up to where the detector has decided
        cutoff = int(round(duration_s * self.fs))
        if not self.flushed:
            cutoff -= int(OnlineRPeakDetector.LOOKAHEAD_S * self.fs)
        keep = ref.ref_samples < cutoff
        ref_samples, ref_symbols = ref.ref_samples[keep], ref.ref_symbols[keep]
        peaks = np.asarray(self.peaks, dtype=np.int64)
        rpeaks = rpeak_scores(peaks[peaks < cutoff], ref_samples, self.fs)
        keys = ("sensitivity", "ppv", "tolerance_ms", "tp", "fp", "fn")
        out: dict[str, Any] = {"rpeaks": {k: rpeaks[k] for k in keys}}
        judged = np.asarray(self.judged, dtype=bool)
        r = np.asarray(self.r_samples)[judged]
        if len(r) == 0:
            return out
        scores = np.asarray(self.scores)[judged]
        is_pvc, _ = label_peaks(r, ref_samples, ref_symbols, self.fs)  # false detections count as normal
        figures = anomaly_scores(scores, is_pvc, self.threshold, duration_s=duration_s)
        # recall over every annotated PVC: one the detector missed was not flagged either
        n_pvc = int((ref_symbols == PVC_SYMBOL).sum())
        figures["recall"] = figures["tp"] / n_pvc if n_pvc else float("nan")
        figures["fn"] = n_pvc - figures["tp"]
        figures["pvc_annotated"] = n_pvc
        out["anomaly"] = {k: figures[k] for k in ("auc", "precision", "recall", "f1", "false_alarms_per_min",
                                                 "tp", "fp", "fn", "pvc_annotated")}
        out["anomaly"]["positive_class"] = "V (PVC)"
        return out
