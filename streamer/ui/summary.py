"""End of a run, shared by all streams: dashboard around the engine, summary file, printed summary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamer.ui.dashboard import Dashboard
from streamer.run.engine import Engine, Task
from streamer.run.sinks import write_summary

EXIT_OK, EXIT_INPUT, EXIT_INTERRUPTED = 0, 2, 130


def use_dashboard(requested: bool) -> bool:
    """Live dashboard only on a terminal: headless runs (CI, pipes) print the final summary only."""
    return requested and sys.stderr.isatty()


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="aestream summary", show_header=False, title_justify="left")
    table.add_column(style="bold cyan")
    table.add_column()
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
        table.add_row(key, Text(_fmt(value)))  # Text: values are never markup
    console.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "; ".join(map(str, value)) or "-"
    return "-" if value is None else str(value)


def finish_run(engine: Engine, task: Task, title: str, summary_path: Path | None, dashboard: bool,
               on_end: Callable[[], None] | None = None) -> int:
    """Run the engine under the dashboard; always write and print the summary; return the exit code.

    `on_end` runs after the stream ends (normally, on error or on Ctrl-C), before the summary is made:
    it closes the stream's own outputs (WAV file, speakers), so the summary counts what they did.
    """
    with Dashboard(engine.snapshot, task.view, title, use_dashboard(dashboard)):
        try:
            engine.run()
        finally:
            if on_end is not None:
                on_end()
        summary = engine.summary()
    if summary_path is not None:
        write_summary(summary_path, summary)
    print_summary(summary)
    if engine.error is not None:
        print(f"streamer: error: {engine.error}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_INTERRUPTED if engine.interrupted else EXIT_OK
