"""Sources: where a run's samples (or images) come from. Every source declares how its time flows:

- `LIVE`: the data arrives in real time (a device, stdin, a camera, a watched folder); the engine never
  waits for it, and latency counts from each block's `arrival`;
- `REPLAY`: a recording delivered as if live; the engine paces it (`--speed`);
- `UNTIMED`: items with no signal time (a folder of images, an array file): no pacing, no real-time factor.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import numpy as np

from streamer.core.errors import InputError

READ_BYTES = 1 << 16  # per read from a live text stream: whatever has arrived, up to this


class Timing(enum.Enum):
    LIVE = "live"
    REPLAY = "replay"
    UNTIMED = "untimed"


@dataclass
class Block:
    samples: Any  # 1-D or (n, channels) samples; images: an (n, h, w) array or a list of (h, w) arrays
    start: int  # stream index of samples[0]
    arrival: float | None = None  # clock() when a live source received it (latency counts from here)
    extras: dict[str, Any] = field(default_factory=dict)  # per-kind fields (images: names, clean)


class Source(Protocol):
    """What the run path needs from a source."""

    name: str  # shown in titles and summaries (a path, a device name)
    rate: float  # samples (or items) per second of stream time; nominal for UNTIMED sources
    timing: Timing

    def blocks(self) -> Iterator[Block]: ...

    def drops(self) -> dict[str, int]:
        """What the source itself lost, by reason (a device's overflows, unreadable files)."""
        ...

    def length(self) -> int | None:
        """How many samples (or items) it will give in all, in the units of `Block.start`; None when that is
        not known (live sources). A terminal shows the run's progress from it."""
        ...

    def summary(self) -> dict[str, Any]:
        """What the source adds to the run's summary (device, native rate, files skipped...)."""
        ...

    def close(self) -> None: ...


class QuietSource:
    """Defaults for a source that loses nothing, adds nothing to the summary and holds nothing open."""

    def drops(self) -> dict[str, int]:
        return {}

    def length(self) -> int | None:
        return None

    def summary(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class ArraySource(QuietSource):
    """A whole recording replayed in blocks of `block_s` seconds; the first one may be shorter
    (`first_block_s`), so that the first events come out at once when the blocks are long."""

    timing = Timing.REPLAY

    def __init__(self, signal: np.ndarray, rate: float, name: str, block_s: float,
                 info: dict[str, Any] | None = None, first_block_s: float | None = None) -> None:
        self.signal = signal
        self.rate = float(rate)
        self.name = name
        self.block = max(1, int(round(block_s * rate)))
        self.first = self.block if first_block_s is None else max(1, int(round(first_block_s * rate)))
        self.info = dict(info or {})

    def blocks(self) -> Iterator[Block]:
        start = 0
        while start < len(self.signal):
            size = self.first if start == 0 else self.block
            yield Block(self.signal[start:start + size], start)
            start += size

    def length(self) -> int | None:
        return len(self.signal)

    def summary(self) -> dict[str, Any]:
        return dict(self.info)


MAX_LINE_BYTES = 4096  # a sample's line is a number (and maybe a time): far longer is not this input


class TextLineSource(QuietSource):
    """One number per line from a live byte stream (stdin). Yields what has arrived, as it arrives.

    Ends at end of stream. A final line without its newline means the writer stopped mid-line: the
    blocks before it are still yielded (and scored), then an `InputError` says what happened.
    """

    timing = Timing.LIVE

    def __init__(self, rate: float, stream: BinaryIO, name: str = "-",
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.rate = float(rate)
        self.stream = stream
        self.name = name
        self.line = 0
        self.clock = clock

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
            arrival = self.clock()
            if b"\n" not in chunk:  # the line goes on: no re-joining of a growing line on every read
                pending += chunk
            else:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                values = self._parse(lines)
                if len(values):
                    yield Block(values, start, arrival)
                    start += len(values)
            if len(pending) > MAX_LINE_BYTES:
                raise InputError(self.name, f"line {self.line + 1} is longer than {MAX_LINE_BYTES} bytes without a "
                                            "newline: not one sample per line; the samples before it were processed")
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
            if np.isinf(value):  # (nan is a missing sample: a gap, judged poor and skipped)
                raise InputError(self.name, f"infinite value {text.decode()!r}", f"line {self.line}")
            out[n] = value
            n += 1
        return out[:n]
