"""Train an MNIST denoising autoencoder, evaluate it on the test split, export ONNX + model card.

    python -m export.train_images --preset default --out samples/models/

Training sees only the 50 000 training images (noisy inputs, clean targets); the 10 000 validation images
choose epochs and recipes; the 10 000 test images are only reported, at sigma 0.3, 0.5 and 0.7, next to the
noisy input and the classical denoisers of `export/image_baselines.py`. Figures are computed by
`streamer.images.quality`, the code the runtime uses for its live PSNR/SSIM. A preset with `int8` ships
NAME.onnx quantised (figures re-measured on that file) and keeps the float export as NAME.fp32.onnx.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from export import image_baselines, mnist
from export.heldout import print_result
from export.image_models import PRESETS, Preset, build_autoencoder, get_preset, macs
from export.onnx_export import (
    QUANTISATION,
    epochs_meta,
    export_keras,
    onnx_runner,
    quantise_int8,
    set_metadata,
    sha256_of_arrays,
    write_card,
)
from export.progress import TrainingProgress
from export.quiet import import_tensorflow
from streamer.core import modelmeta
from streamer.images import quality

VERSION = "1.0.0"
EVAL_SIGMAS = (0.3, 0.5, 0.7)  # noise levels the test figures are reported at
N_PARITY = 500  # test images for the exporter's ONNX parity check
N_CALIBRATION = 2000  # noisy training images that fix the int8 activation scales
PREDICT_BATCH = 1024


def figures(clean: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Mean per-image PSNR and SSIM (7x7 window, as quoted in the issue; and Wang's Gaussian 11x11)."""
    return {"psnr_db": round(quality.mean_psnr_db(clean, estimate), 4),
            "ssim": round(quality.mean_ssim(clean, estimate, window="uniform"), 4),
            "ssim_gaussian": round(quality.mean_ssim(clean, estimate, window="gaussian"), 4)}


def keras_runner(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    return lambda noisy: np.asarray(model.predict(noisy, batch_size=PREDICT_BATCH, verbose=0))


def fit(recipe: Preset, train: np.ndarray, validation: np.ndarray, sigma: float, epochs: int,
        seed: int, progress: TrainingProgress | None = None) -> tuple[Any, list[dict[str, float]]]:
    """Train on noisy -> clean pairs; returns the model and the per-epoch losses (training, validation).

    With `fresh_noise` each epoch draws new noise (from one seeded generator), so the network cannot learn
    the noise of a fixed copy; otherwise one noisy copy is made once, as the lecture does. The learning-rate
    decay spans `epochs` (the recipe as run has `epochs` = this budget).
    """
    steps = int(np.ceil(len(train) / recipe.batch_size))
    model = build_autoencoder(replace(recipe, epochs=epochs), steps_per_epoch=steps)  # decay over this run
    rng = np.random.default_rng(seed)
    val_noisy = mnist.add_noise(validation, sigma, mnist.noise_seed("validation", sigma, seed))
    noisy = mnist.add_noise(train, sigma, rng)
    history: list[dict[str, float]] = []
    with (progress or TrainingProgress.silent()).fit("fit", epochs, "val_loss") as task:
        callback = task.callback()
        for epoch in range(epochs):
            if recipe.fresh_noise and epoch:
                noisy = mnist.add_noise(train, sigma, rng)
            h = model.fit(noisy, train, initial_epoch=epoch, epochs=epoch + 1, batch_size=recipe.batch_size,
                          shuffle=True, validation_data=(val_noisy, validation), callbacks=[callback], verbose=0)
            history.append({"loss": float(h.history["loss"][0]), "val_loss": float(h.history["val_loss"][0])})
    return model, history


def evaluate(predict: Callable[[np.ndarray], np.ndarray], clean: np.ndarray, split: str,
             sigmas: tuple[float, ...], baselines: dict[float, Any] | None = None,
             on_done: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Figures of the model (`predict`: noisy -> denoised) and of the noisy input (and classical baselines)
    per noise level; `on_done("test sigma 0.5 model")` after the model's figures and after each baseline's."""
    out: dict[str, Any] = {}
    for sigma in sigmas:
        noisy = mnist.add_noise(clean, sigma, mnist.noise_seed(split, sigma))
        row = {"model": figures(clean, predict(noisy)), "noisy_input": figures(clean, noisy)}
        if on_done:
            on_done(f"{split} sigma {sigma:g} model")
        if baselines is not None and sigma in baselines:
            for name, params in baselines[sigma].items():
                row[name] = {**figures(clean, image_baselines.apply(name, noisy, params)), "params": params}
                if on_done:
                    on_done(f"{split} sigma {sigma:g} {name}")
        out[f"sigma_{sigma:g}"] = row
    return out


def training_data_meta(data: mnist.Split, n_train: int) -> dict[str, Any]:
    return {
        "name": mnist.NAME, "source": mnist.SOURCE, "citation": mnist.CITATION,
        "sha256": sha256_of_arrays(data.train, data.validation, data.test),
        "sha256_of": "train, validation, test images after the 32x32 resize (float32)",
        "n_items": int(len(data.train) + len(data.validation) + len(data.test)),
        "n_train": n_train, "n_validation": int(len(data.validation)), "n_test": int(len(data.test)),
        "split": mnist.SPLIT,
        "fitted_on": f"the first {n_train} training images, noisy input -> clean target",
    }


def image_meta(sigma: float) -> dict[str, Any]:
    return {
        "image": {"height": mnist.SIDE, "width": mnist.SIDE, "channels": 1, "resize_rule": mnist.RESIZE_RULE,
                  "layout": "input (batch, 32, 32) float32, output (batch, 32, 32) in [0, 1]"},
        "noise": {"kind": "gaussian", "sigma": sigma, "clip": [0.0, 1.0],
                  "formula": "clip(x + sigma * N(0, 1), 0, 1)"},
        "normalisation": {"kind": "scale", "divide_by": 255, "range": [0.0, 1.0],
                          "note": "8-bit grayscale / 255; outputs * 255 back to 8 bits"},
    }


def ship_int8(onnx_path: Path, meta: dict[str, Any], test: np.ndarray, validation: np.ndarray,
              parity_noisy: np.ndarray, calibration: np.ndarray) -> dict[str, Any]:
    """Replace the exported float model by its int8 quantisation, with the model's figures re-measured on the
    int8 file itself (test, validation; the noisy-input and baseline rows do not change); the float model
    stays beside it as NAME.fp32.onnx."""
    fp32_path = onnx_path.with_suffix(".fp32.onnx")
    onnx_path.replace(fp32_path)
    quantise_int8(fp32_path, onnx_path, calibration)
    int8, fp32 = onnx_runner(onnx_path), onnx_runner(fp32_path)
    sigma = meta["noise"]["sigma"]
    metrics = _with_model_rows(meta["metrics"], evaluate(int8, test, "test", EVAL_SIGMAS))
    diff = np.abs(int8(parity_noisy) - fp32(parity_noisy))
    quantisation = {
        "method": QUANTISATION,
        "calibration": f"{len(calibration)} noisy training images (sigma {meta['noise']['sigma']:g})",
        "float_model": fp32_path.name,
        "float_test_figures": {k: v["model"] for k, v in meta["metrics"].items() if k.startswith("sigma_")},
        "max_abs_diff_vs_float": round(float(diff.max()), 6),
        "mean_abs_diff_vs_float": round(float(diff.mean()), 7),
        "n_inputs": int(len(parity_noisy)),
    }
    int8_meta = {**meta, "metrics": metrics, "quantisation": quantisation,
                 "validation": _with_model_rows(meta["validation"], evaluate(int8, validation, "validation", (sigma,)))}
    set_metadata(onnx_path, int8_meta)
    set_metadata(fp32_path, {**meta, "name": meta["name"] + "-fp32"})
    return int8_meta


def _with_model_rows(figures: dict[str, Any], model_rows: dict[str, Any]) -> dict[str, Any]:
    """`figures` with each noise level's "model" row replaced by the one in `model_rows`."""
    return {**figures, **{key: {**figures[key], "model": row["model"]} for key, row in model_rows.items()}}


def train_images(preset: str = "default", out_dir: str | Path = "samples/models", epochs: int | None = None,
                 seed: int = 0, sigma: float = 0.5, n_train: int | None = None, n_test: int | None = None,
                 baselines: bool = True, name: str | None = None,
                 progress: TrainingProgress | None = None) -> dict[str, Any]:
    """Train preset `preset`, evaluate on test, write `<name>.onnx` and `<name>.card.md` into `out_dir`.

    `n_train` / `n_test` take the first images of those splits (quick runs); `baselines=False` skips the
    classical denoisers (their parameters are chosen on validation, which takes minutes); `progress` shows
    the phases and epochs (default: nothing). Returns
    {"meta", "onnx", "card", "model", "test_clean", "seconds"}; `model` is the Keras model.
    """
    import keras

    progress = progress or TrainingProgress.silent()
    recipe = get_preset(preset)
    if recipe.any_size:  # the blind any-size default: its own data mixture and evaluation
        from export.train_blind import train_blind

        return train_blind(recipe, out_dir, epochs or recipe.epochs, seed, n_train, n_test, name, progress)
    keras.utils.set_random_seed(seed)
    with progress.phase("loading MNIST (70 000 images resized to 32x32)"):
        data = mnist.load()
    train = data.train[:n_train]
    test = data.test[:n_test]
    start = time.perf_counter()
    budget = epochs or recipe.epochs
    model, history = fit(recipe, train, data.validation, sigma, budget, seed, progress)
    seconds = time.perf_counter() - start
    chosen = None
    if baselines:
        with progress.phase("classical baselines: parameters chosen on validation",
                            total=len(EVAL_SIGMAS) * len(image_baselines.NAMES)) as advance:
            chosen = image_baselines.choose_all(data.validation, EVAL_SIGMAS, advance)
    predict = keras_runner(model)
    evaluations = len(EVAL_SIGMAS) * (1 + (len(image_baselines.NAMES) if chosen else 0)) + 1  # + validation
    with progress.phase("test and validation figures", total=evaluations) as advance:
        metrics, validation = _figures(predict, test, data.validation, sigma, chosen, advance)
    meta = {
        "task": modelmeta.IMAGE_TASK, "name": name or recipe.name, "version": VERSION, **image_meta(sigma),
        "training_data": training_data_meta(data, len(train)),
        "metrics": metrics,
        "validation": {**validation, "baselines_chosen_on": "validation" if chosen else None},
        "training": {"preset": preset, "seed": seed,
                     **epochs_meta(recipe.epochs, budget, len(history), "epoch budget"), "seconds": round(seconds, 1),
                     "final_loss": round(history[-1]["loss"], 6), "final_val_loss": round(history[-1]["val_loss"], 6),
                     "params": int(model.count_params()), "macs_per_image": macs(model),
                     "recipe": {k: v for k, v in vars(replace(recipe, epochs=budget)).items() if k != "name"}},
    }
    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{meta['name']}.onnx"
    parity_noisy = mnist.add_noise(data.test[-N_PARITY:], sigma, mnist.noise_seed("test", sigma) + 1)
    with progress.phase("ONNX export and parity check"):
        meta = export_keras(model, onnx_path, meta, parity_noisy)
    if recipe.int8:
        calibration = mnist.add_noise(train[:N_CALIBRATION], sigma, mnist.noise_seed("train", sigma))
        with progress.phase("int8 quantisation, figures re-measured on the int8 file"):
            meta = ship_int8(onnx_path, meta, test, data.validation, parity_noisy, calibration)
    card = write_card(meta, out_dir / f"{meta['name']}.card.md")
    return {"meta": meta, "onnx": onnx_path, "card": card, "model": model, "test_clean": test,
            "seconds": seconds}


def _figures(predict: Callable[[np.ndarray], np.ndarray], test: np.ndarray, validation: np.ndarray, sigma: float,
             chosen: dict[float, Any] | None, on_done: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(test metrics with their notes, validation figures at the trained sigma)."""
    metrics = {
        **evaluate(predict, test, "test", EVAL_SIGMAS, chosen, on_done),
        "split": "test", "n_test": int(len(test)), "trained_sigma": sigma,
        "psnr": "mean over images of 10 log10(1 / MSE), images in [0, 1]",
        "ssim": "mean over images; `ssim`: 7x7 box window (scikit-image default, the issue's figures); "
                "`ssim_gaussian`: Wang et al. 2004 11x11 Gaussian, sigma 1.5",
        "noise_seeds": "numpy default_rng(export.mnist.noise_seed('test', sigma)), identical for every model",
    }
    return metrics, evaluate(predict, validation, "validation", (sigma,), on_done=on_done)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, default=Path("samples/models"))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--name", default=None, help="model name (file name); default: the preset's")
    parser.add_argument("--no-baselines", action="store_true", help="skip the classical denoisers")
    args = parser.parse_args(argv)
    import_tensorflow()  # quietly, as `streamer train` does
    with TrainingProgress() as progress:
        result = train_images(args.preset, args.out, args.epochs, args.seed, args.sigma, args.n_train,
                              baselines=not args.no_baselines, name=args.name, progress=progress)
    print_result(progress.console, result["meta"], result["onnx"], result["card"], others_of(result["onnx"]))


def others_of(onnx_path: Path) -> list[Path]:
    """The float model kept beside a quantised one."""
    fp32 = onnx_path.with_suffix(".fp32.onnx")
    return [fp32] if fp32.is_file() else []


if __name__ == "__main__":
    main()
