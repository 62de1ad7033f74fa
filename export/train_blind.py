"""Train the any-size, noise-level-blind image denoiser (the `default` image preset) and evaluate it as users
bring images: native 28x28 digits with noise added at 28x28, and the lecture's 32x32 protocol.

    streamer train images --out samples/models/        # (python -m export.train_images)

Training sees the 50 000 MNIST training images, each epoch half of them (drawn afresh) at their native 28x28
and the other half resized to 32x32, each image with its own sigma drawn uniformly from the preset's range and
fresh noise `clip(x + sigma N(0, 1), 0, 1)` added at the image's own size. Validation (2 000 images, the same
size and sigma mixture, fixed noise) gives the validation loss; the test images are only reported: at
`EVAL_SIDES` x `EVAL_SIGMAS`, for this model and for the noisy input (the classical baselines and the other
models are compared in benchmarks/bench_blind_images.py).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from export import mnist
from export.image_models import SIZE_MULTIPLE, Preset, build_autoencoder, macs
from export.onnx_export import epochs_meta, export_keras, onnx_runner, set_metadata, sha256_of_arrays, write_card
from export.progress import TrainingProgress
from streamer.core import modelmeta

VERSION = "2.0.0"
EVAL_SIDES = (28, 32)  # native MNIST, and the lecture's 32x32 resize
EVAL_SIGMAS = (0.1, 0.2, 0.3, 0.5, 0.7)
N_VALIDATION = 2000  # validation images for the validation loss (half at each size)
N_PARITY = 200  # test images per size for the exporter's parity check
MAX_SIDE = 256  # pixels: larger images are cut into overlapping tiles of this size by the engine


def sized(images28: np.ndarray, side: int) -> np.ndarray:
    """Native 28x28 images at `side`: themselves at 28, resized by `mnist.RESIZE_RULE` otherwise."""
    return images28 if side == mnist.RAW_SIDE else mnist.resize(images28, side)


def noisy_at(clean: np.ndarray, sigmas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """clip(x + sigma_i N(0, 1), 0, 1) with one sigma per image."""
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    return np.clip(clean + sigmas.astype(np.float32)[:, None, None] * noise, 0.0, 1.0)


def batches(clean: dict[int, np.ndarray], recipe: Preset,
            rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch: every image once, at one of the sizes (drawn per image), in shuffled single-size batches."""
    n = len(next(iter(clean.values())))
    sides = rng.choice(sorted(clean), size=n)
    order = rng.permutation(n)
    out = []
    for side in sorted(clean):
        idx = order[sides[order] == side]
        for i in range(0, len(idx), recipe.batch_size):
            part = np.sort(idx[i:i + recipe.batch_size])
            x = clean[side][part]
            sig = rng.uniform(*recipe.sigma_range, size=len(x))
            out.append((noisy_at(x, sig, rng), x))
    return [out[i] for i in rng.permutation(len(out))]


def _dataset(pairs: list[tuple[np.ndarray, np.ndarray]], seed: int) -> Any:
    """The batches as one tf.data pipeline, height and width left free: the batches of each size as tensors,
    concatenated (tf.data relaxes the shapes), then shuffled batch by batch (seeded). No Python generator: a
    `from_generator` pipeline kept the test process from exiting, and a Keras PyDataset fixes the shape from
    the first batches it peeks at and refuses the other size later."""
    import tensorflow as tf

    parts = []
    for size in sorted({p[0].shape[1:] for p in pairs}):
        group = [p for p in pairs if p[0].shape[1:] == size]  # full batches, then perhaps one partial
        noisy, clean = np.concatenate([p[0] for p in group]), np.concatenate([p[1] for p in group])
        parts.append(tf.data.Dataset.from_tensor_slices((noisy, clean)).batch(len(group[0][0])))
    data = parts[0]
    for part in parts[1:]:
        data = data.concatenate(part)
    data = data.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=False)
    return data.apply(tf.data.experimental.assert_cardinality(len(pairs)))  # steps known: progress and ETA


def fit(recipe: Preset, train28: np.ndarray, validation28: np.ndarray, epochs: int, seed: int,
        progress: TrainingProgress, time_budget_s: float | None = None) -> tuple[Any, list[dict[str, float]], str]:
    """Train blind over sizes and noise levels; returns (model, per-epoch losses, what stopped it)."""
    clean = {side: sized(train28, side) for side in EVAL_SIDES}
    val = {side: sized(validation28[:N_VALIDATION], side) for side in EVAL_SIDES}
    steps = sum(int(np.ceil(len(train28) / recipe.batch_size * 0.5)) + 1 for _ in EVAL_SIDES)
    model = build_autoencoder(replace(recipe, epochs=epochs), steps_per_epoch=steps)
    rng = np.random.default_rng(seed)
    val_data = _dataset(batches(val, recipe, np.random.default_rng(mnist.noise_seed("validation", 0.0, seed + 1))),
                        seed)
    history: list[dict[str, float]] = []
    stopped_by = "epoch budget"
    start = time.perf_counter()
    with progress.fit("fit", epochs, "val_loss") as task:
        callback = task.callback()
        for epoch in range(epochs):
            h = model.fit(_dataset(batches(clean, recipe, rng), seed + epoch), initial_epoch=epoch, epochs=epoch + 1,
                          shuffle=False, validation_data=val_data, callbacks=[callback], verbose=0)
            history.append({"loss": float(h.history["loss"][0]), "val_loss": float(h.history["val_loss"][0])})
            spent = time.perf_counter() - start
            if time_budget_s is not None and spent / (epoch + 1) * (epoch + 2) > time_budget_s and epoch + 1 < epochs:
                stopped_by = "time budget"
                break
    return model, history, stopped_by


def evaluate(predict: Any, test28: np.ndarray, sides: tuple[int, ...] = EVAL_SIDES,
             sigmas: tuple[float, ...] = EVAL_SIGMAS) -> dict[str, Any]:
    """{"28x28": {"sigma_0.5": {"model": {...}, "noisy_input": {...}}}}: noise added at each size itself, with
    the fixed evaluation seeds (the same noisy images for every model)."""
    from export.train_images import figures

    out: dict[str, Any] = {}
    for side in sides:
        clean = sized(test28, side)
        rows = {}
        for sigma in sigmas:
            noisy = mnist.add_noise(clean, sigma, mnist.noise_seed("test", sigma))
            rows[f"sigma_{sigma:g}"] = {"model": figures(clean, predict(noisy)), "noisy_input": figures(clean, noisy)}
        out[f"{side}x{side}"] = rows
    return out


def image_meta(recipe: Preset) -> dict[str, Any]:
    sizes = [[s, s] for s in EVAL_SIDES]
    return {
        "image": {"size": "any", "multiple_of": SIZE_MULTIPLE, "max_side": MAX_SIDE, "channels": 1,
                  "evaluated_sizes": sizes, "evaluated_sigmas": list(EVAL_SIGMAS),
                  "resize_rule": "none: images are denoised at their own size (sides padded by mirroring to a "
                                 f"multiple of {SIZE_MULTIPLE}, larger than {MAX_SIDE} px cut into tiles)",
                  "layout": "input (batch, H, W) float32, output (batch, H, W) in [0, 1]; H, W divisible by "
                            f"{SIZE_MULTIPLE}"},
        "noise": {"kind": "gaussian", "sigma": None, "blind": True, "sigma_range": list(recipe.sigma_range),
                  "clip": [0.0, 1.0], "formula": "clip(x + sigma * N(0, 1), 0, 1), sigma unknown to the model"},
        "normalisation": {"kind": "scale", "divide_by": 255, "range": [0.0, 1.0],
                          "note": "8-bit grayscale / 255; outputs * 255 back to 8 bits"},
    }


def train_blind(recipe: Preset, out_dir: str | Path, epochs: int, seed: int = 0, n_train: int | None = None,
                n_test: int | None = None, name: str | None = None, progress: TrainingProgress | None = None,
                time_budget_s: float | None = None) -> dict[str, Any]:
    """Train `recipe` (an any-size preset), evaluate, write `<name>.onnx` and its card; as `train_images`."""
    import keras

    from export.train_images import keras_runner

    progress = progress or TrainingProgress.silent()
    keras.utils.set_random_seed(seed)
    with progress.phase("loading MNIST (70 000 native 28x28 images)"):
        data = mnist.load_native()
    train, test = data.train[:n_train], data.test[:n_test]
    start = time.perf_counter()
    model, history, stopped_by = fit(recipe, train, data.validation, epochs, seed, progress, time_budget_s)
    seconds = time.perf_counter() - start
    with progress.phase("test figures at 28x28 and 32x32"):
        metrics = evaluate(keras_runner(model), test)
    meta = {
        "task": modelmeta.IMAGE_TASK, "name": name or recipe.name, "version": VERSION, **image_meta(recipe),
        "training_data": {
            "name": mnist.NAME, "source": mnist.SOURCE, "citation": mnist.CITATION,
            "sha256": mnist_sha(data), "sha256_of": "train, validation, test images, native 28x28 (float32)",
            "n_items": int(len(data.train) + len(data.validation) + len(data.test)), "n_train": int(len(train)),
            "n_validation": int(len(data.validation)), "n_test": int(len(data.test)), "split": mnist.SPLIT,
            "fitted_on": f"the first {len(train)} training images, each epoch at 28x28 or resized to 32x32 "
                         f"(drawn per image), noise sigma uniform in {list(recipe.sigma_range)} per image"},
        "metrics": {**metrics, "split": "test", "n_test": int(len(test)), "sizes": [f"{s}x{s}" for s in EVAL_SIDES],
                    "sigmas": list(EVAL_SIGMAS),
                    "protocol": "28x28: the native digits, noise added at 28x28; 32x32: digits resized 28->32 "
                                "first (mnist.RESIZE_RULE), noise added at 32x32 (the lecture's protocol)",
                    "psnr": "mean over images of 10 log10(1 / MSE), images in [0, 1]",
                    "ssim": "mean over images; `ssim`: 7x7 box window (scikit-image default); `ssim_gaussian`: "
                            "Wang et al. 2004 11x11 Gaussian, sigma 1.5",
                    "noise_seeds": "numpy default_rng(export.mnist.noise_seed('test', sigma)), identical for every "
                                   "model and both sizes"},
        "validation": {"n": N_VALIDATION, "final_val_loss": round(history[-1]["val_loss"], 6),
                       "mixture": "half 28x28, half 32x32, sigma as in training, fixed noise"},
        "training": {"preset": "default" if recipe.name == "denoise" else recipe.name, "seed": seed,
                     **epochs_meta(recipe.epochs, epochs, len(history), stopped_by), "seconds": round(seconds, 1),
                     "final_loss": round(history[-1]["loss"], 6), "final_val_loss": round(history[-1]["val_loss"], 6),
                     "history": [{k: round(v, 6) for k, v in h.items()} for h in history],
                     "params": int(model.count_params()),
                     "macs_per_image": {f"{s}x{s}": macs(model, s) for s in EVAL_SIDES},
                     "recipe": {k: v for k, v in vars(replace(recipe, epochs=epochs)).items() if k != "name"}},
    }
    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{meta['name']}.onnx"
    with progress.phase("ONNX export and parity check (28x28 and 32x32)"):
        meta = export_keras(model, onnx_path, meta, _parity_inputs(data.test))
    runner = onnx_runner(onnx_path)
    with progress.phase("test figures re-measured on the ONNX file"):
        onnx_metrics = evaluate(runner, test)
    meta["metrics"] = {**meta["metrics"], **onnx_metrics}
    set_metadata(onnx_path, meta)
    card = write_card(meta, out_dir / f"{meta['name']}.card.md")
    return {"meta": meta, "onnx": onnx_path, "card": card, "model": model, "test_clean": test, "seconds": seconds}


def _parity_inputs(test28: np.ndarray) -> dict[int, np.ndarray]:
    """Noisy held-out images at each evaluated size (the last test images, sigma 0.5, their own seed)."""
    clean = test28[-N_PARITY:]
    return {side: mnist.add_noise(sized(clean, side), 0.5, mnist.noise_seed("test", 0.5) + 1) for side in EVAL_SIDES}


def mnist_sha(data: mnist.Split) -> str:
    return sha256_of_arrays(data.train, data.validation, data.test)
