"""The quality checks' second QRS detector, for many streams at once: a simple causal energy detector,
deliberately different in kind from the main one (`streamer.ecg.detector`), so that the two agree on
clean ECG and disagree in noise (that agreement is the bSQI of `streamer.ecg.quality`).

Differences from the main detector: RMS of the 8-20 Hz band (rather than |slope| of 5-15 Hz), a fixed
fraction of the recent peaks' heights (rather than adaptive signal and noise levels), no searchback, no
T-wave or local-activity rules.

Per stream, all causal, state carried across blocks (any partition of a stream into blocks gives the same
peaks, and a pool of streams gives each stream what it would get alone):
1. Butterworth band-pass ``ENERGY_BAND_HZ``; the running sum of its square from the stream's start (one
   sequential cumulative sum seeded with the previous block's last value, so it is the same whatever the
   blocks). The detection feature is the RMS over the last ``ENERGY_WINDOW_S``: a difference of that sum.
   (RMS, not energy: a beat half as tall is half, not a quarter, as high, so beats of varying amplitude stay
   above one fraction of the recent heights.) The running sum is also what the quality checks' in-band
   noise ratio reads, so it is kept ``history`` samples back for them.
2. A candidate is the largest feature value within ``PEAK_HALF_WINDOW_S`` either side (also the refractory
   period), examined once that much signal after it has arrived, for all streams as array operations.
3. Per candidate, in Python (2-4 per beat): its height must exceed ``HEIGHT_FRACTION`` of the mean of the
   recent accepted heights; the reference halves every ``RELAX_S`` without a peak (recovery from an
   artefact); in the first ``LEARN_S`` it only learns. The R peak is the largest |band-passed| sample within
   ``LOCATE_BACK_S`` before the feature's peak.

A peak is decided ``PEAK_HALF_WINDOW_S`` after the feature's peak, so at most ``LOCATE_BACK_S +
PEAK_HALF_WINDOW_S`` (0.4 s) after the R peak it returns; each peak comes with the sample by which it was
decided.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.core.dsp import IirDesign, windows_ending_at
from streamer.core.rows import Rows

ENERGY_BAND_HZ = (8.0, 20.0)  # Hz, a QRS band different from the main detector's 5-15 Hz
ENERGY_ORDER = 2
ENERGY_WINDOW_S = 0.100  # s, RMS over this window of the band-passed signal (the detection feature)
PEAK_HALF_WINDOW_S = 0.250  # s, a peak is the largest feature value within this much either side (refractory)
HEIGHT_FRACTION = 0.3  # a peak's RMS must exceed this fraction of the mean RMS of the recent accepted peaks
HEIGHT_HISTORY = 8  # accepted peaks whose heights make that mean
LEARN_S = 2.0  # s, until then the reference is the largest feature value seen
LOCATE_BACK_S = 0.150  # s, the R is the largest |band-passed| sample this far before the feature's peak
RELAX_S = 2.0  # s, every this long without a peak the reference height halves (recovers from an artefact)


def quality_designs(fs: float) -> list[tuple[int, tuple[float, float], str]]:
    """The second detector's filter at rate `fs`: (order, band in Hz, kind), as `detector_designs`."""
    return [(ENERGY_ORDER, (ENERGY_BAND_HZ[0], min(ENERGY_BAND_HZ[1], 0.45 * fs)), "bandpass")]


class _Decisions:
    """One stream's step-3 state. Plain Python: it runs per candidate."""

    __slots__ = ("heights", "last_peak")

    def __init__(self) -> None:
        self.heights: deque[float] = deque(maxlen=HEIGHT_HISTORY)
        self.last_peak = -(10 ** 12)

    def state(self) -> dict[str, Any]:
        return {"heights": list(self.heights), "last_peak": self.last_peak}

    def set_state(self, v: Mapping[str, Any]) -> None:
        self.heights = deque((float(h) for h in v["heights"]), maxlen=HEIGHT_HISTORY)
        self.last_peak = int(v["last_peak"])


@dataclass
class SecondTick:
    """What one `feed` leaves for the quality checks: the running sum of squares over each row's last
    `history` samples and the new block (column j of row i is the sum up to and including absolute sample
    `origin[i] + j`), and the peaks decided, {slot: [(R peak, decided by sample)]}."""

    cum: np.ndarray
    origin: np.ndarray
    peaks: dict[int, list[tuple[int, int]]]


class SecondOpinionBank:
    """The second detector for many streams of one rate; streams are slots, as in `DetectorBank`."""

    def __init__(self, fs: float, history: int = 0) -> None:
        self.fs = float(fs)
        ((order, band, kind),) = quality_designs(fs)
        self.filter = IirDesign(order, band, kind, fs)
        self.n_avg = max(1, round(ENERGY_WINDOW_S * fs))
        self.half = max(1, round(PEAK_HALF_WINDOW_S * fs))
        self.back = max(1, round(LOCATE_BACK_S * fs))
        self.relax = max(1, round(RELAX_S * fs))
        self.learn = round(LEARN_S * fs)
        self.keep = 2 * self.half + self.back + 2  # feature and band-passed samples kept behind the newest
        self.history = max(history, self.n_avg)  # running-sum samples kept (the quality checks read them)
        self.rows = Rows(
            seen=((), np.int64, 0),
            started=((), bool, False),
            zi=((self.filter.order,), np.float64, 0.0),
            largest=((), np.float64, 0.0),  # largest feature value so far (the reference while learning)
            bp=((self.keep,), np.float64, 0.0),
            energy=((self.keep,), np.float64, -np.inf),  # before the stream's start: never a candidate
            cum=((self.history,), np.float64, 0.0),
        )
        self.decisions: dict[int, _Decisions] = {}

    def clear(self, slot: int) -> None:
        self.rows.clear(slot)
        self.decisions[slot] = _Decisions()

    def release(self, slot: int) -> None:
        self.decisions.pop(slot, None)

    def reprime(self, slot: int) -> None:
        """The filter starts afresh (in steady state) at the slot's next sample."""
        self.rows["started"][slot] = False

    def state(self, slot: int) -> dict[str, Any]:
        return {"rows": self.rows.row(slot), "decisions": self.decisions[slot].state()}

    def set_state(self, slot: int, v: Mapping[str, Any]) -> None:
        self.clear(slot)
        self.rows.set_row(slot, v["rows"])
        self.decisions[slot].set_state(v["decisions"])

    def feed(self, slots: Sequence[int] | np.ndarray, blocks: np.ndarray) -> SecondTick:
        """Blocks (n, L) of finite samples for `slots` (n distinct)."""
        s = np.asarray(slots, dtype=np.int64)
        x = np.asarray(blocks, dtype=np.float64)
        r = self.rows
        n, length = x.shape
        seen = r["seen"][s]
        kc, k = self.history, self.keep
        cum = np.empty((n, kc + length))
        cum[:, :kc] = r["cum"][s]
        if length == 0:
            return SecondTick(cum, seen - kc, {})
        bp, r["zi"][s] = self.filter.run(x, r["zi"][s], r["started"][s])
        r["started"][s] = True
        # the running sum of squares, sample by sample from the previous block's last value (np.cumsum is
        # sequential), so it is the same for any partition of the stream
        new = cum[:, kc:]
        np.multiply(bp, bp, out=new)
        new[:, 0] += cum[:, kc - 1]
        np.cumsum(new, axis=1, out=new)
        energy = np.sqrt(np.maximum(new - cum[:, kc - self.n_avg:kc - self.n_avg + length], 0.0) / self.n_avg)
        ext_bp = np.concatenate([r["bp"][s], bp], axis=1)
        ext_en = np.concatenate([r["energy"][s], energy], axis=1)
        # the largest feature value up to each new sample, from the stream's start
        largest = np.maximum.accumulate(np.concatenate([r["largest"][s][:, None], energy], axis=1), axis=1)[:, 1:]
        peaks = self._scan(s, ext_en, ext_bp, largest, seen - k)
        r["bp"][s], r["energy"][s] = ext_bp[:, -k:], ext_en[:, -k:]
        r["cum"][s] = cum[:, -kc:]
        r["largest"][s] = largest[:, -1]
        r["seen"][s] = seen + length
        return SecondTick(cum, seen - kc, peaks)

    def _scan(self, s: np.ndarray, en: np.ndarray, bp: np.ndarray, largest: np.ndarray, origin: np.ndarray
              ) -> dict[int, list[tuple[int, int]]]:
        """Decide the candidates at columns [keep - half, keep + L - half) of `en` (those whose neighbourhood
        has now arrived whole; earlier ones were examined by earlier blocks). Column j of row i is absolute
        sample origin[i] + j."""
        k, half = self.keep, self.half
        lo, hi = k - half, en.shape[1] - half
        centre = en[:, lo:hi]
        # a peak is the largest value of its neighbourhood, so first a local maximum: test only those
        local = (centre >= en[:, lo - 1:hi - 1]) & (centre >= en[:, lo + 1:hi + 1]) & np.isfinite(centre)
        row, col = np.nonzero(local)
        col = col + lo
        if len(row):
            top = windows_ending_at(en, row, col + half, 2 * half + 1).max(axis=1)
            keep = top <= en[row, col]
            row, col = row[keep], col[keep]
        if len(row) == 0:
            return {}
        at = np.abs(windows_ending_at(bp, row, col, self.back + 1))  # where the R is: the largest |bp| before
        r_col = col - self.back + at.argmax(axis=1)
        out: dict[int, list[tuple[int, int]]] = {}
        slots = s.tolist()
        for ri, c, h, ref0, p in zip(row.tolist(), col.tolist(), en[row, col].tolist(),
                                     largest[row, col + half - k].tolist(), r_col.tolist()):
            slot = slots[ri]
            d = self.decisions[slot]
            i = int(origin[ri]) + c
            if i - d.last_peak <= half:
                continue
            if i < self.learn and not d.heights:
                continue  # filters settling and the scale unknown: learn only
            since = i - max(d.last_peak, self.learn)
            ref = (sum(d.heights) / len(d.heights) if d.heights else ref0) * 0.5 ** (since // self.relax)
            if h > HEIGHT_FRACTION * ref:
                out.setdefault(slot, []).append((int(origin[ri]) + p, i + half))
                d.heights.append(h)
                d.last_peak = i
        return out


class SecondOpinion:
    """One stream's second detector: a bank of one. `feed(block)` -> the R peaks decided by this block."""

    def __init__(self, fs: float) -> None:
        self.bank = SecondOpinionBank(fs)
        self.bank.clear(0)

    def feed(self, x: np.ndarray) -> list[int]:
        return [p for p, _ in self.feed_decided(x)]

    def feed_decided(self, x: np.ndarray) -> list[tuple[int, int]]:
        """As `feed`, each peak with the sample by which it was decided."""
        block = np.asarray(x, dtype=np.float64).reshape(1, -1)
        return self.bank.feed([0], block).peaks.get(0, [])
