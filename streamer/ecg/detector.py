"""Causal, streaming R-peak detector (Pan-Tompkins family with real-time decision rules).

Pipeline, all causal, with every filter state carried across blocks:

1. QRS feature: Butterworth band-pass 5-15 Hz -> first difference -> |.| -> moving-window integration over
   ``MWI_S`` (the integrator). The absolute slope rather than its square keeps the dynamic range small, so
   a change of QRS amplitude moves the feature linearly. Local maxima of the integrator are QRS candidates.
2. Locator signal: a gentle causal band-pass (0.5-40 Hz) of the raw ECG. The returned index is the R peak
   on it: the extremum in the record's dominant polarity, learned online from accepted beats.
3. Decision rules per candidate, in time order (a Python loop per candidate, never per sample):
   adaptive signal/noise levels with a threshold between them (Pan & Tompkins), a refractory period,
   T-wave rejection by slope, a local-activity test (the candidate's integrated slope must stand out from
   the mean slope over the surrounding ``LOCAL_WINDOW_S``, stricter for premature candidates: this is what
   rejects noise bursts between beats), and a *real-time searchback*: rather than looking back for a
   missed beat (an unbounded decision delay), the threshold is lowered when the beat is due (on time
   w.r.t. the median RR) and halved again for every ``MISSED_RR_FACTOR`` RR without a beat, so a weak beat
   is taken when it arrives and the detector recovers from any over-estimated signal level.

Decision delay. A candidate at integrator maximum ``m`` is decided as soon as ``CONFIRM_S`` of signal after
``m`` has been fed, and its R peak is searched in ``[m - (LOOKAHEAD_S - CONFIRM_S), m - RSEARCH_END_S]``.
Hence every returned peak ``p`` is returned by the ``feed`` call that delivers sample
``p + floor(LOOKAHEAD_S * fs)`` at the latest, with ``LOOKAHEAD_S = 0.27 s``. (``flush`` returns the last
pending ones at end of stream.)

Block invariance: every decision depends only on samples in bounded windows around the candidate and on the
state left by earlier candidates, a candidate is examined only once all of its window is available, and the
per-sample features are bit-identical whatever the partition, so any block partition of the stream gives
exactly the same peaks.

Start-up: candidates in the first ``WARMUP_S`` (filter settling) are not emitted, so an R peak in the very
first ~0.15 s of a stream can be missed. Until the first beat the threshold is a fraction of the largest
candidate seen so far.

Measured on 8 MIT-BIH records (100, 102, 104, 105, 106, 116, 121, 123; 17 081 beats, channel 0, 150 ms
tolerance): Se 99.81 %, PPV 99.81 %; see ``benchmarks/bench_detectors.py``.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, lfilter, lfilter_zi

# --- feature filters -------------------------------------------------------------------------------------
QRS_BAND_HZ = (5.0, 15.0)  # Hz, where QRS slopes dominate P/T waves and baseline (Pan & Tompkins 1985)
QRS_FILTER_ORDER = 2  # Butterworth order of each band edge
MWI_S = 0.150  # s, integration window ~ widest normal QRS
LOCATOR_BAND_HZ = (0.5, 40.0)  # Hz, baseline removal + smoothing that keeps the R peak sharp
LOCATOR_ORDER = 1  # low order: small group delay on the QRS
MIN_FS = 100.0  # Hz, below this the QRS band is not representable with margin
ROUNDOFF_FLOOR = 1e-12  # |slope| below this times the largest |input| so far is round-off, set to zero

# --- candidate timing ------------------------------------------------------------------------------------
LOOKAHEAD_S = 0.270  # s, max delay between an R peak and the moment it is returned (see docstring)
CANDIDATE_PRE_S = 0.100  # s, a candidate is the largest integrator value within this much before it ...
CONFIRM_S = 0.100  # s, ... and this much after it (the confirmation wait)
RSEARCH_END_S = 0.060  # s, the R peak precedes the integrator peak by ~0.06-0.16 s (integration + filter delay)
WARMUP_S = 0.250  # s, integrator fill + band-pass settling: earlier candidates only set the initial scale

# --- decision rules --------------------------------------------------------------------------------------
REFRACTORY_S = 0.200  # s, no two beats closer than this (physiological)
T_WAVE_WINDOW_S = 0.360  # s, a candidate this soon after a beat may be its T wave ...
T_WAVE_SLOPE_RATIO = 0.5  # ... and is taken as one if its steepest slope is below this times the beat's
THRESHOLD_FRACTION = 0.2  # threshold = noise level + this * (signal level - noise level)
SIGNAL_LEVEL_GAIN = 0.25  # running-average weight of a new beat's height in the signal level
NOISE_LEVEL_GAIN = 0.125  # same, for a rejected candidate in the noise level
SIGNAL_CLIP_RATIO = 3.0  # one beat can raise the signal level by at most this factor (artefact robustness)
RR_HISTORY = 8  # recent RR intervals whose median is the expected RR
INITIAL_RR_S = 1.0  # s, expected RR before any has been measured
PREMATURE_RR_FRACTION = 0.7  # sooner than this fraction of the expected RR after a beat is premature ...
ON_TIME_RR_FRACTION = 0.85  # ... unless on time w.r.t. the last regular beat (>= this fraction of the RR)
PREMATURE_SIGNAL_RATIO = 0.4  # a premature candidate must reach this fraction of the signal level
ON_TIME_THRESHOLD_RATIO = 0.85  # an on-time candidate (the beat expected now) gets this lower threshold
MISSED_RR_FACTOR = 1.66  # every this many expected RR without a beat, a beat was probably missed ...
SEARCHBACK_THRESHOLD_RATIO = 0.5  # ... so the threshold is multiplied by this once more
MAX_SEARCHBACK_STEPS = 10  # floor of the lowered threshold: ratio ** steps (recovers from a 1000x gain drop)
LOCAL_WINDOW_S = 0.500  # s, window (ending CONFIRM_S after the candidate) of the local mean |slope| ...
LOCAL_RATIO = 1.0  # ... which the candidate's integrated |slope| must exceed by this factor ...
LOCAL_RATIO_PREMATURE = 1.7  # ... or by this one if it is premature (noise bursts come between beats)
OPPOSITE_PEAK_RATIO = 2.0  # an opposite-polarity peak this much larger than the dominant one is the R peak
POLARITY_GAIN = 0.1  # running-average weight of a beat's polarity vote


def _samples(seconds: float, fs: float) -> int:
    """A duration in whole samples, at least one."""
    return max(1, int(math.ceil(seconds * fs)))


class _CausalFilter:
    """An IIR filter (transfer-function form) whose state survives between blocks.

    The state starts at the steady state for a constant input equal to the first sample, so a DC offset at
    stream start does not produce a start-up transient (that would look like a QRS). `lfilter` runs the
    recursion sample by sample, so the output does not depend on the block partition; it is also much
    cheaper per call than `sosfilt`, which matters for small blocks. The orders used here (<= 4) are low
    enough for the transfer-function form to be accurate.
    """

    def __init__(self, b: np.ndarray, a: np.ndarray) -> None:
        self._b, self._a = b, a
        self._zi_unit = lfilter_zi(b, a)
        self._zi: np.ndarray | None = None

    def reset(self) -> None:
        self._zi = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self._zi is None:
            self._zi = self._zi_unit * x[0]
        y, self._zi = lfilter(self._b, self._a, x, zi=self._zi)
        return y


class _Frontend:
    """Causal features per sample: integrated |slope| of the QRS band, that |slope|, and the locator.

    Every output sample is computed by the same arithmetic whatever the block partition (the IIR recursions run
    sample by sample; the moving sum adds the same window in the same order), so results are bit-identical.
    """

    def __init__(self, fs: float) -> None:
        nyq = fs / 2.0
        lo, hi = QRS_BAND_HZ
        self._qrs = _CausalFilter(*butter(QRS_FILTER_ORDER, [lo, min(hi, 0.45 * fs)], "bandpass", fs=fs))
        loc_lo, loc_hi = LOCATOR_BAND_HZ
        self._loc = _CausalFilter(*butter(LOCATOR_ORDER, [loc_lo, min(loc_hi, 0.9 * nyq)], "bandpass", fs=fs))
        self._n_mwi = _samples(MWI_S, fs)
        self.reset()

    def reset(self) -> None:
        self._qrs.reset()
        self._loc.reset()
        self._last_bp = 0.0
        self._slope_tail = np.zeros(self._n_mwi - 1)  # last slopes of the previous block (zeros at start)
        self._absmax = 0.0  # largest |input| so far: the scale of floating-point round-off

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bp = self._qrs(x)
        # First difference with the previous block's last sample, so block edges are seamless.
        slope = np.empty_like(bp)
        slope[0] = bp[0] - self._last_bp
        np.subtract(bp[1:], bp[:-1], out=slope[1:])
        np.abs(slope, out=slope)
        self._last_bp = float(bp[-1])
        # Round-off of the filters on a constant input is ~1e-15 of its level: zero it, so a flat line at
        # any offset has exactly zero energy and yields no candidates.
        absmax = np.maximum.accumulate(np.maximum(np.abs(x), self._absmax))
        self._absmax = float(absmax[-1])
        slope[slope <= ROUNDOFF_FLOOR * absmax] = 0.0
        ext = np.concatenate([self._slope_tail, slope])
        self._slope_tail = ext[len(ext) - (self._n_mwi - 1):]
        # Row k views ext[k:k + n]: each output sums the same n values in the same order (bit-exact).
        windows = np.ndarray((len(slope), self._n_mwi), dtype=ext.dtype, buffer=ext, strides=(ext.strides[0],) * 2)
        mwi = windows.sum(axis=1) / self._n_mwi
        return mwi, slope, self._loc(x)


class OnlineRPeakDetector:
    """Streaming R-peak detector; see the module docstring for the method and the delay bound.

    ``feed`` blocks of any size; each call returns the absolute sample indices (from stream start) of the
    R peaks confirmed by that block, increasing. ``flush`` at end of stream returns the pending ones.
    """

    LOOKAHEAD_S: float = LOOKAHEAD_S  # s, max delay between an R peak and the moment it is returned

    def __init__(self, fs: float) -> None:
        if not fs >= MIN_FS:
            raise ValueError(f"sampling rate {fs} Hz is below the supported minimum {MIN_FS} Hz")
        self.fs = float(fs)
        self._pre = _samples(CANDIDATE_PRE_S, fs)
        self._confirm = _samples(CONFIRM_S, fs)
        # The R-search window starts where the delay bound allows: confirm + rsearch <= LOOKAHEAD_S * fs.
        self._rsearch = int(math.floor(LOOKAHEAD_S * fs)) - self._confirm
        self._rsearch_end = min(_samples(RSEARCH_END_S, fs), self._rsearch)
        self._refractory = _samples(REFRACTORY_S, fs)
        self._t_window = _samples(T_WAVE_WINDOW_S, fs)
        self._slope_win = _samples(MWI_S, fs)
        self._warmup = _samples(WARMUP_S, fs)
        self._local_win = _samples(LOCAL_WINDOW_S, fs)
        # History kept behind the oldest undecided sample: the longest window looking back from a candidate.
        self._keep = max(self._pre, self._rsearch, self._slope_win, self._local_win) + 2
        self._frontend = _Frontend(fs)
        self.reset()

    # --- public API ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial state (deterministic)."""
        self._frontend.reset()
        self._mwi = np.zeros(0)
        self._slope = np.zeros(0)
        self._locsig = np.zeros(0)
        self._buf_start = 0  # absolute index of the first buffered sample
        self._seen = 0  # samples fed so far
        self._next = 0  # first absolute index not yet examined as a candidate
        self._spk = 0.0  # signal (QRS) level of the integrator
        self._npk = 0.0  # noise level of the integrator
        self._init_max = 0.0  # largest candidate so far: scales the threshold until the first beat
        self._last_beat = -1  # integrator-peak index of the last beat (-1: none yet)
        self._last_slope = 0.0
        self._anchor = -1  # integrator-peak index of the last regular (non-premature) beat
        self._rr: list[float] = []
        self._rr_median = INITIAL_RR_S * self.fs  # cached median of self._rr, in samples
        self._polarity = 0.0  # > 0: R peaks are positive in the locator signal

    def feed(self, block: np.ndarray) -> list[int]:
        """Process one block; return the R peaks (absolute sample indices) confirmed by it."""
        x = np.asarray(block, dtype=np.float64).ravel()
        if x.size == 0:
            return []
        # Non-finite samples would poison the IIR state for good; treat them as a flat (zero-energy) input.
        if not np.all(np.isfinite(x)):
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        mwi, slope, loc = self._frontend(x)
        self._mwi = np.concatenate([self._mwi, mwi])
        self._slope = np.concatenate([self._slope, slope])
        self._locsig = np.concatenate([self._locsig, loc])
        self._seen += x.size
        peaks = self._process(self._seen - self._confirm)
        self._trim()
        return peaks

    def flush(self) -> list[int]:
        """End of stream: decide the candidates still waiting for their confirmation window."""
        peaks = self._process(self._seen, at_end=True)
        self._trim()
        return peaks

    # --- internals ----------------------------------------------------------------------------------------
    def _process(self, stop: int, at_end: bool = False) -> list[int]:
        """Examine candidates in [self._next, stop): each has its whole confirmation window available."""
        if stop <= self._next:
            return []
        lo = max(self._next - self._pre, self._buf_start)
        seg = self._mwi[lo - self._buf_start:]
        # Window max over [i - pre, i + confirm]; pad so stream start and (at flush) stream end are edges.
        size = self._pre + self._confirm + 1
        left = self._pre - (self._next - lo)  # > 0 only at stream start
        padded = np.concatenate([np.full(left, -np.inf), seg, np.full(self._confirm if at_end else 0, -np.inf)])
        wmax = maximum_filter1d(padded, size, origin=-(size // 2), mode="nearest")
        first = self._next - lo  # offset of self._next in seg
        idx = np.arange(first, stop - lo)
        vals = seg[idx]
        prev = np.where(idx > 0, seg[np.maximum(idx - 1, 0)], -np.inf)
        # A candidate is the window's maximum and rises into it (so flat lines and plateaus give one or none).
        is_cand = (vals >= wmax[idx + left - self._pre]) & (vals > prev) & (vals > 0.0)
        peaks = [p for i in idx[is_cand] if (p := self._decide(lo + int(i))) is not None]
        self._next = stop
        return peaks

    def _trim(self) -> None:
        """Drop buffered samples no future candidate can look at."""
        cut = max(0, min(self._next, self._seen) - self._keep - self._buf_start)
        if cut > 0:
            self._mwi = self._mwi[cut:]
            self._slope = self._slope[cut:]
            self._locsig = self._locsig[cut:]
            self._buf_start += cut

    def _expected_rr(self) -> float:
        """Median of the recent RR intervals, in samples (robust to one missed or extra beat)."""
        return self._rr_median

    def _is_premature(self, m: int) -> bool:
        """Whether a candidate comes early both after the last beat and after the last regular beat.

        An accepted early beat (ectopic, or noise that got through) does not reset the underlying rhythm,
        so a candidate on time with respect to the last regular beat is not premature.
        """
        if self._last_beat < 0:
            return False
        rr = self._expected_rr()
        return (m - self._last_beat < PREMATURE_RR_FRACTION * rr
                and m - self._anchor < ON_TIME_RR_FRACTION * rr)

    def _local_activity(self, m: int) -> float:
        """Mean |slope| over LOCAL_WINDOW_S ending CONFIRM_S after m (all of it already fed)."""
        b = self._buf_start
        end = min(m + self._confirm, b + len(self._slope) - 1) - b  # clipped only at flush
        window = self._slope[max(end + 1 - self._local_win, 0):end + 1]
        return float(window.sum()) / len(window)

    def _threshold(self, m: int) -> tuple[float, float]:
        """Detection threshold of the integrator for a candidate at m, and the missed-beat factor (<= 1).

        The factor is how much the threshold was lowered because beats seem to have been missed; if the
        candidate is accepted, the signal level was over-estimated by about as much.
        """
        if self._last_beat < 0:
            # No beat yet: a fraction of the largest candidate so far (this lets the very first beat through).
            thr = THRESHOLD_FRACTION * self._init_max
        else:
            thr = self._npk + THRESHOLD_FRACTION * (self._spk - self._npk)
        if self._is_premature(m):
            thr = max(thr, PREMATURE_SIGNAL_RATIO * self._spk)
        # Time without a beat, counted from stream start before the first one (a start-up artefact must not
        # hold the threshold up for ever either).
        missed = int((m - max(self._last_beat, 0)) // (MISSED_RR_FACTOR * self._expected_rr()))
        if missed > 0:
            # Each further expected beat that did not come lowers the threshold again, so the detector
            # recovers from any over-estimated level (e.g. after a large artefact or a gain drop).
            factor = SEARCHBACK_THRESHOLD_RATIO ** min(missed, MAX_SEARCHBACK_STEPS)
            return thr * factor, factor
        if self._last_beat >= 0 and m - self._anchor >= ON_TIME_RR_FRACTION * self._expected_rr():
            return ON_TIME_THRESHOLD_RATIO * thr, 1.0
        return thr, 1.0

    def _decide(self, m: int) -> int | None:
        """Classify the candidate at integrator maximum m; return its R-peak index if it is a beat."""
        b = self._buf_start
        h = float(self._mwi[m - b])
        self._init_max = max(self._init_max, h)
        if m < self._warmup:
            return None
        since = m - self._last_beat if self._last_beat >= 0 else None
        if since is not None and since < self._refractory:
            return None
        s0 = max(m - self._slope_win, b)
        steepest = float(self._slope[s0 - b:m + 1 - b].max())
        if since is not None and since < self._t_window and steepest < T_WAVE_SLOPE_RATIO * self._last_slope:
            self._npk += NOISE_LEVEL_GAIN * (h - self._npk)
            return None
        thr, missed_factor = self._threshold(m)
        if h <= thr:
            self._npk += NOISE_LEVEL_GAIN * (h - self._npk)
            return None
        premature = self._is_premature(m)
        if h < (LOCAL_RATIO_PREMATURE if premature else LOCAL_RATIO) * self._local_activity(m):
            self._npk += NOISE_LEVEL_GAIN * (h - self._npk)
            return None
        p, vote = self._locate(m)
        # Accepted as a beat: update signal level, RR history, slope reference, polarity.
        if since is None:
            self._spk = h
        else:
            # Found by the lowered threshold: the signal level was over-estimated by about as much. (The noise
            # level is left alone: in noisy stretches it is right, and lowering it lets noise through.)
            self._spk *= missed_factor
            self._spk += SIGNAL_LEVEL_GAIN * (min(h, SIGNAL_CLIP_RATIO * self._spk) - self._spk)
            # An interval spanning missed beats must not inflate the expected RR at once: clip it, so a real
            # slow-down still raises the median within a few beats.
            rr = min(float(since), MISSED_RR_FACTOR * self._rr_median)
            self._rr = (self._rr + [rr])[-RR_HISTORY:]
            self._rr_median = float(statistics.median(self._rr))
        self._last_beat = m
        if not premature:
            self._anchor = m
        self._last_slope = steepest
        self._polarity += POLARITY_GAIN * (vote - self._polarity)
        return p

    def _locate(self, m: int) -> tuple[int, float]:
        """R-peak index: extremum of the locator signal in [m - RSEARCH, m - RSEARCH_END], dominant polarity.

        Also returns this beat's polarity vote (+1: its largest deflection is positive).
        """
        b = self._buf_start
        s0 = max(m - self._rsearch, b)
        win = self._locsig[s0 - b:m + 1 - self._rsearch_end - b]
        i_max, i_min = int(np.argmax(win)), int(np.argmin(win))
        up, down = float(win[i_max]), float(-win[i_min])
        vote = 1.0 if up >= down else -1.0
        sign = self._polarity if self._polarity != 0.0 else vote
        (first, size1), (second, size2) = ((i_max, up), (i_min, down)) if sign > 0 else ((i_min, down), (i_max, up))
        # The opposite-polarity peak is the QRS when it dwarfs the dominant one (an inverted ectopic beat),
        # or when the dominant "extremum" is only the window edge, i.e. a slope (e.g. the upstroke after a
        # wide negative paced QRS).
        last = len(win) - 1
        if size2 > OPPOSITE_PEAK_RATIO * size1 or (first in (0, last) and second not in (0, last)):
            first = second
        return s0 + first, vote


def detect_rpeaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """Offline convenience: the whole signal as one block, then flush."""
    det = OnlineRPeakDetector(fs)
    peaks = det.feed(np.asarray(signal, dtype=np.float64)) + det.flush()
    return np.asarray(peaks, dtype=np.int64)
