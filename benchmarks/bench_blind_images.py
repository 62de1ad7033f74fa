"""Image denoisers as users bring images: MNIST test digits at their native 28x28 (noise added at 28x28) and
resized to 32x32 first (noise added at 32x32, the lecture's protocol), at sigma 0.1-0.7.

    python benchmarks/bench_blind_images.py                  # models (a minute) and classical (BM3D: ~20 min)
    python benchmarks/bench_blind_images.py --skip-classical # models only; classical rows kept from the .json

Rows: the shipped any-size blind default (`denoise.onnx`, at the image's own size), the previous default
(`denoise-dense.onnx`, trained on the 32x32 protocol) and the U-Net (`denoise-unet.onnx`) both through the
engine's size rule (28x28 resized to 32x32 and back: `streamer.images.sizing`), the noisy input, and the
classical methods: BM3D (`pip install bm3d`) and a median filter, each parameter chosen per size and sigma on
validation images (the MNIST validation split, never the test digits). BM3D runs on mosaics of 10x10 digits
(the package takes ~2 s per call whatever the image size, so one call per digit would take hours); its blocks
may match across neighbouring digits, which can only help it. Figures: `streamer.images.quality` (mean per-image
PSNR, SSIM with the 7x7 window), the same noisy images (`export.mnist.noise_seed`) for every row.
Writes benchmarks/results_blind_images.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from export import mnist  # noqa: E402
from export.train_blind import EVAL_SIDES, EVAL_SIGMAS, sized  # noqa: E402
from streamer.core.session import create_session  # noqa: E402
from streamer.images import quality, sizing  # noqa: E402
from streamer.images.kind import ANY_SIZE  # noqa: E402

MODELS = ROOT / "samples" / "models"
ROWS = {"denoise.onnx": "any-size blind default (shipped `denoise.onnx`)",
        "denoise-dense.onnx": "previous default, dense + strips int8, 32x32 protocol (`denoise-dense.onnx`)",
        "denoise-unet.onnx": "conv U-Net, 32x32 protocol (`denoise-unet.onnx`)"}
N_TEST = 500  # the first test digits (the 500)
N_VALIDATION = 100  # validation digits the classical parameters are chosen on (one BM3D mosaic)
MOSAIC = 10  # digits per mosaic side for BM3D
BM3D_FACTORS = (0.3, 0.4, 0.5, 0.6, 0.8)  # sigma_psd = factor * sigma (clipping makes the noise weaker than sigma)
MEDIAN_SIZES = (3, 5)  # pixels
OUT = ROOT / "benchmarks" / "results_blind_images"


def model_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """noisy (n, H, W) -> denoised, as the engine feeds this model: at its own size (any-size model, padded to
    its multiple) or through the size rule to the model's fixed size and back."""
    from streamer.core import modelmeta

    sess = create_session(path, threads=2)
    meta = modelmeta.decode(sess.get_modelmeta().custom_metadata_map)
    name = sess.get_inputs()[0].name
    image = meta["image"]

    def run(x: np.ndarray) -> np.ndarray:
        return np.concatenate([sess.run(None, {name: x[i:i + 256]})[0] for i in range(0, len(x), 256)])

    def predict(noisy: np.ndarray) -> np.ndarray:
        if image.get("size") == ANY_SIZE:
            padded = sizing.pad_to_multiple(noisy, int(image["multiple_of"]))
            return run(padded)[:, :noisy.shape[1], :noisy.shape[2]]
        plan = sizing.plan(noisy.shape[1:], (int(image["height"]), int(image["width"])))
        return run(noisy) if plan.kind == "resize" and noisy.shape[1:] == plan.model_hw else \
            sizing.from_model_many(run(sizing.to_model_many(noisy, plan)), plan)

    return predict


def figures(clean: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    return {"psnr_db": round(quality.mean_psnr_db(clean, estimate), 2),
            "ssim": round(quality.mean_ssim(clean, estimate), 3)}


def noisy_of(clean: np.ndarray, sigma: float, split: str) -> np.ndarray:
    return mnist.add_noise(clean, sigma, mnist.noise_seed(split, sigma))


def median(noisy: np.ndarray, size: int) -> np.ndarray:
    from scipy import ndimage

    return np.asarray(ndimage.median_filter(noisy, size=(1, size, size), mode="reflect"), np.float32)


def bm3d_mosaic(noisy: np.ndarray, sigma_psd: float) -> np.ndarray:
    """BM3D over mosaics of MOSAIC x MOSAIC images (n a multiple of MOSAIC**2)."""
    import bm3d

    n, h, w = noisy.shape
    k = MOSAIC
    out = np.empty_like(noisy)
    for start in range(0, n, k * k):
        block = noisy[start:start + k * k]
        mosaic = block.reshape(k, k, h, w).transpose(0, 2, 1, 3).reshape(k * h, k * w)
        den = np.asarray(bm3d.bm3d(mosaic, sigma_psd), np.float32)
        out[start:start + k * k] = den.reshape(k, h, k, w).transpose(0, 2, 1, 3).reshape(k * k, h, w)
    return np.clip(out, 0.0, 1.0)


def choose(method: str, clean: np.ndarray, noisy: np.ndarray, sigma: float) -> tuple[dict[str, float], float]:
    """The method's parameter with the best mean validation PSNR: ({param: value}, that PSNR)."""
    if method == "median":
        grid: list[dict[str, float]] = [{"size": s} for s in MEDIAN_SIZES]
    else:
        grid = [{"sigma_psd": round(f * sigma, 4)} for f in BM3D_FACTORS]
    scores = [quality.mean_psnr_db(clean, classical(method, noisy, p)) for p in grid]
    best = int(np.argmax(scores))
    return grid[best], round(float(scores[best]), 2)


def classical(method: str, noisy: np.ndarray, params: dict[str, float]) -> np.ndarray:
    if method == "median":
        return median(noisy, int(params["size"]))
    return bm3d_mosaic(noisy, float(params["sigma_psd"]))


def model_rows(test: dict[int, np.ndarray]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for file in ROWS:
        predict = model_runner(MODELS / file)
        rows[file] = {f"{s}x{s}": {f"{g:g}": figures(test[s], predict(noisy_of(test[s], g, "test")))
                                   for g in EVAL_SIGMAS} for s in EVAL_SIDES}
    rows["noisy_input"] = {f"{s}x{s}": {f"{g:g}": figures(test[s], noisy_of(test[s], g, "test")) for g in EVAL_SIGMAS}
                           for s in EVAL_SIDES}
    return rows


def classical_rows(test: dict[int, np.ndarray], validation: dict[int, np.ndarray]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for method in ("bm3d", "median"):
        rows[method] = {}
        for s in EVAL_SIDES:
            rows[method][f"{s}x{s}"] = {}
            for g in EVAL_SIGMAS:
                t0 = time.perf_counter()
                params, val_psnr = choose(method, validation[s], noisy_of(validation[s], g, "validation"), g)
                fig = figures(test[s], classical(method, noisy_of(test[s], g, "test"), params))
                rows[method][f"{s}x{s}"][f"{g:g}"] = {**fig, "params": params, "validation_psnr_db": val_psnr}
                print(f"{method} {s}x{s} sigma {g:g}: {fig} {params} ({time.perf_counter() - t0:.0f} s)",
                      file=sys.stderr)
    return rows


LABELS = {**ROWS, "bm3d": "BM3D (`bm3d` 4.0.3, sigma_psd chosen on validation)",
          "median": "median filter (3x3 or 5x5, chosen on validation)", "noisy_input": "noisy input"}


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Image denoisers on images as users bring them", "",
             "`python benchmarks/bench_blind_images.py` (see its docstring). "
             f"The first {result['n_test']} MNIST test digits; PSNR (dB) / SSIM (7x7); noise "
             "`clip(x + sigma N(0,1), 0, 1)` added at the size shown; classical parameters chosen on "
             f"{result['n_validation']} validation digits per size and sigma.", ""]
    for s in EVAL_SIDES:
        size = f"{s}x{s}"
        how = " (native MNIST)" if s == mnist.RAW_SIDE else " (resized first: the lecture's protocol)"
        lines += [f"## {size}{how}",
                  "", "| | " + " | ".join(f"sigma {g:g}" for g in EVAL_SIGMAS) + " |",
                  "|---|" + "---|" * len(EVAL_SIGMAS)]
        for key, label in LABELS.items():
            if key not in result["rows"]:
                continue
            cells = [result["rows"][key][size][f"{g:g}"] for g in EVAL_SIGMAS]
            text = [f"{c['psnr_db']:.2f} / {c['ssim']:.3f}" for c in cells]
            if key == "denoise.onnx":
                text, label = [f"**{t}**" for t in text], f"**{label}**"
            lines.append(f"| {label} | " + " | ".join(text) + " |")
        lines.append("")
        chosen = [(key, result["rows"][key][size]) for key in ("bm3d", "median") if key in result["rows"]]
        if chosen:
            lines += ["Chosen on validation: " + "; ".join(
                f"{key} " + ", ".join(f"{g}: {next(iter(c['params'].values()))}" for g, c in rows.items())
                for key, rows in chosen), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-classical", action="store_true", help="keep the classical rows of the .json")
    parser.add_argument("--skip-models", action="store_true", help="keep the model rows of the .json")
    args = parser.parse_args(argv)
    data = mnist.load_native()
    test = {s: sized(data.test[:N_TEST], s) for s in EVAL_SIDES}
    validation = {s: sized(data.validation[:N_VALIDATION], s) for s in EVAL_SIDES}
    previous = json.loads(OUT.with_suffix(".json").read_text()) if OUT.with_suffix(".json").is_file() else {}
    rows = {k: v for k, v in previous.get("rows", {}).items() if k not in ("bm3d", "median")} if args.skip_models \
        else model_rows(test)
    if args.skip_classical:
        rows.update({k: v for k, v in previous.get("rows", {}).items() if k in ("bm3d", "median")})
    else:
        rows.update(classical_rows(test, validation))
    result = {"n_test": N_TEST, "n_validation": N_VALIDATION, "sizes": [f"{s}x{s}" for s in EVAL_SIDES],
              "sigmas": list(EVAL_SIGMAS), "rows": rows}
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    OUT.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
