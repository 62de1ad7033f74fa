"""The summary printed at the end of a run (the same dict goes to `--summary PATH` as JSON)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamer.core.text import printable

SEPARATE_FROM = 10_000  # numbers this large get thousands separators: 53,940 (not 5.394e+04)
SMALLEST_PLAIN = 1e-6  # below this (and above 0) a number is written in scientific notation
SMALL_DIGITS = 4  # significant digits of a number below 1


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
    """A value for people: 53,940 / 123.5 / 2.35 / 0.9876; the JSON summary keeps the full numbers."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, (int, float)):
        return _fmt_number(value)
    if isinstance(value, list):
        return "; ".join(map(_fmt, value)) or "-"
    return printable(str(value))  # model metadata and file names never reach the terminal as control codes


def _fmt_number(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    size = abs(x)
    if float(x).is_integer() and size < 1e15:
        return f"{int(x):,}" if size >= SEPARATE_FROM else str(int(x))
    if size >= 1000:
        return f"{x:,.0f}" if size >= SEPARATE_FROM else f"{x:.0f}"
    if size >= 100:
        return f"{x:.1f}"
    if size >= 1:
        return f"{x:.2f}"
    if size < SMALLEST_PLAIN:
        return f"{x:.2e}"
    decimals = SMALL_DIGITS - 1 - math.floor(math.log10(size))  # 0.9935, 0.0000983: significant digits
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".")
