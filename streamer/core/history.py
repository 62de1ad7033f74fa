"""Per-stream histories of recent items (beats, scores) and, for a batch of new items from many streams,
the set of accepted items that came before each one, as array operations.

Used where a stream's next value depends on its own recent past through an order statistic: the ECG
template (per-sample median of the last 16 regular beats) and the patient-adaptive score level (a
percentile of the last 32 scores). For every new item the set holds the last `depth` *accepted* items
before it: from earlier blocks (a ring per slot) and from earlier items of the same batch. Which items are
accepted is decided by the caller (premature beats stay out of the template, for instance).

The sets are given with the depth axis last and in no particular order: callers only take order
statistics of them (sorting along the last axis), so any order gives bit-identical results. Two ways to
build them give the same sets: by *rounds* (the first new item of every slot, then the second, ...: a few
array gathers when each slot has a few items, the case of many live streams) or by laying every slot's
sequence out in one array (one long batch of one stream, the case of an offline record).
"""

from __future__ import annotations

from collections.abc import Iterator
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

    def sets(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray
             ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """For new `items` (n, *item_shape) of `slots` (n,), grouped by slot and in time order within each
        slot, yield (k, item indices, sets (len, *item_shape, k)): each item's last k accepted predecessors,
        grouped by k (k < depth only at a stream's start; k = 0: none). Consumes the items: afterwards the
        rings hold them (accepted ones)."""
        slots = np.asarray(slots, dtype=np.int64)
        accept = np.asarray(accept, dtype=bool)
        if len(slots) == 0:
            return
        starts = np.r_[True, slots[1:] != slots[:-1]]
        if len(np.unique(slots[starts])) != int(starts.sum()):
            raise ValueError("items must be grouped by slot")
        rank = ranks(slots, np.ones(len(slots), dtype=bool))
        if int(rank.max()) < MAX_ROUNDS:
            yield from self._by_rounds(slots, items, accept, rank)
        else:
            yield from self._laid_out(slots, items, accept, starts)
            self._append(slots, items, accept)

    def _by_rounds(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray, rank: np.ndarray
                   ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        r = self.rows
        for rnd in range(int(rank.max()) + 1):
            idx = np.flatnonzero(rank == rnd)  # at most one item per slot
            s = slots[idx]
            count = r["count"][s]
            full = count == self.depth
            if full.all():
                yield self.depth, idx, r["buf"][s]
            else:
                for k in np.unique(count):
                    sub = idx[count == k]
                    # a ring that is not full holds its items at positions [0, count)
                    yield int(k), sub, r["buf"][slots[sub]][..., :k]
            self._append(s, items[idx], accept[idx])

    def _laid_out(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray, starts: np.ndarray
                  ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Every slot's ring (oldest first) then its accepted new items, in one array; windows by slicing."""
        d = self.depth
        group = np.cumsum(starts) - 1
        uniq = slots[starts]
        n_acc = np.bincount(group, weights=accept, minlength=len(uniq)).astype(np.int64)
        size = d + n_acc
        base = np.concatenate([[0], np.cumsum(size)[:-1]])
        g = np.empty((int(size.sum()), *self.item_shape))
        ring_pos = (self.rows["head"][uniq][:, None] - d + np.arange(d)[None, :]) % d
        rings = np.moveaxis(self.rows["buf"][uniq], -1, 1)  # (slots, depth, *item_shape)
        g[(base[:, None] + np.arange(d)[None, :]).ravel()] = \
            rings[np.arange(len(uniq))[:, None], ring_pos].reshape(-1, *self.item_shape)
        before = ranks(slots, accept)
        g[base[group[accept]] + d + before[accept]] = items[accept]
        end = base[group] + d + before  # one past the item's window in g
        k = np.minimum(d, self.rows["count"][uniq][group] + before)
        for kk in np.unique(k):
            idx = np.flatnonzero(k == kk)
            rows = end[idx][:, None] - kk + np.arange(kk)[None, :]
            yield int(kk), idx, np.moveaxis(g[rows], 1, -1)

    def _append(self, slots: np.ndarray, items: np.ndarray, accept: np.ndarray) -> None:
        """Add the accepted items (grouped by slot, time order within each slot) to their slots' rings."""
        if not accept.any():
            return
        s, x = slots[accept], items[accept]
        rank = ranks(s, np.ones(len(s), dtype=bool))
        u, first, n = np.unique(s, return_index=True, return_counts=True)
        total = np.repeat(n[np.argsort(first)], n[np.argsort(first)]) if len(u) < len(s) else np.ones(len(s), int)
        keep = rank >= total - self.depth  # only the newest `depth` of a slot matter
        s, x, rank = s[keep], x[keep], rank[keep]
        r = self.rows
        pos = (r["head"][s] + rank) % self.depth
        r["buf"][s, ..., pos] = x
        r["head"][u] = (r["head"][u] + n) % self.depth
        r["count"][u] = np.minimum(self.depth, r["count"][u] + n)
