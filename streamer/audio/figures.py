"""`--report` for an audio run: what the figures need, kept while it runs, and the figures.

Kept, bounded whatever the run's length (a day of live audio: ~350 000 frames at hop 2048, ~6 MB):
- input, reconstruction and their difference as min/max envelopes (`Envelope`, at most 4000 bins each);
- per frame, 16 bytes: its time, SNR and the input's and output's RMS levels;
- an excerpt of `EXCERPT_S` seconds of input and reconstruction from the first frame that is not silent,
  for the mel spectrograms (librosa, as the audio ecosystem draws them) and the waveform's close-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from streamer.audio.events import AudioFrameEvent
from streamer.audio.levels import dbfs
from streamer.run.figures import Columns, Envelope, Figure
from streamer.run.sources import Block

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

EXCERPT_S = 6.0  # s of input and output kept for the spectrograms
ZOOM_S = 0.05  # s drawn sample by sample in the close-up: the loudest 50 ms of the excerpt
N_FFT, SPEC_HOP, N_MELS = 512, 128, 64  # mel spectrogram: 64 ms windows every 16 ms at 8 kHz, 64 bands
DB_RANGE = 80.0  # dB below the input's loudest bin shown in the spectrograms
SILENT_SNR_AXIS_DB, SILENT_LEVEL_AXIS_DBFS = 30.0, -100.0  # axes shown for a silent run (nothing to scale to)
FRAME_FIELDS = [("t", np.float64), ("snr", np.float32), ("level_in", np.float32), ("level_out", np.float32)]


class AudioRecorder:
    """The `Recorder` of an audio run (one stream), at the model's rate `fs`."""

    def __init__(self, fs: int, frame: int, hop: int) -> None:
        self.fs, self.frame, self.hop = int(fs), int(frame), int(hop)
        self.input, self.output, self.error = Envelope(), Envelope(), Envelope()
        self.frames = Columns(FRAME_FIELDS)
        self.excerpt_start: int | None = None  # output sample index of the excerpt's first sample
        self.excerpt_in: list[np.ndarray] = []
        self.excerpt_out: list[np.ndarray] = []
        self.excerpt_n = 0
        self.excerpt_max = int(EXCERPT_S * self.fs)

    def on_block(self, block: Block) -> None:
        pass  # each frame event carries its input and its output

    def on_events(self, events: Sequence[AudioFrameEvent]) -> None:
        for e in events:
            self.input.add(e.reference)
            self.output.add(e.samples)
            self.error.add(e.reference - e.samples)
            self._excerpt(e)
        self.frames.extend(t=[e.start / self.fs for e in events], snr=[e.snr_db for e in events],
                           level_in=[dbfs(e.reference) for e in events], level_out=[dbfs(e.samples) for e in events])

    def _excerpt(self, e: AudioFrameEvent) -> None:
        if self.excerpt_n >= self.excerpt_max or not len(e.samples):
            return
        if self.excerpt_start is None:
            if not np.isfinite(e.snr_db):  # silent so far: the excerpt starts at the first sound
                return
            self.excerpt_start = e.start
        take = self.excerpt_max - self.excerpt_n
        self.excerpt_in.append(np.array(e.reference[:take]))
        self.excerpt_out.append(np.array(e.samples[:take]))
        self.excerpt_n += min(take, len(e.samples))

    def figures(self, summary: dict[str, Any]) -> list[Figure]:
        return AudioFigures(self, summary).figures()


class AudioFigures:
    def __init__(self, rec: AudioRecorder, summary: dict[str, Any]) -> None:
        from streamer.ui.report_page import time_axis

        self.rec = rec
        self.fs = rec.fs
        self.frames = rec.frames.view()
        self.duration_s = rec.output.samples / self.fs
        self.scale, self.time_label = time_axis(self.duration_s)
        self.snr_db = summary.get("snr_db")
        self.x_in = np.concatenate(rec.excerpt_in) if rec.excerpt_in else np.zeros(0)
        self.x_out = np.concatenate(rec.excerpt_out) if rec.excerpt_out else np.zeros(0)
        self.t0 = (rec.excerpt_start or 0) / self.fs

    def figures(self) -> list[Figure]:
        n = len(self.frames)
        excerpt = f"{len(self.x_in) / self.fs:.1f} s from {self.t0:.1f} s (the first sound)"
        silent = "The input is silent: no excerpt."
        return [
            Figure("audio_waveform", "Input against reconstruction: waveform",
                   f"Top: the whole run ({self.duration_s:.1f} s) as the minimum and maximum per bin of the input "
                   "(grey), the reconstruction (orange outline) and their difference (red). Bottom: the loudest "
                   f"{1e3 * ZOOM_S:g} ms of the excerpt ({excerpt}) sample by sample.",
                   self.draw_waveform if self.rec.output.samples else None),
            Figure("audio_mel", "Input against reconstruction: mel spectrograms",
                   f"Mel spectrograms (librosa; {N_MELS} bands to {self.fs // 2} Hz, {1e3 * N_FFT / self.fs:g} ms "
                   f"windows) of {excerpt}: the input, the reconstruction (both in dB relative to the input's "
                   "loudest bin), and the reconstruction minus the input in dB (red: energy added, blue: lost).",
                   self.draw_mel if len(self.x_in) >= N_FFT else None) if len(self.x_in) else
            Figure("audio_mel", "Input against reconstruction: mel spectrograms", silent),
            Figure("audio_snr", "SNR per frame",
                   f"Top: each of the {n} frames' signal-to-noise ratio, reconstruction against input (dashed: "
                   "the whole output's SNR; grey ticks: silent frames, SNR undefined). Bottom: the input's and "
                   "the reconstruction's RMS level per frame.", self.draw_snr if n else None),
        ]

    def draw_waveform(self) -> MplFigure:
        from streamer.ui.report_page import FLAGGED, OUTPUT, SIGNAL, new_figure, note

        fig = new_figure(6.2)
        whole, zoom = fig.subplots(2, 1, height_ratios=[1, 1])
        # the input filled, the reconstruction's outline over it (they nearly coincide), the difference filled
        for env, colour, label, filled in ((self.rec.input, "#b8b8b8", "input", True),
                                           (self.rec.output, OUTPUT, "reconstruction", False),
                                           (self.rec.error, FLAGGED, "difference", True)):
            start, lo, hi = env.bins()
            t = np.r_[start, env.samples] / self.fs / self.scale
            lo, hi = np.r_[lo, lo[-1:]], np.r_[hi, hi[-1:]]
            if filled:
                whole.fill_between(t, lo, hi, step="post", color=colour, linewidth=0, label=label)
            else:
                whole.step(t, hi, where="post", color=colour, lw=0.6, label=label)
                whole.step(t, lo, where="post", color=colour, lw=0.6)
        whole.set_xlim(0, self.duration_s / self.scale)
        whole.set_xlabel(self.time_label)
        whole.set_ylabel("amplitude (full scale)")
        whole.set_title("whole run", loc="left")
        whole.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, frameon=False)
        if len(self.x_in) < 2:
            note(zoom, "the input is silent: no close-up")
            return fig
        a, b = _loudest(self.x_in, int(ZOOM_S * self.fs))
        t = self.t0 + np.arange(a, b) / self.fs
        zoom.plot(t, self.x_in[a:b], color=SIGNAL, lw=1.3, label="input")
        zoom.plot(t, self.x_out[a:b], color=OUTPUT, lw=1.3, label="reconstruction")
        zoom.plot(t, self.x_in[a:b] - self.x_out[a:b], color=FLAGGED, lw=0.9, alpha=0.8, label="difference")
        zoom.set_xlim(t[0], t[-1])
        zoom.set_xlabel("time (s)")
        zoom.set_ylabel("amplitude (full scale)")
        zoom.set_title(f"close-up: {1e3 * ZOOM_S:g} ms from {t[0]:.3f} s", loc="left")
        zoom.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, frameon=False)
        return fig

    def draw_mel(self) -> MplFigure:
        import librosa

        from streamer.ui.report_page import new_figure

        def mel(x: np.ndarray) -> np.ndarray:
            return librosa.feature.melspectrogram(y=x.astype(np.float32), sr=self.fs, n_fft=N_FFT,
                                                  hop_length=SPEC_HOP, n_mels=N_MELS, fmax=self.fs / 2)

        m_in, m_out = mel(self.x_in), mel(self.x_out)
        ref = float(m_in.max()) or 1.0
        db_in = librosa.power_to_db(m_in, ref=ref, top_db=None)
        db_out = librosa.power_to_db(m_out, ref=ref, top_db=None)
        fig = new_figure(8.4)
        axes = fig.subplots(3, 1, sharex=True)
        for ax, (db, title) in zip(axes, [(db_in, "input"), (db_out, "reconstruction")]):
            image = self._specshow(ax, np.maximum(db, -DB_RANGE), "magma", -DB_RANGE, 0.0)
            ax.set_title(title, loc="left")
        fig.colorbar(image, ax=list(axes[:2]), label="dB (re input's loudest bin)", pad=0.01)
        diff = np.clip(db_out - db_in, -20, 20)
        diff[(db_in < -DB_RANGE + 10) & (db_out < -DB_RANGE + 10)] = 0.0  # both near silence: no difference
        image = self._specshow(axes[2], diff, "RdBu_r", -20.0, 20.0)
        axes[2].set_title("reconstruction minus input", loc="left")
        fig.colorbar(image, ax=axes[2], label="dB", pad=0.01)
        for ax in axes[:2]:
            ax.set_xlabel("")
        axes[2].set_xlabel("time (s)")
        return fig

    def _specshow(self, ax: Axes, db: np.ndarray, cmap: str, vmin: float, vmax: float) -> Any:
        import librosa.display

        image = librosa.display.specshow(db, sr=self.fs, hop_length=SPEC_HOP, n_fft=N_FFT, x_axis="time",
                                         y_axis="mel", fmax=self.fs / 2, ax=ax, cmap=cmap, vmin=vmin, vmax=vmax,
                                         x_coords=self.t0 + np.arange(db.shape[1]) * SPEC_HOP / self.fs)
        ax.set_ylabel("frequency (Hz, mel scale)")
        ax.grid(False)
        return image

    def draw_snr(self) -> MplFigure:
        from streamer.ui.report_page import NORMAL, OUTPUT, SIGNAL, UNJUDGED, new_figure

        f = self.frames
        t = f["t"] / self.scale
        snr = f["snr"].astype(np.float64)
        fig = new_figure(5.6)
        top, levels = fig.subplots(2, 1, sharex=True, height_ratios=[1.4, 1])
        finite = np.isfinite(snr)
        top.plot(t, np.where(finite, snr, np.nan), ".-", color=NORMAL, lw=0.8, ms=3, label="frame SNR")
        if isinstance(self.snr_db, (int, float)):
            top.axhline(self.snr_db, color=SIGNAL, ls="--", lw=1.2, label=f"whole output {self.snr_db:.1f} dB")
        if finite.any():
            median = float(np.median(snr[finite]))
            top.axhline(median, color=SIGNAL, ls=":", lw=1.2, label=f"median frame {median:.1f} dB")
            lo = float(np.min(snr[finite]))
            top.set_ylim(min(0.0, lo - 2), float(np.max(snr[finite])) + 3)
        else:
            top.set_ylim(0.0, SILENT_SNR_AXIS_DB)
            top.text(0.5, 0.5, "the input is silent: no SNR", ha="center", va="center", transform=top.transAxes,
                     color="#555555")
        if (~finite).any():
            y = top.get_ylim()[0]
            top.plot(t[~finite], np.full(int((~finite).sum()), y), "|", color=UNJUDGED, ms=10,
                     label="silent frame", clip_on=False)
        top.set_ylabel("SNR (dB)")
        top.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, frameon=False)
        audible = False
        for field, colour, label in (("level_in", SIGNAL, "input"), ("level_out", OUTPUT, "reconstruction")):
            level = f[field].astype(np.float64)
            audible = audible or bool(np.isfinite(level).any())
            levels.plot(t, np.where(np.isfinite(level), level, np.nan), color=colour, lw=1.0, label=label)
        if not audible:  # digital silence: -inf dBFS throughout
            levels.set_ylim(SILENT_LEVEL_AXIS_DBFS, 0.0)
            levels.text(0.5, 0.5, "silent (-inf dBFS)", ha="center", va="center", transform=levels.transAxes,
                        color="#555555")
        levels.set_ylabel("RMS level (dBFS)")
        levels.set_xlabel(self.time_label)
        levels.set_xlim(0, max(self.duration_s / self.scale, float(t[-1]) if len(t) else 0.0))
        levels.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False)
        return fig


def _loudest(x: np.ndarray, n: int) -> tuple[int, int]:
    """[a, b): the `n` consecutive samples of `x` with the most energy (all of x if shorter)."""
    if len(x) <= n:
        return 0, len(x)
    energy = np.cumsum(np.r_[0.0, x * x])
    a = int(np.argmax(energy[n:] - energy[:-n]))
    return a, a + n
