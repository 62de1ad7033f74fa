"""Audio task: frames -> codec autoencoder -> overlap-added reconstruction -> WAV / speakers, with SNR.

Framing (`FrameCutter`/`OverlapAdd`) and amplitude (`PeakNormaliser`) are in their own modules; this
one keeps the running quality figures and hands finished output samples to the sinks.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamer.audio.framer import AudioFrame, FrameCutter, OverlapAdd
from streamer.audio.levels import PeakNormaliser, dbfs
from streamer.audio.quality import SILENCE, StreamingEdgeRatio
from streamer.core.errors import ModelError
from streamer.run.metrics import RecentSamples
from streamer.core.model import Model
from streamer.run.sources import Block

TRACE_S = 2.0  # seconds of output drawn on the dashboard
SNR_HISTORY = 60  # frames in the SNR sparkline

OutputSink = Callable[[np.ndarray], None]


def model_framing(model: Model) -> tuple[int, int]:
    """(sample rate, frame length) from the model's metadata."""
    try:
        return int(model.meta["sample_rate_hz"]), int(model.meta["frame"]["length"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(model.path, f"audio framing not described in metadata ({exc})") from None


class AudioTask:
    def __init__(self, model: Model, hop: int | None = None, known_peak: float | None = None,
                 outputs: Sequence[OutputSink] = (), output_drops: Sequence[Callable[[], dict[str, int]]] = (),
                 info: dict[str, Any] | None = None) -> None:
        """`outputs` receive the finished reconstruction; `output_drops` report their losses (speakers);
        `info` (output path, device) goes into the summary and the dashboard."""
        self.model = model
        self.fs, self.frame = model_framing(model)
        model.check_input_size(self.frame)
        self.hop = hop or self.frame
        self.cutter = FrameCutter(self.frame, self.hop)
        self.ola = OverlapAdd(self.frame, self.hop)
        try:
            self.normaliser = PeakNormaliser(model.meta["normalisation"], known_peak)
        except ValueError as exc:
            raise ModelError(model.path, str(exc)) from None
        self.outputs = list(outputs)
        self.output_drops = list(output_drops)
        self.info = dict(info or {})
        residues = (-(self.frame - self.hop), 0)  # frame starts and frame ends, mod hop
        self.edges_out = StreamingEdgeRatio(self.hop, residues)
        self.edges_in = StreamingEdgeRatio(self.hop, residues)
        self.lock = threading.Lock()
        self.pending_input = np.zeros(0)  # input samples whose output is not final yet
        self.signal_energy = 0.0
        self.error_energy = 0.0
        self.samples_out = 0
        self.clipped = 0
        self.frame_snrs: list[float] = []
        self.level_dbfs = float("-inf")
        self.trace = RecentSamples(int(TRACE_S * self.fs))
        self.ending = False
        self.n_final = 0  # frames cut at flush, still to be handled

    # --- framing ---
    def feed(self, block: Block) -> list[AudioFrame]:
        self.pending_input = np.concatenate([self.pending_input, block.samples])
        self.edges_in.update(block.samples)
        self.level_dbfs = dbfs(block.samples)
        return self.cutter.feed(block.samples)

    def flush(self) -> list[AudioFrame]:
        self.ending = True
        frames = self.cutter.flush()
        self.n_final = len(frames)
        return frames

    def inputs(self, items: Sequence[AudioFrame]) -> np.ndarray:
        for f in items:
            f.gain = self.normaliser.gain(f.samples)
        return np.stack([f.samples * f.gain for f in items])

    # --- task logic ---
    def handle(self, items: Sequence[AudioFrame], inputs: np.ndarray, outputs: np.ndarray) -> list[dict[str, Any]]:
        recon = np.asarray(outputs, dtype=np.float64).reshape(len(items), -1)
        events = []
        for frame, rec in zip(items, recon):
            rec = rec / frame.gain  # undo the normalisation
            snr = self._frame_snr(frame, rec)
            final = self.ending and self.n_final > 0
            out = self.ola.add(frame.start, rec, self.cutter.received if final else None)
            if final:
                self.n_final -= 1
                if self.n_final == 0:
                    out = np.concatenate([out, self.ola.finish(self.cutter.received)])
            self._emit(out)
            events.append({"t": round(max(frame.start, 0) / self.fs, 4), "frame": len(self.frame_snrs),
                           "snr_db": None if not np.isfinite(snr) else round(snr, 3)})
            with self.lock:
                self.frame_snrs.append(snr)
        return events

    @staticmethod
    def _frame_snr(frame: AudioFrame, rec: np.ndarray) -> float:
        """SNR over the frame's real samples (the zero padding before and after the stream left out)."""
        lo = max(0, -frame.start)
        ref = frame.samples[lo:lo + frame.valid]
        err = rec[lo:lo + frame.valid] - ref
        signal, error = float(np.dot(ref, ref)), float(np.dot(err, err))
        if signal <= SILENCE * max(len(ref), 1):
            return float("nan")
        return float("inf") if error == 0.0 else 10.0 * math.log10(signal / error)

    def _emit(self, out: np.ndarray) -> None:
        if len(out) == 0:
            return
        for sink in self.outputs:  # first the user's outputs, then the bookkeeping
            sink(out)
        ref = self.pending_input[:len(out)]
        self.pending_input = self.pending_input[len(out):]
        err = ref - out
        self.signal_energy += float(np.dot(ref, ref))
        self.error_energy += float(np.dot(err, err))
        if out.max() > 1.0 or out.min() < -1.0:
            self.clipped += int(np.count_nonzero(np.abs(out) > 1.0))
        self.edges_out.update(out)
        self.samples_out += len(out)
        self.trace.add(out)

    def count(self, items: Sequence[Any]) -> int:
        return len(items)

    def drops(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for counter in self.output_drops:
            out.update(counter())
        return out

    # --- reporting ---
    def snr_db(self) -> float:
        """Overall SNR of everything output so far; NaN for silent input (undefined)."""
        if self.signal_energy <= SILENCE * max(self.samples_out, 1):
            return float("nan")
        if self.error_energy == 0.0:
            return float("inf")
        return float(10.0 * np.log10(self.signal_energy / self.error_energy))

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        snrs = np.array(self.frame_snrs)
        finite = snrs[np.isfinite(snrs)]
        overall = self.snr_db()
        out: dict[str, Any] = {
            **self.info, "frames": len(snrs), "frame": self.frame, "hop": self.hop, "sample_rate_hz": self.fs,
            "samples_out": self.samples_out, "output_s": round(self.samples_out / self.fs, 3),
            "snr_db": round(overall, 3) if np.isfinite(overall) else None,
            "snr_db_median_frame": round(float(np.median(finite)), 3) if len(finite) else None,
            "snr_db_mean_frame": round(float(np.mean(finite)), 3) if len(finite) else None,
            "silent_frames": int(len(snrs) - len(finite)),
            "edge_jump_ratio": _round(self.edges_out.ratio), "edge_jump_ratio_input": _round(self.edges_in.ratio),
            "clipped_samples": self.clipped,
            "peak_gain": "file peak" if self.normaliser.fixed else "running peak (live)",
        }
        if len(snrs) and not len(finite):
            out["snr_note"] = "undefined: the input is silent"
        return out

    def view(self) -> dict[str, Any]:
        with self.lock:
            snrs = self.frame_snrs[-SNR_HISTORY:]
        trace = self.trace.get()
        finite = [s for s in snrs if np.isfinite(s)]
        level = self.level_dbfs
        return {
            "trace": trace if len(trace) > 1 else None, "trace_label": f"reconstruction (last {TRACE_S:g} s)",
            "meters": [{"label": "input level", "value": (max(level, -60.0) + 60.0) / 60.0,
                        "text": "silent" if not np.isfinite(level) else f"{level:.1f} dBFS"}],
            "series": [{"label": "SNR dB", "values": snrs, "lo": 0.0, "threshold": None}],
            "fields": {**{k: str(v) for k, v in self.info.items()},
                       "frames": f"{len(self.frame_snrs)} of {self.frame} samples, hop {self.hop}",
                       "SNR (last frame)": f"{finite[-1]:.1f} dB" if finite else "-",
                       "SNR (overall)": _fmt_db(self.snr_db())},
            "budget_ms": 1e3 * self.hop / self.fs,
        }


def _round(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None


def _fmt_db(x: float) -> str:
    return f"{x:.2f} dB" if np.isfinite(x) else "undefined (silent)" if np.isnan(x) else "exact"
