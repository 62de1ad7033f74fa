"""Per-frame latency of the music autoencoders at batch 1: the engine end to end and bare onnxruntime
(1 and 2 threads) vs Keras `predict` vs `tf.function`, for the shipped model and the lecture model (fp32
and int8).

    python benchmarks/bench_audio.py [--lecture /work/cache/models/music-lecture.onnx] [--weights-dir DIR]
                                     [-n 300] [--library] [--json out.json]

The Keras side is the preset's architecture with the trained weights when `NAME.weights.h5` is found
next to the ONNX file or in `--weights-dir` (saved by `python -m export.train_audio --keras-weights`),
otherwise freshly initialised weights of the same shapes (the timing does not depend on the values).
Inputs are frames of the shipped held-out clip. Rows are built by `rows_for`, so another column (e.g. the
engine end to end) is one more entry there.

Every onnxruntime session is made by `streamer.core.session.create_session` (intra-op threads as labelled,
inter-op 1, CPU): "onnxruntime, N threads" is `create_session(model, threads=N).run(...)` on the frame.

"engine end to end, N threads" is one step of the run path `streamer audio --file` takes, per 4096-sample
block: `Engine._step` of a `streamer.run.engine.Engine` over a `RunPlan` (an `ArraySource` at the model's
rate, a `Stream` with hop 4096 and the file's known peak, an `AudioReport`, one `ReconstructionSink` to a
writer that keeps nothing, unpaced). One step = the block (float32, as `FileSource` gives it) fed to the
stream as a `Chunk` (shape, rate, continuity and finiteness checks -> resampler, a pass-through at the
model's rate -> framing -> peak normalisation -> model, batch 1 -> de-normalisation -> overlap-add -> frame
SNR -> `AudioFrameEvent`), then the report's bookkeeping (input level; output SNR energies, clipping, edge
figures of output and input, trace), the event handed to the sink, and the engine's metrics. The same
frame is fed again each step (with a continuing stream position), so it times the same input as the
onnxruntime rows. `--library` adds "library stream.feed, N threads": `Stream.feed(frame)` alone (the
library call, without report, sink or metrics).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
from timing import timed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FRAME_S = 4096 / 8000  # seconds of audio per frame
BASE = "onnxruntime, 1 thread"
ENGINE_GOAL = 1.15  # engine p50 at most this times bare onnxruntime (same thread count)


def clip_frame() -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(str(ROOT / "samples/audio/bach.wav"), dtype="float32")
    return (audio[4096 * 10: 4096 * 11] / np.max(np.abs(audio)))[None, :].astype(np.float32)


def ort_session(path: Path, threads: int) -> Any:
    from streamer.core.session import create_session

    return create_session(path, threads=threads, provider="cpu")


def keras_model(path: Path, preset: str, weights_dir: Path | None) -> tuple[Any, str]:
    from export.audio_models import build, get_preset

    _, _, model = build(get_preset(preset))
    weights = (weights_dir or path.parent) / path.with_suffix(".weights.h5").name
    if weights.is_file():
        model.load_weights(str(weights))
        return model, "trained weights"
    return model, "untrained weights (same shapes)"


class NullWriter:
    """A sample writer that keeps nothing (where `streamer audio --out` has its WAV writer)."""

    def __init__(self) -> None:
        self.samples = 0

    def write(self, samples: np.ndarray) -> None:
        self.samples += len(samples)

    def drops(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


def engine_step(path: Path, x: np.ndarray, threads: int) -> Callable[[], Any]:
    """One frame through the whole run path of `streamer audio --file` (see the module docstring): a block of
    4096 samples arrives -> stream (checks, framing, normalisation, model, de-normalisation, overlap-add,
    frame SNR) -> report (level, SNR, edge figures, trace) -> sink -> metrics (hop 4096: one frame per
    block, batch 1)."""
    from streamer.audio.kind import model_framing
    from streamer.audio.outputs import ReconstructionSink
    from streamer.audio.report import AudioReport
    from streamer.core.model import load_model
    from streamer.core.modelmeta import AUDIO_TASK
    from streamer.run.engine import Engine, RunPlan
    from streamer.run.pacing import MAX_SPEED, Pacer
    from streamer.run.sources import ArraySource, Block

    model = load_model(path, threads=threads, provider="cpu", task=AUDIO_TASK)
    rate, _ = model_framing(model)
    frame = np.ascontiguousarray(x[0], dtype=np.float32)  # what FileSource's blocks hold
    source = ArraySource(frame, rate, "bench", len(frame) / rate)  # its rate and timing; blocks are stepped here
    stream = model.stream(stream_id=source.name, rate=source.rate, hop=len(frame), peak=1.0)  # x is peak-normalised
    writer = NullWriter()
    report = AudioReport(stream, {"input": "bench"})
    engine = Engine(RunPlan("bench", source, stream, [ReconstructionSink(writer)], report), Pacer(MAX_SPEED))
    position = [0]

    def step() -> None:
        engine._step(Block(frame, position[0]))
        position[0] += len(frame)

    step()  # one frame in, one frame out, handed to the sink and counted
    if writer.samples != len(frame) or len(report.frame_snrs) != 1 or engine.metrics.items_out != 1:
        raise RuntimeError(f"engine step of {path.name}: expected one {len(frame)}-sample frame out, got "
                           f"{writer.samples} samples, {len(report.frame_snrs)} frames")
    return step


def library_step(path: Path, x: np.ndarray, threads: int) -> Callable[[], Any]:
    """One frame through the library call alone: `Stream.feed(frame)` -> [AudioFrameEvent]."""
    from streamer.audio.kind import model_framing
    from streamer.core.model import load_model
    from streamer.core.modelmeta import AUDIO_TASK

    model = load_model(path, threads=threads, provider="cpu", task=AUDIO_TASK)
    rate, _ = model_framing(model)
    frame = np.ascontiguousarray(x[0], dtype=np.float32)
    stream = model.stream(rate=rate, hop=len(frame), peak=1.0)
    events = stream.feed(frame)
    if len(events) != 1 or len(events[0].samples) != len(frame):
        raise RuntimeError(f"stream.feed of {path.name}: expected one {len(frame)}-sample frame out")
    return lambda: stream.feed(frame)


def rows_for(path: Path, preset: str | None, x: np.ndarray, weights_dir: Path | None = None,
             library: bool = False) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """Label -> one batch-1 call. Keras rows only for fp32 models with a known preset."""
    rows: dict[str, Callable[[], Any]] = {}
    info: dict[str, Any] = {}
    for threads in (1, 2):
        threads_label = f"{threads} thread{'s' if threads > 1 else ''}"
        rows[f"engine end to end, {threads_label}"] = engine_step(path, x, threads)
        if library:
            rows[f"library stream.feed, {threads_label}"] = library_step(path, x, threads)
        sess = ort_session(path, threads)
        name = sess.get_inputs()[0].name
        rows[f"onnxruntime, {threads_label}"] = (
            lambda s=sess, n=name: s.run(None, {n: x}))
    if preset is not None:
        import tensorflow as tf

        model, info["keras_weights"] = keras_model(path, preset, weights_dir)
        ref = ort_session(path, 1)
        info["keras_onnx_max_abs_diff"] = float(np.max(np.abs(
            np.asarray(model(x)) - ref.run(None, {ref.get_inputs()[0].name: x})[0])))
        fn = tf.function(lambda t: model(t, training=False))
        xt = tf.constant(x)
        rows["Keras predict"] = lambda: model.predict(x, verbose=0)
        rows["tf.function"] = lambda: fn(xt)
    return rows, info


def bench(path: Path, preset: str | None, n: int, weights_dir: Path | None = None,
          library: bool = False) -> dict[str, Any]:
    x = clip_frame()
    rows, info = rows_for(path, preset, x, weights_dir, library)
    table = {}
    for label, fn in rows.items():
        t = timed(fn, max(n // 10, 30) if label == "Keras predict" else n)
        table[label] = {"median_ms": float(np.median(t)) * 1e3, "p99_ms": float(np.percentile(t, 99)) * 1e3}
    base = table[BASE]["median_ms"]
    for row in table.values():
        row["ratio"] = row["median_ms"] / base
        row["realtime_factor"] = row["median_ms"] / 1e3 / FRAME_S
    return {"model": path.name, "size_mb": path.stat().st_size / 1e6, "rows": table, **info}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=ROOT / "samples/models/music.onnx")
    ap.add_argument("--lecture", type=Path, default=Path("/work/cache/models/music-lecture.onnx"))
    ap.add_argument("--weights-dir", type=Path, default=None,
                    help="where NAME.weights.h5 are (default: next to each model)")
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--library", action="store_true",
                    help="add rows for the library call Stream.feed alone (no report, sink or metrics)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    models: list[tuple[Path, str | None]] = [(args.model, "default"),
                                             (args.model.with_suffix(".int8.onnx"), None),
                                             (args.lecture, "lecture"), (args.lecture.with_suffix(".int8.onnx"), None)]
    results = [bench(p, preset, args.n, args.weights_dir, args.library) for p, preset in models if p.is_file()]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; batch 1; one 4096-sample "
          f"frame (512 ms) of samples/audio/bach.wav; n={args.n}; TensorFlow at its default thread count\n")
    for r in results:
        print(f"### {r['model']} ({r['size_mb']:.2f} MB)\n")
        print("| per frame | median (ms) | p99 (ms) | vs onnxruntime 1 thread | real-time factor |")
        print("|---|---|---|---|---|")
        for label, row in r["rows"].items():
            print(f"| {label} | {row['median_ms']:.3f} | {row['p99_ms']:.3f} | {row['ratio']:.2f}x | "
                  f"{row['realtime_factor']:.2e} |")
        if "keras_weights" in r:
            print(f"\n(Keras: {r['keras_weights']}; max abs difference to onnxruntime "
                  f"{r['keras_onnx_max_abs_diff']:.1e})")
        print()
    if args.json:
        args.json.write_text(json.dumps({"results": results, "machine": platform.processor() or platform.machine(),
                                         "cores": os.cpu_count(), "batch": 1, "n": args.n}, indent=2))


if __name__ == "__main__":
    main()
