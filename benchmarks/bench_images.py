"""Images per second of the image denoisers: bare onnxruntime (batch 1, 64, 256; 1 and 2 threads) vs Keras.

    python benchmarks/bench_images.py [--model samples/models/denoise.onnx] \
        [--model /work/cache/models/denoise-lecture.onnx] [--json benchmarks/results_images.json] \
        [--side 28] [--no-keras]

Several `--model`s are measured side by side in one run (same images, same process). `--side 28` gives the
native 28x28 digits (noise added at 28x28): an any-size model runs on them as they are, a 32x32 model on the
same digits resized to its size (its own work, without the engine's resize). `--no-keras` skips TensorFlow.

Inputs are real noisy MNIST test images (sigma 0.5). The Keras side is the same architecture rebuilt from
the preset named in the model's metadata, with fresh weights: same layers and shapes, so the same work
(its output is not compared). TensorFlow runs with 2 intra-op threads. Timings are medians over repeated
calls after warm-up; p99 is of the per-call time. Every onnxruntime session is made by
`streamer.core.session.create_session` (intra-op threads as labelled, inter-op 1, CPU): "onnxruntime, N
threads" is `create_session(model, threads=N).run(...)`. The engine's own throughput against bare
onnxruntime is measured by `bench_image_engine.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
from timing import timed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 64, 256)
THREADS = (1, 2)
TARGET_S = 2.0  # seconds of calls per measurement


def timed_for(fn: Any) -> np.ndarray:
    """Seconds per call, after 10 warm-up calls, for about TARGET_S seconds (at least 20 calls)."""
    t0 = time.perf_counter()  # one call sizes the run
    fn()
    return timed(fn, max(20, int(TARGET_S / max(time.perf_counter() - t0, 1e-6))))


def row(label: str, times: np.ndarray, batch: int) -> dict[str, Any]:
    med = float(np.median(times))
    return {"label": label, "batch": batch, "images_per_s": batch / med, "median_ms_per_call": med * 1e3,
            "p99_ms_per_call": float(np.percentile(times, 99)) * 1e3, "calls": int(len(times))}


def onnx_rows(path: Path, images: np.ndarray) -> list[dict[str, Any]]:
    from streamer.core.session import create_session
    from streamer.images import sizing

    rows = []
    for threads in THREADS:
        sess = create_session(path, threads=threads, provider="cpu")
        name = sess.get_inputs()[0].name
        fixed = [d for d in sess.get_inputs()[0].shape[1:] if isinstance(d, int)]
        if fixed and list(images.shape[1:]) != fixed:
            images = sizing.to_model_many(images, sizing.plan(images.shape[1:], (fixed[0], fixed[1])))
        for batch in BATCHES:
            x = images[:batch]
            times = timed_for(lambda x=x, s=sess, n=name: s.run(None, {n: x}))
            rows.append(row(f"onnxruntime, {threads} thread{'s' if threads > 1 else ''}", times, batch))
    return rows


def keras_rows(meta: dict[str, Any], images: np.ndarray) -> list[dict[str, Any]]:
    import tensorflow as tf

    from export.image_models import build_autoencoder, get_preset

    model = build_autoencoder(get_preset(meta["training"]["preset"]))
    fn = tf.function(lambda t: model(t, training=False))
    rows = []
    for batch in (64, 256):
        x = images[:batch]
        rows.append(row("Keras predict", timed_for(lambda x=x, b=batch: model.predict(x, batch_size=b, verbose=0)),
                        batch))
        xt = tf.constant(x)
        rows.append(row("tf.function", timed_for(lambda xt=xt: fn(xt)), batch))
    big = images[:4096]  # predict's own batching over many images, as a user would call it
    rows.append(row("Keras predict, 4096 images, batch_size 256",
                    timed_for(lambda: model.predict(big, batch_size=256, verbose=0)), len(big)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, action="append")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--side", type=int, choices=(28, 32), default=32)
    ap.add_argument("--no-keras", action="store_true")
    args = ap.parse_args()
    import onnxruntime as ort

    from export import mnist
    from streamer.core import modelmeta
    from streamer.core.session import create_session

    tf_version = None
    if not args.no_keras:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf_version = tf.__version__
    clean = (mnist.load() if args.side == 32 else mnist.load_native()).test[:4096]
    images = mnist.add_noise(clean, 0.5, mnist.noise_seed("test", 0.5))
    results: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                               "onnxruntime": ort.__version__, "tensorflow": tf_version, "side": args.side,
                               "models": {}}
    print(f"machine: {results['machine']}, {results['cores']} cores; TensorFlow 2 intra-op threads; "
          f"real noisy MNIST test images at {args.side}x{args.side}\n")
    for path in args.model or [ROOT / "samples/models/denoise.onnx"]:
        meta = modelmeta.decode(create_session(path, provider="cpu").get_modelmeta().custom_metadata_map)
        rows = onnx_rows(path, images) + ([] if args.no_keras else keras_rows(meta, images))
        base = next(r for r in rows if r["label"] == "onnxruntime, 2 threads" and r["batch"] == 256)
        for r in rows:
            r["vs_onnxruntime_2_threads_batch_256"] = r["images_per_s"] / base["images_per_s"]
        training = meta.get("training", {})
        results["models"][meta["name"]] = {"path": str(path), "params": training.get("params"),
                                           "macs_per_image": training.get("macs_per_image"), "rows": rows}
        print(f"### {meta['name']} ({training.get('params')} parameters, {training.get('macs_per_image')} MACs "
              f"per image)\n")
        print("| runner | batch | images/s | median ms/call | p99 ms/call | vs onnxruntime 2 threads, batch 256 |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['label']} | {r['batch']} | {r['images_per_s']:.0f} | {r['median_ms_per_call']:.3f} | "
                  f"{r['p99_ms_per_call']:.3f} | {r['vs_onnxruntime_2_threads_batch_256']:.2f}x |")
        print()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
