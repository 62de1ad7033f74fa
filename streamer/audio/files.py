"""Audio files: read anything soundfile reads (WAV, FLAC, OGG, MP3; librosa as a fallback when it is
installed) into mono float32 at the model's rate, and replay it as a source of blocks.

Problems end as one `InputError` line naming the file: no such file, empty, not audio, truncated (a WAV
whose data chunk is shorter than its header says; a FLAC or MP3 that decodes short of its stated length),
non-finite samples, no samples. A silent file is not an error here (the task reports its SNR undefined).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from streamer.audio.resample import StreamResampler, resample
from streamer.core.cstderr import silence_c_stderr
from streamer.core.errors import InputError, need
from streamer.run.sources import Block, QuietSource, Timing

READ_FRAMES = 1 << 16  # frames decoded per step: memory stays at the model rate, not the file's
MP3_SLACK = 2 * 1152  # frames: an MP3's stated length is an estimate to about two MPEG frames
UNKNOWN_SIZE = (0, 0xFFFFFFFF)  # data chunk sizes written by streaming writers that never finished the header


def wav_data_chunk(head: bytes, file_size: int) -> tuple[int, int, int] | None:
    """(declared data bytes, data bytes present, block align) of a RIFF WAVE file, None if not one.

    Layout: `RIFF <u32 size> WAVE`, then chunks `<4-byte id> <u32 size> <payload, padded to even>`;
    `fmt ` holds `<u16 format> <u16 channels> <u32 rate> <u32 byte rate> <u16 block align> <u16 bits>`,
    `data` holds the samples. `head` is the start of the file, up to and including the data chunk header.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = struct.unpack_from("<4sI", head, pos)
        if chunk == b"fmt " and pos + 20 <= len(head):
            align = struct.unpack_from("<H", head, pos + 20)[0]
        if chunk == b"data":
            return size, max(0, file_size - pos - 8), align
        pos += 8 + size + (size & 1)
    return None


def _check_wav_complete(path: Path) -> None:
    """libsndfile reads a cut WAV silently (as many frames as are there): compare with the header."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    found = wav_data_chunk(head, path.stat().st_size)
    if found is None:
        return
    declared, present, align = found
    if declared in UNKNOWN_SIZE or align == 0 or present >= declared:
        return
    raise InputError(path, f"truncated: header says {declared // align} frames, file holds {present // align}")


OGG_TAIL = 1 << 16  # bytes read from an OGG file's end: the last page starts within them (pages <= 65 307 bytes)
OGG_EOS = 0x04  # the page header's end-of-stream flag


def _check_ogg_complete(path: Path) -> None:
    """An OGG stream ends with a page flagged end-of-stream; a file cut short ends without one and libsndfile
    plays what is there without complaint."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - OGG_TAIL))
        tail = f.read()
    last = tail.rfind(b"OggS")
    if last < 0 or last + 5 >= len(tail) or not tail[last + 5] & OGG_EOS:
        raise InputError(path, "truncated OGG (its last page does not end the stream)")


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")


def _decode(path: Path, rate: int) -> tuple[np.ndarray, float]:
    """Decode in steps with soundfile, resampling as it goes. Raises `sf.LibsndfileError` if not audio."""
    sf = soundfile()
    with silence_c_stderr(), sf.SoundFile(path) as f:
        stated, native, kind = f.frames, float(f.samplerate), f.format
        resampler = StreamResampler(native, rate, f.channels)
        parts, decoded = [], 0
        try:
            while True:
                block = f.read(READ_FRAMES, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                _check_finite(path, block, decoded)
                parts.append(resampler.process(block))
                decoded += len(block)
        except sf.LibsndfileError as exc:
            raise InputError(path, f"truncated or corrupt: header says {stated} frames, decoding failed after "
                                   f"{decoded} ({exc.error_string.strip().rstrip('.')})") from None
    if kind in ("WAV", "WAVEX"):
        _check_wav_complete(path)
    elif kind == "OGG":
        _check_ogg_complete(path)
    elif stated > 0 and decoded < stated - (MP3_SLACK if kind == "MP3" else 0):
        raise InputError(path, f"truncated: header says {stated} frames, file holds {decoded}")
    if decoded == 0:
        raise InputError(path, "no samples")
    parts.append(resampler.flush())
    return np.concatenate(parts), native


def _check_finite(path: Path, block: np.ndarray, offset: int) -> None:
    bad = ~np.isfinite(block)
    if bad.any():
        frame = offset + int(np.argmax(bad.any(axis=1)))
        raise InputError(path, "non-finite sample (NaN or inf)", f"frame {frame}")


def _decode_librosa(path: Path, rate: int, reason: str) -> tuple[np.ndarray, float]:
    """Fallback for formats libsndfile lacks, only when librosa is installed (not a dependency)."""
    try:
        import librosa  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise InputError(path, f"not an audio file or unreadable ({reason})") from None
    try:
        with silence_c_stderr():
            data, native = librosa.load(str(path), sr=None, mono=False)
    except Exception as exc:  # librosa's backends (audioread, ffmpeg) raise many kinds
        raise InputError(path, f"not an audio file or unreadable ({reason}; librosa: {exc})") from None
    frames = np.atleast_2d(np.asarray(data, dtype=np.float32)).T  # librosa gives (channels, n)
    if len(frames) == 0:
        raise InputError(path, "no samples")
    _check_finite(path, frames, 0)
    return resample(frames.mean(axis=1), float(native), rate), float(native)


def soundfile() -> Any:
    """The soundfile package (audio files need the `audio` extra)."""
    return need("soundfile", "audio files", "audio")


def read_audio(path: str | Path, rate: int) -> tuple[np.ndarray, float]:
    """The whole file as mono float32 at `rate` (channels averaged), and the file's own rate."""
    path = Path(path)
    _check_path(path)
    try:
        return _decode(path, rate)
    except soundfile().LibsndfileError as exc:
        return _decode_librosa(path, rate, exc.error_string.strip().rstrip(".") or "unreadable")


class FileSource(QuietSource):
    """An audio file read once, converted to mono at `rate` (one-shot soxr, as training did), replayed in
    blocks of `block_s` seconds. Its peak is known before the replay, as in training (`peak`).

    A replay: the engine paces it (real time by default, `--speed`).
    """

    timing = Timing.REPLAY

    def __init__(self, path: str | Path, rate: int, block_s: float) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.rate = float(rate)
        self.signal, self.native_rate = read_audio(self.path, rate)
        self.duration_s = len(self.signal) / rate
        self.block = max(1, int(round(block_s * rate)))
        self.peak = float(np.max(np.abs(self.signal))) if len(self.signal) else 0.0

    def blocks(self) -> Iterator[Block]:
        for start in range(0, len(self.signal), self.block):
            yield Block(self.signal[start:start + self.block], start)

    def length(self) -> int | None:
        return len(self.signal)

    def summary(self) -> dict[str, Any]:
        return {"input": f"{self.name} ({self.native_rate:g} Hz)"}
