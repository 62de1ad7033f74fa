"""Sinks: what a run writes for the user. The engine owns them: it hands each one the events of every block
and closes them all at the end, whatever ended the run (end of input, an error, Ctrl-C, SIGTERM).

Here: the Sink protocol, the JSON Lines event log (flushed per block) and the JSON summary. Stream-specific
sinks (a WAV file, speakers, a folder of images, a video) live in their stream's package.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

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
    """One JSON object per event (`event.to_dict()`), one per line, flushed per block so a killed run keeps
    what it scored."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.file: IO[str] | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise StreamerError(f"{self.path}: cannot write events ({exc.strerror})") from None

    def write(self, events: Sequence[Any]) -> None:
        if self.file is None or not events:
            return
        self.file.write("".join(dumps(e.to_dict()) + "\n" for e in events))
        self.file.flush()

    def drops(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def write_summary(path: str | Path, summary: dict[str, Any]) -> None:
    """Atomic write (temp file + rename): readers never see half a summary."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(dumps(summary, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise StreamerError(f"{path}: cannot write summary ({exc.strerror})") from None
