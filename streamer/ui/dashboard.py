"""Rich terminal dashboard: one renderer of the engine's metrics snapshot plus the task's `view()`.

`rich.live.Live` pulls the renderable from its own refresh thread (4 Hz), so the data path never waits
on the terminal. The same `render()` is used by tests against a `Console(file=StringIO())`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

REFRESH_HZ = 4
TRACE_WIDTH = 96  # characters
SPARK = "▁▂▃▄▅▆▇█"
TRACE_ROWS = 5  # text rows of the signal trace


def sparkline(values: Sequence[float], lo: float | None = None, hi: float | None = None) -> str:
    """One character per value, eight levels."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return ""
    lo = float(np.nanmin(v)) if lo is None else lo
    hi = float(np.nanmax(v)) if hi is None else hi
    span = hi - lo if hi > lo else 1.0
    idx = np.clip(((v - lo) / span * (len(SPARK) - 1)).round(), 0, len(SPARK) - 1).astype(int)
    return "".join(SPARK[i] for i in idx)


def trace_rows(signal: np.ndarray, width: int = TRACE_WIDTH, rows: int = TRACE_ROWS) -> list[str]:
    """Signal drawn as a min/max envelope per column with block characters, `rows` lines high."""
    if len(signal) < 2:
        return [" " * width] * rows
    cols = np.array_split(np.asarray(signal, dtype=np.float64), min(width, len(signal)))
    lo_v = np.array([c.min() for c in cols])
    hi_v = np.array([c.max() for c in cols])
    lo, hi = float(lo_v.min()), float(hi_v.max())
    span = hi - lo if hi > lo else 1.0
    levels = rows * 2  # half-row resolution
    lo_i = np.floor((lo_v - lo) / span * (levels - 1)).astype(int)
    hi_i = np.ceil((hi_v - lo) / span * (levels - 1)).astype(int)
    grid = [[" "] * len(cols) for _ in range(rows)]
    for x, (a, b) in enumerate(zip(lo_i, hi_i)):
        for r in range(rows):
            lower = 2 * (rows - 1 - r)  # half-levels this text row covers: lower, lower + 1
            has_lo, has_hi = a <= lower <= b, a <= lower + 1 <= b
            grid[r][x] = "█" if has_lo and has_hi else "▀" if has_hi else "▄" if has_lo else " "
    return ["".join(r) for r in grid]


def _fmt_ms(d: dict[str, float]) -> str:
    def one(v: float | None) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"
    return f"p50 {one(d.get('p50'))}  p95 {one(d.get('p95'))}  p99 {one(d.get('p99'))} ms"


def pixel_art(image: np.ndarray, max_cols: int = 16) -> Text:
    """A grayscale image in [0, 1] drawn with half blocks: one character per 1x2 pixels, top in the
    foreground colour and bottom in the background. Larger images are averaged down to `max_cols`."""
    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    step = max(1, int(np.ceil(img.shape[1] / max_cols)))
    h, w = img.shape[0] // step * step or img.shape[0], img.shape[1] // step * step or img.shape[1]
    if step > 1:
        img = img[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
    if len(img) % 2:
        img = np.vstack([img, np.zeros((1, img.shape[1]))])
    levels = (img * 255).round().astype(int)
    text = Text()
    for row, (top, bottom) in enumerate(zip(levels[0::2], levels[1::2])):
        if row:
            text.append("\n")
        for a, b in zip(top, bottom):
            text.append("▀", style=f"rgb({a},{a},{a}) on rgb({b},{b},{b})")
    return text


def _bar(fraction: float, text: str, width: int = 30) -> Text:
    """A horizontal meter, `fraction` of `width` filled; red near full scale."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * width))
    bar = Text("█" * filled, style="bold red" if fraction > 0.95 else "green")
    bar.append("·" * (width - filled), style="dim")
    bar.append(f"  {text}")
    return bar


def render(snapshot: dict[str, Any], view: dict[str, Any], title: str) -> Panel:
    """The whole dashboard for one snapshot."""
    parts: list[Any] = []
    trace = view.get("trace")
    if trace is not None:
        parts.append(Text(view.get("trace_label", "signal"), style="bold"))
        parts.append(Text("\n".join(trace_rows(trace)), style="green"))
    stats = Table.grid(padding=(0, 2))
    stats.add_column(style="bold cyan", justify="right")
    stats.add_column()
    for key, value in view.get("fields", {}).items():
        stats.add_row(key, Text(value))
    stats.add_row("signal", f"{snapshot.get('stream_s', 0.0):.1f} s in {snapshot.get('wall_s', 0.0):.1f} s wall")
    for meter in view.get("meters", []):
        stats.add_row(meter["label"], _bar(float(meter["value"]), meter["text"]))
    budget = view.get("budget_ms")
    stats.add_row("latency", _fmt_ms(snapshot.get("latency_ms", {}))
                  + (f"  (budget {budget:.0f} ms per frame)" if budget else ""))
    stats.add_row("model time", _fmt_ms(snapshot.get("model_ms", {})))
    rtf = snapshot.get("realtime_factor", float("nan"))
    stats.add_row("real-time factor", "-" if rtf != rtf else f"{rtf:.2g}")
    drops = snapshot.get("drops", {})
    stats.add_row("drops", Text(", ".join(f"{k}: {v}" for k, v in drops.items()) or "0"))
    parts.append(stats)
    for series in view.get("series", []):
        values = [v for v in series["values"] if v == v and abs(v) != float("inf")]
        line = Text(f"{series['label']}  ")
        if values:
            line.append(sparkline(values, series.get("lo"), series.get("hi")), style="green")
            line.append(f"  last {values[-1]:.3g}, min {min(values):.3g}, max {max(values):.3g}")
        parts.append(line)
    images = view.get("images")
    if images:
        grid = Table.grid(padding=(0, 2))
        for _ in images:
            grid.add_column()
        grid.add_row(*[Text(label, style="bold") for label, _ in images])
        grid.add_row(*[pixel_art(image) for _, image in images])
        parts.append(grid)
    scores = view.get("scores")
    if scores:
        thr = float(view.get("threshold", 0.0))
        hi = max(max(scores), thr) * 1.05
        line = Text("scores  ")
        for s, ch in zip(scores, sparkline(scores, 0.0, hi)):
            line.append(ch, style="bold red" if s > thr else "green")
        line.append(f"  threshold {thr:.3g}")
        parts.append(line)
    events = view.get("events")
    if events:
        table = Table(title="recent anomalies", title_justify="left", expand=False)
        for col in ("t (s)", "beat", "score", "RR (ms)"):
            table.add_column(col, justify="right")
        for e in reversed(events):
            table.add_row(f"{e['t']:.2f}", str(e["beat"]), f"{e['score']:.4g}", f"{e.get('rr_ms', 0):.0f}")
        parts.append(table)
    return Panel(Group(*parts), title=title, border_style="blue")


class Dashboard:
    """Context manager around `rich.live.Live`; does nothing when disabled (no TTY or --no-dashboard)."""

    def __init__(self, get_snapshot: Callable[[], dict[str, Any]], get_view: Callable[[], dict[str, Any]],
                 title: str, enabled: bool, console: Console | None = None) -> None:
        self.get_snapshot = get_snapshot
        self.get_view = get_view
        self.title = title
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.live: Live | None = None

    def _renderable(self) -> Panel:
        return render(self.get_snapshot(), self.get_view(), self.title)

    def __enter__(self) -> Dashboard:
        if self.enabled:
            self.live = Live(get_renderable=self._renderable, console=self.console,
                             refresh_per_second=REFRESH_HZ, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None
