"""Conformance vectors: the arrays at every stage of a model's pipeline on real data, each with its tolerance.

A port runs its own implementation of each step on the previous stage's arrays and compares with the next:
the first stage out of tolerance is the step to fix. The vectors are made by the engine's own code, stage by
stage, and the last stages are checked against a run of the library's stream API on the same input (`check`
below), so they are what the engine does, not what a second implementation thinks it does.

Tolerance of a stage: `|port - reference| <= abs + rel * |reference|`, elementwise. Integer stages (R peaks,
positions) are exact. Events match field by field, with one allowance: a beat whose score (or morphology score)
is within the scores' tolerance of its threshold may be judged either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core.model import Model
from streamer.edge import arrays

FORMAT = "aestream-conformance"
VERSION = 1
EXACT = {"abs": 0.0, "rel": 0.0}
FLOAT64_STEPS = {"abs": 1e-9, "rel": 0.0}  # float64 arithmetic done in another order
FLOAT32_CAST = {"abs": 1e-6, "rel": 0.0}  # the same, then rounded to float32
MODEL_OUTPUT = {"abs": 1e-5, "rel": 0.0}  # float runtimes agree to ~6e-7 here; 1e-5 leaves room
SCORES = {"abs": 1e-5, "rel": 1e-3}  # scores carry the model outputs' differences, divided by small references


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stage(name: str, value: Any, tolerance: Mapping[str, float], what: str) -> dict[str, Any]:
    return {"name": name, "what": what, "tolerance": dict(tolerance), "array": arrays.encode(value)}


def within(got: np.ndarray, want: np.ndarray, tolerance: Mapping[str, float]) -> tuple[bool, float]:
    """(all elements within the tolerance, largest absolute difference)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False, float("inf")
    if got.size == 0:
        return True, 0.0
    diff = np.abs(got - want)
    ok = bool(np.all(diff <= float(tolerance.get("abs", 0.0)) + float(tolerance.get("rel", 0.0)) * np.abs(want)))
    return ok, float(diff.max())


# --- ECG ---------------------------------------------------------------------------------------------------

def rr_typical(peaks: Sequence[int], fs: float, history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R peaks with a successor, rr_prev_s, typical RR) for every peak of a stream, as the `rr_features` step
    describes (the conformance builder checks it against the framer's own features)."""
    rs: list[int] = []
    prev_s: list[float] = []
    typical: list[float] = []
    hist: list[float] = []
    prev_r = None
    for r, r_next in zip(peaks[:-1], peaks[1:]):
        after = (r_next - r) / fs
        before = (r - prev_r) / fs if prev_r is not None else after
        typical.append(float(np.median(hist)) if hist else before)
        if prev_r is not None:
            hist = (hist + [before])[-history:]
        prev_r = r
        rs.append(r)
        prev_s.append(before)
    return np.array(rs, np.int64), np.array(prev_s), np.array(typical)


def ecg_stages(model: Model, signal: np.ndarray, fs: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ECG stages of `signal` (one lead at `fs`), and the events; checked against the stream API."""
    from streamer.core.dsp import IirDesign
    from streamer.ecg import beats as beats_mod
    from streamer.ecg.beats import BeatSpec, FramerBank, rr_feature_arrays
    from streamer.ecg.detector import DetectorBank
    from streamer.ecg.scoring import ScoreBank, morphology_spec

    meta = model.meta
    spec = BeatSpec.from_meta(meta)
    x = np.asarray(signal, np.float64)
    detector = DetectorBank(fs)
    detector.clear(0)
    peaks = detector.feed([0], x[None]).get(0, []) + detector.flush([0]).get(0, [])
    xf = x
    if spec.highpass_hz:
        design = IirDesign(beats_mod.HIGHPASS_ORDER, float(spec.highpass_hz), "highpass", fs)
        xf, _ = design.run(x[None], np.zeros((1, design.order)), np.array([False]))
        xf = xf[0]

    captured: dict[str, list[np.ndarray]] = {"before_template": []}

    class Recording(FramerBank):  # the framer itself, with the stage before its stateful template kept
        def _apply_template(self, slots: np.ndarray, w: np.ndarray, ratio: np.ndarray) -> np.ndarray:
            captured["before_template"].append(w.copy())
            return super()._apply_template(slots, w, ratio)

    bank = Recording(spec, fs)
    bank.clear(0)
    framed = [bank.feed([0], x[None], {0: list(peaks)}), bank.flush([0])]
    framed = [f for f in framed if len(f)]
    r_beat = np.concatenate([f.r_sample for f in framed]).astype(np.int64)
    inputs = np.concatenate([f.features for f in framed])
    samples = np.concatenate([f.samples for f in framed])
    rr_prev = np.concatenate([f.rr_prev_s for f in framed])
    rr_next = np.concatenate([f.rr_next_s for f in framed])

    # the beat windows from the description (window, grid, linear interpolation) on the high-passed signal
    r_next_of = {r: n for r, n in zip(peaks[:-1], peaks[1:])}
    start, end = spec.window_bounds(r_beat.astype(np.float64),
                                    np.array([r_next_of[int(r)] for r in r_beat], np.float64), fs)
    pos = start[:, None] + (end - start)[:, None] * bank.grid[None, :]
    i0 = np.floor(pos).astype(np.int64)
    windows = xf[i0] + (pos - i0) * (xf[np.minimum(i0 + 1, len(xf) - 1)] - xf[i0])
    normalised = spec.normalise(windows)
    if spec.template is not None:
        framer_normalised = np.concatenate(captured["before_template"])
        if not np.allclose(framer_normalised, normalised, rtol=0, atol=1e-12):
            raise AssertionError("the beat windows as described differ from the framer's")
    rs, prev_s, typical = rr_typical(peaks, fs, beats_mod.RR_HISTORY)
    keep = np.isin(rs, r_beat)
    rr = rr_feature_arrays(prev_s[keep], rr_next, typical[keep])
    rebuilt = spec.assemble(samples, rr)
    if not np.array_equal(rebuilt, inputs) or not np.allclose(prev_s[keep], rr_prev, rtol=0, atol=1e-15):
        raise AssertionError("the RR features as described differ from the framer's")

    outputs = model.run(inputs)
    slots = np.zeros(len(inputs), np.int64)
    scorer = one_stream(ScoreBank(spec.feature_names, spec.length, meta["score"]))
    raw, scores = scorer.raw(inputs, outputs), scorer.score(slots, inputs, outputs)
    shape_spec = morphology_spec(meta["score"])
    morph = one_stream(ScoreBank(spec.feature_names, spec.length, shape_spec)).score(slots, inputs, outputs) \
        if shape_spec else None

    events = []
    for e in engine_events(model, x, fs):  # t and rr_ms unrounded (the event log rounds them)
        d = e.to_dict()
        d.pop("stream")
        events.append({**d, "t": e.r_sample / fs, "rr_ms": float(e.rr_ms)})
    got_r = np.array([e["r_sample"] for e in events], np.int64)
    if not np.array_equal(got_r, r_beat) or not np.allclose([e["score"] for e in events], scores, rtol=1e-12,
                                                             atol=0):
        raise AssertionError("the staged beats differ from the stream API's events")
    quality_good = np.array([e["state"] != "noise" for e in events], bool)

    stages = [
        stage("samples", x, EXACT, "input: one lead, float64, at rate_hz"),
        stage("r_peaks", np.array(peaks, np.int64), EXACT, "r_peaks: every R peak the detector returned"),
    ]
    if spec.highpass_hz:
        stages.append(stage("highpassed", xf, FLOAT64_STEPS, "highpass: the whole stream filtered"))
    stages += [
        stage("beat_r_sample", r_beat, EXACT, "beat_window: the R peak of each emitted beat"),
        stage("beat_windows", windows, FLOAT64_STEPS, "beat_window: (beats, length), before normalisation"),
        stage("normalised", normalised, FLOAT64_STEPS, "normalise: the per-beat steps"),
        stage("rr_prev_s", rr_prev, FLOAT64_STEPS, "rr_features: interval from the previous R peak"),
        stage("rr_next_s", rr_next, FLOAT64_STEPS, "rr_features: interval to the next R peak"),
        stage("rr_typical_s", typical[keep], FLOAT64_STEPS, "rr_features: the local typical RR"),
    ]
    stages += [stage(name, rr[name], FLOAT64_STEPS, "rr_features") for name in spec.feature_names if name in rr]
    if spec.template is not None:
        stages.append(stage("template_deviation", samples, FLOAT64_STEPS, "template: deviation from the "
                                                                          "running template"))
    stages += [
        stage("model_inputs", inputs, FLOAT32_CAST, "model_input: float32 rows"),
        stage("model_outputs", outputs, MODEL_OUTPUT, "model: onnxruntime (Python, CPU) output"),
        stage("raw_scores", raw, SCORES, "raw_score"),
        stage("scores", scores, SCORES, "adaptive_score (the raw score when the model has none)"),
    ]
    if morph is not None:
        stages.append(stage("morphology_scores", morph, SCORES, "morphology_score"))
    stages.append(stage("quality", quality_good, EXACT, "signal_quality: true where the beat's quality is good"))
    return stages, events


def one_stream(bank: Any) -> Any:
    """A per-stream bank (scorer, framer) with its slot 0 open."""
    bank.clear(0)
    return bank


def engine_events(model: Model, x: np.ndarray, fs: float, chunk_s: float = 1.0) -> list[Any]:
    """The stream API on the same samples, fed in chunks as a live stream would be."""
    stream = model.stream(rate=fs)
    n = max(1, int(chunk_s * fs))
    events: list[Any] = []
    for i in range(0, len(x), n):
        events += stream.feed(x[i:i + n])
    return events + stream.flush()


# --- audio -------------------------------------------------------------------------------------------------

def audio_stages(model: Model, samples: np.ndarray, rate: float, hop: int | None = None,
                 codes: np.ndarray | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The audio stages of `samples` ((n,) or (n, channels) float32 at `rate`) through the model's part:
    autoencoder (live stream semantics: running peak, `hop`), encoder or decoder (the codec: side-by-side
    frames, the piece's known peak). `codes`: the decoder's input (the encoder's outputs)."""
    import soxr

    from streamer.audio.framer import FrameCutter, OverlapAdd
    from streamer.audio.levels import PeakNormaliser
    from streamer.audio.resample import QUALITY, mono

    meta = model.meta
    fs, frame = float(meta["sample_rate_hz"]), int(meta["frame"]["length"])
    part = str(meta.get("part", "autoencoder"))
    x = np.asarray(samples, np.float32)
    channels = 1 if x.ndim == 1 else x.shape[1]
    m = mono(x, channels)
    y = soxr.resample(m, rate, fs, quality=QUALITY).astype(np.float32) if rate != fs else m
    live = part == "autoencoder"
    hop = int(hop or frame) if live else frame
    cutter = FrameCutter(frame, hop)
    fed = cutter.feed(y.astype(np.float64))
    frames = fed + cutter.flush()  # the flushed frames know where the stream ends (overlap-add trims there)
    normaliser = PeakNormaliser(meta["normalisation"], None if live else float(np.max(np.abs(y))))
    gains = np.array([normaliser.gain(f.samples) for f in frames])
    inputs = np.stack([f.samples * g for f, g in zip(frames, gains)]).astype(np.float32)
    info = {"rate_hz": rate, "channels": channels, "hop": hop, "peak": "running" if live else "known",
            "n_resampled": len(y)}
    stages = [stage("samples", x, EXACT, "input: float32 samples at rate_hz"),
              stage("mono", m, FLOAT32_CAST, "mono"),
              stage("resampled", y, {"abs": 1e-5, "rel": 0.0}, f"resample to {fs:g} Hz (soxr HQ)"),
              stage("frames", np.stack([f.samples for f in frames]), FLOAT32_CAST,
                    "frames (from the resampled stage)"),
              stage("frame_start", np.array([f.start for f in frames], np.int64), EXACT, "frames: start index"),
              stage("gains", gains, {"abs": 0.0, "rel": 1e-6}, "peak_normalise: gain per frame")]
    if part == "decoder":
        if codes is None:
            raise ValueError("the decoder's conformance needs the encoder's codes")
        inputs = np.asarray(codes, np.float32)
        stages = stages[:1] + stages[2:]  # the decoder's own input is the codes; the audio stages are context
    stages.append(stage("model_inputs", inputs, FLOAT32_CAST, "model input"))
    outputs = model.run(inputs)
    stages.append(stage("model_outputs", outputs, MODEL_OUTPUT, "model: onnxruntime (Python, CPU) output"))
    info["outputs"] = outputs
    if part == "encoder":
        return stages, info
    recon = outputs.astype(np.float64) / gains[:, None]
    ola = OverlapAdd(frame, hop)
    pieces = [ola.add(f.start, r, cutter.received if i >= len(fed) else None)
              for i, (f, r) in enumerate(zip(frames, recon))]
    out = np.concatenate([*pieces, ola.finish(cutter.received)])
    stages += [stage("reconstructions", recon, {"abs": 1e-5, "rel": 1e-5}, "denormalise"),
               stage("output", out, {"abs": 1e-5, "rel": 1e-5}, "overlap_add: the output stream")]
    if live:
        engine = model.stream(rate=rate, channels=channels, hop=hop)
        events = engine.feed(x) + engine.flush()
        got = np.concatenate([e.samples for e in events])
        if got.shape != out.shape or not np.allclose(got, out, rtol=0, atol=1e-6):
            raise AssertionError("the staged audio output differs from the stream API's")
    return stages, info


# --- images ------------------------------------------------------------------------------------------------

def image_layout(meta: Mapping[str, Any], shape: tuple[int, int]) -> Any:
    """How images of `shape` reach the model, as the engine does it (`streamer.images.kind`): None for an
    any-size model's image at its own size (mirror-padded to the side multiple), else the `sizing.Plan`
    (resize for a fixed-size model's small image, tiles for a large one)."""
    from streamer.images import sizing

    image = dict(meta["image"])
    if image.get("size") == "any":
        side = int(image["max_side"])
        return None if max(shape) <= side else sizing.plan(tuple(shape), (side, side), resize=False)
    return sizing.plan(tuple(shape), (int(image["height"]), int(image["width"])))


def to_model(meta: Mapping[str, Any], pixels: np.ndarray) -> np.ndarray:
    """(n, H, W) float32 pixels -> model inputs (a tiled image's tiles in row-major order, image by image)."""
    from streamer.images import sizing

    plan = image_layout(meta, pixels.shape[1:])
    if plan is None:
        return sizing.pad_to_multiple(pixels, int(meta["image"]["multiple_of"]))
    return sizing.to_model_many(pixels, plan)


def from_model(meta: Mapping[str, Any], outputs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Model outputs -> (n, H, W) float32 images of `shape`."""
    from streamer.images import sizing

    plan = image_layout(meta, shape)
    if plan is None:
        return np.ascontiguousarray(outputs[:, :shape[0], :shape[1]], np.float32)
    return sizing.from_model_many(outputs, plan)


def image_stages(model: Model, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """The image stages of 8-bit grayscale `images`, all of one size."""
    from streamer.images.sinks import to_u8

    meta = model.meta
    u8 = np.stack([np.asarray(i, np.uint8) for i in images])
    pixels = (u8.astype(np.float32) / np.float32(255)).astype(np.float32)
    shape = (int(u8.shape[1]), int(u8.shape[2]))
    stages = [stage("image", u8, EXACT, "input: 8-bit grayscale, (n, H, W)"),
              stage("pixels", pixels, FLOAT32_CAST, "input: value / 255")]
    plan = image_layout(meta, shape)
    if plan is not None and plan.kind == "resize":
        stages += [stage(name, m, FLOAT32_CAST, f"to_model / from_model: {name}")
                   for name, m in zip(("resize_rows", "resize_cols", "back_rows", "back_cols"), plan.resize)]
    elif plan is not None:  # tiles: where each starts, the blending window and its per-pixel normalisation
        stages += [stage("tile_rows", np.array(plan.ys, np.int64), EXACT, "to_model: tile row origins"),
                   stage("tile_cols", np.array(plan.xs, np.int64), EXACT, "to_model: tile column origins"),
                   stage("tile_window", plan.window, FLOAT32_CAST, "from_model: the sine window"),
                   stage("tile_inv_weight", plan.inv_weight, FLOAT32_CAST,
                         "from_model: 1 / the sum of the windows per (padded) pixel")]
    inputs = to_model(meta, pixels)
    outputs = model.run(inputs)
    denoised = from_model(meta, outputs, shape)
    stages += [stage("model_inputs", inputs, FLOAT32_CAST, "to_model"),
               stage("model_outputs", outputs, MODEL_OUTPUT, "model: onnxruntime (Python, CPU) output"),
               stage("denoised", denoised, {"abs": 1e-5, "rel": 0.0}, "from_model"),
               stage("image_out", np.stack([to_u8(d) for d in denoised]), {"abs": 1.0, "rel": 0.0},
                     "output: 8-bit (one level either way where a pixel sits on a rounding edge)")]
    stream = model.stream()  # the engine on the same images: its denoised images are the vectors'
    events = stream.feed(pixels) + stream.flush()
    if not np.allclose(np.stack([e.image for e in events]), denoised, rtol=0, atol=1e-6):
        raise AssertionError("the staged images differ from the stream API's")
    return stages


def document(model_path: Path, meta: Mapping[str, Any], source: Mapping[str, Any], stages: list[dict[str, Any]],
             events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The conformance file: which model (by checksum) it belongs to, where the data came from, the stages."""
    from streamer.edge.sidecar import SIDECAR_VERSION

    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "sidecar_version": SIDECAR_VERSION,
                           "model": {"file": model_path.name, "sha256": sha256(model_path),
                                     "name": meta.get("name"), "task": meta.get("task")},
                           "source": dict(source), "tolerance_rule": "|port - reference| <= abs + rel * "
                                                                     "|reference|, elementwise",
                           "stages": stages}
    if events is not None:
        doc["events"] = events
        doc["events_rule"] = ("fields equal (t, rr_ms to 1e-6; score, morphology within the scores' tolerance); "
                              "a beat whose score (or morphology score) is within that tolerance of its threshold may "
                              "be judged either way")
    return doc


def stages_by_name(doc: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, dict[str, float]]]:
    return {str(s["name"]): (arrays.decode(s["array"]), dict(s["tolerance"])) for s in doc["stages"]}

