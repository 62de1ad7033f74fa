"""`streamer download`: PhysioNet records into the local cache, for `streamer ecg` and `train ecg --records`."""

from __future__ import annotations

from pathlib import Path

import click

from streamer.cli.common import one_line_errors


@click.command()
@click.argument("records", nargs=-1, required=True, metavar="DATABASE/RECORD...")
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder to keep them in (default: ~/.cache/aestream/physionet, or $AESTREAM_CACHE/physionet).")
@one_line_errors
def download(records: tuple[str, ...], out: Path | None) -> None:
    """Fetch PhysioNet records once (e.g. mitdb/208: header, signal, annotations); print each local path.

    A record already there is not fetched again. Use the path as the SOURCE of `streamer ecg`:
    streamer ecg "$(streamer download mitdb/208)"
    """
    from streamer.ecg.physionet import fetch_record, parse_name

    for spec in records:
        parse_name(spec)  # every name checked before anything is fetched
    for spec in records:
        path, fetched = fetch_record(spec, out)
        click.echo(f"{spec}: {'downloaded from PhysioNet' if fetched else 'already downloaded'}", err=True)
        click.echo(str(path))
