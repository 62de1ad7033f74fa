"""Beat framing: turn streams of ECG samples plus their R peaks into fixed-length model inputs.

How a beat is cut is described by the model (metadata `beat` and `features`), so the same code serves
the ECG5000 model and models fitted to MIT-BIH recordings, at training time (offline, `extract_beats`)
and live (`FramerBank.feed`, many streams at once). Offline framing is the streaming framer run on one
block, so both give identical beats.

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

Many streams at once: filtering, cutting, normalising and the template are array operations over all the
beats that become ready in one block, whatever stream they belong to; Python runs once per beat (its RR
bookkeeping), never once per stream per block.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamer.core.dsp import IirDesign
from streamer.core.history import History
from streamer.core.rows import Rows
from streamer.core.stats import small_median

RR_HISTORY = 8  # beats: the local typical RR is the median of this many previous intervals
HIGHPASS_ORDER = 2
STATELESS_STEPS = ("zscore", "minmax", "scale", "center")
TEMPLATE_STEP = "template"
PEAK_DELAY_S = 0.5  # s: R peaks reach the framer at most this late (the detector's look-ahead is 0.27 s)
MAX_RR_S = 3.0  # s: longest R-to-R cycle an `rr` window is kept for (the signal tail holds this much)
RR_FEATURES = ("rr_prev_ratio", "rr_next_ratio", "rr_prev_s", "rr_next_s", "rr_prematurity", "rr_pause")
DROP_BEFORE_START = "beat window before stream start"
DROP_UNBUFFERED = "beat window no longer buffered (R peak too late or RR too long)"
DROP_AT_END = "no following beat at end of stream"


def median_rows(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """np.median along `axis` via one partition (the per-beat template and centring are on the hot path)."""
    n = a.shape[axis]
    k = n // 2
    if n % 2:
        return np.take(np.partition(a, k, axis=axis), k, axis=axis)
    p = np.partition(a, (k - 1, k), axis=axis)
    return (np.take(p, k - 1, axis=axis) + np.take(p, k, axis=axis)) / 2


def median_last(sets: np.ndarray) -> np.ndarray:
    """Median along the last axis by sorting (short contiguous sets: 2-3x faster than a partition here)."""
    k = sets.shape[-1]
    s = np.sort(sets, axis=-1)
    return s[..., k // 2] if k % 2 else (s[..., k // 2 - 1] + s[..., k // 2]) / 2


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

    @property
    def fixed(self) -> bool:
        return self.window["kind"] == "fixed"

    def window_bounds(self, r: np.ndarray, r_next: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
        """Window start and end (fractional samples) for beats at `r` (followed by `r_next`)."""
        if self.window["kind"] == "rr":
            rr = r_next - r
            pre = float(self.window["pre_fraction"])
            return r - pre * rr, r + (1.0 - pre) * rr
        return r - float(self.window["pre_s"]) * fs, r + float(self.window["post_s"]) * fs

    def tail_s(self) -> float:
        """Seconds of filtered signal a stream must keep for the windows still to be cut."""
        if self.fixed:
            return PEAK_DELAY_S + float(self.window["pre_s"]) + float(self.window["post_s"])
        return PEAK_DELAY_S + MAX_RR_S * (1.0 + float(self.window["pre_fraction"]))

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """The stateless steps on beats `x` (n, length) (all but a final `template` step)."""
        for step in self.beat_steps:
            kind = step["kind"]
            if kind == "zscore":  # per beat, as the UCR archive does (sample std, ddof=1)
                sd = x.std(axis=1, ddof=1, keepdims=True)
                x = (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
            elif kind == "minmax":  # global constants from the training data
                x = (x - float(step["min"])) / (float(step["max"]) - float(step["min"]))
            elif kind == "scale":  # fixed gain, e.g. mV -> model units
                x = x * float(step["factor"])
            elif kind == "center":  # beat's own median: robust to the QRS, unlike the mean
                x = x - median_rows(x, axis=1)[:, None]
            else:
                raise ValueError(f"unknown normalisation step {kind!r}")
        return x

    def assemble(self, samples: np.ndarray, rr: Mapping[str, np.ndarray]) -> np.ndarray:
        """Model inputs (n, n_inputs) float32: beat samples, then the RR features, in the model's order."""
        parts = [samples if n == "beat" else np.asarray(rr[n])[:, None] for n in self.feature_names]
        return np.concatenate(parts, axis=1).astype(np.float32)


def rr_feature_arrays(rr_prev: np.ndarray, rr_next: np.ndarray, typical: np.ndarray) -> dict[str, np.ndarray]:
    """RR features of beats (arrays, seconds); `typical` is each beat's local typical RR (the median of the
    intervals before `rr_prev`, or `rr_prev` itself when there are none)."""
    typical = np.where(typical > 0, typical, 1.0)
    prev_ratio, next_ratio = rr_prev / typical, rr_next / typical
    return {"rr_prev_ratio": prev_ratio, "rr_next_ratio": next_ratio, "rr_prev_s": rr_prev, "rr_next_s": rr_next,
            "rr_prematurity": np.maximum(0.0, 1.0 - prev_ratio), "rr_pause": np.maximum(0.0, next_ratio - 1.0)}


@dataclass
class _Pending:
    """One stream's R peaks not yet emitted as beats, and its RR bookkeeping. Small: saved as JSON."""

    peaks: list[int] = field(default_factory=list)  # waiting for their successor (or their window)
    cuts: list[Any] = field(default_factory=list)  # per peak: its cut window (fixed windows), None, or False
    prev_r: int | None = None  # R peak before peaks[0], for rr_prev
    rr_history: list[float] = field(default_factory=list)
    n_beats: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def state(self) -> dict[str, Any]:
        return {"peaks": list(self.peaks), "prev_r": self.prev_r, "rr_history": list(self.rr_history),
                "n_beats": self.n_beats, "dropped": dict(self.dropped),
                "cut": [c is not None and c is not False for c in self.cuts],
                "lost": [c is False for c in self.cuts]}


@dataclass
class FramedBeats:
    """The beats framed in one call, as arrays (rows in stream order within each slot)."""

    slots: np.ndarray  # (n,) int
    index: np.ndarray  # beat number in its stream
    r_sample: np.ndarray  # (n,) int
    rr_prev_s: np.ndarray
    rr_next_s: np.ndarray
    samples: np.ndarray  # (n, length) normalised beats
    features: np.ndarray  # (n, n_inputs) float32 model inputs

    def __len__(self) -> int:
        return len(self.slots)

    @classmethod
    def empty(cls, spec: BeatSpec) -> FramedBeats:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, np.zeros(0), np.zeros(0), np.zeros((0, spec.length)),
                   np.zeros((0, spec.n_inputs), np.float32))


class FramerBank:
    """The beat framer for many streams of one sampling rate (slots given by the owner).

    `feed(slots, blocks, peaks)` takes one block per slot (all of one length) and each slot's new R peaks,
    and returns the beats that became complete; `flush(slots)` ends those streams. State that crosses
    blocks: the high-pass filter state, the newest `tail` filtered samples (what windows still to be cut
    can reach), the peaks waiting for their successor, the RR history and the template's recent beats.
    """

    def __init__(self, spec: BeatSpec, fs: float) -> None:
        self.spec = spec
        self.fs = float(fs)
        self.highpass = IirDesign(HIGHPASS_ORDER, float(spec.highpass_hz), "highpass", fs) if spec.highpass_hz \
            else None
        self.tail = int(math.ceil(spec.tail_s() * self.fs)) + 2
        order = self.highpass.order if self.highpass else 1
        self.rows = Rows(seen=((), np.int64, 0), started=((), bool, False),
                         zi=((order,), np.float64, 0.0), tail=((self.tail,), np.float64, 0.0))
        t = spec.template
        self.template = History(int(t["beats"]), (spec.length,)) if t else None
        self.pending: dict[int, _Pending] = {}
        self.waiting: set[int] = set()  # slots with a peak whose window is not cut yet
        grid = np.linspace(0.0, 1.0, spec.length, endpoint=spec.fixed)
        self.grid = grid

    # --- streams -------------------------------------------------------------------------------------------
    def clear(self, slot: int) -> None:
        self.rows.clear(slot)
        if self.template is not None:
            self.template.clear(slot)
        self.pending[slot] = _Pending()
        self.waiting.discard(slot)

    def reprime(self, slot: int) -> None:
        """The high-pass starts afresh at the slot's next sample (after a gap or a flat or saturated stretch)."""
        self.rows["started"][slot] = False

    def release(self, slot: int) -> None:
        self.pending.pop(slot, None)
        self.waiting.discard(slot)

    def dropped(self, slot: int) -> dict[str, int]:
        return dict(self.pending[slot].dropped)

    def state(self, slot: int) -> dict[str, Any]:
        p = self.pending[slot]
        cuts = [c for c in p.cuts if c is not None and c is not False]
        out: dict[str, Any] = {"rows": self.rows.row(slot), "pending": p.state(),
                               "cut_windows": np.array(cuts).reshape(len(cuts), self.spec.length)}
        if self.template is not None:
            out["template"] = self.template.state(slot)
        return out

    def set_state(self, slot: int, state: Mapping[str, Any]) -> None:
        self.clear(slot)
        self.rows.set_row(slot, state["rows"])
        if self.template is not None:
            self.template.set_state(slot, state["template"])
        s = state["pending"]
        windows = iter(np.asarray(state["cut_windows"]))
        p = _Pending([int(v) for v in s["peaks"]], [], None if s["prev_r"] is None else int(s["prev_r"]),
                     [float(v) for v in s["rr_history"]], int(s["n_beats"]),
                     {str(k): int(v) for k, v in s["dropped"].items()})
        p.cuts = [next(windows) if cut else (False if lost else None) for cut, lost in zip(s["cut"], s["lost"])]
        self.pending[slot] = p
        if any(c is None for c in p.cuts):
            self.waiting.add(slot)

    # --- data ----------------------------------------------------------------------------------------------
    def feed(self, slots: Sequence[int], blocks: np.ndarray, peaks: Mapping[int, Sequence[int]]) -> FramedBeats:
        """`peaks`: {slot: new R peaks (absolute sample indices, increasing)} for the slots that have any."""
        s = np.asarray(slots, dtype=np.int64)
        x = np.asarray(blocks, dtype=np.float64)
        xf = self._filter(s, x)
        active = set(self.waiting)
        for slot, new in peaks.items():
            q = self.pending[slot]
            q.peaks.extend(int(p) for p in new)
            q.cuts.extend([None] * len(new))
            active.add(slot)
        # One array per tick: each fed slot's tail then its new samples; slots that wait without new samples
        # (other block lengths, or flush) follow with their tail only.
        r = self.rows
        others = np.array(sorted(active - set(s.tolist())), dtype=np.int64)
        ext = np.concatenate([r["tail"][s], xf], axis=1)
        if len(others):
            ext = np.concatenate([ext, np.pad(r["tail"][others], ((0, 0), (0, xf.shape[1])))])
        rows_slots = np.concatenate([s, others])
        r["seen"][s] += x.shape[1]
        origin = r["seen"][rows_slots] - ext.shape[1] + np.r_[np.zeros(len(s), np.int64),
                                                              np.full(len(others), xf.shape[1])]
        row_of = {slot: i for i, slot in enumerate(rows_slots.tolist())}
        self._cut(sorted(active), row_of, ext, origin)
        beats = self._complete(sorted(active))
        r["tail"][s] = ext[:len(s), -self.tail:]
        return beats

    def flush(self, slots: Sequence[int], peaks: Mapping[int, Sequence[int]] | None = None) -> FramedBeats:
        """End of stream: the last peaks (e.g. the detector's flush) are framed if they can be, then every
        peak left (the last one has no successor) is dropped."""
        s = list(slots)
        beats = self.feed(s, np.zeros((len(s), 0)), peaks or {})
        for slot in s:
            q = self.pending[slot]
            if q.peaks:
                q.drop(DROP_AT_END, len(q.peaks))
                q.peaks, q.cuts = [], []
            self.waiting.discard(slot)
        return beats

    # --- internals -----------------------------------------------------------------------------------------
    def _filter(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.highpass is None or x.shape[1] == 0:
            return x
        r = self.rows
        y, r["zi"][s] = self.highpass.run(x, r["zi"][s], r["started"][s])
        r["started"][s] = True
        return y

    def _cut(self, active: list[int], row_of: dict[int, int], ext: np.ndarray, origin: np.ndarray) -> None:
        """Cut every pending window whose samples have all arrived (fixed windows: as soon as they have,
        successor or not; rr windows: once the successor is known)."""
        req_slot, req_k, req_r, req_next = [], [], [], []
        fixed = self.spec.fixed
        for slot in active:
            q = self.pending[slot]
            n = len(q.peaks)
            for k, cut in enumerate(q.cuts):
                if cut is not None:
                    continue
                if not fixed and k + 1 >= n:
                    break
                req_slot.append(slot)
                req_k.append(k)
                req_r.append(q.peaks[k])
                req_next.append(q.peaks[k + 1] if k + 1 < n else q.peaks[k])
        self.waiting = set()
        if not req_slot:
            return
        rows = np.array([row_of[slot] for slot in req_slot], dtype=np.int64)
        start, end = self.spec.window_bounds(np.array(req_r, np.float64), np.array(req_next, np.float64), self.fs)
        first = start - origin[rows]  # window start in ext columns
        available = origin[rows] + ext.shape[1]  # one past the newest sample of the row
        n_seen = self.rows["seen"][np.array(req_slot, dtype=np.int64)]
        ready = end <= np.minimum(available, n_seen) - 1
        before_start = ready & (start < 0)
        lost = ready & ~before_start & (first < 0)
        good = ready & ~before_start & ~lost
        windows = self._interpolate(ext, rows[good], origin[rows[good]], start[good], end[good])
        windows = self.spec.normalise(windows) if len(windows) else windows
        it = iter(windows)
        for i, (slot, k) in enumerate(zip(req_slot, req_k)):
            q = self.pending[slot]
            if good[i]:
                q.cuts[k] = next(it)
            elif before_start[i] or lost[i]:
                q.cuts[k] = False
                q.drop(DROP_BEFORE_START if before_start[i] else DROP_UNBUFFERED)
            else:
                self.waiting.add(slot)

    def _interpolate(self, ext: np.ndarray, rows: np.ndarray, origin: np.ndarray, start: np.ndarray,
                     end: np.ndarray) -> np.ndarray:
        """Windows [start, end] (fractional absolute sample positions) resampled to `length` points (linear), from
        `ext` rows whose column 0 is absolute sample `origin`. Positions and fractions are computed on absolute
        indices, so a window comes out bit-identical whatever block it is cut from."""
        if len(rows) == 0:
            return np.zeros((0, self.spec.length))
        pos = start[:, None] + (end - start)[:, None] * self.grid[None, :]
        i0 = np.floor(pos).astype(np.int64)
        frac = pos - i0
        flat = ext.reshape(-1)
        at = rows[:, None] * ext.shape[1] + (i0 - origin[:, None])
        v0 = flat[at]
        v1 = flat[np.minimum(at + 1, flat.size - 1)]  # at a window's last sample frac is 0
        return v0 + frac * (v1 - v0)

    def _complete(self, active: list[int]) -> FramedBeats:
        """Pop the beats whose successor is known and whose window is cut; RR features; the template step."""
        fs = self.fs
        out_slots, index, rs, rr_prev, rr_next, typical, xs = [], [], [], [], [], [], []
        for slot in active:
            q = self.pending[slot]
            while len(q.peaks) >= 2 and q.cuts[0] is not None:
                r, r_next, cut = q.peaks.pop(0), q.peaks[0], q.cuts.pop(0)
                after = (r_next - r) / fs
                before = (r - q.prev_r) / fs if q.prev_r is not None else after
                history = q.rr_history
                if q.prev_r is not None:
                    q.rr_history = (history + [before])[-RR_HISTORY:]
                q.prev_r = r
                if cut is False:
                    continue  # dropped when its window could not be cut (counted there)
                out_slots.append(slot)
                index.append(q.n_beats)
                rs.append(r)
                rr_prev.append(before)
                rr_next.append(after)
                typical.append(small_median(history) if history else before)
                xs.append(cut)
                q.n_beats += 1
            if any(c is None for c in q.cuts):
                self.waiting.add(slot)
        if not out_slots:
            return FramedBeats.empty(self.spec)
        slots = np.array(out_slots, dtype=np.int64)
        x = np.stack(xs)
        prev, nxt = np.array(rr_prev), np.array(rr_next)
        rr = rr_feature_arrays(prev, nxt, np.array(typical, dtype=np.float64))
        samples = self._apply_template(slots, x, rr["rr_prev_ratio"]) if self.template is not None else x
        return FramedBeats(slots, np.array(index), np.array(rs, dtype=np.int64), prev, nxt, samples,
                           self.spec.assemble(samples, rr))

    def _apply_template(self, slots: np.ndarray, x: np.ndarray, rr_prev_ratio: np.ndarray) -> np.ndarray:
        """Each beat's deviation from the median of its stream's previous regular beats (see module doc)."""
        assert self.template is not None and self.spec.template is not None
        step = self.spec.template
        accept = rr_prev_ratio >= float(step["min_rr_prev_ratio"])  # premature beats (PVCs, APCs) stay out
        templates, k = self.template.reduce(slots, x, accept, median_last)
        templates[k == 0] = x[k == 0]  # no earlier beat: the beat is its own template
        scale = np.maximum(np.ptp(templates, axis=1), float(step["min_scale"]))
        return (x - templates) / scale[:, None]


def extract_beats(signal: np.ndarray, fs: float, peaks: Sequence[int], spec: BeatSpec) -> list[Beat]:
    """Offline framing of a whole record: the streaming framer on one block, so the same beats."""
    bank = FramerBank(spec, fs)
    bank.clear(0)
    x = np.asarray(signal, dtype=np.float64).reshape(1, -1)
    framed = bank.feed([0], x, {0: list(peaks)})
    rest = bank.flush([0])
    out = []
    for f in (framed, rest):
        for i in range(len(f)):
            r = int(f.r_sample[i])
            out.append(Beat(int(f.index[i]), r, r / fs, float(f.rr_prev_s[i]), float(f.rr_next_s[i]),
                            f.samples[i], f.features[i]))
    return out
