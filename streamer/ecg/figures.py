"""`--report` for an ECG run: what the figures need, kept while it runs, and the figures.

Kept, bounded whatever the record's length (a 24-hour Holter record: ~100 000 beats, ~2.5 MB):
- the whole signal as a min/max envelope (`Envelope`, at most 4000 bins);
- per beat, 26 bytes: R peak, score, the threshold it was judged against, state, flag, RR interval;
- the `TOP_BEATS` highest-scoring judged beats (a min-heap), each with the signal from `BEFORE_S` before its
  R peak to `AFTER_S` after it: its 10-s rhythm strip, and the beats its running template is made of;
- the last `KEEP_S` of signal, to cut a new top beat's window from (its R peak is at most an RR interval
  plus the detector's look-ahead old when its event arrives).

The running template drawn beside a beat is the model's own definition (`streamer/ecg/beats.py`, the
`template` normalisation step): the per-sample median of the previous K regular beats (K = 16, regular: RR
before it at least 0.9 of the median of the 8 intervals before), here over the raw signal in mV, each beat
centred on its median (so wander does not offset it), from P wave to T wave rather than the model's shorter
window (shaded).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamer.core.errors import StreamerError
from streamer.ecg.beats import MAX_RR_S, PEAK_DELAY_S, RR_HISTORY, BeatSpec
from streamer.ecg.detector import LOOKAHEAD_S
from streamer.ecg.evaluate import PVC_SYMBOL, TOLERANCE_S, label_peaks, roc_auc, roc_curve
from streamer.ecg.events import BeatEvent
from streamer.ecg.judge import CALIBRATING, JUDGED, NOISE, WARMUP
from streamer.ecg.readers import Recording
from streamer.run.figures import Columns, Envelope, Figure
from streamer.run.sources import Block
from streamer.ui.report_page import (
    FLAGGED,
    NORMAL,
    REFERENCE,
    SIGNAL,
    THRESHOLD,
    UNJUDGED,
    clock,
    new_figure,
    note,
    plain,
    time_axis,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

TOP_BEATS = 6  # most anomalous beats drawn, each beside its running template
BEFORE_S = 30.0  # s of signal kept before each of them: their template's beats (16 beats down to 35 bpm)
AFTER_S = 5.0  # s kept after: the rhythm strip is 10 s around the top beat
STRIP_S = 10.0  # s, the rhythm strip (the length of a standard 12-lead ECG's rhythm strip)
CONTEXT_S = 3.2  # s of neighbourhood drawn beside each top beat: its RR before and after show
BEAT_PRE_S, BEAT_POST_S = 0.30, 0.50  # s around R drawn for a beat: P wave to T wave
KEEP_S = BEFORE_S + MAX_RR_S + PEAK_DELAY_S + LOOKAHEAD_S + 1.0  # s of recent signal kept
TEMPLATE_BEATS, MIN_RR_PREV_RATIO = 16, 0.9  # the template's definition when the model has none
SMALL_SQUARE, LARGE_SQUARE = "#fbe9e9", "#f1bcbc"  # ECG paper's grid colours
BIN_WIDTHS_S = (5, 10, 30, 60, 300, 900, 1800, 3600)  # trend bins: the narrowest giving at most MAX_BINS
MAX_BINS = 150
DENSE_BEATS = 5000  # from this many beats on, points are drawn smaller and lighter
STATES = {WARMUP: 0, CALIBRATING: 1, JUDGED: 2, NOISE: 3}
BEAT_FIELDS = [("r", np.int64), ("score", np.float64), ("threshold", np.float64), ("state", np.int8),
               ("anomaly", np.bool_), ("rr_ms", np.float32)]
# MIT-BIH beat labels (wfdb's annotation table), for the strips' titles
BEAT_LABELS = {
    "N": "normal", "L": "left bundle branch block", "R": "right bundle branch block", "B": "bundle branch block",
    "A": "atrial premature", "a": "aberrated atrial premature", "J": "junctional premature",
    "S": "supraventricular premature", "V": "premature ventricular contraction",
    "r": "R-on-T premature ventricular", "F": "fusion of ventricular and normal", "e": "atrial escape",
    "j": "junctional escape", "n": "supraventricular escape", "E": "ventricular escape", "/": "paced",
    "f": "fusion of paced and normal", "Q": "unclassifiable", "?": "beat not classified",
}


@dataclass
class _TopBeat:
    """One of the highest-scoring beats, with the signal around it (NaN where it never arrived)."""

    row: int  # its row in the beat columns
    r: int
    score: float
    threshold: float
    anomaly: bool
    lo: int  # sample index of signal[0]
    signal: np.ndarray
    filled: int  # samples before this index have been copied in (or never existed)

    def fill(self, start: int, x: np.ndarray) -> None:
        """Copy what `x` (samples from index `start`) holds of the part not yet filled."""
        hi = self.lo + len(self.signal)
        a, b = max(self.filled, start), min(hi, start + len(x))
        if a < b:
            self.signal[a - self.lo:b - self.lo] = x[a - start:b - start]
        self.filled = max(self.filled, min(hi, start + len(x)))


class EcgRecorder:
    """The `Recorder` of an ECG run (one stream)."""

    def __init__(self, fs: float, spec: BeatSpec | None = None, reference: Recording | None = None,
                 units: str = "mV") -> None:
        self.fs = float(fs)
        template = spec.template if spec is not None else None
        self.template_beats = int(template["beats"]) if template else TEMPLATE_BEATS
        self.min_rr_ratio = float(template["min_rr_prev_ratio"]) if template else MIN_RR_PREV_RATIO
        self.model_window = (float(spec.window["pre_s"]), float(spec.window["post_s"])) \
            if spec is not None and spec.fixed else None
        self.reference = reference
        self.units = units
        self.envelope = Envelope()
        self.beats = Columns(BEAT_FIELDS)
        self.keep = int(KEEP_S * self.fs)
        self.before, self.after = int(BEFORE_S * self.fs), int(AFTER_S * self.fs)
        self.recent = np.zeros(0)
        self.recent_start = 0
        self.top: list[tuple[float, int, _TopBeat]] = []  # min-heap on score: the weakest is replaced

    # --- while it runs -------------------------------------------------------------------------------------
    def on_block(self, block: Block) -> None:
        x = np.asarray(block.samples, dtype=np.float64)
        self.envelope.add(x)
        for _, _, top in self.top:
            top.fill(block.start, x)
        self.recent = np.concatenate([self.recent[-self.keep:], x])
        self.recent_start = block.start + len(x) - len(self.recent)

    def on_events(self, events: Sequence[BeatEvent]) -> None:
        if not events:
            return
        first = len(self.beats)
        score = np.array([e.score for e in events], dtype=np.float64)
        state = np.array([STATES.get(e.state, 0) for e in events], dtype=np.int8)
        self.beats.extend(r=[e.r_sample for e in events], score=score, threshold=[e.threshold for e in events],
                          state=state, anomaly=[e.anomaly for e in events], rr_ms=[e.rr_ms for e in events])
        floor = self.top[0][0] if len(self.top) == TOP_BEATS else -np.inf
        candidates = np.flatnonzero((state == STATES[JUDGED]) & (score > floor))
        if len(candidates) > TOP_BEATS:  # only a batch's own best can enter
            candidates = candidates[np.argsort(-score[candidates], kind="stable")[:TOP_BEATS]]
        for i in candidates.tolist():
            self._offer(first + i, events[i])

    def _offer(self, row: int, e: BeatEvent) -> None:
        if len(self.top) == TOP_BEATS and e.score <= self.top[0][0]:
            return
        lo = e.r_sample - self.before
        top = _TopBeat(row, e.r_sample, e.score, e.threshold, e.anomaly, lo,
                       np.full(self.before + self.after + 1, np.nan), lo)
        top.fill(self.recent_start, self.recent)
        entry = (e.score, -row, top)  # equal scores: the earlier beat stays
        if len(self.top) < TOP_BEATS:
            heapq.heappush(self.top, entry)
        else:
            heapq.heapreplace(self.top, entry)

    # --- at the end ----------------------------------------------------------------------------------------
    def figures(self, summary: dict[str, Any]) -> list[Figure]:
        return EcgFigures(self, summary).figures()


class EcgFigures:
    """The figures of one recorder, drawn at the end of the run."""

    def __init__(self, rec: EcgRecorder, summary: dict[str, Any]) -> None:
        self.rec = rec
        self.fs = rec.fs
        self.beats = rec.beats.view()
        self.top = [t for _, _, t in sorted(rec.top, key=lambda entry: (-entry[0], -entry[1]))]
        self.duration_s = rec.envelope.samples / self.fs
        self.scale, self.time_label = time_axis(self.duration_s)
        threshold = summary.get("threshold") or {}
        self.threshold_text = _threshold_text(threshold)
        self.annotations, self.annotation_note = self._annotations()

    def _annotations(self) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
        if self.rec.reference is None:
            return None, "no annotations (the record has none)"
        try:
            beats = self.rec.reference.reference_beats()
        except StreamerError as exc:
            return None, f"annotations not read: {exc}"
        if beats is None:
            return None, "no annotations (the record has none)"
        return beats, ""

    def figures(self) -> list[Figure]:
        n, flagged = len(self.beats), int(self.beats["anomaly"].sum())
        labels = "; annotation labels in green" if self.annotations else ""
        out = [
            Figure("ecg_record", "The record",
                   f"Top: the whole record ({clock(self.duration_s)}, {n} beats) as its minimum and maximum "
                   f"per bin; red marks: the {flagged} beats flagged (alarms)"
                   + ("; green marks below: beats annotated as PVC (V)" if self.annotations else "")
                   + f". Bottom: {STRIP_S:g} s around the highest-scoring beat (shaded above) on ECG paper "
                   f"(0.2 s and 0.5 mV squares), every R peak found marked{labels}.", self.draw_record),
            Figure("ecg_beats", "Most anomalous beats",
                   f"The {len(self.top)} judged beats with the highest scores, highest first. Left: the beat "
                   f"(red, shaded) among its neighbours. Right: the beat against the patient's running template "
                   f"at that moment (blue: median of the previous {self.rec.template_beats} regular beats), "
                   "each centred on its median; grey band: the window the model scores."
                   + (" Titles give the record's annotation for the beat." if self.annotations else ""),
                   self.draw_beats if self.top else None),
            Figure("ecg_scores", "Scores against the threshold",
                   f"Top: each beat's anomaly score over time; {self.threshold_text}. Beats above it are flagged "
                   "(red) when their shape alone also passes the model's shape gate (hollow blue: above it, "
                   "shape normal: no alarm); grey: scored but not judged (warm-up, calibration or poor "
                   "signal quality)"
                   + ("; black rings: beats annotated as PVC (V)" if self.annotations else "")
                   + ". Bottom: flagged beats per minute over time (the anomaly burden).",
                   self.draw_scores if n else None),
            Figure("ecg_heart_rate", "Heart rate",
                   f"Instantaneous heart rate (60 / RR) of every beat (dots), and its median and 10th-90th "
                   f"percentiles in {_duration(_bin_width(self.duration_s))} bins.",
                   self.draw_heart_rate if n > 2 else None),
            self.roc_figure(),
        ]
        if not self.top:
            out[1].caption = "No beat was judged (the run ended during warmup or calibration)."
        if not n:
            out[2].caption = "No beat was scored."
        if n <= 2:
            out[3].caption = "Too few beats for a heart rate."
        return out

    # --- the record ----------------------------------------------------------------------------------------
    def draw_record(self) -> MplFigure:
        fig = new_figure(6.6)
        overview, strip = fig.subplots(2, 1, height_ratios=[1, 1.35])
        self._overview(overview)
        self._strip(strip)
        return fig

    def _overview(self, ax: Axes) -> None:
        start, lo, hi = self.rec.envelope.bins()
        t = start / self.fs / self.scale
        t_end = self.duration_s / self.scale
        ax.fill_between(np.r_[t, t_end], np.r_[lo, lo[-1:]], np.r_[hi, hi[-1:]], step="post", color=SIGNAL,
                        linewidth=0.4, label="ECG (min/max per bin)")
        seen = np.isfinite(lo) & np.isfinite(hi)  # (bins with nothing but missing samples are gaps)
        y0, y1 = (np.percentile(lo[seen], 0.2), np.percentile(hi[seen], 99.8)) if seen.any() else (-1.0, 1.0)
        pad = 0.12 * (y1 - y0 or 1.0)
        ax.set_ylim(y0 - 2 * pad, y1 + 2 * pad)
        flagged = self.beats["r"][self.beats["anomaly"]] / self.fs / self.scale
        ax.plot(flagged, np.full(len(flagged), y1 + 1.3 * pad), "v", color=FLAGGED, ms=5, ls="none",
                label=f"flagged beat ({len(flagged)})")
        if self.annotations:
            ref, sym = self.annotations
            pvc = ref[(sym == PVC_SYMBOL) & (ref < self.rec.envelope.samples)] / self.fs / self.scale
            ax.plot(pvc, np.full(len(pvc), y0 - 1.3 * pad), "^", color=REFERENCE, ms=5, ls="none",
                    label=f"annotated PVC ({len(pvc)})")
        if self.top:
            centre = self.top[0].r / self.fs
            ax.axvspan((centre - STRIP_S / 2) / self.scale, (centre + STRIP_S / 2) / self.scale, color="#f2c14e",
                       alpha=0.5, linewidth=0, label="strip below")
        ax.set_xlim(0, t_end)
        ax.set_xlabel(self.time_label)
        ax.set_ylabel(f"ECG ({self.rec.units})")
        ax.set_title("Whole record", loc="left")
        _legend_above(ax, 4)

    def _strip(self, ax: Axes) -> None:
        if not self.top:
            note(ax, "no beat was judged: no rhythm strip")
            return
        top = self.top[0]
        half = int(STRIP_S / 2 * self.fs)
        centre = top.r - top.lo
        x = top.signal[max(centre - half, 0):centre + half + 1]
        t0 = (top.r - min(half, centre)) / self.fs
        t = t0 + np.arange(len(x)) / self.fs
        self._trace(ax, t, x, linewidth=0.9)
        self._mark_peaks(ax, t[0], t[-1], t, x)
        ax.set_xlim(t[0], t[-1])
        self._paper(ax)
        ax.set_xlabel("time in record (s)")
        ax.set_ylabel(f"ECG ({self.rec.units})")
        ax.set_title(f"{STRIP_S:g} s around beat {top.row} at {clock(top.r / self.fs)} (the highest score, "
                     f"{top.score:.3g})", loc="left")
        _legend_above(ax, 4)

    def _trace(self, ax: Axes, t: np.ndarray, x: np.ndarray, linewidth: float = 0.9) -> None:
        ax.plot(t, x, color=SIGNAL, linewidth=linewidth)
        finite = x[np.isfinite(x)]
        if len(finite):
            lo, hi = float(finite.min()), float(finite.max())
            pad = 0.18 * (hi - lo or 1.0)
            ax.set_ylim(lo - pad, hi + 2 * pad)

    def _paper(self, ax: Axes, unit_s: float = 1.0) -> None:
        if self.rec.units == "mV":
            _ecg_paper(ax, unit_s)

    def _mark_peaks(self, ax: Axes, t0: float, t1: float, t: np.ndarray, x: np.ndarray) -> None:
        """R peaks found in [t0, t1] (by how they were judged) and the record's annotations there."""
        r = self.beats["r"]
        inside = (r >= t0 * self.fs) & (r <= t1 * self.fs)
        rt = r[inside] / self.fs
        y = np.interp(rt, t, np.nan_to_num(x))
        judged = self.beats["state"][inside] == STATES[JUDGED]
        flagged = self.beats["anomaly"][inside]
        for mask, colour, label, size in ((~judged, UNJUDGED, "R peak, not judged", 5),
                                          (judged & ~flagged, NORMAL, "R peak", 5),
                                          (flagged, FLAGGED, "flagged beat", 7)):
            if mask.any():
                ax.plot(rt[mask], y[mask], "o", color=colour, ms=size, ls="none", label=label, zorder=3)
        if not self.annotations:
            return
        ref, sym = self.annotations
        at = (ref >= t0 * self.fs) & (ref <= t1 * self.fs)
        top = ax.get_ylim()[1]
        for sample, symbol in zip(ref[at], sym[at]):
            ax.text(sample / self.fs, top, plain(str(symbol), 4), color=REFERENCE, ha="center", va="top",
                    fontsize=10, fontweight="bold")

    # --- the top beats -------------------------------------------------------------------------------------
    def draw_beats(self) -> MplFigure:
        rows = len(self.top)
        fig = new_figure(0.4 + 2.05 * rows)
        axes = fig.subplots(rows, 2, width_ratios=[2.3, 1], squeeze=False)
        for i, top in enumerate(self.top):
            self._context(axes[i][0], top, i)
            self._overlay(axes[i][1], top, first=i == 0)
        handles, labels = [], []
        for ax in axes[0]:
            h, lab = ax.get_legend_handles_labels()
            handles += h
            labels += lab
        fig.legend(handles, labels, loc="outside upper right", ncols=len(handles), frameon=False, fontsize=9)
        return fig

    def _context(self, ax: Axes, top: _TopBeat, rank: int) -> None:
        half = int(CONTEXT_S / 2 * self.fs)
        centre = top.r - top.lo
        a = max(centre - half, 0)
        x = top.signal[a:centre + half + 1]
        t = (top.lo + a + np.arange(len(x))) / self.fs
        self._trace(ax, t, x, linewidth=0.9)
        self._mark_peaks(ax, t[0], t[-1], t, x)
        ax.axvspan(top.r / self.fs - BEAT_PRE_S, top.r / self.fs + BEAT_POST_S, color=FLAGGED, alpha=0.08, lw=0)
        ax.set_xlim(t[0], t[-1])
        self._paper(ax)
        ax.set_ylabel(self.rec.units)
        label = self._label(top.r)
        verdict = "flagged" if top.anomaly else "not flagged"
        title = (f"#{rank + 1}  beat {top.row} at {clock(top.r / self.fs)}: score {top.score:.3g} "
                 f"(threshold {top.threshold:.3g}, {verdict})")
        if label:
            title += f" · annotation {plain(label, 60)}"
        ax.set_title(title, loc="left", fontsize=10)
        if rank == len(self.top) - 1:
            ax.set_xlabel("time in record (s)")

    def _overlay(self, ax: Axes, top: _TopBeat, first: bool) -> None:
        beat = self._window(top, top.r)
        if beat is None:
            note(ax, "beat window incomplete")
            return
        ms = 1e3 * (np.arange(len(beat)) / self.fs - BEAT_PRE_S)
        template, k = self._template(top)
        if self.rec.model_window is not None:
            pre, post = self.rec.model_window
            ax.axvspan(-1e3 * pre, 1e3 * post, color="#d9d9d9", alpha=0.6, lw=0,
                       label="model window" if first else None)
        if template is not None:
            ax.plot(ms, template, color=NORMAL, linewidth=1.6, label=f"template ({k} beats)" if first else None)
        ax.plot(ms, beat, color=FLAGGED, linewidth=1.4, label="this beat" if first else None)
        ax.set_xlim(ms[0], ms[-1])
        self._paper(ax, 1e-3)
        ax.set_ylabel(self.rec.units)
        ax.set_title("beat vs running template" + ("" if template is not None else " (no template yet)"),
                     fontsize=10)
        if top is self.top[-1]:
            ax.set_xlabel("ms from R peak")

    def _window(self, top: _TopBeat, r: int) -> np.ndarray | None:
        """The beat at R peak `r` (P wave to T wave) from the top beat's kept signal, centred on its median."""
        a = r - int(BEAT_PRE_S * self.fs) - top.lo
        b = r + int(BEAT_POST_S * self.fs) - top.lo + 1
        if a < 0 or b > len(top.signal):
            return None
        x = top.signal[a:b]
        if not np.isfinite(x).all():
            return None
        return x - np.median(x)

    def _template(self, top: _TopBeat) -> tuple[np.ndarray | None, int]:
        """The running template before `top` (the model's rule, module docstring): (template, beats in it)."""
        b = self.beats
        rr = b["rr_ms"].astype(np.float64)
        windows: list[np.ndarray] = []
        row = top.row - 1
        while row >= 0 and len(windows) < self.rec.template_beats and b["r"][row] > top.lo:
            history = rr[max(row - RR_HISTORY, 0):row]
            typical = float(np.median(history)) if len(history) else rr[row]
            if typical <= 0 or rr[row] / typical >= self.rec.min_rr_ratio:
                window = self._window(top, int(b["r"][row]))
                if window is not None:
                    windows.append(window)
            row -= 1
        if not windows:
            return None, 0
        return np.median(np.stack(windows), axis=0), len(windows)

    def _label(self, r: int) -> str:
        if not self.annotations:
            return ""
        ref, sym = self.annotations
        i = int(np.searchsorted(ref, r))
        near = [j for j in (i - 1, i) if 0 <= j < len(ref) and abs(int(ref[j]) - r) <= TOLERANCE_S * self.fs]
        if not near:
            return "none (no annotated beat within 150 ms)"
        j = min(near, key=lambda k: abs(int(ref[k]) - r))
        symbol = str(sym[j])
        return f"{symbol} ({BEAT_LABELS[symbol]})" if symbol in BEAT_LABELS else symbol

    # --- over time -----------------------------------------------------------------------------------------
    def draw_scores(self) -> MplFigure:
        b = self.beats
        fig = new_figure(5.6)
        ax, rate = fig.subplots(2, 1, sharex=True, height_ratios=[2.6, 1])
        t = b["r"] / self.fs / self.scale
        judged = b["state"] == STATES[JUDGED]
        flagged = b["anomaly"]
        positive = b["score"][b["score"] > 0]
        log = len(positive) == len(b) and positive.max() / np.median(positive) > 30
        small = 4 if len(b) < DENSE_BEATS else 2  # a day's 100 000 beats: small dots
        style: dict[str, Any] = {"ls": "none", "rasterized": True}  # thousands of points: a bitmap
        ax.plot(t[~judged], b["score"][~judged], "x", color=UNJUDGED, ms=small, label="not judged", **style)
        above = judged & ~flagged & (b["score"] > b["threshold"])  # held back by the model's shape gate
        below = judged & ~flagged & ~above
        ax.plot(t[below], b["score"][below], ".", color=NORMAL, ms=small, alpha=0.7, label="judged, below", **style)
        if above.any():
            ax.plot(t[above], b["score"][above], "o", mfc="none", mec=NORMAL, ms=small + 1, mew=0.8,
                    label=f"above, normal shape ({int(above.sum())})", **style)
        ax.plot(t[flagged], b["score"][flagged], ".", color=FLAGGED, ms=small + 2,
                label=f"flagged ({int(flagged.sum())})", **style)
        if self.annotations:
            is_pvc, _ = label_peaks(b["r"], *self.annotations, self.fs)
            ax.plot(t[is_pvc], b["score"][is_pvc], "o", mfc="none", mec="black", mew=0.7, ms=small + 3,
                    label="annotated PVC", **style)
        ax.plot(np.r_[t, self.duration_s / self.scale], np.r_[b["threshold"], b["threshold"][-1:]],
                drawstyle="steps-post", color=THRESHOLD, ls="--", lw=1.6, label="threshold", zorder=4)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel("anomaly score" + (" (log scale)" if log else ""))
        _legend_above(ax, 6)
        width = _bin_width(self.duration_s)
        edges = np.arange(0.0, self.duration_s + width, width)
        counts, _ = np.histogram(b["r"][flagged] / self.fs, edges)
        rate.stairs(counts * 60.0 / width, edges / self.scale, fill=True, color=FLAGGED, alpha=0.8)
        rate.set_ylabel("flagged / min")
        rate.set_title(f"flagged beats per minute, in {_duration(width)} bins", loc="left", fontsize=10)
        rate.set_xlim(0, self.duration_s / self.scale)
        rate.set_xlabel(self.time_label)
        return fig

    def draw_heart_rate(self) -> MplFigure:
        r = self.beats["r"]
        rr_s = np.diff(r) / self.fs
        ok = rr_s > 0
        t_s, hr = r[1:][ok] / self.fs, 60.0 / rr_s[ok]
        fig = new_figure(3.6)
        ax = fig.subplots()
        dense = len(hr) >= DENSE_BEATS
        ax.plot(t_s / self.scale, hr, ".", color=NORMAL, ms=2 if dense else 3, alpha=0.25 if dense else 0.5,
                label="beat to beat", rasterized=True)
        width = _bin_width(self.duration_s)
        centre, median, p10, p90 = _binned(t_s, hr, width)
        ax.fill_between(centre / self.scale, p10, p90, color=SIGNAL, alpha=0.15, linewidth=0,
                        label=f"10th-90th percentile per {_duration(width)}")
        ax.plot(centre / self.scale, median, color=SIGNAL, lw=1.6, label=f"median per {_duration(width)}")
        lo, hi = np.percentile(hr, [0.5, 99.5])
        ax.set_ylim(max(0.0, lo - 10), hi + 10)
        ax.set_xlim(0, self.duration_s / self.scale)
        ax.set_xlabel(self.time_label)
        ax.set_ylabel("heart rate (bpm)")
        ax.set_title(f"median {60.0 * self.fs / float(np.median(np.diff(r))):.0f} bpm", loc="left")
        _legend_above(ax, 3)
        return fig

    # --- against the annotations ---------------------------------------------------------------------------
    def roc_figure(self) -> Figure:
        title = "ROC curve against the annotations"
        if not self.annotations:
            return Figure("ecg_roc", title, f"ROC curve: {self.annotation_note}.")
        b = self.beats
        judged = b["state"] == STATES[JUDGED]
        if not judged.any():
            return Figure("ecg_roc", title, "ROC curve: no beat was judged.")
        ref, sym = self.annotations
        cutoff = int(b["r"][-1]) + int(LOOKAHEAD_S * self.fs)  # as the summary: annotated beats up to the last
        keep = ref <= cutoff
        is_pvc, _ = label_peaks(b["r"][judged], ref[keep], sym[keep], self.fs)
        if is_pvc.all() or not is_pvc.any():
            return Figure("ecg_roc", title, "ROC curve: the beats judged are all of one class (PVC `V` or not), "
                                            "so there is no curve.")
        scores = b["score"][judged]
        flagged = b["anomaly"][judged]

        def draw() -> MplFigure:
            return _draw_roc(scores, is_pvc, flagged, float(b["threshold"][-1]))

        return Figure("ecg_roc", title,
                      f"Left: true against false positive rate over every threshold, for the {len(scores)} judged "
                      f"beats with the annotated PVCs (V) as positives ({int(is_pvc.sum())}); the dot is the run's "
                      "threshold. Right: the scores of annotated PVCs and of the other beats, with the threshold.",
                      draw)


def _draw_roc(scores: np.ndarray, positive: np.ndarray, flagged: np.ndarray, threshold: float) -> MplFigure:
    fpr, tpr, _ = roc_curve(scores, positive)
    fig = new_figure(4.6)
    roc, hist = fig.subplots(1, 2, width_ratios=[1, 1.35])
    roc.plot([0, 1], [0, 1], color="#bbbbbb", ls=":", label="chance")
    roc.plot(fpr, tpr, color=SIGNAL, lw=1.8, label=f"AUC {roc_auc(scores, positive):.3f}")
    op_fpr = float((flagged & ~positive).sum() / (~positive).sum())
    op_tpr = float((flagged & positive).sum() / positive.sum())
    roc.plot([op_fpr], [op_tpr], "o", color=THRESHOLD, ms=8,
             label=f"threshold: TPR {op_tpr:.2f}, FPR {op_fpr:.3f}")
    roc.set_xlim(-0.01, 1.0)
    roc.set_ylim(0.0, 1.01)
    roc.set_aspect("equal")
    roc.set_xlabel("false positive rate (non-PVC beats flagged)")
    roc.set_ylabel("true positive rate (PVCs flagged)")
    roc.legend(loc="lower right")
    roc.set_title("ROC, PVC (V) beats positive", loc="left")
    positive_scores = scores[scores > 0]
    log = len(positive_scores) == len(scores) and scores.max() / np.median(scores) > 30
    bins = np.geomspace(scores.min(), scores.max(), 60) if log else np.linspace(scores.min(), scores.max(), 60)
    hist.hist(scores[~positive], bins=bins, color=NORMAL, alpha=0.65, label=f"other beats ({int((~positive).sum())})")
    hist.hist(scores[positive], bins=bins, color=FLAGGED, alpha=0.65, label=f"annotated PVC ({int(positive.sum())})")
    if log:
        hist.set_xscale("log")
    hist.set_yscale("log")
    hist.axvline(threshold, color=THRESHOLD, ls="--", lw=1.4, label=f"threshold {threshold:.4g}")
    hist.set_xlabel("anomaly score" + (" (log scale)" if log else ""))
    hist.set_ylabel("beats (log scale)")
    hist.legend(loc="upper right")
    hist.set_title("score distributions by annotation", loc="left")
    return fig


def _ecg_paper(ax: Axes, unit_s: float = 1.0) -> None:
    """ECG paper behind a trace, at the axes' current limits: 0.04 s x 0.1 mV small squares, 0.2 s x 0.5 mV
    large ones (`unit_s`: seconds per x unit, 1e-3 for an axis in ms). Drawn as lines, not as the tick grid,
    so the tick labels stay sparse."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    ax.grid(False)
    for step, colour, width in ((0.04 / unit_s, SMALL_SQUARE, 0.5), (0.2 / unit_s, LARGE_SQUARE, 0.8)):
        ax.vlines(np.arange(np.ceil(x0 / step), np.floor(x1 / step) + 1) * step, y0, y1, colors=colour,
                  linewidth=width, zorder=0)
    for step, colour, width in ((0.1, SMALL_SQUARE, 0.5), (0.5, LARGE_SQUARE, 0.8)):
        ax.hlines(np.arange(np.ceil(y0 / step), np.floor(y1 / step) + 1) * step, x0, x1, colors=colour,
                  linewidth=width, zorder=0)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def signal_units(source: str) -> str:
    """WFDB and EDF records are read in mV; a CSV file or stdin in whatever units they carry."""
    from streamer.ecg.readers import FORMAT_SUFFIXES

    return "signal units" if source == "-" or Path(source).suffix.lower() in FORMAT_SUFFIXES["csv"] else "mV"


def _bin_width(duration_s: float) -> float:
    return float(next((w for w in BIN_WIDTHS_S if duration_s / w <= MAX_BINS), BIN_WIDTHS_S[-1]))


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _binned(t: np.ndarray, values: np.ndarray, width: float) -> tuple[np.ndarray, ...]:
    """Per bin of `width` seconds with values (t sorted): centre, median, 10th and 90th percentiles."""
    index = (t // width).astype(np.int64)
    bins, first = np.unique(index, return_index=True)
    parts = np.split(values, first[1:])
    stats = np.array([np.percentile(part, [50, 10, 90]) for part in parts])
    return (bins + 0.5) * width, stats[:, 0], stats[:, 1], stats[:, 2]


def _legend_above(ax: Axes, columns: int, title: str | None = None) -> None:
    """The legend in a row above the axes, right-aligned (never over the data)."""
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=columns, frameon=False, borderaxespad=0.2,
              fontsize=9, title=title)


def _threshold_text(threshold: dict[str, Any]) -> str:
    value = threshold.get("value")
    if not isinstance(value, (int, float)):
        return "dashed: the threshold"
    return f"dashed: the threshold, {value:.4g} ({threshold.get('source', '')})"
