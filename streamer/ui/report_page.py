"""`--report DIR`: a run's figures as PNG files and one self-contained HTML page (`DIR/index.html`, the PNGs
embedded as data URIs, so the page opens from anywhere), with the run's summary as a table.

What is shared by every stream kind lives here: the `report` extra (matplotlib, librosa for the audio
spectrograms) imported only when a report is asked for, the figures' style and colours, drawing with the Agg
canvas (no pyplot, no GUI backend, no global figure state), the page itself. Each kind's recorder
(`streamer/<kind>/figures.py`) differs only in the figures it describes.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamer.core.errors import StreamerError, need
from streamer.run.figures import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

EXTRA = "report"
INDEX = "index.html"
DPI = 110  # an 11-inch figure is 1210 px wide: sharp on the page at 1100 px
WIDTH_IN = 11.0

# colours, one meaning each across every figure
SIGNAL = "#1a1a1a"  # the input: ECG, audio input, noisy image
OUTPUT = "#dd7a1f"  # the model's output: reconstruction
NORMAL = "#3b6fb6"  # judged, not flagged
FLAGGED = "#d62728"  # above the threshold
THRESHOLD = "#d62728"
UNJUDGED = "#9a9a9a"  # warmup, calibrating, silent
REFERENCE = "#2e9e5b"  # annotations, clean references

STYLE: dict[str, Any] = {
    "font.size": 10.5, "axes.titlesize": 11.5, "axes.labelsize": 10.5, "legend.fontsize": 9.5,
    "xtick.labelsize": 9.5, "ytick.labelsize": 9.5, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e4e4e4", "grid.linewidth": 0.7, "legend.framealpha": 0.9,
    "figure.facecolor": "white", "savefig.facecolor": "white", "text.usetex": False,
}


def need_report_extra(spectrograms: bool = False) -> None:
    """Fail at once, in one line, when `--report` cannot be drawn (not after a 24-hour run)."""
    need("matplotlib", "--report", EXTRA)
    if spectrograms:
        need("librosa", "--report (mel spectrograms)", EXTRA)


def prepare(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StreamerError(f"--report {folder}: cannot create the folder ({exc.strerror})") from None


@contextmanager
def style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]  # (its stubs want each key as a Literal)
        yield


def new_figure(height_in: float, width_in: float = WIDTH_IN) -> MplFigure:
    """A figure on the Agg canvas, laid out by matplotlib's constrained layout (labels never overlap)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: MplFigure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def time_axis(duration_s: float) -> tuple[float, str]:
    """(seconds per unit, axis label) for a time axis of this length: s, min or h."""
    if duration_s <= 180:
        return 1.0, "time (s)"
    if duration_s <= 3 * 3600:
        return 60.0, "time (min)"
    return 3600.0, "time (h)"


def clock(seconds: float) -> str:
    """h:mm:ss.s or m:ss.s, as ECG viewers show a position in a record."""
    minutes, s = divmod(seconds, 60.0)
    h, m = divmod(int(minutes), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def plain(text: str, limit: int = 48) -> str:
    """Untrusted text (file names, annotation labels) for a figure: printable, no mathtext, bounded."""
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    if len(text) > limit:
        text = "..." + text[-(limit - 3):]
    return text.replace("$", r"\$")


def note(ax: Axes, text: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


# --- the page ---------------------------------------------------------------------------------------------

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 1.5rem auto 3rem; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.45rem; margin: 0 0 .2rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 0 0 .4rem; }
.sub { color: #666; margin: 0 0 1rem; font-size: .9rem; }
.summary { display: flex; flex-wrap: wrap; gap: 0 2.5rem; align-items: flex-start; }
.summary table { flex: 1 1 420px; }
table { border-collapse: collapse; font-size: .88rem; }
th, td { text-align: left; vertical-align: top; padding: .18rem .9rem .18rem 0; border-bottom: 1px solid #eee; }
th { color: #345; font-weight: 600; white-space: nowrap; }
figure { margin: 0 0 2.2rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e2e2e2; }
figcaption { color: #444; font-size: .9rem; margin-top: .4rem; }
figcaption a { color: #777; }
.note { background: #f6f6f6; border-left: 3px solid #bbb; padding: .5rem .8rem; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return "; ".join(_fmt(v) for v in value) or "-"
    return str(value)


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as two tables side by side (one above the other on a narrow screen)."""
    rows = [f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in summary.items()]
    half = (len(rows) + 1) // 2
    tables = "".join(f"<table>{''.join(part)}</table>" for part in (rows[:half], rows[half:]) if part)
    return f'<div class="summary">{tables}</div>'


def _figure_html(figure: Figure, png: bytes | None) -> str:
    caption = html.escape(figure.caption)
    title = html.escape(figure.title)
    if png is None:
        return f'<figure id="{figure.name}"><h3>{title}</h3><p class="note">{caption}</p></figure>'
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{figure.name}"><h3>{title}</h3>'
            f'<img src="data:image/png;base64,{data}" alt="{title}">'
            f'<figcaption>{caption} <a href="{figure.name}.png">{figure.name}.png</a></figcaption></figure>')


def page(title: str, summary: dict[str, Any], parts: list[tuple[Figure, bytes | None]]) -> str:
    from streamer import __version__

    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    body = "\n".join(_figure_html(f, png) for f, png in parts)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1><p class=\"sub\">aestream {__version__} · report written {written}</p>\n"
            f"<h2>Summary</h2>{summary_table(summary)}\n<h2>Figures</h2>\n{body}\n</body></html>\n")


def _write(path: Path, data: bytes) -> None:
    """Atomic write (temp file + rename): a page or figure is never seen half written."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise StreamerError(f"{path}: cannot write the report ({exc.strerror})") from None


NAME = re.compile(r"[a-z0-9_]+")


def write_report(folder: Path, title: str, summary: dict[str, Any], figures: list[Figure]) -> Path:
    """Draw every figure to `folder/<name>.png` and write `folder/index.html`; returns the page's path."""
    prepare(folder)
    parts: list[tuple[Figure, bytes | None]] = []
    with style():
        for figure in figures:
            if not NAME.fullmatch(figure.name):
                raise ValueError(f"figure name {figure.name!r} is not a plain file name")
            if figure.draw is None:
                parts.append((figure, None))
                continue
            fig = figure.draw()
            png = png_bytes(fig)
            fig.clear()
            _write(folder / f"{figure.name}.png", png)
            parts.append((figure, png))
    index = folder / INDEX
    _write(index, page(title, summary, parts).encode("utf-8"))
    return index


def write_index(folder: Path, title: str, pages: list[tuple[str, Path]]) -> Path:
    """A page that links other report pages (the demo's three streams), by paths relative to `folder`."""
    links = "".join(f'<li><a href="{html.escape(p.relative_to(folder).as_posix())}">{html.escape(name)}</a></li>'
                    for name, p in pages)
    doc = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
           f"<style>{PAGE_CSS}</style></head><body><h1>{html.escape(title)}</h1><ul>{links}</ul></body></html>\n")
    index = folder / INDEX
    _write(index, doc.encode("utf-8"))
    return index
