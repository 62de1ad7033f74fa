"""The audio stream kind: any rate and channel count in, resampled and mixed to mono at the edge, cut
into the model's frames (with optional overlap-add), reconstructed, and handed back frame by frame.

The per-stream work (resampling, framing, overlap-add) is small next to the model (a 4096-sample frame
every hop), so it runs stream by stream; what is shared across streams is the model call: every frame
that becomes ready in a tick, from any stream, goes through one batched onnxruntime call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamer.audio.events import AudioFrameEvent
from streamer.audio.framer import AudioFrame, FrameCutter, OverlapAdd, check_hop
from streamer.audio.levels import PeakNormaliser
from streamer.audio.quality import SILENCE
from streamer.audio.resample import StreamResampler
from streamer.core.errors import ModelError, StreamError
from streamer.core.kind import Chunk, Key
from streamer.core.model import Model
from streamer.core.modelmeta import AUDIO_TASK

OPTIONS = ("rate", "channels", "hop", "peak")


def model_framing(model: Model) -> tuple[int, int]:
    """(sample rate, frame length) from the model's metadata."""
    try:
        return int(model.meta["sample_rate_hz"]), int(model.meta["frame"]["length"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(model.path, f"audio framing not described in metadata ({exc})") from None


@dataclass
class _AudioStream:
    key: Key
    rate: float
    channels: int
    hop: int
    resampler: StreamResampler
    cutter: FrameCutter
    ola: OverlapAdd
    normaliser: PeakNormaliser
    taken: int = 0  # input samples (frames of `channels`) taken, at the stream's own rate
    frames: int = 0  # frames judged
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0))  # input whose output is not final yet
    ending: int = 0  # frames of the final flush still to judge (0: not ending)


@dataclass
class AudioWork:
    inputs: np.ndarray
    rows: list[tuple[_AudioStream, AudioFrame]] = field(default_factory=list)


def frame_snr(frame: AudioFrame, rec: np.ndarray) -> float:
    """SNR over the frame's real samples (the zero padding before and after the stream left out)."""
    lo = max(0, -frame.start)
    ref = frame.samples[lo:lo + frame.valid]
    err = rec[lo:lo + frame.valid] - ref
    signal, error = float(np.dot(ref, ref)), float(np.dot(err, err))
    if signal <= SILENCE * max(len(ref), 1):
        return float("nan")
    return float("inf") if error == 0.0 else 10.0 * math.log10(signal / error)


class AudioKind:
    """Audio streams on one codec autoencoder. Options per stream: `rate` (Hz, default the model's),
    `channels` (default 1), `hop` (default the frame: no overlap; or <= frame/2: overlap-add), `peak`
    (the whole input's known peak, e.g. a file's; default: the running peak, as live)."""

    task = AUDIO_TASK

    def __init__(self, model: Model) -> None:
        part = model.meta.get("part", "autoencoder")
        if part != "autoencoder":
            raise ModelError(model.path, f"this is the model's {part} alone; a stream needs the whole autoencoder")
        self.model = model
        self.fs, self.frame_length = model_framing(model)
        model.check_input_size(self.frame_length)
        try:
            PeakNormaliser(model.meta["normalisation"])
        except ValueError as exc:
            raise ModelError(model.path, str(exc)) from None
        self.streams: dict[Key, _AudioStream] = {}

    # --- streams -------------------------------------------------------------------------------------------
    def open(self, key: Key, options: Mapping[str, Any]) -> None:
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise StreamError(key, f"unknown audio stream options {sorted(unknown)}", expected=", ".join(OPTIONS))
        # `is None`, not `or`: a 0 given is refused below, never taken for the default
        rate = float(self.fs if options.get("rate") is None else options["rate"])
        channels = int(1 if options.get("channels") is None else options["channels"])
        hop = int(self.frame_length if options.get("hop") is None else options["hop"])
        if rate <= 0 or channels < 1:
            raise StreamError(key, "bad audio format", expected="rate > 0 Hz, channels >= 1",
                              got=f"{rate:g} Hz, {channels} channels")
        try:
            check_hop(self.frame_length, hop)
        except ValueError as exc:
            raise StreamError(key, str(exc)) from None
        peak = options.get("peak")
        self.streams[key] = _AudioStream(
            key, rate, channels, hop, StreamResampler(rate, self.fs, channels), FrameCutter(self.frame_length, hop),
            OverlapAdd(self.frame_length, hop),
            PeakNormaliser(self.model.meta["normalisation"], None if peak is None else float(peak)))

    def close(self, key: Key) -> None:
        del self.streams[key]

    def reset(self, key: Key) -> None:
        s = self.streams[key]
        s.resampler.reset()
        s.cutter.reset()
        s.ola.reset()
        s.normaliser.reset()
        s.taken = s.frames = s.ending = 0
        s.pending = np.zeros(0)

    def save(self, key: Key) -> dict[str, Any]:
        s = self.streams[key]
        return {"taken": s.taken, "frames": s.frames, "pending": s.pending.copy(), "peak": s.normaliser.peak,
                "resampler": s.resampler.state(), "cutter": s.cutter.state(), "ola": s.ola.state()}

    def restore(self, key: Key, state: Mapping[str, Any]) -> None:
        s = self.streams[key]
        s.taken, s.frames = int(state["taken"]), int(state["frames"])
        s.pending = np.asarray(state["pending"], dtype=np.float64)
        s.normaliser.peak = float(state["peak"])
        s.resampler.restore(dict(state["resampler"]))
        s.cutter.restore(state["cutter"])
        s.ola.restore(state["ola"])

    def counters(self, key: Key) -> dict[str, int]:
        return {}

    def describe(self, key: Key) -> dict[str, Any]:
        s = self.streams[key]
        return {"rate_hz": s.rate, "channels": s.channels, "model_rate_hz": self.fs, "frame": self.frame_length,
                "hop": s.hop, "frames": s.frames, "peak_gain": "known peak" if s.normaliser.fixed else "running peak"}

    # --- data ----------------------------------------------------------------------------------------------
    def check(self, key: Key, chunk: Chunk) -> np.ndarray:
        s = self.streams[key]
        x = np.asarray(chunk.samples, dtype=np.float32)
        if x.ndim == 2 and x.shape[1] == 1 and s.channels == 1:
            x = x[:, 0]
        expected = "shape (n,)" if s.channels == 1 else f"shape (n, {s.channels})"
        if (s.channels == 1 and x.ndim != 1) or (s.channels > 1 and (x.ndim != 2 or x.shape[1] != s.channels)):
            raise StreamError(key, "chunk shape does not match the stream's channels", expected=expected,
                              got=f"shape {x.shape}", reason="wrong shape")
        if chunk.rate is not None and float(chunk.rate) != s.rate:
            raise StreamError(key, "chunk rate differs from the stream's", expected=f"{s.rate:g} Hz",
                              got=f"{float(chunk.rate):g} Hz", reason="wrong rate")
        if chunk.start is not None and int(chunk.start) != s.taken:
            raise StreamError(key, "chunk does not continue the stream", expected=f"start {s.taken}",
                              got=f"start {chunk.start}", reason="gap or overlap")
        if not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).any(axis=1))[0])
            raise StreamError(key, f"non-finite sample (NaN or inf) at index {bad} of the chunk",
                              reason="non-finite sample")
        return x

    def frame(self, prepared: Mapping[Key, np.ndarray]) -> AudioWork:
        rows: list[tuple[_AudioStream, AudioFrame]] = []
        for key, x in prepared.items():
            s = self.streams[key]
            s.taken += len(x)
            self._cut(s, s.resampler.process(x), rows)
        return self._work(rows)

    def frame_end(self, keys: Iterable[Key]) -> AudioWork:
        rows: list[tuple[_AudioStream, AudioFrame]] = []
        for key in keys:
            s = self.streams[key]
            self._cut(s, s.resampler.flush(), rows)
            # the frames left (with overlap there is always one; without, none may be left, and then no
            # output is pending either)
            final = s.cutter.flush()
            s.ending = len(final)
            rows += [(s, f) for f in final]
        return self._work(rows)

    def _cut(self, s: _AudioStream, y: np.ndarray, rows: list[tuple[_AudioStream, AudioFrame]]) -> None:
        if len(y):
            s.pending = np.concatenate([s.pending, y])
        for f in s.cutter.feed(y):
            rows.append((s, f))

    def _work(self, rows: list[tuple[_AudioStream, AudioFrame]]) -> AudioWork:
        if not rows:
            return AudioWork(np.zeros((0, self.frame_length), np.float32))
        for s, f in rows:
            f.gain = s.normaliser.gain(f.samples)
        inputs = np.stack([f.samples * f.gain for _, f in rows]).astype(np.float32)
        return AudioWork(inputs, rows)

    def judge(self, work: AudioWork, outputs: np.ndarray) -> dict[Key, list[Any]]:
        events: dict[Key, list[Any]] = {}
        recon = np.asarray(outputs, dtype=np.float64).reshape(len(work.rows), -1) if work.rows else outputs
        for (s, f), rec in zip(work.rows, recon):
            rec = rec / f.gain  # undo the normalisation
            final = s.ending > 0
            out = s.ola.add(f.start, rec, s.cutter.received if final else None)
            if final:
                s.ending -= 1
                if s.ending == 0:
                    out = np.concatenate([out, s.ola.finish(s.cutter.received)])
            start = s.ola.emitted - len(out)
            ref, s.pending = s.pending[:len(out)], s.pending[len(out):]
            events.setdefault(s.key, []).append(AudioFrameEvent(
                s.key, s.frames, max(f.start, 0) / self.fs, start, out, ref, frame_snr(f, rec), f.gain))
            s.frames += 1
        return events
