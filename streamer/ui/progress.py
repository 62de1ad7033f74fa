"""A one-line progress bar for a replay run without the dashboard, on a terminal (`--no-dashboard`, e.g. a
record scored at `--speed max`): how far through the source, what came out, the time left.

Like the dashboard it is shown by `streamer/ui/live.py`, drawn from the engine's state, transient: it leaves
the screen when the run ends and the summary is printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

BAR_SHARE = 0.4  # of the terminal's width


class ReplayProgress:
    """The renderable: `position()` of `total` (source units), `outputs()` (e.g. '1,022 beats') beside it."""

    def __init__(self, label: str, total: int, position: Callable[[], int], outputs: Callable[[], str],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.label = label
        self.total = max(1, total)
        self.position = position
        self.outputs = outputs
        self.clock = clock
        self.started = clock()

    def fraction(self) -> float:
        return min(1.0, max(0.0, self.position() / self.total))

    def eta_s(self) -> float | None:
        done, elapsed = self.fraction(), self.clock() - self.started
        return elapsed * (1 - done) / done if done > 0 else None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        done, eta = self.fraction(), self.eta_s()
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, overflow="ellipsis", max_width=max(8, width // 4))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        tail = f"{100 * done:3.0f}%  {self.outputs()}  ETA {_clock(eta)}"
        grid.add_row(Text(self.label, style="bold"),
                     ProgressBar(total=1.0, completed=done, width=max(10, int(width * BAR_SHARE))), Text(tail))
        yield grid


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
