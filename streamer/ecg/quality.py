"""Signal quality of ECG streams, computed online for many streams at once: a verdict for every beat before
it may raise an alarm.

Six checks, each causal, each with its state carried across blocks:

- **bSQI** (Li, Clifford et al. 2008, "Robust heart rate estimation from multiple asynchronous noisy sources
  using signal quality indices and a Kalman filter"): the agreement of two independent QRS detectors,
  matched / (n1 + n2 - matched) with a ``MATCH_S`` tolerance, over the ``WINDOW_S`` seconds before the beat
  and over the last ``SHORT_WINDOW_S`` of them, or the last ``SHORT_BEATS`` beats if that is longer (so
  noise is caught within a few beats); the lower of the two counts. Both windows end ``BEFORE_S`` before
  the beat, where both detectors have decided every beat by the time this one can be framed. The first
  detector is the stream's own (`streamer.ecg.detector`); the second is `streamer.ecg.second_opinion`,
  deliberately different. On clean ECG both find the same beats; in noise, one fires on artefacts the
  other rejects, and the ratio drops. A beat is poor when it is below ``BSQI_GOOD`` (0.8, the conventional
  cut in the bSQI literature; not tuned on the shared records).
- **in-band noise**: the RMS of the 8-20 Hz signal between the last beats (QRS complexes left out) against
  the largest recent QRS's: poor above ``NOISE_RATIO_POOR`` (in-band SNR below 14 dB), where noise in the
  QRS band hides the beats' shape even though both detectors still find them; and against the beat's own
  QRS: poor above ``OWN_RATIO_POOR`` (the beat stands less than 8 dB above the noise: a burst of noise that
  both detectors took for a beat). Both cuts were chosen on the development half of `bench_noise.py`.
- **flat line / leads off**: ``FLAT_S`` or more of identical consecutive samples.
- **saturation**: ``SATURATION_S`` or more of identical consecutive samples at the largest or smallest
  value the stream has had (an amplifier or converter at its rail).
- **signal missing**: samples that never came (NaN in a recording: a gap), within ``MARGIN_S`` of the beat.
  The engine holds a gap at the last value and re-primes its filters at both ends, so through the gap they
  rest (output 0) and start afresh where the signal resumes; it re-primes them too where the signal resumes
  after a flat line or a saturated run (`track_runs` tells where), so the step back is not taken for a beat.

- **unconfirmed beat**: the second detector found no beat within ``MATCH_S`` of this one (a single false
  detection in noise, which a window's bSQI may still pass).

When. A beat's verdict depends only on the signal up to about 0.55 s after its R peak (when the second
detector has decided every peak that could confirm it). It is taken as soon as that much has been fed and
kept until the beat is framed (a beat framed sooner, after a very short RR, waits for it), so it is the same
for any partition of the stream into blocks, and a pool of streams gives each stream what it would get
alone.

Cost. The per-sample work (the second detector's filter and feature, the running sum of the band's power,
runs of identical samples) is array operations over (streams, samples); Python runs per candidate peak,
per verdict, and per stream only where a long run of identical samples may be (rare on real ECG).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.core.rows import Rows
from streamer.ecg.detector import LOOKAHEAD_S, framing_delay
from streamer.ecg.second_opinion import LEARN_S, LOCATE_BACK_S, PEAK_HALF_WINDOW_S, SecondOpinionBank

WINDOW_S = 10.0  # s, bSQI window (Li et al. 2008)
SHORT_WINDOW_S = 4.0  # s, the last part of it: noise is caught within a few beats ...
SHORT_BEATS = 5  # ... and at least this many of the main detector's beats
MATCH_S = 0.150  # s, two detections of one beat
BSQI_GOOD = 0.8  # below: the detectors disagree, the stretch is noise
BEFORE_S = 0.2  # s, the windows end this long before the beat: both detectors have decided it by framing time
MIN_WINDOW_S = 2.0  # s, a shorter window (a stream's start) gives no verdict against the beat
QRS_HALF_S = 0.05  # s either side of R: the QRS's band power
QUIET_AFTER_S = 0.25  # s after the previous R ...
QUIET_BEFORE_S = 0.1  # ... to this long before this R: the stretch between beats whose band power is noise
MIN_QUIET_S = 0.02  # s, a shorter stretch (a very premature beat) is not measured
NOISE_INTERVALS = 2  # the intervals before a beat whose noise counts against it
NOISE_RATIO_POOR = 0.2  # between-beat RMS above this fraction of the QRS's (in-band SNR below 14 dB): poor
OWN_RATIO_POOR = 0.4  # ... or above this fraction of the beat's own QRS RMS (it stands less than 8 dB above)
FLAT_S = 0.5  # s of identical samples: flat line or leads off
SATURATION_S = 0.08  # s of identical samples at the stream's extreme value: saturated
MARGIN_S = 0.5  # s, a flat or saturated run this close to a beat's R peak makes the beat poor

GOOD = "good"
UNKNOWN = "not yet known"  # a stream's first seconds: judged as good, left out of the quality figures
NOISE, FLAT, SATURATED, MISSING = "noise", "flat line", "saturated", "signal missing"


@dataclass(frozen=True)
class Verdict:
    """A beat's signal quality: its `kind` (good, not yet known, noise, flat line, saturated), the reason as
    shown (e.g. "noise (bSQI 0.42)"), and the bSQI of its window (NaN while the window holds no beat)."""

    good: bool
    reason: str
    bsqi: float
    kind: str = GOOD


class _Slot:
    """One stream's Python-side state: peaks, long runs, verdicts waiting for their beat to be framed."""

    __slots__ = ("main", "other", "band", "marks", "pending", "waiting", "verdicts", "runs", "gaps")

    def __init__(self) -> None:
        self.main: list[int] = []  # the main detector's R peaks a later verdict may still read
        self.other: list[tuple[int, int]] = []  # the second detector's (R peak, decided by sample)
        self.band: deque[tuple[int, float, float]] = deque()  # judged peaks' (R, QRS RMS, RMS before it)
        # the band's power summed over samples [0, t), kept at the few t the verdicts read (around each R peak),
        # taken as the signal passes them: t -> (t, or the stream's end if it came first; the sum)
        self.marks: dict[int, tuple[int, float]] = {}
        self.pending: list[int] = []  # marks asked for, not yet passed
        self.waiting: deque[int] = deque()  # main peaks whose verdict is not taken yet
        self.verdicts: deque[tuple[int, Verdict]] = deque()  # taken, not yet asked for
        self.runs: list[tuple[int, int, bool]] = []  # (start, end, at an extreme) of long runs
        self.gaps: list[tuple[int, int]] = []  # (start, end) of missing samples

    def state(self) -> dict[str, Any]:
        return {"main": list(self.main), "other": [list(o) for o in self.other],
                "band": [[p, *(v if v == v else None for v in rest)] for p, *rest in self.band],
                "marks": [[t, e, c] for t, (e, c) in self.marks.items()], "pending": list(self.pending),
                "waiting": list(self.waiting),
                "verdicts": [[r, v.good, v.reason, v.bsqi if v.bsqi == v.bsqi else None, v.kind]
                             for r, v in self.verdicts],
                "runs": [list(b) for b in self.runs], "gaps": [list(g) for g in self.gaps]}

    def set_state(self, v: Mapping[str, Any]) -> None:
        self.main = [int(p) for p in v["main"]]
        self.other = [(int(p), int(d)) for p, d in v["other"]]

        def num(x: Any) -> float:
            return math.nan if x is None else float(x)

        self.band = deque((int(p), num(qrs), num(quiet)) for p, qrs, quiet in v["band"])
        self.marks = {int(t): (int(e), float(c)) for t, e, c in v["marks"]}
        self.pending = [int(t) for t in v["pending"]]
        self.waiting = deque(int(p) for p in v["waiting"])
        self.verdicts = deque((int(r), Verdict(bool(g), str(why), math.nan if b is None else float(b), str(kind)))
                              for r, g, why, b, kind in v["verdicts"])
        self.runs = [(int(a), int(b), bool(e)) for a, b, e in v["runs"]]
        self.gaps = [(int(a), int(b)) for a, b in v.get("gaps", [])]


class QualityBank:
    """The quality checks for many streams of one rate. Streams are slots, as in `DetectorBank`.

    `feed(slots, blocks, peaks)` takes each slot's block and the main detector's new R peaks on it;
    `verdict(slot, r)` gives the verdict of the beat at R peak `r` once `ready(slot, r)` (beats asked in time
    order); `flush(slots, peaks)` at end of stream takes the verdicts still waiting. The engine calls
    `track_runs` on a whole block and `feed_signal` on its pieces, re-priming between them (`reprime`) where
    the signal resumes; `mark_gap` records missing samples."""

    def __init__(self, fs: float) -> None:
        self.fs = float(fs)

        def n(seconds: float) -> int:
            return int(round(seconds * self.fs))

        self.window, self.short, self.match, self.before = n(WINDOW_S), n(SHORT_WINDOW_S), n(MATCH_S), n(BEFORE_S)
        self.min_window, self.qrs_half, self.margin = n(MIN_WINDOW_S), n(QRS_HALF_S), n(MARGIN_S)
        self.quiet_after, self.quiet_before, self.min_quiet = n(QUIET_AFTER_S), n(QUIET_BEFORE_S), n(MIN_QUIET_S)
        self.flat, self.saturation = max(2, n(FLAT_S)), max(2, n(SATURATION_S))
        self.learn = n(LEARN_S)  # the second detector's first peaks come after its learning
        # the verdict waits until the second detector has decided every peak that could be this beat's partner
        partner = self.match + max(1, round(LOCATE_BACK_S * self.fs)) + max(1, round(PEAK_HALF_WINDOW_S * self.fs)) + 1
        self.after = max(framing_delay(self.fs), partner)  # (the second detector's own rounding, second_opinion.py)
        # the band's running power sum is read back to the marks of a peak just decided (up to the detector's
        # look-ahead after it), the farthest QUIET_BEFORE_S or QRS_HALF_S before it
        lookahead = int(math.floor(LOOKAHEAD_S * self.fs))
        self.second = SecondOpinionBank(self.fs, history=lookahead + max(self.qrs_half, self.quiet_before) + 4)
        self.rows = Rows(
            run_value=((), np.float64, np.nan),  # the run of identical samples going on at the block's end
            run_start=((), np.int64, 0),
            run_extreme=((), bool, False),  # its value was an extreme of the stream when it began
            lo=((), np.float64, np.inf),  # the stream's extremes so far
            hi=((), np.float64, -np.inf),
        )
        self.slots: dict[int, _Slot] = {}

    # --- streams -------------------------------------------------------------------------------------------
    def clear(self, slot: int) -> None:
        self.second.clear(slot)
        self.rows.clear(slot)
        self.slots[slot] = _Slot()

    def release(self, slot: int) -> None:
        self.second.release(slot)
        self.slots.pop(slot, None)

    def state(self, slot: int) -> dict[str, Any]:
        return {"second": self.second.state(slot), "rows": self.rows.row(slot), "slot": self.slots[slot].state()}

    def set_state(self, slot: int, v: Mapping[str, Any]) -> None:
        self.clear(slot)
        self.second.set_state(slot, v["second"])
        self.rows.set_row(slot, v["rows"])
        self.slots[slot].set_state(v["slot"])

    # --- data ----------------------------------------------------------------------------------------------
    def feed(self, slots: Sequence[int], blocks: np.ndarray, peaks: Mapping[int, Sequence[int]]) -> None:
        """Blocks (n, L) of finite samples for `slots`, and {slot: the main detector's R peaks decided on
        them}: `track_runs` then `feed_signal`."""
        self.track_runs(slots, blocks)
        self.feed_signal(slots, blocks, peaks)

    def track_runs(self, slots: Sequence[int], blocks: np.ndarray) -> dict[int, list[int]]:
        """Follow the runs of identical samples of the blocks `feed_signal` is about to get (it may get them in
        pieces). Returns {slot: block columns where the signal resumes after a flat line or a saturated run}:
        where the engine re-primes its filters, so the step back to the signal is not taken for a beat."""
        s = np.asarray(slots, dtype=np.int64)
        x = np.asarray(blocks, dtype=np.float64)
        if x.shape[1] == 0:
            return {}
        return self._runs(s, x, self.second.rows["seen"][s])

    def feed_signal(self, slots: Sequence[int], blocks: np.ndarray, peaks: Mapping[int, Sequence[int]]) -> None:
        """The samples and the main detector's peaks (runs already tracked by `track_runs`)."""
        s = np.asarray(slots, dtype=np.int64)
        x = np.asarray(blocks, dtype=np.float64)
        seen = self.second.rows["seen"][s].copy()
        self._add_peaks(peaks)
        tick = self.second.feed(s, x)
        for slot, new in tick.peaks.items():
            self.slots[slot].other.extend(new)
        self._take_marks(s, tick.cum, tick.origin, seen + x.shape[1], final=False)
        self._take_verdicts(s, seen + x.shape[1], final=False)

    def mark_gap(self, slot: int, start: int, end: int) -> None:
        """Samples [start, end) of the stream were missing (NaN): beats near them are poor."""
        gaps = self.slots[slot].gaps
        if gaps and gaps[-1][1] == start:  # a gap going on across blocks
            gaps[-1] = (gaps[-1][0], end)
        else:
            gaps.append((start, end))

    def reprime(self, slot: int) -> None:
        """The second detector's filter starts afresh at the next sample (after a gap or a flat line)."""
        self.second.reprime(slot)

    def flush(self, slots: Sequence[int], peaks: Mapping[int, Sequence[int]]) -> None:
        """End of stream: the last peaks' verdicts from the signal there is."""
        s = np.asarray(slots, dtype=np.int64)
        self._add_peaks(peaks)
        tick = self.second.feed(s, np.zeros((len(s), 0)))
        seen = self.second.rows["seen"][s]
        self._take_marks(s, tick.cum, tick.origin, seen, final=True)
        self._take_verdicts(s, seen, final=True)

    def ready(self, slot: int, r_sample: int) -> bool:
        """Whether the verdict of the beat at `r_sample` has been taken (its signal has arrived)."""
        q = self.slots[slot].verdicts
        return bool(q) and q[-1][0] >= r_sample

    def verdict(self, slot: int, r_sample: int, span: tuple[int, int] | None = None) -> Verdict:
        """The verdict of the beat at `r_sample` (taken when its signal arrived; verdicts of beats never
        framed are passed over). `span`: from the beat before to the beat after, as framed: a gap in it makes
        the beat poor, its RR intervals measure the gap."""
        q = self.slots[slot]
        while q.verdicts and q.verdicts[0][0] < r_sample:
            q.verdicts.popleft()
        if not q.verdicts or q.verdicts[0][0] != r_sample:
            raise KeyError(f"no quality verdict for R peak {r_sample} (not a peak of this stream, or asked early)")
        verdict = q.verdicts.popleft()[1]
        # gaps are forgotten here, not when verdicts are taken: those run ahead of the framing
        first = r_sample - self.margin if span is None else min(span[0], r_sample - self.margin)
        if q.gaps and q.gaps[0][1] < first:
            q.gaps = [g for g in q.gaps if g[1] >= first]
        if span is not None and verdict.kind != MISSING and any(a < span[1] and b > span[0] for a, b in q.gaps):
            return Verdict(False, MISSING, math.nan, MISSING)
        return verdict

    # --- internals -----------------------------------------------------------------------------------------
    def _add_peaks(self, peaks: Mapping[int, Sequence[int]]) -> None:
        for slot, new in peaks.items():
            q = self.slots[slot]
            for p in new:
                p = int(p)
                q.main.append(p)
                q.waiting.append(p)
                q.pending += [p - self.qrs_half, p + self.qrs_half, p - self.quiet_before, p + self.quiet_after]

    def _take_marks(self, s: np.ndarray, cum: np.ndarray, origin: np.ndarray, seen: np.ndarray,
                    final: bool) -> None:
        """Read the band's running power sum at the marks the signal has now passed (all of them at the end
        of the stream, where a mark past it takes the sum up to the end), in one array read."""
        rows, cols, where = [], [], []
        for row, slot in enumerate(s.tolist()):
            q = self.slots[slot]
            if not q.pending:
                continue
            upto, first = int(seen[row]), int(origin[row])
            later = []
            for t in q.pending:
                if t <= upto or final:
                    e = min(t, upto)
                    rows.append(row)
                    cols.append(max(e - 1 - first, 0))  # the sum over [0, e) is the cumulative sum at sample e - 1
                    where.append((q, t, e))
                else:
                    later.append(t)
            q.pending = later
        if not rows:
            return
        values = cum[np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)].tolist()
        for (q, t, e), c in zip(where, values):
            q.marks[t] = (e, c if e > 0 else 0.0)

    def _take_verdicts(self, s: np.ndarray, seen: np.ndarray, final: bool) -> None:
        """Take the verdicts of the waiting beats whose signal up to `after` past the R has arrived (all of
        them at the end of the stream), each with its band power (its QRS, the quiet stretch before it) from
        the marks."""
        for row, slot in enumerate(s.tolist()):
            q = self.slots[slot]
            if not q.waiting:
                continue
            upto = int(seen[row])
            while q.waiting and (final or q.waiting[0] + self.after <= upto):
                r = q.waiting.popleft()
                i = bisect_left(q.main, r)
                prev = q.main[i - 1] if i else -1
                qrs = self._rms(q, r - self.qrs_half, r + self.qrs_half)
                a, b = prev + self.quiet_after, r - self.quiet_before
                # a very premature beat leaves no quiet stretch to measure; a peak before the short window is
                # not read (nor its marks kept)
                quiet = self._rms(q, a, b) if prev > r - self.short and b - a >= self.min_quiet else math.nan
                q.band.append((r, qrs, quiet))
                q.verdicts.append((r, self._judge(q, r, upto)))

    @staticmethod
    def _rms(q: _Slot, a: int, b: int) -> float:
        """RMS of the band-passed signal over [a, b) (up to the stream's end): a difference of running sums."""
        (ea, ca), (eb, cb) = q.marks.get(a, (a, math.nan)), q.marks.get(b, (b, math.nan))
        return math.sqrt(max(cb - ca, 0.0) / (eb - ea)) if eb > ea and cb == cb and ca == ca else math.nan

    def _judge(self, q: _Slot, r: int, fed: int) -> Verdict:
        known = r + self.after  # what the verdict may look at: samples before this, peaks decided before it
        self._forget_before(q, r - self.before - self.window - self.match - self.margin)
        for start, end in q.gaps:
            if start < known and end >= r - self.margin and start <= r + self.margin:
                return Verdict(False, MISSING, math.nan, MISSING)
        for start, end, extreme in q.runs:
            end = min(end, known)
            if end < r - self.margin or start > r + self.margin:
                continue
            if extreme and end - start >= self.saturation:
                return Verdict(False, SATURATED, math.nan, SATURATED)
            if end - start >= self.flat:
                return Verdict(False, FLAT, math.nan, FLAT)
        if r - self.before - self.learn < self.min_window:  # too little signal yet: benefit of the doubt
            return Verdict(True, UNKNOWN, math.nan, UNKNOWN)
        stop = r - self.before
        # the short window holds at least SHORT_BEATS beats, so that one beat missed or added by one detector
        # alone (it happens on clean ECG) leaves it at 0.8
        i = bisect_left(q.main, stop)
        lo_short = min(stop - self.short, q.main[i - SHORT_BEATS] if i >= SHORT_BEATS else stop - self.window)
        score = self._bsqi(q, max(stop - self.window, self.learn), max(lo_short, self.learn), stop, known)
        if not score >= BSQI_GOOD:
            return Verdict(False, f"{NOISE} (bSQI {score:.2f})", score, NOISE)
        i = bisect_left(q.other, (r - self.match, -1))
        if not any(p <= r + self.match and d < known for p, d in q.other[i:i + 3]):
            return Verdict(False, f"{NOISE} (beat unconfirmed)", score, NOISE)
        ratio, own = self._noise_ratio(q, r)
        if ratio > NOISE_RATIO_POOR:
            return Verdict(False, f"{NOISE} ({ratio:.2f} of QRS)", score, NOISE)
        if own > OWN_RATIO_POOR:
            return Verdict(False, f"{NOISE} ({own:.2f} of the beat)", score, NOISE)
        return Verdict(True, GOOD, score, GOOD)

    def _forget_before(self, q: _Slot, sample: int) -> None:
        """Drop peaks and runs older than `sample`: no later verdict reads them (beats come in time order).
        (Gaps are dropped by `verdict`.)"""
        if q.main and q.main[0] < sample:
            del q.main[:bisect_left(q.main, sample)]
        if q.other and q.other[0][0] < sample:
            del q.other[:bisect_left(q.other, (sample, -1))]
        while q.band and q.band[0][0] < sample:
            q.band.popleft()
        if len(q.marks) > 64:  # marks of peaks no verdict reads any more
            keep = sample - self.quiet_after - self.short
            q.marks = {t: m for t, m in q.marks.items() if t >= keep}
        if q.runs and q.runs[0][1] < sample:
            q.runs = [b for b in q.runs if b[1] >= sample]

    def _bsqi(self, q: _Slot, lo: int, lo_short: int, stop: int, known: int) -> float:
        """The lower bSQI of [lo, stop) and [lo_short, stop), counting of the second detector's peaks only
        those decided before `known`: one matching over the long window, counted over both."""
        main = q.main[bisect_left(q.main, lo):bisect_left(q.main, stop)]
        a, b = bisect_left(q.other, (lo - self.match, -1)), bisect_left(q.other, (stop + self.match, -1))
        other = [p for p, d in q.other[a:b] if d < known]
        long, short = bsqi_window(main, other, self.match, lo, stop, lo_short)
        return min(long, short)

    def _noise_ratio(self, q: _Slot, r: int) -> tuple[float, float]:
        """RMS of the 8-20 Hz signal between beats (QRS complexes left out), the worse of the last
        NOISE_INTERVALS intervals (a stretch of noise, not one interval: a false beat in noise leaves too short
        a gap to measure), over the largest QRS RMS of the beats in the short window, and over this beat's
        own. Near 0 on a clean ECG (P and T waves have little there); against the largest QRS it is high when
        noise in the QRS band hides the beats' shape even though both detectors still find them (the largest,
        not this beat's: a wide ectopic beat has little 8-20 Hz power and must not look like noise); against
        the beat's own, when the beat is no more than a burst of the noise (both detectors may fire on one).
        0 when unmeasurable."""
        recent = []
        for entry in reversed(q.band):
            if entry[0] <= r - self.short:
                break
            recent.append(entry)
        if len(recent) < 2:
            return 0.0, 0.0
        qrs = max((e[1] for e in recent if e[1] == e[1]), default=0.0)
        if not qrs > 0:
            return 0.0, 0.0
        quiet = max((e[2] for e in recent[:-1][:NOISE_INTERVALS] if e[2] == e[2]), default=0.0)  # newest first
        own = recent[0][1] if recent[0][0] == r else math.nan
        return quiet / qrs, (quiet / own if own > 0 else 0.0)

    def _runs(self, s: np.ndarray, x: np.ndarray, seen: np.ndarray) -> dict[int, list[int]]:
        """Runs of identical samples, continued across blocks. Only a run that reaches SATURATION_S (or FLAT_S)
        matters; it is kept with whether its value was an extreme of the stream when it began. All streams'
        runs are measured at once; a stream whose block may hold such a run is then followed run by run."""
        r = self.rows
        n, length = x.shape
        starts = np.ones((n, length), dtype=bool)
        np.not_equal(x[:, 1:], x[:, :-1], out=starts[:, 1:])  # where a new run starts (column 0: maybe)
        at = np.flatnonzero(starts)
        lengths = np.diff(np.append(at, n * length))
        first = np.searchsorted(at, np.arange(n) * length)  # each row's first run ...
        last = np.append(first[1:], len(at)) - 1  # ... and last one
        value, start0 = r["run_value"][s], r["run_start"][s]
        lo0, hi0, extreme0 = r["lo"][s], r["hi"][s], r["run_extreme"][s]
        cont = x[:, 0] == value  # the run going on continues into the block
        carried = np.where(cont, seen - start0, 0)
        longest = np.maximum.reduceat(lengths, first)
        shortest = min(self.flat, self.saturation)
        slow = (longest >= shortest) | (carried + lengths[first] >= shortest)
        # the rest: only the last run's state carries on (a new run begins at column k unless it is column 0
        # continuing the previous block's run)
        low, high = np.minimum.accumulate(x, axis=1), np.maximum.accumulate(x, axis=1)
        rows = np.arange(n)
        k = at[last] - rows * length
        before = np.maximum(k - 1, 0)
        lo_k = np.where(k > 0, np.minimum(lo0, low[rows, before]), lo0)
        hi_k = np.where(k > 0, np.maximum(hi0, high[rows, before]), hi0)
        v = x[rows, k]
        new = (k > 0) | ~cont
        r["run_value"][s] = np.where(new, v, value)
        r["run_start"][s] = np.where(new, seen + k, start0)
        r["run_extreme"][s] = np.where(new, (lo_k < hi_k) & ~((lo_k < v) & (v < hi_k)), extreme0)
        r["lo"][s], r["hi"][s] = np.minimum(lo0, low[:, -1]), np.maximum(hi0, high[:, -1])
        resume = {}
        for row in np.flatnonzero(slow).tolist():
            cols = self._runs_one(int(s[row]), x[row], int(seen[row]), float(value[row]), int(start0[row]),
                                  bool(extreme0[row]), float(lo0[row]), float(hi0[row]))
            if cols:
                resume[int(s[row])] = cols
        return resume

    def _runs_one(self, slot: int, x: np.ndarray, seen: int, value: float, start: int, extreme: bool, lo: float,
                  hi: float) -> list[int]:
        """One stream's block, run by run where it matters: the first (it may continue the previous block's),
        the long ones, the last. Starts from the state before the block and leaves the state after it; returns
        the columns where a flat line or a saturated run ends."""
        n = len(x)
        change = np.flatnonzero(x[1:] != x[:-1]) + 1
        starts, ends = np.concatenate([[0], change]), np.concatenate([change, [n]])
        shortest = min(self.flat, self.saturation)
        last = len(starts) - 1
        picked = {0, last, *np.flatnonzero(ends - starts >= min(shortest, n)).tolist()}
        low, high = np.minimum.accumulate(x), np.maximum.accumulate(x)
        runs = self.slots[slot].runs
        resume = []
        for k in sorted(picked):
            a, b = int(starts[k]), int(ends[k])
            v = float(x[a])
            if not (k == 0 and v == value):  # a new run begins at a
                lo_a = min(lo, float(low[a - 1])) if a else lo
                hi_a = max(hi, float(high[a - 1])) if a else hi
                value, start, extreme = v, seen + a, lo_a < hi_a and not lo_a < v < hi_a
            length = seen + b - start
            if length >= shortest:
                if runs and runs[-1][0] == start:  # the same run, longer now
                    runs[-1] = (start, seen + b, extreme)
                else:
                    runs.append((start, seen + b, extreme))
                if b < n and (length >= self.flat or (extreme and length >= self.saturation)):
                    resume.append(b)
            if k != last:
                value = math.nan  # ended inside the block
        r = self.rows
        r["run_value"][slot], r["run_start"][slot], r["run_extreme"][slot] = value, start, extreme
        return resume


class StreamQuality:
    """One stream's quality checks: a bank of one. `feed(block, main_peaks)`, then `verdict(r)` once the
    beat at `r` can be framed; `flush(main_peaks)` at the end."""

    def __init__(self, fs: float) -> None:
        self.bank = QualityBank(fs)
        self.bank.clear(0)

    def feed(self, x: np.ndarray, main_peaks: Sequence[int]) -> None:
        self.bank.feed([0], np.asarray(x, dtype=np.float64).reshape(1, -1), {0: main_peaks})

    def flush(self, main_peaks: Sequence[int] = ()) -> None:
        self.bank.flush([0], {0: main_peaks})

    def ready(self, r_sample: int) -> bool:
        return self.bank.ready(0, r_sample)

    def verdict(self, r_sample: int) -> Verdict:
        return self.bank.verdict(0, r_sample)


def bsqi_window(main: Sequence[int], other: Sequence[int], match: int, lo: int, stop: int,
                lo_short: int | None = None) -> Any:
    """bSQI over [lo, stop): main peaks inside, matched one to one against the other detector's within
    `match` (which may lie just outside, so a beat at the edge still finds its partner); the other's count is
    of those inside. Both sorted. With `lo_short`, also the bSQI over [lo_short, stop) from the same matching:
    returns both."""
    short = lo if lo_short is None else lo_short
    n_other = n_other_short = 0
    for p in other:
        if lo <= p < stop:
            n_other += 1
            n_other_short += p >= short
    matched = matched_short = n_short = 0
    j, n = 0, len(other)
    for p in main:
        n_short += p >= short
        while j < n and other[j] < p - match:
            j += 1
        if j < n and abs(int(other[j]) - int(p)) <= match:
            matched += 1
            matched_short += p >= short
            j += 1

    def ratio(m: int, total: int) -> float:
        return m / total if total > 0 else math.nan

    long = ratio(matched, len(main) + n_other - matched)
    if lo_short is None:
        return long
    return long, ratio(matched_short, n_short + n_other_short - matched_short)
