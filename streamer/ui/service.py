"""The `streamer watch` screen: the whole monitor service in one terminal, from 80x24 up.

Top to bottom: totals; workers (alive, what each holds, its rates and latency); partitions (owner, chunks
waiting and how long the oldest has waited: the lag); patients furthest behind and patients with the most
anomalies, side by side; drops with their reasons. Rows that do not fit are summarised ("+3 more").
"""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streamer.serve.watch import Snapshot

LAG_WARN_S = 2.0  # a partition whose oldest waiting chunk is older than this is shown in red
MAX_SIDE_ROWS = 60  # patients listed at most (furthest behind; most anomalies); fewer when the screen is short


def _num(x: float, fmt: str = "{:.0f}") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def _duration(ms: float) -> str:
    """A latency short enough for the totals line whatever it is: 110 ms, 12.8 s."""
    if not math.isfinite(ms):
        return "-"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _tags(snap: Snapshot) -> dict[str, str]:
    """A one-letter tag per live worker (sorted by name), so a partition cell names its owner briefly."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return {name: letters[i] if i < len(letters) else "+" for i, name in enumerate(sorted(snap.workers))}


def _workers(snap: Snapshot, rows: int) -> Table:
    t = Table(box=None, padding=(0, 1), header_style="bold cyan", expand=False)
    for col, justify in (("", "left"), ("worker", "left"), ("parts", "right"), ("patients", "right"),
                         ("chunks/s", "right"), ("beats/s", "right"), ("p50/p99 ms", "right"),
                         ("late", "right"), ("outages", "right")):
        t.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    tags = _tags(snap)
    names = sorted(snap.workers)
    shown = names if len(names) <= rows else names[:rows - 1]
    for name in shown:
        w = snap.workers[name]
        r = snap.rates.get(name, {})
        lag = w.get("recent_lag_ms", w.get("lag_ms", {}))
        t.add_row(Text(tags[name], style="bold"), name[:14], str(len(w.get("partitions", []))),
                  str(w.get("patients", 0)), _num(r.get("chunks", math.nan)), _num(r.get("beats", math.nan)),
                  f"{_num(lag.get('p50', math.nan))} / {_num(lag.get('p99', math.nan))}",
                  str(w.get("late", 0)), str(w.get("outages", 0)))
    if len(shown) < len(names):
        t.add_row("", f"+{len(names) - len(shown)} more", *[""] * 7)
    if not names:
        t.add_row("", Text("no worker alive", style="bold red"), *[""] * 7)
    return t


CELL = 13  # characters of one partition cell: "p12 A 999·9.9s" shortened as needed


def _partitions(snap: Snapshot, per_row: int) -> Table:
    """One cell per partition: `p3 A 12·0.4s` = owner's tag, chunks waiting · how long the oldest has waited
    (`p3 A ok` when nothing waits; `p3 -` in red when no worker owns it)."""
    tags = _tags(snap)
    t = Table.grid(padding=(0, 2))
    for _ in range(per_row):
        t.add_column(no_wrap=True)
    cells = []
    for p in range(snap.partitions):
        owner = snap.owners.get(p)
        b = snap.backlog.get(p)
        cell = Text(f"p{p:<2d} ", style="bold")
        cell.append(tags.get(owner, "?") if owner else "-", style="" if owner else "bold red")
        if b is not None and b.waiting:
            late = math.isfinite(b.oldest_waiting_s) and b.oldest_waiting_s > LAG_WARN_S
            cell.append(f" {b.waiting}·{_num(b.oldest_waiting_s, '{:.1f}s')}", style="bold red" if late else "yellow")
        elif b is not None:
            cell.append(" ok", style="green")
        cells.append(cell)
    for at in range(0, len(cells), per_row):
        row = cells[at:at + per_row]
        t.add_row(*row, *[""] * (per_row - len(row)))
    return t


def _lagging(snap: Snapshot, rows: int) -> Table:
    t = Table(title="furthest behind", title_justify="left", title_style="bold", box=None, padding=(0, 1),
              header_style="bold cyan")
    t.add_column("patient", no_wrap=True)
    t.add_column("lag s", justify="right")
    for patient, lag, _ in snap.lagging(rows + 1):
        t.add_row(patient[:20], Text(f"{lag:.2f}", style="bold red" if lag > LAG_WARN_S else ""))
    return t


def _anomalies(snap: Snapshot, rows: int, window_s: float) -> Table:
    t = Table(title=f"anomalies, last {window_s / 60:.0f} min", title_justify="left", title_style="bold", box=None,
              padding=(0, 1), header_style="bold cyan")
    t.add_column("patient", no_wrap=True)
    t.add_column("n", justify="right")
    t.add_column("last t s", justify="right")
    t.add_column("score", justify="right")
    top = sorted(snap.anomalies.items(), key=lambda kv: (-kv[1].count, kv[0]))
    for patient, a in top[:rows]:
        t.add_row(patient[:20], str(a.count), _num(a.last_t, "{:.1f}"), _num(a.last_score, "{:.3g}"))
    if len(top) > rows:
        t.add_row(f"+{len(top) - rows} patients", "", "", "")
    return t


def render_service(snap: Snapshot, url: str, width: int = 80, height: int = 24,
                   anomaly_window_s: float = 600.0) -> Panel:
    """The whole screen for one snapshot, laid out for a terminal of `width` x `height`."""
    lag_p99 = max((float(w.get("recent_lag_ms", {}).get("p99", math.nan)) for w in snap.workers.values()
                   if w.get("chunks")), default=math.nan)
    waiting = sum(b.waiting for b in snap.backlog.values())
    oldest = max((b.oldest_waiting_s for b in snap.backlog.values() if math.isfinite(b.oldest_waiting_s)),
                 default=math.nan)
    head = Text()
    n = len(snap.workers)
    head.append(f"{n} worker{'s' if n != 1 else ''}", style="bold green" if snap.workers else "bold red")
    head.append(f" · {snap.patients} patients · {snap.total_rate('chunks'):.0f} chunks/s · "
                f"{snap.total_rate('beats'):.0f} beats/s · latency p99 {_duration(lag_p99)}")
    head.append(f"\nbacklog {waiting} chunks", style="bold red" if math.isfinite(oldest) and oldest > LAG_WARN_S
                else "")
    head.append(f" (oldest {_num(oldest, '{:.1f}')} s) · {sum(a.count for a in snap.anomalies.values())} anomalies"
                f" · {snap.dead_letters} dead letters")
    owned = len(snap.owners)
    # Rows left for the tables once the fixed lines are placed: borders 2, totals 2, table headers 1 + 1,
    # partitions title 1 and grid, side tables' titles 1, drops 1.
    per_row = max(1, (width - 4) // (CELL + 2))
    part_rows = math.ceil(snap.partitions / per_row)
    spare = max(4, height - 9 - part_rows)
    worker_rows = max(1, min(len(snap.workers), spare // 3))
    side_rows = max(1, min(MAX_SIDE_ROWS, spare - worker_rows - 1))
    parts: list[Any] = [head, _workers(snap, worker_rows),
                        Text(f"partitions: {owned} of {snap.partitions} owned · owner, chunks waiting·oldest",
                             style="bold"), _partitions(snap, per_row)]
    side = Table.grid(padding=(0, 4))
    side.add_column()
    side.add_column()
    side.add_row(_lagging(snap, side_rows), _anomalies(snap, side_rows, anomaly_window_s))
    parts.append(side)
    drops = snap.drops()
    line = Text("drops: ", style="bold")
    line.append(", ".join(f"{k}: {v}" for k, v in sorted(drops.items())) or "none",
                style="yellow" if drops else "dim")
    parts.append(line)
    stamp = time.strftime("%H:%M:%S", time.localtime(snap.time))
    return Panel(Group(*parts), title=f"aestream watch · {url}", subtitle=stamp, border_style="blue",
                 width=width, height=height)
