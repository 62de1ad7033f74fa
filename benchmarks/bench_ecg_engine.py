"""A whole 30-minute ECG replay at --speed max against sleepecg's offline detector, and per-beat model cost.

    python benchmarks/bench_ecg_engine.py [--model samples/models/ecg.onnx] [--record samples/ecg/106]

Replay (start-up excluded: the model is loaded and the record read before the clock starts), alternated
with the other rows in one run, median of `--repeats`, onnxruntime on 1 thread:
- `streamer ecg RECORD --speed max` data path: the CLI's own RunPlan (60 s blocks) through the Engine:
  detector, framer, model, scores, judge, event-log sink, report; the summary (evaluation against the
  annotations, after the run) is not timed;
- the library, one call: `stream.feed(whole record) + stream.flush()`;
- the detector alone (our causal one) and sleepecg's offline `detect_heartbeats` on the same signal.
Per beat (batch 1): bare onnxruntime, the model in Keras (rebuilt from the ONNX file's own weights, checked
to give the same output) with `predict` and `tf.function`.
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
    import tensorflow as tf

    import streamer
    from streamer.core.session import create_session
    from streamer.ecg.beats import BeatSpec, extract_beats
    from streamer.ecg.detector import detect_rpeaks
    from streamer.ecg.readers import read_recording

    rec = read_recording(record)
    model = streamer.load_model(model_path, threads=1)
    first_minute = rec.signal[: int(60 * rec.fs)]
    spec = BeatSpec.from_meta(model.meta)
    beats = extract_beats(first_minute, rec.fs, list(detect_rpeaks(first_minute, rec.fs)), spec)
    x = beats[len(beats) // 2].features[None, :].astype(np.float32)
    bare = create_session(model_path, threads=1)
    name = bare.get_inputs()[0].name
    keras_model = keras_from_dense_onnx(model_path)
    diff = float(np.abs(keras_model(x).numpy() - bare.run(None, {name: x})[0]).max())
    fn = tf.function(lambda t: keras_model(t, training=False))
    xt = tf.constant(x)
    rows = {
        "bare onnxruntime": timed(lambda: bare.run(None, {name: x}), n, warmup=20),
        "Keras predict": timed(lambda: keras_model.predict(x, verbose=0), max(n // 20, 50), warmup=20),
        "tf.function": timed(lambda: fn(xt), n, warmup=20),
    }
    return {"rows": rows, "keras_onnx_max_abs_diff": diff}


def replay(model_path: Path, record: Path, repeats: int) -> dict[str, Any]:
    """The rows of the replay table, alternated `repeats` times; medians in seconds."""
    import sleepecg

    import streamer
    from streamer.cli.ecg import plan_ecg
    from streamer.cli.options import RunOptions
    from streamer.ecg.detector import detect_rpeaks
    from streamer.ecg.readers import read_recording
    from streamer.run.engine import Engine
    from streamer.run.pacing import MAX_SPEED, Pacer

    rec = read_recording(record)
    model = streamer.load_model(model_path, threads=1)
    run = RunOptions(model_path, MAX_SPEED, None, None, False, 1, "cpu")

    def cli_path() -> None:
        plan = plan_ecg(str(record), run)  # start-up (model, record): outside the clock below
        t0 = time.perf_counter()
        Engine(plan, Pacer(MAX_SPEED)).process()
        times["streamer ecg --speed max (engine data path)"].append(time.perf_counter() - t0)


    times: dict[str, list[float]] = {k: [] for k in (
        "streamer ecg --speed max (engine data path)", "library: stream.feed(record) + flush()",
        "our detector alone", "sleepecg detect_heartbeats")}
    beats = 0
    for _ in range(repeats):
        cli_path()
        t0 = time.perf_counter()
        s = model.stream(rate=rec.fs)
        beats = len(s.feed(rec.signal) + s.flush())
        t1 = time.perf_counter()
        detect_rpeaks(rec.signal, rec.fs)
        t2 = time.perf_counter()
        sleepecg.detect_heartbeats(rec.signal, rec.fs)
        t3 = time.perf_counter()
        times["library: stream.feed(record) + flush()"].append(t1 - t0)
        times["our detector alone"].append(t2 - t1)
        times["sleepecg detect_heartbeats"].append(t3 - t2)
    return {"record_s": len(rec.signal) / rec.fs, "beats": beats, "repeats": repeats,
            "median_s": {k: float(np.median(v)) for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=ROOT / "samples/models/ecg.onnx")
    ap.add_argument("--record", type=Path, default=ROOT / "samples/ecg/106")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
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
    ref = rep["median_s"]["sleepecg detect_heartbeats"]
    print(f"\nwhole replay of {args.record.name} ({rep['record_s'] / 60:.0f} min, {rep['beats']} beats), start-up "
          f"excluded, 1 thread, median of {rep['repeats']} alternated runs:\n")
    print("| | median (s) | vs sleepecg | real-time factor |\n|---|---:|---:|---:|")
    for label, sec in rep["median_s"].items():
        print(f"| {label} | {sec:.3f} | {sec / ref:.1f}x | {sec / rep['record_s']:.1e} |")
    if args.json:
        args.json.write_text(json.dumps({"per_beat": table, "replay": rep,
                                         "machine": platform.processor(), "cores": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
