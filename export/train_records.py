"""Fit the MIT-BIH PVC model: a small dense autoencoder on patient-relative beats, exported to ONNX.

Method (why): PVCs differ from a patient's normal beats far more than one patient's normal beats differ
from another's (other lead, paced rhythm, big P/T waves). So the framer (`streamer.ecg.beats`) feeds the
model each beat's deviation from the patient's own running median template (a fixed 0.4 s window around R,
causal 0.5 Hz high-pass, template of the previous non-premature beats, scaled by its amplitude) plus the RR
ratios (prematurity, compensatory pause). The autoencoder learns what normal deviations and RR ratios
look like across the training patients; its weighted reconstruction error (`streamer.ecg.scoring`) is the
anomaly score. Everything the runtime needs is in the model's metadata, and the runtime computes it.

Held out: the last 20 % of every record's beats (`HOLDOUT_FRACTION`) are never fitted on; the model card's
`metrics.held_out` scores them (streamed over the whole record, as the engine would, with figures counted on
the held-out beats only). With --loro, also leave-records-out (LORO): each record scored by a model fitted
without it.

    python -m export.train_records --records /work/shared/data/mitdb/1* --out DIR [--loro]
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from export.heldout import print_result
from export.mitdb import LabelledBeats, labelled_beats, load_record, record_path
from export.progress import TrainingProgress
from export.quiet import import_tensorflow
from streamer.core import modelmeta
from streamer.ecg.beats import BeatSpec
from streamer.ecg.evaluate import anomaly_scores
from streamer.ecg.scoring import StreamingScorer, judged_from, morphology_spec
from streamer.ecg.threshold import threshold_from

MODEL_VERSION = "1.0"
PARITY_BEATS = 256  # beats used for the ONNX-vs-Keras parity check
HOLDOUT_FRACTION = 0.2  # the last 20 % of each record's beats (in time order): not fitted on, scored for the card

PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "beat": {
            "length": 140,
            # 0.15 s before R to 0.25 s after: the QRS (wide in PVCs) and early ST, ~native 360 Hz
            "window": {"kind": "fixed", "pre_s": 0.15, "post_s": 0.25},
            "highpass_hz": 0.5,  # against baseline wander; keeps the QRS and most of P/T
        },
        "features": [{"name": "beat", "size": 140}, {"name": "rr_prematurity", "size": 1},
                     {"name": "rr_pause", "size": 1}],
        "normalisation": {"steps": [
            {"kind": "center"},
            # 16 beats (~15 s): adapts to slow morphology change; min_scale in mV
            {"kind": "template", "beats": 16, "min_rr_prev_ratio": 0.9, "min_scale": 0.05},
        ]},
        "score": {"kind": "mae",
                  "weights": {"beat": 1.0, "rr_prematurity": 0.3, "rr_pause": 0.3},
                  # ratio to the 25th percentile of the patient's last 32 raw scores (~30 s); `reference`
                  # (the training normals' 25th percentile) is filled in at training time
                  "adaptive": {"kind": "quantile_ratio", "beats": 32, "quantile": 25.0, "min_history": 8},
                  # the first 8 beats (~7 s) are scored but not judged: template and history still filling
                  "warmup_beats": 8,
                  # the beat's shape alone (same adaptive level, its own reference) must pass a gate too:
                  # a normally shaped beat that is only early or late (an atrial premature beat, sinus
                  # arrhythmia) is no PVC
                  "morphology": {"weights": {"beat": 1.0}}},
        "model": {"hidden": [64, 16], "code": 4, "activation": "relu", "l2": 1e-5},
        "train": {"epochs": 40, "batch": 256, "learning_rate": 1e-3, "loss": "mae"},
        # ~0.7 % of the training normals' scores, and a shape above the 90th percentile of theirs (both chosen
        # by the leave-records-out figures, see the README)
        "threshold": {"method": "percentile", "param": 99.3, "morphology": {"method": "percentile", "param": 90.0}},
        "peaks": "detector",
    },
}
PRESETS["fast"] = copy.deepcopy(PRESETS["default"])  # for tests: same model, fewer epochs
PRESETS["fast"]["train"]["epochs"] = 3
# Without the adaptive ratio: the ablation that shows what the patient-adaptive score buys.
PRESETS["static"] = copy.deepcopy(PRESETS["default"])
del PRESETS["static"]["score"]["adaptive"]


# --- data --------------------------------------------------------------------------------------------------
def beat_spec(preset: dict[str, Any]) -> BeatSpec:
    return BeatSpec(preset["beat"], preset["features"], preset["normalisation"])


def peak_source(preset: dict[str, Any]) -> str:
    """The runtime detector when it is available, else the annotations."""
    if preset.get("peaks", "detector") == "detector":
        try:
            import streamer.ecg.detector  # noqa: F401
        except ImportError:
            return "annotations"
        return "detector"
    return "annotations"


def load_beats(records: Sequence[Path], preset: dict[str, Any], source: str,
               progress: TrainingProgress | None = None) -> list[LabelledBeats]:
    spec = beat_spec(preset)
    fs = None
    out = []
    progress = progress or TrainingProgress.silent()
    with progress.phase(f"reading records, R peaks from the {source}", total=len(records)) as advance:
        for path in records:
            rec = load_record(path)
            if fs is not None and rec.fs != fs:
                raise ValueError(f"record {rec.name} is at {rec.fs} Hz, the others at {fs} Hz")
            fs = rec.fs
            out.append(labelled_beats(rec, spec, source))
            advance(rec.name)
    return out


def n_fitted(lb: LabelledBeats) -> int:
    """How many of a record's first beats are fitted on; the rest are held out."""
    return int(round(len(lb.pvc) * (1.0 - HOLDOUT_FRACTION)))


def first_beats(lb: LabelledBeats, n: int) -> LabelledBeats:
    """A record's first `n` beats, lasting until the first beat left out."""
    duration = lb.beats[n].time_s if n < len(lb.beats) else lb.duration_s
    return LabelledBeats(lb.record, lb.beats[:n], lb.inputs[:n], lb.pvc[:n], lb.annotated[:n], duration,
                         lb.part(0, n))


def last_beats(lb: LabelledBeats, n: int) -> LabelledBeats:
    """A record's beats from beat `n` on, lasting from that beat to the end of the record."""
    duration = lb.duration_s - lb.beats[n].time_s if n < len(lb.beats) else 0.0
    return LabelledBeats(lb.record, lb.beats[n:], lb.inputs[n:], lb.pvc[n:], lb.annotated[n:], duration,
                         lb.part(n))


def fitted_parts(beats: Sequence[LabelledBeats]) -> list[LabelledBeats]:
    """What `train_records` fits on: the first beats of every record (`n_fitted`)."""
    return [first_beats(lb, n_fitted(lb)) for lb in beats]


def held_out_normals(beats: Sequence[LabelledBeats]) -> np.ndarray:
    """Inputs of the held-out normal beats: the validation loss shown per epoch (never used to choose)."""
    tails = [last_beats(lb, n_fitted(lb)) for lb in beats]
    return np.concatenate([lb.inputs[training_rows(lb)] for lb in tails])


def record_rate(records: Sequence[Path]) -> float:
    return load_record(records[0]).fs


def training_rows(lb: LabelledBeats) -> np.ndarray:
    """Normal beats to fit on: annotated non-PVC beats, or every beat of a record without annotations."""
    if not lb.annotated.any():
        return np.ones(len(lb.pvc), bool)
    return lb.annotated & ~lb.pvc


# --- model -------------------------------------------------------------------------------------------------
def build_autoencoder(n_inputs: int, cfg: dict[str, Any]) -> Any:
    import keras

    reg = keras.regularizers.l2(cfg["l2"]) if cfg.get("l2") else None
    inp = keras.Input((n_inputs,), name="input")
    x = inp
    for units in cfg["hidden"]:
        x = keras.layers.Dense(units, activation=cfg["activation"], kernel_regularizer=reg)(x)
    x = keras.layers.Dense(cfg["code"], kernel_regularizer=reg, name="code")(x)  # linear bottleneck
    for units in reversed(cfg["hidden"]):
        x = keras.layers.Dense(units, activation=cfg["activation"], kernel_regularizer=reg)(x)
    out = keras.layers.Dense(n_inputs, name="recon")(x)
    return keras.Model(inp, out, name="ecg_beat_ae")


def fit_autoencoder(x: np.ndarray, preset: dict[str, Any], epochs: int, seed: int,
                    progress: TrainingProgress | None = None, label: str = "fit",
                    validation: np.ndarray | None = None) -> Any:
    """Fit on `x`; `validation` (held-out normal beats) is only reported per epoch, never used to choose."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_autoencoder(x.shape[1], preset["model"])
    train = preset["train"]
    model.compile(optimizer=keras.optimizers.Adam(train["learning_rate"]), loss=train["loss"])
    held = (validation, validation) if validation is not None and len(validation) else None
    with (progress or TrainingProgress.silent()).fit(label, epochs, "val_loss" if held else None) as task:
        model.fit(x, x, epochs=epochs, batch_size=train["batch"], shuffle=True, validation_data=held,
                  callbacks=[task.callback()], verbose=0)
    return model


def reconstruct(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x.astype(np.float32), batch_size=4096, verbose=0), dtype=np.float32)


def record_scores(model: Any, lb: LabelledBeats, spec: BeatSpec, score: dict[str, Any]) -> np.ndarray:
    """Scores of one record's beats in stream order, exactly as the runtime computes them."""
    scorer = StreamingScorer(spec.feature_names, spec.length, score)
    return scorer.score(lb.inputs, reconstruct(model, lb.inputs))


def record_shapes(model: Any, lb: LabelledBeats, spec: BeatSpec, score: dict[str, Any]) -> np.ndarray | None:
    """The shape scores (`morphology_spec`) of one record's beats as the runtime computes them; None for a
    score without a shape gate."""
    shape = morphology_spec(score)
    return None if shape is None else record_scores(model, lb, spec, shape)


def shape_passes(model: Any, lb: LabelledBeats, spec: BeatSpec, score: dict[str, Any],
                 threshold: dict[str, Any]) -> np.ndarray | None:
    """Which beats pass the shape gate (None: no gate)."""
    shapes = record_shapes(model, lb, spec, score)
    gate = threshold.get("morphology")
    return None if shapes is None or not gate else shapes > float(gate["value"])


# --- evaluation --------------------------------------------------------------------------------------------
def record_figures(scores: np.ndarray, lb: LabelledBeats, threshold: float, first: int = 0,
                   shape_ok: np.ndarray | None = None) -> dict[str, Any]:
    """As the engine alarms: from beat `first` on, only beats of good signal quality are judged, and an alarm
    needs the score above `threshold` and the shape gate passed (`shape_ok`, if any). Precision and false
    alarms over the alarms raised; recall over every PVC detected from `first` on, those left unjudged for
    poor signal counted as missed; AUC of the score over the judged annotated beats (V positive)."""
    scores, ann, pvc, good = scores[first:], lb.annotated[first:], lb.pvc[first:], lb.judged[first:]
    gated = good if shape_ok is None else good & shape_ok[first:]
    fig = anomaly_scores(np.where(gated, scores, -np.inf), pvc, threshold, lb.duration_s)
    fig["auc"] = anomaly_scores(scores[ann & good], pvc[ann & good], threshold)["auc"]
    fig["n_beats"] = int(len(scores))
    fig["n_pvc"] = int(pvc.sum())
    fig["n_unjudged_noise"] = int((~good).sum())
    fig["pvc_unjudged_noise"] = int((pvc & ~good).sum())
    fig["n_unmatched_detections"] = int((~ann).sum())
    fig["false_alarms_unmatched"] = int((gated & ~ann & (scores > threshold)).sum())
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in fig.items()}


def model_score(model: Any, train: Sequence[LabelledBeats], preset: dict[str, Any]) -> dict[str, Any]:
    """The metadata `score` for a fitted model: the preset's, plus the adaptive part's `reference`.

    The reference is the same percentile of the training normals' raw scores as the adaptive part takes of
    a patient's recent scores, so the two are compared like with like.
    """
    score = copy.deepcopy(preset["score"])
    if score.get("adaptive"):
        spec = beat_spec(preset)
        raw = StreamingScorer(spec.feature_names, spec.length, {k: v for k, v in score.items()
                                                                if k != "adaptive"})
        normal = np.concatenate([raw.score(lb.inputs, reconstruct(model, lb.inputs))[training_rows(lb)]
                                 for lb in train])
        score["adaptive"]["reference"] = float(np.percentile(normal, float(score["adaptive"]["quantile"])))
    if score.get("morphology"):  # the shape score's own reference, the same way
        spec = beat_spec(preset)
        weights = score["morphology"].get("weights") or {"beat": 1.0}
        raw = StreamingScorer(spec.feature_names, spec.length, {"kind": score.get("kind", "mae"), "weights": weights})
        normal = np.concatenate([raw.score(lb.inputs, reconstruct(model, lb.inputs))[training_rows(lb)]
                                 for lb in train])
        quantile = float(score["adaptive"]["quantile"]) if score.get("adaptive") else 50.0
        score["morphology"] = {"weights": dict(weights), "reference": float(np.percentile(normal, quantile))}
    return score


def fit_on(train: Sequence[LabelledBeats], preset: dict[str, Any], epochs: int, seed: int,
           progress: TrainingProgress | None = None, label: str = "fit",
           validation: np.ndarray | None = None) -> tuple[Any, dict[str, Any], dict[str, Any], np.ndarray]:
    """Fit on the normal beats of `train`; score and threshold from them. Returns (model, score, threshold, x).

    `validation` inputs only show a validation loss per epoch."""
    spec = beat_spec(preset)
    x = np.concatenate([lb.inputs[training_rows(lb)] for lb in train])
    model = fit_autoencoder(x, preset, epochs, seed, progress, label, validation)
    score = model_score(model, train, preset)
    first = judged_from(score)
    normal_scores = np.concatenate([record_scores(model, lb, spec, score)[first:][training_rows(lb)[first:]]
                                    for lb in train])
    th = threshold_from(normal_scores, preset["threshold"]["method"], preset["threshold"]["param"])
    th["chosen_on"] = ("scores (streamed per record) of the normal beats of the training records: "
                       + ", ".join(lb.record for lb in train))
    gate = preset["threshold"].get("morphology")
    if gate and morphology_spec(score) is not None:
        shapes = np.concatenate([record_scores(model, lb, spec, morphology_spec(score) or {})[first:]
                                 [training_rows(lb)[first:]] for lb in train])
        th["morphology"] = threshold_from(shapes, gate["method"], gate["param"])
    return model, score, th, x


def leave_records_out(records: Sequence[Path], preset: str = "default", epochs: int | None = None,
                      seed: int = 0, beats: list[LabelledBeats] | None = None,
                      progress: TrainingProgress | None = None) -> dict[str, Any]:
    """Per-record figures, each from a model fitted (and thresholded) without that record."""
    progress = progress or TrainingProgress.silent()
    cfg = PRESETS[preset]
    source = peak_source(cfg)
    beats = beats or load_beats([record_path(r) for r in records], cfg, source, progress)
    epochs = epochs or cfg["train"]["epochs"]
    spec = beat_spec(cfg)
    per_record = {}
    with progress.phase("leave-records-out", total=len(beats)) as advance:
        for i, test in enumerate(beats):
            train = [lb for j, lb in enumerate(beats) if j != i]
            model, score, th, _ = fit_on(train, cfg, epochs, seed, progress, f"fold {i + 1}/{len(beats)} "
                                                                            f"(without {test.record})")
            scores = record_scores(model, test, spec, score)
            shape_ok = shape_passes(model, test, spec, score, th)
            per_record[test.record] = {**record_figures(scores, test, th["value"], judged_from(score), shape_ok),
                                       "threshold": th["value"]}
            progress.note(f"LORO {test.record}: " + ", ".join(
                f"{k} {per_record[test.record][k]:.4f}" if per_record[test.record][k] is not None else f"{k} n/a"
                for k in ("auc", "precision", "recall", "false_alarms_per_min")))
            advance(test.record)
    aucs = [f["auc"] for f in per_record.values() if f["auc"] is not None]
    return {"method": "leave-records-out: each record scored by a model fitted and thresholded without it",
            "peaks": source, "labels": LABEL_NOTE, "epochs": epochs, "seed": seed,
            "per_record": per_record,
            "auc_min": min(aucs) if aucs else None, "auc_mean": float(np.mean(aucs)) if aucs else None}


def held_out_figures(model: Any, beats: Sequence[LabelledBeats], spec: BeatSpec, score: dict[str, Any],
                     th: dict[str, Any]) -> dict[str, Any]:
    """Figures on the held-out beats of every record (from `n_fitted` on), each record streamed whole.

    Streaming the whole record gives the held-out beats the running template and score level they would
    have live (warmed on the fitted beats: inputs, not labels). `pooled` counts every record's held-out beats.
    """
    first, threshold = judged_from(score), float(th["value"])
    per_record, tails, pooled_scores, pooled_shapes = {}, [], [], []
    for lb in beats:
        n = n_fitted(lb)
        if n >= len(lb.pvc):
            continue  # too few beats to hold any out
        scores, tail = record_scores(model, lb, spec, score)[n:], last_beats(lb, n)
        passes = shape_passes(model, lb, spec, score, th)
        shape_ok = None if passes is None else passes[n:]
        judged = max(0, first - n)
        per_record[lb.record] = record_figures(scores, tail, threshold, judged, shape_ok)
        tails.append(last_beats(lb, n + judged))
        pooled_scores.append(scores[judged:])
        pooled_shapes.append(np.ones(len(scores) - judged, bool) if shape_ok is None else shape_ok[judged:])
    if not tails:
        raise ValueError("the records are too short to hold any beats out")
    pooled = LabelledBeats("all", [], np.zeros((0, spec.n_inputs), np.float32),
                           np.concatenate([t.pvc for t in tails]), np.concatenate([t.annotated for t in tails]),
                           sum(t.duration_s for t in tails), np.concatenate([t.judged for t in tails]))
    return {"part": f"the last {HOLDOUT_FRACTION:.0%} of each record's beats (not fitted on)",
            "method": "each record streamed whole through the model (the fitted part warms its template and "
                      "score level, as live); figures over its held-out beats only; threshold as shipped",
            "labels": LABEL_NOTE, "per_record": per_record,
            "pooled": record_figures(np.concatenate(pooled_scores), pooled, threshold, 0,
                                     np.concatenate(pooled_shapes))}


LABEL_NOTE = ("detected R peaks matched to annotated beats within 150 ms: V = PVC (positive), other beats "
              "normal; beats of poor signal quality are not judged (no alarm; a PVC among them counts as "
              "missed); AUC over matched judged beats only; detections with no annotated beat count as normal "
              "in precision and false alarms (also reported as false_alarms_unmatched); annotated beats the "
              "detector missed are not scored")


# --- training entry ----------------------------------------------------------------------------------------
def model_meta(preset: dict[str, Any], fs: float, name: str, score: dict[str, Any], threshold: dict[str, Any],
               train: Sequence[LabelledBeats], x: np.ndarray, source: str,
               metrics: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": modelmeta.ECG_TASK,
        "name": name,
        "version": MODEL_VERSION,
        "sample_rate_hz": fs,
        "beat": preset["beat"],
        "features": preset["features"],
        "normalisation": preset["normalisation"],
        "score": score,
        "threshold": threshold,
        "training_data": {
            "name": "MIT-BIH Arrhythmia Database records",
            "records": [lb.record for lb in train],
            "sha256": _sha256(x),
            "n_beats": int(len(x)),
            "n_items": int(len(x)),
            "split": f"annotated non-V beats among the first {1 - HOLDOUT_FRACTION:.0%} of every listed "
                     "record's beats (all of those beats for a record without annotations); the rest held out",
            "unannotated_records": [lb.record for lb in train if not lb.annotated.any()],
            "peaks": source,
        },
        "model": preset["model"],
        "train": {**preset["train"], "epochs": training["epochs_budget"]},
        "training": training,
        "metrics": metrics,
    }


def _sha256(x: np.ndarray) -> str:
    from export.onnx_export import sha256_of_arrays

    return sha256_of_arrays(x)


def train_records(records: list[Path], out_dir: Path, preset: str = "default", epochs: int | None = None,
                  seed: int = 0, name: str = "ecg", loro: bool = False,
                  progress: TrainingProgress | None = None) -> dict[str, Any]:
    """Fit on the normal beats of the first 80 % of each record's beats, score the rest (`metrics.held_out`),
    export `<out_dir>/<name>.onnx` + card; returns the metadata. `progress` shows the phases and epochs."""
    from export.onnx_export import epochs_meta, export_keras, write_card

    progress = progress or TrainingProgress.silent()
    cfg = PRESETS[preset]
    paths = [record_path(r) for r in records]
    source = peak_source(cfg)
    beats = load_beats(paths, cfg, source, progress)
    budget = epochs or cfg["train"]["epochs"]
    metrics: dict[str, Any] = {}
    if loro and len(beats) > 1:
        metrics["leave_records_out"] = leave_records_out(paths, preset, budget, seed, beats, progress)
    fitted = fitted_parts(beats)
    t0 = time.time()
    model, score, th, x = fit_on(fitted, cfg, budget, seed, progress, validation=held_out_normals(beats))
    seconds = round(time.time() - t0, 1)
    metrics["train_seconds"] = seconds
    spec = beat_spec(cfg)
    with progress.phase("held-out figures"):
        metrics["held_out"] = held_out_figures(model, beats, spec, score, th)
        metrics["training_records"] = {lb.record: record_figures(record_scores(model, lb, spec, score), lb,
                                                                th["value"], judged_from(score),
                                                                shape_passes(model, lb, spec, score, th))
                                       for lb in fitted}
    metrics["training_records_note"] = "in-sample (the fitted first part of each record): optimistic"
    training = {"preset": preset, "seed": seed, "seconds": seconds,
                **epochs_meta(cfg["train"]["epochs"], budget, budget, "epoch budget")}
    meta = model_meta(cfg, record_rate(paths), name, score, th, fitted, x, source, metrics, training)
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    parity_x = x[rng.choice(len(x), min(PARITY_BEATS, len(x)), replace=False)]
    with progress.phase("ONNX export and parity check"):
        full = export_keras(model, out_dir / f"{name}.onnx", meta, parity_x)
        write_card(full, out_dir / f"{name}.card.md")
    return full


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", nargs="+", required=True, help="WFDB record paths (with or without extension)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="ecg")
    ap.add_argument("--loro", action="store_true", help="also compute the leave-records-out figures")
    args = ap.parse_args(argv)
    import_tensorflow()  # quietly, as `streamer train` does
    paths = sorted({record_path(r) for r in args.records})
    with TrainingProgress() as progress:
        meta = train_records(paths, args.out, args.preset, args.epochs, args.seed, args.name, args.loro, progress)
    print_result(progress.console, meta, args.out / f"{args.name}.onnx", args.out / f"{args.name}.card.md")


if __name__ == "__main__":
    main()
