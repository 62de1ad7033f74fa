"""How far each runtime lands from the conformance vectors: the figures the README's embedding section quotes.

    python benchmarks/bench_edge_parity.py [--out benchmarks/results_edge_parity]

Every shipped model is exported (`export-edge`, music on a real 22.05 kHz recording) and its vectors' model
inputs run in tract (`denoise-dense.onnx` through `runtimes.static_graph`, which the table says), and, when
OpenVINO is installed, in OpenVINO at INFERENCE_PRECISION_HINT=f32 and at its default precision. Each cell is
the largest |difference| from the reference outputs (onnxruntime, Python); the tolerance is 1e-5. The node
runtimes' differences are printed by `node streamer/edge/js/conformance.mjs --runtime node|web DIR...`.
Also: how far two other resamplers land from the resample stage's reference (soxr HQ), on 10 s of the
recording. Writes results_edge_parity.{md,json}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamer.edge import conformance  # noqa: E402
from streamer.edge.bundle import export_edge  # noqa: E402
from streamer.edge.runtimes import openvino_runner, tract_runner  # noqa: E402

MODELS = ROOT / "samples" / "models"
SHIPPED = ("ecg", "ecg5000", "music", "music.encoder", "music.decoder", "denoise", "denoise-dense", "denoise-unet")
RECORDING = Path("/usr/share/games/asc/music/frontiers.mp3")


def runtime_differences(folder: Path, name: str) -> dict[str, Any]:
    stages = conformance.stages_by_name(json.loads((folder / f"{name}.conformance.json").read_text()))
    inputs, (want, _) = stages["model_inputs"][0], stages["model_outputs"]
    model = folder / f"{name}.onnx"
    tract = tract_runner(model)
    row: dict[str, Any] = {"tract": float(np.max(np.abs(tract(inputs) - want))),
                           "tract_needs_static_graph": bool(tract.prepared)}  # type: ignore[attr-defined]
    if importlib.util.find_spec("openvino") is not None:
        for label, precision in (("openvino_f32", "f32"), ("openvino_default", None)):
            row[label] = float(np.max(np.abs(openvino_runner(model, precision)(inputs) - want)))
    return row


def resampler_differences(seconds: float = 10.0) -> dict[str, float]:
    import soundfile as sf
    import soxr
    from scipy.signal import resample_poly

    x, rate = sf.read(str(RECORDING), dtype="float32", always_2d=True, frames=int(22050 * seconds))
    mono = x.mean(axis=1).astype(np.float32)
    reference = soxr.resample(mono, rate, 8000, quality="HQ")
    vhq = soxr.resample(mono, rate, 8000, quality="VHQ")
    poly = resample_poly(mono, 8000, rate).astype(np.float32)
    n = min(len(reference), len(poly))
    return {"soxr_vhq": float(np.max(np.abs(vhq - reference))),
            "scipy_resample_poly": float(np.max(np.abs(poly[:n] - reference[:n])))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_edge_parity")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SHIPPED:
            folder = Path(tmp) / name
            source = RECORDING if name.startswith("music") and RECORDING.is_file() else None
            export_edge(MODELS / f"{name}.onnx", folder, source, int8=False, ort=False)
            rows[name] = runtime_differences(folder, name)
    columns = [c for c in ("tract", "openvino_f32", "openvino_default") if c in rows[SHIPPED[0]]]
    lines = ["Largest |difference| from the reference outputs (onnxruntime, Python); tolerance 1e-5.", "",
             "| model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in rows.items():
        note = " (static graph)" if row["tract_needs_static_graph"] else ""
        cells = [f"{row[c]:.2g}" + (note if c == "tract" else "") for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    resampling = resampler_differences() if RECORDING.is_file() else {}
    if resampling:
        lines += ["", "Resampling 10 s of the 22.05 kHz recording to 8 kHz, largest |difference| from soxr HQ: "
                  + ", ".join(f"{k} {v:.2g}" for k, v in resampling.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"runtimes": rows, "resampling": resampling}, indent=1)
                                             + "\n")


if __name__ == "__main__":
    main()
