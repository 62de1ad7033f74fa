"""Music codecs on held-out real recordings against the fixed transforms at the same budget, at hop 4096 and 2048.

    python benchmarks/bench_music_recordings.py [--model samples/models/music.onnx ...] [--role test]
                                               [--out benchmarks/results_music_recordings]

Tracks: the recorded-music tracks of `--role` (default the held-out `test` tracks; `validation` for
choices) from `export.recorded_music` (Debian packages, licence checked, first 120 s, 8 kHz mono,
peak-normalised). Each `--model` (an ONNX autoencoder; the name in its metadata labels it) and every
baseline of `export.music_eval.baselines` is scored by `export.music_eval.evaluate_tracks`: mean per-frame
SNR (dB, higher is better), log-spectral distance and mel distance (dB, lower is better). Writes OUT.md
and OUT.json, with a sweep over the budget (256 to 2048 numbers per frame) of the first model's trained
filterbank against the adaptive DCT and the MDCT at hop 4096.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from export import music_eval, recorded_music  # noqa: E402
from export.audio_baselines import dct_topk  # noqa: E402
from export.onnx_export import onnx_runner, read_metadata  # noqa: E402

BUDGET_KS = (128, 256, 512, 1024)  # kept values per frame: 256 ... 2048 numbers with their positions


def run(models: list[Path], role: str) -> dict[str, Any]:
    tracks = [t for t in recorded_music.installed_tracks() if t.role == role]
    pieces = [p for p in (recorded_music.load_track(t) for t in tracks) if p is not None]
    codecs: dict[str, music_eval.Codec] = {}
    for path in models:
        codecs[f"{read_metadata(path)['name']} ({path.parent.name}/{path.name})"] = onnx_runner(path, 256)
    codecs.update(music_eval.baselines())
    t0 = time.perf_counter()
    audio = {p.name.split("/", 1)[1]: p.audio for p in pieces}
    figures = music_eval.evaluate_tracks(codecs, audio)
    first = next(iter(codecs))
    return {"role": role, "tracks": [p.name for p in pieces], "codecs": list(codecs),
            "seconds_of_audio": round(sum(len(p.audio) for p in pieces) / music_eval.SAMPLE_RATE_HZ, 1),
            "sources": recorded_music.sources_meta(tracks),
            "figures": figures,
            "smallest_snr_margin_db": {first: music_eval.margins(figures, first, [c for c in codecs if c != first])},
            "budgets": budget_sweep(models[0], audio), "budget_model": models[0].name,
            "seconds": round(time.perf_counter() - t0, 1), "machine": platform.machine()}


def budget_sweep(model: Path, tracks: dict[str, Any], ks: tuple[int, ...] = BUDGET_KS) -> dict[str, Any]:
    """Mean figures over the tracks at hop 4096 for the model's own filterbank, the adaptive DCT and the MDCT,
    each keeping k values (+ k positions: 2k numbers per frame), for every k in `ks`."""
    analysis, synthesis, hop = music_eval.model_filterbank(model)
    out: dict[str, Any] = {}
    for k in ks:
        codecs: dict[str, music_eval.Codec] = {
            "model filterbank": lambda x, k=k: music_eval.filterbank_topk(x, analysis, synthesis, k, hop),
            "dct top-k": lambda x, k=k: dct_topk(x, k),
            "mdct top-k": lambda x, k=k: music_eval.mdct_topk(x, k)}
        out[str(2 * k)] = music_eval.evaluate_tracks(codecs, tracks, hops=(4096,))["4096"]["mean"]
    return out


def markdown(result: dict[str, Any]) -> str:
    first = result["codecs"][0]
    lines = [f"# Music codecs on real recordings ({result['role']} tracks)", "",
             f"{len(result['tracks'])} tracks, {result['seconds_of_audio']} s at 8 kHz (first 120 s of each; "
             "licences in the JSON). Each cell: mean per-frame SNR (dB, higher is better) / log-spectral "
             "distance (dB) / mel distance (dB) (lower is better); every codec holds 1024 numbers per "
             "4096 samples. Made by `python benchmarks/bench_music_recordings.py`; definitions in "
             "`export/music_eval.py`.", "",
             *music_eval.table(result["figures"], result["codecs"]), "",
             f"Smallest per-track SNR margin of {first} over each other codec (dB; negative = below it on "
             "at least one track):", ""]
    for hop, m in result["smallest_snr_margin_db"][first].items():
        lines.append(f"- hop {hop}: " + ", ".join(f"{k} {v:+.2f}" for k, v in m.items()))
    if "budgets" in result:
        lines += ["", f"Numbers per frame (k values + k positions), hop 4096, mean over the tracks; the model's "
                  f"trained filterbank ({result['budget_model']}) run at other k in numpy "
                  "(`export.music_eval.filterbank_topk`, equal to the ONNX model at its own k):", "",
                  "| numbers per frame | " + " | ".join(next(iter(result["budgets"].values()))) + " |",
                  "|---|" + "---|" * len(next(iter(result["budgets"].values())))]
        for n, row in result["budgets"].items():
            lines.append(f"| {n} | " + " | ".join(f"{f['mean_frame_snr_db']:.2f} / {f['lsd_db']:.2f} / "
                                                  f"{f['mel_db']:.2f}" for f in row.values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", default=None)
    parser.add_argument("--role", choices=["test", "validation", "train"], default="test")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_music_recordings")
    args = parser.parse_args(argv)
    result = run(args.model or [ROOT / "samples" / "models" / "music.onnx"], args.role)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
