"""An ECG run's record, from its blocks and beat events only: the dashboard's view while it runs, and at the
end the summary, evaluated over the event log against the record's reference annotations when it has them
(R-peak sensitivity/PPV; PVC detection with `V` beats positive)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamer.core.errors import MissingExtraError
from streamer.core.pool import Stream
from streamer.ecg.detector import LOOKAHEAD_S
from streamer.ecg.evaluate import PVC_SYMBOL, anomaly_scores, label_peaks, rpeak_scores
from streamer.ecg.events import BeatEvent
from streamer.ecg.judge import CALIBRATING, JUDGED, NOISE
from streamer.ecg.quality import GOOD, UNKNOWN
from streamer.ecg.readers import Recording
from streamer.run.metrics import RecentSamples
from streamer.run.sources import Block

TRACE_S = 5.0  # seconds of signal kept for the dashboard trace
SCORE_HISTORY = 200  # beats kept for the score sparkline (a wide terminal shows up to this many)
EVENT_HISTORY = 8  # anomaly events listed on the dashboard
HR_BEATS = 8  # heart rate = 60 / median of this many recent RR intervals
MISFIT_FRACTION = 0.5  # more anomalies than this (after MISFIT_MIN_BEATS judged beats): the model does not fit
MISFIT_MIN_BEATS = 50
# The marks under the dashboard's trace: a beat judged anomalous, judged normal, or not judged yet.
BEAT_MARKS = {"anomaly": ("▲", "bold red"), "normal": ("·", "green"), "unjudged": ("∘", "yellow"),
              "noise": ("×", "magenta")}
LEGEND = "▲ anomaly · normal ∘ not judged yet × noise"
POOR_STATE_BEATS = 3  # the dashboard says the signal is poor while any of this many latest beats was


def _mark(e: BeatEvent) -> str:
    return "anomaly" if e.anomaly else "normal" if e.state == JUDGED else "noise" if e.state == NOISE \
        else "unjudged"


class EcgReport:
    unit = "beats"

    def __init__(self, stream: Stream, rate: float, reference: Recording | None = None) -> None:
        self.stream = stream
        self.fs = rate
        self.reference = reference
        self.lock = threading.Lock()
        self.trace = RecentSamples(int(TRACE_S * rate))
        self.recent: deque[BeatEvent] = deque(maxlen=SCORE_HISTORY)
        self.anomalies: deque[BeatEvent] = deque(maxlen=EVENT_HISTORY)
        self.rr: deque[float] = deque(maxlen=HR_BEATS)
        # the event log, kept compactly for the evaluation at the end
        self.r_samples: list[int] = []
        self.scores: list[float] = []
        self.judged: list[bool] = []
        self.n_anomalies = 0
        self.n_judged = 0
        self.n_noise = 0  # beats unjudged for poor signal quality
        self.good_s = 0.0  # seconds of signal (RR intervals ending in a beat) of good quality
        self.unknown_s, self.n_unknown = 0.0, 0  # the first seconds, before quality can be told
        self.reasons: dict[str, int] = {}  # poor-quality beats by kind: noise, flat line, saturated
        self.samples_seen = 0

    def on_block(self, block: Block) -> None:
        self.trace.add(block.samples)
        self.samples_seen = block.start + len(block.samples)

    def on_events(self, events: Sequence[BeatEvent]) -> None:
        with self.lock:
            for e in events:
                self.r_samples.append(e.r_sample)
                self.scores.append(e.score)
                self.judged.append(e.state == JUDGED)
                self.n_judged += e.state == JUDGED
                self.n_anomalies += e.anomaly
                rr_s = e.rr_ms / 1e3 if e.rr_ms == e.rr_ms else 0.0  # the first beat has no RR (NaN)
                if e.quality == GOOD:
                    self.good_s += rr_s
                elif e.quality == UNKNOWN:  # the stream's first seconds: in neither figure
                    self.unknown_s += rr_s
                    self.n_unknown += 1
                else:
                    kind = e.quality.split(" (")[0]
                    self.reasons[kind] = self.reasons.get(kind, 0) + 1
                self.n_noise += e.state == NOISE
                self.recent.append(e)
                self.rr.append(e.rr_ms)
                if e.anomaly:
                    self.anomalies.append(e)

    # --- while it runs -------------------------------------------------------------------------------------
    def heart_rate(self) -> float:
        with self.lock:
            rr = list(self.rr)
        return 60e3 / float(np.median(rr)) if rr else float("nan")

    def view(self) -> dict[str, Any]:
        with self.lock:
            recent = list(self.recent)
            events = [e.to_dict() for e in self.anomalies]
            n_beats, n_anomalies = len(self.scores), self.n_anomalies
        state = self.stream.describe()
        trace = self.trace.get()
        fields = {"heart rate": f"{self.heart_rate():.0f} bpm", "beats": str(n_beats), "anomalies": str(n_anomalies),
                  "threshold": self._threshold_text(state)}
        end = self.samples_seen  # the trace's last sample is the stream's sample end - 1
        marks = [((e.r_sample - (end - len(trace))) / max(len(trace), 1), *BEAT_MARKS[_mark(e)]) for e in recent]
        return {"kind": "ecg", "state": self._state(state, n_beats, recent), "fields": fields,
                "warnings": self.warnings(),
                "traces": [{"label": f"ECG, last {TRACE_S:g} s ({LEGEND})", "signal": trace, "marks": marks}],
                "scores": [e.score for e in recent], "score_states": [e.state for e in recent],
                "threshold": state["threshold"], "events": events, "anomalies_total": n_anomalies}

    def _state(self, state: dict[str, Any], n_beats: int, recent: list[BeatEvent]) -> tuple[str, str]:
        """What the stream is doing, as the dashboard's first line says it: warming up, calibrating, judging,
        or not judging because the signal is poor."""
        poor = [e for e in recent[-POOR_STATE_BEATS:] if e.quality not in (GOOD, UNKNOWN)]
        if poor and n_beats >= state["warmup_beats"]:
            return f"signal poor: {poor[-1].quality}; not judged", "bold magenta"
        if n_beats < state["warmup_beats"]:
            return f"warming up: beat {n_beats} of {state['warmup_beats']} (not judged yet)", "yellow"
        if state["phase"] == CALIBRATING:
            t = self.samples_seen / self.fs
            return f"calibrating the threshold: {t:.0f} of {state['calibrate_s']:g} s", "yellow"
        return "monitoring", "bold green"

    @staticmethod
    def _threshold_text(state: dict[str, Any]) -> str:
        if state["phase"] == CALIBRATING:
            return f"pending calibration ({state['threshold']:.4g} until then)"
        return f"{state['threshold']:.4g} ({state['threshold_source']})"

    def warnings(self, final: bool = False) -> list[str]:
        """Advice when the run's figures say the model does not fit this recording, or (`final`, at the end)
        when the calibration never finished (the stream ended first: nothing was judged)."""
        state = self.stream.describe()
        if final and state["phase"] == CALIBRATING:
            return [f"the stream ended ({self.samples_seen / self.fs:.1f} s) before the calibration "
                    f"({state['calibrate_s']:g} s) finished: no beat was judged; use a shorter --calibrate"]
        n, flagged = self.n_judged, self.n_anomalies
        if n >= MISFIT_MIN_BEATS and flagged > MISFIT_FRACTION * n:
            return [f"{flagged} of {n} beats are above the threshold: the model probably does not fit this "
                    "recording (other lead, rate or population); try --calibrate SECONDS, or fit a model "
                    "with `streamer train ecg --records`"]
        return []

    # --- at the end ----------------------------------------------------------------------------------------
    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        state = self.stream.describe()
        out: dict[str, Any] = {
            "beats": len(self.scores), "anomalies": self.n_anomalies, "beats_judged": self.n_judged,
            "quality": self.quality(),
            "heart_rate_bpm": self._mean_hr(),
            "threshold": {"value": state["threshold"], "source": state["threshold_source"]
                          + (" (calibration never finished)" if state["phase"] == CALIBRATING else "")},
            "detector_lookahead_ms": 1e3 * LOOKAHEAD_S,
        }
        out.update(self._against_reference())
        out["warnings"] = self.warnings(final=True)
        return out

    def quality(self) -> dict[str, Any]:
        """Signal quality over the run: percent of its time in good quality (the RR intervals ending in a good
        beat, over the seconds seen: a stream with no beat at all is 0 % good), percent of beats good, and
        the beats left unjudged for noise, by reason. The first seconds, before quality can be told (about
        4 s), count in neither."""
        seconds = self.samples_seen / self.fs - self.unknown_s
        n = len(self.scores) - self.n_unknown
        n_good = n - sum(self.reasons.values())
        return {"percent_time_good": round(100.0 * min(self.good_s / seconds, 1.0), 2) if seconds > 0 else None,
                "percent_beats_good": round(100.0 * n_good / n, 2) if n else None,
                "unjudged_noise": self.n_noise, "poor_beats_by_reason": dict(self.reasons),
                "beats_before_quality_known": self.n_unknown}

    def _mean_hr(self) -> float | None:
        if len(self.r_samples) < 2:
            return None
        return round(60.0 * self.fs / float(np.median(np.diff(self.r_samples))), 1)

    def _against_reference(self) -> dict[str, Any]:
        """R-peak Se/PPV and PVC detection figures over the beats scored, up to the last one (a stream stopped
        early, or its last beat which has no successor, is not held against the detector)."""
        if self.reference is None or not self.r_samples:
            return {}
        try:
            beats = self.reference.reference_beats()
        except MissingExtraError as exc:
            return {"reference": f"annotations not read: {exc}"}
        if beats is None:
            return {}
        ref_all, sym_all = beats
        if len(ref_all) == 0:  # an empty or damaged annotation file: nothing to score against, and said so
            return {"reference": "the annotation file holds no beat annotations: no evaluation"}
        r_all = np.asarray(self.r_samples, dtype=np.int64)
        # both up to where both reach: the annotations may end early (a cut file), the stream may stop early
        tol = int(LOOKAHEAD_S * self.fs)
        cutoff = min(int(r_all[-1]) + tol, int(ref_all[-1]) + tol)
        keep = ref_all <= cutoff
        ref_samples, ref_symbols = ref_all[keep], sym_all[keep]
        inside = r_all <= cutoff
        r = r_all[inside]
        rpeaks = rpeak_scores(r, ref_samples, self.fs)
        keys = ("sensitivity", "ppv", "tolerance_ms", "tp", "fp", "fn")
        out: dict[str, Any] = {"rpeaks": {k: rpeaks[k] for k in keys}}
        if not inside.all():
            out["reference"] = (f"the annotations end at {ref_all[-1] / self.fs:.1f} s, before the stream "
                                f"({r_all[-1] / self.fs:.1f} s): figures over the first {cutoff / self.fs:.1f} s only")
        judged = np.asarray(self.judged, dtype=bool)[inside]
        if not judged.any():
            return out
        is_pvc, _ = label_peaks(r[judged], ref_samples, ref_symbols, self.fs)  # false detections count as normal
        duration_s = (cutoff + 1) / self.fs
        threshold = float(self.stream.describe()["threshold"])
        figures = anomaly_scores(np.asarray(self.scores)[inside][judged], is_pvc, threshold, duration_s=duration_s)
        # recall over every annotated PVC: one the detector missed was not flagged either
        n_pvc = int((ref_symbols == PVC_SYMBOL).sum())
        figures["recall"] = figures["tp"] / n_pvc if n_pvc else float("nan")
        figures["fn"] = n_pvc - figures["tp"]
        figures["pvc_annotated"] = n_pvc
        out["anomaly"] = {k: figures[k] for k in ("auc", "precision", "recall", "f1", "false_alarms_per_min",
                                                 "tp", "fp", "fn", "pvc_annotated")}
        out["anomaly"]["positive_class"] = "V (PVC)"
        return out
