"""Outputs the user keeps: a JSON Lines event log (flushed per event) and the JSON summary."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, Any

from streamer.core.errors import StreamerError


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
    """One JSON object per line, flushed on every write so a killed run keeps what it scored."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.file: IO[str] | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise StreamerError(f"{self.path}: cannot write events ({exc.strerror})") from None

    def write(self, events: list[dict[str, Any]]) -> None:
        if self.file is None or not events:
            return
        self.file.write("".join(dumps(e) + "\n" for e in events))
        self.file.flush()

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
