"""The `streamer` command line. User errors end as one line on stderr and a non-zero exit."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from streamer.cli.common import one_line_errors
from streamer.cli.entry import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated


class LazyGroup(click.Group):
    """A command group whose commands live in other modules, imported only when one is run (or listed in
    --help): `streamer audio` never pays for the ECG stack's imports, nor the reverse."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Usage errors (a bad option value, an unknown option, a missing argument) as one line too, like every
        other error: `streamer: error: Invalid value for '--fs': ... (see streamer ecg --help)`, exit 2."""
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            click.echo(f"streamer: error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"streamer: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort as exc:  # Ctrl-C, SIGTERM or end of input at a prompt, outside any run
            if isinstance(exc.__context__, Terminated):
                click.echo("streamer: terminated", err=True)
                sys.exit(EXIT_TERMINATED)
            click.echo("streamer: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)


STREAM_COMMANDS = {
    "ecg": "streamer.cli.ecg:ecg",
    "audio": "streamer.cli.audio:audio", "devices": "streamer.cli.audio:devices",
    "encode": "streamer.cli.audio:encode", "decode": "streamer.cli.audio:decode", "mix": "streamer.cli.audio:mix",
    "images": "streamer.cli.images:images", "download": "streamer.cli.download:download",
    "serve": "streamer.cli.serve:serve", "publish": "streamer.cli.serve:publish", "watch": "streamer.cli.serve:watch",
    "export-edge": "streamer.cli.edge:export_edge", "verify-edge": "streamer.cli.edge:verify_edge",
}
TRAIN_COMMANDS = {
    "ecg": "streamer.cli.ecg:train_ecg_cmd",
    "audio": "streamer.cli.audio:train_audio_cmd",
    "images": "streamer.cli.images:train_images_cmd",
}


@click.group(cls=LazyGroup, lazy=STREAM_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aestream")
def main() -> None:
    """aestream: real-time stream processing with autoencoders on onnxruntime."""


@main.command()
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option("--full", is_flag=True, help="Every key the model carries (nested values indented).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw metadata as JSON.")
@one_line_errors
def inspect(model_path: Path, full: bool, as_json: bool) -> None:
    """What a model carries: task, I/O, framing, normalisation, threshold, data, key held-out figures."""
    from streamer.cli.inspect import describe_model

    sys.exit(describe_model(model_path, as_json, full=full))


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True,
              help="Folder for every output (events, summaries, reconstructed audio, denoised images).")
@click.option("--fast", is_flag=True, help="Replay everything at --speed max.")
@click.option("--no-dashboard", is_flag=True, help="Print only the summaries.")
@click.option("--report", type=click.Path(path_type=Path), metavar="DIR",
              help="Write each stream's figures and HTML page to DIR/ecg, DIR/audio, DIR/images, linked from "
                   "DIR/index.html (needs the 'report' extra).")
@one_line_errors
def demo(out: Path, fast: bool, no_dashboard: bool, report: Path | None) -> None:
    """The three streams on the shipped samples (ECG record, music clip, noisy digits), about a minute."""
    from streamer.cli.demo import run_demo

    sys.exit(run_demo(out, dashboard=not no_dashboard, fast=fast, report=report))


@main.group(cls=LazyGroup, lazy=TRAIN_COMMANDS)
def train() -> None:
    """Train a model and export it to ONNX (needs the [train] extra: TensorFlow)."""


if __name__ == "__main__":
    main()
