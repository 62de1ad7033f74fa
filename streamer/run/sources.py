"""Sources yield blocks of samples with their position in the stream: a recorded array replayed in
blocks (the engine paces it), or a text stream read live (stdin, one sample per line)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from streamer.core.errors import InputError

READ_BYTES = 1 << 16  # per read from a live text stream: whatever has arrived, up to this


@dataclass
class Block:
    samples: Any  # 1-D float samples; for images a list of items or an (n, h, w) array
    start: int  # index of samples[0] from stream start
    arrival: float | None = None  # perf_counter() when a live device delivered it (latency counts from here)


class ArraySource:
    """A whole recording replayed in fixed blocks of `block_s` seconds."""

    live = False

    def __init__(self, signal: np.ndarray, fs: float, name: str, block_s: float) -> None:
        self.signal = signal
        self.fs = fs
        self.name = name
        self.block = max(1, int(round(block_s * fs)))

    def blocks(self) -> Iterator[Block]:
        for start in range(0, len(self.signal), self.block):
            yield Block(self.signal[start:start + self.block], start)


class TextLineSource:
    """One number per line from a live byte stream (stdin). Yields what has arrived, as it arrives.

    Ends at end of stream. A final line without its newline means the writer stopped mid-line: the
    blocks before it are still yielded (and scored), then an `InputError` says what happened.
    """

    live = True

    def __init__(self, fs: float, stream: BinaryIO, name: str = "-") -> None:
        self.fs = fs
        self.stream = stream
        self.name = name
        self.line = 0

    def _read(self) -> bytes:
        try:
            return os.read(self.stream.fileno(), READ_BYTES)
        except (AttributeError, OSError, ValueError):  # not a real file (tests pass BytesIO)
            return self.stream.read(READ_BYTES)

    def blocks(self) -> Iterator[Block]:
        pending = b""
        start = 0
        while True:
            chunk = self._read()
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            values = self._parse(lines)
            if len(values):
                yield Block(values, start)
                start += len(values)
        if pending.strip():
            tail = pending[:20].decode(errors="replace")
            raise InputError(self.name, f"stream stopped mid-line (line {self.line + 1} incomplete: {tail!r}); "
                                        "the samples before it were processed")
        if start == 0:
            raise InputError(self.name, "no samples")

    def _parse(self, lines: list[bytes]) -> np.ndarray:
        out = np.empty(len(lines))
        n = 0
        for raw in lines:
            self.line += 1
            text = raw.strip()
            if not text:
                continue
            try:
                value = float(text.split(b",")[-1])
            except ValueError:
                raise InputError(self.name, f"not a number: {text[:30].decode(errors='replace')!r}",
                                 f"line {self.line}") from None
            if not np.isfinite(value):
                raise InputError(self.name, f"non-finite value {text.decode()!r}", f"line {self.line}")
            out[n] = value
            n += 1
        return out[:n]
