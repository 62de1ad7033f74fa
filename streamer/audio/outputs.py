"""Where an audio run's reconstruction goes: any sample writer (a WAV file, speakers) as a run sink."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from streamer.audio.events import AudioFrameEvent


class SampleWriter(Protocol):
    def write(self, samples: np.ndarray) -> None: ...
    def drops(self) -> dict[str, int]: ...
    def close(self) -> None: ...


class ReconstructionSink:
    """The run path's sink: each frame event's finished samples, in order, to `writer`."""

    def __init__(self, writer: SampleWriter) -> None:
        self.writer = writer

    def write(self, events: Sequence[AudioFrameEvent]) -> None:
        for e in events:
            if len(e.samples):
                self.writer.write(e.samples)

    def drops(self) -> dict[str, int]:
        return self.writer.drops()

    def close(self) -> None:
        self.writer.close()
