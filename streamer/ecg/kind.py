"""The ECG stream kind: R peaks found online -> beats framed -> autoencoder -> score -> judge -> beat events.

Streams are grouped by sampling rate (the filters depend on it); within a rate, the detector, the framer
and the scorer work on arrays of streams, so a tick costs array operations over all streams plus a little
Python per beat, never per stream. Any rate of at least 100 Hz works: beat windows are defined in seconds
and resampled to the model's beat length.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamer.core.errors import ModelError, StreamError
from streamer.core.kind import Chunk, Key
from streamer.core.limits import MAX_FS
from streamer.core.model import Model
from streamer.core.modelmeta import ECG_TASK
from streamer.ecg.beats import BeatSpec, FramedBeats, FramerBank
from streamer.ecg.detector import MIN_FS, DetectorBank
from streamer.ecg.events import BeatEvent
from streamer.ecg.judge import Judge
from streamer.ecg.quality import QualityBank
from streamer.ecg.scoring import ScoreBank, judged_from, morphology_spec
from streamer.ecg.threshold import parse_method


class _RateGroup:
    """Everything per-stream for the streams of one sampling rate, by slot."""

    def __init__(self, fs: float, spec: BeatSpec, score: Mapping[str, Any]) -> None:
        self.fs = fs
        self.detector = DetectorBank(fs)
        self.framer = FramerBank(spec, fs)
        self.scorer = ScoreBank(spec.feature_names, spec.length, score)
        shape = morphology_spec(score)
        self.shape = ScoreBank(spec.feature_names, spec.length, shape) if shape else None
        self.quality = QualityBank(fs)
        self.free: list[int] = []
        self.next_slot = 0

    def take(self) -> int:
        slot = self.free.pop() if self.free else self.next_slot
        self.next_slot = max(self.next_slot, slot + 1)
        self.clear(slot)
        return slot

    def clear(self, slot: int) -> None:
        self.detector.clear(slot)
        self.framer.clear(slot)
        self.scorer.clear(slot)
        if self.shape is not None:
            self.shape.clear(slot)
        self.quality.clear(slot)

    def reprime(self, slot: int, resume: bool) -> None:
        """Every filter of the slot starts afresh at its next sample: a gap begins there, or the signal resumes
        (`resume`) after a gap or a flat or saturated stretch."""
        self.detector.reprime(slot, resume)
        self.framer.reprime(slot)
        self.quality.reprime(slot)

    def give_back(self, slot: int) -> None:
        self.detector.release(slot)
        self.framer.release(slot)
        self.quality.release(slot)
        self.free.append(slot)


@dataclass
class _EcgStream:
    key: Key
    fs: float
    slot: int
    judge: Judge
    samples: int = 0  # samples taken so far
    last_valid: float = math.nan  # the last sample that was not missing (what a gap is held at)
    # scored beats waiting for their quality verdict: (index, R, score, shape score, RR before in s, previous R,
    # next R)
    held: deque[tuple[int, int, float, float, float, int, int]] = field(default_factory=deque)


@dataclass
class EcgWork:
    """Beats framed in one tick: model inputs, and for each rate group which rows are whose."""

    inputs: np.ndarray
    parts: list[tuple[_RateGroup, FramedBeats]] = field(default_factory=list)


class EcgKind:
    """ECG streams on one beat-anomaly model. Options per stream: `rate` (Hz, required), `threshold`
    (fixed), `calibrate_s` and `calibrate_method` (`"mean_std:K"` or `"percentile:Q"`)."""

    task = ECG_TASK

    def __init__(self, model: Model) -> None:
        self.model = model
        try:
            self.spec = BeatSpec.from_meta(model.meta)
            self.score_spec = dict(model.meta["score"])
            ScoreBank(self.spec.feature_names, self.spec.length, self.score_spec)  # validates it
            self.model_threshold = dict(model.meta["threshold"])
            float(self.model_threshold["value"])
            shape = morphology_spec(self.score_spec)
            if shape is not None:
                ScoreBank(self.spec.feature_names, self.spec.length, shape)
            gate = self.model_threshold.get("morphology")
            self.shape_gate = float(gate["value"]) if shape is not None and gate else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(model.path, f"beat, score or threshold description not understood ({exc})") from None
        model.check_input_size(self.spec.n_inputs)
        self.warmup_beats = judged_from(self.score_spec)
        self.groups: dict[float, _RateGroup] = {}
        self.streams: dict[Key, _EcgStream] = {}
        self.owners: dict[tuple[float, int], _EcgStream] = {}  # (rate, slot) -> stream
        self.holding: set[Key] = set()  # streams with beats waiting for their quality verdict

    # --- streams -------------------------------------------------------------------------------------------
    def open(self, key: Key, options: Mapping[str, Any]) -> None:
        unknown = set(options) - {"rate", "threshold", "calibrate_s", "calibrate_method"}
        if unknown:
            raise StreamError(key, f"unknown ECG stream options {sorted(unknown)}",
                              expected="rate, threshold, calibrate_s, calibrate_method")
        rate = options.get("rate")
        if rate is None:
            raise StreamError(key, "an ECG stream needs its sampling rate (rate=Hz)")
        fs = float(rate)
        if not fs >= MIN_FS:
            raise StreamError(key, "sampling rate too low to find QRS complexes", expected=f">= {MIN_FS:g} Hz",
                              got=f"{fs:g} Hz")
        if not fs <= MAX_FS:
            raise StreamError(key, "sampling rate too high for an ECG", expected=f"<= {MAX_FS:g} Hz",
                              got=f"{fs:g} Hz")
        judge = self._judge(key, options)
        group = self.groups.get(fs)
        if group is None:
            group = self.groups[fs] = _RateGroup(fs, self.spec, self.score_spec)
        stream = self.streams[key] = _EcgStream(key, fs, group.take(), judge)
        self.owners[(fs, stream.slot)] = stream

    def _judge(self, key: Key, options: Mapping[str, Any]) -> Judge:
        threshold = options.get("threshold")
        calibrate_s = float(options.get("calibrate_s") or 0.0)
        if not 0 <= calibrate_s < math.inf:
            raise StreamError(key, "calibrate_s must be a finite number >= 0", got=calibrate_s)
        if threshold is not None and not math.isfinite(float(threshold)):
            raise StreamError(key, "threshold must be a finite number", got=threshold)
        method = options.get("calibrate_method")
        if method is not None and calibrate_s == 0:
            raise StreamError(key, "calibrate_method applies only with calibrate_s > 0", got="calibrate_s 0")
        if isinstance(method, str):
            try:
                method = parse_method(method)
            except ValueError as exc:
                raise StreamError(key, str(exc)) from None
        default = (str(self.model_threshold.get("method", "percentile")), float(self.model_threshold.get("param", 99)))
        if threshold is not None:
            return Judge(float(threshold), "fixed (--threshold)", self.warmup_beats, calibrate_s, method or default)
        return Judge(float(self.model_threshold["value"]), "model", self.warmup_beats, calibrate_s,
                     method or default)

    def close(self, key: Key) -> None:
        s = self.streams.pop(key)
        self.holding.discard(key)
        del self.owners[(s.fs, s.slot)]
        self.groups[s.fs].give_back(s.slot)

    def reset(self, key: Key) -> None:
        s = self.streams[key]
        self.groups[s.fs].clear(s.slot)
        s.judge.reset()
        s.samples = 0
        s.held.clear()
        self.holding.discard(key)

    def save(self, key: Key) -> dict[str, Any]:
        s = self.streams[key]
        g = self.groups[s.fs]
        return {"samples": s.samples, "detector": g.detector.state(s.slot), "framer": g.framer.state(s.slot),
                "scorer": g.scorer.state(s.slot), "judge": s.judge.state(),
                "shape": g.shape.state(s.slot) if g.shape is not None else {},
                "quality": g.quality.state(s.slot), "held": [list(h) for h in s.held]}

    def restore(self, key: Key, state: Mapping[str, Any]) -> None:
        s = self.streams[key]
        g = self.groups[s.fs]
        g.detector.set_state(s.slot, state["detector"])
        g.framer.set_state(s.slot, state["framer"])
        g.scorer.set_state(s.slot, state["scorer"])
        if g.shape is not None and state.get("shape"):
            g.shape.set_state(s.slot, state["shape"])
        s.judge.set_state(state["judge"])
        if "slot" in state.get("quality", {}):  # states saved by older versions start the checks afresh
            g.quality.set_state(s.slot, state["quality"])
        s.samples = int(state["samples"])
        s.held = deque((int(i), int(r), float(sc), float(sh), float(rr), int(a), int(b))
                       for i, r, sc, sh, rr, a, b in state.get("held", []))
        if s.held:
            self.holding.add(key)

    def counters(self, key: Key) -> dict[str, int]:
        s = self.streams[key]
        return self.groups[s.fs].framer.dropped(s.slot)

    def describe(self, key: Key) -> dict[str, Any]:
        s = self.streams[key]
        return {"rate_hz": s.fs, "samples": s.samples, "threshold": s.judge.threshold,
                "threshold_source": s.judge.source, "phase": s.judge.phase,
                "calibrate_s": s.judge.calibrate_s, "warmup_beats": s.judge.warmup_beats}

    # --- data ----------------------------------------------------------------------------------------------
    def check(self, key: Key, chunk: Chunk) -> np.ndarray:
        s = self.streams[key]
        x = np.asarray(chunk.samples, dtype=np.float64) if not isinstance(chunk.samples, np.ndarray) \
            or chunk.samples.dtype != np.float64 else chunk.samples
        if x.ndim != 1:
            raise StreamError(key, "an ECG chunk is one lead of samples", expected="shape (n,)", got=f"shape {x.shape}",
                              reason="wrong shape")
        if chunk.rate is not None and float(chunk.rate) != s.fs:
            raise StreamError(key, "chunk rate differs from the stream's", expected=f"{s.fs:g} Hz",
                              got=f"{float(chunk.rate):g} Hz", reason="wrong rate")
        if chunk.start is not None and int(chunk.start) != s.samples:
            gap = "gap" if chunk.start > s.samples else "overlap"
            raise StreamError(key, f"chunk does not continue the stream ({gap})", expected=f"start {s.samples}",
                              got=f"start {chunk.start}", reason=gap)
        if np.isinf(x).any():  # NaN is a missing sample (a gap, judged poor); inf is a broken value
            bad = int(np.flatnonzero(np.isinf(x))[0])
            raise StreamError(key, f"non-finite sample (inf) at index {bad} of the chunk",
                              reason="non-finite sample")
        return x

    def frame(self, prepared: Mapping[Key, np.ndarray]) -> EcgWork:
        by_block: dict[tuple[float, int], list[Key]] = {}
        for key, x in prepared.items():
            s = self.streams[key]
            by_block.setdefault((s.fs, len(x)), []).append(key)
        parts = []
        for (fs, n), keys in by_block.items():
            if n == 0:
                continue
            g = self.groups[fs]
            streams = [self.streams[k] for k in keys]
            slots = [s.slot for s in streams]
            blocks = np.stack([prepared[k] for k in keys]) if len(keys) > 1 else prepared[keys[0]][None, :]
            missing = np.isnan(blocks)
            gapped = np.flatnonzero(missing.any(axis=1)).tolist()
            if gapped:
                blocks = blocks.copy()
            cuts: dict[int, dict[int, bool]] = {}  # slot -> {column: the signal resumes there (else a gap starts)}
            for row in gapped:
                cuts[slots[row]] = self._fill_gaps(g, streams[row], blocks[row], missing[row])
            for slot, cols in g.quality.track_runs(slots, blocks).items():
                cuts.setdefault(slot, {}).update(dict.fromkeys(cols, True))
            plain = [i for i, slot in enumerate(slots) if not cuts.get(slot)]
            if plain:
                parts.append(self._feed(g, [slots[i] for i in plain], blocks[plain]))
            for i, slot in enumerate(slots):  # streams whose filters restart inside the block: piece by piece
                if cuts.get(slot):
                    at = sorted(cuts[slot])
                    for a, b in zip([0, *at], [*at, n]):
                        if a > 0:
                            g.reprime(slot, cuts[slot][a])
                        if b > a:
                            parts.append(self._feed(g, [slot], blocks[i:i + 1, a:b]))
            for s, last in zip(streams, blocks[:, -1].tolist()):
                s.samples += n
                s.last_valid = last  # (a gap at the block's end is held at the last value before it)
        return self._work(parts)

    @staticmethod
    def _feed(g: _RateGroup, slots: list[int], blocks: np.ndarray) -> tuple[_RateGroup, FramedBeats]:
        peaks = g.detector.feed(slots, blocks)
        g.quality.feed_signal(slots, blocks, peaks)
        return g, g.framer.feed(slots, blocks, peaks)

    @staticmethod
    def _fill_gaps(g: _RateGroup, s: _EcgStream, x: np.ndarray, missing: np.ndarray) -> dict[int, bool]:
        """Missing samples (NaN) of one stream's block, in place: each gap held at the last value before it and
        marked for the quality checks. Returns the columns where a gap starts or ends: the filters are re-primed
        at both, so through a gap they rest in steady state (band-passed output 0, as if not fed) and start
        afresh where the signal resumes: {column: True where it resumes, False where a gap starts}."""
        edges = np.flatnonzero(np.diff(np.concatenate([[False], missing, [False]]).astype(np.int8)))
        cuts: dict[int, bool] = {}
        for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist()):
            before = x[a - 1] if a else s.last_valid
            after = x[b] if b < len(x) else math.nan
            x[a:b] = before if before == before else (after if after == after else 0.0)
            g.quality.mark_gap(s.slot, s.samples + a, s.samples + b)
            if a > 0:
                cuts[a] = False
            if b < len(x):
                cuts[b] = True
        return cuts

    def frame_end(self, keys: Iterable[Key]) -> EcgWork:
        by_rate: dict[float, list[int]] = {}
        for key in keys:
            s = self.streams[key]
            by_rate.setdefault(s.fs, []).append(s.slot)
        parts = []
        for fs, slots in by_rate.items():
            g = self.groups[fs]
            peaks = g.detector.flush(slots)
            g.quality.flush(slots, peaks)
            parts.append((g, g.framer.flush(slots, peaks)))
        return self._work(parts)

    def _work(self, parts: list[tuple[_RateGroup, FramedBeats]]) -> EcgWork:
        parts = [(g, f) for g, f in parts if len(f)]
        inputs = np.concatenate([f.features for _, f in parts]) if parts else np.zeros((0, self.spec.n_inputs),
                                                                                       np.float32)
        return EcgWork(inputs, parts)

    def judge(self, work: EcgWork, outputs: np.ndarray) -> dict[Key, list[Any]]:
        """Score the framed beats, then judge each once its quality verdict is taken (the verdict reads the
        signal up to ~0.55 s after the R peak, so a beat framed sooner, after a very short RR, waits for the
        next block; a stream's beats always come out in order)."""
        row = 0
        for g, f in work.parts:
            n = len(f)
            recon = outputs[row:row + n]
            scores = g.scorer.score(f.slots, f.features, recon)
            shapes = g.shape.score(f.slots, f.features, recon) if g.shape is not None else np.full(n, np.nan)
            row += n
            for slot, index, r, rr_prev, rr_next, score, shape in zip(
                    f.slots.tolist(), f.index.tolist(), f.r_sample.tolist(), f.rr_prev_s.tolist(),
                    f.rr_next_s.tolist(), scores.tolist(), shapes.tolist()):
                s = self.owners[(g.fs, slot)]
                s.held.append((index, r, score, shape, rr_prev, r - round(rr_prev * g.fs),
                               r + round(rr_next * g.fs)))
                self.holding.add(s.key)
        events: dict[Key, list[Any]] = {}
        for key in list(self.holding):
            s = self.streams[key]
            g = self.groups[s.fs]
            while s.held and g.quality.ready(s.slot, s.held[0][1]):
                index, r, score, shape, rr_prev, before, after = s.held.popleft()
                t = r / g.fs
                verdict = g.quality.verdict(s.slot, r, (before, after))
                shape_ok = self.shape_gate is None or shape > self.shape_gate
                anomaly, state = s.judge.judge(index, t, score, verdict.good, shape_ok)
                events.setdefault(key, []).append(BeatEvent(key, index, t, r, score, s.judge.threshold, anomaly,
                                                            1e3 * rr_prev, state, verdict.reason, verdict.bsqi,
                                                            shape))
            if not s.held:
                self.holding.discard(key)
        return events
