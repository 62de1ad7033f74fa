"""Signal quality of one ECG stream, computed online: a verdict for every beat before it may raise an alarm.

Three checks, each causal, each with its state carried across blocks (any partition of the stream into
blocks gives the same verdicts):

- **bSQI** (Li, Clifford et al. 2008, "Robust heart rate estimation from multiple asynchronous noisy sources
  using signal quality indices and a Kalman filter"): the agreement of two independent QRS detectors over
  the ``WINDOW_S`` seconds before the beat, and over the ``SHORT_WINDOW_S`` ending with the beat itself (so
  noise is caught within a few beats), matched / (n1 + n2 - matched) with a ``MATCH_S`` tolerance; the
  lower of the two counts. The first
  detector is the stream's own (`streamer.ecg.detector`); the second is `SecondOpinion`, deliberately
  different (squared 8-20 Hz energy rather than |slope| of 5-15 Hz, a fixed fraction of recent beat heights,
  no searchback, no T-wave or local-activity rules). On clean ECG both find the same beats; in noise, one
  fires on artefacts the other rejects, and the ratio drops. A beat is poor when the window's bSQI is
  below ``BSQI_GOOD`` (0.8, the conventional cut in the bSQI literature; not tuned on the shared records).
- **flat-line / leads off**: ``FLAT_S`` or more of identical consecutive samples.
- **saturation**: ``SATURATION_S`` or more of identical consecutive samples at the largest or smallest
  value the stream has had (an amplifier or converter at its rail).

A beat's verdict is taken when it is framed, from those two windows and from any flat
or saturated run within ``MARGIN_S`` of its R peak.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.core.dsp import IirDesign

# --- the second detector -----------------------------------------------------------------------------------
ENERGY_BAND_HZ = (8.0, 20.0)  # Hz, a QRS band different from the main detector's 5-15 Hz
ENERGY_ORDER = 2
ENERGY_WINDOW_S = 0.100  # s, RMS over this window of the band-passed signal (the detection feature)
PEAK_HALF_WINDOW_S = 0.250  # s, a peak is the largest energy within this much either side (also refractory)
HEIGHT_FRACTION = 0.3  # a peak's RMS must exceed this fraction of the mean RMS of the recent accepted peaks
HEIGHT_HISTORY = 8  # accepted peaks whose heights make that mean
LEARN_S = 2.0  # s, until then the threshold is a fraction of the largest energy seen
LOCATE_BACK_S = 0.150  # s, the R is the largest |band-passed| sample this far before the energy peak
RELAX_S = 2.0  # s, every this long without a peak the reference height halves (recovers from an artefact)

# --- verdicts ----------------------------------------------------------------------------------------------
WINDOW_S = 10.0  # s, bSQI window (Li et al. 2008)
SHORT_WINDOW_S = 4.0  # s, a second window ending with the beat itself: noise is caught within a few beats
MATCH_S = 0.150  # s, two detections of one beat
BSQI_GOOD = 0.8  # below: the detectors disagree, the stretch is noise
BEFORE_S = 0.2  # s, the window ends this long before the beat: both detectors have decided it by framing time
AFTER_S = 0.45  # s of signal after a beat certainly seen when it is framed (refractory 0.2 s + look-ahead 0.27 s)
MIN_WINDOW_S = 2.0  # s, a shorter window (a stream's start) gives no verdict against the beat
BIN_S = 0.01  # s, the band-passed signal's power is kept in bins this long (for the noise ratio)
QRS_HALF_S = 0.05  # s either side of R: the QRS's band power
QUIET_AFTER_S = 0.25  # s after the previous R ...
QUIET_BEFORE_S = 0.1  # ... to this long before this R: the stretch between beats whose band power is noise
NOISE_INTERVALS = 2  # the intervals before a beat whose noise counts against it
NOISE_RATIO_POOR = 0.2  # between-beat RMS above this fraction of the QRS's (in-band SNR below 14 dB): poor
FLAT_S = 0.5  # s of identical samples: flat line or leads off
SATURATION_S = 0.08  # s of identical samples at the stream's extreme value: saturated
MARGIN_S = 0.5  # s, a flat or saturated run this close to a beat's R peak makes the beat poor

GOOD = "good"
UNKNOWN = "not yet known"  # a stream's first seconds: judged as good, left out of the quality figures


@dataclass(frozen=True)
class Verdict:
    """A beat's signal quality: `good`, or the reasons it is not, and the bSQI of its window."""

    good: bool
    reason: str  # "good", "not yet known" (the stream's first seconds), or e.g. "noise (bSQI 0.42)", "flat line"
    bsqi: float  # NaN while the window holds no beat at all


def quality_designs(fs: float) -> list[tuple[int, tuple[float, float], str]]:
    """The second detector's filter at rate `fs`: (order, band in Hz, kind), as `detector_designs`."""
    return [(ENERGY_ORDER, (ENERGY_BAND_HZ[0], min(ENERGY_BAND_HZ[1], 0.45 * fs)), "bandpass")]


class SecondOpinion:
    """A simple causal energy detector for one stream, different in kind from the main one (see above)."""

    def __init__(self, fs: float) -> None:
        self.fs = float(fs)
        ((order, band, kind),) = quality_designs(fs)
        self.filter = IirDesign(order, band, kind, fs)
        self.n_avg = max(1, round(ENERGY_WINDOW_S * fs))
        self.half = max(1, round(PEAK_HALF_WINDOW_S * fs))
        self.back = max(1, round(LOCATE_BACK_S * fs))
        self.relax = max(1, round(RELAX_S * fs))
        self.keep = 2 * self.half + self.back + self.n_avg + 1
        self.reset()

    def reset(self) -> None:
        self.seen = 0
        self.zi = np.zeros(self.filter.order)
        self.started = False
        self.bp_tail = np.zeros(self.keep)  # band-passed samples, newest last
        self.energy_tail = np.full(self.keep, -np.inf)  # moving-average energy
        self.sq_tail = np.zeros(self.n_avg)  # squared samples for the moving average
        self.next_candidate = 0  # first sample index not yet examined as a candidate
        self.heights: deque[float] = deque(maxlen=HEIGHT_HISTORY)
        self.largest = 0.0
        self.last_peak = -(10 ** 12)

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen, "zi": self.zi.tolist(), "started": self.started, "bp": self.bp_tail.tolist(),
                "energy": [v if math.isfinite(v) else None for v in self.energy_tail.tolist()],
                "sq": self.sq_tail.tolist(), "next": self.next_candidate, "heights": list(self.heights),
                "largest": self.largest, "last_peak": self.last_peak}

    def set_state(self, v: Mapping[str, Any]) -> None:
        self.seen, self.started = int(v["seen"]), bool(v["started"])
        self.zi = np.asarray(v["zi"], dtype=np.float64)
        self.bp_tail = np.asarray(v["bp"], dtype=np.float64)
        self.energy_tail = np.asarray([-np.inf if e is None else e for e in v["energy"]], dtype=np.float64)
        self.sq_tail = np.asarray(v["sq"], dtype=np.float64)
        self.next_candidate = int(v["next"])
        self.heights = deque((float(h) for h in v["heights"]), maxlen=HEIGHT_HISTORY)
        self.largest, self.last_peak = float(v["largest"]), int(v["last_peak"])

    def feed(self, x: np.ndarray) -> list[int]:
        """Samples of the stream, in order; returns the R peaks (absolute sample indices) decided now."""
        return [p for p, _ in self.feed_decided(x)]

    def feed_decided(self, x: np.ndarray) -> list[tuple[int, int]]:
        """As `feed`, each peak with the sample by which it was decided (its decision needs the signal up to
        there, whatever the blocks)."""
        n = len(x)
        self.last_bp = np.zeros(0)
        if n == 0:
            return []
        y, zf = self.filter.run(x[None, :], self.zi[None, :], np.array([self.started]))
        self.zi, self.started = zf[0], True
        bp = self.last_bp = y[0]  # the band-passed block, for the noise measure between beats
        sq = np.concatenate([self.sq_tail, bp * bp])
        # RMS of the n_avg samples ending at each new sample (RMS, not energy: a beat half as tall is half, not
        # a quarter, as high, so beats of varying amplitude stay above one fraction of the recent heights).
        # Each window summed on its own, so the values do not depend on where blocks begin.
        sums = np.lib.stride_tricks.sliding_window_view(sq, self.n_avg)[1:].sum(axis=1)
        energy = np.sqrt(np.maximum(sums / self.n_avg, 0.0))
        self.sq_tail = sq[-self.n_avg:]
        bp_all = np.concatenate([self.bp_tail, bp])
        en_all = np.concatenate([self.energy_tail, energy])
        origin = self.seen - self.keep  # absolute index of bp_all[0]
        self.seen += n
        # the largest RMS up to each sample (what a candidate's learning-phase reference may look at)
        largest = np.maximum.accumulate(np.concatenate([[self.largest], en_all[self.keep:]]))[1:]
        largest = np.concatenate([np.full(self.keep, self.largest), largest])
        peaks = []
        # A candidate i is examined once i + half has arrived; its neighbourhood is [i - half, i + half].
        last = self.seen - 1 - self.half
        first = max(self.next_candidate, origin + self.half)
        if last >= first:
            lo, hi = first - origin, last - origin + 1
            centre = en_all[lo:hi]
            # a peak is the largest value of its neighbourhood, so first a local maximum: test only those
            local = (centre >= en_all[lo - 1:hi - 1]) & (centre >= en_all[lo + 1:hi + 1]) & np.isfinite(centre)
            js = np.flatnonzero(local)
            if len(js):  # of those, the ones that are the largest of their whole neighbourhood
                windows = np.lib.stride_tricks.sliding_window_view(en_all, 2 * self.half + 1)[lo + js - self.half]
                js = js[windows.max(axis=1) <= centre[js]]
            for j in js.tolist():
                i = origin + lo + int(j)
                if i - self.last_peak <= self.half:
                    continue
                h = float(en_all[lo + j])
                if i < LEARN_S * self.fs and not self.heights:
                    continue  # filters settling and the scale unknown: learn only
                since = i - max(self.last_peak, round(LEARN_S * self.fs))
                ref = (np.mean(self.heights) if self.heights else float(largest[lo + j + self.half]))
                ref *= 0.5 ** (since // self.relax)
                if h > HEIGHT_FRACTION * ref:
                    k = lo + int(j)
                    seg = np.abs(bp_all[max(0, k - self.back):k + 1])
                    peaks.append((i - (len(seg) - 1 - int(np.argmax(seg))), i + self.half))
                    self.heights.append(h)
                    self.last_peak = i
            self.next_candidate = last + 1
        self.bp_tail, self.energy_tail = bp_all[-self.keep:], en_all[-self.keep:]
        self.largest = float(largest[-1])
        return peaks


class StreamQuality:
    """The quality checks of one stream: feed it every block and the main detector's new peaks; ask it for
    a beat's verdict when the beat is framed.

    A verdict looks only at what is certainly known when a beat can first be framed (its successor found
    and confirmed: at least the 0.2 s refractory period plus the 0.27 s look-ahead after its R peak), so it
    does not depend on how the stream was cut into blocks: the main detector's peaks up to the beat, the
    second detector's peaks decided by ``AFTER_S`` after it, and the signal up to ``AFTER_S`` after it."""

    def __init__(self, fs: float) -> None:
        self.fs = float(fs)
        self.second = SecondOpinion(fs)
        self.window = int(round(WINDOW_S * fs))
        self.short = int(round(SHORT_WINDOW_S * fs))
        self.bin_len = max(1, int(round(BIN_S * fs)))
        self.qrs_half = int(round(QRS_HALF_S * fs))
        self.quiet_after = int(round(QUIET_AFTER_S * fs))
        self.quiet_before = int(round(QUIET_BEFORE_S * fs))
        self.match = int(round(MATCH_S * fs))
        self.before = int(round(BEFORE_S * fs))
        self.after = int(round(AFTER_S * fs))
        self.min_window = int(round(MIN_WINDOW_S * fs))
        self.flat = max(2, int(round(FLAT_S * fs)))
        self.saturation = max(2, int(round(SATURATION_S * fs)))
        self.margin = int(round(MARGIN_S * fs))
        self.reset()

    def reset(self) -> None:
        self.second.reset()
        self.seen = 0
        self.main: deque[int] = deque()
        self.other: deque[tuple[int, int]] = deque()  # the second detector's (peak, decided by)
        self.run_value = float("nan")
        self.run_start = 0
        self.run_extreme = False
        self.lo, self.hi = float("inf"), float("-inf")
        self.runs: deque[tuple[int, int, bool]] = deque()  # (start, end, at an extreme) of long runs
        self.bins: np.ndarray = np.zeros(0)  # sum of the squared 8-20 Hz signal per BIN_S, from bin `bin0`
        self.bin0 = 0

    def state(self) -> dict[str, Any]:
        return {"second": self.second.state(), "seen": self.seen, "main": list(self.main),
                "other": [list(o) for o in self.other],
                "run_value": None if math.isnan(self.run_value) else self.run_value, "run_start": self.run_start,
                "run_extreme": self.run_extreme, "lo": None if math.isinf(self.lo) else self.lo,
                "hi": None if math.isinf(self.hi) else self.hi, "runs": [list(b) for b in self.runs],
                "bins": self.bins.tolist(), "bin0": self.bin0}

    def set_state(self, v: Mapping[str, Any]) -> None:
        self.second.set_state(v["second"])
        self.seen = int(v["seen"])
        self.main = deque(int(p) for p in v["main"])
        self.other = deque((int(p), int(d)) for p, d in v["other"])
        self.run_value = float("nan") if v["run_value"] is None else float(v["run_value"])
        self.run_start, self.run_extreme = int(v["run_start"]), bool(v["run_extreme"])
        self.lo = float("inf") if v["lo"] is None else float(v["lo"])
        self.hi = float("-inf") if v["hi"] is None else float(v["hi"])
        self.runs = deque((int(a), int(b), bool(e)) for a, b, e in v["runs"])
        self.bins, self.bin0 = np.asarray(v["bins"], dtype=np.float64), int(v["bin0"])

    def feed(self, x: np.ndarray, main_peaks: list[int]) -> None:
        """A block of samples and the R peaks the main detector decided on it."""
        self.main.extend(main_peaks)
        self.other.extend(self.second.feed_decided(x))
        self._band_power(self.second.last_bp)
        self._runs(x)
        self.seen += len(x)

    def _band_power(self, bp: np.ndarray) -> None:
        """Add the block's squared band-passed samples to their bins (bins by absolute sample index)."""
        if len(bp) == 0:
            return
        first = self.seen // self.bin_len
        sums = np.bincount((self.seen + np.arange(len(bp))) // self.bin_len - first, weights=bp * bp)
        if not len(self.bins):
            self.bins, self.bin0 = sums, first
            return
        offset = first - self.bin0  # the first bin may be the last one so far, partly filled
        grown = np.zeros(max(len(self.bins), offset + len(sums)))
        grown[:len(self.bins)] = self.bins
        grown[offset:offset + len(sums)] += sums
        self.bins = grown

    def _band_rms(self, a: int, b: int) -> float:
        """RMS of the band-passed signal over whole bins covering samples [a, b)."""
        lo, hi = max(a // self.bin_len - self.bin0, 0), min(b // self.bin_len - self.bin0, len(self.bins))
        if hi <= lo:
            return float("nan")
        return math.sqrt(float(self.bins[lo:hi].sum()) / ((hi - lo) * self.bin_len))

    def _forget_before(self, sample: int, band_sample: int) -> None:
        """Drop peaks and runs older than `sample`, band power older than `band_sample`: what no later verdict
        needs (beats are judged in time order)."""
        while self.main and self.main[0] < sample:
            self.main.popleft()
        while self.other and self.other[0][0] < sample:
            self.other.popleft()
        while self.runs and self.runs[0][1] < sample:
            self.runs.popleft()
        drop = min(band_sample // self.bin_len - 1 - self.bin0, len(self.bins))
        if drop > 0:
            self.bins, self.bin0 = self.bins[drop:], self.bin0 + drop

    def _runs(self, x: np.ndarray) -> None:
        """Runs of identical samples, continued across blocks; those of at least SATURATION_S are kept with
        whether their value was an extreme of the stream when they began. Only the runs that can matter are
        looked at one by one: the first (it may continue the previous block's), the long ones, the last."""
        n = len(x)
        if n == 0:
            return
        same = x[1:] == x[:-1]
        if x[0] != self.run_value and int(same.sum()) + 1 < min(self.flat, self.saturation):
            # no run in this block can be long enough to matter: only the last one's state carries on
            lo, hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
            k = n - 1 - int(np.argmin(same[::-1])) if n > 1 and not same.all() else 0  # the last run's start
            before = x[:k]
            lo_k = min(self.lo, float(before.min())) if k else self.lo
            hi_k = max(self.hi, float(before.max())) if k else self.hi
            self.run_value, self.run_start = float(x[k]), self.seen + k
            self.run_extreme = lo_k < hi_k and not lo_k < self.run_value < hi_k
            self.lo, self.hi = lo, hi
            return
        change = np.flatnonzero(~same) + 1  # indices (in x) where a new run starts
        starts, ends = np.concatenate([[0], change]), np.concatenate([change, [n]])
        shortest = min(self.flat, self.saturation)
        last = len(starts) - 1
        picked = {0, last, *np.flatnonzero(ends - starts >= min(shortest, n)).tolist()}
        low, high = np.minimum.accumulate(x), np.maximum.accumulate(x)  # extremes of the block up to each sample
        for k in sorted(picked):
            a, b = int(starts[k]), int(ends[k])
            value = float(x[a])
            if not (k == 0 and value == self.run_value):  # a new run begins at a
                lo = min(self.lo, float(low[a - 1])) if a else self.lo
                hi = max(self.hi, float(high[a - 1])) if a else self.hi
                self.run_value, self.run_start = value, self.seen + a
                self.run_extreme = lo < hi and not lo < value < hi
            self._keep(self.run_start, self.seen + b, self.run_extreme)
            if k != last:
                self.run_value = float("nan")  # ended inside the block
        self.lo, self.hi = min(self.lo, float(low[-1])), max(self.hi, float(high[-1]))

    def _keep(self, start: int, end: int, extreme: bool) -> None:
        if end - start < min(self.flat, self.saturation):
            return
        if self.runs and self.runs[-1][0] == start:  # the same run, longer now
            self.runs[-1] = (start, end, extreme)
        else:
            self.runs.append((start, end, extreme))

    def verdict(self, r_sample: int) -> Verdict:
        """The verdict for a beat with its R peak at `r_sample` (beats in time order)."""
        self._forget_before(r_sample - self.before - self.window - self.match - self.margin,
                            r_sample - self.short - self.qrs_half)
        for start, end, extreme in self.runs:
            end = min(end, r_sample + self.after)  # known when the beat is framed, whatever the blocks
            if end < r_sample - self.margin or start > r_sample + self.margin:
                continue
            if end - start >= self.flat:
                return Verdict(False, "flat line", float("nan"))
            if extreme and end - start >= self.saturation:
                return Verdict(False, "saturated", float("nan"))
        start = int(round(LEARN_S * self.fs))  # the second detector's first peaks come after its learning
        if r_sample - self.before - start < self.min_window:  # too little signal yet: benefit of the doubt
            return Verdict(True, UNKNOWN, float("nan"))
        # the long window, ending before the beat; the short one, up to and including the beat itself, with
        # only the second detector's peaks decided by the time the beat can first be framed
        stop = r_sample - self.before
        long = self._bsqi(max(stop - self.window, start), stop, r_sample + self.after)
        short = self._bsqi(max(r_sample + self.match + 1 - self.short, start), r_sample + self.match + 1,
                           r_sample + self.after)
        score = min(long, short)
        if not score >= BSQI_GOOD:
            return Verdict(False, f"noise (bSQI {score:.2f})", score)
        ratio = self._noise_ratio(r_sample)
        if ratio > NOISE_RATIO_POOR:
            return Verdict(False, f"noise ({ratio:.2f} of QRS)", score)
        return Verdict(True, GOOD, score)

    def _noise_ratio(self, r_sample: int) -> float:
        """RMS of the 8-20 Hz signal between beats (QRS complexes left out) over the largest QRS RMS of the
        beats in the short window, the worse of the last NOISE_INTERVALS intervals (a stretch of noise, not
        one interval: a false beat in noise leaves too short a gap to measure): near 0 on a clean ECG (P and
        T waves have little there), high when noise in the QRS band hides the beats' shape even though both
        detectors still find them. The largest QRS, not this beat's: a wide ectopic beat has little 8-20 Hz
        power and must not look like noise. 0 when unmeasurable."""
        recent = [p for p in self.main if r_sample - self.short < p <= r_sample]
        if len(recent) < 2:
            return 0.0
        qrs = max(self._band_rms(p - self.qrs_half, p + self.qrs_half) for p in recent)
        if not qrs > 0:
            return 0.0
        worst = 0.0
        for prev, this in list(zip(recent[:-1], recent[1:]))[-NOISE_INTERVALS:]:
            a, b = prev + self.quiet_after, this - self.quiet_before
            if b - a >= 2 * self.bin_len:  # else a very premature beat: no quiet stretch to measure
                between = self._band_rms(a, b)
                worst = max(worst, between / qrs if between == between else 0.0)
        return worst

    def _bsqi(self, lo: int, stop: int, known_by: int) -> float:
        """bSQI over [lo, stop), counting of the second detector's peaks only those decided by `known_by`.
        Plain lists: a window holds a few dozen peaks, too few for numpy to pay."""
        main = [p for p in self.main if lo <= p < stop]
        other = [p for p, d in self.other if lo - self.match <= p < stop + self.match and d <= known_by]
        return bsqi_window(main, other, self.match, lo, stop)


def bsqi_window(main: Sequence[int], other: Sequence[int], match: int, lo: int, stop: int) -> float:
    """bSQI over [lo, stop): main peaks inside, matched against the other detector's within `match` (which may
    lie just outside, so a beat at the edge still finds its partner); the other's count is of those inside.
    Both sorted."""
    n_other = sum(1 for p in other if lo <= p < stop)
    matched, j, n = 0, 0, len(other)
    for p in main:
        while j < n and other[j] < p - match:
            j += 1
        if j < n and abs(int(other[j]) - int(p)) <= match:
            matched += 1
            j += 1
    total = len(main) + n_other - matched
    return matched / total if total > 0 else float("nan")
