"""Wiring of one ECG run: source + model + EcgTask + engine + dashboard + sinks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from streamer.ecg.readers import Recording, check_signal, read_recording
from streamer.ecg.task import EcgTask
from streamer.ecg.threshold import parse_method
from streamer.run.engine import Engine, Source
from streamer.core.errors import InputError
from streamer.core.model import Model
from streamer.core.modelmeta import ECG_TASK
from streamer.run.pacing import MAX_SPEED, Pacer, parse_speed
from streamer.ui.summary import finish_run
from streamer.run.sinks import JsonlSink
from streamer.run.sources import ArraySource, TextLineSource

PACED_BLOCK_S = 0.1  # s per block when replaying in real time: the dashboard moves smoothly
FAST_BLOCK_S = 60.0  # s per block at --speed max: fewer, larger batches


def open_source(source: str, lead: str | None, fs: float | None, speed: float) -> tuple[Source, Recording | None]:
    """stdin (`-`, live, needs --fs) or a recorded file replayed in blocks sized for the speed."""
    if source == "-":
        check_signal("-", np.array([0.0, 1.0]), fs)  # only the rate can be checked before data arrives
        return TextLineSource(float(fs), sys.stdin.buffer), None  # type: ignore[arg-type]
    recording = read_recording(source, lead=lead, fs=fs)
    block_s = FAST_BLOCK_S if speed == MAX_SPEED else PACED_BLOCK_S * max(1.0, speed / 10)
    return ArraySource(recording.signal, recording.fs, source, block_s), recording


def run_ecg(source: str, model_path: Path, lead: str | None = None, fs: float | None = None,
            speed: str = "1", threshold: float | None = None, calibrate_s: float = 0.0,
            calibrate_method: str | None = None,
            events: Path | None = None, summary_path: Path | None = None, dashboard: bool = True,
            threads: int = 1) -> int:
    """Runs the stream to its end (or Ctrl-C); returns the process exit code."""
    try:
        pace = parse_speed(speed)
    except ValueError:
        raise InputError("--speed", f"{speed!r} is not a speed (a number > 0, or max)") from None
    try:
        method = parse_method(calibrate_method) if calibrate_method else None
    except ValueError as exc:
        raise InputError("--calibrate-method", str(exc)) from None
    model = Model(model_path, threads=threads, task=ECG_TASK)
    src, recording = open_source(source, lead, fs, pace)
    task = EcgTask(model, src.fs, threshold=threshold, calibrate_s=calibrate_s, reference=recording,
                   calibrate_method=method)
    sink = JsonlSink(events) if events else None
    engine = Engine(src, task, model, Pacer(pace), events=sink)
    title = f"aestream ecg · {source} · model {model.name}"
    return finish_run(engine, task, title, summary_path, dashboard)
