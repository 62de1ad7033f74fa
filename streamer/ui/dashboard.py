"""Rich terminal dashboard of one stream: the engine's metrics snapshot plus the stream kind's `view()`, laid
out for the terminal it is in.

It is shown by `streamer/ui/live.py` (rich's `Live`, pulling it 4 times a second, so the data path never
waits on the terminal). The renderable (`DashboardView`) reads the console's size at every refresh: a resized terminal
gets a new layout at once. The screen is made of sections, each with an importance and a height range
(`layout.py`): a short terminal shrinks the signal traces first and drops the engine's timings before the
kind's own figures; the ECG's table of recent anomalies is never the first to go. Every line is cut to the
width, never wrapped. The same `render()` is used by the tests against a `Console(file=StringIO())`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streamer.core.text import printable
from streamer.ui.layout import Section, allocate

SPARK = "▁▂▃▄▅▆▇█"
PANEL_ROWS, PANEL_COLS = 2, 4  # the panel's border (top, bottom) and border plus padding (left, right)
TRACE_ROWS = (2, 5, 16)  # text rows of a signal trace: fewest worth drawing, preferred, most
EVENT_ROWS = (1, 5, 10)  # anomalies listed: fewest, preferred, most
SPEC_FFT = 512  # samples per spectrogram column's FFT (64 ms at 8 kHz: 16 Hz bins)
SPEC_LOW_HZ = 60.0  # lowest band's lower edge
SPEC_RANGE_DB = 60.0  # levels shown below the loudest band: quieter is black
HEAT_STOPS = ((0, 0, 0), (60, 15, 110), (180, 40, 100), (245, 120, 40), (252, 240, 160))
MAX_IMAGE_COLS = 32  # an image is drawn at most this many characters wide
# unjudged beats' colours in the score line
STATE_STYLES = {"warmup": "dim", "calibrating": "yellow", "noise": "magenta"}

# Importance of each section: the lowest goes first when the terminal is short.
P_FIELDS, P_WARNINGS, P_EVENTS, P_METERS, P_SERIES, P_TRACE, P_ENGINE = 100, 95, 90, 85, 80, 70, 60


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


def _columns(signal: np.ndarray, width: int) -> list[np.ndarray]:
    return np.array_split(np.asarray(signal, dtype=np.float64), min(width, len(signal)))


def _draw(lo_i: np.ndarray, hi_i: np.ndarray, rows: int) -> list[str]:
    """Columns filled from half-level `lo_i` to `hi_i` (0 = bottom half of the last row), as block characters."""
    grid = [[" "] * len(lo_i) for _ in range(rows)]
    for x, (a, b) in enumerate(zip(lo_i, hi_i)):
        for r in range(rows):
            lower = 2 * (rows - 1 - r)  # half-levels this text row covers: lower, lower + 1
            has_lo, has_hi = a <= lower <= b, a <= lower + 1 <= b
            grid[r][x] = "█" if has_lo and has_hi else "▀" if has_hi else "▄" if has_lo else " "
    return ["".join(r) for r in grid]


def trace_rows(signal: np.ndarray, width: int, rows: int) -> list[str]:
    """Signal drawn as a min/max envelope per column with block characters, `rows` lines high (an ECG)."""
    if len(signal) < 2:
        return [" " * width] * rows
    cols = _columns(signal, width)
    # missing samples (NaN: a gap in the recording) are left out; a column of nothing but gap stays blank
    lo_v = np.array([np.fmin.reduce(c) for c in cols])  # NaN only for a column of nothing but gap
    hi_v = np.array([np.fmax.reduce(c) for c in cols])
    drawn = ~np.isnan(lo_v)
    if not drawn.any():
        return [" " * width] * rows
    lo, hi = float(lo_v[drawn].min()), float(hi_v[drawn].max())
    span = hi - lo if hi > lo else 1.0
    levels = rows * 2  # half-row resolution
    lo_i = np.where(drawn, np.floor((np.where(drawn, lo_v, lo) - lo) / span * (levels - 1)), levels).astype(int)
    hi_i = np.where(drawn, np.ceil((np.where(drawn, hi_v, lo) - lo) / span * (levels - 1)), -1).astype(int)
    return [r.ljust(width) for r in _draw(lo_i, hi_i, rows)]


def spectrogram_art(signal: np.ndarray, width: int, rows: int, rate: float, ref_db: float | None = None) -> Text:
    """A small spectrogram: time across `width` columns, 2 * `rows` log-spaced bands from SPEC_LOW_HZ to
    Nyquist upwards (half blocks: the upper band in the foreground colour, the lower in the background),
    level in dB over SPEC_RANGE_DB below `ref_db` (shared by the spectrograms compared; default this
    one's loudest cell)."""
    levels = _band_levels_db(np.asarray(signal, dtype=np.float64), width, 2 * rows, rate)
    top = ref_db if ref_db is not None else float(levels.max())
    shade = np.clip(1 + (levels - top) / SPEC_RANGE_DB, 0.0, 1.0)
    text = Text()
    for r in range(rows):
        upper, lower = shade[2 * rows - 1 - 2 * r], shade[2 * rows - 2 - 2 * r]  # bands from the top down
        if r:
            text.append("\n")
        for a, b in zip(upper, lower):
            text.append("▀", style=f"{_heat(a)} on {_heat(b)}")
    return text


def band_levels_top_db(signals: Sequence[np.ndarray], width: int, rows: int, rate: float) -> float:
    """The loudest band level (dB) over several signals: their spectrograms' shared reference."""
    return max((float(_band_levels_db(np.asarray(x, dtype=np.float64), width, 2 * rows, rate).max())
                for x in signals if len(x) >= SPEC_FFT), default=0.0)


def _band_levels_db(x: np.ndarray, width: int, bands: int, rate: float) -> np.ndarray:
    """(bands, width) levels in dB: a Hann-windowed FFT of SPEC_FFT samples centred on each column."""
    if len(x) < SPEC_FFT:
        return np.full((bands, width), -200.0)
    centres = np.linspace(SPEC_FFT // 2, len(x) - SPEC_FFT // 2, width).astype(int)
    frames = np.stack([x[c - SPEC_FFT // 2:c + SPEC_FFT // 2] for c in centres]) * np.hanning(SPEC_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(SPEC_FFT, 1 / rate)
    edges = np.geomspace(SPEC_LOW_HZ, rate / 2, bands + 1)
    band = np.clip(np.searchsorted(edges, freqs, side="right") - 1, 0, bands - 1)
    keep = freqs >= SPEC_LOW_HZ
    out = np.zeros((bands, width))
    for b in range(bands):
        sel = keep & (band == b)
        if sel.any():
            out[b] = power[:, sel].mean(axis=1)
    return 10 * np.log10(np.maximum(out, 1e-20))


def _heat(v: float) -> str:
    """A level in [0, 1] as a colour from black through purple and orange to pale yellow."""
    stops = HEAT_STOPS
    x = v * (len(stops) - 1)
    i = min(int(x), len(stops) - 2)
    f = x - i
    r, g, b = (round(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])) for k in range(3))
    return f"rgb({r},{g},{b})"


def pixel_art(image: np.ndarray, max_cols: int = 16) -> Text:
    """A grayscale image in [0, 1] drawn with half blocks: one character per 1x2 pixels, top in the
    foreground colour and bottom in the background. Larger images are averaged down to `max_cols`."""
    img = _shrink(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0), _image_step(image.shape[1], max_cols))
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


def _shrink(img: np.ndarray, step: int) -> np.ndarray:
    """Each `step` x `step` block averaged (partial blocks at the edges too): an image 32 px high and 4800 wide
    becomes 1 x 150, where whole blocks alone would leave no row at all."""
    if step == 1:
        return img
    out_h, out_w = -(-img.shape[0] // step), -(-img.shape[1] // step)
    cells = (np.arange(img.shape[0]) // step)[:, None] * out_w + (np.arange(img.shape[1]) // step)[None, :]
    sums = np.bincount(cells.ravel(), img.ravel(), out_h * out_w)
    counts = np.bincount(cells.ravel(), minlength=out_h * out_w)
    return (sums / counts).reshape(out_h, out_w)


def _image_step(width_px: int, max_cols: int) -> int:
    return max(1, int(np.ceil(width_px / max(1, max_cols))))


def _image_rows(shape: tuple[int, ...], max_cols: int) -> int:
    """Text rows `pixel_art` takes for an image of `shape` drawn at most `max_cols` wide."""
    h = -(-shape[0] // _image_step(shape[1], max_cols))
    return (h + 1) // 2


def _bar(fraction: float, text: str, width: int) -> Text:
    """A horizontal meter, `fraction` of `width` filled; red near full scale."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * width))
    bar = Text("█" * filled, style="bold red" if fraction > 0.95 else "green")
    bar.append("·" * (width - filled), style="dim")
    bar.append(f"  {text}")
    return bar


def _num(v: Any) -> str:
    """Three significant digits, whole numbers from 1 000 up (2180 ms, not 2.18e+03)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _ms(d: dict[str, float], keys: Sequence[str] = ("p50", "p95", "p99")) -> str:
    return "  ".join(f"{k} {_num(d.get(k))}" for k in keys) + " ms"


def _fixed(renderable: Any) -> Callable[[int], list[Any]]:
    """A section's draw function for content of one fixed height."""
    return lambda rows: [renderable]


# --- sections -------------------------------------------------------------------------------------------------
def _pairs_grid(pairs: Sequence[tuple[str, Text]], width: int) -> tuple[Table, int]:
    """Key-value pairs packed row by row into as many side-by-side columns as the width holds (each column
    as wide as its own widest pair); (grid, lines)."""
    per_line = _pairs_per_line(pairs, width)
    grid = Table.grid(padding=(0, 1))
    for i in range(per_line):
        keys = [len(key) for key, _ in pairs[i::per_line]]  # a long value is cut, never its label
        grid.add_column(style="bold cyan", justify="right", no_wrap=True, min_width=max(keys, default=0))
        grid.add_column(no_wrap=True, overflow="ellipsis", min_width=1)
        if i < per_line - 1:
            grid.add_column(width=1)  # the gap between pairs
    lines = math.ceil(len(pairs) / per_line) if pairs else 0
    for line in range(lines):
        cells: list[Any] = []
        for i, (key, value) in enumerate(pairs[line * per_line:(line + 1) * per_line]):
            cells += ([""] if i else []) + [key, value]
        grid.add_row(*cells)
    return grid, lines


def _pairs_per_line(pairs: Sequence[tuple[str, Text]], width: int) -> int:
    for k in range(len(pairs), 1, -1):
        cols = [pairs[j::k] for j in range(k)]
        keys = [max(len(key) for key, _ in col) for col in cols]
        values = [max(v.cell_len for _, v in col) for col in cols]
        if sum(keys) + sum(values) + k + 3 * (k - 1) <= width:  # key, space, value; 3 between pairs
            return k
    return 1


def _field_pairs(view: dict[str, Any]) -> list[tuple[str, Text]]:
    pairs: list[tuple[str, Text]] = []
    state = view.get("state")
    if state:
        pairs.append(("state", Text(state[0], style=state[1])))
    pairs += [(k, Text(v)) for k, v in view.get("fields", {}).items()]
    return pairs


def _engine_pairs(snapshot: dict[str, Any], view: dict[str, Any]) -> list[tuple[str, Text]]:
    budget = view.get("budget_ms")
    pairs = [("latency", Text(_ms(snapshot.get("latency_ms", {}))
                              + (f" (budget {budget:.0f})" if budget else ""))),
             ("model time", Text(_ms(snapshot.get("model_ms", {}), ("p50", "p99"))))]
    if view.get("timed", True):  # a folder of images has no signal time: no real-time factor either
        rtf = snapshot.get("realtime_factor", float("nan"))
        pairs.append(("signal", Text(f"{snapshot.get('stream_s', 0.0):.1f} s in {snapshot.get('wall_s', 0.0):.1f}"
                                     f" s · RTF {_num(rtf)}")))
    drops = snapshot.get("drops", {})
    pairs.append(("drops", Text(", ".join(f"{k}: {v}" for k, v in drops.items()) or "0",
                                style="yellow" if drops else "")))
    return pairs


def _grid_section(name: str, priority: int, pairs: list[tuple[str, Text]], width: int) -> Section | None:
    if not pairs:
        return None
    grid, lines = _pairs_grid(pairs, width)
    return Section(name, priority, lines, lines, lines, _fixed(grid))


def _warnings_section(view: dict[str, Any], width: int) -> Section | None:
    lines = [line for w in view.get("warnings", []) for line in textwrap.wrap(f"! {w}", width)]
    if not lines:
        return None

    def draw(rows: int) -> list[Any]:
        shown = lines[:rows]
        if len(lines) > rows:  # the rest is in the summary
            shown[-1] = shown[-1][:width - 1] + "…"
        return [Text("\n".join(shown), style="bold yellow")]

    return Section("warnings", P_WARNINGS, 1, min(len(lines), 3), min(len(lines), 3), draw)


def _meter_sections(view: dict[str, Any], width: int) -> list[Section]:
    out = []
    for meter in view.get("meters", []):
        label = f"{meter['label']}  "
        bar_w = max(8, min(40, width - len(label) - len(meter["text"]) - 2))
        line = Text(label, style="bold cyan") + _bar(float(meter["value"]), meter["text"], bar_w)
        line.truncate(width, overflow="ellipsis")
        out.append(Section("meter", P_METERS, 1, 1, 1, _fixed(line)))
    return out


def _series_sections(view: dict[str, Any], width: int) -> list[Section]:
    out = []
    for series in view.get("series", []):
        values = [v for v in series["values"] if v == v and abs(v) != float("inf")]
        label = f"{series['label']}  "
        line = Text(label, style="bold cyan")
        if values:
            stats = f"  last {values[-1]:.3g}, min {min(values):.3g}, max {max(values):.3g}"
            room = width - len(label) - len(stats)
            if room < 12:  # a narrow terminal keeps the line, not the figures
                stats, room = f"  last {values[-1]:.3g}", width - len(label) - len(f"  last {values[-1]:.3g}")
            shown = values[-max(1, room):]
            line.append(sparkline(shown, series.get("lo"), series.get("hi")), style="green")
            line.append(stats)
        else:
            line.append("-", style="dim")
        line.truncate(width, overflow="ellipsis")
        out.append(Section("series", P_SERIES, 1, 1, 1, _fixed(line)))
    return out


def _scores_section(view: dict[str, Any], width: int) -> Section | None:
    scores = view.get("scores")
    if not scores:
        return None
    states = view.get("score_states") or ["judged"] * len(scores)
    thr = float(view.get("threshold", 0.0))
    label, legend = "scores  ", f"  threshold {thr:.3g}"
    n = max(1, width - len(label) - len(legend))
    scores, states = scores[-n:], states[-n:]
    hi = max(max(scores), thr) * 1.05
    line = Text(label, style="bold cyan")
    for s, state, ch in zip(scores, states, sparkline(scores, 0.0, hi)):
        style = STATE_STYLES.get(state) or ("bold red" if s > thr else "green")
        line.append(ch, style=style)
    line.append(legend)
    line.truncate(width, overflow="ellipsis")
    return Section("scores", P_SERIES, 1, 1, 1, _fixed(line))


def _trace_sections(view: dict[str, Any], width: int) -> list[Section]:
    out = []
    for trace in view.get("traces", []):
        signal = trace["signal"]
        if signal is None or len(signal) < 2:
            continue
        marks = trace.get("marks")
        extra = 1 + (1 if marks is not None else 0)  # its label, and the row of beat marks under it
        lo, want, hi = trace.get("rows", TRACE_ROWS)

        def draw(rows: int, trace: dict[str, Any] = trace, extra: int = extra) -> list[Any]:
            n = rows - extra
            body: Text
            if "spectrogram_rate" in trace:
                rate = trace["spectrogram_rate"]
                ref = band_levels_top_db(trace.get("compare", [trace["signal"]]), width, n, rate)
                body = spectrogram_art(trace["signal"], width, n, rate, ref)
            else:
                body = Text("\n".join(trace_rows(trace["signal"], width, n)), style=trace.get("style", "green"))
            parts: list[Any] = [Text(trace["label"], style="bold"), body]
            if trace.get("marks") is not None:
                parts.append(_marks_row(trace["marks"], width))
            return parts

        out.append(Section("trace", P_TRACE, lo + extra, want + extra, hi + extra, draw))
    return out


def _marks_row(marks: Sequence[tuple[float, str, str]], width: int) -> Text:
    """(fraction of the trace's width, character, style) marks on one line: the beats under an ECG trace."""
    cells: list[tuple[str, str]] = [(" ", "")] * width
    for fraction, char, style in marks:
        x = int(fraction * width)
        if 0 <= x < width and (cells[x][0] == " " or "red" in style):  # an anomaly wins its column
            cells[x] = (char, style)
    line = Text()
    for char, style in cells:
        line.append(char, style=style)
    return line


def _events_section(view: dict[str, Any], width: int) -> Section | None:
    if "events" not in view:
        return None
    events = view["events"]
    total = view.get("anomalies_total", len(events))
    if not events:
        line = Text("recent anomalies: none", style="dim")
        return Section("events", P_EVENTS, 1, 1, 1, _fixed(line))
    lo, want, hi = EVENT_ROWS

    def draw(rows: int) -> list[Any]:
        table = Table(title=f"recent anomalies ({total} in all)", title_justify="left", title_style="bold",
                      box=None, padding=(0, 1), header_style="bold cyan")
        for col in ("t (s)", "beat", "score", "RR (ms)"):
            table.add_column(col, justify="right", no_wrap=True)
        for e in list(reversed(events))[:rows - 2]:
            table.add_row(f"{e['t']:.2f}", str(e["beat"]), f"{e['score']:.4g}", f"{e.get('rr_ms', 0):.0f}")
        return [table]

    n = len(events)
    return Section("events", P_EVENTS, min(n, lo) + 2, min(n, want) + 2, min(n, hi) + 2, draw)


def _images_section(view: dict[str, Any], width: int) -> Section | None:
    images = view.get("images")
    if not images:
        return None
    gap = 2
    col_w = max(4, min(MAX_IMAGE_COLS, (width - gap * (len(images) - 1)) // len(images)))
    shape = max((np.shape(im) for _, im in images), key=lambda s: s[0])
    widths = [c for c in (col_w, 28, 16, 8) if c <= col_w]

    def rows_at(cols: int) -> int:
        return _image_rows(shape, cols) + 1  # and the labels above

    def draw(rows: int) -> list[Any]:
        cols = next((c for c in widths if rows_at(c) <= rows), widths[-1])
        grid = Table.grid(padding=(0, gap))
        for _ in images:
            grid.add_column(no_wrap=True)
        grid.add_row(*[Text(label, style="bold") for label, _ in images])
        grid.add_row(*[pixel_art(im, cols) for _, im in images])
        return [grid]

    return Section("images", P_METERS, rows_at(widths[-1]), rows_at(16 if 16 <= col_w else widths[-1]),
                   rows_at(widths[0]), draw)


def sections(snapshot: dict[str, Any], view: dict[str, Any], width: int) -> list[Section]:
    """Every section the view has, each knowing its importance and how to draw itself in some rows."""
    found: list[Section | None] = [
        _grid_section("fields", P_FIELDS, _field_pairs(view), width), _warnings_section(view, width),
        *_trace_sections(view, width), *_meter_sections(view, width), _images_section(view, width),
        *_series_sections(view, width), _scores_section(view, width), _events_section(view, width),
        _grid_section("engine", P_ENGINE, _engine_pairs(snapshot, view), width)]
    return [s for s in found if s is not None]


def render(snapshot: dict[str, Any], view: dict[str, Any], title: str, width: int = 100, height: int = 30) -> Panel:
    """The whole dashboard for one snapshot, laid out for a terminal of `width` x `height`."""
    inner = max(20, width - PANEL_COLS)
    placed = allocate(sections(snapshot, view, inner), max(1, height - PANEL_ROWS))
    parts: list[Any] = []
    for section, rows in placed:
        parts += section.draw(rows)
    return Panel(Group(*parts), title=Text(printable(title), overflow="ellipsis", no_wrap=True), border_style="blue",
                 width=width)


class DashboardView:
    """The renderable `Live` refreshes: a fresh snapshot laid out for the console's size at that moment."""

    def __init__(self, get_snapshot: Callable[[], dict[str, Any]], get_view: Callable[[], dict[str, Any]],
                 title: str) -> None:
        self.get_snapshot = get_snapshot
        self.get_view = get_view
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield render(self.get_snapshot(), self.get_view(), self.title, options.max_width,
                     options.height or console.size.height)
