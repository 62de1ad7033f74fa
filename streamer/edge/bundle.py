"""`export-edge`: one model -> a bundle folder (model, sidecar, conformance vectors, int8 variant, ORT file).

The data the vectors and the int8 measurement run on is real and given by the user (`--input`), by default
the shipped sample of the model's task. The int8 activation scales are calibrated on the first half of the
model inputs made from it and the quality is measured on the second half, never on the calibration part.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import streamer
from streamer.core.atomic import write_atomically
from streamer.core.errors import InputError, ModelError, StreamerError, need
from streamer.core.model import Model
from streamer.core.modelmeta import AUDIO_TASK, ECG_TASK, IMAGE_TASK
from streamer.edge import conformance, pipelines, quantise, sidecar
from streamer.edge.conformance import sha256

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DEFAULT_INPUT = {ECG_TASK: SAMPLES / "ecg" / "106", AUDIO_TASK: SAMPLES / "audio" / "bach.wav",
                 IMAGE_TASK: SAMPLES / "images"}
DEFAULT_SECONDS = {ECG_TASK: 120.0, AUDIO_TASK: 3.0}  # conformance data: enough beats or frames, files of ~1 MB
INT8_SECONDS = {ECG_TASK: 1800.0, AUDIO_TASK: 60.0}  # data for the int8 calibration and measurement
MIN_ECG_SECONDS = 30.0  # fewer beats than this holds say little (the template and score level are warming up)
CONFORMANCE_IMAGES = 4
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")
ENGINE_BATCH = 64  # the batch the engine's calls reach under load (codec BATCH, image blocks, many streams)
MAX_DECISION_CHANGES = 0.005  # int8 may change at most this fraction of a model's ECG decisions ...
MAX_DB_LOSS = 0.1  # ... or lose at most this much SNR / PSNR against float, to be recommended


@dataclass
class Split:
    """Model inputs that calibrate int8 and model inputs it is measured on (never calibrated on)."""

    calibration: np.ndarray
    held_out: np.ndarray
    calibrated_on: str
    measured_on: str


@dataclass
class TaskData:
    """What a task's conformance and int8 measurement need from the input."""

    source: dict[str, Any]
    stages: list[dict[str, Any]]
    events: list[dict[str, Any]] | None
    inputs: np.ndarray  # model inputs in time order (calibration: first half; measurement: second half)
    quality: Callable[[Callable[[np.ndarray], np.ndarray], np.ndarray], dict[str, Any]]  # (run, inputs) -> figures
    split: Split | None = None  # how int8 is calibrated and measured, when not the two halves of `inputs`


def _ecg(model: Model, path: Path, seconds: float, fs: float | None = None) -> TaskData:
    from streamer.ecg.readers import read_ecg

    rec = read_ecg(path, fs=fs)
    n = min(int(seconds * rec.fs), len(rec.signal))
    if n < int(MIN_ECG_SECONDS * rec.fs):
        raise InputError(path, f"{len(rec.signal) / rec.fs:.1f} s of ECG: conformance needs at least "
                               f"{MIN_ECG_SECONDS:g} s")
    long = rec.signal[:int(INT8_SECONDS[ECG_TASK] * rec.fs)]
    if not np.isfinite(long).all():  # the vectors follow one uninterrupted stretch (gaps are the engine's job)
        at = int(np.flatnonzero(~np.isfinite(long))[0])
        raise InputError(path, f"missing samples from {at / rec.fs:.2f} s: conformance vectors need a record "
                               "without gaps (--seconds shorter than that, or another record)")
    stages, events = conformance.ecg_stages(model, rec.signal[:n], rec.fs)
    inputs, r_samples = ecg_inputs(model, long, rec.fs)
    if len(inputs) < 4:
        raise InputError(path, f"only {len(inputs)} beats found: conformance vectors need a real ECG")
    ref = rec.reference_beats()

    def quality(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> dict[str, Any]:
        return ecg_quality(model, run, inputs, r_samples, len(inputs) - len(x), rec.fs, ref)

    source = {"data": path.name, "record": rec.name, "lead": rec.lead, "rate_hz": rec.fs, "seconds": n / rec.fs}
    return TaskData(source, stages, events, inputs, quality)


def ecg_inputs(model: Model, x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(model inputs, R peaks) of every beat of a whole record, framed offline (the streaming framer on one
    block, so the engine's beats)."""
    from streamer.ecg.beats import BeatSpec, extract_beats
    from streamer.ecg.detector import DetectorBank

    detector = DetectorBank(fs)
    detector.clear(0)
    peaks = detector.feed([0], x[None]).get(0, []) + detector.flush([0]).get(0, [])
    beats = extract_beats(x, fs, peaks, BeatSpec.from_meta(model.meta))
    width = BeatSpec.from_meta(model.meta).n_inputs
    features = np.stack([b.features for b in beats]) if beats else np.zeros((0, width))
    return features.astype(np.float32), np.array([b.r_sample for b in beats], np.int64)


def ecg_decisions(model: Model, inputs: np.ndarray, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, alarm decisions) of one stream's beats in order: the score and shape gates (quality aside)."""
    from streamer.ecg.scoring import ScoreBank, morphology_spec
    from streamer.edge.conformance import one_stream

    meta = model.meta
    names = [str(f["name"]) for f in meta["features"]]
    length = int(meta["beat"]["length"])
    slots = np.zeros(len(inputs), np.int64)
    scores = one_stream(ScoreBank(names, length, meta["score"])).score(slots, inputs, outputs)
    alarm = scores > float(meta["threshold"]["value"])
    shape = morphology_spec(meta["score"])
    gate = (meta["threshold"].get("morphology") or {}).get("value")
    if shape and gate is not None:
        alarm &= one_stream(ScoreBank(names, length, shape)).score(slots, inputs, outputs) > float(gate)
    return scores, alarm


def ecg_quality(model: Model, run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, r: np.ndarray,
                first: int, fs: float, ref: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """Figures of `run` on the beats from `first` on (scored as one stream from the record's start, so the
    adaptive history is the same): decisions, and against annotated PVCs when the record has them."""
    from streamer.ecg.evaluate import anomaly_scores, label_peaks

    scores, alarm = ecg_decisions(model, inputs, run(inputs))
    out: dict[str, Any] = {"beats": int(len(inputs) - first), "alarms": int(alarm[first:].sum()),
                           "threshold": float(model.meta["threshold"]["value"]),
                           "scores": scores[first:], "decisions": alarm[first:]}
    if ref is not None:
        pvc, annotated = label_peaks(r, ref[0], ref[1], fs)
        keep = annotated[first:]
        figures = anomaly_scores(scores[first:][keep], pvc[first:][keep], float(model.meta["threshold"]["value"]))
        flagged = alarm[first:][keep]
        positive = pvc[first:][keep]
        tp = int((flagged & positive).sum())
        out["pvc"] = {"n": int(positive.sum()), "auc": round(figures["auc"], 4),
                      "sensitivity": round(tp / max(int(positive.sum()), 1), 4),
                      "ppv": round(tp / max(int(flagged.sum()), 1), 4)}
    return out


def read_audio_at_its_rate(path: Path) -> tuple[np.ndarray, float]:
    """(samples (n, channels) float32, rate) of the first INT8_SECONDS of an audio file, at the file's own rate
    (the engine's reader converts to the model's rate; the vectors start before that); errors as one line."""
    sf = need("soundfile", "reading audio", "audio")
    try:
        info = sf.info(str(path))
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True,
                                frames=int(INT8_SECONDS[AUDIO_TASK] * info.samplerate))
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(path, f"cannot read audio ({str(exc).splitlines()[0][:120]})") from None
    return samples, float(rate)


def _audio(model: Model, path: Path, seconds: float, hop: int | None) -> TaskData:
    """The audio vectors at the file's own rate; the codec's encoder and decoder come with their companion
    (the decoder's input is the encoder's codes; the encoder's quality is measured through the decoder)."""
    import soxr

    from streamer.audio.codec import companion, run_batched
    from streamer.audio.quality import snr_db
    from streamer.audio.resample import mono

    meta = model.meta
    frame, fs = int(meta["frame"]["length"]), float(meta["sample_rate_hz"])
    long, rate = read_audio_at_its_rate(path)
    x = long[:int(seconds * rate)]
    if len(x) < 2 * frame / fs * rate:
        raise InputError(path, f"{len(x) / rate:.2f} s of audio: conformance needs at least two frames "
                               f"({2 * frame / fs:.2f} s)")
    x = x[:, 0] if x.shape[1] == 1 else x
    part = meta.get("part", "autoencoder")
    other = companion(model.path, "encoder" if part == "decoder" else "decoder") if part != "autoencoder" else None
    codes = None
    if part == "decoder" and other is not None:
        _, encoded = conformance.audio_stages(other, x, rate)
        codes = np.asarray(encoded["outputs"], np.float32)
    stages, info = conformance.audio_stages(model, x, rate, hop, codes)

    # int8: the whole read (up to INT8_SECONDS), peak-normalised as in training, side-by-side frames
    m = mono(long, long.shape[1])
    y = soxr.resample(m, rate, fs, quality="HQ") if rate != fs else m
    frames = conformance_frames(y / (float(np.max(np.abs(y))) or 1.0), frame)
    inputs = run_batched(other, frames) if part == "decoder" and other is not None else frames

    def quality(run: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> dict[str, Any]:
        """SNR (dB, over all samples) of the reconstruction against its frames (codes decoded by float)."""
        out = run(z)
        if part == "encoder" and other is not None:
            out = run_batched(other, out)
        reference = frames[-len(z):]
        return {"frames": int(len(reference)), "snr_db": round(snr_db(reference, out), 3)}

    source = {"data": path.name, "rate_hz": rate, "channels": int(long.shape[1]), "seconds": len(x) / rate,
              **{k: v for k, v in info.items() if k in ("hop", "peak")}}
    return TaskData(source, stages, None, inputs, quality)


def conformance_frames(y: np.ndarray, frame: int) -> np.ndarray:
    n = len(y) // frame
    return np.asarray(y[:n * frame], np.float32).reshape(n, frame)


def _images(model: Model, path: Path) -> TaskData:
    """An image file, or a folder of them (with clean references in its `clean/`, when it has them)."""
    from streamer.images.sources import read_image

    folder = path if path.is_dir() else path.parent
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    images, cleans = [], []
    for p in files:
        pixels, problem = read_image(p)
        if pixels is None:
            raise InputError(p, problem)
        images.append(np.round(np.asarray(pixels) * 255).astype(np.uint8))
        clean_path = folder / "clean" / p.name
        clean, _ = read_image(clean_path) if clean_path.is_file() else (None, "")
        cleans.append(None if clean is None else np.asarray(clean, np.float32))
    if not images:
        raise InputError(path, f"no images ({', '.join(IMAGE_SUFFIXES)}) to make conformance vectors from")
    shape = images[0].shape
    same = [i for i, im in enumerate(images) if im.shape == shape]
    stages = conformance.image_stages(model, [images[i] for i in same[:CONFORMANCE_IMAGES]])
    pixels_all = np.stack([images[i] for i in same]).astype(np.float32) / np.float32(255)
    refs = [cleans[i] for i in same]
    half = len(same) // 2  # int8: calibrated on the first images, measured on the others (whole images)
    calibration = conformance.to_model(model.meta, pixels_all[:half])
    held_out = conformance.to_model(model.meta, pixels_all[half:])

    def quality(run: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> dict[str, Any]:
        from streamer.images.quality import mean_psnr_db

        out = conformance.from_model(model.meta, run(z), shape)
        got: dict[str, Any] = {"images": len(out)}
        clean = [r for r in refs[half:] if r is not None]
        if len(clean) == len(out):  # PSNR against the clean references (the sample folder's clean/)
            got["psnr_db"] = round(mean_psnr_db(np.stack(clean), out), 3)
            got["psnr_db_noisy"] = round(mean_psnr_db(np.stack(clean), pixels_all[half:]), 3)
        return got

    source = {"data": path.name, "images": [files[i].name for i in same[:CONFORMANCE_IMAGES]], "shape": list(shape)}
    split = Split(calibration, held_out, f"the first {half} images of {path.name}",
                  f"the other {len(same) - half} (held out from calibration)")
    return TaskData(source, stages, None, held_out, quality, split)


def task_data(model: Model, path: Path | None, seconds: float | None, hop: int | None,
              fs: float | None = None) -> TaskData:
    task = model.task
    check_options(model, seconds, hop, fs)
    path = Path(path) if path is not None else DEFAULT_INPUT[task]
    if task == ECG_TASK:
        return _ecg(model, path, seconds or DEFAULT_SECONDS[task], fs)
    if task == AUDIO_TASK:
        return _audio(model, path, seconds or DEFAULT_SECONDS[task], hop)
    return _images(model, path)


def check_options(model: Model, seconds: float | None, hop: int | None, fs: float | None) -> None:
    """Options that do not apply to the model's task, or a hop the framer cannot take: one line each."""
    from streamer.audio.framer import check_hop

    task, part = model.task, model.meta.get("part", "autoencoder")
    if fs is not None and task != ECG_TASK:
        raise StreamerError("--fs applies to ECG models only (the rate of a CSV without a time column)")
    if seconds is not None and task == IMAGE_TASK:
        raise StreamerError("--seconds applies to ECG and audio models (images are taken whole)")
    if hop is not None:
        if task != AUDIO_TASK or part != "autoencoder":
            raise StreamerError("--hop applies to the audio autoencoder only (the codec's encoder and decoder "
                                "take side-by-side frames)")
        try:
            check_hop(int(model.meta["frame"]["length"]), hop)
        except ValueError as exc:
            raise StreamerError(f"--hop: {exc}") from None


# --- int8 --------------------------------------------------------------------------------------------------

def int8_variant(model: Model, data: TaskData, out: Path) -> dict[str, Any]:
    """The int8 variant of `model` calibrated on the first half of the task data's model inputs and measured
    on the second half; writes NAME.int8.onnx."""
    half = len(data.inputs) // 2
    split = data.split or Split(data.inputs[:half], data.inputs[half:],
                                f"the first {half} model inputs of {data.source['data']}",
                                f"the other {len(data.inputs) - half} (held out from calibration)")
    if len(split.calibration) == 0 or len(split.held_out) == 0:
        return {"file": None, "recommended": "float32",
                "note": f"{data.source['data']} is too little data to calibrate int8 on one part and measure it on "
                        "another (--input more of it)"}
    return measured_int8(model, out, split.calibration, split.held_out, data.quality, split.calibrated_on,
                         split.measured_on)


def measured_int8(model: Model, out: Path, calibration: np.ndarray, held_out: np.ndarray,
                  quality: Callable[[Callable[[np.ndarray], np.ndarray], np.ndarray], dict[str, Any]],
                  calibrated_on: str, measured_on: str) -> dict[str, Any]:
    """Quantise with `calibration`, measure float and int8 with `quality` on `held_out` (never calibrated on),
    time both, recommend one; writes NAME.int8.onnx (the model's metadata plus its `quantisation` record)."""
    if "quantisation" in model.meta:
        return {"file": None, "note": "the model is already int8 (metadata `quantisation`): no second variant",
                "recommended": "int8 (as shipped)"}
    ops = quantise.quantisable_ops(model.path)
    if not ops:
        return {"file": None, "note": "no MatMul, Gemm or convolution to quantise", "recommended": "float32"}
    path = out / (model.path.stem + ".int8.onnx")
    quantise.quantise_int8(model.path, path, calibration, op_types=ops)
    float_run, int8_run = quantise.session_runner(model.path), quantise.session_runner(path)
    f_q, i_q = quality(float_run, held_out), quality(int8_run, held_out)
    diff = float(np.max(np.abs(int8_run(held_out[:256]) - float_run(held_out[:256]))))
    ok, loss = _acceptable(model.task, f_q, i_q)
    speed = quantise.speeds({"float32": model.path, "int8": path}, held_out, (1, ENGINE_BATCH))
    choice, why = quantise.recommend(speed, ok, loss)
    record = {"method": f"onnxruntime quantize_static, QDQ: int8 weights and uint8 activations with fixed scales "
                        f"(MinMax calibration), {', '.join(ops)}",
              "calibration": calibrated_on, "measured_on": measured_on,
              "max_abs_diff_vs_float": round(diff, 6), "float": _public(f_q), "int8": _public(i_q)}
    # the int8 file's own figures are what it was measured to do; the float model's stay beside them
    _write_meta(path, {**model.meta, "name": f"{model.meta.get('name')}-int8",
                       "metrics": {"measured_on": measured_on, **_public(i_q)},
                       "quantisation": {**record, "float_metrics": model.meta.get("metrics")}})
    return {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size,
            "float_bytes": model.path.stat().st_size, "quantised_ops": ops, "quality": record,
            "speed_1_thread": speed, "recommended": choice, "why": why}


def _public(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if not isinstance(v, np.ndarray)}


def _acceptable(task: str, f: dict[str, Any], i: dict[str, Any]) -> tuple[bool, str]:
    if task == ECG_TASK:
        changed = int((f["decisions"] != i["decisions"]).sum())
        threshold = float(f["threshold"])
        rel = float(np.max(np.abs(i["scores"] - f["scores"]))) / threshold
        i["changed_decisions"], i["max_score_diff_of_threshold"] = changed, round(rel, 6)
        ok = changed <= MAX_DECISION_CHANGES * max(f["beats"], 1)
        return ok, (f"it changes {changed} of {f['beats']} beat decisions (largest score change {rel:.2%} of the "
                    f"threshold)")
    key = "snr_db" if task == AUDIO_TASK else "psnr_db"
    if key not in f:
        return False, "no clean reference to measure its quality on"
    loss = f[key] - i[key]
    return loss <= MAX_DB_LOSS, f"its {key.replace('_db', '')} is {i[key]:.2f} dB against float's {f[key]:.2f} dB"


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    onnx = need("onnx", "writing metadata into an int8 model", "edge")
    from streamer.core import modelmeta

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in modelmeta.encode(meta).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def ort_file(model_path: Path, out: Path) -> dict[str, Any]:
    """The ORT-format file (onnxruntime's minimal builds load only this) and the operators such a build needs."""
    import tempfile

    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    from streamer.core.cstderr import silence_c_stderr

    stem = model_path.name[:-len(".onnx")]
    with tempfile.TemporaryDirectory() as tmp:
        with silence_c_stderr(stdout=True):
            convert_onnx_models_to_ort(model_path, output_dir=Path(tmp), optimization_styles=[OptimizationStyle.Fixed])
        made = Path(tmp) / f"{stem}.ort"
        config = Path(tmp) / f"{stem}.required_operators.config"
        if not made.is_file():
            raise ModelError(model_path, "onnxruntime could not convert it to the ORT format")
        shutil.move(str(made), out / made.name)
        ops = [line for line in config.read_text().splitlines() if line and not line.startswith("#")]
        (out / config.name).write_text(f"# operators {made.name} needs (onnxruntime reduced builds: "
                                       f"--include_ops_by_config)\n" + "\n".join(ops) + "\n")
    ort_path = out / made.name
    return {"file": ort_path.name, "sha256": sha256(ort_path), "bytes": ort_path.stat().st_size,
            "optimisation": "onnxruntime 'Fixed' style, level all (may hold onnxruntime-only fused operators)",
            "required_operators": config.name, "operators": ops}


def write_json(path: Path, doc: Any, indent: int | None = None) -> None:
    text = (json.dumps(doc, indent=indent) + "\n").encode()
    write_atomically(path, lambda f: f.write(text))


# --- the bundle --------------------------------------------------------------------------------------------

def export_edge(model_path: Path, out: Path, input_path: Path | None = None, seconds: float | None = None,
                hop: int | None = None, int8: bool = True, ort: bool = True, fs: float | None = None
                ) -> dict[str, Any]:
    """Write the bundle for `model_path` into `out`; returns the sidecar."""
    model = Model(model_path)
    out.mkdir(parents=True, exist_ok=True)
    data = task_data(model, input_path, seconds, hop, fs)
    target = out / model_path.name
    if target.resolve() != model_path.resolve():
        shutil.copyfile(model_path, target)
    files: dict[str, Any] = {"model": {"file": target.name, "sha256": sha256(target), "bytes": target.stat().st_size,
                                       "inputs": model.meta.get("inputs"), "outputs": model.meta.get("outputs")}}
    stem = target.name[:-len(".onnx")]
    doc = conformance.document(target, model.meta, data.source, data.stages, data.events)
    conf_path = out / f"{stem}.conformance.json"
    write_json(conf_path, doc)
    files["conformance"] = {"file": conf_path.name, "sha256": sha256(conf_path), "source": data.source}
    if int8:
        files["int8"] = int8_variant(model, data, out)
    if ort:
        files["ort"] = ort_file(target, out)
    rates = [float(data.source["rate_hz"])] if model.task == ECG_TASK else []
    side = sidecar.build(target, model.meta, pipelines.pipeline(model.meta, rates), files,
                         f"aestream {streamer.__version__}")
    write_json(sidecar.sidecar_path(target), side, indent=1)
    return side
