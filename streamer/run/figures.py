"""What a run keeps for its `--report` figures: the `Recorder` protocol a stream kind implements, the
`Figure` it hands back, and two bounded stores its recorder builds on (numpy only; plotting is elsewhere).

A recorder is fed like the kind's `Report` (every block, then that block's events) and keeps only what its
figures need, bounded whatever the run's length: a min/max `Envelope` of a whole signal in at most a few
thousand bins, per-item figures in `Columns` (a few bytes per beat, frame or image), and a few examples.
At the end `figures(summary)` describes each figure; `streamer.ui.report_page` draws them and writes the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from streamer.run.sources import Block

ENVELOPE_BINS = 4000  # at most this many min/max bins per signal (a 24-hour ECG: ~8000 samples a bin)


@dataclass
class Figure:
    """One figure of a report: `draw` makes it (matplotlib); without `draw` the caption is a note only
    (e.g. a ROC curve for a record without annotations)."""

    name: str  # file name without .png: letters, digits, underscores
    title: str
    caption: str  # what it shows, how to read it
    draw: Callable[[], MplFigure] | None = None


class Recorder(Protocol):
    """What a `--report` keeps of a run, fed like the `Report`: the blocks, then each block's events."""

    def on_block(self, block: Block) -> None: ...
    def on_events(self, events: Sequence[Any]) -> None: ...
    def figures(self, summary: dict[str, Any]) -> list[Figure]: ...


class Envelope:
    """Minimum and maximum of a signal per bin of `width` samples over the whole run, in at most `max_bins`
    bins: when they are full, neighbouring bins merge and the width doubles. The bin being filled is kept as
    its own min/max and count, so memory is bounded however long the run. Missing samples (NaN: a gap) are
    left out; a bin with nothing else is NaN (drawn as a gap)."""

    def __init__(self, max_bins: int = ENVELOPE_BINS) -> None:
        self.max_bins = max_bins - max_bins % 2  # even: full bins always merge in pairs
        self.lo = np.zeros(self.max_bins)
        self.hi = np.zeros(self.max_bins)
        self.n = 0  # complete bins
        self.width = 1  # samples per bin
        self.fill = 0  # samples in the bin being filled
        self.part_lo, self.part_hi = np.inf, -np.inf

    @property
    def samples(self) -> int:
        return self.n * self.width + self.fill

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        while len(x):
            if self.fill or len(x) < self.width:
                x = self._fill_part(x)
                continue
            k = min(len(x) // self.width, self.max_bins - self.n)
            if k == 0:  # full: merge
                self._halve()
                continue
            bins = x[:k * self.width].reshape(k, self.width)
            self._push(np.fmin.reduce(bins, axis=1), np.fmax.reduce(bins, axis=1))
            x = x[k * self.width:]

    def _fill_part(self, x: np.ndarray) -> np.ndarray:
        part, rest = x[:self.width - self.fill], x[self.width - self.fill:]
        self.part_lo = float(np.fmin(self.part_lo, np.fmin.reduce(part)))
        self.part_hi = float(np.fmax(self.part_hi, np.fmax.reduce(part)))
        self.fill += len(part)
        if self.fill == self.width:
            if self.n == self.max_bins:
                self._halve()  # the part becomes the first half of a bin twice as wide
            else:
                empty = self.part_lo > self.part_hi  # every sample of the bin missing
                self._push(np.array([np.nan if empty else self.part_lo]), np.array([np.nan if empty else self.part_hi]))
                self.fill, self.part_lo, self.part_hi = 0, np.inf, -np.inf
        return rest

    def _push(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo[self.n:self.n + len(lo)] = lo
        self.hi[self.n:self.n + len(hi)] = hi
        self.n += len(lo)

    def _halve(self) -> None:
        half = self.n // 2
        self.lo[:half] = np.fmin.reduce(self.lo[:self.n].reshape(half, 2), axis=1)
        self.hi[:half] = np.fmax.reduce(self.hi[:self.n].reshape(half, 2), axis=1)
        self.n, self.width = half, 2 * self.width

    def bins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first sample of each bin, its minimum, its maximum), the bin being filled last."""
        lo, hi = self.lo[:self.n], self.hi[:self.n]
        if self.fill:
            empty = self.part_lo > self.part_hi
            lo, hi = np.r_[lo, np.nan if empty else self.part_lo], np.r_[hi, np.nan if empty else self.part_hi]
        return np.arange(len(lo)) * self.width, lo, hi


class Columns:
    """Rows of named numeric columns, appended a batch at a time (one assignment, so an interruption never
    leaves the columns of different lengths); capacity doubles as needed."""

    def __init__(self, dtype: list[tuple[str, Any]], capacity: int = 1024) -> None:
        self.data = np.zeros(capacity, dtype=dtype)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def extend(self, **columns: Any) -> None:
        k = len(next(iter(columns.values())))
        if self.n + k > len(self.data):
            grown = np.zeros(max(2 * len(self.data), self.n + k), dtype=self.data.dtype)
            grown[:self.n] = self.data[:self.n]
            self.data = grown
        rows = np.zeros(k, dtype=self.data.dtype)
        for name, values in columns.items():
            rows[name] = values
        self.data[self.n:self.n + k] = rows
        self.n += k

    def view(self) -> np.ndarray:
        return self.data[:self.n]
