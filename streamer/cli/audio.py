"""`streamer audio`, `devices`, `encode`, `decode`, `mix` and `train audio`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from streamer.audio.framer import check_hop
from streamer.audio.kind import model_framing
from streamer.audio.outputs import ReconstructionSink
from streamer.audio.report import AudioReport
from streamer.cli.common import check_preset, default_model, need_training_extra, one_line_errors, refuse_given
from streamer.cli.execute import execute
from streamer.cli.options import RunOptions, collect, run_options
from streamer.cli.outputs import refuse_overwriting_inputs
from streamer.cli.ranges import Bounded
from streamer.core.errors import InputError, ModelError
from streamer.core.model import load_model
from streamer.core.modelmeta import AUDIO_TASK
from streamer.run.engine import RunPlan
from streamer.run.pacing import MAX_SPEED
from streamer.run.sinks import JsonlSink, Sink
from streamer.run.sources import Source

MODEL_FILE = "music.onnx"
LIVE_BLOCK_S = 0.064  # device blocks: 512 samples at 8 kHz, small against the 512 ms frame
PACED_BLOCK_S = 0.064
FAST_BLOCK_S = 16.384  # --speed max: 32 frames of 4096 per block, run as one batch
NOT_SAVED = "not saved (no --out)"  # the summary's `out` when the reconstruction goes nowhere

MAX_SECONDS = 1e7  # --seconds: about four months
MAX_WEIGHT = 10.0  # mix --weights: codes far outside the training range decode to noise or silence


def open_source(file: str | None, device: str | None, rate: int, speed: float, seconds: float | None
                ) -> tuple[Source, dict[str, Any], str]:
    """(source, the stream options it implies, a description for titles and the summary)."""
    if file is not None:
        from streamer.audio.files import FileSource

        block_s = FAST_BLOCK_S if speed == MAX_SPEED else PACED_BLOCK_S * max(1.0, speed / 4)
        src = FileSource(file, rate, block_s)  # mono at the model's rate; its peak is known, as in training
        return src, {"rate": src.rate, "peak": src.peak}, f"{file} ({src.native_rate:g} Hz)"
    from streamer.audio.devices import DeviceSource

    dev = DeviceSource(device, LIVE_BLOCK_S, seconds=seconds)  # the device's own rate and channels
    return dev, {"rate": dev.rate, "channels": dev.channels}, dev.describe()


def plan_audio(file: str | None, device: str | None, run: RunOptions, hop: int | None = None,
               out: Path | None = None, play: bool = False, play_device: str | None = None,
               seconds: float | None = None) -> RunPlan:
    if file is not None and device is not None:
        raise InputError("--file/--device", "give one source: a file or an input device")
    if run.report is not None:
        from streamer.ui.report_page import need_report_extra

        need_report_extra(spectrograms=True)
    model = load_model(run.model, threads=run.threads, provider=run.provider, task=AUDIO_TASK)
    if model.meta.get("part", "autoencoder") != "autoencoder":
        raise ModelError(run.model, f"this is the model's {model.meta.get('part')} alone; "
                                    "`streamer audio` needs the whole autoencoder")
    rate, frame = model_framing(model)
    if hop is not None:
        try:
            check_hop(frame, hop)
        except ValueError as exc:
            raise InputError("--hop", str(exc)) from None
    src, options, described = open_source(file, device, rate, run.speed, seconds)
    sinks: list[Sink] = []
    info: dict[str, Any] = {}
    try:
        if out is not None:
            from streamer.audio.wavsink import WavSink

            sinks.append(ReconstructionSink(WavSink(out, rate)))
        info["out"] = str(out) if out is not None else NOT_SAVED
        if play:
            from streamer.audio.devices import Player

            player = Player(play_device, rate)
            sinks.append(ReconstructionSink(player))
            info["play"] = player.describe()
        if run.events:
            sinks.append(JsonlSink(run.events))
    except BaseException:
        for sink in sinks:
            sink.close()
        src.close()
        raise
    stream = model.stream(stream_id=src.name, hop=hop, **options)
    info["input"] = described
    report = AudioReport(stream, info)
    recorder = None
    if run.report is not None:
        from streamer.audio.figures import AudioRecorder

        recorder = AudioRecorder(report.fs, report.frame, report.hop)
    return RunPlan(f"aestream audio · {described} · model {model.name}", src, stream, sinks, report,
                   recorder=recorder)


@click.command()
@click.option("--file", "file", help="Audio file replayed as if live (WAV, FLAC, OGG, MP3).")
@click.option("--device", help="Input device (index or name, see `streamer devices`; default: the system's).")
@click.option("--hop", type=int, help="Samples between frame starts: 4096 (default, no overlap) or <= 2048 "
                                      "for windowed overlap-add (no clicks at frame edges).")
@click.option("--out", type=click.Path(path_type=Path), help="Write the reconstruction to this WAV file.")
@click.option("--play", is_flag=True, help="Play the reconstruction on the output device.")
@click.option("--play-device", help="Output device for --play (default: the system's).")
@click.option("--seconds", type=Bounded(0.0, MAX_SECONDS, lo_open=True),
              help="Stop a live stream after this many seconds.")
@run_options(MODEL_FILE, speed_help="file replay speed")
@one_line_errors
def audio(file: str | None, device: str | None, hop: int | None, out: Path | None, play: bool,
          play_device: str | None, seconds: float | None, **shared: Any) -> None:
    """Live microphone (default) or an audio file through the codec autoencoder; hear or save the result."""
    if file is not None:
        refuse_given(["seconds"], "a file (it ends with the file; --seconds stops a live input)")
    else:
        refuse_given(["speed"], "a live input device (it runs at its own pace; --speed replays a --file)")
    if play_device is not None and not play:
        raise InputError("--play-device", "applies only with --play")
    run = collect(MODEL_FILE, shared, inputs=[file], outputs={"--out": out})
    plan = plan_audio(file, device, run, hop=hop, out=out, play=play, play_device=play_device, seconds=seconds)
    if out is None:
        click.echo(f"streamer: note: no --out: the reconstruction is not saved{'' if play else ' (nor played)'}",
                   err=True)
    sys.exit(execute(plan, run))


@click.command()
@one_line_errors
def devices() -> None:
    """List audio input and output devices with their native rates."""
    from streamer.audio.devices import print_devices

    print_devices()


@click.command()
@click.argument("source")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Codes file (.npz).")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help=f"The autoencoder or its encoder (default: samples/models/{MODEL_FILE}).")
@one_line_errors
def encode(source: str, out: Path, model_path: Path | None) -> None:
    """Audio file -> latent codes (1024 numbers per 4096 samples at 8 kHz)."""
    from streamer.audio.codec import encode_file

    refuse_overwriting_inputs({"--out": out}, [source, model_path])
    codes = encode_file(source, model_path or default_model(MODEL_FILE))
    size = codes.save(out)
    pcm_bytes = 2 * codes.n_samples  # the same audio as 16-bit mono PCM at the model's rate
    click.echo(f"wrote {out}: {len(codes.codes)} frames x {codes.codes.shape[1]} codes "
               f"({codes.n_samples / codes.sample_rate_hz:.1f} s at {codes.sample_rate_hz} Hz); {size:,} bytes, "
               f"{pcm_bytes / size:.1f}x smaller than 16-bit PCM ({pcm_bytes:,} bytes)",
               err=_is_stdout(out))  # codes written to stdout are not mixed with this line


def _is_stdout(path: Path) -> bool:
    """Whether `path` is where standard output goes (`/dev/stdout`, or the file stdout is redirected to)."""
    try:
        a, b = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@click.command()
@click.argument("codes_path", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="WAV file to write.")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help=f"The autoencoder or its decoder (default: samples/models/{MODEL_FILE}).")
@one_line_errors
def decode(codes_path: Path, out: Path, model_path: Path | None) -> None:
    """Latent codes (.npz from `streamer encode`) -> WAV."""
    from streamer.audio.codec import Codes, decode_codes
    from streamer.audio.wavsink import write_wav

    refuse_overwriting_inputs({"--out": out}, [codes_path, model_path])
    codes = Codes.load(codes_path)
    audio = decode_codes(codes, model_path or default_model(MODEL_FILE))
    write_wav(out, audio, codes.sample_rate_hz)
    click.echo(f"wrote {out}: {len(audio) / codes.sample_rate_hz:.1f} s at {codes.sample_rate_hz} Hz")


@click.command()
@click.argument("first")
@click.argument("second")
@click.option("--weights", type=Bounded(-MAX_WEIGHT, MAX_WEIGHT), nargs=2, default=(0.5, 0.5), show_default=True,
              help="Weights of the two pieces' codes.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="WAV file to write.")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help=f"The autoencoder (default: samples/models/{MODEL_FILE}).")
@one_line_errors
def mix(first: str, second: str, weights: tuple[float, float], out: Path, model_path: Path | None) -> None:
    """Mix two pieces in the latent space: decode(w1 * code(first) + w2 * code(second))."""
    from streamer.audio.codec import mix_files
    from streamer.audio.wavsink import write_wav

    refuse_overwriting_inputs({"--out": out}, [first, second, model_path])
    audio, rate = mix_files(first, second, weights, model_path or default_model(MODEL_FILE))
    write_wav(out, audio, rate)
    click.echo(f"wrote {out}: {len(audio) / rate:.1f} s at {rate} Hz (the shorter piece's length)")


@click.command("audio")
@click.option("--out", type=click.Path(path_type=Path), default=Path("models"), show_default=True)
@click.option("--preset", default="default", show_default=True, help="default (ships) or lecture (33.6M params).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Train on your own audio files in this folder instead of the music21 corpus.")
@click.option("--epochs", type=int, help="Override the preset's epochs (quick runs).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--verbose", is_flag=True, help="Show TensorFlow's own log lines and warnings.")
@one_line_errors
def train_audio_cmd(out: Path, preset: str, data_dir: Path | None, epochs: int | None, seed: int,
                    verbose: bool) -> None:
    """Music -> Keras -> ONNX (autoencoder, encoder, decoder, int8), parity-checked, with a model card.

    Shows each phase and epoch, and ends with the held-out figures written into the model card."""
    need_training_extra(verbose)
    from export.audio_models import PRESETS
    from export.heldout import print_result
    from export.progress import TrainingProgress
    from export.train_audio import companion_paths, train_audio

    check_preset(preset, PRESETS)
    with TrainingProgress() as progress:
        result = train_audio(preset, out, epochs=epochs, seed=seed, data_dir=data_dir, progress=progress)
    paths = result["paths"]
    print_result(progress.console, result["meta"], paths["autoencoder"], paths["card"], companion_paths(paths))
