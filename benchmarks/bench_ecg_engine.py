"""Per-beat scoring latency, engine vs bare onnxruntime vs Keras, and a whole 30-minute replay.

    python benchmarks/bench_ecg_engine.py [--model samples/models/ecg.onnx] [--record samples/ecg/106]

The Keras side is the same network rebuilt from the ONNX file's own weights (dense layers), checked to
give the same output, so all four columns compute the same thing.
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
ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "LeakyRelu": "leaky_relu"}


def keras_from_dense_onnx(path: Path) -> Any:
    """Rebuild a chain of dense layers (MatMul/Gemm + bias + activation) from an ONNX graph."""
    import keras
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    layers: list[dict[str, Any]] = []
    for node in proto.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            w = init[node.input[1]]
            b = init[node.input[2]] if node.op_type == "Gemm" and len(node.input) > 2 else np.zeros(w.shape[1])
            layers.append({"w": w, "b": b, "act": None})
        elif node.op_type == "Add" and layers and any(i in init for i in node.input):
            layers[-1]["b"] = layers[-1]["b"] + init[next(i for i in node.input if i in init)]
        elif node.op_type in ACTIVATIONS and layers:
            layers[-1]["act"] = ACTIVATIONS[node.op_type]
    n_in = layers[0]["w"].shape[0]
    inputs = keras.Input((n_in,))
    x = inputs
    for spec in layers:
        dense = keras.layers.Dense(spec["w"].shape[1], activation=spec["act"])
        x = dense(x)
        dense.set_weights([spec["w"], spec["b"].astype(np.float32)])
    return keras.Model(inputs, x)


def per_beat(model_path: Path, record: Path, n: int) -> dict[str, Any]:
    import onnxruntime as ort
    import tensorflow as tf

    from streamer.ecg.detector import detect_rpeaks
    from streamer.ecg.readers import read_recording
    from streamer.ecg.task import EcgTask
    from streamer.run.engine import Engine
    from streamer.core.model import Model
    from streamer.run.pacing import Pacer
    from streamer.run.sources import ArraySource

    rec = read_recording(record)
    model = Model(model_path, threads=1)
    task = EcgTask(model, rec.fs)
    first_minute = rec.signal[: int(60 * rec.fs)]
    beats = task.framer.feed(first_minute, list(detect_rpeaks(first_minute, rec.fs)))
    beat = beats[len(beats) // 2]
    engine = Engine(ArraySource(rec.signal, rec.fs, "x", 1.0), task, model, Pacer(float("inf")))
    x = beat.features[None, :].astype(np.float32)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    bare = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    name = bare.get_inputs()[0].name
    keras_model = keras_from_dense_onnx(model_path)
    diff = float(np.abs(keras_model(x).numpy() - bare.run(None, {name: x})[0]).max())
    fn = tf.function(lambda t: keras_model(t, training=False))
    xt = tf.constant(x)

    def bare_with_score() -> float:  # the least any caller does: run the model, take the error
        return float(np.abs(bare.run(None, {name: x})[0] - x).mean())

    rows = {
        "engine (batch -> model -> score -> event -> metrics)": timed(
            lambda: engine._process([beat], time.perf_counter()), n, warmup=20),
        "bare onnxruntime": timed(lambda: bare.run(None, {name: x}), n, warmup=20),
        "bare onnxruntime + numpy MAE": timed(bare_with_score, n, warmup=20),
        "Keras predict": timed(lambda: keras_model.predict(x, verbose=0), max(n // 20, 50), warmup=20),
        "tf.function": timed(lambda: fn(xt), n, warmup=20),
    }
    return {"rows": rows, "keras_onnx_max_abs_diff": diff}


def replay(model_path: Path, record: Path, repeats: int) -> dict[str, float]:
    """Whole record at --speed max on 1 thread: read + replay, and replay alone (start-up excluded)."""
    from streamer.ecg.readers import read_recording
    from streamer.ecg.task import EcgTask
    from streamer.run.engine import Engine
    from streamer.core.model import Model
    from streamer.run.pacing import Pacer
    from streamer.run_ecg import FAST_BLOCK_S
    from streamer.run.sources import ArraySource

    model = Model(model_path, threads=1)
    replays, reads, beats = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rec = read_recording(record)
        t1 = time.perf_counter()
        engine = Engine(ArraySource(rec.signal, rec.fs, "x", FAST_BLOCK_S), EcgTask(model, rec.fs, reference=rec),
                        model, Pacer(float("inf")))
        summary = engine.run()
        t2 = time.perf_counter()
        reads.append(t1 - t0)
        replays.append(t2 - t1)
        beats = summary["beats"]
    return {"record_s": len(rec.signal) / rec.fs, "beats": beats, "replay_s_median": float(np.median(replays)),
            "read_s_median": float(np.median(reads)), "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=ROOT / "samples/models/ecg.onnx")
    ap.add_argument("--record", type=Path, default=ROOT / "samples/ecg/106")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    beat = per_beat(args.model, args.record, args.n)
    base = float(np.median(beat["rows"]["bare onnxruntime"]))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"onnxruntime 1 intra-op thread; model {args.model.name}; batch 1; n={args.n}\n")
    print("| per beat | median (us) | p99 (us) | vs bare onnxruntime |\n|---|---|---|---|")
    table = {}
    for label, t in beat["rows"].items():
        med, p99 = float(np.median(t)) * 1e6, float(np.percentile(t, 99)) * 1e6
        table[label] = {"median_us": med, "p99_us": p99, "ratio": med / (base * 1e6)}
        print(f"| {label} | {med:.1f} | {p99:.1f} | {med / (base * 1e6):.2f}x |")
    print(f"\n(Keras rebuilt from the ONNX weights: max abs difference {beat['keras_onnx_max_abs_diff']:.1e})")
    rep = replay(args.model, args.record, args.repeats)
    print(f"\nwhole replay of {args.record.name} ({rep['record_s'] / 60:.0f} min, {rep['beats']} beats) at "
          f"--speed max, 1 thread: {rep['replay_s_median']:.3f} s median of {rep['repeats']} "
          f"(+ {rep['read_s_median']:.3f} s reading the record); real-time factor "
          f"{rep['replay_s_median'] / rep['record_s']:.2e}")
    if args.json:
        args.json.write_text(json.dumps({"per_beat": table, "replay": rep,
                                         "machine": platform.processor(), "cores": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
