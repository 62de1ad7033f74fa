"""Ship the int8 variant of a denoiser where the edge benchmark found int8 helps (`benchmarks/bench_edge.py`:
faster and within 0.1 dB): `samples/models/denoise.int8.onnx`, with every test figure re-measured on the int8
file itself by the same evaluation as the float model (`export.train_blind.evaluate`: all 10 000 test digits,
28x28 and 32x32, every sigma).

    python -m export.edge_int8 [--model samples/models/denoise.onnx] [--out samples/models/denoise.int8.onnx]

Calibration: 512 MNIST training digits (never test digits) at 28x28, each with its own sigma drawn uniformly
from the model's trained range (a blind model meets every noise level, so its activation ranges must too).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from export import mnist
from export.onnx_export import onnx_runner, set_metadata, write_card
from export.train_blind import evaluate
from streamer.core.model import Model
from streamer.edge.quantise import quantisable_ops, quantise_int8

N_CALIBRATION = 512
SEED = 11


def calibration_digits(meta: dict[str, Any]) -> np.ndarray:
    noise = meta["noise"]
    lo, hi = noise.get("sigma_range") or (noise["sigma"], noise["sigma"])
    rng = np.random.default_rng(SEED)
    clean = mnist.load_native().train[:N_CALIBRATION]
    sigmas = rng.uniform(float(lo), float(hi), size=(len(clean), 1, 1)).astype(np.float32)
    return np.clip(clean + sigmas * rng.standard_normal(clean.shape, dtype=np.float32), 0.0, 1.0)


def model_rows(float_metrics: dict[str, Any], int8_rows: dict[str, Any]) -> dict[str, Any]:
    """The float model's metrics with every size's and sigma's `model` row replaced by the int8 file's."""
    out = dict(float_metrics)
    for size, by_sigma in int8_rows.items():
        out[size] = {key: {**float_metrics[size][key], "model": row["model"]} for key, row in by_sigma.items()}
    return out


def ship(float_path: Path, out: Path) -> dict[str, Any]:
    meta = Model(float_path).meta
    calibration = calibration_digits(meta)
    ops = quantisable_ops(float_path)
    quantise_int8(float_path, out, calibration, op_types=ops)
    int8, fp32 = onnx_runner(out, 256), onnx_runner(float_path, 256)
    test = mnist.load_native().test
    figures = evaluate(int8, test)
    probe = np.clip(test[:400] + 0.5 * np.random.default_rng(SEED).standard_normal(test[:400].shape), 0, 1)
    diff = np.abs(int8(probe.astype(np.float32)) - fp32(probe.astype(np.float32)))
    quantisation = {
        "method": f"onnxruntime quantize_static, QDQ: int8 weights and uint8 activations with fixed scales (MinMax "
                  f"calibration), {', '.join(ops)}",
        "calibration": f"{N_CALIBRATION} MNIST training digits at 28x28, sigma uniform over the trained range",
        "float_model": float_path.name,
        "float_test_figures": {size: {k: v["model"] for k, v in meta["metrics"][size].items()}
                               for size in figures},
        "max_abs_diff_vs_float": round(float(diff.max()), 6), "mean_abs_diff_vs_float": round(float(diff.mean()), 7),
        "n_inputs": 400, "chosen_by": "benchmarks/bench_edge.py (faster at batch 1 and 64, PSNR within 0.1 dB)",
    }
    int8_meta = {**meta, "name": f"{meta['name']}-int8", "metrics": model_rows(meta["metrics"], figures),
                 "quantisation": quantisation}
    set_metadata(out, int8_meta)
    write_card(int8_meta, out.with_name(out.name.replace(".onnx", ".card.md")))
    return int8_meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("samples/models/denoise.onnx"))
    parser.add_argument("--out", type=Path, default=Path("samples/models/denoise.int8.onnx"))
    args = parser.parse_args(argv)
    meta = ship(args.model, args.out)
    for size in ("28x28", "32x32"):
        for key, row in meta["metrics"][size].items():
            if key.startswith("sigma_"):
                was = meta["quantisation"]["float_test_figures"][size][key]
                print(f"{size} {key}: PSNR {row['model']['psnr_db']:.2f} dB (float {was['psnr_db']:.2f}), "
                      f"SSIM {row['model']['ssim']:.4f} (float {was['ssim']:.4f})")


if __name__ == "__main__":
    main()
