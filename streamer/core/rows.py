"""Per-stream state kept as rows of numpy arrays, so that one array operation serves every stream.

A `Rows` object owns named arrays whose first axis is the slot (one slot per stream). Slots are handed out
and taken back by the owner (`streamer.core.slots.SlotMap`); `clear(slot)` puts a row back to its initial
values, which is how a stream starts and how it is reset. `row(slot)` / `set_row(slot, values)` copy a
stream's state out and back in (saving and restoring a stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

GROWTH = 2  # capacity multiplies by this when full: amortised O(1) per added stream


class Rows:
    """Named arrays of shape (capacity, *row_shape), each with an initial fill value."""

    def __init__(self, **fields: tuple[tuple[int, ...], Any, float]) -> None:
        """`fields`: name -> (row shape, dtype, initial value)."""
        self._fields = dict(fields)
        self.capacity = 0
        self.arrays: dict[str, np.ndarray] = {
            name: np.zeros((0, *shape), dtype=dtype) for name, (shape, dtype, _) in fields.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self.arrays[name] = value

    def ensure(self, slot: int) -> None:
        """Make room for `slot` (existing rows keep their values)."""
        if slot < self.capacity:
            return
        new = max(slot + 1, GROWTH * self.capacity, 4)
        for name, (shape, dtype, fill) in self._fields.items():
            grown = np.full((new, *shape), fill, dtype=dtype)
            grown[:self.capacity] = self.arrays[name]
            self.arrays[name] = grown
        self.capacity = new

    def clear(self, slot: int) -> None:
        self.ensure(slot)
        for name, (_, _, fill) in self._fields.items():
            self.arrays[name][slot] = fill

    def row(self, slot: int) -> dict[str, np.ndarray]:
        return {name: np.array(self.arrays[name][slot]) for name in self._fields}

    def set_row(self, slot: int, values: Mapping[str, np.ndarray]) -> None:
        self.ensure(slot)
        for name in self._fields:
            row = np.asarray(values[name])
            if row.shape != self.arrays[name].shape[1:]:
                raise ValueError(f"state field {name!r} has shape {row.shape}, expected {self.arrays[name].shape[1:]}")
            self.arrays[name][slot] = row
