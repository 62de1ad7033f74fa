"""The shipped models outside Python, side by side in one run: size and latency per runtime, and int8 against
float on held-out data.

    python benchmarks/bench_edge.py [--seconds 1.0] [--out benchmarks/results_edge]

1. Every shipped model is exported with `export-edge` (on the shipped samples; music on a real 22.05 kHz
   recording) and timed on its own conformance inputs, 1 thread, at batch 1 and 64 (the batch the engine's
   calls reach: the codec's batch, an image block, many ECG streams), in onnxruntime (Python, the .onnx and
   the .ort file), tract (Python bindings of the Rust runtime), OpenVINO at f32 when it is installed, and
   onnxruntime-node and onnxruntime-web (wasm), both in node. Median and p99 per call.
2. int8 (the project's static QDQ recipe on MatMul/Gemm/Conv/ConvTranspose) against float, calibrated on
   training-side data and measured on data it never saw:
   - ECG models: calibrated on record 106's beats, measured on the 7 other shared MIT-BIH records (decisions
     changed against float, annotated PVCs found; these records trained the float model, so this is int8
     against float, not held-out accuracy: that is the README's leave-records-out table);
   - music: calibrated on a training recording, measured on the held-out test recordings (SNR);
   - images: calibrated on 512 MNIST training digits (noise over the trained sigmas), measured on 1 000 test
     digits at sigma 0.5 (PSNR).
   Size, speed (batch 1 and 64, 1 thread) and quality in one table, and the variant the measurement picks.
Writes results_edge.md and results_edge.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamer.core.model import Model  # noqa: E402
from streamer.edge import conformance, quantise  # noqa: E402
from streamer.edge.bundle import ENGINE_BATCH, ecg_inputs, ecg_quality, export_edge, measured_int8  # noqa: E402
from streamer.edge.runtimes import (  # noqa: E402
    NODE_RUNTIMES,
    node_available,
    node_script,
    openvino_runner,
    tract_runner,
)

MODELS = ROOT / "samples" / "models"
SHIPPED = ("ecg", "ecg5000", "music", "music.encoder", "music.decoder", "denoise", "denoise-dense", "denoise-unet")
RECORDING = Path("/usr/share/games/asc/music/frontiers.mp3")
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
RECORDS = ("100", "102", "104", "105", "116", "121", "123")  # measured on; 106 (shipped) calibrates
BATCHES = (1, ENGINE_BATCH)


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


# --- 1. runtimes -------------------------------------------------------------------------------------------

def runtime_latencies(bundles: dict[str, Path], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for name, folder in bundles.items():
        side = json.loads((folder / f"{name}.edge.json").read_text())
        stages = conformance.stages_by_name(json.loads((folder / f"{name}.conformance.json").read_text()))
        inputs = stages["model_inputs"][0]
        runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "onnxruntime (Python)": quantise.session_runner(folder / f"{name}.onnx"),
            "onnxruntime (Python, .ort)": quantise.session_runner(folder / side["files"]["ort"]["file"]),
            "tract (Python)": tract_runner(folder / f"{name}.onnx")}
        if importlib.util.find_spec("openvino") is not None:  # optional; at f32, which these models need
            runners["OpenVINO f32 (Python)"] = openvino_runner(folder / f"{name}.onnx")
        sizes = {"onnx": side["model"]["bytes"], "ort": side["files"]["ort"]["bytes"]}
        for batch in BATCHES:
            x = np.resize(inputs, (batch, *inputs.shape[1:])).astype(np.float32)
            for runtime, run in runners.items():
                t = quantise.latency_ms(run, x, seconds=seconds)
                rows.append({"model": name, "runtime": runtime, "batch": batch, **t, **sizes})
    if node_available() is None:
        for runtime in NODE_RUNTIMES:
            code, lines, err = node_script("bench.mjs", ["--runtime", runtime, "--batches",
                                                         ",".join(map(str, BATCHES)), "--seconds", str(seconds),
                                                         *map(str, bundles.values())], timeout=3600)
            if code != 0:
                raise SystemExit(f"bench.mjs --runtime {runtime} failed: {err.strip()}")
            label = f"onnxruntime-{runtime} (node)"
            for line in lines:
                name = Path(line["model"]).name.removesuffix(".onnx")
                rows.append({"model": name, "runtime": label, "batch": line["batch"], "median_ms": line["median_ms"],
                             "p99_ms": line["p99_ms"], "calls": line["calls"]})
    else:
        print(f"node runtimes skipped: {node_available()}", file=sys.stderr)
    return rows


# --- 2. int8 against float ---------------------------------------------------------------------------------

def ecg_int8(name: str, out: Path) -> dict[str, Any]:
    from streamer.ecg.readers import read_ecg

    model = Model(MODELS / f"{name}.onnx")
    calib = read_ecg(ROOT / "samples" / "ecg" / "106")
    calibration, _ = ecg_inputs(model, calib.signal, calib.fs)
    held: list[tuple[np.ndarray, np.ndarray, float, Any]] = []
    for record in RECORDS:
        rec = read_ecg(MITDB / record)
        inputs, r = ecg_inputs(model, rec.signal, rec.fs)
        held.append((inputs, r, rec.fs, rec.reference_beats()))
    every = np.concatenate([h[0] for h in held])

    def quality(run: Callable[[np.ndarray], np.ndarray], _: np.ndarray) -> dict[str, Any]:
        parts = [ecg_quality(model, run, inputs, r, 0, fs, ref) for inputs, r, fs, ref in held]  # one stream each
        n_pvc = sum(p["pvc"]["n"] for p in parts)
        found = sum(round(p["pvc"]["sensitivity"] * p["pvc"]["n"]) for p in parts)
        return {"beats": sum(p["beats"] for p in parts), "alarms": sum(p["alarms"] for p in parts),
                "threshold": parts[0]["threshold"], "pvc_found": f"{found}/{n_pvc}",
                "scores": np.concatenate([p["scores"] for p in parts]),
                "decisions": np.concatenate([p["decisions"] for p in parts])}

    return measured_int8(model, out, calibration, every, quality, "record 106's beats",
                         f"records {', '.join(RECORDS)} ({len(every)} beats)")


def music_int8(name: str, out: Path) -> dict[str, Any]:
    from export.recorded_music import decode_track, installed_tracks
    from streamer.audio.codec import companion, run_batched
    from streamer.audio.quality import snr_db
    from streamer.edge.bundle import conformance_frames

    model = Model(MODELS / f"{name}.onnx")
    tracks = installed_tracks()
    train = next(t for t in tracks if t.role == "train")
    test = [t for t in tracks if t.role == "test"]

    def frames_of(track: Any, seconds: float) -> np.ndarray:
        y, _ = decode_track(track.path, seconds)  # mono 8 kHz
        return conformance_frames(y / max(float(np.max(np.abs(y))), 1e-9), 4096)

    calibration, held = frames_of(train, 60.0), np.concatenate([frames_of(t, 30.0) for t in test])
    part = model.meta.get("part")
    encoder = companion(model.path, "encoder") if part == "decoder" else None
    if encoder is not None:
        calibration, codes = run_batched(encoder, calibration), run_batched(encoder, held)
    decoder = companion(model.path, "decoder") if part == "encoder" else None

    def quality(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> dict[str, Any]:
        y = np.concatenate([run(x[i:i + 64]) for i in range(0, len(x), 64)])
        if decoder is not None:
            y = run_batched(decoder, y)
        return {"frames": len(x), "snr_db": round(snr_db(held, y), 3)}

    return measured_int8(model, out, calibration, codes if encoder is not None else held, quality,
                         f"60 s of {train.name}", f"30 s of each of {len(test)} held-out test recordings")


def image_int8(name: str, out: Path) -> dict[str, Any]:
    from export import mnist
    from export.edge_int8 import calibration_digits
    from streamer.edge.conformance import from_model, to_model
    from streamer.images.quality import mean_psnr_db

    model = Model(MODELS / f"{name}.onnx")
    native = mnist.load_native()
    sigma = 0.5
    rng = np.random.default_rng(mnist.noise_seed("test", sigma))
    clean = native.test[:1000]
    noisy = mnist.add_noise(clean, sigma, rng)
    calibration = to_model(model.meta, calibration_digits(model.meta))  # training digits, the trained sigmas
    held = to_model(model.meta, noisy)

    def quality(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> dict[str, Any]:
        y = np.concatenate([run(x[i:i + 64]) for i in range(0, len(x), 64)])
        return {"images": len(x), "psnr_db": round(mean_psnr_db(clean, from_model(model.meta, y, clean.shape[1:])), 3)}

    return measured_int8(model, out, calibration, held, quality, "512 MNIST training digits",
                         "1 000 MNIST test digits (sigma 0.5)")


INT8 = {"ecg": ecg_int8, "ecg5000": ecg_int8, "music": music_int8, "music.encoder": music_int8,
        "music.decoder": music_int8, "denoise": image_int8, "denoise-unet": image_int8}


# --- report ------------------------------------------------------------------------------------------------

def runtime_table(rows: list[dict[str, Any]]) -> list[str]:
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    out = ["| model | size (.onnx / .ort) | " + " | ".join(runtimes) + " |",
           "|---|---:|" + "---:|" * len(runtimes)]
    by = {(r["model"], r["runtime"], r["batch"]): r for r in rows}
    for name in SHIPPED:
        first = by.get((name, runtimes[0], 1))
        if first is None:
            continue
        size = f"{first['onnx'] / 1024:,.0f} / {first['ort'] / 1024:,.0f} KiB"
        for batch in BATCHES:
            cells = []
            for rt in runtimes:
                r = by.get((name, rt, batch))
                cells.append("n/a" if r is None else f"{r['median_ms']:.3g} / {r['p99_ms']:.3g}")
            out.append(f"| {name}, batch {batch} | {size if batch == 1 else ''} | " + " | ".join(cells) + " |")
    return out


def int8_table(results: dict[str, dict[str, Any]]) -> list[str]:
    out = ["| model | size float / int8 | ms batch 1 float / int8 | ms batch 64 float / int8 | quality float | "
           "quality int8 | kept |", "|---|---:|---:|---:|---|---|---|"]
    for name, e in results.items():
        if not e.get("file"):
            out.append(f"| {name} | | | | | | {e.get('recommended')}: {e.get('note')} |")
            continue
        s = e["speed_1_thread"]
        q = e["quality"]
        cells = [f"{e['float_bytes'] / 1024:,.0f} / {e['bytes'] / 1024:,.0f} KiB"]
        for b in BATCHES:
            k = f"batch_{b}"
            cells.append(f"{s['float32'][k]['median_ms']:.3g} / {s['int8'][k]['median_ms']:.3g}")
        cells += [describe(q["float"]), describe(q["int8"]), f"**{e['recommended']}**: {e['why']}"]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def describe(q: dict[str, Any]) -> str:
    if "snr_db" in q:
        return f"SNR {q['snr_db']:.2f} dB"
    if "psnr_db" in q:
        return f"PSNR {q['psnr_db']:.2f} dB"
    text = f"{q['alarms']} alarms in {q['beats']} beats, PVCs found {q.get('pvc_found', '?')}"
    if "changed_decisions" in q:
        text += f"; {q['changed_decisions']} decisions changed"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per (model, runtime, batch)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_edge")
    parser.add_argument("--skip-int8", action="store_true")
    parser.add_argument("--keep-int8", type=Path, metavar="DIR",
                        help="copy each int8 file the measurement recommends into DIR (samples/models ships them)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {}
        for name in SHIPPED:
            folder = Path(tmp) / name
            source = RECORDING if name.startswith("music") and RECORDING.is_file() else None
            export_edge(MODELS / f"{name}.onnx", folder, source, int8=False)
            bundles[name] = folder
        rows = runtime_latencies(bundles, args.seconds)
        int8: dict[str, Any] = {}
        if not args.skip_int8:
            for name in SHIPPED:
                int8[name] = INT8[name](name, Path(tmp)) if name in INT8 else \
                    {"file": None, "recommended": "int8 (as shipped)", "note": "shipped int8 (its metadata)"}
                if args.keep_int8 and int8[name].get("recommended") == "int8":
                    shutil.copyfile(Path(tmp) / int8[name]["file"], args.keep_int8 / int8[name]["file"])
    lines = [f"Machine: {machine()}; 1 thread per runtime; median / p99 ms per call; inputs: each model's "
             "conformance inputs (real data) repeated to the batch.", "", *runtime_table(rows)]
    if int8:
        lines += ["", "int8 against float (held-out data; see the script's docstring):", "", *int8_table(int8)]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "runtimes": rows,
                                                         "int8": int8}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
