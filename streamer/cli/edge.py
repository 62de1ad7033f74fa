"""`streamer export-edge MODEL OUT/` and `streamer verify-edge OUT/`: the models outside Python."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from streamer.cli.common import one_line_errors
from streamer.core.errors import InputError, need


def terminal_console() -> Any:
    """A console that wraps long lines at word boundaries on a terminal, and never into a pipe or file."""
    from rich.console import Console

    console = Console(highlight=False, markup=False)  # file names are text, never markup
    console.soft_wrap = not console.is_terminal
    return console


def _size(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):,.2f} MiB"


@click.command("export-edge")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), metavar="PATH",
              help="Real data for the conformance vectors and the int8 measurement (an ECG record, an audio file, "
                   "a folder of images). Default: the shipped sample of the model's task.")
@click.option("--seconds", type=click.FloatRange(min=1.0, max=3600.0), metavar="S",
              help="Length of the ECG or audio the conformance vectors cover (default 120 s ECG, 3 s audio).")
@click.option("--hop", type=click.IntRange(min=1), help="Audio autoencoder: the hop of the vectors (default: the "
                                                          "frame, no overlap).")
@click.option("--fs", type=click.FloatRange(min=1.0, max=100000.0), metavar="HZ",
              help="The sampling rate of an ECG CSV without a time column.")
@click.option("--no-int8", is_flag=True, help="Skip the int8 variant.")
@click.option("--no-ort", is_flag=True, help="Skip the ORT-format file.")
@one_line_errors
def export_edge(model_path: Path, out: Path, input_path: Path | None, seconds: float | None, hop: int | None,
                fs: float | None, no_int8: bool, no_ort: bool) -> None:
    """Write MODEL's portable bundle into OUT/: the model, its sidecar (NAME.edge.json: metadata and every
    pre- and post-processing step), conformance vectors for every stage on real data, an int8 variant with its
    quality beside float's, and an ORT-format file."""
    from streamer.edge.bundle import export_edge as run

    if not no_int8 or not no_ort:
        need("onnx", "export-edge (the int8 variant, the ORT file)", "edge")
    if out.exists() and not out.is_dir():
        raise InputError(out, "OUT must be a folder")
    side = run(model_path, out, input_path, seconds, hop, int8=not no_int8, ort=not no_ort, fs=fs)
    files = side["files"]
    console = terminal_console()
    m = side["model"]
    console.print(f"{out / m['file']}  {_size(m['bytes'])}")
    console.print(f"{out / Path(m['file']).stem}.edge.json  sidecar v{side['version']}, "
                  f"{len(side['pipeline'])} steps")
    conf = files["conformance"]
    console.print(f"{out / conf['file']}  {_size((out / conf['file']).stat().st_size)}, from {conf['source']['data']}")
    int8: dict[str, Any] = files.get("int8") or {}
    if int8.get("file"):
        console.print(f"{out / int8['file']}  {_size(int8['bytes'])}; recommended: {int8['recommended']} "
                      f"({int8['why']})")
    elif int8:
        console.print(f"int8: {int8.get('note')}")
    if files.get("ort"):
        console.print(f"{out / files['ort']['file']}  {_size(files['ort']['bytes'])}, operators in "
                      f"{files['ort']['required_operators']}")


@click.command("verify-edge")
@click.argument("paths", metavar="BUNDLE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@one_line_errors
def verify_edge(paths: tuple[Path, ...]) -> None:
    """Check bundles written by export-edge: sidecar version, model checksum, metadata against sidecar,
    conformance file against model, and the model stage of the vectors in onnxruntime."""
    from streamer.edge.verify import sidecars, verify

    console = terminal_console()
    failed = 0
    for path in sidecars(list(paths)):
        report = verify(path)
        stage = report["model_stage"]
        verdict = "ok" if stage["ok"] else "FAILED"
        console.print(f"{path}: sidecar v{report['sidecar_version']}, metadata agrees with {report['model']}, "
                      f"model stage {verdict} on {stage['rows']} rows (max |diff| {stage['max_abs_diff']:.2g}, "
                      f"tolerance {stage['tolerance']['abs']:g})")
        failed += not stage["ok"]
    sys.exit(1 if failed else 0)
