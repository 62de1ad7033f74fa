"""Sinks: what a run writes for the user. The engine owns them: it hands each one the events of every block
and closes them all at the end, whatever ended the run (end of input, an error, Ctrl-C, SIGTERM).

Here: the Sink protocol, the JSON Lines event log (flushed per block) and the JSON summary. Stream-specific
sinks (a WAV file, speakers, a folder of images, a video) live in their stream's package.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from streamer.core.atomic import write_atomically
from streamer.core.errors import StreamerError


class Sink(Protocol):
    def write(self, events: Sequence[Any]) -> None:
        """The events of one block (possibly none)."""
        ...

    def drops(self) -> dict[str, int]:
        """What the sink could not deliver, by reason (e.g. speakers that ran dry)."""
        ...

    def close(self) -> None:
        """Flush and release; called once by the engine, also after Ctrl-C or an error."""
        ...


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (strict JSON has no NaN), numpy scalars become Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(_clean(value), allow_nan=False, **kwargs)


class JsonlSink:
    """One JSON object per event (`event.to_dict()`), one per line, written per block so a killed run keeps
    what it scored.

    The file is locked (`flock`) before it is emptied: a second run given the same file is refused instead of
    interleaving lines with the first. Each block's lines go in one write; if it fails (disk full), the file
    is cut back to the end of the last whole block, so it always holds whole, valid lines.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd: int | None = None
        self.written = 0  # bytes of whole blocks in the file
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)  # not O_TRUNC: locked first
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.isfile(self.path):  # a FIFO or /dev/stdout cannot be (nor need be) truncated
                os.ftruncate(self.fd, 0)
        except BlockingIOError:
            self._release()
            raise StreamerError(f"{self.path}: another run is writing events to this file") from None
        except OSError as exc:
            self._release()
            raise StreamerError(f"{self.path}: cannot write events ({exc.strerror})") from None

    def write(self, events: Sequence[Any]) -> None:
        if self.fd is None or not events:
            return
        data = "".join(dumps(e.to_dict()) + "\n" for e in events).encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            kept = self._cut_back()
            self._release()
            raise StreamerError(f"{self.path}: cannot write events ({exc.strerror}); {kept}") from None
        self.written += len(data)

    def _cut_back(self) -> str:
        """Drop a partly written block; what the file keeps, for the message."""
        try:
            os.ftruncate(self.fd, self.written)  # type: ignore[arg-type]
            return "the events before this block are kept, whole"
        except OSError:
            return "its last line may be cut"

    def drops(self) -> dict[str, int]:
        return {}

    def _release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None

    def close(self) -> None:
        self._release()


def write_summary(path: str | Path, summary: dict[str, Any]) -> None:
    """Written whole or not at all (`write_atomically`): readers never see half a summary."""
    text = (dumps(summary, indent=2) + "\n").encode("utf-8")
    try:
        write_atomically(path, lambda f: f.write(text))
    except OSError as exc:
        raise StreamerError(f"{path}: cannot write summary ({exc.strerror})") from None
