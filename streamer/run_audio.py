"""Wiring of one audio run: file or device source + model + AudioTask + engine + WAV/speakers + dashboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamer.audio.framer import check_hop
from streamer.audio.task import AudioTask, OutputSink, model_framing
from streamer.run.engine import Engine, Source
from streamer.core.errors import InputError, ModelError
from streamer.core.model import Model
from streamer.core.modelmeta import AUDIO_TASK
from streamer.run.pacing import MAX_SPEED, Pacer, parse_speed
from streamer.ui.summary import finish_run
from streamer.run.sinks import JsonlSink

LIVE_BLOCK_S = 0.064  # device blocks: 512 samples at 8 kHz, small against the 512 ms frame
PACED_BLOCK_S = 0.064
FAST_BLOCK_S = 16.384  # --speed max: 32 frames of 4096 per block, run as one batch


def open_autoencoder(path: Path, threads: int) -> Model:
    model = Model(path, threads=threads, task=AUDIO_TASK)
    part = model.meta.get("part", "autoencoder")
    if part != "autoencoder":
        raise ModelError(path, f"this is the model's {part} alone; `streamer audio` needs the whole autoencoder")
    return model


def parse_hop(hop: int | None, frame: int) -> int:
    hop = hop or frame
    try:
        check_hop(frame, hop)
    except ValueError as exc:
        raise InputError("--hop", str(exc)) from None
    return hop


def open_source(file: str | None, device: str | None, fs: int, speed: float,
                seconds: float | None) -> tuple[Source, float | None, str]:
    """(source, the file's peak or None when live, a description for the title)."""
    if file is not None:
        from streamer.audio.files import FileSource

        block_s = FAST_BLOCK_S if speed == MAX_SPEED else PACED_BLOCK_S * max(1.0, speed / 4)
        src = FileSource(file, fs, block_s)
        peak = float(np.max(np.abs(src.signal))) if len(src.signal) else 0.0
        return src, peak, f"{file} ({src.native_rate:g} Hz)"
    from streamer.audio.devices import DeviceSource

    dev = DeviceSource(device, fs, LIVE_BLOCK_S, seconds=seconds)
    info = dev.device_info()
    return dev, None, f"{info.get('name')} ({info.get('rate')} Hz, {info.get('channels')} ch)"


def run_audio(file: str | None, device: str | None, model_path: Path, hop: int | None = None,
              speed: str = "1", out: Path | None = None, play: str | None = None, play_enabled: bool = False,
              summary_path: Path | None = None, events: Path | None = None, dashboard: bool = True,
              threads: int = 1, seconds: float | None = None) -> int:
    """Runs the stream to its end (or Ctrl-C); returns the process exit code."""
    try:
        pace = parse_speed(speed)
    except ValueError:
        raise InputError("--speed", f"{speed!r} is not a speed (a number > 0, or max)") from None
    model = open_autoencoder(model_path, threads)
    fs, frame = model_framing(model)
    hop = parse_hop(hop, frame)
    src, peak, described = open_source(file, device, fs, pace, seconds)
    sinks: list[OutputSink] = []
    drops: list[Callable[[], dict[str, int]]] = []
    closers: list[Callable[[], Any]] = []
    info: dict[str, Any] = {"input": described}
    device_info = getattr(src, "device_info", None)
    if device_info is not None:
        info["device"] = device_info()
    try:
        if out is not None:
            from streamer.audio.wavsink import WavSink

            wav = WavSink(out, fs)
            sinks.append(wav.write)
            closers.append(wav.close)
            info["out"] = str(out)
        if play_enabled:
            from streamer.audio.devices import Player

            player = Player(play, fs)
            sinks.append(player.write)
            closers.append(player.close)
            drops.append(player.drops)
            info["play"] = player.describe()
        task = AudioTask(model, hop=hop, known_peak=peak, outputs=sinks, output_drops=drops, info=info)
        events_sink = JsonlSink(events) if events else None
        engine = Engine(src, task, model, Pacer(pace if file is not None else MAX_SPEED), events=events_sink)
        title = f"aestream audio · {described} · model {model.name}"
        return finish_run(engine, task, title, summary_path, dashboard, on_end=lambda: _close_all(closers))
    finally:
        _close_all(closers)


def _close_all(closers: list[Callable[[], Any]]) -> None:
    while closers:
        closers.pop()()
