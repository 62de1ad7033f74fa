"""Beat framing: turn a stream of ECG samples plus online R peaks into fixed-length model inputs.

How a beat is cut is described by the model (metadata `beat` and `features`), so the same code serves
the ECG5000 model and models fitted to MIT-BIH recordings, at training time (offline, `extract_beats`)
and live (`BeatFramer.feed`). Both go through `BeatCutter.cut`, so they give identical beats.

Window kinds (metadata `beat.window`):
- ``{"kind": "rr", "pre_fraction": f}``: one cardiac cycle, from ``R - f*RR`` to ``R + (1-f)*RR`` with
  ``RR = R_next - R``. This is how ECG5000 beats are cut: each series is one R-to-R cycle (its QRS sits at
  sample ~3 of 140 and sample 139 continues into sample 0), interpolated to 140 points, z-normalised.
- ``{"kind": "fixed", "pre_s": a, "post_s": b}``: a fixed time window around R, so that wide (ventricular)
  QRS complexes are not stretched by the RR interval.
The window is interpolated linearly to `length` points. Optional `highpass_hz` applies a causal
Butterworth high-pass (state carried across blocks) to the stream before cutting, against baseline wander.

Normalisation steps (metadata `normalisation.steps`, applied in order): ``zscore`` (per beat), ``minmax`` and
``scale`` (global constants), ``center`` (subtract the beat's own median: removes the offset the high-pass
leaves), and ``template`` which must come last because it is stateful and patient-adaptive:
``{"kind": "template", "beats": K, "min_rr_prev_ratio": r, "min_scale": s}`` replaces the beat by its
deviation from the patient's own running median template,
``(x - T) / max(peak_to_peak(T), s)``, where ``T`` is the per-sample median of the previous K beats whose
``rr_prev_ratio >= r`` (not premature). A median over recent beats is robust while fewer than half of them
are abnormal, and the prematurity gate keeps most PVCs (premature by definition) out of it even in
bigeminy. Dividing by the template's amplitude makes the deviation independent of lead and gain. The first
beat of a stream, with no template yet, becomes its own template (deviation 0).

Every beat also carries RR features (ratios to the local typical RR, which is the median of the previous
`RR_HISTORY` intervals): prematurity (`rr_prev_ratio`) and the pause after (`rr_next_ratio`), and their
one-sided forms ``rr_prematurity = max(0, 1 - rr_prev_ratio)`` and ``rr_pause = max(0, rr_next_ratio - 1)``,
which are 0 for a beat that is neither early nor followed by a pause. One-sided matters in bigeminy: the
normal beats there come late and are followed by an early beat, which two-sided ratios would flag.
A beat is emitted once the next R peak is known, so its latency is one RR interval plus the detector's
look-ahead.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal as sps

RR_HISTORY = 8  # beats: the local typical RR is the median of this many previous intervals
HIGHPASS_ORDER = 2
STATELESS_STEPS = ("zscore", "minmax", "scale", "center")
TEMPLATE_STEP = "template"
PEAK_DELAY_S = 2.0  # s: R peaks reach the framer at most this late (the detector's look-ahead is less)
RR_FEATURES = ("rr_prev_ratio", "rr_next_ratio", "rr_prev_s", "rr_next_s", "rr_prematurity", "rr_pause")


def median(x: np.ndarray) -> float:
    """np.median of a 1-D array via one partition: same value, a fraction of the per-call overhead."""
    n = len(x)
    k = n // 2
    if n % 2:
        return float(np.partition(x, k)[k])
    p = np.partition(x, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2)


def median_rows(a: np.ndarray) -> np.ndarray:
    """np.median(a, axis=0) via one partition (the per-beat template is on the hot path)."""
    n = a.shape[0]
    k = n // 2
    if n % 2:
        return np.partition(a, k, axis=0)[k]
    p = np.partition(a, (k - 1, k), axis=0)
    return (p[k - 1] + p[k]) / 2


@dataclass
class Beat:
    """One framed beat, ready for the model."""

    index: int  # beat number in the stream, from 0
    r_sample: int  # absolute sample index of the R peak (stream rate)
    time_s: float  # R peak time from stream start
    rr_prev_s: float
    rr_next_s: float
    samples: np.ndarray  # normalised beat window, shape (length,)
    features: np.ndarray  # model input vector (beat samples then RR features, as the model lists them)


class BeatSpec:
    """The model's beat description (metadata `beat`, `features`, `normalisation`), validated once."""

    def __init__(self, beat: Mapping[str, Any], features: Sequence[Mapping[str, Any]],
                 normalisation: Mapping[str, Any]) -> None:
        self.length = int(beat["length"])
        self.window = dict(beat["window"])
        self.highpass_hz = beat.get("highpass_hz")
        self.feature_names = [str(f["name"]) for f in features]
        self.steps = list(normalisation.get("steps", []))
        unknown = [n for n in self.feature_names if n != "beat" and n not in RR_FEATURES]
        if unknown:
            raise ValueError(f"unknown beat features {unknown}")
        if self.window.get("kind") not in ("rr", "fixed"):
            raise ValueError(f"unknown beat window kind {self.window.get('kind')!r}")
        kinds = [str(step.get("kind")) for step in self.steps]
        unknown_steps = [k for k in kinds if k not in STATELESS_STEPS + (TEMPLATE_STEP,)]
        if unknown_steps:
            raise ValueError(f"unknown normalisation steps {unknown_steps}")
        if TEMPLATE_STEP in kinds[:-1]:
            raise ValueError("the 'template' normalisation step must be the last step")
        # the running template is applied by the framer (it needs state and RR); the rest per beat
        self.template = dict(self.steps[-1]) if kinds and kinds[-1] == TEMPLATE_STEP else None
        self.beat_steps = self.steps[:-1] if self.template else self.steps

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> BeatSpec:
        return cls(meta["beat"], meta["features"], meta["normalisation"])

    @property
    def n_inputs(self) -> int:
        return sum(self.length if n == "beat" else 1 for n in self.feature_names)

    def window_bounds(self, r: int, r_next: int, fs: float) -> tuple[float, float]:
        """Window start and end (fractional samples) for the beat at `r`."""
        if self.window["kind"] == "rr":
            rr = r_next - r
            pre = float(self.window["pre_fraction"])
            return r - pre * rr, r + (1.0 - pre) * rr
        return r - float(self.window["pre_s"]) * fs, r + float(self.window["post_s"]) * fs

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """The stateless steps (all but a final `template` step, which `TemplateTracker` applies)."""
        for step in self.beat_steps:
            kind = step["kind"]
            if kind == "zscore":  # per beat, as the UCR archive does (sample std, ddof=1)
                sd = x.std(ddof=1)
                x = (x - x.mean()) / (sd if sd > 0 else 1.0)
            elif kind == "minmax":  # global constants from the training data
                x = (x - float(step["min"])) / (float(step["max"]) - float(step["min"]))
            elif kind == "scale":  # fixed gain, e.g. mV -> model units
                x = x * float(step["factor"])
            elif kind == "center":  # beat's own median: robust to the QRS, unlike the mean
                x = x - median(x)
            else:
                raise ValueError(f"unknown normalisation step {kind!r}")
        return x

    def assemble(self, samples: np.ndarray, rr: Mapping[str, float]) -> np.ndarray:
        parts = [samples if n == "beat" else np.array([rr[n]]) for n in self.feature_names]
        return np.concatenate(parts).astype(np.float32)


def rr_features(rr_prev: float, rr_next: float, history: Sequence[float]) -> dict[str, float]:
    """RR features of one beat; `history` are the RR intervals (s) before `rr_prev`, newest last."""
    typical = float(statistics.median(history)) if len(history) else rr_prev
    typical = typical if typical > 0 else 1.0
    prev_ratio, next_ratio = rr_prev / typical, rr_next / typical
    return {"rr_prev_ratio": prev_ratio, "rr_next_ratio": next_ratio,
            "rr_prev_s": rr_prev, "rr_next_s": rr_next,
            "rr_prematurity": max(0.0, 1.0 - prev_ratio), "rr_pause": max(0.0, next_ratio - 1.0)}


class TemplateTracker:
    """The `template` normalisation step: deviation from a running median of the patient's own beats."""

    def __init__(self, step: Mapping[str, Any]) -> None:
        self.n_beats = int(step["beats"])
        self.min_rr_prev_ratio = float(step["min_rr_prev_ratio"])
        self.min_scale = float(step["min_scale"])  # signal units (mV): floor against flat templates
        self.reset()

    def reset(self) -> None:
        self.history: deque[np.ndarray] = deque(maxlen=self.n_beats)

    def apply(self, x: np.ndarray, rr_prev_ratio: float) -> np.ndarray:
        """Deviation of beat `x` from the template of the previous beats; then maybe add `x` to them."""
        template = median_rows(np.stack(self.history)) if self.history else x
        out = (x - template) / max(float(np.ptp(template)), self.min_scale)
        if rr_prev_ratio >= self.min_rr_prev_ratio:  # premature beats (PVCs, APCs) stay out
            self.history.append(x)
        return out


class BeatCutter:
    """Cuts and normalises one beat from a buffer of (filtered) samples that starts at `offset`."""

    def __init__(self, spec: BeatSpec, fs: float) -> None:
        self.spec = spec
        self.fs = float(fs)

    def cut(self, buf: np.ndarray, offset: int, r: int, r_next: int) -> np.ndarray | None:
        start, end = self.spec.window_bounds(r, r_next, self.fs)
        if start < offset or end > offset + len(buf) - 1:
            return None  # window not (or no longer) in the buffer
        grid = np.linspace(start, end, self.spec.length, endpoint=self.spec.window["kind"] == "fixed")
        lo = int(np.floor(start)) - offset  # interpolate on the window's slice only
        piece = buf[lo:int(np.ceil(end)) - offset + 1]
        x = np.interp(grid - offset - lo, np.arange(len(piece)), piece)
        return self.spec.normalise(x)


def make_highpass(spec: BeatSpec, fs: float) -> np.ndarray | None:
    if not spec.highpass_hz:
        return None
    return sps.butter(HIGHPASS_ORDER, float(spec.highpass_hz), btype="highpass", fs=fs, output="sos")


class BeatFramer:
    """Streaming beat framer: `feed(block, new_peaks)` returns the beats that became complete.

    State that crosses blocks: the high-pass filter state, a buffer of recent filtered samples, the peaks
    waiting for their successor, and the RR history. `reset()` restores the initial state.
    """

    def __init__(self, spec: BeatSpec, fs: float) -> None:
        self.spec = spec
        self.fs = float(fs)
        self.cutter = BeatCutter(spec, fs)
        self.sos = make_highpass(spec, fs)
        self.template = TemplateTracker(spec.template) if spec.template else None
        self.reset()

    def reset(self) -> None:
        self.zi: np.ndarray | None = None
        self.buf = np.zeros(0)
        self.offset = 0  # absolute index of buf[0]
        self.seen = 0  # samples fed so far
        self.peaks: list[int] = []  # peaks not yet emitted as beats (the last one waits for its successor)
        self.prev_r: int | None = None  # R peak before peaks[0], for rr_prev
        self.rr_history: deque[float] = deque(maxlen=RR_HISTORY)
        self.n_beats = 0
        self.dropped: dict[str, int] = {}
        if self.template is not None:
            self.template.reset()

    def _filter(self, block: np.ndarray) -> np.ndarray:
        if self.sos is None:
            return block
        if self.zi is None:  # start in steady state for the first sample: no start-up transient
            self.zi = sps.sosfilt_zi(self.sos) * block[0]
        out, self.zi = sps.sosfilt(self.sos, block, zi=self.zi)
        return out

    def feed(self, block: np.ndarray, new_peaks: Sequence[int] = ()) -> list[Beat]:
        block = np.asarray(block, dtype=np.float64)
        if len(block):
            self.buf = np.concatenate([self.buf, self._filter(block)])
            self.seen += len(block)
        self.peaks.extend(int(p) for p in new_peaks)
        beats = self._emit_ready()
        self._trim()
        return beats

    def flush(self) -> list[Beat]:
        """End of stream: the last beat has no successor, so it cannot be framed."""
        if self.peaks:
            self._drop("no following beat at end of stream", len(self.peaks))
            self.peaks = []
        return []

    def _drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def _emit_ready(self) -> list[Beat]:
        beats = []
        while len(self.peaks) >= 2:
            r, r_next = self.peaks[0], self.peaks[1]
            _, end = self.spec.window_bounds(r, r_next, self.fs)
            if end > self.seen - 1:
                break  # wait for more signal
            beat = self._make_beat(r, r_next)
            if beat is not None:
                beats.append(beat)
            self.peaks.pop(0)
        return beats

    def _make_beat(self, r: int, r_next: int) -> Beat | None:
        rr_next = (r_next - r) / self.fs
        known_prev = self.prev_r is not None
        rr_prev = (r - self.prev_r) / self.fs if self.prev_r is not None else rr_next
        history = list(self.rr_history)
        self.prev_r = r
        if known_prev:
            self.rr_history.append(rr_prev)
        samples = self.cutter.cut(self.buf, self.offset, r, r_next)
        if samples is None:
            self._drop("beat window before stream start")
            return None
        rr = rr_features(rr_prev, rr_next, history)
        if self.template is not None:
            samples = self.template.apply(samples, rr["rr_prev_ratio"])
        beat = Beat(self.n_beats, r, r / self.fs, rr_prev, rr_next, samples, self.spec.assemble(samples, rr))
        self.n_beats += 1
        return beat

    def _trim(self) -> None:
        """Drop buffered samples that no pending beat window can reach."""
        # with no peak pending, the next one may still arrive for a sample up to PEAK_DELAY_S back
        first = self.peaks[0] if self.peaks else self.seen - int(PEAK_DELAY_S * self.fs)
        earliest = first - self._max_pre_samples(self.seen - first)
        cut = int(np.floor(earliest)) - 2 - self.offset
        if cut > 0:
            self.buf = self.buf[cut:]
            self.offset += cut

    def _max_pre_samples(self, waited: int) -> float:
        """Samples before R a pending window can start; for RR windows it grows with the RR so far."""
        w = self.spec.window
        if w["kind"] == "fixed":
            return float(w["pre_s"]) * self.fs
        return float(w["pre_fraction"]) * max(3.0 * self.fs, waited)


def extract_beats(signal: np.ndarray, fs: float, peaks: Sequence[int], spec: BeatSpec) -> list[Beat]:
    """Offline framing of a whole record: the same beats the streaming framer gives."""
    framer = BeatFramer(spec, fs)
    return framer.feed(signal, peaks) + framer.flush()
