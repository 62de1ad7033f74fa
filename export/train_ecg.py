"""Train an ECG5000 beat autoencoder, evaluate it on the lecture's test split, export ONNX + model card.

    python -m export.train_ecg --preset default --out samples/models/

Inputs are made with `BeatSpec.normalise` from the very metadata that ships in the model, so the live
engine prepares beats exactly as training did. Test labels are used only to report figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from export import ecg5000
from export.ecg_models import Preset, build_autoencoder, get_preset
from export.heldout import print_result
from export.onnx_export import epochs_meta, export_keras, sha256_of_arrays, write_card
from export.progress import TrainingProgress
from export.quiet import import_tensorflow
from streamer.core import modelmeta
from streamer.ecg.beats import BeatSpec
from streamer.ecg.evaluate import anomaly_scores
from streamer.ecg.scoring import beat_scores
from streamer.ecg.threshold import threshold_from

VERSION = "1.0.0"
SAMPLE_RATE_HZ = 250  # BIDMC chf07; the RR window is rate-free anyway
N_PARITY = 300  # held-out test beats for the ONNX parity check
VAL_SPLIT_SEED = 0  # carving the validation part out of the training split
PERCENTILE_GRID = np.arange(80.0, 99.75, 0.25)  # candidate thresholds for "max_f1_percentile"
FEATURES: list[dict[str, Any]] = [{"name": "beat", "size": ecg5000.LENGTH}]
SCORE = {"kind": "mae", "weights": {"beat": 1.0}}


@dataclass(frozen=True)
class Prepared:
    """Model inputs (normalised with the shipped metadata) and the metadata that made them."""

    meta: dict[str, Any]  # beat, features, normalisation, score
    train: np.ndarray  # float32 (n, 140)
    train_normal: np.ndarray
    test: np.ndarray
    test_normal: np.ndarray


def beat_meta(train_x: np.ndarray, train_normal: np.ndarray) -> dict[str, Any]:
    """Metadata `beat`: one R-to-R cycle, QRS position measured on the training normals."""
    qrs = ecg5000.qrs_position(train_x[train_normal])
    note = (f"QRS at sample {qrs} of {ecg5000.LENGTH}: median argmin of the training-split normal beats "
            "(QRS points down, polarity -1); the argmin of their mean beat agrees")
    return {"length": ecg5000.LENGTH, "window": {"kind": "rr", "pre_fraction": qrs / ecg5000.LENGTH},
            "polarity": -1, "note": note}


def normalise_rows(spec: BeatSpec, x: np.ndarray) -> np.ndarray:
    """Float64 beats (rows) as the engine prepares them (the stateless steps, per beat)."""
    return spec.normalise(np.asarray(x, dtype=np.float64))


def prepare(split: ecg5000.Split) -> Prepared:
    """Per-beat zscore (UCR's, idempotent here) then global min-max with the training split's range."""
    beat = beat_meta(split.train_x, split.train_normal)
    zscored = normalise_rows(BeatSpec(beat, FEATURES, {"steps": [{"kind": "zscore"}]}), split.train_x)
    steps = [{"kind": "zscore"},
             {"kind": "minmax", "min": float(zscored.min()), "max": float(zscored.max())}]
    meta = {"beat": beat, "features": FEATURES, "normalisation": {"steps": steps}, "score": SCORE}
    spec = BeatSpec.from_meta(meta)
    return Prepared(meta, normalise_rows(spec, split.train_x).astype(np.float32), split.train_normal,
                    normalise_rows(spec, split.test_x).astype(np.float32), split.test_normal)


def carve_validation(preset: Preset, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the training split: (fit, validation). Stratified so both hold anomalies alike."""
    idx = np.arange(len(normal))
    if preset.validation_fraction <= 0:
        return idx, idx[:0]
    from sklearn.model_selection import train_test_split

    fit, val = train_test_split(idx, test_size=preset.validation_fraction, random_state=VAL_SPLIT_SEED,
                                stratify=normal)
    return fit, val


def fit(preset: Preset, x_fit: np.ndarray, x_val: np.ndarray, epochs: int,
        progress: TrainingProgress | None = None) -> tuple[Any, dict[str, Any]]:
    """Train on normal beats only; early stopping watches the validation normals if there are any.

    Returns the model and its `epochs_meta` record."""
    import keras

    progress = progress or TrainingProgress.silent()
    model = build_autoencoder(preset)
    stopping, validation = None, None
    if len(x_val) and preset.patience:
        validation = (x_val, x_val)
        stopping = keras.callbacks.EarlyStopping(patience=preset.patience, restore_best_weights=True)
    with progress.fit("fit", epochs, "val_loss" if validation else None) as task:
        callbacks = [task.callback()] + ([stopping] if stopping else [])
        history = model.fit(x_fit, x_fit, epochs=epochs, batch_size=preset.batch_size, shuffle=True,
                            validation_data=validation, callbacks=callbacks, verbose=0)
    run = len(history.history["loss"])
    if stopping is None:
        return model, epochs_meta(preset.epochs, epochs, run, "epoch budget")
    why = (f"early stopping (val_loss of the validation normals, patience {preset.patience})" if run < epochs
           else "epoch budget (early stopping never triggered)")
    return model, epochs_meta(preset.epochs, epochs, run, why, weights_from_epoch=stopping.best_epoch + 1)


COLLAPSED_SPREAD = 0.1  # below this, the model gives nearly one beat whatever it is fed (see `reconstruction_spread`)


def reconstruction_spread(model: Any, x: np.ndarray) -> float:
    """How much the reconstructions vary across beats, relative to the inputs: mean over samples of their
    standard deviation across beats, over that of `x`. Near 0 the autoencoder has collapsed to one output
    beat, and its score is only the distance to that beat (the lecture's recipe does this here: 0.03)."""
    recon = np.asarray(model.predict(x, batch_size=1024, verbose=0))
    return float(np.mean(recon.std(axis=0)) / max(float(np.mean(x.std(axis=0))), 1e-12))


def collapse_note(spread: float) -> dict[str, Any]:
    """Metadata for the spread, with a warning the card and the training table show when it is tiny."""
    out: dict[str, Any] = {"reconstruction_spread": round(spread, 4)}
    if spread < COLLAPSED_SPREAD:
        out["warning"] = (f"reconstructions vary across test beats {spread:.0%} as much as the inputs: the model "
                          "outputs nearly the same beat for every input, so its score is the distance to that beat")
    return out


def scores_of(model: Any, x: np.ndarray) -> np.ndarray:
    recon = np.asarray(model.predict(x, batch_size=1024, verbose=0))
    return beat_scores(x, recon, [f["name"] for f in FEATURES], ecg5000.LENGTH, SCORE)


def max_f1_percentile(val_scores: np.ndarray, val_normal: np.ndarray) -> float:
    """Percentile of validation-normal scores whose threshold gives the best F1 on the validation part."""
    normal_scores = val_scores[val_normal]
    f1 = [anomaly_scores(val_scores, ~val_normal, np.percentile(normal_scores, q))["f1"]
          for q in PERCENTILE_GRID]
    return float(PERCENTILE_GRID[int(np.nanargmax(f1))])


def choose_threshold(preset: Preset, model: Any, data: Prepared, fit_idx: np.ndarray,
                     val_idx: np.ndarray) -> dict[str, Any]:
    """Threshold record from training-split data only (see `Preset.threshold`)."""
    if preset.threshold == "mean_std":
        normals = data.train[fit_idx][data.train_normal[fit_idx]]
        record = threshold_from(scores_of(model, normals), "mean_std", 1.0)
        record["chosen_on"] = "MAE of the training-split normal beats the model was fitted on (lecture rule)"
        return record
    if preset.threshold == "max_f1_percentile":
        val_scores, val_normal = scores_of(model, data.train[val_idx]), data.train_normal[val_idx]
        q = max_f1_percentile(val_scores, val_normal)
        record = threshold_from(val_scores[val_normal], "percentile", q)
        record["chosen_on"] = (f"percentile of the MAE of the {int(val_normal.sum())} validation normals "
                               f"(a {preset.validation_fraction:.0%} stratified part of the training split, "
                               f"not trained on) that maximises F1 on that part ({len(val_idx)} beats incl. "
                               f"{int((~val_normal).sum())} anomalies); no test labels")
        record["validation"] = rounded(anomaly_scores(val_scores, ~val_normal, record["value"]))
        return record
    raise ValueError(f"unknown threshold rule {preset.threshold!r}")


def rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in figures.items()}


def training_data_meta(split: ecg5000.Split, data: Prepared, fit_idx: np.ndarray,
                       val_idx: np.ndarray) -> dict[str, Any]:
    n_fit_normal = int(data.train_normal[fit_idx].sum())
    return {
        "name": ecg5000.NAME, "source": ecg5000.SOURCE, "citation": ecg5000.CITATION,
        "sha256": sha256_of_arrays(split.train_x, split.train_normal, split.test_x, split.test_normal),
        "sha256_of": "raw train_x, train_normal, test_x, test_normal of the split (float64/bool)",
        "n_items": int(len(split.train_x) + len(split.test_x)),
        "n_train": int(len(split.train_x)), "n_test": int(len(split.test_x)),
        "n_fit_normal": n_fit_normal, "n_validation": int(len(val_idx)),
        "label": "normal = class 1; classes 2..5 anomalous",
        "split": ecg5000.SPLIT,
        "fitted_on": "normal beats of the training split" + (" minus the validation part" if len(val_idx) else ""),
    }


def train_ecg5000(preset: str, out_dir: Path, epochs: int | None = None, seed: int = 0,
                  progress: TrainingProgress | None = None) -> dict[str, Any]:
    """Train preset `preset`, evaluate on the test split, write `<name>.onnx` and `<name>.card.md`.

    `progress` shows the phases and epochs (default: nothing). Returns {"meta", "onnx", "card", "model",
    "test_inputs", "seconds"}; `model` is the Keras model.
    """
    import keras

    progress = progress or TrainingProgress.silent()
    recipe = get_preset(preset)
    keras.utils.set_random_seed(seed)
    with progress.phase("loading ECG5000"):
        split = ecg5000.lecture_split()
        data = prepare(split)
    fit_idx, val_idx = carve_validation(recipe, data.train_normal)
    fit_normals = fit_idx[data.train_normal[fit_idx]]
    val_normals = val_idx[data.train_normal[val_idx]]
    start = time.perf_counter()
    budget = epochs or recipe.epochs
    model, epochs_record = fit(recipe, data.train[fit_normals], data.train[val_normals], budget, progress)
    seconds = time.perf_counter() - start
    with progress.phase("threshold and test figures"):
        threshold = choose_threshold(recipe, model, data, fit_idx, val_idx)
        test = anomaly_scores(scores_of(model, data.test), ~data.test_normal, threshold["value"])
    meta = {
        "task": modelmeta.ECG_TASK, "name": recipe.name, "version": VERSION,
        "sample_rate_hz": SAMPLE_RATE_HZ, **data.meta, "threshold": threshold,
        "training_data": training_data_meta(split, data, fit_idx, val_idx),
        "metrics": {**rounded(test), **collapse_note(reconstruction_spread(model, data.test)),
                    "n_test": int(len(data.test)), "positive": "anomalous beats",
                    "split": "lecture test split (20%, random_state 21)"},
        "training": {"preset": preset, "seed": seed, **epochs_record, "seconds": round(seconds, 1),
                     "recipe": {k: v for k, v in vars(replace(recipe, epochs=budget)).items() if k != "name"}},
    }
    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{recipe.name}.onnx"
    with progress.phase("ONNX export and parity check"):
        meta = export_keras(model, onnx_path, meta, data.test[:N_PARITY])
        card = write_card(meta, out_dir / f"{recipe.name}.card.md")
    return {"meta": meta, "onnx": onnx_path, "card": card, "model": model, "test_inputs": data.test,
            "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=["default", "lecture"])
    parser.add_argument("--out", type=Path, default=Path("samples/models"))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import_tensorflow()  # quietly, as `streamer train` does
    with TrainingProgress() as progress:
        result = train_ecg5000(args.preset, args.out, args.epochs, args.seed, progress)
    print_result(progress.console, result["meta"], result["onnx"], result["card"])


if __name__ == "__main__":
    main()
