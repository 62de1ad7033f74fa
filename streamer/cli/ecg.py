"""`streamer ecg`: a recorded ECG replayed as a live stream (or stdin read live), each beat scored."""

from __future__ import annotations

import sys
from typing import Any

import click
import numpy as np

from streamer.cli.common import one_line_errors
from streamer.cli.execute import execute
from streamer.cli.options import RunOptions, collect, run_options
from streamer.core.errors import InputError
from streamer.core.model import load_model
from streamer.core.modelmeta import ECG_TASK
from streamer.ecg.readers import Recording, check_signal, read_recording
from streamer.ecg.report import EcgReport
from streamer.ecg.threshold import parse_method
from streamer.run.engine import RunPlan
from streamer.run.pacing import MAX_SPEED
from streamer.run.sinks import JsonlSink, Sink
from streamer.run.sources import ArraySource, Source, TextLineSource

MODEL_FILE = "ecg.onnx"
PACED_BLOCK_S = 0.1  # s per block when replaying in real time: the dashboard moves smoothly
FAST_BLOCK_S = 60.0  # s per block at --speed max: fewer, larger batches


def open_source(source: str, lead: str | None, fs: float | None, speed: float) -> tuple[Source, Recording | None]:
    """stdin (`-`, live, needs --fs) or a recorded file replayed in blocks sized for the speed."""
    if source == "-":
        check_signal("-", np.array([0.0, 1.0]), fs)  # only the rate can be checked before data arrives
        return TextLineSource(float(fs), sys.stdin.buffer), None  # type: ignore[arg-type]
    recording = read_recording(source, lead=lead, fs=fs)
    block_s = FAST_BLOCK_S if speed == MAX_SPEED else PACED_BLOCK_S * max(1.0, speed / 10)
    return ArraySource(recording.signal, recording.fs, source, block_s, info={"lead": recording.lead}), recording


def plan_ecg(source: str, run: RunOptions, lead: str | None = None, fs: float | None = None,
             threshold: float | None = None, calibrate_s: float = 0.0, calibrate_method: str | None = None) -> RunPlan:
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
    return RunPlan(f"aestream ecg · {source} · model {model.name}", src, stream, sinks,
                   EcgReport(stream, src.rate, recording))


@click.command()
@click.argument("source")
@click.option("--lead", help="Channel name or index (default: the first).")
@click.option("--fs", type=float, help="Sampling rate in Hz, for CSV without a time column and for stdin.")
@click.option("--threshold", type=float, help="Anomaly threshold (default: the model's).")
@click.option("--calibrate", type=float, default=0.0, metavar="SECONDS",
              help="Set the threshold from the first SECONDS of this patient.")
@click.option("--calibrate-method", metavar="METHOD:PARAM",
              help="With --calibrate: mean_std:K (mean + K std) or percentile:Q (a (100-Q)%% false-alarm "
                   "target on normal beats). Default: the model's own method.")
@run_options(MODEL_FILE)
@one_line_errors
def ecg(source: str, lead: str | None, fs: float | None, threshold: float | None, calibrate: float,
        calibrate_method: str | None, **shared: Any) -> None:
    """Replay an ECG record (WFDB, CSV, EDF) or read stdin (`-`) as a live stream; score each beat.

    SOURCE is a WFDB record (`106`, `106.hea`), a .csv/.edf file, or `-` for one sample per line.
    """
    run = collect(MODEL_FILE, shared)
    plan = plan_ecg(source, run, lead=lead, fs=fs, threshold=threshold, calibrate_s=calibrate,
                    calibrate_method=calibrate_method)
    sys.exit(execute(plan, run))


def register(main: click.Group) -> None:
    main.add_command(ecg)



