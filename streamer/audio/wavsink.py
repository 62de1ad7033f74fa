"""A 16-bit PCM WAV written as the stream runs, whose header is valid after every write.

libsndfile only writes the final sizes on close, so a killed run would leave a file that claims no samples.
Here the samples are appended first and then the whole 44-byte header is rewritten in place with one
`pwrite`: whenever the process dies, the header describes at most the samples already in the file, so the
file plays (at worst without the last block). Nothing is buffered in Python.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from streamer.core.errors import StreamerError

PCM_SCALE = 32767  # float 1.0 -> int16, as libsndfile writes PCM_16
HEADER_BYTES = 44
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_BYTES - 8)  # the RIFF size field is 32 bits: about 74 h at 8 kHz


def wav_header(rate: int, n_frames: int, channels: int = 1) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM WAV holding `n_frames`:

    `RIFF <36 + data bytes> WAVE`
    `fmt  <16> <1 = PCM> <channels> <rate> <byte rate> <block align> <16 bits>`
    `data <data bytes>`
    """
    align = 2 * channels
    data = n_frames * align
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", HEADER_BYTES - 8 + data, b"WAVE", b"fmt ", 16, 1,
                       channels, rate, rate * align, align, 16, b"data", data)


def to_pcm16(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Float samples -> little-endian int16 (clipped to [-1, 1], rounded), and how many were clipped."""
    x = np.asarray(samples, dtype=np.float64)
    clipped = int(np.count_nonzero(np.abs(x) > 1.0))
    return np.rint(np.clip(x, -1.0, 1.0) * PCM_SCALE).astype("<i2"), clipped


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class WavSink:
    """Mono 16-bit PCM WAV at `rate`; `write()` appends, the header always matches the samples written."""

    def __init__(self, path: str | Path, rate: int) -> None:
        self.path = Path(path)
        self.rate = int(round(rate))
        self.frames = 0  # samples written
        self.clipped = 0  # samples outside [-1, 1], written clipped
        self.fd: int | None = None
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            _write_all(self.fd, wav_header(self.rate, 0))
        except OSError as exc:
            self.close()
            raise StreamerError(f"{self.path}: cannot write WAV ({exc.strerror})") from None

    def write(self, samples: np.ndarray) -> None:
        """Append mono samples (floats, nominally in [-1, 1]); on return the file is a complete WAV."""
        if self.fd is None:
            raise StreamerError(f"{self.path}: WAV already closed")
        pcm, clipped = to_pcm16(np.ravel(samples))
        if not len(pcm):
            return
        if 2 * (self.frames + len(pcm)) > MAX_DATA_BYTES:
            raise StreamerError(f"{self.path}: WAV size limit (4 GiB) reached after {self.frames} samples")
        before = self.frames
        try:
            _write_all(self.fd, pcm.tobytes())
            self.frames += len(pcm)
            os.pwrite(self.fd, wav_header(self.rate, self.frames), 0)
        except OSError as exc:
            self._cut_back(before)
            raise StreamerError(f"{self.path}: cannot write WAV ({exc.strerror}); the audio before this block "
                                "is kept") from None
        self.clipped += clipped

    def _cut_back(self, frames: int) -> None:
        """After a failed write (disk full): the file ends with the last whole block, its header saying so."""
        self.frames = frames
        try:
            os.ftruncate(self.fd, HEADER_BYTES + 2 * frames)  # type: ignore[arg-type]
            os.pwrite(self.fd, wav_header(self.rate, frames), 0)  # type: ignore[arg-type]
        except OSError:
            pass  # the header was written last for `frames` samples: a player ignores what follows

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def drops(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> WavSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """A whole mono signal as a 16-bit PCM WAV (one-line StreamerError if the path cannot be written)."""
    with WavSink(path, rate) as sink:
        sink.write(samples)
