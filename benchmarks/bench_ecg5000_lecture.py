"""Where does the `lecture` ECG5000 preset differ from the lecture? Each candidate difference, measured.

Usage:  python benchmarks/bench_ecg5000_lecture.py [--seeds 5] [--json out.json] [--md out.md]

The lecture (TensorFlow's "Intro to autoencoders", anomaly detection part): ECG5000, global min-max with
the training split's range, Dense 32-16-8 / 16-32 / 140 sigmoid, MAE, Adam, 20 epochs, batch 512, trained
on the normal training beats, threshold mean + 1 std of their MAE. The `lecture` preset is that recipe
(its inputs are checked here to equal the lecture's normalisation). For each seed and each variant, one
change at a time: test AUC (anomalous positive), accuracy at the lecture's threshold, the lecture's own
precision / recall (normal beats positive, as the lecture prints them) and the model's *spread*: the
standard deviation of its reconstructions across the test beats over that of the inputs, mean over the
140 samples. A spread near 0 means the model outputs one beat whatever it is given; the AUC of plain
distance to the mean normal training beat (no model) is printed beside it.

Variants: the lecture as written; Keras 2 (`tf_keras`, the lecture's own Keras, if installed); MSE
instead of MAE as the score; 100 epochs instead of 20; batch 64 instead of 512; 100 epochs with MSE;
UCR's own 500/4500 TRAIN/TEST split instead of the lecture's 80/20 re-split; other random_state values for
the 80/20 split. `tf_keras` is not a dependency: `pip install tf_keras` to include the Keras 2 row.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export import ecg5000  # noqa: E402
from export.ecg_models import build_autoencoder, get_preset  # noqa: E402
from export.quiet import import_tensorflow  # noqa: E402
from export.train_ecg import prepare  # noqa: E402
from streamer.ecg.evaluate import anomaly_scores, roc_auc  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    epochs: int = 20
    batch_size: int = 512
    score: str = "mae"
    split: str = "lecture"  # "lecture" (80/20 re-split, random_state), or "ucr" (UCR's TRAIN / TEST)
    random_state: int = ecg5000.SPLIT_SEED
    keras2: bool = False


VARIANTS = (
    Variant("the lecture's recipe (the `lecture` preset)"),
    Variant("the same in Keras 2 (tf_keras)", keras2=True),
    Variant("score MSE instead of MAE", score="mse"),
    Variant("100 epochs instead of 20", epochs=100),
    Variant("batch 64 instead of 512", batch_size=64),
    Variant("100 epochs and score MSE", epochs=100, score="mse"),
    Variant("UCR's 500 / 4500 TRAIN / TEST split", split="ucr"),
    Variant("80/20 split with random_state 0", random_state=0),
    Variant("80/20 split with random_state 1", random_state=1),
)


def split_for(variant: Variant) -> ecg5000.Split:
    if variant.split == "ucr":
        import os

        parts = [np.loadtxt(os.path.join(ecg5000.data_dir(), f"{ecg5000.NAME}_{p}.tsv"), delimiter="\t")
                 for p in ("TRAIN", "TEST")]
        return ecg5000.Split(parts[0][:, 1:], parts[0][:, 0] == ecg5000.NORMAL_CLASS,
                             parts[1][:, 1:], parts[1][:, 0] == ecg5000.NORMAL_CLASS)
    from sklearn.model_selection import train_test_split

    data, labels = ecg5000.load()
    tx, vx, ty, vy = train_test_split(data, labels, test_size=ecg5000.TEST_SIZE, random_state=variant.random_state)
    return ecg5000.Split(tx, ty == ecg5000.NORMAL_CLASS, vx, vy == ecg5000.NORMAL_CLASS)


def lecture_inputs(split: ecg5000.Split) -> tuple[np.ndarray, np.ndarray]:
    """The lecture's normalisation, written out: (x - min) / (max - min) with the training split's range."""
    lo, hi = split.train_x.min(), split.train_x.max()
    return (((split.train_x - lo) / (hi - lo)).astype(np.float32), ((split.test_x - lo) / (hi - lo)).astype(np.float32))


def keras2_model() -> Any:
    import tf_keras

    layers = [tf_keras.layers.Dense(w, activation="relu") for w in (32, 16, 8, 16, 32)]
    model = tf_keras.Sequential([*layers, tf_keras.layers.Dense(ecg5000.LENGTH, activation="sigmoid")])
    model.compile(optimizer="adam", loss="mae")
    return model


def run(variant: Variant, seed: int) -> dict[str, float]:
    import keras

    split = split_for(variant)
    prepared = prepare(split)
    train, test = lecture_inputs(split)
    inputs_match = float(max(np.abs(prepared.train - train).max(), np.abs(prepared.test - test).max()))
    normals = prepared.train[split.train_normal]
    if variant.keras2:
        import tf_keras

        tf_keras.utils.set_random_seed(seed)
        model = keras2_model()
    else:
        keras.utils.set_random_seed(seed)
        model = build_autoencoder(replace(get_preset("lecture"), epochs=variant.epochs))
    model.fit(normals, normals, epochs=variant.epochs, batch_size=variant.batch_size, shuffle=True, verbose=0)

    def score(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        recon = np.asarray(model.predict(x, batch_size=1024, verbose=0))
        err = np.abs(recon - x) if variant.score == "mae" else (recon - x) ** 2
        return err.mean(axis=1), recon

    train_scores, _ = score(normals)
    test_scores, recon = score(prepared.test)
    threshold = float(train_scores.mean() + train_scores.std())
    figures = anomaly_scores(test_scores, ~split.test_normal, threshold)
    said_normal = test_scores < threshold  # the lecture's `predict`: True = normal
    tp_normal = int((said_normal & split.test_normal).sum())
    mean_beat = normals.mean(axis=0)
    return {"auc": figures["auc"], "accuracy": figures["accuracy"],
            "lecture_precision": tp_normal / max(int(said_normal.sum()), 1),
            "lecture_recall": tp_normal / max(int(split.test_normal.sum()), 1),
            "spread": float(np.mean(recon.std(axis=0)) / np.mean(prepared.test.std(axis=0))),
            "auc_distance_to_mean_beat": roc_auc(np.abs(prepared.test - mean_beat).mean(axis=1), ~split.test_normal),
            "inputs_vs_lecture_max_abs": inputs_match}


def has_tf_keras() -> bool:
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        return False
    return True


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        out[key] = {"mean": statistics.fmean(values), "sd": statistics.pstdev(values), "values": values}
    return out


def markdown(results: dict[str, Any], seeds: int) -> str:
    lines = ["# The `lecture` ECG5000 preset against the lecture: each candidate difference, one run", "",
             f"`python benchmarks/bench_ecg5000_lecture.py --seeds {seeds}`; "
             f"{platform.processor() or platform.machine()}, "
             f"mean +/- sd over seeds 0-{seeds - 1}. Spread: std of the reconstructions across test beats / std "
             "of the inputs (0 = the same output for every beat).", "",
             "| variant | AUC | accuracy | lecture precision / recall (normal positive) | spread "
             "| AUC of distance to the mean normal beat |",
             "|---|---|---|---|---|---|"]
    for name, s in results["variants"].items():
        if s is None:
            lines.append(f"| {name} | not run (tf_keras not installed) | | | | |")
            continue
        lines.append(f"| {name} | {s['auc']['mean']:.4f} +/- {s['auc']['sd']:.4f} | {s['accuracy']['mean']:.3f} | "
                     f"{s['lecture_precision']['mean']:.3f} / {s['lecture_recall']['mean']:.3f} | "
                     f"{s['spread']['mean']:.3f} | {s['auc_distance_to_mean_beat']['mean']:.4f} |")
    lines += ["", f"The preset's inputs equal the lecture's normalisation to {results['inputs_max_abs']:.1e}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("results_ecg5000_lecture.json"))
    parser.add_argument("--md", type=Path, default=Path(__file__).with_name("results_ecg5000_lecture.md"))
    args = parser.parse_args()
    import_tensorflow()
    results: dict[str, Any] = {"machine": platform.platform(), "variants": {}}
    worst_inputs = 0.0
    for variant in VARIANTS:
        if variant.keras2 and not has_tf_keras():
            results["variants"][variant.name] = None
            continue
        rows = [run(variant, seed) for seed in range(args.seeds)]
        worst_inputs = max(worst_inputs, max(r["inputs_vs_lecture_max_abs"] for r in rows))
        results["variants"][variant.name] = summarise(rows)
        s = results["variants"][variant.name]
        print(f"{variant.name}: AUC {s['auc']['mean']:.4f} +/- {s['auc']['sd']:.4f}, spread {s['spread']['mean']:.3f}",
              flush=True)
    results["inputs_max_abs"] = worst_inputs
    args.json.write_text(json.dumps(results, indent=1))
    args.md.write_text(markdown(results, args.seeds))
    print(f"wrote {args.md} and {args.json}")


if __name__ == "__main__":
    main()
