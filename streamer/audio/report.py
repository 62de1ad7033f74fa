"""An audio run's record, from its blocks and frame events only: the dashboard's view (input level, the
reconstruction, per-frame SNR) and the summary (SNR of the whole output, per-frame SNR, clicks at frame
edges against the input's own, clipped samples)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamer.audio.events import AudioFrameEvent
from streamer.audio.levels import dbfs
from streamer.audio.quality import SILENCE, StreamingEdgeRatio
from streamer.core.pool import Stream
from streamer.run.metrics import RecentSamples
from streamer.run.sources import Block

TRACE_S = 2.0  # seconds of output drawn on the dashboard
TRACE_ROWS = (2, 4, 8)  # text rows of each envelope: fewest, preferred, most
SNR_HISTORY = 200  # frames kept for the SNR sparkline (a wide terminal shows up to this many)


class AudioReport:
    unit = "frames"

    def __init__(self, stream: Stream, info: dict[str, Any] | None = None) -> None:
        self.stream = stream
        d = stream.describe()
        self.fs, self.frame, self.hop = int(d["model_rate_hz"]), int(d["frame"]), int(d["hop"])
        self.info = dict(info or {})
        residues = (-(self.frame - self.hop), 0)  # frame starts and frame ends, mod hop
        self.edges_out = StreamingEdgeRatio(self.hop, residues)
        self.edges_in = StreamingEdgeRatio(self.hop, residues)
        self.lock = threading.Lock()
        self.signal_energy = self.error_energy = 0.0
        self.samples_out = self.clipped = 0
        self.frame_snrs: list[float] = []
        self.level_dbfs = float("-inf")
        self.trace = RecentSamples(int(TRACE_S * self.fs))
        self.trace_in = RecentSamples(int(TRACE_S * self.fs))  # the input, aligned with the reconstruction

    def on_block(self, block: Block) -> None:
        x = np.asarray(block.samples, dtype=np.float64)  # a device's own block is (n, channels) ...
        self.level_dbfs = dbfs(x.mean(axis=1) if x.ndim == 2 else x)  # ... its level is the mono mix's, as before

    def on_events(self, events: Sequence[AudioFrameEvent]) -> None:
        for e in events:
            out, ref = e.samples, e.reference
            err = ref - out
            self.signal_energy += float(np.dot(ref, ref))
            self.error_energy += float(np.dot(err, err))
            if len(out) and (out.max() > 1.0 or out.min() < -1.0):
                self.clipped += int(np.count_nonzero(np.abs(out) > 1.0))
            self.edges_out.update(out)
            self.edges_in.update(ref)
            self.samples_out += len(out)
            self.trace.add(out)
            self.trace_in.add(ref)
            with self.lock:
                self.frame_snrs.append(e.snr_db)

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
        d = self.stream.describe()
        out: dict[str, Any] = {
            **self.info, "frames": len(snrs), "frame": self.frame, "hop": self.hop, "sample_rate_hz": self.fs,
            "samples_out": self.samples_out, "output_s": round(self.samples_out / self.fs, 3),
            "snr_db": round(overall, 3) if np.isfinite(overall) else None,
            "snr_db_median_frame": round(float(np.median(finite)), 3) if len(finite) else None,
            "snr_db_mean_frame": round(float(np.mean(finite)), 3) if len(finite) else None,
            "silent_frames": int(len(snrs) - len(finite)),
            "edge_jump_ratio": _round(self.edges_out.ratio), "edge_jump_ratio_input": _round(self.edges_in.ratio),
            "clipped_samples": self.clipped,
            "peak_gain": "file peak" if d["peak_gain"] == "known peak" else "running peak (live)",
        }
        if len(snrs) and not len(finite):
            out["snr_note"] = "undefined: the input is silent"
        return out

    def view(self) -> dict[str, Any]:
        with self.lock:
            snrs = self.frame_snrs[-SNR_HISTORY:]
            n_frames = len(self.frame_snrs)
        trace, trace_in = self.trace.get(), self.trace_in.get()
        finite = [s for s in snrs if np.isfinite(s)]
        level = self.level_dbfs
        both = [trace_in, trace]  # one colour scale: the two spectrograms compare
        traces = [{"label": f"input, last {TRACE_S:g} s (spectrogram, {self.fs // 2} Hz at the top)",
                   "signal": trace_in, "spectrogram_rate": self.fs, "compare": both, "rows": TRACE_ROWS},
                  {"label": "reconstruction", "signal": trace, "spectrogram_rate": self.fs, "compare": both,
                   "rows": TRACE_ROWS}]
        return {
            "traces": traces,
            "meters": [{"label": "input level", "value": (max(level, -60.0) + 60.0) / 60.0,
                        "text": "silent" if not np.isfinite(level) else f"{level:.1f} dBFS"}],
            "series": [{"label": "SNR dB", "values": snrs, "lo": 0.0, "threshold": None}],
            "fields": {**{k: str(v) for k, v in self.info.items()},
                       "frames": f"{n_frames} of {self.frame} samples, hop {self.hop}",
                       "SNR (last frame)": f"{finite[-1]:.1f} dB" if finite else "-",
                       "SNR (overall)": _fmt_db(self.snr_db())},
            "budget_ms": 1e3 * self.hop / self.fs,
        }


def _round(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None


def _fmt_db(x: float) -> str:
    return f"{x:.2f} dB" if np.isfinite(x) else "undefined (silent)" if np.isnan(x) else "exact"
