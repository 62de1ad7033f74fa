"""`streamer demo`: the three streams on the shipped samples, one after the other, unattended (~1 minute).

Each run is the same as its own command (dashboard on a terminal, summary otherwise); the outputs land
in one folder and a last table puts the headline figures side by side. With `--report DIR` each stream's
figures and page go to its own sub-folder, and `DIR/index.html` links the three.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streamer.cli.common import SAMPLES
from streamer.cli.execute import execute
from streamer.cli.options import RunOptions
from streamer.core.errors import StreamerError
from streamer.run.pacing import MAX_SPEED, parse_speed

ECG_SPEED = "100"  # 30 minutes of ECG in about 18 s
AUDIO_SPEED = "2"  # the 30 s clip in 15 s, still paced like a live stream


def sample(path: str) -> Path:
    for base in (Path("samples"), SAMPLES):
        if (base / path).exists() or (base / path).with_suffix(".hea").exists():  # a WFDB record has no file
            return base / path
    raise StreamerError(f"samples/{path} not found: run the demo from a checkout of aestream")


STREAMS = {"ecg": "ECG: MIT-BIH record 106", "audio": "audio: a Bach chorale through the music codec",
           "images": "images: noisy MNIST test digits"}


def run_demo(out: Path, dashboard: bool = True, fast: bool = False, report: Path | None = None) -> int:
    from streamer.cli.audio import plan_audio
    from streamer.cli.ecg import plan_ecg
    from streamer.cli.images import plan_images

    if report is not None:
        from streamer.ui.report_page import need_report_extra, prepare

        need_report_extra(spectrograms=True)
        prepare(report)
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    codes = []

    def options(model: str, speed: str, stream: str, events: str, threads: int = 1) -> RunOptions:
        return RunOptions(sample(f"models/{model}"), MAX_SPEED if fast else parse_speed(speed), out / events,
                          out / f"{stream}_summary.json", dashboard, threads, "cpu",
                          None if report is None else report / stream)

    console.rule("1/3 ECG: MIT-BIH record 106 replayed, beats scored by ecg.onnx")
    run = options("ecg.onnx", ECG_SPEED, "ecg", "ecg_beats.jsonl")
    codes.append(execute(plan_ecg(str(sample("ecg/106")), run), run))
    console.rule("2/3 audio: a held-out Bach chorale through the music codec, overlap-add")
    run = options("music.onnx", AUDIO_SPEED, "audio", "audio_frames.jsonl")
    codes.append(execute(plan_audio(str(sample("audio/bach.wav")), None, run, hop=2048,
                                    out=out / "bach_reconstructed.wav"), run))
    console.rule("3/3 images: noisy MNIST test digits through the denoiser")
    run = options("denoise.onnx", "max", "images", "images.jsonl", threads=2)
    codes.append(execute(plan_images(str(sample("images")), run, out=out / "denoised"), run))
    console.print(headline(out))
    if report is not None:
        from streamer.ui.report_page import INDEX, write_index

        pages = [(title, report / stream / INDEX) for stream, title in STREAMS.items()
                 if (report / stream / INDEX).is_file()]
        console.print(f"report: {write_index(report, 'aestream demo', pages)}")
    return next((c for c in codes if c != 0), 0)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _num(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def headline(out: Path) -> Table:
    ecg, audio, images = (_load(out / f"{k}_summary.json") for k in ("ecg", "audio", "images"))
    table = Table(title=f"aestream demo: outputs in {out}/", title_justify="left")
    for col in ("stream", "items", "quality", "latency p50 / p99 (ms)"):
        table.add_column(col)

    def lat(s: dict[str, Any]) -> str:
        ms = s.get("latency_ms", {})
        return f"{ms.get('p50', float('nan')):.3g} / {ms.get('p99', float('nan')):.3g}" if ms else "-"

    anomaly = ecg.get("anomaly") or {}
    table.add_row("ECG", f"{ecg.get('beats', '-')} beats, {ecg.get('anomalies', '-')} anomalies",
                  f"PVC AUC {anomaly.get('auc', float('nan')):.3f}" if anomaly else "-", lat(ecg))
    table.add_row("audio", f"{audio.get('frames', '-')} frames",
                  f"SNR {_num(audio.get('snr_db'))} dB, edge ratio {_num(audio.get('edge_jump_ratio'), 2)} "
                  f"(input {_num(audio.get('edge_jump_ratio_input'), 2)})", lat(audio))
    table.add_row("images", f"{images.get('images', '-')} images",
                  f"PSNR {_num(images.get('psnr_db'))} dB (noisy input {_num(images.get('psnr_noisy_db'))}), "
                  f"SSIM {_num(images.get('ssim'), 3)}", lat(images))
    return table
