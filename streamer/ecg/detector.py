"""Causal, streaming R-peak detector (Pan-Tompkins family with real-time decision rules), run for any
number of streams at once.

Pipeline, all causal, with every filter state carried across blocks:

1. QRS feature: Butterworth band-pass 5-15 Hz -> first difference -> |.| -> moving-window integration over
   ``MWI_S`` (the integrator). The absolute slope rather than its square keeps the dynamic range small, so
   a change of QRS amplitude moves the feature linearly. Local maxima of the integrator are QRS candidates.
2. Locator signal: a gentle causal band-pass (0.5-40 Hz) of the raw ECG. The returned index is the R peak
   on it: the extremum in the record's dominant polarity, learned online from accepted beats.
3. Decision rules per candidate, in time order: adaptive signal/noise levels with a threshold between
   them (Pan & Tompkins), a refractory period, T-wave rejection by slope, a local-activity test (the
   candidate's integrated slope must stand out from the mean slope over the surrounding
   ``LOCAL_WINDOW_S``, stricter for premature candidates: this is what rejects noise bursts between
   beats), and a *real-time searchback*: rather than looking back for a missed beat (an unbounded decision
   delay), the threshold is lowered when the beat is due (on time w.r.t. the median RR) and halved again for
   every ``MISSED_RR_FACTOR`` RR without a beat, so a weak beat is taken when it arrives and the detector
   recovers from any over-estimated signal level.

Many streams at once. Steps 1 and 2 and everything a decision looks at (the candidate's height, its
steepest slope, the local activity, the locator's extrema) are computed for all streams of one block
length as array operations over (streams, samples); only step 3, a few float comparisons per candidate
(2-4 candidates per beat), runs in Python, candidate by candidate, each with its own stream's `_Rules`.
A single stream is simply a bank with one row, so a pool of streams gives each stream exactly what it
would get alone.

Decision delay. A candidate at integrator maximum ``m`` is decided as soon as ``CONFIRM_S`` of signal after
``m`` has been fed, and its R peak is searched in ``[m - (LOOKAHEAD_S - CONFIRM_S), m - RSEARCH_END_S]``.
Hence every returned peak ``p`` is returned by the ``feed`` call that delivers sample
``p + floor(LOOKAHEAD_S * fs)`` at the latest, with ``LOOKAHEAD_S = 0.27 s``. (``flush`` returns the last
pending ones at end of stream.)

Block invariance: every per-sample value is computed by the same arithmetic whatever the partition (the
IIR recursions and the running sum of |slope| run sample by sample with their state carried), every
decision depends only on samples in bounded windows around the candidate and on the state left by earlier
candidates, and a candidate is examined only once all of its window is available, so any block partition
of the stream gives exactly the same peaks.

Start-up: candidates in the first ``WARMUP_S`` (filter settling) are not emitted, so an R peak in the very
first ~0.15 s of a stream can be missed. Until the first beat the threshold is a fraction of the largest
candidate seen so far.

Measured on 8 MIT-BIH records (100, 102, 104, 105, 106, 116, 121, 123; 17 081 beats, channel 0, 150 ms
tolerance): see ``benchmarks/bench_detectors.py`` and the README.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamer.core.dsp import IirDesign, windows_ending_at
from streamer.core.rows import Rows
from streamer.core.stats import small_median

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
PROBES = (-1.0, -0.5, 0.5, 1.0, -0.25, 0.25)  # window points tested first (fractions of pre / confirm)
OPPOSITE_PEAK_RATIO = 2.0  # an opposite-polarity peak this much larger than the dominant one is the R peak
POLARITY_GAIN = 0.1  # running-average weight of a beat's polarity vote


def detector_designs(fs: float) -> list[tuple[int, tuple[float, float], str]]:
    """The detector's two filters at rate `fs`: (order, band in Hz, kind)."""
    hi = min(QRS_BAND_HZ[1], 0.45 * fs)
    loc_hi = min(LOCATOR_BAND_HZ[1], 0.9 * fs / 2.0)
    return [(QRS_FILTER_ORDER, (QRS_BAND_HZ[0], hi), "bandpass"),
            (LOCATOR_ORDER, (LOCATOR_BAND_HZ[0], loc_hi), "bandpass")]


def _samples(seconds: float, fs: float) -> int:
    """A duration in whole samples, at least one."""
    return max(1, int(math.ceil(seconds * fs)))


class _Timing:
    """The detector's windows in samples at one rate."""

    def __init__(self, fs: float) -> None:
        self.fs = fs
        self.pre = _samples(CANDIDATE_PRE_S, fs)
        self.confirm = _samples(CONFIRM_S, fs)
        # The R-search window starts where the delay bound allows: confirm + rsearch <= LOOKAHEAD_S * fs.
        self.rsearch = int(math.floor(LOOKAHEAD_S * fs)) - self.confirm
        self.rsearch_end = min(_samples(RSEARCH_END_S, fs), self.rsearch)
        self.refractory = _samples(REFRACTORY_S, fs)
        self.t_window = _samples(T_WAVE_WINDOW_S, fs)
        self.slope_win = _samples(MWI_S, fs)
        self.mwi = _samples(MWI_S, fs)
        self.warmup = _samples(WARMUP_S, fs)
        self.local_win = _samples(LOCAL_WINDOW_S, fs)
        # Samples kept behind the newest one: the confirmation wait plus the longest window looking back
        # from a candidate (and one more for its predecessor).
        self.keep = self.confirm + max(self.pre, self.rsearch, self.slope_win, self.local_win, self.mwi) + 2
        # The locator and slope windows of an emitted candidate (m >= warmup) never reach before the stream.
        if self.warmup < max(self.rsearch, self.slope_win):
            raise ValueError(f"detector windows inconsistent at {fs} Hz")


def framing_delay(fs: float) -> int:
    """Samples after an R peak certainly fed when its beat can first be framed (its successor known): the
    successor's integrator peak is at least the refractory period after this beat's, which is at least
    ``RSEARCH_END_S`` after its R peak, and it is decided ``CONFIRM_S`` later (about 0.36 s in all)."""
    t = _Timing(float(fs))
    return t.rsearch_end + t.refractory + t.confirm


class _Rules:
    """One stream's decision state (step 3): levels, RR history, polarity. Plain floats: it runs per candidate."""

    __slots__ = ("t", "spk", "npk", "init_max", "last_beat", "last_slope", "anchor", "rr", "rr_median",
                 "polarity", "skip_rr")

    FIELDS = ("spk", "npk", "init_max", "last_beat", "last_slope", "anchor", "rr_median", "polarity")

    def __init__(self, t: _Timing) -> None:
        self.t = t
        self.spk = 0.0  # signal (QRS) level of the integrator
        self.npk = 0.0  # noise level of the integrator
        self.init_max = 0.0  # largest candidate so far: scales the threshold until the first beat
        self.last_beat = -1  # integrator-peak index of the last beat (-1: none yet)
        self.last_slope = 0.0
        self.anchor = -1  # integrator-peak index of the last regular (non-premature) beat
        self.rr: list[float] = []
        self.rr_median = INITIAL_RR_S * t.fs  # median of self.rr, in samples
        self.polarity = 0.0  # > 0: R peaks are positive in the locator signal
        self.skip_rr = False  # the next beat follows a gap: its interval is not an RR

    # saving / restoring: plain numbers
    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in self.FIELDS}
        out["rr"] = list(self.rr)
        out["skip_rr"] = self.skip_rr
        return out

    def set_state(self, values: Mapping[str, Any]) -> None:
        for k in self.FIELDS:
            setattr(self, k, int(values[k]) if k in ("last_beat", "anchor") else float(values[k]))
        self.rr = [float(v) for v in values["rr"]]
        self.skip_rr = bool(values.get("skip_rr", False))

    def resume(self, m: int) -> None:
        """The signal resumes at sample m after a gap or a flat or saturated stretch: the time without signal
        is not time without beats (no missed-beat lowering of the threshold, and the next interval is not an
        RR), and a beat may come at once (the refractory period is over)."""
        if self.last_beat >= 0:
            self.last_beat = max(self.last_beat, m - self.t.refractory)
            self.anchor = max(self.anchor, self.last_beat)
            self.skip_rr = True

    def premature(self, m: int) -> bool:
        """Early both after the last beat and after the last regular beat (an accepted early beat does not
        reset the underlying rhythm, so a candidate on time w.r.t. the last regular beat is not premature)."""
        if self.last_beat < 0:
            return False
        rr = self.rr_median
        return m - self.last_beat < PREMATURE_RR_FRACTION * rr and m - self.anchor < ON_TIME_RR_FRACTION * rr

    def threshold(self, m: int) -> tuple[float, float]:
        """Detection threshold for a candidate at m, and the missed-beat factor (<= 1) it was lowered by."""
        if self.last_beat < 0:
            thr = THRESHOLD_FRACTION * self.init_max  # no beat yet: lets the very first beat through
        else:
            thr = self.npk + THRESHOLD_FRACTION * (self.spk - self.npk)
        if self.premature(m):
            thr = max(thr, PREMATURE_SIGNAL_RATIO * self.spk)
        # Time without a beat, counted from stream start before the first one.
        missed = int((m - max(self.last_beat, 0)) // (MISSED_RR_FACTOR * self.rr_median))
        if missed > 0:
            # Each further expected beat that did not come lowers the threshold again, so the detector
            # recovers from any over-estimated level (e.g. after a large artefact or a gain drop).
            factor = SEARCHBACK_THRESHOLD_RATIO ** min(missed, MAX_SEARCHBACK_STEPS)
            return thr * factor, factor
        if self.last_beat >= 0 and m - self.anchor >= ON_TIME_RR_FRACTION * self.rr_median:
            return ON_TIME_THRESHOLD_RATIO * thr, 1.0
        return thr, 1.0

    def noise(self, h: float) -> None:
        self.npk += NOISE_LEVEL_GAIN * (h - self.npk)

    def decide(self, m: int, h: float, steepest: float, local: float,
               locate: tuple[int, float, int, float, int]) -> int | None:
        """Classify the candidate at integrator maximum m; return its R-peak index if it is a beat.

        `locate` = (argmax, max, argmin, min, start) of the locator over the R-search window."""
        t = self.t
        self.init_max = max(self.init_max, h)
        if m < t.warmup:
            return None
        since = m - self.last_beat if self.last_beat >= 0 else None
        if since is not None and since < t.refractory:
            return None
        if since is not None and since < t.t_window and steepest < T_WAVE_SLOPE_RATIO * self.last_slope:
            self.noise(h)
            return None
        thr, missed_factor = self.threshold(m)
        if h <= thr:
            self.noise(h)
            return None
        premature = self.premature(m)
        if h < (LOCAL_RATIO_PREMATURE if premature else LOCAL_RATIO) * local:
            self.noise(h)
            return None
        p, vote = self._locate(*locate)
        if since is None:
            self.spk = h
        else:
            # Found by the lowered threshold: the signal level was over-estimated by about as much. (The noise
            # level is left alone: in noisy stretches it is right, and lowering it lets noise through.)
            self.spk *= missed_factor
            self.spk += SIGNAL_LEVEL_GAIN * (min(h, SIGNAL_CLIP_RATIO * self.spk) - self.spk)
            # An interval spanning missed beats must not inflate the expected RR at once: clip it, so a real
            # slow-down still raises the median within a few beats.
            if not self.skip_rr:
                self.rr = (self.rr + [min(float(since), MISSED_RR_FACTOR * self.rr_median)])[-RR_HISTORY:]
                self.rr_median = small_median(self.rr)
            self.skip_rr = False
        self.last_beat = m
        if not premature:
            self.anchor = m
        self.last_slope = steepest
        self.polarity += POLARITY_GAIN * (vote - self.polarity)
        return p

    def _locate(self, i_max: int, up: float, i_min: int, down: float, start: int) -> tuple[int, float]:
        """R-peak index: the locator's extremum in the dominant polarity; and this beat's polarity vote."""
        vote = 1.0 if up >= down else -1.0
        sign = self.polarity if self.polarity != 0.0 else vote
        (first, size1), (second, size2) = ((i_max, up), (i_min, down)) if sign > 0 else ((i_min, down), (i_max, up))
        # The opposite-polarity peak is the QRS when it dwarfs the dominant one (an inverted ectopic beat),
        # or when the dominant "extremum" is only the window edge, i.e. a slope (e.g. the upstroke after a
        # wide negative paced QRS).
        last = self.t.rsearch - self.t.rsearch_end
        if size2 > OPPOSITE_PEAK_RATIO * size1 or (first in (0, last) and second not in (0, last)):
            first = second
        return start + first, vote


class DetectorBank:
    """The detector for many streams of one sampling rate. Streams are slots (0, 1, ...) given by the owner.

    `feed(slots, blocks)` takes one block per slot, all of one length, and returns each slot's R peaks
    (absolute sample indices from its stream's start, increasing) confirmed by that block; `flush(slots)`
    at end of stream returns the pending ones. `clear(slot)` starts a slot afresh (a new or reset stream).
    """

    LOOKAHEAD_S: float = LOOKAHEAD_S

    def __init__(self, fs: float) -> None:
        if not fs >= MIN_FS:
            raise ValueError(f"sampling rate {fs} Hz is below the supported minimum {MIN_FS} Hz")
        self.fs = float(fs)
        self.t = _Timing(self.fs)
        (qrs, loc) = [IirDesign(order, band, kind, fs) for order, band, kind in detector_designs(fs)]
        self.qrs, self.loc = qrs, loc
        k = self.t.keep
        # Tails hold the newest `keep` samples of each per-sample signal (before a stream's start: values that
        # never make a candidate, an empty |slope| and a zero running sum).
        self.rows = Rows(
            seen=((), np.int64, 0),  # samples fed so far
            started=((), bool, False),  # filters started (steady state at the first sample)
            qrs_zi=((self.qrs.order,), np.float64, 0.0),
            loc_zi=((self.loc.order,), np.float64, 0.0),
            last_bp=((), np.float64, 0.0),  # last band-passed sample: the first difference crosses blocks
            absmax=((), np.float64, 0.0),  # largest |input| so far: the scale of floating-point round-off
            mwi=((k,), np.float64, -np.inf),
            slope=((k,), np.float64, 0.0),
            csum=((k,), np.float64, 0.0),  # running sum of |slope| from the stream's start (the integrator)
            loc=((k,), np.float64, 0.0),
        )
        self.rules: dict[int, _Rules] = {}

    # --- streams -------------------------------------------------------------------------------------------
    def clear(self, slot: int) -> None:
        self.rows.clear(slot)
        self.rules[slot] = _Rules(self.t)

    def release(self, slot: int) -> None:
        self.rules.pop(slot, None)

    def reprime(self, slot: int, resume: bool = False) -> None:
        """The filters start afresh (in steady state, band-passed output 0) at the slot's next sample: at a
        gap's start, and where the signal resumes after a gap or a flat or saturated stretch (`resume`), so the
        step back is not a beat. The levels go on; on resuming, the time without signal does not count as time
        without beats."""
        self.rows["started"][slot] = False
        self.rows["last_bp"][slot] = 0.0
        if resume:
            self.rules[slot].resume(int(self.rows["seen"][slot]))

    def state(self, slot: int) -> dict[str, Any]:
        return {"rows": self.rows.row(slot), "rules": self.rules[slot].state()}

    def set_state(self, slot: int, state: Mapping[str, Any]) -> None:
        self.clear(slot)
        self.rows.set_row(slot, state["rows"])
        self.rules[slot].set_state(state["rules"])

    # --- data ----------------------------------------------------------------------------------------------
    def feed(self, slots: Sequence[int], blocks: np.ndarray) -> dict[int, list[int]]:
        """Blocks (n, L) of finite samples for `slots` (n distinct); returns {slot: its new peaks} for the slots
        that have any."""
        s = np.asarray(slots, dtype=np.int64)
        x = np.asarray(blocks, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(s):
            raise ValueError(f"blocks must be (streams, samples), got {x.shape} for {len(s)} streams")
        if x.shape[1] == 0:
            return {}
        r = self.rows
        started = r["started"][s]
        bp, r["qrs_zi"][s] = self.qrs.run(x, r["qrs_zi"][s], started)
        loc, r["loc_zi"][s] = self.loc.run(x, r["loc_zi"][s], started)
        r["started"][s] = True
        # Each per-sample signal as one array per tick: the kept tail, then this block (written in place).
        k, n_new, n_mwi = self.t.keep, x.shape[1], self.t.mwi
        ext = {name: np.empty((len(s), k + n_new)) for name in ("mwi", "slope", "csum", "loc")}
        for name, a in ext.items():
            a[:, :k] = r[name][s]
        ext["loc"][:, k:] = loc
        slope = ext["slope"][:, k:]
        slope[:, 0] = bp[:, 0] - r["last_bp"][s]  # the first difference continues the previous block
        np.subtract(bp[:, 1:], bp[:, :-1], out=slope[:, 1:])
        np.abs(slope, out=slope)
        r["last_bp"][s] = bp[:, -1]
        self._zero_roundoff(s, x, slope)
        # The integrator as a difference of a running sum; the sum is accumulated sample by sample (np.cumsum
        # is sequential), seeded with the previous block's last value, so it is the same for any partition.
        csum = ext["csum"]
        csum[:, k:] = slope
        csum[:, k] += csum[:, k - 1]
        np.cumsum(csum[:, k:], axis=1, out=csum[:, k:])
        mwi = ext["mwi"][:, k:]
        np.subtract(csum[:, k:], csum[:, k - n_mwi:k - n_mwi + n_new], out=mwi)
        mwi /= n_mwi
        seen = r["seen"][s]
        peaks = self._scan(s, ext, seen - k, lo=k - self.t.confirm, hi=k + n_new - self.t.confirm,
                           total=seen + n_new)
        for name, a in ext.items():
            r[name][s] = a[:, -k:]
        r["seen"][s] = seen + n_new
        return peaks

    def _zero_roundoff(self, s: np.ndarray, x: np.ndarray, slope: np.ndarray) -> None:
        """Round-off of the filters on a constant input is ~1e-15 of its level: zero it, so a flat line at any
        offset has exactly zero energy and yields no candidates. The floor follows the largest |input| so far,
        sample by sample; only the few samples whose slope is below the floor of the block's end (a bound of
        it) need the running maximum."""
        r = self.rows
        before = r["absmax"][s]
        absx = np.abs(x)
        after = np.maximum(before, absx.max(axis=1))
        r["absmax"][s] = after
        rows, cols = np.nonzero(slope <= ROUNDOFF_FLOOR * after[:, None])
        for row in sorted(set(rows.tolist())):  # few rows; np.unique would import numpy.ma at start-up
            at = cols[rows == row]
            running = np.maximum(np.maximum.accumulate(absx[row, :at[-1] + 1]), before[row])
            tiny = slope[row, at] <= ROUNDOFF_FLOOR * running[at]
            slope[row, at[tiny]] = 0.0

    def flush(self, slots: Sequence[int]) -> dict[int, list[int]]:
        """End of stream: decide the candidates still waiting for their confirmation window."""
        s = np.asarray(slots, dtype=np.int64)
        if len(s) == 0:
            return {}
        r, k, c = self.rows, self.t.keep, self.t.confirm
        pad = np.full((len(s), c), -np.inf)  # nothing after the end: every later sample is below any candidate
        ext = {"mwi": np.concatenate([r["mwi"][s], pad], axis=1),
               "slope": r["slope"][s], "csum": r["csum"][s], "loc": r["loc"][s]}
        seen = r["seen"][s]
        peaks = self._scan(s, ext, seen - k, lo=k - c, hi=k, total=seen)
        r["mwi"][s] = np.full((len(s), k), -np.inf)  # flushed: nothing more to decide
        return peaks

    # --- internals -----------------------------------------------------------------------------------------
    def _scan(self, s: np.ndarray, ext: dict[str, np.ndarray], origin: np.ndarray, lo: int, hi: int,
              total: np.ndarray) -> dict[int, list[int]]:
        """Find and decide the candidates at ext columns [lo, hi) of every row.

        Column j of row i is absolute sample `origin[i] + j` of that stream; `total` is each stream's sample
        count (nothing at or after it exists yet). Returns {slot: peaks} for the slots with peaks.
        """
        t = self.t
        mwi = ext["mwi"]
        v = mwi[:, lo:hi]
        # A candidate rises into a maximum of the integrator over [i - pre, i + confirm] (flat lines and
        # plateaus give one or none). First the cheap local test, then the window maximum for the few left.
        rising = (v > mwi[:, lo - 1:hi - 1]) & (v >= mwi[:, lo + 1:hi + 1]) & (v > 0.0)
        row, j = np.nonzero(rising)
        row, cand = self._window_maxima(mwi, row, j + lo)
        if len(row) == 0:
            return {}
        h = mwi[row, cand]
        steepest = windows_ending_at(ext["slope"], row, cand, t.slope_win + 1).max(axis=1)
        # Mean |slope| over LOCAL_WINDOW_S ending CONFIRM_S after m (clipped at the stream's end and start).
        m_abs = origin[row] + cand
        end_abs = np.minimum(m_abs + t.confirm, total[row] - 1)
        end_col = end_abs - origin[row]
        csum = ext["csum"]
        first_abs = np.maximum(end_abs - t.local_win + 1, 0)
        local = (csum[row, end_col] - csum[row, end_col - t.local_win]) / (end_abs - first_abs + 1)
        # The locator's extrema over the R-search window [m - rsearch, m - rsearch_end].
        win = windows_ending_at(ext["loc"], row, cand - t.rsearch_end, t.rsearch - t.rsearch_end + 1)
        i_max, i_min = win.argmax(axis=1), win.argmin(axis=1)
        up = win[np.arange(len(row)), i_max]
        down = -win[np.arange(len(row)), i_min]
        start = m_abs - t.rsearch
        out: dict[int, list[int]] = {}
        slots = s.tolist()
        rules = self.rules
        for ri, m, hm, st, lc, a, u, b, d, w0 in zip(
                row.tolist(), m_abs.tolist(), h.tolist(), steepest.tolist(), local.tolist(), i_max.tolist(),
                up.tolist(), i_min.tolist(), down.tolist(), start.tolist()):
            slot = slots[ri]
            p = rules[slot].decide(m, hm, st, lc, (a, u, b, d, w0))
            if p is not None:
                out.setdefault(slot, []).append(p)
        return out

    def _window_maxima(self, mwi: np.ndarray, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (row, col) whose value is the maximum of mwi[row, col - pre : col + confirm + 1].

        Most local maxima of the integrator are small ripples: a few probes across the window rule them
        out before the exact test reads whole windows."""
        t = self.t
        v = mwi[row, col]
        for offset in PROBES:
            o = int(round(offset * (t.pre if offset < 0 else t.confirm)))
            keep = v >= mwi[row, col + o]
            row, col, v = row[keep], col[keep], v[keep]
        keep = v >= windows_ending_at(mwi, row, col + t.confirm, t.pre + t.confirm + 1).max(axis=1)
        return row[keep], col[keep]


def detect_rpeaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """Offline convenience: the whole signal as one block of a one-stream bank, then flush."""
    bank = DetectorBank(fs)
    bank.clear(0)
    x = np.asarray(signal, dtype=np.float64).reshape(1, -1)
    if not np.isfinite(x).all():
        raise ValueError("signal has non-finite samples")
    peaks = bank.feed([0], x).get(0, []) + bank.flush([0]).get(0, [])
    return np.asarray(peaks, dtype=np.int64)


class OnlineRPeakDetector:
    """One stream's detector: a bank of one. `feed(block)` -> new peaks, `flush()`, `reset()`."""

    LOOKAHEAD_S: float = LOOKAHEAD_S

    def __init__(self, fs: float) -> None:
        self.bank = DetectorBank(fs)
        self.fs = self.bank.fs
        self.reset()

    def reset(self) -> None:
        self.bank.clear(0)

    def feed(self, block: np.ndarray) -> list[int]:
        x = np.asarray(block, dtype=np.float64).ravel()
        return self.bank.feed([0], x[None, :]).get(0, [])

    def flush(self) -> list[int]:
        return self.bank.flush([0]).get(0, [])
