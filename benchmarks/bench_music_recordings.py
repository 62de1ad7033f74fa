"""Music codecs on held-out real recordings against the fixed transforms at the same budget, at hop 4096 and 2048.

    python benchmarks/bench_music_recordings.py [--model samples/models/music.onnx ...] [--role test]
                                               [--out benchmarks/results_music_recordings]

Tracks: the recorded-music tracks of `--role` (default the held-out `test` tracks; `validation` for
choices) from `export.recorded_music` (Debian packages, licence checked, first 120 s, 8 kHz mono,
peak-normalised). Each `--model` (an ONNX autoencoder; the name in its metadata labels it) and every
baseline of `export.music_eval.baselines` is scored by `export.music_eval.evaluate_tracks`: mean per-frame
SNR (dB, higher is better), log-spectral distance and mel distance (dB, lower is better). Writes OUT.md
and OUT.json.
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
from export.onnx_export import onnx_runner, read_metadata  # noqa: E402


def run(models: list[Path], role: str) -> dict[str, Any]:
    tracks = [t for t in recorded_music.installed_tracks() if t.role == role]
    pieces = [p for p in (recorded_music.load_track(t) for t in tracks) if p is not None]
    codecs: dict[str, music_eval.Codec] = {}
    for path in models:
        codecs[f"{read_metadata(path)['name']} ({path.name})"] = onnx_runner(path, 256)
    codecs.update(music_eval.baselines())
    t0 = time.perf_counter()
    figures = music_eval.evaluate_tracks(codecs, {p.name.split("/", 1)[1]: p.audio for p in pieces})
    first = next(iter(codecs))
    return {"role": role, "tracks": [p.name for p in pieces], "codecs": list(codecs),
            "seconds_of_audio": round(sum(len(p.audio) for p in pieces) / music_eval.SAMPLE_RATE_HZ, 1),
            "sources": recorded_music.sources_meta(tracks),
            "figures": figures,
            "smallest_snr_margin_db": {first: music_eval.margins(figures, first, [c for c in codecs if c != first])},
            "seconds": round(time.perf_counter() - t0, 1), "machine": platform.machine()}


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
