"""Per-stream histories of recent items (beats, scores) and, for a batch of new items from many streams,
the set of accepted items that came before each one, as array operations.

Used where a stream's next value depends on its own recent past through an order statistic: the ECG
template (per-sample median of the last 16 regular beats) and the patient-adaptive score level (a
percentile of the last 32 scores). For every new item the set holds the last `depth` *accepted* items
before it: from earlier blocks (a ring per slot) and from earlier items of the same batch. Which items are
accepted is decided by the caller (premature beats stay out of the template, for instance).

Callers give a statistic of the set that does not depend on its order (an order statistic: sort along the
last axis), so any order gives bit-identical results. Two ways to build the sets give the same values: by
*rounds* (the first new item of every slot, then the second, ...: a few array gathers when each slot has a
few items, the case of many live streams) or by laying each slot's sequence out in one array whose
windows are a strided view (one long batch of one stream, the case of an offline record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from streamer.core.rows import Rows

MAX_ROUNDS = 4  # beyond this many items of one slot in a batch, lay the sequences out instead of rounds


def ranks(slots: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """For items grouped by slot (time order within a slot), how many flagged items of the same slot come
    before each one."""
    before = np.cumsum(flags) - flags
    starts = np.r_[True, slots[1:] != slots[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(slots)), 0))
    return before - before[group_start]


class History:
    """The last `depth` accepted items of each stream, items of shape `item_shape`."""

    def __init__(self, depth: int, item_shape: tuple[int, ...] = ()) -> None:
        self.depth = int(depth)
        self.item_shape = tuple(item_shape)
        self.rows = Rows(buf=((*self.item_shape, self.depth), np.float64, 0.0),  # depth last: sorts are contiguous
                         count=((), np.int64, 0),  # accepted items held (<= depth)
                         head=((), np.int64, 0))  # ring position of the next write

    def clear(self, slot: int) -> None:
        self.rows.clear(slot)

    def state(self, slot: int) -> dict[str, np.ndarray]:
        return self.rows.row(slot)

    def set_state(self, slot: int, values: dict[str, Any]) -> None:
        self.rows.set_row(slot, values)

    def ordered(self, slot: int) -> np.ndarray:
        """The slot's items, oldest first, shape (count, *item_shape)."""
        n, head = int(self.rows["count"][slot]), int(self.rows["head"][slot])
        idx = (head - n + np.arange(n)) % self.depth
        return np.moveaxis(self.rows["buf"][slot][..., idx], -1, 0)

    def reduce(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray,
               statistic: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """For new `items` (n, *item_shape) of `slots` (n,), grouped by slot and in time order within each
        slot: `statistic` of each item's set of last k accepted predecessors (k < depth only at a stream's
        start), and k. `statistic` reduces the last axis (the set) and must not depend on its order.
        Returns (values (n, *item_shape), k (n,)); rows with k = 0 are left as zeros. Consumes the items:
        afterwards the rings hold the accepted ones."""
        slots = np.asarray(slots, dtype=np.int64)
        accept = np.asarray(accept, dtype=bool)
        values = np.zeros((len(slots), *self.item_shape))
        ks = np.zeros(len(slots), dtype=np.int64)
        if len(slots) == 0:
            return values, ks
        starts = np.r_[True, slots[1:] != slots[:-1]]
        if len(set(slots[starts].tolist())) != int(starts.sum()):
            raise ValueError("items must be grouped by slot")
        rank = ranks(slots, np.ones(len(slots), dtype=bool))
        if int(rank.max()) < MAX_ROUNDS:
            self._by_rounds(slots, items, accept, rank, statistic, values, ks)
        else:
            self._laid_out(slots, items, accept, starts, statistic, values, ks)
            self._append(slots, items, accept)
        return values, ks

    def _by_rounds(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray, rank: np.ndarray,
                   statistic: Callable[[np.ndarray], np.ndarray], values: np.ndarray, ks: np.ndarray) -> None:
        r = self.rows
        for rnd in range(int(rank.max()) + 1):
            idx = np.flatnonzero(rank == rnd)  # at most one item per slot
            s = slots[idx]
            count = r["count"][s]
            ks[idx] = count
            if (count == self.depth).all():
                values[idx] = statistic(r["buf"][s])
            else:
                for k in sorted(set(count[count > 0].tolist())):
                    sub = idx[count == k]
                    # a ring that is not full holds its items at positions [0, count)
                    values[sub] = statistic(r["buf"][slots[sub]][..., :k])
            self._append(s, items[idx], accept[idx])

    def _laid_out(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray, starts: np.ndarray,
                  statistic: Callable[[np.ndarray], np.ndarray], values: np.ndarray, ks: np.ndarray) -> None:
        """Each slot's ring (oldest first) then its accepted new items, laid out along the last axis; an item's
        set is a slice of that sequence, so all sets are one strided view (no copy of every window)."""
        d = self.depth
        group = np.cumsum(starts) - 1
        before = ranks(slots, accept)
        for g, slot in enumerate(slots[starts].tolist()):
            mine = np.flatnonzero(group == g)
            count = int(self.rows["count"][slot])
            ring = self.ordered(slot)  # (count, *item_shape)
            seq = np.concatenate([ring, items[mine][accept[mine]]])  # the slot's accepted sequence
            seq = np.ascontiguousarray(np.moveaxis(seq, 0, -1))  # (*item_shape, length)
            end = count + before[mine]  # one past each item's set in seq
            k = np.minimum(d, end)
            ks[mine] = k
            full = k == d
            if full.any():
                first = end[full] - d
                lo, hi = int(first.min()), int(first.max())
                windows = np.lib.stride_tricks.sliding_window_view(seq, d, axis=-1)[..., lo:hi + 1, :]
                stat = np.moveaxis(statistic(windows), -1, 0)  # (positions, *item_shape)
                values[mine[full]] = stat[first - lo]
            for kk in sorted(set(k[~full & (k > 0)].tolist())):  # a stream's first items: sets still filling
                sub = mine[k == kk]
                values[sub] = [statistic(seq[..., e - kk:e]) for e in end[k == kk]]

    def _append(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray) -> None:
        """Add the accepted items (grouped by slot, time order within each slot) to their slots' rings."""
        if not accept.any():
            return
        s, x = slots[accept], items[accept]
        rank = ranks(s, np.ones(len(s), dtype=bool))
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # items are grouped by slot
        u, n = s[starts], np.diff(np.r_[starts, len(s)])
        total = np.repeat(n, n)
        keep = rank >= total - self.depth  # only the newest `depth` of a slot matter
        s, x, rank = s[keep], x[keep], rank[keep]
        r = self.rows
        pos = (r["head"][s] + rank) % self.depth
        r["buf"][s, ..., pos] = x
        r["head"][u] = (r["head"][u] + n) % self.depth
        r["count"][u] = np.minimum(self.depth, r["count"][u] + n)
