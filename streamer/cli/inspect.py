"""`streamer inspect`: everything a model file carries, readable or as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamer.core.model import Model

ORDER = ("name", "task", "part", "version", "aestream_format", "created", "inputs", "outputs", "sample_rate_hz",
         "frame", "latent", "companions", "image", "noise", "beat", "features", "normalisation", "score",
         "threshold", "training_data", "metrics", "parity")


def _compact(value: object) -> str:
    """Dicts one `key: value` per line (nested ones as compact JSON); anything else as compact JSON."""
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in value.items())
    return json.dumps(value)


def describe_model(path: Path, as_json: bool = False, console: Console | None = None) -> None:
    model = Model(path)
    console = console or Console()
    meta = model.meta
    if as_json:
        console.print_json(json.dumps(meta))
        return
    table = Table(title=f"{path} ({path.stat().st_size / 1024:.1f} KiB)", show_header=False,
                  title_justify="left", show_lines=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    keys = [k for k in ORDER if k in meta] + sorted(k for k in meta if k not in ORDER)
    for key in keys:
        value = meta[key]
        table.add_row(key, Text(value if isinstance(value, str) else _compact(value)))  # Text: no markup
    console.print(table)
