"""`streamer audio`, `devices`, `encode`, `decode`, `mix` and `train audio`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from streamer.cli_common import check_preset, default_model, need_training_extra, one_line_errors
from streamer.core.errors import InputError

MODEL_FILE = "music.onnx"


@click.command()
@click.option("--file", "file", help="Audio file replayed as if live (WAV, FLAC, OGG, MP3).")
@click.option("--device", help="Input device (index or name, see `streamer devices`; default: the system's).")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help=f"ONNX autoencoder (default: samples/models/{MODEL_FILE}).")
@click.option("--hop", type=int, help="Samples between frame starts: 4096 (default, no overlap) or <= 2048 "
                                      "for windowed overlap-add (no clicks at frame edges).")
@click.option("--speed", default="1", show_default=True, help="File replay speed: 1 = real time, N, or max.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the reconstruction to this WAV file.")
@click.option("--play", is_flag=True, help="Play the reconstruction on the output device.")
@click.option("--play-device", help="Output device for --play (default: the system's).")
@click.option("--seconds", type=float, help="Stop a live stream after this many seconds.")
@click.option("--events", type=click.Path(path_type=Path), help="Write one JSON line per frame (t, SNR).")
@click.option("--summary", type=click.Path(path_type=Path), help="Write the final summary JSON here.")
@click.option("--no-dashboard", is_flag=True, help="Print only the final summary.")
@click.option("--threads", type=int, default=1, show_default=True, help="onnxruntime intra-op threads.")
@one_line_errors
def audio(file: str | None, device: str | None, model_path: Path | None, hop: int | None, speed: str,
          out: Path | None, play: bool, play_device: str | None, seconds: float | None, events: Path | None,
          summary: Path | None, no_dashboard: bool, threads: int) -> None:
    """Live microphone (default) or an audio file through the codec autoencoder; hear or save the result."""
    from streamer.run_audio import run_audio

    if file is not None and device is not None:
        raise InputError("--file/--device", "give one source: a file or an input device")
    code = run_audio(file, device, model_path or default_model(MODEL_FILE), hop=hop, speed=speed, out=out,
                     play=play_device, play_enabled=play, summary_path=summary, events=events,
                     dashboard=not no_dashboard, threads=threads, seconds=seconds)
    sys.exit(code)


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

    codes = encode_file(source, model_path or default_model(MODEL_FILE))
    codes.save(out)
    click.echo(f"wrote {out}: {len(codes.codes)} frames x {codes.codes.shape[1]} codes "
               f"({codes.n_samples / codes.sample_rate_hz:.1f} s at {codes.sample_rate_hz} Hz)")


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

    codes = Codes.load(codes_path)
    audio = decode_codes(codes, model_path or default_model(MODEL_FILE))
    write_wav(out, audio, codes.sample_rate_hz)
    click.echo(f"wrote {out}: {len(audio) / codes.sample_rate_hz:.1f} s at {codes.sample_rate_hz} Hz")


@click.command()
@click.argument("first")
@click.argument("second")
@click.option("--weights", type=float, nargs=2, default=(0.5, 0.5), show_default=True,
              help="Weights of the two pieces' codes.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="WAV file to write.")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help=f"The autoencoder (default: samples/models/{MODEL_FILE}).")
@one_line_errors
def mix(first: str, second: str, weights: tuple[float, float], out: Path, model_path: Path | None) -> None:
    """Mix two pieces in the latent space: decode(w1 * code(first) + w2 * code(second))."""
    from streamer.audio.codec import mix_files
    from streamer.audio.wavsink import write_wav

    if not all(abs(w) < float("inf") for w in weights):
        raise InputError("--weights", "weights must be finite numbers")
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
@one_line_errors
def train_audio_cmd(out: Path, preset: str, data_dir: Path | None, epochs: int | None, seed: int) -> None:
    """Music -> Keras -> ONNX (autoencoder, encoder, decoder, int8), parity-checked, with a model card."""
    need_training_extra()
    from export.audio_models import PRESETS
    from export.train_audio import train_audio

    check_preset(preset, PRESETS)
    result = train_audio(preset, out, epochs=epochs, seed=seed, data_dir=data_dir)
    meta = result["meta"]
    click.echo(f"wrote {out / (str(meta['name']) + '.onnx')}: " +
               ", ".join(f"{k} {v:.4g}" for k, v in meta.get("metrics", {}).items() if isinstance(v, float)))


def register(main: click.Group, train: click.Group) -> None:
    for command in (audio, devices, encode, decode, mix):
        main.add_command(command)
    train.add_command(train_audio_cmd)
